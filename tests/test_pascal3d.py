"""PASCAL3D+ cars reader on a tiny release fabricated in the real layout (.mat files written with scipy.io.savemat).

``PASCAL3D+_release1.1/`` gets two CAD models (a box car and a car with a cabin, the front towards CAD ``-y``),
photos of noise, annotation ``record`` structs with 1 x K ``objects`` struct arrays (the shape the real files
have), the ImageNet and VOC split lists. Bboxes are the tight boxes of the CAD models projected with PASCAL3D+'s
own formula (written out independently here for the axis-aligned cases).

Tolerances: the camera is exact at the CAD centre (float32 storage: ~1e-4 px); elsewhere it is a
weak-perspective linearization whose error (< 1 px at these distances) is what ``perspective_error_px`` reports.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat
from scipy.spatial import Delaunay

from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data import pascal3d as p3d
from meshinv_lite.render import ndc_to_pixel

torch.set_num_threads(1)

W, H = 320, 240
FOCAL, VIEWPORT = 1.0, 3000.0


def box(x0, x1, y0, y1, z0, z1, offset=0):
    """A closed box: 8 vertices (N, 3) and 12 triangles (1-based, as MATLAB stores them)."""
    v = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], dtype=np.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = [[a, b, c] for a, b, c, d in quads] + [[a, c, d] for a, b, c, d in quads]
    return v, np.array(f) + 1 + offset


# CAD frame: x = car's left, y = car's back (front at -y), z = up.
BOX_V, BOX_F = box(-0.2, 0.2, -0.5, 0.5, 0.0, 0.3)  # model 1: convex, 1.0 long
_body_v, _body_f = box(-0.22, 0.22, -0.6, 0.6, 0.0, 0.25)
_cabin_v, _cabin_f = box(-0.18, 0.18, -0.1, 0.45, 0.25, 0.45, offset=8)  # the cabin sits towards the back
CABIN_V, CABIN_F = np.concatenate([_body_v, _cabin_v]), np.concatenate([_body_f, _cabin_f])  # model 2: 1.2 long
CADS = [(BOX_V, BOX_F), (CABIN_V, CABIN_F)]


def viewpoint(azimuth, elevation=10.0, theta=0.0, distance=25.0, px=160.0, py=125.0):
    return {"azimuth": float(azimuth), "elevation": float(elevation), "theta": float(theta), "distance": float(distance),
            "focal": FOCAL, "viewport": VIEWPORT, "px": float(px), "py": float(py),
            "azimuth_coarse": float(azimuth), "elevation_coarse": float(elevation)}


def vp_record(vp: dict) -> p3d.Pascal3DViewpoint:
    return p3d.Pascal3DViewpoint(*(vp[k] for k in ("azimuth", "elevation", "theta", "distance", "focal", "viewport", "px", "py")))


def tight_bbox(vp: dict, cad_index: int) -> np.ndarray:
    pix, _ = p3d.project_pascal3d(CADS[cad_index - 1][0], vp_record(vp))
    return np.array([pix[:, 0].min(), pix[:, 1].min(), pix[:, 0].max(), pix[:, 1].max()]).round()


def car(vp, cad_index=1, truncated=0, occluded=0, difficult=0, cls="car", bbox=None):
    if bbox is None:
        bbox = tight_bbox(vp, cad_index) if vp is not None and vp["distance"] > 0 else np.array([10.0, 10, 100, 80])
    return (cls, np.asarray(bbox, float), truncated, occluded, difficult, cad_index,
            vp if vp is not None else np.zeros((0, 0)))


OBJ_DTYPE = [("class", "O"), ("bbox", "O"), ("truncated", "O"), ("occluded", "O"), ("difficult", "O"),
             ("cad_index", "O"), ("viewpoint", "O")]

# (source, image id, split, objects)
IMAGES = [
    ("imagenet", "n02958343_1", "train", [car(viewpoint(30, theta=5.0))]),
    ("imagenet", "n02958343_2", "train", [car(viewpoint(200, 15, distance=40.0, px=150), cad_index=2),
                                          car(viewpoint(60), truncated=1), car(viewpoint(60), occluded=1)]),
    ("imagenet", "n02958343_3", "train", [car({**viewpoint(120), "distance": 0.0}), car(viewpoint(100), difficult=1)]),
    ("imagenet", "n02958343_4", "val", [car(viewpoint(300, -5, theta=-8.0, distance=40.0, px=170, py=110), cad_index=2)]),
    ("pascal", "2008_000001", "train", [car(None, cls="person"), car(viewpoint(90, 5, distance=40.0), cad_index=2)]),
]


def fabricate(root: Path) -> Path:
    """Write the release layout under ``root/PASCAL3D+_release1.1`` and return that folder."""
    rel = root / "PASCAL3D+_release1.1"
    (rel / "CAD").mkdir(parents=True)
    cad = np.zeros((1, 2), dtype=[("vertices", "O"), ("faces", "O"), ("left_front_wheel", "O")])
    for i, (v, f) in enumerate(CADS):
        cad[0, i] = (v, f.astype(np.float64), np.array([0.2, -0.35, 0.05]))
    savemat(rel / "CAD" / "car.mat", {"car": cad})
    lists = {}
    for k, (source, image_id, split, objects) in enumerate(IMAGES):
        ext = ".JPEG" if source == "imagenet" else ".jpg"
        for sub in ("Images", "Annotations"):
            (rel / sub / f"car_{source}").mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(k)
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(rel / "Images" / f"car_{source}" / f"{image_id}{ext}")
        objs = np.zeros((1, len(objects)), dtype=OBJ_DTYPE)
        for j, o in enumerate(objects):
            objs[0, j] = o
        record = {"filename": f"{image_id}{ext}", "imgsize": np.array([W, H, 3.0]), "database": "ImageNet",
                  "objects": objs}
        savemat(rel / "Annotations" / f"car_{source}" / f"{image_id}.mat", {"record": record})
        lists.setdefault((source, split), []).append(image_id)
    (rel / "Image_sets").mkdir()
    voc = rel / "PASCAL" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    voc.mkdir(parents=True)
    for split in ("train", "val"):
        (rel / "Image_sets" / f"car_imagenet_{split}.txt").write_text("\n".join(lists.get(("imagenet", split), [])) + "\n")
        ids = lists.get(("pascal", split), [])
        (voc / f"car_{split}.txt").write_text("".join(f"{i}  1\n" for i in ids) + "2008_000099 -1\n")  # no car: skipped
    return rel


@pytest.fixture
def release(tmp_path):
    return fabricate(tmp_path)


def test_reader_parses_and_filters(release):
    recs, dropped = p3d.read_pascal3d(release, "train")
    assert [(r.rel_path, r.object_index) for r in recs] == [
        ("car_imagenet/n02958343_1.JPEG", 1), ("car_imagenet/n02958343_2.JPEG", 1), ("car_pascal/2008_000001.jpg", 2)]
    assert dropped == {"other_class": 1, "truncated": 1, "occluded": 1, "difficult": 1, "no_viewpoint": 1}
    assert all(r.class_id == -1 for r in recs) and [r.cad_index for r in recs] == [1, 2, 2]
    assert recs[0].viewpoint.azimuth == 30 and recs[0].viewpoint.theta == 5 and recs[0].image_size == (W, H)
    assert np.allclose(recs[1].bbox, tight_bbox(IMAGES[1][3][0][6], 2))
    kept, dropped = p3d.read_pascal3d(release, "train", skip_truncated=False, skip_difficult=False)
    assert len(kept) == 5 and dropped["truncated"] == 0 and dropped["difficult"] == 0 and dropped["occluded"] == 1
    assert [r.truncated for r in kept].count(True) == 1
    val, _ = p3d.read_pascal3d(release, "val", sources=["imagenet"])
    assert [r.rel_path for r in val] == ["car_imagenet/n02958343_4.JPEG"]
    cads = p3d.read_cad_models(release)
    assert len(cads) == 2 and cads[1].faces.min() == 0 and np.allclose(cads[0].vertices, BOX_V)


def test_projection_matches_the_hand_derived_formula():
    """PASCAL3D+'s project_3d at azimuth 0, elevation 0 (camera at -y looking at +y, x right, z up) and with theta."""
    pts = np.array([[0.1, -0.5, 0.2], [-0.3, 0.4, 0.05], [0.0, 0.0, 0.0]])
    d, f = 8.0, FOCAL * VIEWPORT
    col, row = p3d.project_pascal3d(pts, vp_record(viewpoint(0, 0, distance=d, px=100, py=90)))[0].T
    assert np.allclose(col, 100 + f * pts[:, 0] / (d + pts[:, 1]))
    assert np.allclose(row, 90 - f * pts[:, 2] / (d + pts[:, 1]))
    # theta = 90: the image-plane point (u, v) becomes (-v, u)
    col, row = p3d.project_pascal3d(pts, vp_record(viewpoint(0, 0, theta=90, distance=d, px=100, py=90)))[0].T
    assert np.allclose(col, 100 - f * pts[:, 2] / (d + pts[:, 1]))
    assert np.allclose(row, 90 - f * pts[:, 0] / (d + pts[:, 1]))
    # elevation 90: looking straight down (camera at +z); x right, y up in the image
    col, row = p3d.project_pascal3d(pts, vp_record(viewpoint(0, 90, distance=d, px=100, py=90)))[0].T
    assert np.allclose(col, 100 + f * pts[:, 0] / (d - pts[:, 2]))
    assert np.allclose(row, 90 - f * pts[:, 1] / (d - pts[:, 2]))


