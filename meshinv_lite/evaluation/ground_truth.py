"""Scoring a reconstruction against any ground truth: a mesh of any topology, or renders with cameras.

SynthBirds' ground truth happens to be our template deformed and textured by UV maps
(:func:`meshinv_lite.evaluation.ground_truth_metrics` uses that). Data from elsewhere comes as

* a **mesh** of its own topology, with per-vertex colours, a UV texture, or no appearance at all
  (:class:`GroundTruthMesh`), seen by a known camera in the input view; or
* **renders** of the object with their cameras (:func:`render_metrics`), the input view's camera among
  them, in the object's own frame.

Both are compared through the *known camera alignment*: the reconstruction is seen in the input view
through its (refined) camera, the ground truth through its true one, so a view ``k`` of the ground truth
(camera ``c_k``) corresponds to the reconstruction rendered through :func:`aligned_camera`: the same
change of view applied in camera space. 3D distances are taken between points sampled uniformly on both
surfaces (by area, so two meshes of different resolution compare fairly), in the input camera's frame
divided by the true scale (the template's radius is 1).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .._checks import check_finite, check_shape, check_unit_range, image_hw
from ..config import RenderConfig
from ..inversion.search import Reconstruction
from ..metrics import chamfer_3d, f_score, mask_iou, psnr, ssim
from ..render.camera import WeakPerspectiveCamera, check_camera, qrot, quaternion_multiply
from ..render.dibr import interpolate, rasterize, render_mesh
from ..render.dibr import texture as sample_texture
from ..render.mesh import TemplateMesh, deform_vertices, face_adjacency
from ..render.views import turn_cameras
from .realism import perceptual_distance, sharpness_ratio


@torch.no_grad()
def ground_truth_metrics(
    template,
    verts: torch.Tensor,
    texture: torch.Tensor,
    camera,
    gt_verts: torch.Tensor,
    gt_texture: torch.Tensor,
    gt_camera,
    render_config,
    azimuths: tuple[float, ...] = tuple(range(0, 360, 30)),
    f_threshold: float = 0.1,
) -> dict:
    """Reconstructions vs SynthBirds ground truth, per image.

    Novel views: both meshes turned by each azimuth about their vertical axis and rendered through their
    own camera (reconstruction: the refined one; ground truth: the exact one) on black; PSNR and SSIM
    per view. 3D: both meshes mapped into camera space by those cameras (the known alignment) and
    divided by the true camera scale; symmetric Chamfer distance and F-score at ``f_threshold``
    (template radius = 1).

    Returns ``{"psnr": (B, K), "ssim": (B, K), "chamfer_3d": (B,), "f_score": (B,), "azimuths": [..]}``.
    """
    from ..render.dibr import render_mesh

    ps, ss = [], []
    for az in azimuths:
        pred = render_mesh(template, verts, turn_cameras(camera, az), texture, render_config, soft=False).image
        true = render_mesh(template, gt_verts, turn_cameras(gt_camera, az), gt_texture, render_config, soft=False).image
        ps.append(psnr(pred, true))
        ss.append(ssim(pred, true))
    a = camera.apply(verts) / gt_camera.scale[:, None, None]
    b = gt_camera.apply(gt_verts) / gt_camera.scale[:, None, None]
    return {"psnr": torch.stack(ps, 1), "ssim": torch.stack(ss, 1), "chamfer_3d": chamfer_3d(a, b),
            "f_score": f_score(a, b, f_threshold), "azimuths": list(azimuths)}


@torch.no_grad()
def texture_error_by_visibility(
    template,
    gt_verts: torch.Tensor,
    gt_camera,
    masks: torch.Tensor,
    pred_texture: torch.Tensor,
    gt_texture: torch.Tensor,
    back_projection=None,
) -> dict:
    """Mean absolute texture error on the texels the input view showed, and on the rest.

    Visibility per texel comes from :func:`meshinv_lite.pseudo_gt.back_project` with the *ground-truth*
    mesh ``gt_verts`` ``(B, N, 3)``, the exact camera and the input masks ``(B, 1, H, W)`` (so texels
    behind an occluder count as unseen). Texels outside the UV layout are ignored. ``pred_texture`` is
    resized to the ground truth's size when they differ.

    Returns ``{"seen": (B,), "unseen": (B,), "seen_fraction": (B,)}``: mean over texels and channels of
    ``|pred - gt|`` (NaN where a set is empty), and the share of laid-out texels that were seen.
    """

    from ..pseudo_gt.backproject import BackProjectionConfig, back_project, uv_fragments

    check_shape("gt_texture", gt_texture, (None, 3, None, None), "(B, 3, Ht, Wt)")
    check_shape("pred_texture", pred_texture, (gt_texture.shape[0], 3, None, None), "(B, 3, H, W)")
    size = tuple(gt_texture.shape[-2:])
    if tuple(pred_texture.shape[-2:]) != size:
        pred_texture = F.interpolate(pred_texture, size=size, mode="bilinear", align_corners=False, antialias=True)
    dummy = masks.new_zeros(masks.shape[0], 3, *masks.shape[-2:])
    _, vis = back_project(template, gt_verts, gt_camera, dummy, masks, size, back_projection or BackProjectionConfig())
    laid_out = (uv_fragments(template, size, 1).pix_to_face[:, None] >= 0).to(vis)
    seen = vis * laid_out
    unseen = (1 - vis) * laid_out
    err = (pred_texture - gt_texture).abs().mean(1, keepdim=True)

    def masked_mean(w):
        n = w.flatten(1).sum(1)
        return torch.where(n > 0, (err * w).flatten(1).sum(1) / n.clamp_min(1), torch.full_like(n, float("nan")))

    return {"seen": masked_mean(seen), "unseen": masked_mean(unseen),
            "seen_fraction": seen.flatten(1).sum(1) / laid_out.flatten(1).sum(1).clamp_min(1)}


@torch.no_grad()
def reconstruction_metrics(reconstruction: Reconstruction, batch: dict, template: TemplateMesh,
                           render_config: RenderConfig, azimuths: tuple[float, ...] = tuple(range(0, 360, 30))) -> dict:
    """Per-image figures of a reconstruction against SynthBirds ground truth (``batch`` with GT maps).

    Returns ``{"iou", "psnr_novel", "ssim_novel", "psnr_input_view", "chamfer_3d", "f_score", "folded",
    "folded_gt", "roughness", "roughness_gt"}`` as ``(B,)`` tensors plus ``"psnr_per_view"`` ``(B, K)``; novel-view
    figures average the ``azimuths`` other than 0 (0 is the input view); ``folded`` / ``folded_gt``: the share of
    folded face pairs of the reconstruction / the true shape (:func:`~meshinv_lite.metrics.folded_fraction`);
    ``roughness`` / ``roughness_gt``: their mean angle between neighbouring face normals, degrees
    (:func:`~meshinv_lite.metrics.roughness`).
    See :func:`meshinv_lite.evaluation.ground_truth_metrics`.
    """
    from ..metrics import folded_fraction, roughness

    if "deform_map" not in batch or "texture_map" not in batch:
        raise ValueError("the batch has no ground-truth maps (deform_map, texture_map): real data cannot be scored in 3D")
    device = reconstruction.vertices.device
    pairs = face_adjacency(template.faces)
    gt_verts = deform_vertices(template, batch["deform_map"].to(device))
    gt_cam = WeakPerspectiveCamera.from_tensor(batch["camera"]).to(device)
    m = ground_truth_metrics(template, reconstruction.vertices, reconstruction.texture, reconstruction.camera,
                             gt_verts, batch["texture_map"].to(device), gt_cam, render_config, azimuths)
    novel = [i for i, a in enumerate(m["azimuths"]) if a % 360 != 0]
    return {"iou": reconstruction.iou.cpu(), "psnr_novel": m["psnr"][:, novel].mean(1).cpu(),
            "ssim_novel": m["ssim"][:, novel].mean(1).cpu(), "psnr_input_view": m["psnr"][:, m["azimuths"].index(0)].cpu()
            if 0 in m["azimuths"] else None, "chamfer_3d": m["chamfer_3d"].cpu(), "f_score": m["f_score"].cpu(),
            "psnr_per_view": m["psnr"].cpu(), "folded": folded_fraction(reconstruction.vertices, template.faces, pairs).cpu(),
            "folded_gt": folded_fraction(gt_verts, template.faces, pairs).cpu(),
            "roughness": roughness(reconstruction.vertices, template.faces, pairs).cpu(),
            "roughness_gt": roughness(gt_verts, template.faces, pairs).cpu()}


#: Surface points sampled per mesh for the 3D Chamfer distance and F-score.
SURFACE_POINTS = 4096


@dataclass
class GroundTruthMesh:
    """A batch of ground-truth meshes sharing one topology, and their appearance.

    Attributes:
        vertices: ``(B, N, 3)`` object-space positions (the frame the ground-truth cameras look at).
        faces: ``(F, 3)`` long vertex indices.
        vertex_colors: ``(B, N, 3)`` in ``[0, 1]``; or
        uvs ``(U, 2)`` in ``[0, 1]``, faces_uv ``(F, 3)`` long and texture ``(B, 3, Ht, Wt)`` in ``[0, 1]``;
        or neither (shape only: renders are a flat grey, so only 3D and silhouette figures mean anything).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    vertex_colors: Optional[torch.Tensor] = None
    uvs: Optional[torch.Tensor] = None
    faces_uv: Optional[torch.Tensor] = None
    texture: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        check_shape("vertices", self.vertices, (None, None, 3), "(B, N, 3)")
        b, n = self.vertices.shape[:2]
        check_shape("faces", self.faces, (None, 3), "(F, 3) vertex indices")
        check_finite("vertices", self.vertices)
        if self.faces.is_floating_point() or self.faces.numel() == 0:
            raise ValueError("faces must be a non-empty (F, 3) integer tensor of vertex indices")
        if int(self.faces.min()) < 0 or int(self.faces.max()) >= n:
            raise ValueError(f"faces index vertices outside 0..{n - 1}")
        uv_parts = (self.uvs, self.faces_uv, self.texture)
        if any(p is not None for p in uv_parts) and not all(p is not None for p in uv_parts):
            raise ValueError("a UV texture needs all of uvs (U, 2), faces_uv (F, 3) and texture (B, 3, Ht, Wt)")
        if self.vertex_colors is not None and self.texture is not None:
            raise ValueError("give vertex_colors or a UV texture, not both")
        if self.vertex_colors is not None:
            check_shape("vertex_colors", self.vertex_colors, (b, n, 3), f"({b}, {n}, 3) in [0, 1]")
            self.vertex_colors = check_unit_range("vertex_colors", self.vertex_colors, "colour")
            check_finite("vertex_colors", self.vertex_colors)
        if self.texture is not None:
            check_shape("uvs", self.uvs, (None, 2), "(U, 2) in [0, 1]")
            check_shape("faces_uv", self.faces_uv, (self.faces.shape[0], 3), f"({self.faces.shape[0]}, 3) indices into uvs")
            check_shape("texture", self.texture, (b, 3, None, None), f"({b}, 3, Ht, Wt) in [0, 1]")
            self.texture = check_unit_range("texture", self.texture, "texture")
            check_finite("texture", self.texture)

    @classmethod
    def from_template(cls, template: TemplateMesh, deform_map: torch.Tensor, texture_map: torch.Tensor) -> "GroundTruthMesh":
        """SynthBirds-style ground truth: the template deformed by ``(B, 3, Hd, Wd)`` maps, UV-textured."""
        return cls(deform_vertices(template, deform_map), template.faces.to(deform_map.device),
                   uvs=template.uvs.to(deform_map.device), faces_uv=template.faces_uv.to(deform_map.device),
                   texture=texture_map)

    def __len__(self) -> int:
        return self.vertices.shape[0]

    @torch.no_grad()
    def render(self, camera: WeakPerspectiveCamera, image_size: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image (B, 3, H, W) in [0, 1] on black, mask (B, 1, H, W))`` seen through ``camera``."""
        check_camera("camera", camera)
        h, w = image_hw(image_size)
        frags = rasterize(camera.apply(self.vertices), self.faces, (h, w))
        if self.vertex_colors is not None:
            color = interpolate(self.vertex_colors, self.faces, frags).permute(0, 3, 1, 2)
        elif self.texture is not None:
            color = sample_texture(self.texture, interpolate(self.uvs, self.faces_uv, frags))
        else:
            color = torch.full((len(self), 3, h, w), 0.5, device=self.vertices.device)
        mask = frags.mask.to(color.dtype)
        return color * mask, mask


def aligned_camera(rec_camera: WeakPerspectiveCamera, gt_camera: WeakPerspectiveCamera,
                   view_camera: WeakPerspectiveCamera, depth_offset: Optional[torch.Tensor] = None) -> WeakPerspectiveCamera:
    """The camera that shows the reconstruction as ``view_camera`` shows the ground truth.

    In the input view the reconstruction matches the photo as the ground truth does, up to depth, which a
    weak-perspective view cannot observe: ``s_r R_r V_r + (t_r, c) = s_g R_g V_g + (t_g, 0)`` with
    ``c = depth_offset`` ``(B,)`` (default 0; :func:`depth_offset` puts the two objects' centres at one depth).
    Solving for ``V_g`` and seeing it through view ``k`` gives the reconstruction under scale ``s_k s_r / s_g``,
    rotation ``R_k R_g^-1 R_r`` and image-plane translation ``t_k + (s_k / s_g) [R_k R_g^-1 (t_r - t_g, c)]_xy``.
    For ``view_camera = gt_camera`` this is ``rec_camera``.
    """
    for name, c in (("rec_camera", rec_camera), ("gt_camera", gt_camera), ("view_camera", view_camera)):
        check_camera(name, c)
    g_inv = gt_camera.rotation * gt_camera.rotation.new_tensor([1.0, -1.0, -1.0, -1.0])  # unit quaternion inverse
    delta = quaternion_multiply(view_camera.rotation, g_inv)  # R_k R_g^-1
    ratio = view_camera.scale / gt_camera.scale
    c = torch.zeros_like(rec_camera.scale) if depth_offset is None else depth_offset.to(rec_camera.scale)
    shift = torch.cat([rec_camera.translation - gt_camera.translation, c[:, None]], dim=1)
    translation = view_camera.translation + ratio[:, None] * qrot(delta, shift[:, None])[:, 0, :2]
    return WeakPerspectiveCamera(ratio * rec_camera.scale, translation, quaternion_multiply(delta, rec_camera.rotation))


def _corners_and_areas(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Face corners ``(B, F, 3, 3)`` and twice the face areas ``(B, F)`` (a common factor: used as weights)."""
    corners = vertices[:, faces]
    return corners, torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0]).norm(dim=-1)


