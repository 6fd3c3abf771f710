"""A photo without a mask: estimate the silhouette with the shipped segmentation net, and check it.

Most photos bring no mask and no alpha channel. :func:`estimate_mask` finds one in two passes of
:class:`~meshinv_lite.encoder.SegmentationNet` (trained on SynthBirds renders and training images):

1. the whole photo, padded to a square (or the ``box`` a user gives, with a margin), gives a rough silhouette;
2. a square around that silhouette's box, framed as the training images are (the bird's box spans about 82 % of
   it), is segmented again at the net's full resolution, and pasted back.

Then the largest connected blob is kept (a stray detection in a corner is dropped, and the report says so) and
holes are filled. A result that cannot be a bird's silhouette (empty, almost the whole frame, touching all four
borders) stops with what to do: give ``--box x0 y0 x1 y1`` around the bird, or a mask file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .load import DEFAULT_FILL, PhotoError, check_mask


@dataclass
class MaskEstimate:
    """mask ``(1, H, W)`` in {0, 1} at photo resolution; probability ``(1, H, W)`` in [0, 1]; box ``(x0, y0, x1, y1)``
    pixels of the second pass's square; notes: what was done (for the report)."""

    mask: torch.Tensor
    probability: torch.Tensor
    box: tuple[int, int, int, int]
    notes: list[str] = field(default_factory=list)


def _square_around(x0: float, y0: float, x1: float, y1: float, fill: float) -> tuple[int, int, int]:
    """A square ``(left, top, side)`` centred on a box whose larger side spans ``fill`` of it."""
    side = max(x1 - x0, y1 - y0) / fill
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(int(round(side)), 8)
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def _cut(image: torch.Tensor, left: int, top: int, side: int, size: int) -> torch.Tensor:
    """The square ``[top, top + side) x [left, left + side)`` of ``image`` ``(C, H, W)`` (edge-padded where it leaves
    the photo), resized to ``size``: ``(1, C, size, size)``."""
    _, h, w = image.shape
    pad = (max(0, -left), max(0, left + side - w), max(0, -top), max(0, top + side - h))
    x = F.pad(image[None], pad, mode="replicate") if any(pad) else image[None]
    x = x[..., top + pad[2]:top + pad[2] + side, left + pad[0]:left + pad[0] + side]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)


def _paste(prob: torch.Tensor, left: int, top: int, side: int, h: int, w: int) -> torch.Tensor:
    """A square probability map ``(1, 1, s, s)`` placed back at ``(left, top, side)`` in an ``h x w`` frame (0 outside)."""
    big = F.interpolate(prob, size=(side, side), mode="bilinear", align_corners=False)[0, 0]
    out = torch.zeros(h, w)
    ys, xs = slice(max(0, top), min(h, top + side)), slice(max(0, left), min(w, left + side))
    out[ys, xs] = big[ys.start - top:ys.stop - top, xs.start - left:xs.stop - left]
    return out


def largest_component(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The largest 4-connected blob of a bool mask ``(H, W)`` with its holes filled, and the number of blobs dropped."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n == 0:
        return mask, 0
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    keep = labels == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(keep), n - 1


@torch.no_grad()
def estimate_mask(image: torch.Tensor, segmenter=None, box: Optional[Sequence[float]] = None,
                  threshold: float = 0.5) -> MaskEstimate:
    """Estimate the silhouette of the bird in ``image`` ``(3, H, W)`` in ``[0, 1]`` (module docstring).

    Args:
        segmenter: a :class:`~meshinv_lite.encoder.SegmentationNet` (default: the shipped one).
        box: ``(x0, y0, x1, y1)`` pixels around the bird (``x`` right, ``y`` down), when the user helps.
    Raises:
        PhotoError: the estimate is empty, fills the frame or touches every border (with what to do).
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W) in [0, 1], got shape {tuple(image.shape)}")
    if segmenter is None:
        from ..encoder import load_shipped_encoder

        segmenter = load_shipped_encoder(device=image.device)[1]
    image = image.float().cpu()
    _, h, w = image.shape
    size = segmenter.config.seg_image_size
    notes: list[str] = []
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise PhotoError(f"--box {x0:g} {y0:g} {x1:g} {y1:g} is not a box inside the {w} x {h} photo: give "
                             "x0 y0 x1 y1 in pixels with x0 < x1 <= width and y0 < y1 <= height")
        left, top, side = _square_around(x0, y0, x1, y1, 0.9)
        notes.append(f"mask estimated inside the box ({x0:g}, {y0:g}, {x1:g}, {y1:g})")
    else:
        left, top, side = _square_around(0, 0, w, h, 1.0)
    net = segmenter.cpu().eval()
    prob = _paste(torch.sigmoid(net(_cut(image, left, top, side, size))), left, top, side, h, w)
    if box is not None:
        inside = torch.zeros(h, w, dtype=torch.bool)
        inside[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
        prob = prob * inside
    rough = prob.numpy() > threshold
    if rough.any():   # second pass: framed like the training images
        rough, _ = largest_component(rough)
        ys, xs = np.nonzero(rough)
        left, top, side = _square_around(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, DEFAULT_FILL)
        prob = _paste(torch.sigmoid(net(_cut(image, left, top, side, size))), left, top, side, h, w)
        if box is not None:
            prob = prob * inside
    mask = prob.numpy() > threshold
    mask, dropped = largest_component(mask)
    if dropped:
        notes.append(f"mask estimate: kept the largest blob, dropped {dropped} smaller one(s)")
    out = torch.from_numpy(mask.astype(np.float32))[None]
    hint = ("give a box around the bird (--box x0 y0 x1 y1, pixels) or a mask file (--mask), or a photo with an "
            "alpha channel")
    if not mask.any():
        raise PhotoError(f"the segmenter found no bird in this photo (the estimated mask is empty): {hint}")
    check_mask(out, where=f"the estimated mask ({hint})")
    notes.append("mask estimated by the shipped segmentation net (check it in overlay.png)")
    return MaskEstimate(out, prob[None], (left, top, left + side, top + side), notes)
