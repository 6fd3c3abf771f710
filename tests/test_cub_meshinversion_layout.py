"""MeshInversion's ``datasets/cub`` layout, fabricated in tmp_path exactly as its README has it downloaded.

Four birds (a known 3D point set, CMR object frame) are projected with known CMR SfM cameras into photos,
.mat masks (the projected hull), bboxes and keypoints (CMR's struct layout, written by scipy.io.savemat).
``cmr_pred_cam.pth`` holds, per image, a camera computed with MeshInversion's own normalization (written
here from its documented arithmetic: 5 % padding, square crop, ``2 p / size - 1``) and an overlay IoU on
both sides of 0.7. The predicted masks differ from the .mat masks by a stripe of low confidence.

Tolerances: the conversions are exact affine/rotation maps, so positions agree up to float32 rounding of
stored cameras (values ~1, relative error ~1e-7, i.e. ~1e-5 px in a 40-px crop); 1e-3 px is used. The
corner-convention offset being checked is 0.5 * S / side px (~0.2-0.3 px here), 200x larger.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat
from scipy.ndimage import binary_dilation, binary_erosion
from scipy.spatial import Delaunay
from scipy.spatial.transform import Rotation

from meshinv_lite.data import ReconstructionDataset, cub
from meshinv_lite.data import cub_meshinversion as mi
from meshinv_lite.render import ndc_to_pixel

H, W = 120, 160
S = 40  # output crop size used for builds
CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
_fib = np.arange(300) + 0.5
_phi, _theta = np.pi * (1 + 5 ** 0.5) * _fib, np.arccos(1 - 2 * _fib / 300)
POINTS = np.stack([np.sin(_theta) * np.cos(_phi), np.sin(_theta) * np.sin(_phi), np.cos(_theta)], 1) * [0.3, 0.6, 0.35]
POINTS_OURS = torch.from_numpy(cub.cmr_points_to_object(POINTS)).float()


def rot(*euler):
    return Rotation.from_euler("xyz", euler, degrees=True).as_matrix()


SFM = [  # (scale, trans (1-indexed px), rot): CMR's kp = scale * rot[:2] @ X + trans
    (50.0, np.array([81.3, 60.6]), rot(100, 20, 35)),
    (45.0, np.array([70.0, 66.0]), rot(-80, 30, -60)),
    (60.0, np.array([90.0, 8.0]), rot(80, -10, 200)),  # cut by the top edge: the crop leaves the photo
    (52.0, np.array([85.0, 58.0]), rot(95, 5, -20)),
]
PRED_SFM_0 = (55.0, SFM[0][1] + [3.0, -2.0], rot(0, 0, 10) @ SFM[0][2])  # image 0's CMR prediction: a perturbed pose
IOU = [0.85, 0.5, 0.7, 0.95]  # pred / sfm / sfm (strict >) / pred
EXPECTED_SOURCE = ["cmr_pred_cam", "sfm", "sfm", "cmr_pred_cam"]


def pixels(scale, trans, rotation):
    """1-indexed original pixel positions (N, 2) of POINTS under a CMR SfM camera."""
    return scale * (POINTS @ rotation.T)[:, :2] + trans


def mi_crop(bbox1):
    """MeshInversion's test crop (x0, y0, side), 0-indexed, from a 1-indexed bbox (facts section d)."""
    b = np.asarray(bbox1, float) - 1
    w, h = b[2] - b[0] + 1, b[3] - b[1] + 1
    sq = [int(round(c)) for c in (b[0] - 0.05 * w, b[1] - 0.05 * h, b[2] + 0.05 * w, b[3] + 0.05 * h)]
    bw, bh = sq[2] - sq[0] + 1, sq[3] - sq[1] + 1
    m = max(bw, bh)
    return sq[0] - int(round((m - bw) / 2)), sq[1] - int(round((m - bh) / 2)), m


def mi_normalize(scale, trans, rotation, bbox1, size=256):
    """An SfM camera normalized as MeshInversion's loader does: crop, rescale to ``size``, 2 p / size - 1."""
    x0, y0, side = mi_crop(bbox1)
    f = size / side
    s = scale * f * (1.0 / size + 1.0 / size)
    t = 2.0 * ((np.asarray(trans) - [x0, y0]) * f) / size - 1
    x, y, z, w = Rotation.from_matrix(rotation).as_quat()
    return np.array([s, t[0], t[1], w, x, y, z])


