"""The ablation baselines of the paper's Table 3: what the Chamfer losses are compared with.

Texture: pixel L1 / L2 of the masked images (:func:`masked_pixel_loss`), perceptual (squared L2 of CNN
features, :func:`perceptual_loss`) and contextual (Mechrez et al. 2018, :func:`contextual_loss`).
Mask: L1 and ``1 - soft IoU`` of the rendered soft silhouette (:func:`mask_l1_loss`, :func:`mask_iou_loss`).
All are selected by name through :func:`meshinv_lite.losses.get_texture_loss` /
:func:`~meshinv_lite.losses.get_mask_loss`. Conventions as in :mod:`meshinv_lite.losses`.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .._checks import (
    check_finite,
    check_image_pair,
    check_nonempty_foreground,
    check_shape,
    reduce_per_image,
    require_extractor,
)
from ..features.base import FeatureExtractor, masked_features
from .nearest import MASK_THRESHOLD, foreground_points


def masked_pixel_loss(pred_img: torch.Tensor, pred_mask: torch.Tensor, target_img: torch.Tensor,
                      target_mask: torch.Tensor, p: int = 1, reduction: str = "mean") -> torch.Tensor:
    """Pixel L1 (``p=1``) or squared L2 (``p=2``) between ``pred_img * pred_mask`` and ``target_img * target_mask``.

    Pixel-aligned (no tolerance to misalignment): the baselines "L1" / "L2" of the paper's ablation.

    Args:
        pred_img, target_img: ``(B, 3, H, W)`` float in ``[0, 1]``, the same ``H, W``.
        pred_mask, target_mask: ``(B, 1, H, W)`` float in ``[0, 1]``, used as multiplicative weights (not
            thresholded).
        p: 1 (default, L1) or 2 (squared L2).
        reduction: ``"mean"`` (default, over the batch), ``"sum"``, or ``"none"`` (per image, ``(B,)``).
    Returns:
        Mean over the 3 channels and **all** ``H * W`` pixels (background included), in ``[0, 1]``:
        ``(B,)`` for ``reduction="none"``, else a scalar. Differentiable in the images, and in a mask that
        requires grad.
    """
    if p not in (1, 2):
        raise ValueError(f"masked_pixel_loss supports p=1 (L1) or p=2 (L2), got {p}")
    check_image_pair(pred_img, pred_mask, target_img, target_mask, same_size=True)
    diff = pred_img * pred_mask - target_img * target_mask
    err = diff.abs() if p == 1 else diff * diff
    return reduce_per_image(err.flatten(1).mean(1), reduction)


def perceptual_loss(pred_img: torch.Tensor, pred_mask: torch.Tensor, target_img: torch.Tensor,
                    target_mask: torch.Tensor, extractor: FeatureExtractor, reduction: str = "mean") -> torch.Tensor:
    """Perceptual loss: squared L2 between ``extractor`` features of ``pred_img * pred_mask`` and
    ``target_img * target_mask``, averaged over channels and all locations of the feature grid.

    Args:
        pred_img, target_img: ``(B, 3, H, W)`` float in ``[0, 1]``, the same ``H, W``.
        pred_mask, target_mask: ``(B, 1, H, W)`` float in ``[0, 1]`` (multiplicative, not thresholded).
        extractor: a frozen :class:`~meshinv_lite.features.base.FeatureExtractor` (required; features
            ``(B, C, H / 4, W / 4)``, unit-norm per location for the shipped ones, so values lie in ``[0, 4 / C]``).
        reduction: ``"mean"`` (default), ``"sum"``, or ``"none"`` (per image, ``(B,)``).
    Returns:
        ``(B,)`` for ``reduction="none"``, else a scalar; differentiable in the images through the extractor.
    """
    extractor = require_extractor("perceptual_loss", extractor)
    check_image_pair(pred_img, pred_mask, target_img, target_mask, same_size=True)
    diff = extractor(pred_img * pred_mask) - extractor(target_img * target_mask)
    return reduce_per_image((diff * diff).flatten(1).mean(1), reduction)


def contextual_loss(
    pred_img: torch.Tensor,
    pred_mask: torch.Tensor,
    target_img: torch.Tensor,
    target_mask: torch.Tensor,
    extractor: FeatureExtractor,
    band_width: float = 0.5,
    num_points: int = 1024,
    eps: float = 1e-5,
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Contextual loss ``-log CX(X, Y)`` (Mechrez et al. 2018) between foreground feature sets.

    ``X`` (``N``): features of the masked prediction at foreground locations of the feature grid, ``Y``
    (``M``): of the target, each subsampled to at most ``num_points`` (the loss is a dense ``N x M`` matrix
    with gradients). Cosine distances ``d_ij`` after centring both on ``mean(Y)``; relative distances
    ``d~_ij = d_ij / (min_k d_ik + eps)``; affinities ``w_ij = exp((1 - d~_ij) / band_width)``, normalized
    over ``j``: ``CX_ij = w_ij / sum_k w_ik``; ``CX = mean_j max_i CX_ij``. Zero for identical sets;
    positions play no role.

    Args:
        pred_img, target_img: ``(B, 3, H, W)`` float in ``[0, 1]`` (sizes may differ).
        pred_mask, target_mask: ``(B, 1, H, W)`` float in ``[0, 1]``; feature locations where the mask,
            average-pooled to the feature grid, exceeds 0.5 (at least one per image).
        extractor: a frozen :class:`~meshinv_lite.features.base.FeatureExtractor` (required).
        band_width: ``h`` of the affinities (> 0, default 0.5).
        num_points: at most this many feature locations per image and side (default 1024), uniformly random.
        eps: added to the smallest distance of each row (default 1e-5).
        generator: CPU ``torch.Generator`` for the subsets (``None``: the global RNG).
        reduction: ``"mean"`` (default), ``"sum"``, or ``"none"`` (per image, ``(B,)``).
    Returns:
        ``-log CX >= 0`` (approximately 0 for identical sets): ``(B,)`` for ``reduction="none"``, else a scalar;
        differentiable in both images through the extractor.
    """
    extractor = require_extractor("contextual_loss", extractor)
    if band_width <= 0:
        raise ValueError(f"band_width must be positive, got {band_width}")
    check_image_pair(pred_img, pred_mask, target_img, target_mask)
    check_nonempty_foreground("pred_mask", pred_mask, MASK_THRESHOLD)
    check_nonempty_foreground("target_mask", target_mask, MASK_THRESHOLD)
    pf, pm = masked_features(extractor, pred_img, pred_mask)
    tf, tm = masked_features(extractor, target_img, target_mask)
    check_nonempty_foreground("pred_mask at feature resolution (foreground too small)", pm, MASK_THRESHOLD)
    check_nonempty_foreground("target_mask at feature resolution (foreground too small)", tm, MASK_THRESHOLD)
    out = []
    for b in range(pf.shape[0]):
        _, x = foreground_points(pf[b], pm[b], num_points, MASK_THRESHOLD, generator)
        _, y = foreground_points(tf[b], tm[b], num_points, MASK_THRESHOLD, generator)
        mu = y.mean(0, keepdim=True)
        xc, yc = F.normalize(x - mu, dim=1), F.normalize(y - mu, dim=1)
        d = (1 - xc @ yc.t()).clamp_min(0)  # (N, M) cosine distances
        d_rel = d / (d.min(1, keepdim=True).values + eps)
        cx = torch.softmax((1 - d_rel) / band_width, dim=1)  # exp(.) / sum over j
        out.append(-torch.log(cx.max(0).values.mean().clamp_min(1e-12)))
    return reduce_per_image(torch.stack(out), reduction)


