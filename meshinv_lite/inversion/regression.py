"""The regression baseline: one forward pass of the encoder instead of a search (what the paper compares against).

Regression methods (CMR, U-CMR, UMR, SMR) map an image straight to shape, texture and camera. Here the encoder
(:mod:`meshinv_lite.encoder`) predicts the latent, the species and the camera, and the prior turns them into a
mesh. Two texture variants:

* ``"generator"`` (**encoder only**): the prior's texture ``G_T(z_hat, class_hat)``, the same for every photo that
  maps to the same latent: regressed latents tend to the mean, so it is a plausible but generic bird;
* ``"flow"`` (**texture flow**, CMR's choice): every texel takes the photo's colour at the image position the
  encoder's flow head predicts for it. Sharp and faithful where the texel is seen; on the hidden side it copies
  whatever the photo shows in front of it.

The result is a :class:`~meshinv_lite.inversion.search.Reconstruction`, so every metric, figure and export of the
package takes it unchanged (``phase`` says which variant made it).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..config import RenderConfig
from ..encoder.network import sample_flow
from ..metrics import mask_iou
from ..render.dibr import render_mesh
from ..render.mesh import TemplateMesh, deform_vertices, make_uv_sphere
from .search import Reconstruction, resize_targets

REGRESSION_TEXTURES = ("generator", "flow")


@torch.no_grad()
def regress(generator, images: torch.Tensor, masks: torch.Tensor, encoder=None, texture: str = "generator",
            render: RenderConfig = RenderConfig(), template: Optional[TemplateMesh] = None,
            class_id: Optional[torch.Tensor] = None) -> Reconstruction:
    """Reconstruct ``B`` images in one forward pass (module docstring).

    Args:
        images: ``(B, 3, H, W)`` in ``[0, 1]``; masks ``(B, 1, H, W)`` in ``[0, 1]`` (the encoder's fourth channel).
        encoder: an :class:`~meshinv_lite.encoder.ImageEncoder` (default: the shipped one).
        texture: ``"generator"`` (encoder only) or ``"flow"`` (texture flow).
        class_id: ``(B,)`` known classes (``-1`` or ``None``: the encoder's choice).
    """
    if texture not in REGRESSION_TEXTURES:
        raise ValueError(f"texture must be one of {REGRESSION_TEXTURES}, got {texture!r}")
    device = images.device
    if encoder is None:
        from ..encoder import load_shipped_encoder

        encoder = load_shipped_encoder(device=device)[0]
    images, masks = resize_targets(images, masks, render.image_size)
    template = (template or make_uv_sphere()).to(device)
    out = encoder(images, masks)
    cls = out.class_id
    if class_id is not None:
        class_id = class_id.to(device)
        cls = torch.where(class_id >= 0, class_id, cls)
    tex, deform = generator(out.z, cls)
    if texture == "flow":
        tex = sample_flow(images, out.flow, tex.shape[-1]).clamp(0, 1)
    verts = deform_vertices(template, deform)
    cam = out.camera()
    r = render_mesh(template, verts, cam, tex, render, soft=False)
    iou = mask_iou(r.mask, masks)
    b = images.shape[0]
    nan = torch.full((b,), float("nan"), device=device)
    return Reconstruction(z=out.z, class_id=cls, texture=tex, deformation=deform, vertices=verts, camera=cam,
                          init_camera=cam, terms={"total": nan}, history={}, iou=iou, init_loss=nan, init_iou=iou,
                          phase=f"regression:{texture}")


def regress_batch(generator, batch: dict, texture: str = "generator", render: RenderConfig = RenderConfig(),
                  encoder=None, use_class: bool = True, **kwargs) -> Reconstruction:
    """:func:`regress` on a dict from :meth:`ReconstructionDataset.batch` (its ``class_id`` used where known and
    ``use_class``; the camera is the encoder's own, as a regression method predicts it)."""
    device = next(generator.parameters()).device
    cls = batch["class_id"].to(device) if use_class else None
    return regress(generator, batch["image"].to(device), batch["mask"].to(device), encoder, texture, render,
                   class_id=cls, **kwargs)

