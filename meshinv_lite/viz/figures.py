"""Pictures: image grids, UV maps, a live loss panel and a pythreejs 3D viewer.

Everything returns a matplotlib ``Figure`` or a widget and takes tensors in the package's
conventions (images ``(N, 3, H, W)`` in ``[0, 1]``); nothing here changes data.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch


def _to_hwc(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(3, H, W)`` / ``(1, H, W)`` / ``(H, W)`` tensor or array -> ``(H, W, 3)`` or ``(H, W)`` numpy in [0, 1]."""
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu().numpy()
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
    return np.clip(img, 0, 1)


def image_grid(
    images: torch.Tensor | Sequence,
    nrow: int = 8,
    titles: Optional[Sequence[str]] = None,
    size: float = 1.6,
    cmap: str = "gray",
    suptitle: Optional[str] = None,
):
    """A grid of images ``(N, C, H, W)`` (or a list of ``(C, H, W)``) in ``[0, 1]``; returns the Figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    title_room = 0.25 * nrows if titles is not None else 0.0   # each row's titles get their own band, not the row above
    fig, axes = plt.subplots(nrows, ncol, figsize=(size * ncol, size * nrows + title_room + (0.3 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = _to_hwc(images[i])
            ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_uv_maps(texture: torch.Tensor, deformation: Optional[torch.Tensor] = None, title: str = ""):
    """Texture ``(3, Ht, Wt)`` in [0, 1] and, if given, deformation ``(3, Hd, Wd)`` (x, y, z offsets)
    side by side, with the u (width, wraps) and v (height, north pole at top) axes labelled."""
    import matplotlib.pyplot as plt

    ncols = 1 if deformation is None else 4
    fig, axes = plt.subplots(1, ncols, figsize=(3.2 * ncols, 3.2), squeeze=False)
    axes = axes[0]
    axes[0].imshow(_to_hwc(texture), extent=(0, 1, 1, 0))
    axes[0].set_title("texture T")
    if deformation is not None:
        d = deformation.detach().float().cpu()
        lim = float(d.abs().max()) or 1.0
        for k, name in enumerate("xyz"):
            im = axes[k + 1].imshow(d[k].numpy(), cmap="coolwarm", vmin=-lim, vmax=lim, extent=(0, 1, 1, 0))
            axes[k + 1].set_title(f"deformation S, {name} offset")
        fig.colorbar(im, ax=list(axes[1:]), shrink=0.8)
    for ax in axes:
        ax.set_xlabel("u (wraps around)")
    axes[0].set_ylabel("v (0 = north pole)")   # once: the panels share it, and a label per panel overlaps its neighbour
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a figure as PNG (atomically) and return its path."""
    from ..io import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return path


def turntable(
    verts: torch.Tensor,
    faces: torch.Tensor,
    uvs: Optional[torch.Tensor] = None,
    faces_uv: Optional[torch.Tensor] = None,
    texture: Optional[torch.Tensor] = None,
    views: int = 6,
    size: int = 160,
    elevation_deg: float = 20.0,
    color: str = "#cc9966",
) -> bytes:
    """PNG bytes of one mesh ``(N, 3)`` turned about its vertical axis in ``views`` steps, on white, rendered
    with the package's renderer (centred and scaled to fill the frame). Without a texture the mesh is drawn
    in ``color``."""
    from PIL import Image as PILImage

    from ..config import RenderConfig
    from ..render.camera import orbit_cameras
    from ..render.dibr import render_mesh
    from ..render.mesh import TemplateMesh
    from ..render.views import normalize_for_protocol

    v = verts.detach().float().cpu()
    f = faces.detach().long().cpu()
    if texture is None or uvs is None or faces_uv is None:
        rgb = torch.tensor([int(color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)])
        texture, uvs, faces_uv = rgb[:, None, None].expand(3, 2, 2), torch.full((1, 2), 0.5), torch.zeros_like(f)
    mesh = TemplateMesh(v, f, uvs.detach().float().cpu(), faces_uv.detach().long().cpu(), torch.zeros(0, dtype=torch.long), 0, 0)
    cams = orbit_cameras(views, elevation_deg=elevation_deg, scale=0.8)
    with torch.no_grad():
        img = render_mesh(mesh, normalize_for_protocol(v[None]).expand(views, -1, -1), cams,
                          texture.detach().float().cpu()[None].expand(views, -1, -1, -1), RenderConfig(image_size=size),
                          background=torch.ones(3), soft=False).image
    strip = (img.permute(2, 0, 3, 1).reshape(size, views * size, 3).clamp(0, 1) * 255).round().byte().numpy()
    buf = io.BytesIO()
    PILImage.fromarray(strip).save(buf, format="PNG")
    return buf.getvalue()


def plot_uv_layout(template, ax=None, highlight_seam: bool = True):
    """The template's faces drawn in UV space (u across, v down); seam faces highlighted."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    tri = template.uvs[template.faces_uv].cpu().numpy()  # (F, 3, 2)
    seam = (tri[..., 0].max(1) >= 1 - 1e-6) | (tri[..., 0].min(1) <= 1e-6)
    colors = np.where(seam[:, None], [[0.9, 0.4, 0.2, 0.6]], [[0.6, 0.7, 0.9, 0.3]])
    ax.add_collection(PolyCollection(tri, facecolors=colors if highlight_seam else "none", edgecolors="k", linewidths=0.3))
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_xlabel("u")
    ax.set_ylabel("v")
    ax.set_title(f"UV layout: {template.num_faces} faces" + (" (seam faces in orange)" if highlight_seam else ""))
    return ax.figure


def face_id_image(pix_to_face: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Colour each face index of a ``(H, W)`` ``pix_to_face`` map randomly (background black): ``(3, H, W)``."""
    g = torch.Generator().manual_seed(seed)
    n = int(pix_to_face.max()) + 2
    palette = torch.rand(n, 3, generator=g) * 0.8 + 0.2
    palette[0] = 0
    return palette[(pix_to_face.cpu() + 1).long()].permute(2, 0, 1)
