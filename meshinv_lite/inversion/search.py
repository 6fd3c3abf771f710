"""MeshInversion: reconstruct a textured mesh from one image by searching the GAN's latent space.

Given an image ``I``, its mask ``M``, a camera ``c`` and a class, find

    z* = argmin_z  L_tex(R(G(z), c), I) + w_mask L_mask(P(G_S(z), c), M) + w_smooth L_smooth + w_lat |z|^2 / 2

where ``R`` renders the generated textured mesh and ``P`` projects its vertices (no rasterization).
The texture terms are Chamfer distances between the render and the image seen as sets of coloured
points (pixels, and frozen CNN features), which forgive the small misalignments that the imperfect
shape and camera always leave. The recipe follows the authors:

1. **initialisation**: ``z`` is the best of ``init_candidates`` random draws under the full loss; an image
   whose class is not known (``class_id`` -1, :data:`UNKNOWN_CLASS`) has the same draws scored under every
   class of the prior, and the best ``(class, z)`` pair is kept (a species the prior never saw is inverted as
   the class that explains it best);
2. **optimisation**: Adam (``betas = (0, 0.99)``) in stages of decreasing learning rates, refining the
   camera (scale, translation, quaternion) alongside ``z`` unless ``refine_camera=False``.

Images are processed as a batch (each has its own ``z`` and camera); the result holds the maps, the
mesh, the refined camera and the loss history per term.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .._checks import check_finite, check_nonempty_batch, check_shape, check_unit_range
from ..data.dataset import batch_cameras
from ..features.registry import load_feature_extractor
from ..losses.registry import NEEDS_EXTRACTOR
from ..metrics import mask_iou
from ..render.camera import WeakPerspectiveCamera, check_camera
from ..render.mesh import TemplateMesh
from .adapt import adapt_reconstruction
from .config import UNKNOWN_CLASS, InversionConfig
from .objective import InversionObjective, _frozen


@dataclass
class Reconstruction:
    """What :func:`invert` found, for a batch of ``B`` images.

    Attributes:
        z: ``(B, latent)``; class_id ``(B,)``: the class inverted with (given, or chosen where it was -1).
        texture: ``(B, 3, Ht, Wt)`` in ``[0, 1]``; deformation ``(B, 3, Hd, Wd)``; vertices ``(B, N, 3)``.
        camera: the refined cameras (``init_camera``: the given ones).
        terms: final per-image value of every loss term, ``{name: (B,)}``, and ``"total"``.
        history: mean value of every term at every step, ``{name: [float]}``; ``"stage"`` the stage of each step
            (with early stopping a stage can end before its last step).
        iou: ``(B,)`` hard-mask IoU of the final render with the input mask, at the render size.
        init_loss, init_iou: ``(B,)`` loss and IoU of the best initial draw (where optimisation started).
        feature_extractor: name of the CNN used by feature losses ("" when none ran).
        class_scores: ``(B, C)`` best initial loss under each class for a batch where some class was chosen
            (``inf`` for classes not scored: an image with a given class scores only that one); ``None`` when
            every class was given.
    """

    z: torch.Tensor
    class_id: torch.Tensor
    texture: torch.Tensor
    deformation: torch.Tensor
    vertices: torch.Tensor
    camera: WeakPerspectiveCamera
    init_camera: WeakPerspectiveCamera
    terms: dict
    history: dict
    iou: torch.Tensor
    init_loss: torch.Tensor
    init_iou: torch.Tensor
    feature_extractor: str = ""
    class_scores: Optional[torch.Tensor] = None
    phase: str = "latent"                  # "latent", or "latent+adapt" after :func:`meshinv_lite.inversion.adapt_reconstruction`
    adapt_history: Optional[dict] = None   # the adaptation's shape-fit terms per step
    latent_iou: Optional[torch.Tensor] = None  # (B,) the IoU before adaptation (None: not adapted)

    def __len__(self) -> int:
        return self.z.shape[0]

    def __getitem__(self, i: int) -> "Reconstruction":
        s = slice(i, i + 1)
        return Reconstruction(self.z[s], self.class_id[s], self.texture[s], self.deformation[s], self.vertices[s],
                              self.camera[s], self.init_camera[s], {k: v[s] for k, v in self.terms.items()},
                              self.history, self.iou[s], self.init_loss[s], self.init_iou[s], self.feature_extractor,
                              None if self.class_scores is None else self.class_scores[s], self.phase,
                              self.adapt_history, None if self.latent_iou is None else self.latent_iou[s])


def _check_targets(images: torch.Tensor, masks: torch.Tensor, cameras: WeakPerspectiveCamera,
                   class_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate inversion targets; returns images and masks as float32 (float64 is converted)."""
    check_shape("images", images, (None, 3, None, None), "(B, 3, H, W) in [0, 1]")
    check_nonempty_batch("images", images)
    b, _, h, w = images.shape
    check_shape("masks", masks, (b, 1, None, None), f"({b}, 1, H, W)")
    if masks.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"image and mask sizes differ: images {h}x{w}, masks {masks.shape[-2]}x{masks.shape[-1]}")
    check_finite("images", images)
    check_finite("masks", masks)
    images = check_unit_range("images", images)
    masks = check_unit_range("masks", masks, "mask")
    check_camera("cameras", cameras)
    empty = torch.nonzero(masks.flatten(1).amax(1) <= 0.5).squeeze(1).tolist()
    if empty:
        raise ValueError(f"empty mask for image(s) {empty}: inversion needs the object's silhouette")
    if len(cameras) != b:
        raise ValueError(f"mismatched batch sizes: {b} images, {len(cameras)} cameras")
    check_shape("class_id", class_id, (b,), f"({b},) class indices")
    return images, masks


