"""Mask *files* saved with transparency (a cut-out: RGBA, grey + alpha, a palette with transparent entries):
the silhouette is their alpha, not their colours. Guards against reading such a file's RGB (issue 34): each file
below has colours that, read as a mask, give another silhouette (or none)."""
import numpy as np
import pytest
import torch
from PIL import Image

from meshinv_lite.photo import PhotoError, load_photo

H, W = 60, 80
BOX = (15, 20, 45, 60)  # top, left, bottom, right: the bird


def _bird(value=255, background=0) -> np.ndarray:
    m = np.full((H, W), background, np.uint8)
    t, l, b, r = BOX
    m[t:b, l:r] = value
    return m


def _expected() -> torch.Tensor:
    return torch.from_numpy(_bird(1)).float()[None]


@pytest.fixture
def photo(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def _load(photo, img: Image.Image, name="mask.png"):
    path = photo.parent / name
    img.save(path)
    return load_photo(photo, path)


def test_rgba_cut_out_mask_uses_its_alpha(photo):
    """An RGBA cut-out whose colours are a dark bird on a white background (read as grey: the inverse silhouette)."""
    rgb = np.repeat(_bird(40, 255)[..., None], 3, axis=2)
    p = _load(photo, Image.fromarray(np.dstack([rgb, _bird()]), "RGBA"))
    assert torch.equal(p.mask, _expected())


def test_rgba_mask_with_white_colours_everywhere_uses_its_alpha(photo):
    """Transparent pixels stored as white (a common export): read as grey the mask would cover the whole photo."""
    rgb = np.full((H, W, 3), 255, np.uint8)
    p = _load(photo, Image.fromarray(np.dstack([rgb, _bird()]), "RGBA"))
    assert torch.equal(p.mask, _expected())


def test_rgba_mask_with_soft_edges_is_thresholded_at_half(photo):
    alpha = _bird()
    t, l, b, r = BOX
    alpha[t - 1, l:r] = 100   # a faint antialiased row above the bird: out
    alpha[b, l:r] = 200       # a strong one below: in
    rgb = np.zeros((H, W, 3), np.uint8)  # black colours: read as grey, an empty mask
    p = _load(photo, Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))
    want = _expected()
    want[0, b, l:r] = 1
    assert torch.equal(p.mask, want)


def test_grey_plus_alpha_mask_uses_its_alpha(photo):
    la = np.dstack([_bird(0, 255), _bird()])  # black bird on white, opaque only on the bird
    p = _load(photo, Image.fromarray(la, "LA"))
    assert torch.equal(p.mask, _expected())


def test_paletted_mask_with_a_transparent_index_uses_its_transparency(photo):
    """Palette: index 0 white (the transparent background), index 1 black (the opaque bird)."""
    img = Image.fromarray(_bird(1, 0), "P")
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    p = _load(photo, img)
    assert Image.open(photo.parent / "mask.png").mode == "P"  # still paletted on disk
    assert torch.equal(p.mask, _expected())


def test_paletted_mask_with_per_entry_alpha_uses_its_transparency(photo):
    """Palette with an alpha per entry (PNG tRNS of several bytes): white transparent, grey half-transparent
    (below one half: out), black opaque."""
    idx = _bird(2, 0)
    idx[0, 0] = 1  # one half-transparent pixel in a corner
    img = Image.fromarray(idx, "P")
    img.putpalette([255, 255, 255, 128, 128, 128, 0, 0, 0] + [0] * 759)
    img.info["transparency"] = bytes([0, 100, 255])
    path = photo.parent / "mask.png"
    img.save(path, transparency=bytes([0, 100, 255]))
    assert isinstance(Image.open(path).info.get("transparency"), bytes)
    p = load_photo(photo, path)
    assert torch.equal(p.mask, _expected())


def test_opaque_rgba_mask_falls_back_to_its_colours(photo):
    """A fully opaque alpha channel is no silhouette: then the colours (white bird on black) are the mask."""
    rgb = np.repeat(_bird()[..., None], 3, axis=2)
    p = _load(photo, Image.fromarray(np.dstack([rgb, np.full((H, W), 255, np.uint8)]), "RGBA"))
    assert torch.equal(p.mask, _expected())


def test_transparent_mask_with_an_empty_alpha_is_refused(photo):
    """Colours that show a bird do not rescue an alpha channel with nothing opaque in it."""
    rgb = np.repeat(_bird()[..., None], 3, axis=2)
    with pytest.raises(PhotoError, match="empty"):
        _load(photo, Image.fromarray(np.dstack([rgb, np.zeros((H, W), np.uint8)]), "RGBA"))
