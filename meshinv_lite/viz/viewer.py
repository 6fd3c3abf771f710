"""Widgets: a pythreejs 3D viewer of a textured mesh, and an upload box for your own photo."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .figures import _to_hwc, turntable
from .live import in_notebook_frontend


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