def exact_crop_pixels(scale, trans, rotation, bbox1, size):
    """Where POINTS fall in the resized crop, pixel centres at integers (column, row)."""
    x0, y0, side = mi_crop(bbox1)
    p0 = pixels(scale, trans, rotation) - 1  # 0-indexed original pixel centres
    return (p0 - [x0, y0] + 0.5) * size / side - 0.5


def fabricate(root):
    """datasets/cub in MeshInversion's layout; returns per-image dicts (bbox, hull mask, stripe)."""
    cub_dir, cache = root / "CUB_200_2011", root / "cache"
    for d in (cache / "data", cache / "sfm", root / "predicted_mask"):
        d.mkdir(parents=True)
    entries, sfm, info, lines, preds = [], [], [], {"img": [], "lab": []}, {}
    cols, rows = np.meshgrid(np.arange(W), np.arange(H))
    grid = np.stack([cols.ravel(), rows.ravel()], 1)
    for k, (scale, trans, rotation) in enumerate(SFM):
        cls = k % 2
        rel = f"{CLASSES[cls]}/bird_{k:04d}.jpg"
        (cub_dir / "images" / CLASSES[cls]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(cub_dir / "images" / rel)
        pix = pixels(scale, trans, rotation)
        hull = (Delaunay(pix - 1).find_simplex(grid) >= 0).reshape(H, W)
        ys, xs = np.nonzero(hull)
        bbox = np.array([xs.min(), ys.min(), xs.max(), ys.max()], float) + 1
        xc, bw = (bbox[0] + bbox[2]) / 2 - 1, bbox[2] - bbox[0]
        stripe = (cols >= xc) & (cols < xc + 0.3 * bw)
        parts = np.zeros((3, 15))
        parts[:2] = pix[np.linspace(0, len(POINTS) - 1, 15).astype(int)].T
        parts[2] = 1
        entries.append({"rel_path": rel, "bbox": dict(zip(("x1", "y1", "x2", "y2"), bbox.tolist())),
                        "mask": hull.astype(np.uint8), "parts": parts})
        sfm.append({"scale": scale, "trans": trans, "rot": rotation})
        lines["img"].append(f"{k + 1} {rel}")
        lines["lab"].append(f"{k + 1} {cls + 1}")
        # predicted masks: the hull with a low-confidence stripe, in four storage types
        conf = np.where(stripe, 0.9, 1.0) * hull
        pm = [conf.astype(np.float32), hull & ~stripe, np.round(conf * 255).astype(np.uint8), conf][k]
        np.save(root / "predicted_mask" / f"{k}.npy", pm)
        cam = mi_normalize(*(PRED_SFM_0 if k == 0 else SFM[k]), bbox) if k != 1 else np.array([0.9, 0.3, -0.4, 0, 1, 0, 0.0])
        iou = np.float64(IOU[k]) if k == 3 else IOU[k]  # numpy scalars load without trust_pickle too
        preds[f"bird_{k:04d}"] = {"pred_cam": torch.tensor(cam, dtype=torch.float32), "pred_pose_overlay_iou": iou,
                                  "pred_shape": torch.zeros(5, 3)}
        info.append({"bbox": bbox, "hull": hull, "stripe": stripe})
    (cub_dir / "classes.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    (cub_dir / "images.txt").write_text("\n".join(lines["img"]) + "\n")
    (cub_dir / "image_class_labels.txt").write_text("\n".join(lines["lab"]) + "\n")
    images = np.empty(len(entries), dtype=object)
    images[:] = entries
    anno = np.empty(len(sfm), dtype=object)
    anno[:] = sfm
    savemat(cache / "data" / "test_cub_cleaned.mat", {"images": images})
    savemat(cache / "sfm" / "anno_test.mat", {"sfm_anno": anno})
    torch.save(preds, cache / "cmr_pred_cam.pth")
    return info


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "datasets" / "cub"
    return root, fabricate(root)


def project_px(camera, size):
    return ndc_to_pixel(camera.project(POINTS_OURS)[0].double(), size, size).numpy()


# --------------------------------------------------------------------------------------------------


def test_reader_picks_the_authors_camera_and_mask(layout):
    root, _ = layout
    assert cub.detect_cub_layout(root) == "meshinversion" and cub.detect_cub_layout(root / "CUB_200_2011") == "cmr"
    assert cub.detect_cub_layout(root / "cache") is None
    recs = mi.read_meshinversion_cub(root, "test")
    assert [r.camera_source for r in recs] == EXPECTED_SOURCE
    assert [r.index for r in recs] == [0, 1, 2, 3] and [r.class_id for r in recs] == [0, 1, 0, 1]
    assert np.allclose([r.pred_pose_overlay_iou for r in recs], IOU)
    assert all(r.mask_source == "predicted_mask (PointRend)" for r in recs)
    assert recs[2].predicted_mask_path.name == "2.npy"
    assert np.allclose(recs[1].sfm_rot, SFM[1][2]) and recs[3].sfm_scale == 52.0
    # the used masks: the stripe holds 0.9 (float and uint8 files), 0 (bool), 1 in the .mat
    for r, (lo, hi) in zip(recs, [(0.9, 0.9), (0.0, 0.0), (0.9, 0.91), (0.9, 0.9)]):
        m = r.used_mask()
        stripe_vals = m[r.mask.astype(bool) & layout[1][r.index]["stripe"]]
        assert lo - 1e-6 <= stripe_vals.min() and stripe_vals.max() <= hi + 1e-6
        assert m.max() == 1.0
    # opting out: SfM everywhere, .mat masks
    recs = mi.read_meshinversion_cub(root, "test", mask_source="cmr_mat", use_pred_pose=False)
    assert [r.camera_source for r in recs] == ["sfm"] * 4 and {r.mask_source for r in recs} == {"cmr_mat"}
    assert all(np.isnan(r.pred_pose_overlay_iou) for r in recs)
    # a custom threshold moves image 0 (IoU 0.85) to SfM
    assert [r.camera_source for r in mi.read_meshinversion_cub(root, pred_pose_iou_threshold=0.9)] == ["sfm", "sfm", "sfm", "cmr_pred_cam"]


def test_pred_cam_conversion_projects_known_points(layout):
    root, info = layout
    for k in (0, 3):
        bbox = info[k]["bbox"]
        x0, y0, side = mi_crop(bbox)
        assert list(cub.square_crop_box(bbox)) == [x0, y0, side, side]  # our crop is MeshInversion's
        sfm_k = PRED_SFM_0 if k == 0 else SFM[k]
        pred = mi_normalize(*sfm_k, bbox)
        truth = exact_crop_pixels(*sfm_k, bbox, S)
        cam = cub.cmr_normalized_to_camera(pred, side)  # corner offset removed
        assert np.abs(project_px(cam, S) - truth).max() < 1e-3
        # this is exactly cmr_to_camera on the SfM camera it was normalized from
        ref = cub.cmr_to_camera(*sfm_k, [x0, y0, side, side])
        assert torch.allclose(cam.as_tensor()[:, :3], ref.as_tensor()[:, :3], atol=1e-6)
        assert abs(float((cam.rotation * ref.rotation).sum().abs()) - 1) < 1e-6
        # with the offset kept: half an original pixel right and down, in output pixels
        raw = cub.cmr_normalized_to_camera(pred, side, corner_offset=False)
        shift = project_px(raw, S) - truth
        assert np.abs(shift - 0.5 * S / side).max() < 1e-3, (shift[:3], 0.5 * S / side)
        # round trip back to CMR's normalization
        back = cub.camera_to_cmr_normalized(cam, side)[0]
        assert np.allclose(back[:3], pred[:3], atol=1e-6) and abs(abs(back[3:] @ pred[3:]) - 1) < 1e-6


def test_pred_cam_renders_like_meshinversion(layout):
    """corner_offset=False reproduces MeshInversion's render arithmetic: qrot(q, s X) + t, * [1, -1, -1],
    DIB-R pixel centres col = (x + 1) S / 2 - 0.5, row = (1 - y) S / 2 - 0.5 (facts section c)."""
    cam7 = np.array([0.83, 0.12, -0.2, *Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_quat()[[3, 0, 1, 2]]])
    w, u = cam7[3], cam7[4:]
    v = cam7[0] * POINTS
    uv = np.cross(u, v)
    vc = v + 2 * (w * uv + np.cross(u, uv)) + [cam7[1], cam7[2], 0]
    vc = vc * [1, -1, -1]
    theirs = np.stack([(vc[:, 0] + 1) * S / 2 - 0.5, (1 - vc[:, 1]) * S / 2 - 0.5], 1)
    ours = cub.cmr_normalized_to_camera(cam7, corner_offset=False)
    assert np.abs(project_px(ours, S) - theirs).max() < 1e-3
    # depth: MeshInversion's DIB-R keeps larger (flipped) z as nearer; ours calls larger z farther
    z = ours.apply(POINTS_OURS)[0, :, 2].numpy()
    assert int(np.argmin(z)) == int(np.argmax(vc[:, 2]))
    with pytest.raises(ValueError, match="crop_side"):
        cub.cmr_normalized_to_camera(cam7)
    with pytest.raises(cub.CubFormatError, match="not a rotation"):
        cub.cmr_normalized_to_camera([0.8, 0, 0, 2, 0, 0, 0], 100)


def test_build_stores_the_authors_starting_camera_and_predicted_mask(layout, tmp_path):
    root, info = layout
    out = tmp_path / "converted"
    report = cub.build_cub(root, out, image_size=S, progress=False)  # layout detected, test split
    assert report["test"]["num_images"] == 4 and report["test"]["mask_source"] == "predicted_mask (PointRend)"
    assert report["test"]["camera_sources"] == {"cmr_pred_cam": 2, "sfm": 2}
    ds = ReconstructionDataset(out, "test")
    assert ds.class_names == CLASSES and ds.image_size == S and not ds.has_gt
    assert list(ds.annotation("noisy_camera_source")) == EXPECTED_SOURCE
    assert list(ds.annotation("mask_source")) == ["predicted_mask (PointRend)"] * 4
    assert list(ds.annotation("mat_index")) == [0, 1, 2, 3]
    assert np.allclose(ds.annotation("pred_pose_overlay_iou"), IOU)
    assert ds.meta["layout"] == "meshinversion" and ds.meta["camera_sources"]["sfm"] == 2
    cams, noisy = ds.cameras(), ds.cameras(noisy=True)
    for k in range(4):
        bbox = info[k]["bbox"]
        truth_sfm = exact_crop_pixels(*SFM[k], bbox, S)
        assert np.abs(project_px(cams[k], S) - truth_sfm).max() < 1e-3
        truth_start = exact_crop_pixels(*(PRED_SFM_0 if k == 0 else SFM[k]), bbox, S)
        assert np.abs(project_px(noisy[k], S) - truth_start).max() < 1e-3
    assert np.abs(project_px(noisy[0], S) - project_px(cams[0], S)).max() > 2  # the prediction was used
    assert torch.allclose(noisy[1].as_tensor(), cams[1].as_tensor())  # IoU 0.5: SfM, not the bogus pred_cam
    # masks: the low-confidence stripe is gone (threshold > 0.95), the rest of the bird is there
    built = torch.stack([ds[k]["mask"][0] for k in range(4)]).numpy()
    checks = _mask_regions(info, S)
    for k in range(4):
        inside, stripe, outside = checks[k]
        assert stripe.sum() >= 4 and inside.sum() >= 20
        assert built[k][stripe].max() == 0 and built[k][inside].min() == 1 and built[k][outside].max() == 0
        assert set(np.unique(built[k])) <= {0.0, 1.0}
    # image 2's crop leaves the photo at the top: white image, empty mask there
    x0, y0, side = mi_crop(info[2]["bbox"])
    assert y0 < -3
    top = int(np.floor((-1 - y0 + 0.5) * S / side - 0.5))  # output rows sampling only rows < 0 of the photo
    img2 = ds[2]["image"].numpy()
    assert top >= 1 and img2[:, :top].min() == 1.0 and built[2][:top].max() == 0
    # the .mat masks on request: the stripe is back, recorded as cmr_mat
    out2 = tmp_path / "converted_mat"
    cub.build_cub(root, out2, image_size=S, progress=False, mask_source="cmr_mat")
    ds2 = ReconstructionDataset(out2, "test")
    assert list(ds2.annotation("mask_source")) == ["cmr_mat"] * 4
    for k in range(4):
        inside, stripe, _ = checks[k]
        assert ds2[k]["mask"][0].numpy()[stripe].min() == 1
    with pytest.raises(FileExistsError, match="--force"):
        cub.build_cub(root, out, image_size=S, progress=False)


def _mask_regions(info, size):
    """Per image, output pixels certainly inside the bird off the stripe, inside the stripe, and outside."""
    regions = []
    for d in info:
        x0, y0, side = mi_crop(d["bbox"])
        c = np.round(x0 + (np.arange(size) + 0.5) * side / size - 0.5).astype(int)
        r = np.round(y0 + (np.arange(size) + 0.5) * side / size - 0.5).astype(int)
        rr, cc = np.meshgrid(r, c, indexing="ij")
        ok = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
        rr, cc = rr.clip(0, H - 1), cc.clip(0, W - 1)
        hull, stripe = d["hull"], d["stripe"]
        in_body = binary_erosion(hull & ~stripe, iterations=3)[rr, cc] & ok
        in_stripe = binary_erosion(hull & stripe, iterations=3)[rr, cc] & ok
        outside = ~binary_dilation(hull, iterations=3)[rr, cc] | ~ok
        regions.append((in_body, in_stripe, outside))
    return regions


MISSING = [
    ("predicted_mask", r"predicted_mask is missing: download MeshInversion's 'predicted_mask' archive.*mask_source='cmr_mat'"),
    ("predicted_mask/2.npy", r"predicted_mask/2\.npy is missing: download MeshInversion's 'predicted_mask' archive"),
    ("cache/cmr_pred_cam.pth", r"cache/cmr_pred_cam\.pth is missing: download MeshInversion's 'cache' archive"),
    ("cache/sfm/anno_test.mat", r"cache/sfm/anno_test\.mat is missing: download MeshInversion's 'cache' archive"),
    ("cache/data/test_cub_cleaned.mat", r"cache/data/test_cub_cleaned\.mat is missing: download MeshInversion's 'cache'"),
    ("CUB_200_2011/image_class_labels.txt", r"CUB_200_2011/image_class_labels\.txt is missing: download the CUB_200_2011 archive"),
    ("CUB_200_2011/classes.txt", r"CUB_200_2011/classes\.txt is missing: download the CUB_200_2011 archive"),
    ("CUB_200_2011/images/002.Laysan_Albatross/bird_0001.jpg", r"images/002\.Laysan_Albatross/bird_0001\.jpg is missing: download the CUB_200_2011"),
]


@pytest.mark.parametrize("rel,message", MISSING, ids=[m[0] for m in MISSING])
def test_each_missing_file_is_named(layout, tmp_path, rel, message):
    root, _ = layout
    path = root / rel
    if path.is_dir():
        for p in path.iterdir():
            p.unlink()
        path.rmdir()
    else:
        path.unlink()
    with pytest.raises(FileNotFoundError, match=message):
        cub.build_cub(root, tmp_path / "out", image_size=S, progress=False)


def test_refusals_and_opt_ins(layout, tmp_path):
    root, _ = layout
    # a pred_cam entry missing for an image: named with its key and the file
    preds = mi.read_cmr_pred_cams(root / "cache" / "cmr_pred_cam.pth")
    del preds["bird_0002"]
    torch.save(preds, root / "cache" / "cmr_pred_cam.pth")
    with pytest.raises(cub.CubFormatError, match=r"cmr_pred_cam\.pth has no entry 'bird_0002'.*bird_0002\.jpg"):
        mi.read_meshinversion_cub(root)
    # a pred_cam file holding arbitrary objects is refused unless trusted
    preds["bird_0002"] = {"pred_cam": torch.zeros(7), "pred_pose_overlay_iou": 0.1, "note": PurePosixPath("x")}
    torch.save(preds, root / "cache" / "cmr_pred_cam.pth")
    with pytest.raises(mi.UntrustedPickleError, match=r"cmr_pred_cam\.pth holds more than tensors.*trust_pickle=True"):
        mi.read_meshinversion_cub(root)
    assert mi.read_meshinversion_cub(root, trust_pickle=True)[2].camera_source == "sfm"
    # a pickled object-array mask is refused unless trusted
    np.save(root / "predicted_mask" / "1.npy", np.array({"m": 1}, dtype=object), allow_pickle=True)
    with pytest.raises(mi.UntrustedPickleError, match=r"1\.npy is a pickled object array.*trust_pickle=True"):
        mi.read_predicted_mask(root / "predicted_mask" / "1.npy")
    # predicted masks of another size (another split's) are refused at read time
    np.save(root / "predicted_mask" / "1.npy", np.zeros((H, W + 1), np.float32))
    with pytest.raises(cub.CubFormatError, match=r"1\.npy has shape \(120, 161\).*do not belong"):
        mi.read_meshinversion_cub(root, use_pred_pose=False)
    # predicted masks exist for the test split only
    with pytest.raises(ValueError, match="test_cub_cleaned.mat"):
        mi.read_meshinversion_cub(root, "val", mask_source="predicted")
    # without predicted masks: refusal, unless the .mat masks are chosen explicitly
    for p in (root / "predicted_mask").iterdir():
        p.unlink()
    (root / "predicted_mask").rmdir()
    with pytest.raises(FileNotFoundError, match="predicted_mask"):
        mi.read_meshinversion_cub(root, use_pred_pose=False)
    recs = mi.read_meshinversion_cub(root, mask_source="cmr_mat", use_pred_pose=False)
    assert {r.mask_source for r in recs} == {"cmr_mat"}
    # the CMR reader points at the right function when given this layout
    with pytest.raises(cub.CubFormatError, match="read_meshinversion_cub"):
        cub.read_cub(root, "test")


def test_fid_statistics_are_symmetrised(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8))
    full = np.cov(feats, rowvar=False)
    path = tmp_path / "stats.npz"
    np.savez(path, stats_m=feats.mean(0).astype(np.float32), stats_s=np.tril(full).astype(np.float32),
             num_images=40, resolution=299)
    mu, sigma = mi.read_fid_stats(path, dim=8)
    assert np.array_equal(sigma, sigma.T) and np.allclose(sigma, full, rtol=1e-5, atol=1e-5)
    assert np.allclose(mu, feats.mean(0), atol=1e-5) and sigma.dtype == np.float64
    assert not np.allclose(np.tril(full), full)  # the file really held a triangle
    with pytest.raises(cub.CubFormatError, match=re.escape(str(path)) + r": 'stats_m' has shape \(8,\), expected \(2048,\)"):
        mi.read_fid_stats(path)
    np.savez(path, stats_m=np.zeros(8), stats_s=np.zeros((8, 7)))
    with pytest.raises(cub.CubFormatError, match=r"'stats_s' has shape \(8, 7\)"):
        mi.read_fid_stats(path, dim=None)
    np.savez(path, stats_m=np.zeros(8))
    with pytest.raises(cub.CubFormatError, match=re.escape(str(path)) + r" has no array 'stats_s'"):
        mi.read_fid_stats(path, dim=8)
    np.savez(path, stats_m=np.zeros(8), stats_s=full + np.triu(np.ones((8, 8)), 1))
    with pytest.raises(cub.CubFormatError, match="neither lower-triangular"):
        mi.read_fid_stats(path, dim=8)
    # the real file's name and size, found from datasets/cub
    root = tmp_path / "cub"
    (root / "cache").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"precomputed_fid_299x299_testval\.npz is missing: download MeshInversion's 'cache'"):
        mi.read_fid_stats(root)
    d = 2048
    u = rng.normal(size=d).astype(np.float32)
    big = (np.outer(u, u) + np.diag(np.arange(1, d + 1))).astype(np.float32)
    np.savez(root / "cache" / mi.FID_STATS_NAME, stats_m=u, stats_s=np.tril(big), num_images=10, resolution=299)
    mu, sigma = mi.read_fid_stats(root)
    assert mu.shape == (d,) and np.array_equal(sigma, big.astype(np.float64))


def test_pseudogt_needs_explicit_trust(tmp_path):
    path = tmp_path / "000001.npz"
    data = {"mesh": torch.randn(3, 32, 32), "texture": torch.rand(3, 16, 16).half() * 2 - 1,
            "texture_alpha": torch.ones(1, 16, 16).half(), "image": torch.zeros(3, 8, 8).half()}
    np.savez(path, data=np.array(data, dtype=object))
    with pytest.raises(mi.UntrustedPickleError, match="trust_pickle=True"):
        mi.read_pseudogt(path)
    got = mi.read_pseudogt(path, trust_pickle=True)
    assert torch.equal(got["mesh"], data["mesh"]) and got["texture"].dtype == torch.float32
    with pytest.raises(FileNotFoundError, match="'PseudoGT' archive"):
        mi.read_pseudogt(tmp_path / "missing.npz", trust_pickle=True)