def ours_in_photo(sample, points_cad, cad, size):
    """Our camera's projection of CAD points, in 1-indexed photo pixels."""
    ours = sample.camera.to(dtype=torch.float64).project(torch.from_numpy(p3d.cad_points_to_object(points_cad, cad)))[0]
    x0, y0, side = sample.crop_box[:3].astype(float)
    return ndc_to_pixel(ours, side, side).numpy() + [x0 + 1, y0 + 1]


@pytest.mark.parametrize("split,k", [("train", 0), ("train", 1), ("train", 2), ("val", 0)])
def test_camera_reproduces_pascal3d_projection(release, split, k):
    size = 64
    rec = p3d.read_pascal3d(release, split)[0][k]
    cads = p3d.read_cad_models(release)
    cad = cads[rec.cad_index - 1]
    sample = p3d.load_pascal3d_sample(rec, release, cads, size)
    exact, depth = p3d.project_pascal3d(cad.vertices, rec.viewpoint)
    ours = ours_in_photo(sample, cad.vertices, cad, size)
    err = np.linalg.norm(ours - exact, axis=1)
    assert err.max() < 1.0, err  # photo pixels
    centre_exact, _ = p3d.project_pascal3d(cad.center[None], rec.viewpoint)
    assert np.abs(ours_in_photo(sample, cad.center[None], cad, size) - centre_exact).max() < 1e-3
    side = float(sample.crop_box[2])
    assert sample.perspective_error_px == pytest.approx(err.max() * size / side, rel=1e-3, abs=1e-4)
    # depth: larger z is farther in the photo too
    z = sample.camera.apply(torch.from_numpy(p3d.cad_points_to_object(cad.vertices, cad)).float())[0, :, 2].numpy()
    assert np.corrcoef(z, depth)[0, 1] > 0.999
    # the object frame: CAD up (+z) is our +y, CAD front (-y) is our +z, CAD centre our origin, length CAR_LENGTH
    obj = p3d.cad_points_to_object(cad.vertices, cad)
    assert np.allclose((obj.min(0) + obj.max(0)) / 2, 0) and np.ptp(obj[:, 2]) == pytest.approx(p3d.CAR_LENGTH)
    assert np.allclose(p3d.cad_points_to_object(cad.center + np.array([[0, 0, 1.0], [0, -1.0, 0]]), cad),
                       cad.scale * np.array([[0, 1, 0], [0, 0, 1.0]]))


