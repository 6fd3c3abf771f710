"""Fit deformation maps to silhouettes: the smallest differentiable-rendering problem.

Given target masks and known cameras, optimize the deformation map ``S`` so the deformed template's
silhouette matches. Used by notebook 00 (one mesh seen from several views) and by
:mod:`meshinv_lite.pseudo_gt` (one mesh per training image, its single view).

Loss per view (all terms differentiable in ``S``):

* ``1 - soft IoU`` between the DIB-R soft silhouette and the target mask (gradients at the border);
* a two-sided Chamfer term between projected vertices and foreground pixel coordinates (pulls the
  mesh towards far-away parts of the mask that the soft border cannot "see"); the first steps use it
  alone (no rasterization: fast, wide basin), the rest add the soft IoU and sharpen it;
* smoothness ``mean(1 - cos)`` between normals of neighbouring faces, and a small L2 on ``S``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .._checks import check_shape
from ..losses.regularizers import normal_consistency
from ..losses.silhouette import chamfer_2d, mask_points, soft_iou
from ..metrics import mask_iou as hard_iou  # IoU of binarized masks, (B,)
from ..render.camera import WeakPerspectiveCamera, normalize_quaternion, qrot, quaternion_multiply
from ..render.dibr import rasterize, soft_mask
from ..render.mesh import TemplateMesh, deform_vertices, face_adjacency, mirror_uv_map


@dataclass(frozen=True)
class SilhouetteFitConfig:
    """Settings of :func:`fit_deformation` (defaults suit 64-128 px masks)."""

    steps: int = 150
    lr: float = 0.01
    deform_size: int = 16
    symmetric: bool = True
    w_iou: float = 1.0
    w_chamfer: float = 1.0
    w_smooth: float = 0.1
    w_l2: float = 1e-3
    w_chamfer_fine: float = 0.1
    # With an anchor (e.g. a species' mean shape): how strongly vertices keep the anchor's depth along
    # each view's line of sight. One silhouette constrains x and y, never z.
    w_anchor_depth: float = 0.0
    # Coarse phase (the first ``coarse_fraction`` of the steps): Chamfer only, no rasterization.
    # Fine phase: soft silhouette IoU, annealed from wide to sharp; DIB-R's soft border lies entirely
    # outside the hard silhouette, so a wide border alone would bias the optimum inwards.
    coarse_fraction: float = 0.4
    sigma_inv_start: float = 3000.0
    sigma_inv_end: float = 30000.0
    box_len: float = 0.05
    mask_points: int = 512
    # Height in pixels at which the soft silhouette is rendered and compared (the masks are area-averaged
    # to it); None: the masks' own size. The final IoU is always measured at the masks' size.
    render_size: Optional[int] = None
    # Camera refinement: the annotated cameras are only roughly right (SynthBirds' noisy cameras: 6 degrees of
    # rotation, 4 % scale, 0.03 translation). With ``lr_camera > 0`` each view's camera gets a small correction
    # (rotation, log-scale, translation) optimized with the shape; during the first ``camera_only_fraction`` of
    # the steps only the cameras move (the start shape, e.g. a species mean, is aligned to the mask before it is
    # bent to fit), and ``w_camera`` holds the corrections near zero.
    lr_camera: float = 0.0
    camera_only_fraction: float = 0.0
    w_camera: float = 0.0

    def to_dict(self) -> dict:
        """The settings as a plain dict (``render_size`` left out when ``None``, the camera refinement's settings
        when it is off, so that signatures of data made before those settings existed still match)."""
        from dataclasses import asdict

        d = asdict(self)
        if d["render_size"] is None:
            del d["render_size"]
        if not d["lr_camera"]:
            for k in ("lr_camera", "camera_only_fraction", "w_camera"):
                del d[k]
        return d


@dataclass
class SilhouetteFit:
    """Result of :func:`fit_deformation`.

    Attributes:
        deformation: ``(M, 3, Hd, Wd)`` fitted maps.
        vertices: ``(M, N, 3)`` deformed template vertices.
        iou: ``(B,)`` hard-mask IoU of every view after fitting, in ``[0, 1]``.
        history: per-step mean loss terms.
    """

    deformation: torch.Tensor
    vertices: torch.Tensor
    iou: torch.Tensor
    history: dict = field(default_factory=dict)
    cameras: Optional[WeakPerspectiveCamera] = None


def _corrected(cameras: WeakPerspectiveCamera, delta: torch.Tensor) -> WeakPerspectiveCamera:
    """``cameras`` with per-view corrections ``delta (B, 6)`` = (axis-angle rotation in the camera frame (3),
    log-scale (1), translation (2)) applied."""
    dq = torch.cat([torch.ones_like(delta[:, :1]), 0.5 * delta[:, :3]], dim=1)  # small angles: normalized below
    rot = quaternion_multiply(normalize_quaternion(dq), cameras.rotation)
    return WeakPerspectiveCamera(cameras.scale * torch.exp(delta[:, 3]), cameras.translation + delta[:, 4:6],
                                 normalize_quaternion(rot))


def fit_deformation(
    template: TemplateMesh,
    masks: torch.Tensor,
    cameras: WeakPerspectiveCamera,
    view_to_mesh: Optional[torch.Tensor] = None,
    config: SilhouetteFitConfig = SilhouetteFitConfig(),
    init: Optional[torch.Tensor] = None,
    callback: Optional[Callable[[int, dict], None]] = None,
    generator: Optional[torch.Generator] = None,
    anchor: Optional[torch.Tensor] = None,
) -> SilhouetteFit:
    """Optimize deformation maps so rendered silhouettes match ``masks``.

    Args:
        template: the UV sphere.
        masks: ``(B, 1, H, W)`` target silhouettes in ``[0, 1]`` (none empty).
        cameras: ``B`` cameras, one per mask.
        view_to_mesh: ``(B,)`` which mesh each view belongs to (default: one mesh per view);
            several views of one object share a map.
        init: optional ``(M, 3, Hd, Wd)`` starting maps (zeros = the sphere).
        anchor: optional ``(M, 3, Hd, Wd)`` maps the L2 term pulls towards (default: zeros, the sphere),
            e.g. a species' mean shape, so that what one silhouette cannot decide (depth) stays near it.
        callback: called as ``callback(step, terms)`` after every step (e.g. a live plot).
    """
    check_shape("masks", masks, (None, 1, None, None), "(B, 1, H, W)")
    b, _, h, w = masks.shape
    if config.render_size is not None and config.render_size < 1:
        raise ValueError(f"config.render_size must be >= 1 pixel (or None: the masks' size), got {config.render_size}")
    if config.lr_camera < 0 or config.w_camera < 0 or not 0 <= config.camera_only_fraction <= 1:
        raise ValueError(f"camera refinement settings: lr_camera and w_camera must be >= 0 (0: off) and "
                         f"camera_only_fraction in [0, 1], got {config.lr_camera}, {config.w_camera}, "
                         f"{config.camera_only_fraction}")
    if len(cameras) != b:
        raise ValueError(f"mismatched batch sizes: {b} masks, {len(cameras)} cameras")
    if (masks.flatten(1).amax(1) <= 0.5).any():
        empty = torch.nonzero(masks.flatten(1).amax(1) <= 0.5).squeeze(1).tolist()
        raise ValueError(f"empty target mask(s) at index {empty}: nothing to fit; drop those images")
    device = masks.device
    if view_to_mesh is None:
        view_to_mesh = torch.arange(b, device=device)
    n_mesh = int(view_to_mesh.max()) + 1
    hd = wd = config.deform_size
    if init is None:
        init = torch.zeros(n_mesh, 3, hd, wd, device=device)
    param = (init[..., : wd // 2] if config.symmetric else init).clone().requires_grad_()
    groups = [{"params": [param], "lr": config.lr}]
    delta = None
    if config.lr_camera > 0:
        delta = torch.zeros(b, 6, device=device, requires_grad=True)
        groups.append({"params": [delta], "lr": config.lr_camera})
    opt = torch.optim.Adam(groups)
    n_camera_only = int(round(config.camera_only_fraction * config.steps)) if delta is not None else 0
    faces = template.faces.to(device)
    pairs = face_adjacency(faces)
    targets = mask_points(masks, config.mask_points, generator)  # (B, K, 2)
    fit_size = (h, w)
    if config.render_size is not None and config.render_size < h:  # a coarser silhouette: fewer pixels to render
        fit_size = (config.render_size, max(1, round(config.render_size * w / h)))
    fit_masks = masks if fit_size == (h, w) else torch.nn.functional.interpolate(masks, size=fit_size, mode="area")
    history: dict[str, list[float]] = {}

    def current_maps() -> torch.Tensor:
        return mirror_uv_map(param, negate_x=True) if config.symmetric else param

    anchor_verts = deform_vertices(template, anchor) if anchor is not None and config.w_anchor_depth else None
    n_coarse = int(round(config.coarse_fraction * config.steps))
    for step in range(config.steps):
        deform = current_maps()
        verts = deform_vertices(template, deform)  # (M, N, 3)
        cams = cameras if delta is None else _corrected(cameras, delta)
        verts_cam = cams.apply(verts[view_to_mesh])
        l_cham = chamfer_2d(verts_cam[..., :2], targets).mean()
        l_smooth = normal_consistency(verts, faces, pairs).mean()
        l_l2 = (deform if anchor is None else deform - anchor).pow(2).mean()
        loss = config.w_smooth * l_smooth + config.w_l2 * l_l2
        terms = {}
        if anchor_verts is not None:  # depth offsets from the anchor, along each view's line of sight
            depth = qrot(cams.rotation, (verts - anchor_verts)[view_to_mesh])[..., 2]
            l_depth = depth.pow(2).mean()
            loss = loss + config.w_anchor_depth * l_depth
            terms["anchor_depth"] = float(l_depth.detach())
        if step < n_coarse:  # coarse: match point sets only, no rasterization (cheap, wide basin)
            loss = loss + config.w_chamfer * l_cham
        else:  # fine: the soft silhouette, sharpened as the fit converges
            frac = (step - n_coarse) / max(config.steps - n_coarse - 1, 1)
            sigma_inv = config.sigma_inv_start * (config.sigma_inv_end / config.sigma_inv_start) ** frac
            box_len = min(config.box_len, 3.0 / sigma_inv**0.5)  # beyond ~3 sigma a face adds < 1e-4
            frags = rasterize(verts_cam, faces, fit_size)
            sil = soft_mask(verts_cam, faces, frags, sigma_inv, box_len)
            l_iou = (1 - soft_iou(sil, fit_masks)).mean()
            loss = loss + config.w_iou * l_iou + config.w_chamfer_fine * l_cham
            terms["iou"] = float(l_iou.detach())
        if delta is not None and config.w_camera:
            loss = loss + config.w_camera * delta.pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        if step < n_camera_only:  # cameras first: the start shape is aligned before it is bent
            param.grad = None
        opt.step()
        terms.update(total=float(loss.detach()), chamfer=float(l_cham.detach()), smooth=float(l_smooth.detach()))
        for k, v in terms.items():
            history.setdefault(k, []).append(v)
        if callback is not None:
            callback(step, terms)

    with torch.no_grad():
        deform = current_maps().detach()
        verts = deform_vertices(template, deform)
        cams = cameras if delta is None else _corrected(cameras, delta).detach()
        frags = rasterize(cams.apply(verts[view_to_mesh]), faces, (h, w))
        iou = hard_iou(frags.mask, masks)
    return SilhouetteFit(deformation=deform, vertices=verts, iou=iou, history=history,
                         cameras=cams if delta is not None else None)
