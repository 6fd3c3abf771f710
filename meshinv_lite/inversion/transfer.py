"""Texture transfer: every reconstruction shares the template's topology and UV layout, so moving a texture
from one bird to another is swapping texture maps.

Texel ``(u, v)`` colours the same point *of the template* on every mesh (the tip of the wing, the crown of
the head), wherever the deformation map moved it. A texture map made for bird B therefore already "fits"
bird A: render A's vertices with B's map and the wing pattern lands on A's wing, even when A's wings are
spread or its tail is long. No correspondence search, no re-projection: geometry stays, texture moves.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from .._checks import check_shape
from ..config import RenderConfig
from ..render.camera import WeakPerspectiveCamera
from ..render.dibr import render_mesh
from ..render.mesh import TemplateMesh
from ..render.views import normalize_for_protocol, protocol_cameras

WHITE = (1.0, 1.0, 1.0)


def swap_textures(textures: torch.Tensor, permutation: Sequence[int]) -> torch.Tensor:
    """Texture maps ``(B, 3, Ht, Wt)`` reordered: mesh ``i`` gets texture ``permutation[i]``."""
    check_shape("textures", textures, (None, 3, None, None), "(B, 3, Ht, Wt)")
    perm = torch.as_tensor(list(permutation), dtype=torch.long, device=textures.device)
    if perm.shape[0] != textures.shape[0] or perm.min() < 0 or perm.max() >= textures.shape[0]:
        raise ValueError(f"permutation must give one index in [0, {textures.shape[0]}) per mesh, got {list(permutation)}")
    return textures[perm]


def transfer_views(azimuths: Sequence[float] = (45.0, 225.0), elevation_deg: float = 30.0, scale: float = 0.7,
                   device=None) -> WeakPerspectiveCamera:
    """Cameras for transfer grids: the evaluation protocol's canonical pose (one front-side, one back-side view)."""
    return protocol_cameras(azimuths, elevation_deg, scale, device=device)


@torch.no_grad()
def transfer_grid(
    template: TemplateMesh,
    vertices: torch.Tensor,
    textures: torch.Tensor,
    cameras: Optional[WeakPerspectiveCamera] = None,
    render_config: RenderConfig = RenderConfig(),
    background: Optional[Sequence[float]] = WHITE,
    normalize: bool = True,
) -> torch.Tensor:
    """Every shape with every texture, from every view.

    Args:
        vertices: ``(S, N, 3)`` meshes (the rows); textures ``(T, 3, Ht, Wt)`` (the columns).
        cameras: ``V`` views (default :func:`transfer_views`); the same for all shapes.
        normalize: re-centre and scale each mesh as the evaluation protocol does
            (:func:`~meshinv_lite.render.normalize_for_protocol`), so birds of any size fill the frame alike.
    Returns:
        images ``(S, T, V, 3, H, W)``: ``[s, t, v]`` is shape ``s`` wearing texture ``t`` seen from view ``v``.
        Geometry depends only on ``s``: every image of a row has the same silhouette.
    """
    check_shape("vertices", vertices, (None, template.num_vertices, 3), f"(S, {template.num_vertices}, 3)")
    check_shape("textures", textures, (None, 3, None, None), "(T, 3, Ht, Wt)")
    device = vertices.device
    cams = cameras if cameras is not None else transfer_views(device=device)
    cams = cams.to(device)
    s, t, v = vertices.shape[0], textures.shape[0], len(cams)
    verts = normalize_for_protocol(vertices) if normalize else vertices
    bg = None if background is None else torch.tensor(list(background), dtype=verts.dtype, device=device)
    rows = []
    for i in range(s):
        # all (texture, view) pairs of one shape as one batch: (T * V) renders
        vv = verts[i:i + 1].expand(t * v, -1, -1)
        tex = textures.to(device).repeat_interleave(v, 0)
        cam = WeakPerspectiveCamera(cams.scale.repeat(t), cams.translation.repeat(t, 1), cams.rotation.repeat(t, 1))
        out = render_mesh(template, vv, cam, tex, render_config, background=bg, soft=False)
        rows.append(out.image.reshape(t, v, *out.image.shape[1:]))
    return torch.stack(rows)


def grid_figure(images: torch.Tensor, row_titles: Sequence[str] = (), col_titles: Sequence[str] = (),
                view_titles: Sequence[str] = (), size: float = 1.5, suptitle: str = ""):
    """A matplotlib figure of :func:`transfer_grid`'s ``(S, T, V, 3, H, W)``: rows = shapes, columns = textures
    (the ``V`` views of one texture side by side)."""
    import matplotlib.pyplot as plt

    s, t, v = images.shape[:3]
    fig, axes = plt.subplots(s, t * v, figsize=(size * t * v, size * s + 0.6), squeeze=False)
    for i in range(s):
        for j in range(t):
            for k in range(v):
                ax = axes[i, j * v + k]
                ax.imshow(images[i, j, k].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if i == 0:
                    head = col_titles[j] if j < len(col_titles) else f"texture {j}"
                    view = view_titles[k] if k < len(view_titles) else f"view {k}"
                    ax.set_title(f"{head}\n{view}" if k == 0 else f"\n{view}", fontsize=7)
                if j == 0 and k == 0:
                    ax.set_ylabel(row_titles[i] if i < len(row_titles) else f"shape {i}", fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