def resize_targets(images: torch.Tensor, masks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(B, 3, H, W)`` and masks ``(B, 1, H, W)`` at the render size ``size`` (as :func:`invert` sees them):
    images resampled with antialiasing, masks resampled and binarized at 0.5. Refuses a mask that vanishes."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images, masks
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    masks = (F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False) > 0.5).to(images.dtype)
    gone = torch.nonzero(masks.flatten(1).amax(1) <= 0.5).squeeze(1).tolist()
    if gone:
        raise ValueError(f"the mask of image(s) {gone} vanishes when resized to the {size} px render size: "
                         "inversion needs a silhouette of a few pixels at least at that size")
    return images, masks


def _check_classes(class_id: torch.Tensor, num_classes: int) -> None:
    """Class ids must be :data:`UNKNOWN_CLASS` or lie in ``[0, num_classes)``."""
    bad = sorted(set(class_id[(class_id < UNKNOWN_CLASS) | (class_id >= num_classes)].tolist()))
    if bad:
        raise ValueError(f"class_id values must lie in [0, {num_classes}) or be {UNKNOWN_CLASS} (unknown: chosen in the "
                         f"initialisation), got {bad}")


@torch.no_grad()
def _initial_latents(objective: InversionObjective, cameras: WeakPerspectiveCamera, class_id: torch.Tensor,
                     num_classes: int, cfg: InversionConfig, rng: torch.Generator, latent_dim: int,
                     centre: Optional[torch.Tensor] = None, choices: Optional[list[list[int]]] = None):
    """Best of ``cfg.init_candidates`` random draws per image under the full loss (step 1 of :func:`invert`).

    The draws ``(B, N, D)`` come from ``rng``. An image with a given class scores them under that class; one
    with class :data:`UNKNOWN_CLASS` scores the same draws under each of the ``num_classes`` classes and keeps
    the best ``(class, z)`` pair. The scored rows run image by image (class, then draw), ``cfg.init_batch`` per
    call, so a batch whose classes are all given is scored exactly as before classes could be chosen (in a
    batch that mixes given and unknown classes the Chamfer terms' point samples follow the longer sequence of
    calls, so its given-class rows match an all-given run only in distribution).

    ``centre`` ``(B, D)`` (the encoder's latents): the first draw is the centre itself and the others lie around it
    at ``cfg.init_spread``; ``choices``: per image, the classes an unknown class is chosen among (default: all).

    Returns ``(z0 (B, D), init_loss (B,), class_id (B,) with the chosen classes, class_scores (B, C) or None
    when every class was given)``.
    """
    device = class_id.device
    b, n = class_id.shape[0], max(1, cfg.init_candidates)
    cands = torch.randn(b, n, latent_dim, generator=rng).to(device)
    if centre is not None:
        cands = centre[:, None].to(device) + cfg.init_spread * cands
        cands[:, 0] = centre.to(device)
    unknown = class_id == UNKNOWN_CLASS
    every = torch.arange(num_classes, device=device)
    options = [every if choices is None else torch.tensor(choices[i], device=device) for i in range(b)]
    pair_cls = torch.cat([options[i] if unknown[i] else class_id[i:i + 1] for i in range(b)])   # (P,) (image, class)
    pair_img = torch.repeat_interleave(torch.arange(b, device=device),
                                       torch.tensor([len(options[i]) if unknown[i] else 1 for i in range(b)], device=device))
    flat_img, flat_cls = pair_img.repeat_interleave(n), pair_cls.repeat_interleave(n)
    flat_z = cands[flat_img, torch.arange(n, device=device).repeat(pair_img.shape[0])]
    scores = torch.empty(flat_img.shape[0], device=device)
    for s in range(0, flat_img.shape[0], cfg.init_batch):
        sl = slice(s, s + cfg.init_batch)
        scores[sl] = objective(flat_z[sl], cameras[flat_img[sl]], flat_img[sl], class_id=flat_cls[sl])[0]
    scores = scores.view(-1, n)
    pair_loss, pair_draw = scores.min(1).values, scores.argmin(1)
    z0, init_loss, chosen = cands[:, 0].clone(), torch.empty(b, device=device), class_id.clone()
    for i in range(b):
        rows = torch.nonzero(pair_img == i).squeeze(1)
        k = rows[pair_loss[rows].argmin()]
        z0[i], init_loss[i], chosen[i] = cands[i, pair_draw[k]], pair_loss[k], pair_cls[k]
    class_scores = None
    if unknown.any():
        class_scores = torch.full((b, num_classes), float("inf"), device=device)
        class_scores[pair_img, pair_cls] = pair_loss
    return z0, init_loss, chosen, class_scores


