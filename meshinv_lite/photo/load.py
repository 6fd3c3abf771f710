"""Your own photo in: read an image and its silhouette, check them, and frame them like SynthBirds.

The inversion works on square crops in which the object fills most of the frame (SynthBirds: the larger
side of the bird's box spans 72-92 % of the image). A photo of any size and aspect (CUB-200 photos are
about 500 x 375) is brought there in three steps, and every step can be undone to paint results back
onto the photo:

1. :func:`load_photo` reads the image (8- or 16-bit, greyscale, palette, RGBA, CMYK; huge images are
   downscaled on reading, with their mask) and the mask (a file, or the image's alpha channel), drops stray
   regions far from the mask's main region (with a warning), and refuses, with a message that says what to
   do, masks that cannot be a silhouette: empty, full, or touching all four borders, and fully opaque alpha;
2. :func:`crop_to_square` cuts a square around the mask's box, with a margin, padding where the square
   leaves the photo, and resizes it to the render size;
3. :meth:`Crop.paste` maps a render of the crop back into photo pixels (for the overlay figure).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

#: Photos larger than this on their longer side are downscaled when read (memory, and no gain: the
#: inversion runs at 64-256 px).
MAX_SIDE = 2048
#: The mask's box spans this share of the square crop (the middle of SynthBirds' 0.72-0.92).
DEFAULT_FILL = 0.82
#: A mask covering more than this share of the photo is not a silhouette.
FULL_MASK = 0.98


class PhotoError(ValueError):
    """A photo or mask that cannot be used, with what to do about it."""


@dataclass
class Photo:
    """A photo and its silhouette at photo resolution.

    Attributes:
        image: ``(3, H, W)`` float32 in ``[0, 1]``; mask: ``(1, H, W)`` float32 in ``{0, 1}``.
        source: where the image came from; source_size: ``(H, W)`` of the file before any downscale.
        notes: what was converted on the way (mode, downscale, resized mask), for the report.
    """

    image: torch.Tensor
    mask: torch.Tensor
    source: str = ""
    source_size: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[2])


def _open(path: Path, what: str, notes: Optional[list[str]] = None):
    """Open an image lazily; errors name ``path``. PIL's DecompressionBombWarning (more than
    ``Image.MAX_IMAGE_PIXELS`` pixels) is not shown: the photo is downscaled on reading (:func:`_shrink`, with a
    note); beyond twice that limit the file is refused. An animated file (GIF, APNG, WebP) gives its first
    frame, with a warning."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise FileNotFoundError(f"no {what} file at {path}: check the path (relative paths start from "
                                f"{Path.cwd()})")
    if path.is_dir():
        raise PhotoError(f"{path} is a folder, not a {what} file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise PhotoError(f"{path} is too large to read safely ({e}); downscale it below {MAX_SIDE} px first") from None
    except (UnidentifiedImageError, OSError) as e:
        raise PhotoError(f"{path} is not an image file that can be read ({type(e).__name__}: {e}); "
                         "give a PNG or JPEG") from None
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        msg = (f"{path} is animated ({frames} frames): the first frame was used as the {what}; save the frame you "
               "want as a PNG to use another")
        warnings.warn(msg, stacklevel=3)
        if notes is not None:
            notes.append(msg)
    return img


def _shrink(img, notes: list[str], max_side: int):
    """Downscale so the longer side is at most ``max_side`` (JPEGs decode at reduced size directly)."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    try:
        img.draft(img.mode, (max_side, max_side))  # JPEG: decode at 1/2, 1/4, 1/8 size; others: no-op
    except (AttributeError, ValueError):
        pass
    if max(img.size) > max_side:
        f = max_side / max(img.size)
        img = img.resize((max(1, round(img.size[0] * f)), max(1, round(img.size[1] * f))), resample=_lanczos())
    notes.append(f"downscaled from {w}x{h} to {img.size[0]}x{img.size[1]} (longer side <= {max_side} px)")
    return img


def _lanczos():
    from PIL import Image

    return Image.Resampling.LANCZOS


def _to_array(img, notes: list[str]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``(H, W, 3)`` float in [0, 1] and the alpha channel ``(H, W)`` in [0, 1] (None without one; it may be
    fully opaque)."""
    mode = img.mode
    alpha = None
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        notes.append(f"{mode} image ({'16-bit' if top > 255 else 'integer'} greyscale) scaled to [0, 1] by {top:g}")
        a = np.clip(a / top, 0, 1)
        return np.repeat(a[..., None], 3, axis=2), None
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "PA", "La"):
        img = img.convert("RGBA")
    elif mode == "CMYK":
        notes.append("CMYK image converted to RGB (colours are approximate without its ICC profile)")
        img = img.convert("RGB")
    elif mode in ("L", "1"):
        notes.append("greyscale image: the reconstruction's texture will be grey too")
        img = img.convert("RGB")
    elif mode not in ("RGB", "RGBA"):
        notes.append(f"{mode} image converted to RGB")
        img = img.convert("RGBA" if "A" in mode else "RGB")
    a = np.asarray(img, dtype=np.float64) / 255.0
    if a.shape[2] == 4:
        alpha = a[..., 3]
        a = a[..., :3]
    return a, alpha


