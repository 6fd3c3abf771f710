"""Pictures: image grids, UV maps, a live loss panel and a pythreejs 3D viewer.

Everything returns a matplotlib ``Figure`` or a widget and takes tensors in the package's
conventions (images ``(N, 3, H, W)`` in ``[0, 1]``); nothing here changes data.
"""
from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

import matplotlib

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
    fig, axes = plt.subplots(nrows, ncol, figsize=(size * ncol, size * nrows + (0.3 if suptitle else 0)), squeeze=False)
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
        ax.set_ylabel("v (0 = north pole)")
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a figure as PNG (atomically) and return its path."""
    from .io import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return path


# --------------------------------------------------------------------------------------------------
# Live loss panel
# --------------------------------------------------------------------------------------------------


def in_notebook_frontend() -> bool:
    """True inside a Jupyter kernel (where widgets can display); False in plain Python."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # pragma: no cover - IPython missing
        return False


class LiveLoss:
    """Loss curves per term (and an optional current image) updated during an optimization.

    ``interactive=True`` (JupyterLab) shows a status line and the figure as two display outputs that are
    *updated in place* every ``every`` steps (IPython display handles, no widget): the notebook keeps the
    last picture as an ordinary PNG output, so a saved notebook shows the result without a kernel, and
    :meth:`close` leaves exactly one final figure. ``interactive=False`` (headless runs, e.g. papermill)
    prints one line every ``every`` steps instead and the figure :meth:`close` returns is shown once by
    the inline backend. ``None`` picks interactive when a Jupyter kernel is running and
    ``MESHINV_HEADLESS`` is unset.

    Example::

        live = LiveLoss(every=10)
        for step in range(n):
            ...
            live.update(step, total=loss.item(), mask=l_mask.item(), images=[pred, target])
        fig = live.close()
    """

    def __init__(self, every: int = 10, interactive: Optional[bool] = None, title: str = "", log_y: bool = True):
        if interactive is None:
            interactive = in_notebook_frontend() and not os.environ.get("MESHINV_HEADLESS")
        self.every = max(1, int(every))
        self.interactive = interactive
        self.title = title
        self.log_y = log_y
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._images: Optional[list] = None
        self._start = time.perf_counter()
        self._label = self._picture = None
        if interactive:
            from IPython.display import HTML, display

            self._label = display(HTML(f"<b>{title}</b> starting..."), display_id=True)
            self._picture = display(HTML(""), display_id=True)

    def _show(self, fig, text: str) -> None:
        """Put ``fig`` (closed afterwards, so the inline backend does not show it again) and ``text`` in place."""
        import matplotlib.pyplot as plt
        from IPython.display import HTML, Image

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
        plt.close(fig)
        self._picture.update(Image(data=buf.getvalue(), format="png"))
        self._label.update(HTML(text))

    def update(self, step: int, images: Optional[Sequence[torch.Tensor]] = None, **terms: float) -> None:
        """Record loss ``terms`` (floats) at ``step``; redraw every ``every`` steps."""
        for k, v in terms.items():
            self.history.setdefault(k, []).append((int(step), float(v)))
        if images is not None:
            self._images = [im.detach().cpu() for im in images]
        if step % self.every:
            return
        line = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
        if self.interactive:
            self._show(self.figure(), f"<b>{self.title}</b> step {step}: {line}")
        else:
            print(f"[{self.title or 'loss'}] step {step:5d} " + " ".join(f"{k}={v:.4g}" for k, v in terms.items()))

    def figure(self):
        """Loss curves (and the latest images, if any) as a matplotlib Figure."""
        import matplotlib.pyplot as plt

        n_img = len(self._images) if self._images else 0
        fig, axes = plt.subplots(1, 1 + n_img, figsize=(4.5 + 2.2 * n_img, 3), squeeze=False)
        ax = axes[0, 0]
        for k, pts in self.history.items():
            steps, vals = zip(*pts)
            ax.plot(steps, vals, label=k)
        if self.log_y and all(v > 0 for pts in self.history.values() for _, v in pts):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(self.title or "loss")
        if self.history:
            ax.legend(fontsize=7)
        for i in range(n_img):
            img = self._images[i]
            axes[0, i + 1].imshow(_to_hwc(img[0] if img.dim() == 4 else img), cmap="gray", vmin=0, vmax=1)
            axes[0, i + 1].axis("off")
        fig.tight_layout()
        return fig

    def close(self):
        """The final figure, returned (e.g. for :func:`save_figure`); shown once: interactively it replaces
        the live picture in place, headless the inline backend shows it at the end of the cell."""
        fig = self.figure()
        elapsed = time.perf_counter() - self._start
        if self.interactive and self._picture is not None:
            self._show(fig, f"<b>{self.title}</b> done in {elapsed:.1f} s")
        return fig


# --------------------------------------------------------------------------------------------------
# 3D viewer
# --------------------------------------------------------------------------------------------------


