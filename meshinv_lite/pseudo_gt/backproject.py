"""Back-projection: an image's colours carried into the template's UV space, with what the camera saw.

Used to make pseudo ground truth (:mod:`meshinv_lite.pseudo_gt`) and to score textures by what the input
view showed (:func:`meshinv_lite.evaluation.texture_error_by_visibility`), so it sits below both.

* :func:`uv_fragments`: rasterize the template laid out in UV space (which face covers each texel);
* :func:`back_project`: for every texel, its surface point, projected by the camera, read from the image,
  with a visibility test (faces the camera, passes the z-buffer like a shadow map, inside the mask);
* :func:`mirror_fill`: hidden texels take their mirror texel's colour (birds are left-right symmetric).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_batch, check_shape
from ..render.camera import WeakPerspectiveCamera
from ..render.dibr import Fragments, interpolate, rasterize
from ..render.mesh import TemplateMesh, face_normals


@dataclass(frozen=True)
class BackProjectionConfig:
    """Visibility tests of :func:`back_project`.

    ``depth_tolerance``: how far (camera-space units) a texel may lie behind the z-buffer and still
    count as visible. ``min_facing``: cosine between the face normal and the view direction below
    which a texel is considered too oblique to trust (0 keeps everything that faces the camera).
    ``mirror_fill``: in :func:`make_pseudo_gt`, fill hidden texels from their visible mirror texels
    (:func:`mirror_fill`); :func:`back_project` itself always returns what the camera saw.
    """

    depth_tolerance: float = 0.03
    min_facing: float = 0.15
    mask_threshold: float = 0.5
    mirror_fill: bool = True


def uv_fragments(template: TemplateMesh, texture_size: int | tuple[int, int], batch: int = 1) -> Fragments:
    """Rasterize the template laid out in UV space: texel ``(row, col)`` -> face and barycentrics.

    The UV square maps to normalized coordinates as ``x = 2u - 1``, ``y = 1 - 2v`` so texel row 0 is
    ``v = 0`` (the north pole row of the maps).
    """
    uv = template.uvs
    xy = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1], torch.zeros_like(uv[:, 0])], dim=-1)
    return rasterize(xy[None].expand(batch, -1, -1), template.faces_uv, texture_size)


def back_project(
    template: TemplateMesh,
    verts: torch.Tensor,
    camera: WeakPerspectiveCamera,
    images: torch.Tensor,
    masks: torch.Tensor,
    texture_size: int | tuple[int, int],
    config: BackProjectionConfig = BackProjectionConfig(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Partial textures and their visibility from images.

    Args:
        template: UV layout and faces.
        verts: ``(B, N, 3)`` object-space meshes (e.g. fitted).
        camera: ``B`` cameras.
        images: ``(B, 3, H, W)`` in ``[0, 1]``; masks ``(B, 1, H, W)`` in ``[0, 1]``.
        texture_size: ``Ht`` (square) or ``(Ht, Wt)``.
    Returns:
        ``texture (B, 3, Ht, Wt)`` in ``[0, 1]`` (zero where invisible), ``visibility (B, 1, Ht, Wt)``.
    """
    check_shape("images", images, (None, 3, None, None), "(B, 3, H, W)")
    check_shape("masks", masks, (None, 1, images.shape[2], images.shape[3]), f"(B, 1, {images.shape[2]}, {images.shape[3]})")
    bsz = check_batch(verts=verts, images=images, masks=masks, camera=camera.scale)
    h, w = images.shape[-2:]
    faces = template.faces.to(verts.device)
    verts_cam = camera.apply(verts)
    zbuf = rasterize(verts_cam, faces, (h, w)).zbuf  # (B, H, W), inf on background

    texels = uv_fragments(template, texture_size, bsz)
    surface = interpolate(verts_cam, faces, texels)  # (B, Ht, Wt, 3) camera-space point of each texel
    covered = (texels.pix_to_face >= 0)  # (B, Ht, Wt)

    # Read image, mask and z-buffer at the projected texel positions (grid_sample's y points down).
    grid = torch.stack([surface[..., 0], -surface[..., 1]], dim=-1)
    colour = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    in_mask = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    z_seen = F.grid_sample(zbuf.clamp(max=1e6)[:, None], grid, mode="nearest", padding_mode="border", align_corners=False)[:, 0]

    normals = face_normals(verts_cam, faces)  # (B, F, 3); larger z is farther, so facing means n_z < 0
    face_idx = texels.pix_to_face.clamp_min(0).reshape(bsz, -1)
    facing = -torch.gather(normals[..., 2], 1, face_idx).reshape(covered.shape)
    inside = (grid.abs() <= 1).all(-1)
    visible = (
        covered
        & inside
        & (facing > config.min_facing)
        & (surface[..., 2] <= z_seen + config.depth_tolerance)
        & (in_mask > config.mask_threshold)
    )
    vis = visible[:, None].to(images.dtype)
    return colour * vis, vis


def mirror_fill(texture: torch.Tensor, visibility: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Complete partial textures with their mirror image (``u -> 1 - u``, the left-right mirror of the template).

    ``texture (B, 3, Ht, Wt)``, ``visibility (B, 1, Ht, Wt)`` in ``{0, 1}``. A texel keeps its own colour where
    it was seen, takes its mirror texel's where only that was seen; the visibility becomes the union.
    """
    mirrored_tex, mirrored_vis = texture.flip(-1), visibility.flip(-1)
    fill = mirrored_vis * (1 - visibility)
    return texture * visibility + mirrored_tex * fill, (visibility + fill).clamp(0, 1)
