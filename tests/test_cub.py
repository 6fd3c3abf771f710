"""CUB reader on a tiny CUB fabricated in the real layout (CMR .mat files written with scipy.io.savemat).

A known 3D point set (the template sphere squashed into a bird-sized ellipsoid) is placed in CMR's
object frame, projected with a CMR-convention SfM camera into a fabricated photo, mask, bbox and
keypoints. After reading, our camera must project the same points onto the same pixels of the crop.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat
from scipy.spatial import Delaunay
from scipy.spatial.transform import Rotation

from meshinv_lite.render import ndc_to_pixel
from meshinv_lite.config import RenderConfig
from meshinv_lite.data import cub
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.render import render_mesh

H, W = 150, 200
CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
TEMPLATE = make_uv_sphere()
POINTS = TEMPLATE.vertices.double().numpy() * np.array([0.3, 0.6, 0.35])  # CMR frame: x left, y tail, z up
POINTS[:, 1] -= 0.25 * np.exp(-((POINTS[:, 1] + 0.6) ** 2) / 0.05)  # a beak-ish bulge towards -y (front)


def project_cmr(scale, trans, rot):
    """CMR's SfM projection, 1-indexed original pixels: (N, 2) and camera-frame depth (N,)."""
    cam = POINTS @ rot.T
    return scale * cam[:, :2] + trans, cam[:, 2]


