"""Inversion losses (DESIGN.md section 4, column "ours") and the ablation baselines.

Main terms:

* :func:`chamfer_texture_loss`: an image is a set of coloured points (pixel centre ``xy`` in
  ``[-1, 1]``, colour); between two sets, ``D(p, q) = max((Ds + eps_s)^alpha, 1) * (Da + eps_a)`` with
  ``Ds`` the squared ``xy`` distance, used **only as a weight** (no gradient), and ``Da`` the squared
  colour (or feature) distance; each point takes its nearest point of the other set under ``D``. Points
  within ``2 * k * 0.16`` (normalized units) of each other cost only their colour difference, farther
  ones pay more: a misalignment of a few pixels barely matters, a colour from across the image does.
  Two-sided by default (mean per side, summed); ``one-sided`` (pred -> target) is the authors' code.
* :func:`chamfer_feature_loss`: the same on VGG-19 relu3_1 features of the masked images, at 1/4
  resolution, the masks area-averaged and thresholded at 0.5.
* :func:`chamfer_mask_loss`: projected vertices ``(B, N, 2)`` vs the target mask's foreground pixel
  centres, two-sided, mean of squared nearest distances per side; no rasterization.
* :func:`smoothness_loss` (``1 - cos`` of neighbouring face normals) and :func:`latent_loss` (``mean(z^2 / 2)``).

Baselines (paper's ablation), selectable by name in :data:`TEXTURE_LOSSES` and :data:`MASK_LOSSES`:
pixel L1/L2, perceptual (feature L2/L1), contextual (Mechrez et al. 2018); mask L1 and IoU on the
rendered soft mask.

Conventions: images ``(B, 3, H, W)`` in ``[0, 1]``, masks ``(B, 1, H, W)`` in ``[0, 1]`` (foreground where
``> 0.5``); predicted and target image each come with their own mask. ``reduction`` is ``"mean"``
(scalar over the batch), ``"sum"``, or ``"none"`` (per image, ``(B,)``).

Memory: nearest neighbours are searched without autograd, in chunks of rows (the 8,192 x 8,192
distance matrix of one image would take 256 MB); the loss is then recomputed with gradients on the
matched pairs only, which gives the same value and gradient as differentiating the minimum directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ._checks import check_batch, check_finite, check_shape
from .camera import pixel_centers
from .features import FeatureExtractor, masked_features
from .mesh import face_adjacency, face_normals

REDUCTIONS = ("mean", "sum", "none")

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChamferTextureConfig:
    """Chamfer texture loss settings (defaults: the authors' constants).

    ``eps_s = 1 - (2 * k * 0.16)^2``: with ``k = 1`` points closer than 0.32 (16% of the image width in
    normalized units) get weight 1. ``num_points``: random foreground points per image (all when fewer);
    quick/lite profiles can use fewer. ``chunk_size``: rows of the distance matrix per chunk.
    """

    num_points: int = 8192
    k: float = 1.0
    alpha: float = 1.0
    eps_a: float = 1.0
    two_sided: bool = True
    mask_threshold: float = 0.5
    chunk_size: int = 256

    def __post_init__(self) -> None:
        if self.num_points < 1 or self.chunk_size < 1:
            raise ValueError("ChamferTextureConfig needs num_points >= 1 and chunk_size >= 1")
        if self.alpha <= 0:
            raise ValueError(f"ChamferTextureConfig.alpha must be positive, got {self.alpha}")

    @property
    def eps_s(self) -> float:
        return 1.0 - (2.0 * self.k * 0.16) ** 2


@dataclass(frozen=True)
class ChamferMaskConfig:
    """Chamfer mask loss settings. ``max_target_points``: subsample the mask's pixels (``None``: all)."""

    two_sided: bool = True
    mask_threshold: float = 0.5
    max_target_points: Optional[int] = None
    chunk_size: int = 4096


@dataclass(frozen=True)
class ContextualConfig:
    """Contextual loss (Mechrez et al. 2018) settings: band width ``h``, ``eps`` of the relative distance,
    at most ``num_points`` foreground feature vectors per image (the loss is dense ``N x M`` with gradients)."""

    band_width: float = 0.5
    eps: float = 1e-5
    num_points: int = 1024
    mask_threshold: float = 0.5


@dataclass(frozen=True)
class LossWeights:
    """Weights of the inversion objective (the authors' values; smoothness is off in their inversion,
    ``5e-5`` when on, and on by default here)."""

    texture: float = 1.0
    feature: float = 0.04
    mask: float = 10.0
    smooth: float = 5e-5
    latent: float = 0.05


# --------------------------------------------------------------------------------------------------
# Checks and helpers
# --------------------------------------------------------------------------------------------------


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image
    raise ValueError(f"unknown reduction {reduction!r}; use one of {REDUCTIONS}")


def _check_image_mask(name: str, image: torch.Tensor, mask: torch.Tensor, channels: Optional[int] = 3) -> None:
    check_shape(f"{name}_image", image, (None, channels, None, None), f"(B, {channels or 'C'}, H, W)")
    check_shape(f"{name}_mask", mask, (None, 1, None, None), "(B, 1, H, W)")
    if image.shape[0] != mask.shape[0] or image.shape[2:] != mask.shape[2:]:
        raise ValueError(
            f"{name}_image {tuple(image.shape)} and {name}_mask {tuple(mask.shape)} differ in batch or size; "
            "resize the mask to the image (same B, H, W)"
        )
    check_finite(f"{name}_image", image)
    check_finite(f"{name}_mask", mask)


def _check_pair(pred_image, pred_mask, target_image, target_mask, channels: Optional[int] = 3,
                same_size: bool = False) -> int:
    _check_image_mask("pred", pred_image, pred_mask, channels)
    _check_image_mask("target", target_image, target_mask, channels)
    if pred_image.shape[0] != target_image.shape[0]:
        raise ValueError(f"pred and target batch sizes differ: {pred_image.shape[0]} vs {target_image.shape[0]}")
    if same_size and pred_image.shape[2:] != target_image.shape[2:]:
        raise ValueError(f"pred and target images differ in size: {tuple(pred_image.shape[2:])} vs "
                         f"{tuple(target_image.shape[2:])}; this loss compares pixel by pixel")
    return pred_image.shape[0]


def _check_nonempty(name: str, mask: torch.Tensor, threshold: float) -> None:
    counts = (mask.detach() > threshold).flatten(1).sum(1)
    empty = [i for i, c in enumerate(counts.tolist()) if c == 0]
    if empty:
        raise ValueError(
            f"{name} is empty (no value > {threshold}) for batch item(s) {empty}: a Chamfer loss needs at least "
            "one foreground point per image; check the mask, the camera, or drop these items"
        )


def foreground_points(
    values: torch.Tensor,
    mask: torch.Tensor,
    num_points: Optional[int] = None,
    threshold: float = 0.5,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's foreground as points: ``xy`` ``(K, 2)`` pixel centres in ``[-1, 1]`` and ``values`` ``(K, C)``.

    Args:
        values: ``(C, H, W)`` colours or features; mask ``(1, H, W)``.
        num_points: keep a random subset of this many (without replacement) when there are more.
        generator: CPU ``torch.Generator`` for the subset (global RNG when ``None``).
    """
    c, h, w = values.shape
    idx = (mask.reshape(-1) > threshold).nonzero().squeeze(1)
    if num_points is not None and idx.numel() > num_points:
        pick = torch.randperm(idx.numel(), generator=generator)[:num_points].to(idx.device)
        idx = idx[pick]
    xy = pixel_centers(h, w, device=values.device, dtype=values.dtype).reshape(-1, 2)[idx]
    return xy, values.reshape(c, -1)[:, idx].t()


def _augment(a: torch.Tensor, eps: float, left: bool) -> torch.Tensor:
    """Rows ``a`` ``(N, C)`` as ``[a, |a|^2 + eps, 1]`` (left, ``(N, C + 2)``) or columns ``[-2 a, 1, |a|^2]``
    (right, ``(C + 2, N)``), so that ``left @ right = |a_i - b_j|^2 + eps``."""
    sq = (a * a).sum(1, keepdim=True)
    one = torch.ones_like(sq)
    if left:
        return torch.cat([a, sq + eps, one], dim=1).contiguous()
    return torch.cat([-2 * a, one, sq], dim=1).t().contiguous()


def _nearest_both_ways(
    n: int, m: int, block: Callable[[int, int, Optional[torch.Tensor]], torch.Tensor], chunk: int, both: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Argmins of an ``(n, m)`` cost matrix along both axes, built in row chunks (no autograd).

    ``block(s, e, cols)`` returns rows ``s:e`` of the matrix (columns ``cols``, or all when ``None``).
    Row argmins come chunk by chunk. Column minima are tracked by value only (``amin`` along rows is
    several times faster than ``min`` with indices on the CPU) together with the chunk holding them;
    the column argmins are then found in one more pass over just those (chunk, column) blocks.
    Returns ``(idx_row (n,), idx_col (m,) or None)``.
    """
    probe = block(0, min(n, chunk), None)
    dev = probe.device
    idx_row = torch.empty(n, dtype=torch.long, device=dev)
    best_col = torch.full((m,), float("inf"), dtype=probe.dtype, device=dev)
    chunk_col = torch.zeros(m, dtype=torch.long, device=dev)
    for ci, s in enumerate(range(0, n, chunk)):
        e = min(n, s + chunk)
        d = probe if ci == 0 else block(s, e, None)
        idx_row[s:e] = d.argmin(1)
        if both:
            val = d.amin(0)
            better = val < best_col
            best_col = torch.where(better, val, best_col)
            chunk_col = torch.where(better, torch.full_like(chunk_col, ci), chunk_col)
    if not both:
        return idx_row, None
    idx_col = torch.empty(m, dtype=torch.long, device=dev)
    for ci in torch.unique(chunk_col).tolist():
        cols = (chunk_col == ci).nonzero().squeeze(1)
        s = ci * chunk
        idx_col[cols] = block(s, min(n, s + chunk), cols).argmin(0) + s
    return idx_row, idx_col


# --------------------------------------------------------------------------------------------------
# Chamfer losses
# --------------------------------------------------------------------------------------------------


def chamfer_colored_points(
    pred_xy: torch.Tensor,
    pred_values: torch.Tensor,
    target_xy: torch.Tensor,
    target_values: torch.Tensor,
    config: ChamferTextureConfig = ChamferTextureConfig(),
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Chamfer distance between two coloured point sets (one image each).

    Args:
        pred_xy: ``(N, 2)``, pred_values ``(N, C)``; target_xy ``(M, 2)``, target_values ``(M, C)``.
    Returns:
        ``(pred -> target, target -> pred)`` mean distances (scalars; the second ``None`` when
        ``config.two_sided`` is False). Each is at least ``eps_a``. Gradients reach the values only:
        ``Ds`` is a weight without gradient.
    """
    if pred_xy.shape[0] == 0 or target_xy.shape[0] == 0:
        raise ValueError("Chamfer distance needs non-empty point sets on both sides")
    eps_s, alpha, eps_a = config.eps_s, config.alpha, config.eps_a
    n, m = pred_xy.shape[0], target_xy.shape[0]
    with torch.no_grad():
        # Augmented coordinates fold the norms and the epsilons into one matrix product each:
        # [a, |a|^2 + eps, 1] . [-2 b, 1, |b|^2] = |a - b|^2 + eps.
        pxy_aug = _augment(pred_xy.detach().float(), eps_s, left=True)
        txy_aug = _augment(target_xy.detach().float(), 0.0, left=False)
        pv_aug = _augment(pred_values.detach().float(), eps_a, left=True)
        tv_aug = _augment(target_values.detach().float(), 0.0, left=False)

        def block(s: int, e: int, cols: Optional[torch.Tensor]) -> torch.Tensor:
            rxy = txy_aug if cols is None else txy_aug[:, cols]
            rv = tv_aug if cols is None else tv_aug[:, cols]
            d = pxy_aug[s:e] @ rxy  # Ds + eps_s
            if alpha != 1:
                d.clamp_(min=0).pow_(alpha)
            d.clamp_(min=1.0)
            da = pv_aug[s:e] @ rv  # Da + eps_a
            if eps_a <= 0:
                da.clamp_(min=0)
            return d.mul_(da)

        idx_p, idx_t = _nearest_both_ways(n, m, block, config.chunk_size, config.two_sided)

    def matched(a_xy, a_v, b_xy, b_v):
        with torch.no_grad():  # Ds: a weight only
            weight = (((a_xy - b_xy) ** 2).sum(-1) + eps_s).pow(alpha).clamp_min(1.0)
        return (weight * (((a_v - b_v) ** 2).sum(-1) + eps_a)).mean()

    forward = matched(pred_xy, pred_values, target_xy[idx_p], target_values[idx_p])
    backward = matched(target_xy, target_values, pred_xy[idx_t], pred_values[idx_t]) if config.two_sided else None
    return forward, backward


def _chamfer_on_maps(pred: torch.Tensor, pred_mask: torch.Tensor, target: torch.Tensor, target_mask: torch.Tensor,
                     config: ChamferTextureConfig, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Per-image Chamfer texture distance ``(B,)`` between value maps ``(B, C, H, W)`` with masks ``(B, 1, H, W)``."""
    out = []
    for b in range(pred.shape[0]):
        pxy, pv = foreground_points(pred[b], pred_mask[b], config.num_points, config.mask_threshold, generator)
        txy, tv = foreground_points(target[b], target_mask[b], config.num_points, config.mask_threshold, generator)
        fwd, bwd = chamfer_colored_points(pxy, pv, txy, tv, config)
        out.append(fwd if bwd is None else fwd + bwd)
    return torch.stack(out)


def chamfer_texture_loss(
    pred_image: torch.Tensor,
    pred_mask: torch.Tensor,
    target_image: torch.Tensor,
    target_mask: torch.Tensor,
    config: ChamferTextureConfig = ChamferTextureConfig(),
    reduction: str = "mean",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Pixel-level Chamfer texture loss between the foregrounds of two images.

    Args:
        pred_image, target_image: ``(B, 3, H, W)`` in ``[0, 1]`` (the two may differ in size).
        pred_mask, target_mask: ``(B, 1, H, W)`` matching their image; foreground ``> config.mask_threshold``.
        generator: CPU generator for the point subsets (``None``: global RNG).
    Returns:
        ``(B,)`` for ``reduction="none"``, else a scalar. Minimum ``eps_a`` per side (identical images
        with all points kept give exactly ``eps_a`` per side).
    """
    _check_pair(pred_image, pred_mask, target_image, target_mask)
    _check_nonempty("pred_mask", pred_mask, config.mask_threshold)
    _check_nonempty("target_mask", target_mask, config.mask_threshold)
    return _reduce(_chamfer_on_maps(pred_image, pred_mask, target_image, target_mask, config, generator), reduction)


def chamfer_feature_loss(
    pred_image: torch.Tensor,
    pred_mask: torch.Tensor,
    target_image: torch.Tensor,
    target_mask: torch.Tensor,
    extractor: FeatureExtractor,
    config: ChamferTextureConfig = ChamferTextureConfig(),
    reduction: str = "mean",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Feature-level Chamfer texture loss: :func:`chamfer_texture_loss` on ``extractor`` features.

    Features of ``image * mask`` at the extractor's resolution (VGG-19 relu3_1: 1/4), L2-normalized per
    location; masks area-averaged to that resolution and thresholded at 0.5. Record ``extractor.name``
    with any result (it may be the offline fallback).
    """
    if extractor is None:
        raise ValueError("chamfer_feature_loss needs a feature extractor: pass extractor=load_feature_extractor()")
    _check_pair(pred_image, pred_mask, target_image, target_mask)
    _check_nonempty("pred_mask", pred_mask, config.mask_threshold)
    _check_nonempty("target_mask", target_mask, config.mask_threshold)
    pf, pm = masked_features(extractor, pred_image, pred_mask, config.mask_threshold)
    tf, tm = masked_features(extractor, target_image, target_mask, config.mask_threshold)
    _check_nonempty("pred_mask at feature resolution (mask too small)", pm, 0.5)
    _check_nonempty("target_mask at feature resolution (mask too small)", tm, 0.5)
    return _reduce(_chamfer_on_maps(pf, pm, tf, tm, config, generator), reduction)


def chamfer_mask_loss(
    points: torch.Tensor,
    target_mask: torch.Tensor,
    config: ChamferMaskConfig = ChamferMaskConfig(),
    reduction: str = "mean",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Chamfer distance between projected vertices and the target mask's foreground pixel centres.

    Args:
        points: ``(B, N, 2)`` projected vertices in normalized image coordinates
            (:func:`~meshinv_lite.render.project`), all of them (no visibility test).
        target_mask: ``(B, 1, H, W)``; foreground pixels ``> config.mask_threshold``.
    Returns:
        ``mean_v min_p |v - p|^2 + mean_p min_v |p - v|^2`` per image (second term dropped when not
        ``two_sided``), reduced by ``reduction``.
    """
    check_shape("points", points, (None, None, 2), "(B, N, 2) projected vertices")
    check_shape("target_mask", target_mask, (None, 1, None, None), "(B, 1, H, W)")
    check_batch(points=points, target_mask=target_mask)
    if points.shape[0] != target_mask.shape[0]:
        raise ValueError(f"points ({points.shape[0]}) and target_mask ({target_mask.shape[0]}) batch sizes differ")
    if points.shape[1] == 0:
        raise ValueError("points is empty: need at least one projected vertex")
    check_finite("points", points)
    check_finite("target_mask", target_mask)
    _check_nonempty("target_mask", target_mask, config.mask_threshold)
    h, w = target_mask.shape[-2:]
    centers = pixel_centers(h, w, device=points.device, dtype=points.dtype).reshape(-1, 2)
    out = []
    for b in range(points.shape[0]):
        idx = (target_mask[b].reshape(-1) > config.mask_threshold).nonzero().squeeze(1)
        if config.max_target_points is not None and idx.numel() > config.max_target_points:
            idx = idx[torch.randperm(idx.numel(), generator=generator)[: config.max_target_points].to(idx.device)]
        tgt = centers[idx]
        v = points[b]
        with torch.no_grad():
            t_aug = _augment(tgt.float(), 0.0, left=True)
            v_aug = _augment(v.detach().float(), 0.0, left=False)

            def block(s: int, e: int, cols: Optional[torch.Tensor]) -> torch.Tensor:
                return (t_aug[s:e] @ (v_aug if cols is None else v_aug[:, cols])).clamp_(min=0)

            idx_t, idx_v = _nearest_both_ways(tgt.shape[0], v.shape[0], block, config.chunk_size, True)
        loss = ((v - tgt[idx_v]) ** 2).sum(-1).mean()
        if config.two_sided:
            loss = loss + ((tgt - v[idx_t]) ** 2).sum(-1).mean()
        out.append(loss)
    return _reduce(torch.stack(out), reduction)


# --------------------------------------------------------------------------------------------------
# Regularizers
# --------------------------------------------------------------------------------------------------


def smoothness_loss(verts: torch.Tensor, faces: torch.Tensor, face_pairs: Optional[torch.Tensor] = None,
                    reduction: str = "mean") -> torch.Tensor:
    """Mean ``1 - cos`` between the normals of faces sharing an edge, per mesh; 0 for a flat surface.

    Args:
        verts: ``(B, N, 3)``; faces ``(F, 3)``; face_pairs ``(E, 2)`` from
            :func:`~meshinv_lite.mesh.face_adjacency` (computed when ``None``; pass it in loops).
    """
    check_shape("verts", verts, (None, None, 3), "(B, N, 3)")
    check_finite("verts", verts)
    pairs = face_adjacency(faces) if face_pairs is None else face_pairs
    n = face_normals(verts, faces.to(verts.device))
    pairs = pairs.to(verts.device)
    return _reduce((1 - (n[:, pairs[:, 0]] * n[:, pairs[:, 1]]).sum(-1)).mean(1), reduction)


def latent_loss(z: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``mean(z^2 / 2)`` over the latent dimensions, per code: the negative log-prior of ``N(0, I)`` up to a constant."""
    check_shape("z", z, (None, None), "(B, D) latent codes")
    check_finite("z", z)
    return _reduce((z * z / 2).mean(1), reduction)


# --------------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------------


def masked_pixel_loss(
    pred_image: torch.Tensor,
    pred_mask: torch.Tensor,
    target_image: torch.Tensor,
    target_mask: torch.Tensor,
    p: int = 1,
    reduction: str = "mean",
) -> torch.Tensor:
    """Pixel L1 (``p=1``) or L2 (``p=2``, squared) between ``pred * pred_mask`` and ``target * target_mask``.

    Summed over channels and pixels, divided by ``3 x`` the area of the union of the masks: the mean
    error per channel over the pixels either image covers. Images must have the same size.
    """
    _check_pair(pred_image, pred_mask, target_image, target_mask, same_size=True)
    union = torch.maximum(pred_mask, target_mask).flatten(1).sum(1)
    if (union.detach() <= 0).any():
        raise ValueError("pred_mask and target_mask are both empty for some batch item: nothing to compare")
    diff = pred_image * pred_mask - target_image * target_mask
    err = diff.abs() if p == 1 else diff.pow(2) if p == 2 else None
    if err is None:
        raise ValueError(f"masked_pixel_loss supports p=1 (L1) or p=2 (L2), got {p}")
    return _reduce(err.flatten(1).sum(1) / (3 * union), reduction)


def perceptual_loss(
    pred_image: torch.Tensor,
    pred_mask: torch.Tensor,
    target_image: torch.Tensor,
    target_mask: torch.Tensor,
    extractor: FeatureExtractor,
    p: int = 2,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean ``|f(pred * m_p) - f(target * m_t)|^p`` over feature channels and locations (``p`` = 1 or 2)."""
    if extractor is None:
        raise ValueError("perceptual_loss needs a feature extractor: pass extractor=load_feature_extractor()")
    _check_pair(pred_image, pred_mask, target_image, target_mask, same_size=True)
    pf, _ = masked_features(extractor, pred_image, pred_mask)
    tf, _ = masked_features(extractor, target_image, target_mask)
    diff = pf - tf
    if p not in (1, 2):
        raise ValueError(f"perceptual_loss supports p=1 or p=2, got {p}")
    err = diff.abs() if p == 1 else diff.pow(2)
    return _reduce(err.flatten(1).mean(1), reduction)


def contextual_loss(
    pred_image: torch.Tensor,
    pred_mask: torch.Tensor,
    target_image: torch.Tensor,
    target_mask: torch.Tensor,
    extractor: FeatureExtractor,
    config: ContextualConfig = ContextualConfig(),
    reduction: str = "mean",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Contextual loss ``-log CX(X, Y)`` (Mechrez et al. 2018) between foreground feature sets.

    ``X``: features of the masked prediction at foreground locations, ``Y``: of the target. Cosine
    distances after centring on ``mean(Y)``, relative distances ``d_ij / (min_k d_ik + eps)``,
    affinities ``exp((1 - d~) / h)`` normalized over ``j``, ``CX = mean_j max_i CX_ij``. 0 for identical sets.
    """
    if extractor is None:
        raise ValueError("contextual_loss needs a feature extractor: pass extractor=load_feature_extractor()")
    _check_pair(pred_image, pred_mask, target_image, target_mask)
    _check_nonempty("pred_mask", pred_mask, config.mask_threshold)
    _check_nonempty("target_mask", target_mask, config.mask_threshold)
    pf, pm = masked_features(extractor, pred_image, pred_mask, config.mask_threshold)
    tf, tm = masked_features(extractor, target_image, target_mask, config.mask_threshold)
    _check_nonempty("pred_mask at feature resolution (mask too small)", pm, 0.5)
    _check_nonempty("target_mask at feature resolution (mask too small)", tm, 0.5)
    out = []
    for b in range(pf.shape[0]):
        _, x = foreground_points(pf[b], pm[b], config.num_points, 0.5, generator)
        _, y = foreground_points(tf[b], tm[b], config.num_points, 0.5, generator)
        mu = y.mean(0, keepdim=True)
        xc, yc = F.normalize(x - mu, dim=1), F.normalize(y - mu, dim=1)
        d = (1 - xc @ yc.t()).clamp_min(0)  # (N, M)
        d_rel = d / (d.min(1, keepdim=True).values + config.eps)
        w = torch.softmax((1 - d_rel) / config.band_width, dim=1)  # exp(.) / sum_j exp(.)
        cx = w.max(0).values.mean()
        out.append(-torch.log(cx.clamp_min(1e-12)))
    return _reduce(torch.stack(out), reduction)


def mask_l1_loss(soft_mask: torch.Tensor, target_mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean ``|soft_mask - target_mask|`` per image; both ``(B, 1, H, W)`` in ``[0, 1]``."""
    _check_masks(soft_mask, target_mask)
    return _reduce((soft_mask - target_mask).abs().flatten(1).mean(1), reduction)


def mask_iou_loss(soft_mask: torch.Tensor, target_mask: torch.Tensor, reduction: str = "mean", eps: float = 1e-6) -> torch.Tensor:
    """``1 - sum(p t) / sum(p + t - p t)`` per image (soft IoU); both ``(B, 1, H, W)`` in ``[0, 1]``."""
    _check_masks(soft_mask, target_mask)
    inter = (soft_mask * target_mask).flatten(1).sum(1)
    union = (soft_mask + target_mask - soft_mask * target_mask).flatten(1).sum(1)
    return _reduce(1 - inter / (union + eps), reduction)


def _check_masks(soft_mask: torch.Tensor, target_mask: torch.Tensor) -> None:
    check_shape("soft_mask", soft_mask, (None, 1, None, None), "(B, 1, H, W) rendered soft mask")
    check_shape("target_mask", target_mask, (None, 1, None, None), "(B, 1, H, W)")
    if soft_mask.shape != target_mask.shape:
        raise ValueError(f"soft_mask {tuple(soft_mask.shape)} and target_mask {tuple(target_mask.shape)} differ; "
                         "render at the target mask's resolution")
    check_finite("soft_mask", soft_mask)
    check_finite("target_mask", target_mask)


# --------------------------------------------------------------------------------------------------
# Registries
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredLoss:
    """A loss selectable by name, with a uniform call signature per family.

    Texture losses: ``loss(pred_image, pred_mask, target_image, target_mask, *, extractor=None,
    reduction="mean", generator=None)``. Mask losses: ``loss(target_mask, *, points=None,
    soft_mask=None, reduction="mean", generator=None)``. ``needs`` names the optional inputs it uses
    (``"extractor"``, ``"points"``, ``"soft_mask"``), so callers compute only what is needed.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    needs: tuple[str, ...]
    description: str

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        return self.fn(*args, **kwargs)


def _texture_entry(name: str, needs: tuple[str, ...], description: str, compute):
    def fn(pred_image, pred_mask, target_image, target_mask, *, extractor=None, reduction="mean", generator=None):
        if "extractor" in needs and extractor is None:
            raise ValueError(f"texture loss {name!r} needs a feature extractor: pass extractor=load_feature_extractor()")
        return compute(pred_image, pred_mask, target_image, target_mask, extractor, reduction, generator)

    return RegisteredLoss(name, fn, needs, description)


def _mask_entry(name: str, needs: str, description: str, compute):
    def fn(target_mask, *, points=None, soft_mask=None, reduction="mean", generator=None):
        given = {"points": points, "soft_mask": soft_mask}[needs]
        if given is None:
            raise ValueError(f"mask loss {name!r} needs {needs}=...: "
                             + ("projected vertices (B, N, 2)" if needs == "points" else "the rendered soft mask (B, 1, H, W)"))
        return compute(given, target_mask, reduction, generator)

    return RegisteredLoss(name, fn, (needs,), description)


TEXTURE_LOSSES: dict[str, RegisteredLoss] = {
    "chamfer": _texture_entry(
        "chamfer", (), "pixel-level Chamfer texture loss (ours, two-sided)",
        lambda p, pm, t, tm, ex, r, g: chamfer_texture_loss(p, pm, t, tm, reduction=r, generator=g)),
    "chamfer_feature": _texture_entry(
        "chamfer_feature", ("extractor",), "feature-level Chamfer texture loss on VGG-19 relu3_1",
        lambda p, pm, t, tm, ex, r, g: chamfer_feature_loss(p, pm, t, tm, ex, reduction=r, generator=g)),
    "l1": _texture_entry(
        "l1", (), "pixel L1 between masked images",
        lambda p, pm, t, tm, ex, r, g: masked_pixel_loss(p, pm, t, tm, p=1, reduction=r)),
    "l2": _texture_entry(
        "l2", (), "pixel L2 (squared) between masked images",
        lambda p, pm, t, tm, ex, r, g: masked_pixel_loss(p, pm, t, tm, p=2, reduction=r)),
    "perceptual": _texture_entry(
        "perceptual", ("extractor",), "feature L2 (squared) between masked images",
        lambda p, pm, t, tm, ex, r, g: perceptual_loss(p, pm, t, tm, ex, p=2, reduction=r)),
    "perceptual_l1": _texture_entry(
        "perceptual_l1", ("extractor",), "feature L1 between masked images",
        lambda p, pm, t, tm, ex, r, g: perceptual_loss(p, pm, t, tm, ex, p=1, reduction=r)),
    "contextual": _texture_entry(
        "contextual", ("extractor",), "contextual loss (Mechrez et al. 2018) on foreground features",
        lambda p, pm, t, tm, ex, r, g: contextual_loss(p, pm, t, tm, ex, reduction=r, generator=g)),
}

MASK_LOSSES: dict[str, RegisteredLoss] = {
    "chamfer": _mask_entry(
        "chamfer", "points", "Chamfer between projected vertices and mask pixels (ours)",
        lambda x, tm, r, g: chamfer_mask_loss(x, tm, reduction=r, generator=g)),
    "l1": _mask_entry("l1", "soft_mask", "L1 between soft and target masks",
                      lambda x, tm, r, g: mask_l1_loss(x, tm, reduction=r)),
    "iou": _mask_entry("iou", "soft_mask", "1 - soft IoU", lambda x, tm, r, g: mask_iou_loss(x, tm, reduction=r)),
}


def get_texture_loss(name: str) -> RegisteredLoss:
    """The texture loss registered as ``name`` (see :data:`TEXTURE_LOSSES`)."""
    try:
        return TEXTURE_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown texture loss {name!r}; choose one of {sorted(TEXTURE_LOSSES)}") from None


def get_mask_loss(name: str) -> RegisteredLoss:
    """The mask loss registered as ``name`` (see :data:`MASK_LOSSES`)."""
    try:
        return MASK_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown mask loss {name!r}; choose one of {sorted(MASK_LOSSES)}") from None