@pytest.mark.parametrize("azimuth,ours", [(0, 90), (90, 180), (180, 270), (270, 0)])
def test_azimuths_map_to_the_expected_views_of_our_car(azimuth, ours):
    cad = p3d.CadModel(CABIN_V, CABIN_F - 1)
    vp = vp_record(viewpoint(azimuth, 0.0, distance=40.0))
    cam = p3d.viewpoint_to_camera(vp, (100, 50, 150, 150), cad)
    az, el = cam.view_angles()
    assert (float(az) - ours + 180) % 360 - 180 == pytest.approx(0, abs=1e-3) and float(el) == pytest.approx(0, abs=1e-3)
    az_up, el_up = p3d.viewpoint_to_camera(vp_record(viewpoint(azimuth, 25.0, theta=12.0)), (100, 50, 150, 150), cad).view_angles()
    assert float(az_up) == pytest.approx(float(az), abs=1e-3) and float(el_up) == pytest.approx(25, abs=1e-3)  # looks down
    # our car frame: front +z, back -z, left side (CAD +x) -x
    front, back, left = np.array([[0, 0, 1.0]]), np.array([[0, 0, -1.0]]), np.array([[-1.0, 0, 0]])
    (xf, yf, zf), (xb, yb, zb), (xl, yl, zl) = (cam.to(dtype=torch.float64).apply(torch.from_numpy(p))[0, 0].numpy()
                                                for p in (front, back, left))
    if azimuth == 0:  # the car's front faces us; its left side is on the image's right
        assert zf < zb and xl > 0.5 * float(cam.scale)
    elif azimuth == 90:  # its left side faces us, the front points left in the image
        assert zl < zf and xf < xb
    elif azimuth == 180:
        assert zb < zf and xl < -0.5 * float(cam.scale)
    else:  # its right side faces us, the front points right
        assert zl > zf and xf > xb