def mesh_viewer(
    verts: torch.Tensor,
    faces: torch.Tensor,
    uvs: Optional[torch.Tensor] = None,
    faces_uv: Optional[torch.Tensor] = None,
    texture: Optional[torch.Tensor] = None,
    color: str = "#cc9966",
    width: int = 420,
    height: int = 360,
    wireframe: bool = False,
    still: bool = True,
):
    """An interactive pythreejs view (orbit with the mouse) of one mesh.

    With ``still=True`` (default) a turntable picture of the same mesh (:func:`turntable`) is displayed
    first, in a notebook: a widget's state is not saved with the notebook, the picture is, so an executed
    notebook opened later (or on a course website) still shows the result without a kernel.

    Args:
        verts: ``(N, 3)`` object-space vertices (y up).
        faces: ``(F, 3)``.
        uvs, faces_uv, texture: optional UV layout and ``(3, Ht, Wt)`` texture in [0, 1]; the mesh is
            unrolled per face corner so the seam stays sharp.
    Returns:
        a ``pythreejs.Renderer`` widget (display it as the cell's last expression).
    """
    import pythreejs as p3

    if still and in_notebook_frontend():
        from IPython.display import Image, display

        display(Image(data=turntable(verts, faces, uvs, faces_uv, texture, color=color), format="png"))
    v = verts.detach().float().cpu()
    f = faces.detach().long().cpu()
    if v.dim() != 2 or v.shape[1] != 3 or f.dim() != 2 or f.shape[1] != 3:
        raise ValueError(f"mesh_viewer takes one mesh: verts (N, 3) and faces (F, 3), got {tuple(v.shape)} and {tuple(f.shape)}")
    positions = v[f].reshape(-1, 3).numpy().astype(np.float32)  # unrolled: 3 corners per face
    attributes = {"position": p3.BufferAttribute(positions, normalized=False)}
    if texture is not None:
        if uvs is None or faces_uv is None:
            raise ValueError("a texture needs uvs and faces_uv")
        # A DataTexture is uploaded without flipping: data row 0 sits at three.js v = 0, as ours does.
        uv = uvs.detach().float().cpu()[faces_uv.long().cpu()].reshape(-1, 2).numpy()
        attributes["uv"] = p3.BufferAttribute(uv.astype(np.float32), normalized=False)
        tex_img = (_to_hwc(texture) * 255).astype(np.uint8)
        rgba = np.concatenate([tex_img, np.full(tex_img.shape[:2] + (1,), 255, np.uint8)], axis=-1)
        tex = p3.DataTexture(data=rgba, format="RGBAFormat", type="UnsignedByteType")
        tex.magFilter = "LinearFilter"
        material = p3.MeshStandardMaterial(map=tex, side="DoubleSide", roughness=0.9)
    else:
        material = p3.MeshStandardMaterial(color=color, side="DoubleSide", roughness=0.7, wireframe=wireframe)
    geometry = p3.BufferGeometry(attributes=attributes)
    geometry.exec_three_obj_method("computeVertexNormals")
    mesh = p3.Mesh(geometry=geometry, material=material)
    camera = p3.PerspectiveCamera(position=[2.2, 1.2, 2.2], up=[0, 1, 0], aspect=width / height, fov=40,
                                  children=[p3.DirectionalLight(color="white", position=[3, 5, 1], intensity=0.6)])
    scene = p3.Scene(children=[mesh, camera, p3.AmbientLight(color="#ffffff", intensity=0.6)], background="#f4f4f4")
    return p3.Renderer(camera=camera, scene=scene, controls=[p3.OrbitControls(controlling=camera)],
                       width=width, height=height, antialias=True)


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

    from .camera import orbit_cameras
    from .config import RenderConfig
    from .mesh import TemplateMesh
    from .metrics import normalize_for_protocol
    from .render import render_mesh

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


