"""The inversion objective: the loss of a latent code (and camera) for a batch of images, term by term."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import torch
import torch.nn.functional as F

from ..features.base import masked_features
from ..losses.nearest import chamfer_on_maps
from ..losses.registry import NEEDS_EXTRACTOR, get_mask_loss, get_texture_loss
from ..losses.regularizers import crease_loss, latent_loss, smoothness_loss
from ..render.camera import WeakPerspectiveCamera
from ..render.dibr import project, render_mesh, render_silhouette
from ..render.mesh import TemplateMesh, deform_vertices, face_adjacency
from .config import InversionConfig


@contextmanager
def _frozen(module: torch.nn.Module):
    """Eval mode and no parameter gradients for the duration; restored afterwards."""
    flags = [p.requires_grad for p in module.parameters()]
    training = module.training
    module.eval().requires_grad_(False)
    try:
        yield module
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)
        module.train(training)


class InversionObjective:
    """The full inversion loss for fixed targets; call it with ``(z, camera)`` -> ``(total (B,), terms)``."""

    def __init__(self, generator, template: TemplateMesh, images: torch.Tensor, masks: torch.Tensor,
                 class_id: torch.Tensor, config: InversionConfig, extractor=None, seed: int = 0):
        self.G = generator
        self.template = template
        self.images, self.masks, self.class_id = images, masks, class_id
        self.config = config
        self.pairs = face_adjacency(template.faces)
        self.extractor = extractor
        self.rng = torch.Generator().manual_seed(seed)
        self.mask_fn = get_mask_loss(config.mask_loss)
        self.needs_soft = config.mask_loss != "chamfer"
        self.texture_fns = {name: get_texture_loss(name) for name, _ in config.texture_losses}
        self.target_features = None
        if any(name == "chamfer_feature" for name, _ in config.texture_losses):
            with torch.no_grad():  # the targets never change: their features are computed once
                self.target_features = masked_features(extractor, *self._feature_input(images, masks))
            tm = self.target_features[1]
            small = torch.nonzero(tm.flatten(1).amax(1) <= 0.5).squeeze(1).tolist()
            if small:
                cell = images.shape[-1] / tm.shape[-1]  # render pixels per feature cell
                raise ValueError(
                    f"the mask of image(s) {small} is too small for the feature-level Chamfer loss: it vanishes at "
                    f"the feature resolution ({tm.shape[-2]} x {tm.shape[-1]} cells for a {images.shape[-1]} px "
                    f"render); inversion needs a silhouette at least {int(2 * cell)} x {int(2 * cell)} pixels at the "
                    "render size, or a config without 'chamfer_feature' in texture_losses")

    def _feature_input(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.feature_image_size
        if size is None or size == images.shape[-1]:
            return images, masks
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return images, (F.interpolate(masks, size=(size, size), mode="area") > 0.5).to(images.dtype)

    def _feature_chamfer(self, pred, pred_mask, index: torch.Tensor) -> torch.Tensor:
        """Feature-level Chamfer against the cached target features (rows ``index``)."""
        pf, pm = masked_features(self.extractor, *self._feature_input(pred, pred_mask))
        tf, tm = self.target_features
        # a render too small to leave a feature cell gets a large constant and no feature gradient
        out = pf.new_full((pf.shape[0],), 1e3)
        ok = torch.nonzero(pm.flatten(1).amax(1) > 0.5).squeeze(1)
        if ok.numel():
            out = out.index_put((ok,), chamfer_on_maps(pf[ok], pm[ok], tf[index[ok]], tm[index[ok]], self.config.num_points,
                                                       self.rng, two_sided=self.config.two_sided))
        return out

    def _texture(self, name: str, pred, pred_mask, target, target_mask, index: torch.Tensor) -> torch.Tensor:
        if name == "chamfer_feature":
            return self._feature_chamfer(pred, pred_mask, index)
        options = {"num_points": self.config.num_points, "two_sided": self.config.two_sided} if name == "chamfer" else {}
        return self.texture_fns[name](pred, pred_mask, target, target_mask, extractor=self.extractor,
                                      generator=self.rng, **options)

    def __call__(self, z: torch.Tensor, camera: WeakPerspectiveCamera, index: Optional[torch.Tensor] = None,
                 return_render: bool = False, class_id: Optional[torch.Tensor] = None, texture_terms: bool = True,
                 feature_terms: bool = True):
        """Loss of latents ``z`` ``(B', D)`` seen through ``camera`` against targets ``index`` (default: all),
        generated with ``class_id`` ``(B',)`` (default: the targets' own classes); ``texture_terms=False`` leaves
        the texture losses out (a shape-only stage: the generator's texture blocks and the texture lookup are skipped,
        and the returned render's ``image`` is the silhouette); ``feature_terms=False`` leaves out the texture losses
        that need the feature network (:data:`~meshinv_lite.losses.NEEDS_EXTRACTOR`), keeping the pixel-level ones."""
        cfg = self.config
        idx = torch.arange(z.shape[0], device=z.device) if index is None else index
        images, masks = self.images[idx], self.masks[idx]
        cls = self.class_id[idx] if class_id is None else class_id
        if texture_terms:
            texture, deform = self.G(z, cls)
            verts = deform_vertices(self.template, deform)
            out = render_mesh(self.template, verts, camera, texture, cfg.render, soft=self.needs_soft)
        else:  # the shape alone: no texture map, no texture lookup (out.image is the silhouette)
            texture, deform = None, self.G.deformation(z, cls)
            verts = deform_vertices(self.template, deform)
            out = render_silhouette(self.template, verts, camera, cfg.render, soft=self.needs_soft)
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros(z.shape[0], device=z.device)
        # A render may miss the frame entirely (a wild initial draw): such items get a large constant
        # texture loss instead of an error, and no texture gradient.
        visible = out.mask.flatten(1).amax(1) > 0.5
        for name, weight in (cfg.texture_losses if texture_terms else ()):
            if not feature_terms and name in NEEDS_EXTRACTOR:
                continue
            value = torch.full((z.shape[0],), 1e3, device=z.device)
            if visible.any():
                v = torch.nonzero(visible).squeeze(1)
                value = value.index_put((v,), self._texture(name, out.image[v], out.mask[v], images[v], masks[v], idx[v]))
            terms[name] = value
            total = total + weight * value
        mask_options = {"num_points": cfg.mask_points, "generator": self.rng} if cfg.mask_loss == "chamfer" else {}
        mask_value = self.mask_fn(out.soft_mask, project(verts, camera), masks, **mask_options)
        terms[f"mask_{cfg.mask_loss}"] = mask_value
        total = total + cfg.w_mask * mask_value
        if cfg.w_smooth:
            terms["smooth"] = smoothness_loss(verts, self.template.faces, self.pairs, reduction="none")
            total = total + cfg.w_smooth * terms["smooth"]
        if cfg.w_crease:
            terms["crease"] = crease_loss(verts, self.template.faces, self.pairs, reduction="none")
            total = total + cfg.w_crease * terms["crease"]
        terms["latent"] = latent_loss(z, reduction="none")
        total = total + cfg.w_latent * terms["latent"]
        terms["total"] = total
        if return_render:
            return total, terms, (texture, deform, verts, out)
        return total, terms
