"""Reading a learner's own photo: formats, masks, framing, and the messages bad input gets."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from meshinv_lite.photo import PhotoError, crop_to_square, load_photo


def _bird_mask(h=120, w=160, box=(30, 40, 90, 130)):
    m = np.zeros((h, w), np.uint8)
    t, l, b, r = box
    m[t:b, l:r] = 255
    return m


def _rgb(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgba_png_needs_no_mask(tmp_path):
    rgba = np.dstack([_rgb(), _bird_mask()])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    p = load_photo(tmp_path / "cut.png")
    assert p.image.shape == (3, 120, 160) and p.mask.shape == (1, 120, 160)
    assert float(p.mask.sum()) == 60 * 90 and any("alpha" in n for n in p.notes)
    assert torch.allclose(p.image[:, 0, 0], torch.tensor(_rgb()[0, 0] / 255.0, dtype=torch.float32), atol=1e-6)


def test_no_mask_and_no_alpha_says_what_to_do(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "photo.png")
    with pytest.raises(PhotoError, match="no alpha channel and no mask.*--mask"):
        load_photo(tmp_path / "photo.png")


def test_mask_of_another_size_is_resized_with_a_warning(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "photo.png")
    Image.fromarray(_bird_mask(60, 80, (15, 20, 45, 65))).save(tmp_path / "mask.png")
    with pytest.warns(UserWarning, match="differ in size"):
        p = load_photo(tmp_path / "photo.png", tmp_path / "mask.png")
    assert p.mask.shape == (1, 120, 160)
    rows = torch.nonzero(p.mask[0].any(1)).squeeze(1)
    assert abs(int(rows[0]) - 30) <= 1 and abs(int(rows[-1]) - 89) <= 1


@pytest.mark.parametrize("kind, message", [
    ("empty", "is empty"),
    ("full", "covers"),
    ("ring", "touches all four borders"),
])
def test_masks_that_are_no_silhouette_are_refused(tmp_path, kind, message):
    Image.fromarray(_rgb()).save(tmp_path / "photo.png")
    m = np.zeros((120, 160), np.uint8)
    if kind == "full":
        m[:] = 255
    elif kind == "ring":  # an inverted mask: background white, the bird black
        m[:] = 255
        m[30:90, 40:130] = 0
    Image.fromarray(m).save(tmp_path / "mask.png")
    with pytest.raises(PhotoError, match=message):
        load_photo(tmp_path / "photo.png", tmp_path / "mask.png")


def test_a_bird_cut_off_at_two_borders_only_warns(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "photo.png")
    Image.fromarray(_bird_mask(box=(0, 0, 60, 80))).save(tmp_path / "mask.png")
    with pytest.warns(UserWarning, match="touches 2 borders"):
        load_photo(tmp_path / "photo.png", tmp_path / "mask.png")


def test_greyscale_cmyk_and_16_bit_images(tmp_path):
    Image.fromarray(_bird_mask()).save(tmp_path / "mask.png")
    grey = _rgb()[..., 0]
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    p = load_photo(tmp_path / "grey.png", tmp_path / "mask.png")
    assert torch.equal(p.image[0], p.image[1]) and any("greyscale" in n for n in p.notes)
    assert abs(float(p.image[0, 5, 7]) - grey[5, 7] / 255) < 1e-6

    Image.fromarray(_rgb()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    p = load_photo(tmp_path / "cmyk.jpg", tmp_path / "mask.png")
    assert p.image.shape == (3, 120, 160) and any("CMYK" in n for n in p.notes)

    deep = np.full((120, 160), 32768, np.uint16)
    deep[0, 0] = 65535
    Image.fromarray(deep).save(tmp_path / "deep.png")
    p = load_photo(tmp_path / "deep.png", tmp_path / "mask.png")
    assert abs(float(p.image[0, 5, 5]) - 32768 / 65535) < 1e-4 and float(p.image[0, 0, 0]) == 1.0
    assert any("16-bit" in n for n in p.notes)


def test_not_an_image_unreadable_paths_and_truncated_files(tmp_path):
    (tmp_path / "notes.txt").write_text("a bird, honestly")
    with pytest.raises(PhotoError, match="not an image file"):
        load_photo(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="no image file at"):
        load_photo(tmp_path / "missing.png")
    with pytest.raises(PhotoError, match="folder"):
        load_photo(tmp_path)
    Image.fromarray(_rgb()).save(tmp_path / "photo.png")
    with pytest.raises(FileNotFoundError, match="no mask file at"):
        load_photo(tmp_path / "photo.png", tmp_path / "nomask.png")
    data = (tmp_path / "photo.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(_bird_mask()).save(tmp_path / "mask.png")
    with pytest.raises(PhotoError, match="truncated|could not be decoded|not an image"):
        load_photo(tmp_path / "cut.png", tmp_path / "mask.png")


def test_a_huge_photo_is_downscaled_on_reading(tmp_path):
    big = np.zeros((1500, 4000, 3), np.uint8)
    big[..., 1] = 200
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(_bird_mask(1500, 4000, (300, 1000, 1200, 3000))).save(tmp_path / "mask.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mask is resized to the downscaled photo
        p = load_photo(tmp_path / "big.png", tmp_path / "mask.png")
    assert max(p.size) == 2048 and p.source_size == (1500, 4000) and any("downscaled" in n for n in p.notes)
    assert abs(float(p.image[1].mean()) - 200 / 255) < 1e-3


def test_crop_frames_the_mask_and_paste_maps_back(tmp_path):
    Image.fromarray(_rgb(375, 500)).save(tmp_path / "photo.png")
    Image.fromarray(_bird_mask(375, 500, (100, 150, 300, 400))).save(tmp_path / "mask.png")
    p = load_photo(tmp_path / "photo.png", tmp_path / "mask.png")
    img, mask, crop = crop_to_square(p, 64)
    assert img.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
    cols = torch.nonzero(mask[0].any(0)).squeeze(1)
    assert abs((int(cols[-1]) - int(cols[0]) + 1) / 64 - 0.82) < 0.04  # the box's longer side spans 82 %
    assert abs(crop.side - 250 / 0.82) < 1e-6 and crop.photo_size == (375, 500)
    # pasting the crop's own mask back lands on the original box
    back = crop.uncrop_mask(mask)[0] > 0.5
    m = p.mask[0] > 0.5
    assert float((back & m).sum() / (back | m).sum()) > 0.95
    red = torch.zeros(3, 64, 64)
    red[0] = 1
    out = crop.paste(red, mask, p.image)
    assert float(out[0, 200, 275]) > 0.99 and torch.equal(out[:, 10, 10], p.image[:, 10, 10])


def test_crop_camera_maps_to_the_photo_camera():
    from meshinv_lite.render import WeakPerspectiveCamera, ndc_to_pixel
    from meshinv_lite.photo import Crop

    crop = Crop(top=20.0, left=35.0, side=50.0, size=64, photo_size=(100, 100))
    cam = WeakPerspectiveCamera.from_view([40.0], 10.0, 0.7, translation=(0.1, -0.05))
    pts = torch.randn(1, 5, 3) * 0.5
    crop_px = ndc_to_pixel(cam.project(pts)[0], 64, 64) + 0.5    # (5, 2) column, row from the crop's corner
    photo_px = crop_px * (crop.side / 64) + torch.tensor([crop.left, crop.top]) - 0.5
    got = ndc_to_pixel(crop.to_photo_camera(cam).project(pts)[0], 100, 100)
    assert torch.allclose(got, photo_px, atol=1e-3)
    with pytest.raises(ValueError, match="square"):
        Crop(0.0, 0.0, 10.0, 64, (100, 120)).to_photo_camera(cam)
