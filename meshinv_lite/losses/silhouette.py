"""Silhouette comparisons: the soft IoU of two masks, and the 2D Chamfer distance between point sets of masks."""
from __future__ import annotations

from typing import Optional

import torch

from ..render.camera import pixel_centers


def soft_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Soft IoU ``sum(p t) / (sum(p + t - p t) + eps)`` per image (no threshold).

    Args:
        pred, target: ``(B, 1, H, W)`` float masks in ``[0, 1]`` (any matching shapes work).
        eps: added to the union (default 1e-6): two empty masks give 0, not NaN.
    Returns:
        ``(B,)`` in ``[0, 1]`` (1: identical binary masks), differentiable in ``pred`` and ``target``.
    """
    inter = (pred * target).flatten(1).sum(1)
    union = (pred + target - pred * target).flatten(1).sum(1)
    return inter / (union + eps)


def mask_points(masks: torch.Tensor, num_points: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Random foreground pixel centres of each mask, as points.

    Pixels are drawn uniformly without replacement; a mask with fewer than ``K`` foreground pixels repeats
    its own pixels (cycling through them) to fill ``K``.

    Args:
        masks: ``(B, 1, H, W)`` float in ``[0, 1]``; foreground ``> 0.5``, at least one pixel per mask.
        num_points: points per mask; ``K = min(num_points, H * W)``.
        generator: CPU ``torch.Generator`` (``None``: the global RNG).
    Returns:
        ``(B, K, 2)`` float32 ``(x, y)`` normalized coordinates (x right, y up, in ``(-1, 1)``); constants
        (no gradient).
    """
    b, _, h, w = masks.shape
    fg = masks.reshape(b, -1) > 0.5
    counts = fg.sum(1)
    if (counts == 0).any():
        empty = torch.nonzero(counts == 0).squeeze(1).tolist()
        raise ValueError(f"mask(s) {empty} are empty: need at least one foreground pixel")
    # Random keys: foreground pixels get uniform keys in [0, 1), background 2; the smallest keys win.
    keys = torch.rand(b, h * w, generator=generator).to(masks.device)
    keys = torch.where(fg, keys, torch.full_like(keys, 2.0))
    k = min(num_points, h * w)
    pick = keys.topk(k, dim=1, largest=False).indices  # (B, k)
    # masks with fewer than k pixels: wrap around their own foreground pixels
    slot = torch.arange(k, device=masks.device)[None] % counts[:, None]
    pick = torch.gather(pick, 1, slot)
    centers = pixel_centers(h, w, device=masks.device, dtype=torch.float32).reshape(-1, 2)
    return centers[pick]


def chamfer_2d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two-sided Chamfer distance ``mean_i min_j |a_i - b_j|^2 + mean_j min_i |b_j - a_i|^2`` per batch item.

    Args:
        a: ``(B, N, 2)`` float points (e.g. projected vertices, normalized coordinates).
        b: ``(B, M, 2)`` float points, same dtype (e.g. :func:`mask_points`).
    Returns:
        ``(B,)`` in ``a``'s dtype, ``>= 0``; differentiable in ``a`` and ``b``.

    Mean of squared nearest-neighbour distances on each side, summed. The neighbours are searched without
    autograd (one ``(B, N, M)`` distance tensor, grouped argmins) and the distances of the matched pairs
    recomputed with it: the value and gradient of differentiating the minima directly, without a
    backward pass through the whole distance tensor (measured: the pseudo-GT fit's largest cost).
    """
    from .nearest import dense_argmins

    with torch.no_grad():
        a0, b0 = a.detach(), b.detach()
        d = torch.baddbmm((a0 * a0).sum(-1)[:, :, None] + (b0 * b0).sum(-1)[:, None, :], a0, b0.transpose(1, 2), alpha=-2)
        near_b, near_a = dense_argmins(d)  # (B, N) each a's nearest b, (B, M) each b's nearest a
    to_b = a - torch.gather(b, 1, near_b[..., None].expand(-1, -1, 2))
    to_a = b - torch.gather(a, 1, near_a[..., None].expand(-1, -1, 2))
    return (to_b * to_b).sum(-1).mean(1) + (to_a * to_a).sum(-1).mean(1)