def fabricate_cub(root, cameras):
    """Write images, text files and CMR .mat annotations for one bird per camera (split 'test')."""
    entries, sfm = [], []
    lines = {"images": [], "labels": [], "boxes": [], "split": []}
    for k, (scale, trans, rot) in enumerate(cameras):
        cls = k % 2
        rel = f"{CLASSES[cls]}/bird_{k:04d}.jpg"
        (root / "images" / CLASSES[cls]).mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(k)
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(root / "images" / rel)
        pix, _ = project_cmr(scale, trans, rot)
        zero = pix - 1  # 0-indexed: pixel centres at integers
        cols, rows = np.meshgrid(np.arange(W), np.arange(H))
        inside = Delaunay(zero).find_simplex(np.stack([cols.ravel(), rows.ravel()], 1)) >= 0
        mask = inside.reshape(H, W).astype(np.uint8)
        ys, xs = np.nonzero(mask)
        bbox = {"x1": float(xs.min() + 1), "y1": float(ys.min() + 1), "x2": float(xs.max() + 1), "y2": float(ys.max() + 1)}
        parts = np.zeros((3, 15))
        idx = np.linspace(0, len(POINTS) - 1, 15).astype(int)
        parts[:2] = pix[idx].T
        parts[2] = 1
        parts[:, 4] = 0  # one invisible keypoint
        entries.append({"rel_path": rel, "bbox": bbox, "mask": mask, "parts": parts, "width": W, "height": H})
        sfm.append({"scale": scale, "trans": trans, "rot": rot})
        lines["images"].append(f"{k + 1} {rel}")
        lines["labels"].append(f"{k + 1} {cls + 1}")
        lines["boxes"].append(f"{k + 1} {bbox['x1'] - 1} {bbox['y1'] - 1} {bbox['x2'] - bbox['x1'] + 1} {bbox['y2'] - bbox['y1'] + 1}")
        lines["split"].append(f"{k + 1} 0")
    (root / "classes.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    (root / "images.txt").write_text("\n".join(lines["images"]) + "\n")
    (root / "image_class_labels.txt").write_text("\n".join(lines["labels"]) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(lines["boxes"]) + "\n")
    (root / "train_test_split.txt").write_text("\n".join(lines["split"]) + "\n")
    (root / "cachedir" / "cub" / "data").mkdir(parents=True)
    (root / "cachedir" / "cub" / "sfm").mkdir(parents=True)
    images = np.empty(len(entries), dtype=object)
    images[:] = entries
    anno = np.empty(len(sfm), dtype=object)
    anno[:] = sfm
    savemat(root / "cachedir" / "cub" / "data" / "test_cub_cleaned.mat", {"images": images})
    savemat(root / "cachedir" / "cub" / "sfm" / "anno_test.mat", {"sfm_anno": anno})


CAMERAS = [
    (70.0, np.array([101.3, 78.6]), Rotation.from_euler("xyz", [100, 20, 35], degrees=True).as_matrix()),
    (55.0, np.array([90.0, 70.0]), Rotation.from_euler("zyx", [-60, 30, -80], degrees=True).as_matrix()),
    (62.0, np.array([125.0, 80.0]), Rotation.from_euler("xyz", [80, -10, 200], degrees=True).as_matrix()),
]


@pytest.fixture
def fake_cub(tmp_path):
    root = tmp_path / "CUB_200_2011"
    fabricate_cub(root, CAMERAS)
    return root


def test_reader_parses_the_layout(fake_cub):
    recs = cub.read_cub(fake_cub, "test")
    assert [r.class_id for r in recs] == [0, 1, 0]
    assert recs[1].class_name == CLASSES[1] and recs[0].rel_path.endswith("bird_0000.jpg")
    assert np.allclose(recs[2].sfm_rot, CAMERAS[2][2]) and recs[0].sfm_scale == 70.0
    assert recs[0].mask.shape == (H, W) and recs[0].parts.shape == (15, 3)
    assert cub.cub_class_names(fake_cub) == CLASSES


@pytest.mark.parametrize("k", range(len(CAMERAS)))
def test_camera_conversion_projects_the_same_points_onto_the_same_pixels(fake_cub, k):
    size = 64
    rec = cub.read_cub(fake_cub, "test")[k]
    sample = cub.load_cub_sample(rec, fake_cub, size)
    ours = torch.from_numpy(cub.cmr_points_to_object(POINTS)).float()
    proj = sample.camera.project(ours)[0]  # normalized coordinates of the crop
    px = ndc_to_pixel(proj, size, size)
    # 1. Keypoints: the reader's crop transform of the annotated pixels vs our camera's projection.
    idx = np.linspace(0, len(POINTS) - 1, 15).astype(int)
    kp = sample.keypoints
    vis = kp[:, 2] > 0
    assert int(vis.sum()) == 14
    kp_px = ndc_to_pixel(kp[vis, :2], size, size)
    err = (kp_px - px[idx][vis]).norm(dim=-1)
    assert float(err.max()) < 0.05, err
    # 2. Independent of any formula: the bbox of the resized crop mask vs the projected points.
    m = sample.mask[0] > 0.5
    rows, cols = torch.nonzero(m, as_tuple=True)
    box_mask = torch.tensor([cols.min(), rows.min(), cols.max(), rows.max()]).float()
    box_proj = torch.stack([px[:, 0].min(), px[:, 1].min(), px[:, 0].max(), px[:, 1].max()])
    assert float((box_mask - box_proj).abs().max()) < 1.5, (box_mask, box_proj)
    # 3. The mesh rendered with our camera covers the same pixels as the fabricated mask.
    out = render_mesh(TEMPLATE, ours[None], sample.camera, torch.ones(1, 3, 8, 8), RenderConfig(image_size=size), soft=False)
    rm = out.mask[0, 0] > 0.5
    iou = float((rm & m).sum() / (rm | m).sum())
    assert iou > 0.93, iou
    # 4. Depth: larger z is farther in the photo too (nearest point is the same).
    _, depth_cmr = project_cmr(*CAMERAS[k])
    z = sample.camera.apply(ours)[0, :, 2]
    assert int(z.argmin()) == int(np.argmin(depth_cmr)) and int(z.argmax()) == int(np.argmax(depth_cmr))
    # The object frame change: CMR's up (+z) is our +y, CMR's tail (+y) is our -z.
    assert np.allclose(cub.cmr_points_to_object(np.array([[0, 0, 1.0], [0, 1.0, 0]])), [[0, 1, 0], [0, 0, -1]])


def test_prepare_round_trip_through_the_dataset_format(fake_cub, tmp_path):
    out = tmp_path / "cub_converted"
    report = cub.build_cub(fake_cub, out, image_size=32, splits=["test"], progress=False)
    assert report["test"]["num_images"] == 3
    ds = ReconstructionDataset(out, "test")
    assert not ds.has_gt and ds.class_names == CLASSES and ds.image_size == 32
    recs = cub.read_cub(fake_cub, "test")
    for i in range(3):
        item, sample = ds[i], cub.load_cub_sample(recs[i], fake_cub, 32)
        assert torch.allclose(item["camera"], sample.camera.as_tensor()[0], atol=1e-6)
        assert torch.allclose(item["noisy_camera"], item["camera"])
        assert torch.allclose(item["image"], sample.image, atol=1 / 255)
        assert torch.allclose(item["mask"], sample.mask, atol=1 / 255)
        assert int(item["class_id"]) == recs[i].class_id
    assert list(ds.annotation("source")) == [r.rel_path for r in recs]
    with pytest.raises(FileExistsError, match="--force"):
        cub.build_cub(fake_cub, out, image_size=32, splits=["test"], progress=False)


def test_clear_errors_on_missing_pieces(fake_cub):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cub.read_cub(fake_cub / "nope", "test")
    with pytest.raises(FileNotFoundError, match="train_cub_cleaned.mat"):
        cub.read_cub(fake_cub, "train")
    rec = cub.read_cub(fake_cub, "test")[0]
    (fake_cub / "images" / rec.rel_path).unlink()
    with pytest.raises(FileNotFoundError, match="bird_0000.jpg"):
        cub.load_cub_sample(rec, fake_cub, 32)
    rec1 = cub.read_cub(fake_cub, "test")[1]
    (fake_cub / "images" / rec1.rel_path).write_bytes(b"not a jpeg")
    with pytest.raises(cub.CubFormatError, match="bird_0001.jpg"):
        cub.load_cub_sample(rec1, fake_cub, 32)
    rec2 = cub.read_cub(fake_cub, "test")[2]
    rec2.mask = rec2.mask[:-3]
    with pytest.raises(cub.CubFormatError, match=r"is 200x147 but .*bird_0002.jpg is 200x150"):
        cub.load_cub_sample(rec2, fake_cub, 32)
    (fake_cub / "classes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="classes.txt"):
        cub.read_cub(fake_cub, "test")
