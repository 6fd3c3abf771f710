"""The on-disk format: round trip through write_split / ReconstructionDataset, and clear errors on bad input."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from meshinv_lite.data import dataset as fmt
from meshinv_lite.data import synthbirds as sb
from meshinv_lite.data.dataset import DatasetFormatError
from meshinv_lite.data import ReconstructionDataset, read_split, write_split

N, S = 5, 16


def fabricate(root, split="train", gt=True):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(N, 3, S, S, generator=g)
    masks = (torch.rand(N, 1, S, S, generator=g) > 0.5).float()
    cam = torch.cat([torch.full((N, 1), 0.8), torch.zeros(N, 2), torch.tensor([[1.0, 0, 0, 0]]).expand(N, 4)], 1)
    ann = {"camera": cam, "noisy_camera": cam + 0.01, "class_id": torch.arange(N) % 3, "occluded": torch.zeros(N, dtype=torch.bool)}
    if gt:
        ann["deform_map"] = torch.randn(N, 3, 4, 4, generator=g)
        ann["texture_map"] = torch.randint(0, 256, (N, 3, 8, 8), generator=g, dtype=torch.uint8)
    meta = {"image_size": S, "class_names": ["a", "b", "c"]}
    write_split(root, split, images, masks, ann, meta)
    return images, masks, ann


def test_round_trip(tmp_path):
    images, masks, ann = fabricate(tmp_path)
    ds = ReconstructionDataset(tmp_path, "train")
    assert len(ds) == N and ds.image_size == S and ds.class_names == ["a", "b", "c"] and ds.has_gt
    for i in range(N):
        it = ds[i]
        assert torch.allclose(it["image"], images[i], atol=0.5 / 255 + 1e-6)
        assert torch.equal(it["mask"], masks[i])
        assert torch.allclose(it["camera"], ann["camera"][i]) and torch.allclose(it["noisy_camera"], ann["noisy_camera"][i])
        assert int(it["class_id"]) == int(ann["class_id"][i])
        assert torch.equal(it["deform_map"], ann["deform_map"][i])
        assert torch.allclose(it["texture_map"] * 255, ann["texture_map"][i].float())
    assert ds.cameras().as_tensor().shape == (N, 7)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, S, S)
    no_gt = ReconstructionDataset(tmp_path, "train", load_gt=False)
    assert "deform_map" not in no_gt[0]
    assert (tmp_path / "train" / "meta.json").exists() and not list(tmp_path.glob(".partial-*"))


def test_format_documents_every_stored_array(tmp_path):
    sb.build_synthbirds(tmp_path, sb.SynthBirdsConfig.for_profile("quick", sizes={"val": 2}), splits=["val"], progress=False)
    stored = set(read_split(tmp_path, "val").annotations)
    documented = set(re.findall(r"^\s+(\w+)\s+\(N", fmt.FORMAT, flags=re.M)) | {"azimuth", "elevation"}
    assert stored <= documented, stored - documented
    assert set(fmt.REQUIRED_KEYS) <= stored


def test_missing_split_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_split(tmp_path / "nope", "train")
    fabricate(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"split 'val' not found.*\['train'\]"):
        ReconstructionDataset(tmp_path, "val")


def test_missing_meta_means_incomplete(tmp_path):
    fabricate(tmp_path)
    (tmp_path / "train" / "meta.json").unlink()
    with pytest.raises(DatasetFormatError, match=r"meta\.json is missing.*incomplete"):
        ReconstructionDataset(tmp_path, "train")


def test_missing_or_corrupt_annotations(tmp_path):
    fabricate(tmp_path)
    path = tmp_path / "train" / "annotations.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DatasetFormatError, match=re.escape(str(path))):
        ReconstructionDataset(tmp_path, "train")
    path.unlink()
    with pytest.raises(FileNotFoundError, match="annotations.npz"):
        ReconstructionDataset(tmp_path, "train")


def test_missing_key_and_row_mismatch(tmp_path):
    fabricate(tmp_path)
    path = tmp_path / "train" / "annotations.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(path, **{k: v for k, v in arrays.items() if k != "camera"})
    with pytest.raises(DatasetFormatError, match=r"lacks the arrays \['camera'\]"):
        ReconstructionDataset(tmp_path, "train")
    arrays["class_id"] = arrays["class_id"][:-1]
    np.savez(path, **arrays)
    with pytest.raises(DatasetFormatError, match="class_id"):
        ReconstructionDataset(tmp_path, "train")


def test_fewer_images_than_annotations_names_the_missing_file(tmp_path):
    fabricate(tmp_path)
    (tmp_path / "train" / "images" / "000003.png").unlink()
    with pytest.raises(DatasetFormatError, match=r"annotates 5 images but .*images holds 4 PNGs; missing .*000003\.png"):
        ReconstructionDataset(tmp_path, "train")
    fabricate(tmp_path, "val")
    (tmp_path / "val" / "masks" / "000000.png").unlink()
    with pytest.raises(DatasetFormatError, match=r"masks/000000\.png"):
        ReconstructionDataset(tmp_path, "val")


def test_unreadable_png_names_the_file(tmp_path):
    fabricate(tmp_path)
    bad = tmp_path / "train" / "images" / "000002.png"
    bad.write_bytes(b"\x89PNG garbage")
    ds = ReconstructionDataset(tmp_path, "train")
    ds[0]
    with pytest.raises(DatasetFormatError, match=re.escape(str(bad))):
        ds[2]
    with pytest.raises(DatasetFormatError, match="000002"):
        ds.validate()


def test_mask_of_the_wrong_size_names_the_file(tmp_path):
    fabricate(tmp_path)
    bad = tmp_path / "train" / "masks" / "000001.png"
    Image.fromarray(np.zeros((S + 4, S + 4), dtype=np.uint8)).save(bad)
    ds = ReconstructionDataset(tmp_path, "train")
    with pytest.raises(DatasetFormatError, match=re.escape(str(bad)) + r" is 20x20 but its image is 16x16"):
        ds[1]
    img = tmp_path / "train" / "images" / "000004.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(img)
    with pytest.raises(DatasetFormatError, match=re.escape(str(img))):
        ds[4]


def test_partial_split_is_refused_with_a_hint(tmp_path):
    fabricate(tmp_path)
    shutil.move(tmp_path / "train", tmp_path / ".partial-train")
    with pytest.raises(FileNotFoundError, match="interrupted build"):
        ReconstructionDataset(tmp_path, "train")


@pytest.mark.parametrize("key, value", [("camera", np.nan), ("noisy_camera", np.inf)])
def test_non_finite_cameras_are_found_when_the_dataset_loads(tmp_path, key, value):
    fabricate(tmp_path)
    path = tmp_path / "train" / "annotations.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = arrays[key].copy()
    arrays[key][3, 1] = value
    np.savez(path, **arrays)
    with pytest.raises(DatasetFormatError, match=rf"annotations.npz: '{key}' of image 3 \({arrays['names'][3]}\) holds NaN"):
        ReconstructionDataset(tmp_path, "train")
