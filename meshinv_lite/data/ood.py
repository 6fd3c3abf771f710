"""Out-of-distribution variants of SynthBirds batches, with their ground truth kept consistent.

The shipped prior was trained on 12 species; a person's photo is almost never one of them. These transforms
make birds the prior cannot make while keeping exact ground truth, so that a method can be scored on them
around the circle, not only in the input view:

* :func:`recolour_batch`: every bird's plumage hue-rotated by the same angle, in the image (inside the mask,
  blended at its anti-aliased border) and in the true texture map alike. A hue rotation is a linear map of
  RGB (a rotation about the grey axis), so it commutes with the renderer's interpolation: the recoloured image
  is what rendering the recoloured texture would give (up to clipping to [0, 1]).

Held-out species (``test_unseen``) and extreme articulations (``test_hard``) are splits of the dataset itself.
"""
from __future__ import annotations

import math

import torch


def hue_rotation_matrix(degrees: float) -> torch.Tensor:
    """``(3, 3)`` RGB matrix rotating hue by ``degrees`` about the grey axis ``(1, 1, 1)`` (grey stays grey)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    k = 1.0 / 3.0
    r = math.sqrt(k)
    return torch.tensor([[c + (1 - c) * k, k * (1 - c) - r * s, k * (1 - c) + r * s],
                         [k * (1 - c) + r * s, c + k * (1 - c), k * (1 - c) - r * s],
                         [k * (1 - c) - r * s, k * (1 - c) + r * s, c + k * (1 - c)]])


def _apply(matrix: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(images), images).clamp(0, 1)


def recolour_batch(batch: dict, degrees: float) -> dict:
    """A copy of a :meth:`~meshinv_lite.data.ReconstructionDataset.batch` whose birds are hue-rotated by ``degrees``.

    ``image`` ``(B, 3, H, W)`` in [0, 1]: the bird's pixels (weighted by ``mask``) recoloured, the background
    kept; ``texture_map`` (when present, the ground truth) recoloured the same way. Everything else is shared.
    """
    if "image" not in batch or "mask" not in batch:
        raise ValueError("recolour_batch needs a batch with 'image' and 'mask' (ReconstructionDataset.batch)")
    m = hue_rotation_matrix(degrees)
    mask = batch["mask"].to(batch["image"])
    out = dict(batch)
    out["image"] = mask * _apply(m, batch["image"]) + (1 - mask) * batch["image"]
    if "texture_map" in batch:
        out["texture_map"] = _apply(m, batch["texture_map"])
    return out
