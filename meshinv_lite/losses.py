"""Inversion losses (DESIGN.md section 4, column "ours") and the ablation baselines.

Main terms:

* :func:`chamfer_texture_loss`: an image is a set of coloured points (pixel centre ``xy`` in
  ``[-1, 1]``, colour); between two sets, ``D_ij = max((Ds_ij + eps_s)^alpha, 1) * (Da_ij + eps_a)`` with
  ``Ds`` the squared ``xy`` distance, used **only as a weight** (no gradient), and ``Da`` the squared
  colour (or feature) distance (with gradient); each point takes its nearest point of the other set
  under ``D``. With the default ``eps_s = 1 - (2 * 0.16)^2`` points closer than ``0.32`` (normalized
  units, 16% of the image width) cost only their colour difference, farther ones pay more: a
  misalignment of a few pixels barely matters, a colour from across the image does. Two-sided by
  default (mean per side, summed); ``two_sided=False`` (pred -> target) is the authors' code.
* :func:`chamfer_feature_loss`: the same on VGG-19 relu3_1 features of the masked images, at 1/4
  resolution, the masks average-pooled by 4 and thresholded at 0.5.
* :func:`chamfer_mask_loss`: projected vertices ``(B, N, 2)`` vs the target mask's foreground pixel
  centres, two-sided, mean of squared nearest distances per side; no rasterization.
* :func:`smoothness_loss` (``1 - cos`` of neighbouring face normals) and :func:`latent_loss` (``mean(z^2 / 2)``).

Baselines (the paper's ablation), selectable by name through :func:`get_texture_loss` /
:func:`get_mask_loss`: pixel L1 / L2, perceptual (feature L2), contextual (Mechrez et al. 2018); mask
L1 and ``1 - soft IoU`` on the rendered soft mask.

Conventions: images ``(B, 3, H, W)`` in ``[0, 1]``, masks ``(B, 1, H, W)`` in ``[0, 1]`` (foreground where
``> 0.5``); the predicted and the target image each come with their own mask; normalized image
coordinates (x right, y up, ``[-1, 1]``) come only from :func:`meshinv_lite.camera.pixel_centers`.
``reduction`` is ``"mean"`` (scalar over the batch), ``"sum"``, or ``"none"`` (per image, ``(B,)``).

The nearest-neighbour search behind the Chamfer terms lives in :mod:`meshinv_lite.chamfer`, the ablation
baselines in :mod:`meshinv_lite.baselines`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ._checks import (check_finite, check_image_pair, check_nonempty_foreground, check_shape, reduce_per_image,
                      require_extractor)
from .baselines import contextual_loss, mask_iou_loss, mask_l1_loss, masked_pixel_loss, perceptual_loss
from .camera import pixel_centers
from .chamfer import (ALPHA, CHUNK_ROWS, EPS_A, EPS_S, MASK_THRESHOLD, _check_chamfer_constants, chamfer_on_maps,
                      nearest_2d)
from .chamfer import chamfer_point_sets, foreground_points  # noqa: F401  (re-exported: losses.chamfer_point_sets)
from .features import FeatureExtractor, masked_features
from .mesh import face_adjacency
from .silhouette_fit import normal_consistency

#: Foreground points per image of the Chamfer texture losses (the authors' 8,192).
NUM_POINTS = 8192


@dataclass(frozen=True)
class LossWeights:
    """Weights of the inversion objective: the authors' values (DESIGN.md section 4).

    Smoothness is off in the authors' inversion (``5e-5`` when on); here it is on with that weight.
    """

    texture: float = 1.0
    feature: float = 0.04
    mask: float = 10.0
    smooth: float = 5e-5
    latent: float = 0.05


# --------------------------------------------------------------------------------------------------
# Chamfer texture losses
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Chamfer mask loss
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Regularizers
# --------------------------------------------------------------------------------------------------


def smoothness_loss(verts: torch.Tensor, faces: torch.Tensor, face_pairs: Optional[torch.Tensor] = None,
                    reduction: str = "mean") -> torch.Tensor:
    """Mean ``1 - cos`` between the normals of faces sharing an edge, per mesh; 0 for a flat surface.

    Args:
        verts: ``(B, N, 3)``; faces ``(F, 3)`` long; face_pairs ``(E, 2)`` from
            :func:`meshinv_lite.mesh.face_adjacency` (computed when ``None``; pass it in loops).
    Returns:
        values in ``[0, 2]``, ``(B,)`` for ``reduction="none"``. (Wraps
        :func:`meshinv_lite.silhouette_fit.normal_consistency`.)
    """
    check_shape("verts", verts, (None, None, 3), "(B, N, 3)")
    check_shape("faces", faces, (None, 3), "(F, 3)")
    check_finite("verts", verts)
    pairs = face_adjacency(faces) if face_pairs is None else face_pairs
    check_shape("face_pairs", pairs, (None, 2), "(E, 2) from face_adjacency(faces)")
    return reduce_per_image(normal_consistency(verts, faces.to(verts.device), pairs.to(verts.device)), reduction)


def crease_loss(verts: torch.Tensor, faces: torch.Tensor, face_pairs: Optional[torch.Tensor] = None,
                reduction: str = "mean") -> torch.Tensor:
    """Mean ``relu(-cos)`` between the normals of faces sharing an edge, per mesh: zero unless the surface
    folds back on itself (neighbouring normals more than 90 degrees apart).

    Unlike :func:`smoothness_loss` it leaves ordinary curvature (a round head, a thin tail) alone and
    acts only on creases, the folds :func:`meshinv_lite.metrics.folded_fraction` counts. Values in
    ``[0, 1]``, ``(B,)`` for ``reduction="none"``.
    """
    from .mesh import face_normals

    check_shape("verts", verts, (None, None, 3), "(B, N, 3)")
    check_shape("faces", faces, (None, 3), "(F, 3)")
    pairs = (face_adjacency(faces) if face_pairs is None else face_pairs).to(verts.device)
    n = face_normals(verts, faces.to(verts.device))
    cos = (n[:, pairs[:, 0]] * n[:, pairs[:, 1]]).sum(-1)
    return reduce_per_image(F.relu(-cos).mean(1), reduction)


def latent_loss(z: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``mean(z^2 / 2)`` over the latent dimensions of each code ``z`` ``(B, D)``: the negative log-density
    of ``N(0, I)`` up to a constant (per dimension). ``(B,)`` for ``reduction="none"``."""
    check_shape("z", z, (None, None), "(B, D) latent codes")
    check_finite("z", z)
    return reduce_per_image((z * z / 2).mean(1), reduction)


