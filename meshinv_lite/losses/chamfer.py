"""The Chamfer losses of MeshInversion: texture (pixels and CNN features, paper Eq. 5) and mask (projected vertices)."""
from __future__ import annotations

from typing import Optional

import torch

from .._checks import (
    check_finite,
    check_image_pair,
    check_nonempty_foreground,
    check_shape,
    reduce_per_image,
    require_extractor,
)
from ..features.base import FeatureExtractor, masked_features
from ..render.camera import pixel_centers
from .nearest import (
    ALPHA,
    CHUNK_ROWS,
    EPS_A,
    EPS_S,
    MASK_THRESHOLD,
    _check_chamfer_constants,
    chamfer_on_maps,
    nearest_2d,
)

#: Foreground points per image of the Chamfer texture losses (the authors' 8,192).
NUM_POINTS = 8192


def chamfer_texture_loss(
    pred_img: torch.Tensor,
    pred_mask: torch.Tensor,
    target_img: torch.Tensor,
    target_mask: torch.Tensor,
    num_points: Optional[int] = NUM_POINTS,
    two_sided: bool = True,
    eps_s: float = EPS_S,
    alpha: float = ALPHA,
    eps_a: float = EPS_A,
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
    chunk_size: int = CHUNK_ROWS,
) -> torch.Tensor:
    """Pixel-level Chamfer texture loss between the foregrounds of two images.

    Args:
        pred_img, target_img: ``(B, 3, H, W)`` in ``[0, 1]`` (the two may differ in size).
        pred_mask, target_mask: ``(B, 1, H, W)`` in ``[0, 1]``, matching their image; foreground ``> 0.5``.
        num_points: random foreground points kept per image (``None``: all).
        two_sided: pred -> target plus target -> pred (ours); ``False``: pred -> target (authors' code).
        eps_s, alpha, eps_a: constants of ``D = max((Ds + eps_s)^alpha, 1) * (Da + eps_a)``.
        generator: CPU generator for the point subsets (``None``: global RNG).
    Returns:
        ``(B,)`` for ``reduction="none"``, else a scalar; at least ``eps_a`` per side, exactly that for
        identical inputs when all points are kept. Gradients flow to ``pred_img`` (and ``target_img``
        if it requires them), not through the masks.
    Raises:
        ValueError: wrong shapes, NaNs, or an empty foreground (naming the batch index).
    """
    check_image_pair(pred_img, pred_mask, target_img, target_mask)
    _check_chamfer_constants(eps_s, alpha, eps_a, num_points)
    check_nonempty_foreground("pred_mask", pred_mask, MASK_THRESHOLD)
    check_nonempty_foreground("target_mask", target_mask, MASK_THRESHOLD)
    per_image = chamfer_on_maps(pred_img, pred_mask, target_img, target_mask, num_points, generator,
                                 two_sided=two_sided, eps_s=eps_s, alpha=alpha, eps_a=eps_a, chunk_size=chunk_size)
    return reduce_per_image(per_image, reduction)