@torch.no_grad()
def _encoder_start(encoder, images: torch.Tensor, masks: torch.Tensor, class_id: torch.Tensor, cfg: InversionConfig
                   ) -> tuple[torch.Tensor, list[list[int]]]:
    """The encoder's latents ``(B, D)`` and, per image, its ``cfg.encoder_classes`` most likely classes."""
    if encoder is None:
        from ..encoder import load_shipped_encoder

        encoder = load_shipped_encoder(device=images.device)[0]
    out = encoder(images, masks)
    top = out.class_logits.topk(min(cfg.encoder_classes, out.class_logits.shape[1]), dim=1).indices
    return out.z, top.tolist()


def _camera_params(camera: WeakPerspectiveCamera) -> list[torch.Tensor]:
    return [camera.scale.detach().clone().requires_grad_(), camera.translation.detach().clone().requires_grad_(),
            camera.rotation.detach().clone().requires_grad_()]


def invert(
    generator,
    images: torch.Tensor,
    masks: torch.Tensor,
    cameras: WeakPerspectiveCamera,
    class_id: torch.Tensor,
    config: InversionConfig = InversionConfig(),
    template: Optional[TemplateMesh] = None,
    extractor=None,
    callback: Optional[Callable[..., None]] = None,
    seed: int = 0,
    encoder=None,
) -> Reconstruction:
    """Invert a batch of images into the generator's latent space.

    Args:
        generator: a (pretrained, EMA) :class:`~meshinv_lite.gan.Generator`, or the authors' imported one
            (:class:`~meshinv_lite.gan.ConvMeshGenerator`); left unchanged. ``template`` defaults to its
            ``generator.template()``.
        images: ``(B, 3, H, W)`` in ``[0, 1]``; masks ``(B, 1, H, W)`` in ``[0, 1]`` (none empty);
            resized to ``config.render.image_size`` when they differ.
        cameras: ``B`` cameras (e.g. the noisy SfM-like ones); class_id ``(B,)`` long, one of the prior's
            classes, or :data:`UNKNOWN_CLASS` (-1) to choose it in the initialisation (a species the prior never
            saw, a photo without a label); ``Reconstruction.class_id`` holds the class used.
        extractor: feature extractor for feature losses (loaded when needed and not given).
        callback: ``callback(step, terms, images=[render, target])`` after every optimisation step,
            ``terms`` holding the batch-mean of every loss term (e.g. :class:`~meshinv_lite.viz.LiveLoss`).
        encoder: the :class:`~meshinv_lite.encoder.ImageEncoder` of ``config.init == "encoder"`` (the shipped one
            is loaded when needed and not given).
    """
    images, masks = _check_targets(images, masks, cameras, class_id)
    cfg = config
    device = images.device
    images, masks = resize_targets(images, masks, cfg.render.image_size)
    template = (template or generator.template()).to(device)  # the generator's own (the authors' differ)
    needs_features = any(name in NEEDS_EXTRACTOR for name, _ in cfg.texture_losses)
    if needs_features and extractor is None:
        extractor = load_feature_extractor(cfg.features, device=device)
    class_id = class_id.to(device)
    _check_classes(class_id, generator.config.num_classes)
    latent_dim = generator.config.latent_dim
    rng = torch.Generator().manual_seed(seed)

    with _frozen(generator):
        # unknown classes (-1) hold class 0 until the initialisation chooses theirs
        objective = InversionObjective(generator, template, images, masks, class_id.clamp_min(0), cfg, extractor, seed)
        # 1. best of N random draws, per image (and per class where it is not known), or around the encoder's guess
        centre, choices = _encoder_start(encoder, images, masks, class_id, cfg) if cfg.init == "encoder" else (None, None)
        with torch.no_grad():
            z0, init_loss, class_id, class_scores = _initial_latents(objective, cameras, class_id,
                                                                     generator.config.num_classes, cfg, rng, latent_dim,
                                                                     centre, choices)
            objective.class_id = class_id
            init_out = objective(z0, cameras, return_render=True)[2][3]
            init_iou = mask_iou(init_out.mask, masks)

        # 2. staged Adam on z (and the camera)
        z = z0.clone().requires_grad_()
        cam_params = _camera_params(cameras)
        groups = [{"params": [z], "lr": cfg.stages[0].lr_z if cfg.stages else 0.0}]
        if cfg.refine_camera:
            groups.append({"params": cam_params, "lr": cfg.stages[0].lr_camera if cfg.stages else 0.0})
        opt = torch.optim.Adam(groups, betas=cfg.betas)
        history: dict[str, list[float]] = {}
        step = 0
        # a stage with its own render size (InversionStage.render_size) has an objective of its own, built once per
        # size, against the targets resized to it
        by_size = {None: objective, cfg.render.image_size: objective}
        for k_stage, stage in enumerate(cfg.stages):
            if stage.render_size not in by_size:
                by_size[stage.render_size] = _coarse_objective(objective, stage.render_size, seed)
            stage_objective = by_size[stage.render_size]
            opt.param_groups[0]["lr"] = stage.lr_z
            if cfg.refine_camera:
                opt.param_groups[1]["lr"] = stage.lr_camera
            stage_losses: list[float] = []
            for _ in range(stage.steps):
                if _converged(stage_losses, cfg.stop_tol, cfg.stop_window):
                    break
                cam = WeakPerspectiveCamera.from_raw(cam_params[0].abs().clamp_min(1e-4), cam_params[1], cam_params[2])
                total, terms, (_, _, _, out) = stage_objective(z, cam, return_render=True,
                                                               texture_terms=not stage.shape_only,
                                                               feature_terms=stage.features)
                opt.zero_grad(set_to_none=True)
                total.sum().backward()
                opt.step()
                if cfg.latent_shell is not None:
                    with torch.no_grad():
                        z.copy_(project_to_shell(z, cfg.latent_shell))
                means = {k: float(v.detach().mean()) for k, v in terms.items()}
                for name, _ in cfg.texture_losses:  # a stage without some texture terms: NaN keeps the rows aligned
                    means.setdefault(name, float("nan"))
                means["z_norm"] = float(z.detach().norm(dim=1).mean()) / latent_dim ** 0.5
                stage_losses.append(means["total"])
                for k, v in means.items():
                    history.setdefault(k, []).append(v)
                history.setdefault("stage", []).append(float(k_stage))
                if callback is not None:
                    callback(step, means, images=[out.image[:1].detach(), stage_objective.images[:1]])
                step += 1

        # 3. the result
        with torch.no_grad():
            cam = WeakPerspectiveCamera.from_raw(cam_params[0].abs().clamp_min(1e-4), cam_params[1], cam_params[2]).detach()
            total, terms, (texture, deform, verts, out) = objective(z.detach(), cam, return_render=True)
            iou = mask_iou(out.mask, masks)
    rec = Reconstruction(
        z=z.detach(), class_id=class_id, texture=texture, deformation=deform, vertices=verts, camera=cam,
        init_camera=cameras, terms={k: v.detach() for k, v in terms.items()}, history=history, iou=iou,
        init_loss=init_loss, init_iou=init_iou, feature_extractor=getattr(extractor, "name", "") if needs_features else "",
        class_scores=class_scores,
    )
    # 4. optionally, the second phase: what the photo shows where the prior cannot make it
    if cfg.adapt is not None:
        rec = adapt_reconstruction(rec, images, masks, template, cfg.adapt, cfg.render)
    return rec