def _check_masks(soft_mask: torch.Tensor, target_mask: torch.Tensor) -> None:
    check_shape("pred_soft_mask", soft_mask, (None, 1, None, None), "(B, 1, H, W) rendered soft mask in [0, 1]")
    check_shape("target_mask", target_mask, (None, 1, None, None), "(B, 1, H, W) in [0, 1]")
    if soft_mask.shape != target_mask.shape:
        raise ValueError(f"pred_soft_mask {tuple(soft_mask.shape)} and target_mask {tuple(target_mask.shape)} "
                         "differ; render at the target mask's resolution")
    check_finite("pred_soft_mask", soft_mask)
    check_finite("target_mask", target_mask)


def mask_l1_loss(pred_soft_mask: torch.Tensor, target_mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mask L1: mean ``|pred_soft_mask - target_mask|`` over the pixels of each image.

    Args:
        pred_soft_mask: ``(B, 1, H, W)`` float in ``[0, 1]``, the rendered DIB-R soft silhouette
            (:func:`meshinv_lite.render.soft_mask`), at the target's resolution.
        target_mask: ``(B, 1, H, W)`` float in ``[0, 1]``.
        reduction: ``"mean"`` (default), ``"sum"``, or ``"none"`` (per image, ``(B,)``).
    Returns:
        Values in ``[0, 1]``; differentiable in ``pred_soft_mask`` (hence in the vertices and camera on the
        pixels the soft silhouette reaches) and in ``target_mask`` if it requires grad.
    """
    _check_masks(pred_soft_mask, target_mask)
    return reduce_per_image((pred_soft_mask - target_mask).abs().flatten(1).mean(1), reduction)


def mask_iou_loss(pred_soft_mask: torch.Tensor, target_mask: torch.Tensor, reduction: str = "mean",
                  eps: float = 1e-6) -> torch.Tensor:
    """Mask IoU loss: ``1 - sum(p t) / (sum(p + t - p t) + eps)`` per image (1 - soft IoU, no threshold).

    Args:
        pred_soft_mask: ``(B, 1, H, W)`` float in ``[0, 1]``, the rendered DIB-R soft silhouette, at the
            target's resolution.
        target_mask: ``(B, 1, H, W)`` float in ``[0, 1]``.
        reduction: ``"mean"`` (default), ``"sum"``, or ``"none"`` (per image, ``(B,)``).
        eps: added to the union (default 1e-6).
    Returns:
        Values in ``[0, 1]`` (0: identical binary masks); differentiable in ``pred_soft_mask``.
    """
    _check_masks(pred_soft_mask, target_mask)
    inter = (pred_soft_mask * target_mask).flatten(1).sum(1)
    union = (pred_soft_mask + target_mask - pred_soft_mask * target_mask).flatten(1).sum(1)
    return reduce_per_image(1 - inter / (union + eps), reduction)