# --------------------------------------------------------------------------------------------------
# Registries: uniform signatures, per-image values (B,), reduction left to the caller
# --------------------------------------------------------------------------------------------------

TextureLoss = Callable[..., torch.Tensor]
MaskLoss = Callable[..., torch.Tensor]


def _texture_chamfer(pred_img, pred_mask, target_img, target_mask, *, extractor=None, generator=None, **options):
    return chamfer_texture_loss(pred_img, pred_mask, target_img, target_mask, generator=generator,
                                reduction="none", **options)


def _texture_chamfer_feature(pred_img, pred_mask, target_img, target_mask, *, extractor=None, generator=None,
                             **options):
    return chamfer_feature_loss(pred_img, pred_mask, target_img, target_mask,
                                require_extractor("texture loss 'chamfer_feature'", extractor),
                                generator=generator, reduction="none", **options)


def _texture_l1(pred_img, pred_mask, target_img, target_mask, *, extractor=None, generator=None, **options):
    return masked_pixel_loss(pred_img, pred_mask, target_img, target_mask, p=1, reduction="none", **options)


def _texture_l2(pred_img, pred_mask, target_img, target_mask, *, extractor=None, generator=None, **options):
    return masked_pixel_loss(pred_img, pred_mask, target_img, target_mask, p=2, reduction="none", **options)


def _texture_perceptual(pred_img, pred_mask, target_img, target_mask, *, extractor=None, generator=None, **options):
    return perceptual_loss(pred_img, pred_mask, target_img, target_mask,
                           require_extractor("texture loss 'perceptual'", extractor), reduction="none", **options)


def _texture_contextual(pred_img, pred_mask, target_img, target_mask, *, extractor=None, generator=None, **options):
    return contextual_loss(pred_img, pred_mask, target_img, target_mask,
                           require_extractor("texture loss 'contextual'", extractor),
                           generator=generator, reduction="none", **options)


#: ``fn(pred_img, pred_mask, target_img, target_mask, *, extractor=None, generator=None, **options) -> (B,)``.
TEXTURE_LOSSES: dict[str, TextureLoss] = {
    "chamfer": _texture_chamfer,
    "chamfer_feature": _texture_chamfer_feature,
    "l1": _texture_l1,
    "l2": _texture_l2,
    "perceptual": _texture_perceptual,
    "contextual": _texture_contextual,
}
#: The texture losses that need ``extractor=``.
NEEDS_EXTRACTOR = frozenset({"chamfer_feature", "perceptual", "contextual"})


def _need(name: str, what: str, value: Optional[torch.Tensor], desc: str) -> torch.Tensor:
    if value is None:
        raise ValueError(f"mask loss {name!r} needs {what} {desc}, got None")
    return value


def _mask_chamfer(pred_soft_mask, projected_verts, target_mask, **options):
    verts = _need("chamfer", "projected_verts", projected_verts, "(B, N, 2)")
    return chamfer_mask_loss(verts, target_mask, reduction="none", **options)


def _mask_l1(pred_soft_mask, projected_verts, target_mask, **options):
    soft = _need("l1", "pred_soft_mask", pred_soft_mask, "(B, 1, H, W) (the rendered soft silhouette)")
    return mask_l1_loss(soft, target_mask, reduction="none", **options)


def _mask_iou(pred_soft_mask, projected_verts, target_mask, **options):
    soft = _need("iou", "pred_soft_mask", pred_soft_mask, "(B, 1, H, W) (the rendered soft silhouette)")
    return mask_iou_loss(soft, target_mask, reduction="none", **options)


#: ``fn(pred_soft_mask (B,1,H,W) or None, projected_verts (B,N,2) or None, target_mask (B,1,H,W), **options) -> (B,)``.
MASK_LOSSES: dict[str, MaskLoss] = {"chamfer": _mask_chamfer, "l1": _mask_l1, "iou": _mask_iou}


def get_texture_loss(name: str) -> TextureLoss:
    """The texture loss registered as ``name``; see :data:`TEXTURE_LOSSES` for the call signature."""
    try:
        return TEXTURE_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown texture loss {name!r}; valid names: {sorted(TEXTURE_LOSSES)}") from None


def get_mask_loss(name: str) -> MaskLoss:
    """The mask loss registered as ``name``; see :data:`MASK_LOSSES` for the call signature."""
    try:
        return MASK_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown mask loss {name!r}; valid names: {sorted(MASK_LOSSES)}") from None