def _coarse_objective(objective: InversionObjective, size: int, seed: int) -> InversionObjective:
    """``objective`` rendering at ``size`` px, against its targets resized there (same generator, template, classes,
    feature network and losses; its own point-sampling stream, seeded with ``seed``)."""
    cfg = objective.config
    images, masks = resize_targets(objective.images, objective.masks, size)
    coarse = replace(cfg, render=replace(cfg.render, image_size=size), stages=())  # the objective runs no schedule
    return InversionObjective(objective.G, objective.template, images, masks, objective.class_id, coarse,
                              objective.extractor, seed)


def project_to_shell(z: torch.Tensor, shell: float) -> torch.Tensor:
    """Latents ``z`` ``(B, D)`` scaled back onto ``|z| / sqrt(D) <= shell`` where they lie outside (others kept)."""
    limit = shell * z.shape[1] ** 0.5
    return z * (limit / z.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)


def _converged(losses: list[float], tol: Optional[float], window: int) -> bool:
    """The early-stopping test of :class:`InversionConfig` on one stage's batch-mean losses so far."""
    if tol is None or len(losses) < 2 * window:
        return False
    last = sum(losses[-window:]) / window
    before = sum(losses[-2 * window:-window]) / window
    return before - last < tol * abs(before)


def invert_batch(generator, batch: dict, config: InversionConfig, camera: str = "noisy", **kwargs) -> Reconstruction:
    """:func:`invert` on a dict from :meth:`ReconstructionDataset.batch` (``image``, ``mask``,
    ``camera`` / ``noisy_camera``, ``class_id``), on the generator's device. A ``class_id`` of -1 (``test_unseen``:
    a species the prior has no class for) is chosen in the initialisation."""
    if camera not in ("noisy", "exact"):
        raise ValueError(f"camera must be 'noisy' or 'exact', got {camera!r}")
    device = next(generator.parameters()).device
    cams = batch_cameras(batch, camera).to(device)
    return invert(generator, batch["image"].to(device), batch["mask"].to(device), cams, batch["class_id"].to(device),
                  config, **kwargs)
