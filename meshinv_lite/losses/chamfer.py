"""The Chamfer losses of MeshInversion: texture (pixels and CNN features, paper Eq. 5) and mask (projected vertices).

Eq. 5's point distance between a point ``p`` of one image and ``q`` of the other is
``D(p, q) = max((D_s + eps_s)^alpha, 1) * (D_a + eps_a)``: ``D_s`` the squared distance of their positions
(normalized image coordinates, x right, y up, in ``[-1, 1]``), a weight only (no gradient), ``D_a`` the squared
distance of their values (colours or features), with gradient. Constants (the authors' code):
``eps_s = 1 - (2 k 0.16)^2 = 0.8976`` (k = 1), ``alpha = 1``, ``eps_a = 1`` (:data:`~.nearest.EPS_S`,
:data:`~.nearest.ALPHA`, :data:`~.nearest.EPS_A`): positions within ``0.32`` of each other cost their value
difference only. Each point takes its nearest point of the other set under ``D``; a side is the mean over its
points; two-sided (ours) sums both sides, one-sided keeps pred -> target (the authors' code).
"""
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
    """Pixel-level Chamfer texture loss between the foregrounds of two images (paper Eq. 5).

    Each image's foreground (mask ``> 0.5``) is a set of points: position = pixel centre ``(x, y)`` in
    normalized coordinates (x right, y up, ``[-1, 1]``; the two images may differ in size, positions are
    comparable), value = its RGB colour. With ``D(p, q) = max((D_s + eps_s)^alpha, 1) * (D_a + eps_a)``
    (``D_s`` squared position distance, ``D_a`` squared colour distance summed over the 3 channels),
    per image: ``mean_{p in pred} min_q D(p, q)`` (pred -> target) plus, when ``two_sided``,
    ``mean_{q in target} min_p D(q, p)`` (target -> pred).

    Args:
        pred_img, target_img: ``(B, 3, H, W)`` float in ``[0, 1]`` (the two may differ in ``H, W``).
        pred_mask, target_mask: ``(B, 1, H, W)`` float in ``[0, 1]``, matching their image; only ``> 0.5`` is
            used (thresholded, not a weight). Every mask needs at least one foreground pixel.
        num_points: foreground points kept per image and side, a uniformly random subset without replacement
            (default :data:`NUM_POINTS` = 8192, the authors'); ``None``: all.
        two_sided: ``True`` (default, ours): pred -> target plus target -> pred; ``False``: pred -> target
            only (the authors' code).
        eps_s, alpha, eps_a: Eq. 5's ``eps_s`` (default 0.8976), ``alpha`` (> 0, default 1) and ``eps_a``
            (>= 0, default 1).
        generator: CPU ``torch.Generator`` for the point subsets (``None``: the global RNG).
        reduction: ``"mean"`` (default: over the batch), ``"sum"``, or ``"none"`` (per image).
        chunk_size: rows of the cost matrix per chunk in the large-set search (memory only; same value).
    Returns:
        ``(B,)`` for ``reduction="none"``, else a scalar, in ``pred_img``'s dtype; at least ``eps_a`` per
        side, exactly that for identical inputs when all points are kept. Differentiable in ``pred_img``
        at its foreground points (through ``D_a`` of the matched pairs; the matching itself is a discrete
        choice) and in ``target_img`` if it requires grad; not in the masks or positions.
    Raises:
        ValueError: wrong shapes, NaNs, values outside ``[0, 1]``, or an empty foreground (naming the batch index).
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

    The points are the locations of the feature grid (``(H / stride, W / stride)``, stride 4 for VGG-19
    relu3_1 and the in-domain networks; positions = pixel centres of that grid in ``[-1, 1]``) where the
    mask average-pooled by ``stride`` exceeds 0.5, valued by the features ``(C,)`` of ``image * mask``
    (unit-norm per location for the shipped extractors, so ``D_a`` lies in ``[0, 4]``).

    Args:
        pred_img, pred_mask, target_img, target_mask: as :func:`chamfer_texture_loss` (images ``(B, 3, H, W)``,
            masks ``(B, 1, H, W)``, in ``[0, 1]``); each foreground must survive the pooling.
        extractor: a frozen :class:`~meshinv_lite.features.base.FeatureExtractor` (required).
        num_points, two_sided, eps_s, alpha, eps_a, generator, reduction, chunk_size: as
            :func:`chamfer_texture_loss` (``num_points`` counts feature locations).
    Returns:
        As :func:`chamfer_texture_loss`; differentiable in ``pred_img`` through the extractor. Record
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
    """Chamfer mask loss: projected vertices ``P(S, c)`` against the target mask's foreground pixel centres.

    Plain squared Euclidean distances in normalized image coordinates (no ``eps``/``alpha`` weighting).

    Args:
        projected_verts: ``(B, N, 2)`` float, all projected vertices (:func:`meshinv_lite.render.project`)
            in normalized image coordinates (x right, y up, the image spans ``[-1, 1]``; no visibility test,
            no rasterization).
        target_mask: ``(B, 1, H, W)`` float in ``[0, 1]``; foreground pixels ``> 0.5`` (at least one per image);
            their centres are the target points (:func:`meshinv_lite.render.pixel_centers`).
        num_points: subsample the foreground pixels to this many per image, uniformly without replacement
            (default ``None``: all). The vertices are never subsampled.
        reduction: ``"mean"`` (default, over the batch), ``"sum"``, or ``"none"`` (per image, ``(B,)``).
        two_sided: ``True`` (default; ours and the authors'): vertices -> mask plus mask -> vertices;
            ``False``: the vertices -> mask side only.
        generator: CPU ``torch.Generator`` for the pixel subset (``None``: the global RNG).
        chunk_size: rows per chunk of the nearest-neighbour search (memory only; same value).
    Returns:
        ``mean_v min_p |v - p|^2 (+ mean_p min_v |p - v|^2)`` per image, reduced by ``reduction``, in
        ``projected_verts``' dtype. Differentiable in ``projected_verts`` (hence in the vertices and the
        camera); the mask gets no gradient.
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