def _read_mask(path: Path, size: tuple[int, int], notes: list[str], photo_source_size: Optional[tuple[int, int]] = None
               ) -> np.ndarray:
    """The mask file as ``(H, W)`` in [0, 1] at the photo's size ``(H, W)``.

    A mask of the photo's original size ``photo_source_size`` (a photo downscaled on reading) is downscaled
    with it, with a note; a mask of any other size is resized with a warning."""
    img = _open(path, "mask", notes)
    mask_size = (img.size[1], img.size[0])
    if mask_size != size and mask_size == photo_source_size:
        img = _resizable(img).resize((size[1], size[0]), resample=_box())
        notes.append(f"mask downscaled with the photo, from {mask_size[1]}x{mask_size[0]} to {size[1]}x{size[0]}")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64) / 255.0
        # a cut-out saved with transparency: the alpha is the mask unless it is fully opaque
        m = rgba[..., 3] if rgba[..., 3].min() < 1.0 else rgba[..., :3].mean(2)
    else:
        m = _to_array(img, [])[0].mean(2)
    if m.shape != size:
        msg = (f"the mask ({m.shape[1]}x{m.shape[0]}) and the photo ({size[1]}x{size[0]}) differ in size; "
               "the mask was resized to the photo")
        if abs(m.shape[1] / m.shape[0] - size[1] / size[0]) > 0.02:
            msg += " (their aspect ratios differ too: check that they belong together)"
        warnings.warn(msg, stacklevel=3)
        notes.append(msg)
        t = torch.from_numpy(m).float()[None, None]
        m = F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    return m


def _resizable(img):
    """``img`` in a mode PIL resizes with area averaging, transparency kept as alpha."""
    if img.mode in ("RGB", "RGBA", "L", "LA", "I", "F"):
        return img
    if img.mode in ("PA", "La") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    return img.convert("L" if img.mode in ("1", "I;16", "I;16B", "I;16L") else "RGB")


def _box():
    from PIL import Image

    return Image.Resampling.BOX


#: Regions of a mask that do not reach into the main region's box grown by this share of its longer side are
#: dropped as strays; nearer ones (the parts of a bird a twig cuts apart) are kept.
STRAY_MARGIN = 0.15