def surface_centroid(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` centre of each mesh's surface (face centroids weighted by area): the same point for two
    tessellations of one surface, unlike the vertex mean."""
    corners, area = _corners_and_areas(vertices, faces)
    return (area[..., None] * corners.mean(2)).sum(1) / area.sum(1, keepdim=True).clamp_min(1e-12)


def depth_offset(rec_centre: torch.Tensor, rec_camera: WeakPerspectiveCamera,
                 gt_centre: Optional[torch.Tensor] = None, gt_camera: Optional[WeakPerspectiveCamera] = None) -> torch.Tensor:
    """``(B,)`` depth that puts the reconstruction's centre ``(B, 3)`` (:func:`surface_centroid`) at the ground
    truth's in the input view: ``gt_centre`` seen by ``gt_camera``, or, without a ground-truth mesh, the
    origin of the ground truth's frame (the point its views turn about)."""
    rec_z = rec_camera.apply(rec_centre[:, None])[:, 0, 2]
    gt_z = gt_camera.apply(gt_centre[:, None])[:, 0, 2] if gt_centre is not None else torch.zeros_like(rec_z)
    return gt_z - rec_z


def sample_surface(vertices: torch.Tensor, faces: torch.Tensor, num_points: int = SURFACE_POINTS,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``(B, num_points, 3)`` points uniform on each mesh's surface (faces drawn by area, then uniform
    barycentrics). ``vertices`` ``(B, N, 3)``, ``faces`` ``(F, 3)``."""
    check_shape("vertices", vertices, (None, None, 3), "(B, N, 3)")
    corners, area = _corners_and_areas(vertices, faces)
    weights = area.detach().cpu() + 1e-12
    idx = torch.multinomial(weights, num_points, replacement=True, generator=generator).to(vertices.device)
    r = torch.rand(vertices.shape[0], num_points, 2, generator=generator).to(vertices)
    su = r[..., :1].sqrt()
    bary = torch.cat([1 - su, su * (1 - r[..., 1:]), su * r[..., 1:]], dim=-1)  # (B, P, 3), uniform on a triangle
    picked = torch.gather(corners, 1, idx[:, :, None, None].expand(-1, -1, 3, 3))  # (B, P, 3, 3)
    return (bary[..., None] * picked).sum(2)


@torch.no_grad()
def mesh_metrics(
    template: TemplateMesh,
    verts: torch.Tensor,
    texture_map: torch.Tensor,
    camera: WeakPerspectiveCamera,
    gt: GroundTruthMesh,
    gt_camera: WeakPerspectiveCamera,
    render_config: RenderConfig,
    azimuths: Sequence[float] = tuple(range(0, 360, 30)),
    f_threshold: float = 0.1,
    surface_points: int = SURFACE_POINTS,
    seed: int = 0,
    eval_net=None,
) -> dict:
    """Reconstructions (template topology) against ground-truth meshes of any topology, per image.

    Views: the ground truth turned by each azimuth about its vertical axis, seen by its camera, against
    the reconstruction through :func:`aligned_camera` of that view (its centre at the ground truth's depth,
    :func:`depth_offset`); PSNR, SSIM and the silhouette IoU per view. 3D: ``surface_points`` points sampled
    on each surface, in the input camera's frame (same depth convention) divided by the true scale;
    symmetric Chamfer distance and F-score at ``f_threshold``.

    With ``eval_net`` (e.g. ``load_feature_extractor("synthbirds_eval")``) also ``"perceptual"`` and
    ``"sharpness_ratio"`` ``(B, K)`` (:mod:`meshinv_lite.evaluation.realism`).

    Returns ``{"psnr", "ssim", "iou": (B, K), "chamfer_3d", "f_score": (B,), "azimuths": [...]}``.
    """
    check_shape("verts", verts, (len(gt), template.num_vertices, 3), f"({len(gt)}, {template.num_vertices}, 3)")
    gen = torch.Generator().manual_seed(seed)
    rec_pts = sample_surface(verts, template.faces.to(verts.device), surface_points, gen)
    gt_pts = sample_surface(gt.vertices, gt.faces, surface_points, gen)
    c = depth_offset(surface_centroid(verts, template.faces.to(verts.device)), camera,
                     surface_centroid(gt.vertices, gt.faces), gt_camera)
    ps, ss, ious, per, sharp = [], [], [], [], []
    for az in azimuths:
        view = turn_cameras(gt_camera, az)
        true, true_mask = gt.render(view, render_config.image_size)
        out = render_mesh(template, verts, aligned_camera(camera, gt_camera, view, c), texture_map, render_config, soft=False)
        ps.append(psnr(out.image, true))
        ss.append(ssim(out.image, true))
        ious.append(mask_iou(out.mask, true_mask))
        if eval_net is not None:
            per.append(perceptual_distance(eval_net, out.image, out.mask, true, true_mask))
            sharp.append(sharpness_ratio(out.image, out.mask, true, true_mask))
    a = camera.apply(rec_pts) + torch.stack([torch.zeros_like(c), torch.zeros_like(c), c], 1)[:, None]
    a, b = a / gt_camera.scale[:, None, None], gt_camera.apply(gt_pts) / gt_camera.scale[:, None, None]
    result = {"psnr": torch.stack(ps, 1), "ssim": torch.stack(ss, 1), "iou": torch.stack(ious, 1),
              "chamfer_3d": chamfer_3d(a, b), "f_score": f_score(a, b, f_threshold), "azimuths": list(azimuths)}
    if eval_net is not None:
        result.update(perceptual=torch.stack(per, 1), sharpness_ratio=torch.stack(sharp, 1))
    return result


@torch.no_grad()
def render_metrics(
    template: TemplateMesh,
    verts: torch.Tensor,
    texture_map: torch.Tensor,
    camera: WeakPerspectiveCamera,
    gt_camera: WeakPerspectiveCamera,
    gt_views: Sequence[tuple[WeakPerspectiveCamera, torch.Tensor, torch.Tensor]],
    render_config: RenderConfig,
    eval_net=None,
) -> dict:
    """Reconstructions against ground-truth renders: ``gt_views`` is a list of ``(camera_k, image_k (B, 3, H, W),
    mask_k (B, 1, H, W))`` in ``[0, 1]``, images on black, cameras in the ground truth's frame; ``gt_camera`` is
    the input view's true camera. Returns ``{"psnr", "ssim", "iou": (B, K)}``, the reconstruction rendered
    through :func:`aligned_camera` of each view at the views' size, its centre (:func:`surface_centroid`)
    put at the depth of the ground truth frame's origin."""
    if not gt_views:
        raise ValueError("gt_views is empty: give at least one (camera, image, mask) view")
    c = depth_offset(surface_centroid(verts, template.faces.to(verts.device)), camera)  # no GT mesh: its origin
    ps, ss, ious, per, sharp = [], [], [], [], []
    for k, (view, image, mask) in enumerate(gt_views):
        check_shape(f"gt_views[{k}] image", image, (verts.shape[0], 3, None, None), f"({verts.shape[0]}, 3, H, W)")
        check_shape(f"gt_views[{k}] mask", mask, (verts.shape[0], 1) + tuple(image.shape[-2:]),
                    f"({verts.shape[0]}, 1, H, W) as its image")
        image = check_unit_range(f"gt_views[{k}] image", image)
        cfg = replace(render_config, image_size=tuple(image.shape[-2:]))
        out = render_mesh(template, verts, aligned_camera(camera, gt_camera, view, c), texture_map, cfg, soft=False)
        ps.append(psnr(out.image, image * mask))
        ss.append(ssim(out.image, image * mask))
        ious.append(mask_iou(out.mask, mask))
        if eval_net is not None:
            per.append(perceptual_distance(eval_net, out.image, out.mask, image * mask, mask))
            sharp.append(sharpness_ratio(out.image, out.mask, image * mask, mask))
    result = {"psnr": torch.stack(ps, 1), "ssim": torch.stack(ss, 1), "iou": torch.stack(ious, 1)}
    if eval_net is not None:  # with it: "perceptual" and "sharpness_ratio" (B, K), see meshinv_lite.evaluation.realism
        result.update(perceptual=torch.stack(per, 1), sharpness_ratio=torch.stack(sharp, 1))
    return result
