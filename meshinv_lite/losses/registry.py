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
coordinates (x right, y up, ``[-1, 1]``) come only from :func:`meshinv_lite.render.pixel_centers`.
``reduction`` is ``"mean"`` (scalar over the batch), ``"sum"``, or ``"none"`` (per image, ``(B,)``).

The nearest-neighbour search behind the Chamfer terms lives in :mod:`meshinv_lite.losses.nearest`, the ablation
baselines in :mod:`meshinv_lite.losses.baselines`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .._checks import require_extractor
from .baselines import contextual_loss, mask_iou_loss, mask_l1_loss, masked_pixel_loss, perceptual_loss
from .chamfer import chamfer_feature_loss, chamfer_mask_loss, chamfer_texture_loss


@dataclass(frozen=True)
class LossWeights:
    """Weights of the inversion objective: the authors' values (DESIGN.md section 4).

    Attributes:
        texture: Chamfer texture loss on pixels (:func:`chamfer_texture_loss`), 1.0.
        feature: Chamfer texture loss on CNN features (:func:`chamfer_feature_loss`), 0.04.
        mask: Chamfer mask loss (:func:`chamfer_mask_loss`), 10.0.
        smooth: smoothness (:func:`~meshinv_lite.losses.smoothness_loss`), 5e-5. Smoothness is off in the
            authors' inversion (``5e-5`` when on); here it is on with that weight.
        latent: the latent term (:func:`~meshinv_lite.losses.latent_loss`, ``mean(z^2 / 2)``), 0.05: the
            paper's ``lambda_z / 2 |z|^2`` with ``lambda_z = 0.05 / D`` for ``D`` latent dimensions.
    """

    texture: float = 1.0
    feature: float = 0.04
    mask: float = 10.0
    smooth: float = 5e-5
    latent: float = 0.05


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
    """The texture loss registered as ``name`` (a key of :data:`TEXTURE_LOSSES`).

    The function is called ``fn(pred_img (B, 3, H, W), pred_mask (B, 1, H, W), target_img, target_mask, *,
    extractor=None, generator=None, **options)``, images and masks float in ``[0, 1]``, and returns the
    per-image loss ``(B,)`` (``reduction="none"``), differentiable in ``pred_img``. ``extractor`` is
    required for the names in :data:`NEEDS_EXTRACTOR`; ``options`` go to the underlying loss
    (e.g. ``num_points``, ``two_sided`` for ``"chamfer"``). Raises ``ValueError`` for an unknown name.
    """
    try:
        return TEXTURE_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown texture loss {name!r}; valid names: {sorted(TEXTURE_LOSSES)}") from None


def get_mask_loss(name: str) -> MaskLoss:
    """The mask loss registered as ``name`` (a key of :data:`MASK_LOSSES`: ``"chamfer"``, ``"l1"``, ``"iou"``).

    The function is called ``fn(pred_soft_mask, projected_verts, target_mask, **options)``: ``"chamfer"``
    needs ``projected_verts`` ``(B, N, 2)`` (normalized coordinates), ``"l1"`` / ``"iou"`` need
    ``pred_soft_mask`` ``(B, 1, H, W)`` in ``[0, 1]`` at ``target_mask``'s resolution; the other may be
    ``None``. Returns the per-image loss ``(B,)``. Raises ``ValueError`` for an unknown name.
    """
    try:
        return MASK_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown mask loss {name!r}; valid names: {sorted(MASK_LOSSES)}") from None