def keep_main_region(mask: np.ndarray, where: str, notes: list[str]) -> np.ndarray:
    """``mask`` ``(H, W)`` bool without the regions that lie apart from its largest connected region.

    A speck of background left in a mask far from the bird stretches the crop around both, and the bird ends
    up small in the frame (issue 35's sweep measured IoU 0.87 -> 0.56); a region within :data:`STRAY_MARGIN` of the
    largest one's box (a wing or tail cut off by a twig) is kept. What was dropped is noted and warned about."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))  # 8-connected
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    main = int(np.argmax(sizes)) + 1
    boxes = ndimage.find_objects(labels)
    (r, c) = boxes[main - 1]
    pad = STRAY_MARGIN * max(r.stop - r.start, c.stop - c.start)
    top, bottom, left, right = r.start - pad, r.stop + pad, c.start - pad, c.stop + pad
    keep = np.zeros(n + 1, bool)
    for k, (rr, cc) in enumerate(boxes, start=1):
        keep[k] = rr.start < bottom and rr.stop > top and cc.start < right and cc.stop > left  # reaches the box
    dropped = [k for k in range(1, n + 1) if not keep[k]]
    if not dropped:
        return mask
    px = int(sum(sizes[k - 1] for k in dropped))
    msg = (f"{where} has {n} separate regions; kept the largest ({int(sizes[main - 1])} px) and those beside it, "
           f"dropped {len(dropped)} region(s) of {px} px in all that lie away from it (a stray blob would frame "
           "the crop around both); clean the mask if they belong to the object")
    warnings.warn(msg, stacklevel=3)
    notes.append(msg)
    return keep[labels]


def check_mask(mask: torch.Tensor, where: str = "the mask") -> None:
    """Refuse masks that cannot be a silhouette: ``mask`` ``(1, H, W)`` or ``(H, W)`` in {0, 1}."""
    m = mask.reshape(mask.shape[-2], mask.shape[-1]) > 0.5
    share = float(m.float().mean())
    if not m.any():
        raise PhotoError(f"{where} is empty (no pixel above 0.5): the object must be white (or opaque) on black "
                         "(or transparent)")
    if share > FULL_MASK:
        raise PhotoError(f"{where} covers {100 * share:.1f} % of the photo: that is not a silhouette. The object must "
                         "be white on a black background; if yours is the other way round, invert the mask")
    borders = [bool(m[0].any()), bool(m[-1].any()), bool(m[:, 0].any()), bool(m[:, -1].any())]
    if all(borders):
        raise PhotoError(f"{where} touches all four borders of the photo, so it is no object's outline: the mask may be "
                         "inverted (the object must be white on black), or the object is cut off on every side; "
                         "use a photo that shows the whole bird")
    if sum(borders) >= 2:
        warnings.warn(f"{where} touches {sum(borders)} borders of the photo: the object is cut off there, and the "
                      "reconstruction will guess the missing part", stacklevel=2)


def load_photo(image: str | Path, mask: Optional[str | Path] = None, max_side: int = MAX_SIDE,
               estimate: bool = False, box=None) -> Photo:
    """Read a photo and its silhouette.

    Args:
        image: a PNG/JPEG/... file of any size and aspect; 8- or 16-bit, greyscale, palette, RGB(A), CMYK.
        mask: a file of the object's silhouette (white on black, or a cut-out with transparency); of another
            size than the photo it is resized, with a warning (of the photo's original size it is downscaled
            with the photo, with a note). ``None``: the photo's alpha channel. Regions of the mask far from its
            largest region (a stray blob) are dropped, with a warning (:func:`keep_main_region`).
        max_side: longer side, in pixels, beyond which the photo is downscaled when read.
        estimate: with no mask file and no transparency, estimate the mask with the shipped segmentation net
            (:func:`~meshinv_lite.photo.segment.estimate_mask`) instead of refusing; ``box`` ``(x0, y0, x1, y1)``
            pixels of the photo as read helps it (only without a mask).
    Raises:
        FileNotFoundError: a path that does not exist. PhotoError (a ValueError): not an image, no mask
            and no alpha channel, or a mask that is empty, full or touches all four borders.
    """
    path = Path(image)
    notes: list[str] = []
    img = _open(path, "image", notes)
    source_size = (img.size[1], img.size[0])
    try:
        img = _shrink(img, notes, max_side)
        rgb, alpha = _to_array(img, notes)
    except OSError as e:  # truncated file: PIL reads lazily and fails here
        raise PhotoError(f"{path} could not be decoded ({e}); the file may be truncated") from None
    size = rgb.shape[:2]
    if box is not None and (mask is not None or (alpha is not None and alpha.min() < 1.0)):
        raise PhotoError("a box only guides the mask estimate of a photo without a mask: leave out --box, or the mask")
    if estimate and mask is None and (alpha is None or alpha.min() >= 1.0):
        from .segment import estimate_mask

        image_t = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1).contiguous()
        est = estimate_mask(image_t, box=box)
        notes.extend(est.notes)
        return Photo(image_t, est.mask, str(path), source_size, notes)
    if mask is not None:
        try:
            m = _read_mask(Path(mask), size, notes, source_size)
        except FileNotFoundError:
            raise
        except OSError as e:  # truncated mask file: PIL reads lazily and fails here
            raise PhotoError(f"the mask {mask} could not be decoded ({e}); the file may be truncated") from None
        where = f"the mask {mask}"
    elif alpha is not None and alpha.min() < 1.0:
        m = alpha
        notes.append("mask taken from the image's alpha channel")
        where = f"the alpha channel of {path}"
    elif alpha is not None:
        raise PhotoError(f"the alpha channel of {path} is fully opaque (every pixel 255), so it marks no silhouette: "
                         "pass a mask file (white bird on black, same size as the photo), e.g. --mask mask.png, or "
                         "save the photo as a cut-out whose background is transparent")
    else:
        raise PhotoError(f"{path} has no alpha channel and no mask was given: pass a mask file (white bird on black, "
                         "same size as the photo), e.g. --mask mask.png, or save the photo as a PNG cut-out with "
                         "transparency")
    binary = keep_main_region(m > 0.5, where, notes)
    mask_t = torch.from_numpy(binary.astype(np.float32))[None]
    check_mask(mask_t, where)
    return Photo(torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1).contiguous(), mask_t, str(path),
                 source_size, notes)


@dataclass(frozen=True)
class Crop:
    """A square window ``[left, left + side) x [top, top + side)`` of a photo (pixels; may leave the photo)
    resized to ``size`` px."""

    top: float
    left: float
    side: float
    size: int
    photo_size: tuple[int, int]

    def to_dict(self) -> dict:
        return {"top": self.top, "left": self.left, "side": self.side, "size": self.size,
                "photo_size": list(self.photo_size)}

    def _grid(self, out_h: int, out_w: int, device=None) -> torch.Tensor:
        """Sampling grid that reads a crop-sized image at photo pixel centres, for ``grid_sample``."""
        h, w = out_h, out_w
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * (self.photo_size[0] / h)
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * (self.photo_size[1] / w)
        gy = (ys - self.top) / self.side * 2 - 1
        gx = (xs - self.left) / self.side * 2 - 1
        return torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]

    def paste(self, image: torch.Tensor, mask: torch.Tensor, onto: torch.Tensor) -> torch.Tensor:
        """Composite a render of the crop (``image`` ``(3, S, S)``, ``mask`` ``(1, S, S)``, both in [0, 1])
        onto ``onto`` ``(3, H, W)`` (the photo, or a picture of its size); returns ``(3, H, W)``."""
        h, w = onto.shape[-2:]
        grid = self._grid(h, w, onto.device)
        img = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        m = F.grid_sample(mask[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        return onto * (1 - m) + img * m

    def to_photo_camera(self, camera):
        """The camera of the crop (normalized crop coordinates) as a camera of the whole photo; needs a square
        photo (in a non-square one x and y scale differently, which a weak-perspective camera cannot hold)."""
        from ..render.camera import WeakPerspectiveCamera

        h, w = self.photo_size
        if h != w:
            raise ValueError(f"to_photo_camera needs a square photo, this one is {w}x{h}")
        k = self.side / w
        offset = torch.tensor([(2 * self.left + self.side) / w - 1, 1 - (2 * self.top + self.side) / h],
                              dtype=camera.translation.dtype, device=camera.translation.device)
        return WeakPerspectiveCamera(camera.scale * k, camera.translation * k + offset, camera.rotation)

    def uncrop_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """A crop-space mask ``(1, S, S)`` in photo pixels, ``(1, H, W)`` in [0, 1]."""
        grid = self._grid(*self.photo_size, device=mask.device)
        return F.grid_sample(mask[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def crop_to_square(photo: Photo, size: int, fill: float = DEFAULT_FILL) -> tuple[torch.Tensor, torch.Tensor, Crop]:
    """Cut a square around the mask's box so that its longer side spans ``fill`` of the square, pad with black
    where the square leaves the photo, and resize to ``size`` px.

    Returns ``image`` ``(3, size, size)`` in [0, 1], ``mask`` ``(1, size, size)`` in {0, 1}, and the
    :class:`Crop` that maps back.
    """
    if not 0.1 <= fill <= 1.0:
        raise ValueError(f"fill must lie in [0.1, 1], got {fill}")
    m = photo.mask[0] > 0.5
    rows, cols = torch.nonzero(m.any(1)).squeeze(1), torch.nonzero(m.any(0)).squeeze(1)
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    side = max(bottom - top, right - left) / fill
    cy, cx = (top + bottom) / 2, (left + right) / 2
    crop = Crop(top=cy - side / 2, left=cx - side / 2, side=side, size=size, photo_size=photo.size)
    # sample the photo on the crop's pixel centres (area-like: antialias by pre-shrinking when large)
    src_img, src_mask = photo.image[None], photo.mask[None]
    shrink = side / size
    if shrink > 2:
        f = 1 / shrink * 2
        src_img = F.interpolate(src_img, scale_factor=f, mode="bilinear", antialias=True, align_corners=False)
        src_mask = F.interpolate(src_mask, scale_factor=f, mode="bilinear", antialias=True, align_corners=False)
    h, w = photo.size
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size * side
    gy = (crop.top + t) / h * 2 - 1
    gx = (crop.left + t) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
    image = F.grid_sample(src_img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0].clamp(0, 1)
    mask = (F.grid_sample(src_mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0] > 0.5).float()
    if not mask.any():
        raise PhotoError(f"the silhouette vanishes at {size} px: the object is too small in the photo")
    return image, mask, crop
