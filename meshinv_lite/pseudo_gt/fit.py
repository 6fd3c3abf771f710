"""Pseudo ground truth of one batch: fit each image's deformation map to its silhouette, back-project its texture."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from .._checks import check_unit_range
from ..render.camera import WeakPerspectiveCamera
from ..render.mesh import TemplateMesh
from .backproject import BackProjectionConfig, back_project, mirror_fill
from .silhouette_fit import SilhouetteFitConfig, fit_deformation


@dataclass
class PseudoGT:
    """Pseudo ground truth for a batch of images.

    Attributes:
        deformation: ``(B, 3, Hd, Wd)`` fitted deformation maps.
        texture: ``(B, 3, Ht, Wt)`` back-projected colours in ``[0, 1]`` (0 where invisible).
        visibility: ``(B, 1, Ht, Wt)`` in ``{0, 1}``.
        iou: ``(B,)`` silhouette IoU of the fitted meshes.
        vertices: ``(B, N, 3)`` fitted meshes.
    """

    deformation: torch.Tensor
    texture: torch.Tensor
    visibility: torch.Tensor
    iou: torch.Tensor
    vertices: torch.Tensor
    history: dict = field(default_factory=dict)
    cameras: Optional[WeakPerspectiveCamera] = None


def make_pseudo_gt(
    template: TemplateMesh,
    images: torch.Tensor,
    masks: torch.Tensor,
    camera: WeakPerspectiveCamera,
    texture_size: int,
    fit: SilhouetteFitConfig = SilhouetteFitConfig(),
    back_projection: BackProjectionConfig = BackProjectionConfig(),
    generator: Optional[torch.Generator] = None,
    shape_anchor: Optional[torch.Tensor] = None,
) -> PseudoGT:
    """Fit shapes to masks, then back-project the images: the whole per-batch recipe.

    ``shape_anchor``: optional ``(B, 3, Hd, Wd)`` maps (each image's species mean shape) the fits start
    from and are anchored to (see :class:`~meshinv_lite.pseudo_gt.SilhouetteFitConfig`).
    """
    images = check_unit_range("images", images)
    masks = check_unit_range("masks", masks, "mask")
    fitted = fit_deformation(template, masks, camera, config=fit, generator=generator, init=shape_anchor,
                             anchor=shape_anchor)
    if fitted.cameras is not None:  # refined with the shape (SilhouetteFitConfig.lr_camera)
        camera = fitted.cameras
    texture, vis = back_project(template, fitted.vertices, camera, images, masks, texture_size, back_projection)
    if back_projection.mirror_fill:
        texture, vis = mirror_fill(texture, vis)
    return PseudoGT(fitted.deformation, texture, vis, fitted.iou, fitted.vertices, fitted.history, fitted.cameras)

