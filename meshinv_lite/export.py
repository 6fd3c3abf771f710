"""Write reconstructed textured meshes for common viewers: OBJ (+ MTL + PNG) and binary glTF (GLB).

Both formats need one texture coordinate per face corner; our template has UV points that differ from
its vertices only along the seam and at the poles (:class:`~meshinv_lite.render.TemplateMesh`). OBJ keeps
the two index lists (``f v/vt``); glTF wants one index per vertex, so vertices are split per UV point.

UV origins differ: ours and glTF's put ``v = 0`` on the image's first (top) row; OBJ puts ``vt = 0`` at the
bottom, so OBJ files get ``vt = (u, 1 - v)``.
"""
from __future__ import annotations

import io as _io
import json
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ._checks import check_shape
from .io import atomic_write_bytes
from .render.mesh import TemplateMesh


def _texture_png(texture: torch.Tensor) -> bytes:
    check_shape("texture", texture, (3, None, None), "(3, Ht, Wt) in [0, 1]")
    arr = (texture.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = _io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _check_mesh(verts: torch.Tensor, template: TemplateMesh) -> np.ndarray:
    check_shape("verts", verts, (template.num_vertices, 3), f"({template.num_vertices}, 3) one mesh")
    v = verts.detach().double().cpu().numpy()
    if not np.isfinite(v).all():
        raise ValueError("verts contain NaN or infinite values: nothing sensible to export")
    return v


_EXPORT_SUFFIXES = (".obj", ".mtl", ".png", ".glb")


def _base(path: str | Path) -> Path:
    """``path`` without an export extension; any other dot stays part of the name (``bird.v2`` -> ``bird.v2``)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in _EXPORT_SUFFIXES else path


def _with(base: Path, suffix: str) -> Path:
    return base.with_name(base.name + suffix)


def export_obj(path: str | Path, verts: torch.Tensor, template: TemplateMesh, texture: torch.Tensor) -> list[Path]:
    """Write ``<stem>.obj``, ``<stem>.mtl`` and ``<stem>.png`` next to ``path``; returns the three paths.

    Args:
        verts: ``(N, 3)`` object-space vertices of one mesh with the template's topology.
        texture: ``(3, Ht, Wt)`` in ``[0, 1]``.
    """
    base = _base(path)
    path = _with(base, ".obj")
    v = _check_mesh(verts, template)
    stem = base.name
    uvs = template.uvs.cpu().numpy()
    faces = template.faces.cpu().numpy() + 1
    faces_uv = template.faces_uv.cpu().numpy() + 1
    lines = [f"# meshinv-lite reconstruction: {len(v)} vertices, {len(faces)} faces", f"mtllib {stem}.mtl", f"o {stem}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v]
    lines += [f"vt {u:.6f} {1 - w:.6f}" for u, w in uvs]
    lines += ["usemtl material0"]
    lines += [f"f {a}/{ta} {b}/{tb} {c}/{tc}" for (a, b, c), (ta, tb, tc) in zip(faces, faces_uv)]
    mtl = f"newmtl material0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {stem}.png\n"
    png, mtl_path = _with(base, ".png"), _with(base, ".mtl")
    atomic_write_bytes(png, _texture_png(texture))
    atomic_write_bytes(mtl_path, mtl.encode())
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return [path, mtl_path, png]


def glb_bytes(verts: torch.Tensor, template: TemplateMesh, texture: torch.Tensor, name: str = "reconstruction") -> bytes:
    """A binary glTF 2.0 file (one textured mesh, the PNG embedded) as bytes."""
    v = _check_mesh(verts, template)
    positions = v[template.uv_to_vertex.cpu().numpy()].astype(np.float32)  # one vertex per UV point
    texcoords = template.uvs.cpu().numpy().astype(np.float32)
    indices = template.faces_uv.cpu().numpy().astype(np.uint32).reshape(-1)
    png = _texture_png(texture)

    blobs, views, offset = [], [], 0
    for data, target in ((positions.tobytes(), 34962), (texcoords.tobytes(), 34962), (indices.tobytes(), 34963), (png, None)):
        pad = (-len(data)) % 4
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        views.append(view)
        blobs.append(data + b"\x00" * pad)
        offset += len(data) + pad
    binary = b"".join(blobs)
    gltf = {
        "asset": {"version": "2.0", "generator": "meshinv-lite"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": 0}]}],
        "materials": [{"name": "material0", "doubleSided": True,
                       "pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0, "roughnessFactor": 1.0}}],
        "textures": [{"sampler": 0, "source": 0}],
        "samplers": [{"magFilter": 9729, "minFilter": 9729, "wrapS": 10497, "wrapT": 33071}],
        "images": [{"bufferView": 3, "mimeType": "image/png"}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": len(positions), "type": "VEC3",
             "min": positions.min(0).tolist(), "max": positions.max(0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": len(texcoords), "type": "VEC2"},
            {"bufferView": 2, "componentType": 5125, "count": len(indices), "type": "SCALAR"},
        ],
    }
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * ((-len(js)) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(js), b"JSON") + js
            + struct.pack("<I4s", len(binary), b"BIN\x00") + binary)


def export_glb(path: str | Path, verts: torch.Tensor, template: TemplateMesh, texture: torch.Tensor) -> Path:
    """Write a ``.glb`` (binary glTF 2.0 with the texture embedded); returns its path."""
    base = _base(path)
    path = _with(base, ".glb")
    atomic_write_bytes(path, glb_bytes(verts, template, texture, name=base.name))
    return path


def export_reconstruction(reconstruction, index: int, out_dir: str | Path, name: str, template: TemplateMesh) -> dict:
    """OBJ (+ MTL + PNG) and GLB of item ``index`` of a :class:`~meshinv_lite.inversion.Reconstruction`."""
    out_dir = Path(out_dir)
    v = reconstruction.vertices[index]
    t = reconstruction.texture[index]
    obj = export_obj(out_dir / name, v, template, t)
    return {"obj": str(obj[0]), "mtl": str(obj[1]), "png": str(obj[2]), "glb": str(export_glb(out_dir / name, v, template, t))}