def photo_overlay(result, novel_views: int = 4, view_size: int = 128):
    """The picture of a :class:`~meshinv_lite.reconstruct.PhotoReconstruction`. Top: the photo with its
    mask's outline (white); the reconstruction rendered with the estimated camera and pasted on the photo
    (its outline yellow); the square crop the inversion saw and the render of it. Bottom: ``novel_views``
    views turned about the vertical axis. The title names the species and the camera."""
    import matplotlib.pyplot as plt

    from .camera import WeakPerspectiveCamera
    from .config import RenderConfig
    from .data.species import SPECIES_NAMES
    from .render import render_mesh

    rec, crop, tm = result.reconstruction, result.crop, result.template
    dev = rec.vertices.device
    az, el = result.azimuth_elevation
    turns = [az + 360.0 * (i + 1) / (novel_views + 1) for i in range(novel_views)]
    with torch.no_grad():
        out = render_mesh(tm, rec.vertices, rec.camera, rec.texture, RenderConfig(image_size=crop.size), soft=False)
        photo = result.photo.image.cpu()
        pasted = crop.paste(out.image[0].cpu(), out.mask[0].cpu(), photo)
        cams = WeakPerspectiveCamera.from_view(turns, 20.0, float(rec.camera.scale[0]), device=dev)
        nv = render_mesh(tm, rec.vertices.expand(novel_views, -1, -1), cams, rec.texture.expand(novel_views, -1, -1, -1),
                         RenderConfig(image_size=view_size), background=torch.ones(3, device=dev), soft=False)
    rec_mask = crop.uncrop_mask(out.mask[0].cpu())[0].numpy()
    m = result.photo.mask[0].cpu().numpy()
    h, w = m.shape
    cols = max(4, novel_views)
    fig, axes = plt.subplots(2, cols, figsize=(2.6 * cols, 5.4))
    axes[0, 0].imshow(_to_hwc(photo))
    axes[0, 0].contour(m, levels=[0.5], colors="white", linewidths=1.2)
    axes[0, 0].set_title(f"photo ({result.photo.source_size[1]}x{result.photo.source_size[0]}) + mask", fontsize=9)
    axes[0, 1].imshow(_to_hwc(pasted))
    axes[0, 1].contour(rec_mask, levels=[0.5], colors="yellow", linewidths=1.0)
    axes[0, 1].contour(m, levels=[0.5], colors="white", linewidths=0.8, linestyles="dashed")
    axes[0, 1].set_title(f"reconstruction on the photo (IoU {float(rec.iou[0]):.2f})", fontsize=9)
    axes[0, 2].imshow(_to_hwc(result.image[0].cpu()))
    axes[0, 2].set_title(f"the crop it saw ({crop.size} px)", fontsize=9)
    axes[0, 3].imshow(_to_hwc(out.image[0].cpu()))
    axes[0, 3].set_title("render, estimated camera", fontsize=9)
    for i in range(novel_views):
        axes[1, i].imshow(_to_hwc(nv.image[i].cpu()))
        axes[1, i].set_title(f"turned to azimuth {turns[i] % 360:.0f}°", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    cid = result.class_id
    name = SPECIES_NAMES[cid] if cid < len(SPECIES_NAMES) else str(cid)
    how = "estimated" if result.hypotheses is not None else "given"
    fig.suptitle(f"{name} (class {cid}); camera azimuth {az:.0f}°, elevation {el:.0f}° ({how})", fontsize=11)
    fig.tight_layout()
    return fig


def hypotheses_figure(result):
    """Every camera + species hypothesis of a :class:`~meshinv_lite.reconstruct.PhotoReconstruction` after its
    inversion, beside the crop: species, viewpoint and final loss in the title; the winner marked."""
    from .config import RenderConfig
    from .data.species import SPECIES_NAMES
    from .render import render_mesh
    from .camera import azimuth_elevation

    c = result.candidates
    tm = result.template
    with torch.no_grad():
        out = render_mesh(tm, c.vertices, c.camera, c.texture, RenderConfig(image_size=result.crop.size),
                          background=torch.ones(3, device=c.vertices.device), soft=False)
    az, el = azimuth_elevation(c.camera.rotation)
    titles = ["the crop"]
    for i in range(len(c)):
        cid = int(c.class_id[i])
        name = SPECIES_NAMES[cid] if cid < len(SPECIES_NAMES) else str(cid)
        mark = "  <- chosen" if i == result.chosen else ""
        titles.append(f"{name}, az {float(az[i]):.0f}° el {float(el[i]):.0f}°\nloss {float(result.final_losses[i]):.3f}{mark}")
    return image_grid([result.image[0].cpu()] + list(out.image.cpu()), nrow=len(c) + 1, size=2.0, titles=titles,
                      suptitle="hypotheses after inversion (lowest final loss wins)")


def photo_upload(out_dir: str | os.PathLike):
    """Two ipywidgets FileUploads (photo, mask) that save what is uploaded into ``out_dir``; returns
    ``(widget, chosen)`` where ``chosen`` is a dict that gains ``"image"`` / ``"mask"`` paths as files arrive
    (run the next cell after uploading)."""
    import ipywidgets as w

    out = Path(out_dir)
    chosen: dict = {}
    status = w.HTML("upload a photo (and its mask, unless the PNG has transparency), then run the next cell")
    pickers = {k: w.FileUpload(accept="image/*", multiple=False, description=f"{k}") for k in ("image", "mask")}

    def saver(kind):
        def on_change(change):
            files = change["new"]
            if not files:
                return
            f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
            name = f["name"] if "name" in f else f.get("metadata", {}).get("name", kind)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"upload_{kind}{Path(name).suffix or '.png'}"
            path.write_bytes(bytes(f["content"]))
            chosen[kind] = path
            status.value = "received: " + ", ".join(f"{k} = {v.name}" for k, v in chosen.items())
        return on_change

    for k, p in pickers.items():
        p.observe(saver(k), names="value")
    return w.VBox([w.HBox(list(pickers.values())), status]), chosen