def hull_mask(points_px: np.ndarray, crop_box, size: int, sub: int = 4) -> np.ndarray:
    """Fraction of each output pixel inside the convex hull of 1-indexed photo points (sub x sub samples)."""
    x0, y0, side = (float(v) for v in crop_box[:3])
    g = (np.arange(size * sub) + 0.5) / (size * sub) * side - 0.5  # 0-indexed crop pixel positions of the samples
    cols, rows = np.meshgrid(g + x0 + 1, g + y0 + 1)
    inside = Delaunay(points_px).find_simplex(np.stack([cols.ravel(), rows.ravel()], 1)) >= 0
    return inside.reshape(size, sub, size, sub).mean(axis=(1, 3))


def test_mask_is_the_projected_cad_silhouette_inside_the_bbox(release):
    size = 48
    recs, _ = p3d.read_pascal3d(release, "train")
    cads = p3d.read_cad_models(release)
    rec = recs[0]  # the convex box car: its silhouette is the hull of its projected vertices
    sample = p3d.load_pascal3d_sample(rec, release, cads, size)
    assert sample.mask_source == "cad_projection" and sample.mask.shape == (1, size, size)
    pix, _ = p3d.project_pascal3d(cads[0].vertices, rec.viewpoint)
    ref = hull_mask(pix, sample.crop_box, size)
    m = sample.mask[0].numpy()
    assert np.abs(m - ref).mean() < 0.01 and ((m > 0.5) == (ref > 0.5)).mean() > 0.99
    for rec in recs:  # every car's mask lies in its bbox (mapped into the crop), and does not fill it
        s = p3d.load_pascal3d_sample(rec, release, cads, size)
        x0, y0, side = s.crop_box[:3].astype(float)
        b = (rec.bbox - 1 - [x0, y0, x0, y0]) * size / side  # continuous output-pixel coordinates
        rows, cols = np.nonzero(s.mask[0].numpy() > 0)
        assert cols.min() >= math.floor(b[0] - 1) and cols.max() <= math.ceil(b[2] + 1)
        assert rows.min() >= math.floor(b[1] - 1) and rows.max() <= math.ceil(b[3] + 1)
        box_area = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        assert 0.3 * box_area < float(s.mask.sum()) < 0.95 * box_area


def test_cmr_cache_masks_replace_the_cad_silhouette(release, tmp_path):
    cache = tmp_path / "cachedir" / "p3d" / "data"
    cache.mkdir(parents=True)
    stripe = np.zeros((H, W), dtype=np.uint8)
    stripe[100:140, :] = 1
    images = np.zeros((1, 1), dtype=[("rel_path", "O"), ("voc_rec_id", "O"), ("mask", "O"), ("cad_index", "O")])
    images[0, 0] = ("car_imagenet/n02958343_2.JPEG", 1.0, stripe, 2.0)
    savemat(cache / "car_all.mat", {"images": images})
    masks = p3d.read_cmr_masks(cache.parent)
    recs, _ = p3d.read_pascal3d(release, "train")
    cads = p3d.read_cad_models(release)
    s0 = p3d.load_pascal3d_sample(recs[0], release, cads, 32, cmr_masks=masks)
    s1 = p3d.load_pascal3d_sample(recs[1], release, cads, 32, cmr_masks=masks)
    assert s0.mask_source == "cad_projection" and s1.mask_source == "cmr_cache"
    rows = np.nonzero(s1.mask[0].numpy().max(1) > 0.5)[0]
    x0, y0, side = s1.crop_box[:3].astype(float)
    assert rows.min() == pytest.approx((100 - y0) * 32 / side, abs=1.5) and rows.max() == pytest.approx((139 - y0) * 32 / side, abs=1.5)


