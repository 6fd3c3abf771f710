"""Small input checks shared by the modules: each raises ``ValueError`` naming the argument."""
from __future__ import annotations

import torch


def check_shape(name: str, t: torch.Tensor, shape: tuple, what: str = "") -> None:
    """Check ``t``'s shape against ``shape``, where ``None`` matches any size.

    Example: ``check_shape("verts", v, (None, None, 3), "(B, N, 3) vertex positions")``.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    desc = what or "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if t.dim() != len(shape):
        raise ValueError(f"{name} must have {len(shape)} dimensions {desc}, got shape {tuple(t.shape)}")
    for i, s in enumerate(shape):
        if s is not None and t.shape[i] != s:
            raise ValueError(f"{name} must have shape {desc}, got {tuple(t.shape)} (dimension {i} should be {s})")


def check_finite(name: str, t: torch.Tensor) -> None:
    """Reject NaN or infinite values."""
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def check_batch(**tensors: torch.Tensor) -> int:
    """All tensors share the leading batch size (size 1 broadcasts); returns it."""
    sizes = {k: v.shape[0] for k, v in tensors.items()}
    big = {s for s in sizes.values() if s != 1}
    if len(big) > 1:
        listing = ", ".join(f"{k}={s}" for k, s in sizes.items())
        raise ValueError(f"mismatched batch sizes: {listing}")
    return big.pop() if big else 1


def image_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalize an image size to ``(H, W)`` and reject sizes below 8 pixels."""
    if isinstance(image_size, int):
        h = w = image_size
    else:
        h, w = (int(s) for s in image_size)
    if h < 8 or w < 8:
        raise ValueError(f"image size must be at least 8 x 8 pixels, got {h} x {w}")
    return h, w
