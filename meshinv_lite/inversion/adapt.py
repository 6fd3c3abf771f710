"""After the latent search: keep what the photo shows where the prior cannot make it (issue 29).

Latent inversion returns some output of the generator: a bird of a species the prior never saw comes back as
the nearest species it knows, an open wing or a long tail as the nearest shape it makes. This second phase
changes only what the photo itself shows, and lets the prior keep everything else:

1. **shape** (``shape_steps > 0``): a left-right symmetric residual on the deformation map ``S``, fitted to the
   silhouette by :func:`meshinv_lite.pseudo_gt.fit_deformation` started at ``G``'s map and anchored to it
   (``w_anchor``: L2 of the residual; ``w_anchor_depth``: vertices keep the prior's depth along the line of
   sight, which one silhouette cannot decide; smoothness on neighbouring face normals). Few steps at a small
   learning rate: the outline moves, the unseen side stays the prior's;
2. **texture** (``texture=True``): the photo's visible texels are back-projected onto the (adapted) mesh
   (:func:`meshinv_lite.pseudo_gt.back_project`: faces the camera, passes the z-buffer, inside the mask), the
   mirror texel fills the far side where only it was seen (``mirror``; birds are left-right symmetric), and
   the result is blended over ``G``'s texture by that visibility, feathered over ``feather`` texels. What
   neither side showed (seen from no view) keeps ``G``'s colours.

Pure latent inversion stays the default of quick and paper (``InversionConfig.adapt=None``) and is always one
setting away; :attr:`Reconstruction.phase` records which phase produced a result.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from ..metrics import mask_iou
from ..pseudo_gt.backproject import BackProjectionConfig, back_project, mirror_fill
from ..pseudo_gt.silhouette_fit import SilhouetteFitConfig, fit_deformation
from ..render.dibr import rasterize
from ..render.mesh import TemplateMesh


@dataclass(frozen=True)
class AdaptConfig:
    """Settings of :func:`adapt_reconstruction`; each check in ``__post_init__`` names the setting and what it takes.

    Shape (``shape_steps = 0`` leaves the shape as the latent search found it): ``shape_lr`` Adam's learning
    rate on the residual; ``w_anchor`` the L2 pull of the map towards ``G``'s (mean over the map);
    ``w_anchor_depth`` keeps each vertex's depth along the line of sight; ``w_smooth`` the normal-consistency
    smoothness; ``w_chamfer`` the projected-vertex Chamfer term beside the soft IoU; ``sigma_inv`` the soft
    silhouette's sharpness ``1 / sigma`` (DIB-R), annealed from its first to its second value.
    Texture: ``texture`` back-project the photo; ``mirror`` fill the far side from the mirror texel;
    ``min_facing`` the cosine below which a texel is too oblique to trust; ``feather`` texels over which the
    seen region fades into ``G``'s texture (0: a hard edge).
    """

    shape_steps: int = 40
    shape_lr: float = 0.003
    w_anchor: float = 1.0
    w_anchor_depth: float = 1.0
    w_smooth: float = 0.1
    w_chamfer: float = 0.1
    sigma_inv: tuple[float, float] = (30000.0, 100000.0)
    texture: bool = True
    mirror: bool = True
    min_facing: float = 0.3
    feather: int = 1

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.shape_steps, int) or self.shape_steps < 0:
            problems.append(f"shape_steps must be an integer >= 0 (0: keep the latent's shape), got {self.shape_steps!r}")
        if not self.shape_lr > 0:
            problems.append(f"shape_lr must be > 0, got {self.shape_lr!r}")
        for name in ("w_anchor", "w_anchor_depth", "w_smooth", "w_chamfer"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if len(self.sigma_inv) != 2 or not all(s > 0 for s in self.sigma_inv):
            problems.append(f"sigma_inv must be two positive sharpness values (start, end), got {self.sigma_inv!r}")
        if not -1 <= self.min_facing < 1:
            problems.append(f"min_facing must be a cosine in [-1, 1), got {self.min_facing!r}")
        if not isinstance(self.feather, int) or self.feather < 0:
            problems.append(f"feather must be an integer >= 0 (texels), got {self.feather!r}")
        if self.shape_steps == 0 and not self.texture:
            problems.append("shape_steps=0 with texture=False adapts nothing: use InversionConfig(adapt=None) instead")
        if problems:
            raise ValueError("AdaptConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


def silhouette_config(config: AdaptConfig, deform_size: int) -> SilhouetteFitConfig:
    """The silhouette fit that adapts the shape: no coarse phase (the latent's shape is already close)."""
    return SilhouetteFitConfig(steps=config.shape_steps, lr=config.shape_lr, deform_size=deform_size, symmetric=True,
                               w_iou=1.0, w_chamfer=config.w_chamfer, w_chamfer_fine=config.w_chamfer,
                               w_smooth=config.w_smooth, w_l2=config.w_anchor, w_anchor_depth=config.w_anchor_depth,
                               coarse_fraction=0.0, sigma_inv_start=config.sigma_inv[0],
                               sigma_inv_end=config.sigma_inv[1], mask_points=512)


def feathered(visibility: torch.Tensor, texels: int) -> torch.Tensor:
    """``visibility (B, 1, Ht, Wt)`` in [0, 1] faded to 0 over ``texels`` at the edges of the seen region: the
    product with its local mean (a box of ``2 texels + 1``; ``u`` wraps around the sphere, ``v`` is clamped)."""
    if texels <= 0:
        return visibility
    k = 2 * texels + 1
    padded = F.pad(F.pad(visibility, (texels, texels, 0, 0), mode="circular"), (0, 0, texels, texels), mode="replicate")
    return visibility * F.avg_pool2d(padded, k, stride=1)


def adapt_reconstruction(reconstruction, images: torch.Tensor, masks: torch.Tensor, template: TemplateMesh, config: AdaptConfig,
          render_config) -> "object":
    """The adaptation phase on a :class:`~meshinv_lite.inversion.Reconstruction` of ``images``.

    Args:
        reconstruction: what the latent search found (its refined cameras are used as they are).
        images: ``(B, 3, H, W)`` in [0, 1] and masks ``(B, 1, H, W)`` in [0, 1], at the render size.
        config: :class:`AdaptConfig`; render_config: the inversion's (image size of the IoU).
    Returns:
        a copy of the reconstruction with the adapted ``deformation``, ``vertices``, ``texture`` and ``iou``,
        ``phase="latent+adapt"``, ``adapt_history`` the shape fit's per-step terms, ``latent_iou`` the IoU before.
    """
    rec = reconstruction
    cam = rec.camera
    deform = rec.deformation
    if config.shape_steps > 0:
        with torch.enable_grad():
            fit = fit_deformation(template, masks, cam, config=silhouette_config(config, deform.shape[-1]),
                                  init=deform, anchor=deform,
                                  generator=torch.Generator().manual_seed(0))
        deform, verts, iou, history = fit.deformation.detach(), fit.vertices, fit.iou, fit.history  # IoU at the masks' size
    else:
        verts, history = rec.vertices, {}
        with torch.no_grad():   # the latent's shape, scored against these masks
            frags = rasterize(cam.apply(verts), template.faces.to(verts.device), masks.shape[-2:])
            iou = mask_iou(frags.mask.to(masks.dtype), masks)
    texture = rec.texture
    if config.texture:
        with torch.no_grad():
            photo, seen = back_project(template, verts, cam, images, masks, texture.shape[-2:],
                                       BackProjectionConfig(min_facing=config.min_facing))
            if config.mirror:
                photo, seen = mirror_fill(photo, seen)
            w = feathered(seen, config.feather)
            texture = w * photo + (1 - w) * texture
    return replace(rec, deformation=deform, vertices=verts.detach(), texture=texture.detach(), iou=iou,
                   phase="latent+adapt", adapt_history=history, latent_iou=rec.iou)