def load_script():
    spec = importlib.util.spec_from_file_location("prepare_pascal3d", Path(__file__).parents[1] / "data_scripts" / "prepare_pascal3d.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def test_script_builds_the_dataset_format_and_refuses_an_existing_split(release, tmp_path, capsys):
    main = load_script()
    out = tmp_path / "p3d_cars"
    assert main(["--p3d-dir", str(release), "--out", str(out), "--image-size", "32", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "train:      3 cars" in printed and "occluded 1" in printed
    ds = ReconstructionDataset(out, "train")
    assert len(ds) == 3 and not ds.has_gt and ds.image_size == 32 and len(ds.class_names) == 8
    recs, _ = p3d.read_pascal3d(release, "train")
    cads = p3d.read_cad_models(release)
    for i, rec in enumerate(recs):
        item, sample = ds[i], p3d.load_pascal3d_sample(rec, release, cads, 32)
        assert torch.allclose(item["camera"], sample.camera.as_tensor()[0], atol=1e-6)
        assert torch.allclose(item["noisy_camera"], item["camera"])
        assert torch.allclose(item["mask"], sample.mask, atol=1 / 255) and torch.allclose(item["image"], sample.image, atol=1 / 255)
        assert int(item["class_id"]) == -1
    assert list(ds.annotation("source")) == [r.rel_path for r in recs]
    assert list(ds.annotation("cad_index")) == [1, 2, 2] and list(ds.annotation("object_index")) == [1, 1, 2]
    assert list(ds.annotation("mask_source")) == ["cad_projection"] * 3
    assert np.allclose(ds.annotation("azimuth"), [30, 200, 90])
    assert (ds.annotation("perspective_error_px") < 1).all()
    assert len(ReconstructionDataset(out, "val")) == 1
    assert main(["--p3d-dir", str(release), "--out", str(out), "--image-size", "32", "--quiet", "--splits", "val"]) == 2
    assert "--force" in capsys.readouterr().err


def test_missing_files_are_named_with_their_archive(release, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        p3d.read_pascal3d(release / "nope", "train")
    (release / "Image_sets" / "car_imagenet_val.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"Image_sets/car_imagenet_val\.txt is missing .*PASCAL3D\+_release1\.1\.zip"):
        p3d.read_pascal3d(release, "val")
    (release / "Annotations" / "car_imagenet" / "n02958343_2.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"car_imagenet/n02958343_2\.mat is missing .*train split"):
        p3d.read_pascal3d(release, "train")
    recs, _ = p3d.read_pascal3d(release, "train", sources=["pascal"])
    cads = p3d.read_cad_models(release)
    (release / "Images" / "car_pascal" / "2008_000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"Images/car_pascal/2008_000001\.jpg is missing"):
        p3d.load_pascal3d_sample(recs[0], release, cads, 32)
    (release / "CAD" / "car.mat").unlink()
    main = load_script()
    assert main(["--p3d-dir", str(release), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "CAD/car.mat is missing" in err and "PASCAL3D+_release1.1.zip" in err
    with pytest.raises(FileNotFoundError, match=r"car_all\.mat|car_train\.mat"):
        p3d.read_cmr_masks(tmp_path / "no_cache")


def test_corrupt_or_wrong_mat_files_are_refused(release):
    ann = release / "Annotations" / "car_imagenet" / "n02958343_1.mat"
    ann.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 40 + b"garbage")
    with pytest.raises(p3d.Pascal3DFormatError, match=r"cannot read .*n02958343_1\.mat as a MATLAB file.*extract it again"):
        p3d.read_pascal3d(release, "train")
    savemat(ann, {"something_else": np.zeros(3)})
    with pytest.raises(p3d.Pascal3DFormatError, match=r"n02958343_1\.mat has no variable 'record'"):
        p3d.read_pascal3d(release, "train")
    (release / "CAD" / "car.mat").write_bytes(b"\x00\x01not a mat file")
    with pytest.raises(p3d.Pascal3DFormatError, match=r"cannot read .*CAD/car\.mat"):
        p3d.read_cad_models(release)
    cad = np.zeros((1, 1), dtype=[("vertices", "O"), ("faces", "O")])
    cad[0, 0] = (BOX_V, BOX_F + 50.0)
    savemat(release / "CAD" / "car.mat", {"car": cad})
    with pytest.raises(p3d.Pascal3DFormatError, match=r"car\(1\)\.faces must be \(F, 3\) 1-based"):
        p3d.read_cad_models(release)