def chamfer_feature_loss(
    pred_img: torch.Tensor,
    pred_mask: torch.Tensor,
    target_img: torch.Tensor,
    target_mask: torch.Tensor,
    extractor: FeatureExtractor,
    num_points: Optional[int] = NUM_POINTS,
    two_sided: bool = True,
    eps_s: float = EPS_S,
    alpha: float = ALPHA,
    eps_a: float = EPS_A,
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
    chunk_size: int = CHUNK_ROWS,
) -> torch.Tensor:
    """Feature-level Chamfer texture loss: :func:`chamfer_texture_loss` on ``extractor`` features.

    The points are the locations of the feature grid (1/4 resolution for VGG-19 relu3_1; coordinates =
    pixel centres of that grid) where the average-pooled mask exceeds 0.5, valued by the unit-norm
    features of ``image * mask``. Arguments and return as :func:`chamfer_texture_loss`. Record
    ``extractor.name`` with any result: it may be the OFFLINE FALLBACK (random, not perceptual, features).
    """
    extractor = require_extractor("chamfer_feature_loss", extractor)
    check_image_pair(pred_img, pred_mask, target_img, target_mask)
    _check_chamfer_constants(eps_s, alpha, eps_a, num_points)
    check_nonempty_foreground("pred_mask", pred_mask, MASK_THRESHOLD)
    check_nonempty_foreground("target_mask", target_mask, MASK_THRESHOLD)
    pf, pm = masked_features(extractor, pred_img, pred_mask)
    tf, tm = masked_features(extractor, target_img, target_mask)
    check_nonempty_foreground("pred_mask at feature resolution (foreground too small)", pm, MASK_THRESHOLD)
    check_nonempty_foreground("target_mask at feature resolution (foreground too small)", tm, MASK_THRESHOLD)
    per_image = chamfer_on_maps(pf, pm, tf, tm, num_points, generator,
                                 two_sided=two_sided, eps_s=eps_s, alpha=alpha, eps_a=eps_a, chunk_size=chunk_size)
    return reduce_per_image(per_image, reduction)


def chamfer_mask_loss(
    projected_verts: torch.Tensor,
    target_mask: torch.Tensor,
    num_points: Optional[int] = None,
    reduction: str = "mean",
    two_sided: bool = True,
    generator: Optional[torch.Generator] = None,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Chamfer distance between projected vertices and the target mask's foreground pixel centres.

    Args:
        projected_verts: ``(B, N, 2)`` all projected vertices in normalized image coordinates
            (x right, y up; no visibility test, no rasterization).
        target_mask: ``(B, 1, H, W)`` in ``[0, 1]``; foreground pixels ``> 0.5``.
        num_points: subsample the foreground pixels to this many per image (``None``: all).
        two_sided: add the mask -> vertices side (ours, the authors' default).
    Returns:
        ``mean_v min_p |v - p|^2 + mean_p min_v |p - v|^2`` per image, reduced by ``reduction``.
        Gradients flow to ``projected_verts``.
    """
    check_shape("projected_verts", projected_verts, (None, None, 2), "(B, N, 2) projected vertices")
    check_shape("target_mask", target_mask, (None, 1, None, None), "(B, 1, H, W)")
    if projected_verts.shape[0] != target_mask.shape[0]:
        raise ValueError(f"projected_verts ({projected_verts.shape[0]}) and target_mask ({target_mask.shape[0]}) "
                         "batch sizes differ")
    if projected_verts.shape[1] == 0:
        raise ValueError("projected_verts is empty: need at least one vertex")
    if num_points is not None and num_points < 1:
        raise ValueError(f"num_points must be >= 1 (or None for all pixels), got {num_points}")
    check_finite("projected_verts", projected_verts)
    check_finite("target_mask", target_mask)
    check_nonempty_foreground("target_mask", target_mask, MASK_THRESHOLD)
    h, w = target_mask.shape[-2:]
    centers = pixel_centers(h, w, device=projected_verts.device, dtype=projected_verts.dtype).reshape(-1, 2)
    out = []
    for b in range(projected_verts.shape[0]):
        idx = (target_mask[b].detach().reshape(-1) > MASK_THRESHOLD).nonzero().squeeze(1)
        if num_points is not None and idx.numel() > num_points:
            idx = idx[torch.randperm(idx.numel(), generator=generator)[:num_points].to(idx.device)]
        pix, v = centers[idx], projected_verts[b]
        idx_pv, idx_vp = nearest_2d(pix, v, chunk_size)
        loss = ((v - pix[idx_vp]) ** 2).sum(-1).mean()
        if two_sided:
            loss = loss + ((pix - v[idx_pv]) ** 2).sum(-1).mean()
        out.append(loss)
    return reduce_per_image(torch.stack(out), reduction)
