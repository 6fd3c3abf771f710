"""The UV-sphere template, its UV layout, and meshes from deformation maps.

UV conventions (shared by texture and deformation maps, which are therefore topology-aligned):

* ``u = phi / (2 pi)`` in ``[0, 1]`` runs along the map's **width** and wraps around; the seam
  ``u = 0 = 1`` runs down the front (``+z``, the beak side) in the symmetry plane, ``u = 0.5`` down the back.
* ``v = theta / pi`` in ``[0, 1]`` runs along the map's **height**, row 0 at the north pole (``+y``).
* A template vertex at polar angle ``theta`` and azimuth ``phi`` sits at
  ``radius * (sin(theta) sin(phi), cos(theta), sin(theta) cos(phi))``.
* Mirroring ``x -> -x`` (the left-right symmetry of a bird) maps ``u -> 1 - u``; the map's left half
  (``u < 0.5``) holds the ``x >= 0`` side.

Maps are sampled with :func:`sample_uv_map`, which wraps around in ``u`` (circular) and clamps in ``v``,
so a lookup is continuous across the seam.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .._checks import check_shape
from ..config import TemplateConfig


@dataclass
class TemplateMesh:
    """A UV sphere with a seam-correct UV layout.

    Attributes:
        vertices: ``(N, 3)`` float32 positions on the sphere (object frame: ``y`` up, ``+z`` the front).
        faces: ``(F, 3)`` int64 vertex indices, counter-clockwise seen from outside (normals point out).
        uvs: ``(T, 2)`` float32 texture coordinates ``(u, v)`` in ``[0, 1]``; vertices on the seam have two
            (``u = 0`` and ``u = 1``) and each pole one per adjacent face.
        faces_uv: ``(F, 3)`` int64 indices into ``uvs`` for each face corner (no face spans the seam).
        uv_to_vertex: ``(T,)`` int64, the vertex each UV point belongs to.
        rings: latitude bands between the poles (31 by default); segments: longitude slices (32).
        offset_sampler: ``None`` for this package's templates (offsets are ``xyz`` values sampled at the UV points,
            :func:`sample_vertex_offsets`); a template whose deformation maps mean something else carries the
            callable ``(B, 3, Hd, Wd) -> (B, N, 3)`` that reads them (the authors' generators:
            :mod:`meshinv_lite.render.convmesh_template`).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    uvs: torch.Tensor
    faces_uv: torch.Tensor
    uv_to_vertex: torch.Tensor
    rings: int
    segments: int
    offset_sampler: Optional[Callable[[torch.Tensor], torch.Tensor]] = None

    @property
    def num_vertices(self) -> int:
        """``N``: 962 for the default 31 x 32 sphere."""
        return self.vertices.shape[0]

    @property
    def num_faces(self) -> int:
        """``F``: 1,920 for the default 31 x 32 sphere."""
        return self.faces.shape[0]

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.vertices.device

    def to(self, device) -> "TemplateMesh":
        """The same template with every tensor on ``device``."""
        return TemplateMesh(
            self.vertices.to(device),
            self.faces.to(device),
            self.uvs.to(device),
            self.faces_uv.to(device),
            self.uv_to_vertex.to(device),
            self.rings,
            self.segments,
            self.offset_sampler.to(device) if self.offset_sampler is not None else None,
        )

    def face_pairs(self) -> torch.Tensor:
        """``(E, 2)`` pairs of faces sharing an edge (see :func:`face_adjacency`)."""
        return face_adjacency(self.faces)


def make_uv_sphere(rings: int = 31, segments: int = 32, radius: float = 1.0, device=None) -> TemplateMesh:
    """Build the UV-sphere template: ``(rings - 1) * segments + 2`` vertices, ``2 * segments * (rings - 1)`` faces.

    ``rings`` counts latitude bands between the poles (31 by default), ``segments`` longitude slices.
    """
    if rings < 2 or segments < 3:
        raise ValueError(f"a UV sphere needs rings >= 2 and segments >= 3, got rings={rings}, segments={segments}")
    dtype = torch.float32
    n_inner = rings - 1  # vertex rings between the poles
    theta = torch.arange(1, rings, dtype=torch.float64) * math.pi / rings  # (n_inner,)
    phi = torch.arange(segments, dtype=torch.float64) * 2 * math.pi / segments  # (segments,)
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    ring_verts = torch.stack(
        [st * torch.sin(phi)[None], ct.expand(-1, segments), st * torch.cos(phi)[None]], dim=-1
    ).reshape(-1, 3)
    north = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    south = torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64)
    vertices = torch.cat([north, ring_verts, south]) * radius
    n_north, n_south = 0, 1 + n_inner * segments

    def vid(ring: int, seg: int) -> int:  # ring in [0, n_inner), seg taken modulo segments
        return 1 + ring * segments + seg % segments

    # UV points: inner rings with a duplicated seam column (segments + 1 per ring), then pole points.
    uv_ring = [
        (j / segments, (i + 1) / rings) for i in range(n_inner) for j in range(segments + 1)
    ]
    uv_ring_vertex = [vid(i, j) for i in range(n_inner) for j in range(segments + 1)]

    def uid(ring: int, seg: int) -> int:  # seg in [0, segments]
        return ring * (segments + 1) + seg

    n_ring_uv = len(uv_ring)
    uv_north = [((j + 0.5) / segments, 0.0) for j in range(segments)]
    uv_south = [((j + 0.5) / segments, 1.0) for j in range(segments)]
    uvs = uv_ring + uv_north + uv_south
    uv_to_vertex = uv_ring_vertex + [n_north] * segments + [n_south] * segments

    faces, faces_uv = [], []
    # Orientation: counter-clockwise seen from outside (normals point out).
    for j in range(segments):
        faces.append((n_north, vid(0, j), vid(0, j + 1)))
        faces_uv.append((n_ring_uv + j, uid(0, j), uid(0, j + 1)))
    for i in range(n_inner - 1):
        for j in range(segments):
            a, b = vid(i, j), vid(i, j + 1)
            c, d = vid(i + 1, j), vid(i + 1, j + 1)
            ua, ub, uc, ud = uid(i, j), uid(i, j + 1), uid(i + 1, j), uid(i + 1, j + 1)
            faces += [(a, c, d), (a, d, b)]
            faces_uv += [(ua, uc, ud), (ua, ud, ub)]
    last = n_inner - 1
    for j in range(segments):
        faces.append((n_south, vid(last, j + 1), vid(last, j)))
        faces_uv.append((n_ring_uv + segments + j, uid(last, j + 1), uid(last, j)))

    mesh = TemplateMesh(
        vertices=vertices.to(dtype),
        faces=torch.tensor(faces, dtype=torch.long),
        uvs=torch.tensor(uvs, dtype=dtype),
        faces_uv=torch.tensor(faces_uv, dtype=torch.long),
        uv_to_vertex=torch.tensor(uv_to_vertex, dtype=torch.long),
        rings=rings,
        segments=segments,
    )
    # Orientation check: outward normals (cheap, catches a wrong winding at once).
    normals = face_normals(mesh.vertices[None], mesh.faces)[0]
    centers = mesh.vertices[mesh.faces].mean(1)
    assert (torch.sum(normals * centers, -1) > 0).all(), "template faces must be wound outward"
    return mesh.to(device) if device is not None else mesh


def template_from_config(cfg: TemplateConfig, device=None) -> TemplateMesh:
    """The template described by a :class:`~meshinv_lite.config.TemplateConfig`."""
    return make_uv_sphere(cfg.rings, cfg.segments, cfg.radius, device=device)


# --------------------------------------------------------------------------------------------------
# UV maps
# --------------------------------------------------------------------------------------------------


def sample_uv_map(uv_map: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a UV map, wrapping in ``u`` and clamping in ``v``.

    Args:
        uv_map: ``(B, C, H, W)`` texture or deformation map.
        uv: ``(B, ...spatial, 2)`` coordinates ``(u, v)`` in ``[0, 1]``, any spatial shape (or without
            the batch dimension, shared by all maps).
    Returns:
        ``(B, C, ...spatial)`` sampled values, differentiable in ``uv_map`` and ``uv``.
    """
    check_shape("uv map", uv_map, (None, None, None, None), "(B, C, H, W)")
    b, c, h, w = uv_map.shape
    if uv.shape[-1] != 2:
        raise ValueError(f"uv coordinates must end in 2 (u, v), got shape {tuple(uv.shape)}")
    if uv.dim() < 2 or uv.shape[0] != b:
        uv = uv[None].expand((b,) + uv.shape)
    spatial = uv.shape[1:-1]
    grid_uv = uv.reshape(b, 1, -1, 2)
    # Circular padding of one column on each side makes bilinear lookups wrap across the seam.
    padded = torch.cat([uv_map[..., -1:], uv_map, uv_map[..., :1]], dim=-1)
    gx = (grid_uv[..., 0] * w + 1) / (w + 2) * 2 - 1
    gy = grid_uv[..., 1] * 2 - 1
    grid = torch.stack([gx, gy], dim=-1).to(uv_map.dtype)
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape((b, c) + tuple(spatial))


def sample_vertex_offsets(deform_map: torch.Tensor, template: TemplateMesh) -> torch.Tensor:
    """Per-vertex offsets ``(B, N, 3)`` from a deformation map ``(B, 3, Hd, Wd)``.

    Each vertex averages the samples at its UV points: seam vertices have two identical ones, each
    pole the whole first/last row, so the mesh stays closed and continuous.
    """
    check_shape("deformation map", deform_map, (None, 3, None, None), "(B, 3, Hd, Wd)")
    if template.offset_sampler is not None:
        return template.offset_sampler(deform_map)
    samples = sample_uv_map(deform_map, template.uvs.to(deform_map.device))  # (B, 3, T)
    b = samples.shape[0]
    idx = template.uv_to_vertex.to(deform_map.device)
    summed = torch.zeros(b, 3, template.num_vertices, dtype=samples.dtype, device=samples.device)
    summed = summed.index_add(2, idx, samples)
    counts = torch.bincount(idx, minlength=template.num_vertices).to(samples.dtype)
    return (summed / counts).transpose(1, 2)


def deform_vertices(template: TemplateMesh, deform_map: torch.Tensor) -> torch.Tensor:
    """Mesh vertices ``(B, N, 3)`` = template vertices + offsets sampled from ``deform_map`` ``(B, 3, Hd, Wd)``."""
    return template.vertices.to(deform_map.device, deform_map.dtype)[None] + sample_vertex_offsets(deform_map, template)


def mirror_uv_map(half: torch.Tensor, negate_x: bool) -> torch.Tensor:
    """Complete a left-right symmetric map from its ``u < 0.5`` half ``(B, C, H, W/2)`` -> ``(B, C, H, W)``.

    For deformation maps pass ``negate_x=True``: the mirrored side moves the opposite way in ``x``.
    """
    check_shape("half map", half, (None, None, None, None), "(B, C, H, W/2)")
    return torch.cat([half, _mirrored(half, negate_x)], dim=-1)


def symmetrize_uv_map(full: torch.Tensor, negate_x: bool) -> torch.Tensor:
    """Project a full map onto the symmetric ones: average it with its mirror image."""
    w = full.shape[-1]
    if w % 2:
        raise ValueError(f"a symmetric UV map needs an even width, got {w}")
    return 0.5 * (full + _mirrored(full, negate_x))


def _mirrored(uv_map: torch.Tensor, negate_x: bool) -> torch.Tensor:
    """The map seen through the ``u -> 1 - u`` mirror (x offsets negated for deformation maps)."""
    mirrored = torch.flip(uv_map, dims=[-1])
    if negate_x:
        if uv_map.shape[1] != 3:
            raise ValueError("negate_x applies to 3-channel (x, y, z) deformation maps")
        sign = torch.tensor([-1.0, 1.0, 1.0], dtype=uv_map.dtype, device=uv_map.device)[None, :, None, None]
        mirrored = mirrored * sign
    return mirrored


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


def face_normals(verts: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Unit face normals ``(B, F, 3)`` of meshes ``(B, N, 3)`` with faces ``(F, 3)``."""
    check_shape("vertices", verts, (None, None, 3), "(B, N, 3)")
    v0, v1, v2 = (verts[:, faces[:, k]] for k in range(3))
    n = torch.cross(v1 - v0, v2 - v0, dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(eps)


def face_adjacency(faces: torch.Tensor) -> torch.Tensor:
    """``(E, 2)`` index pairs of faces sharing an edge (each interior edge once)."""
    f = faces.detach().cpu()
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])  # (3F, 2)
    owner = torch.arange(f.shape[0]).repeat(3)
    edges, _ = edges.sort(dim=1)
    key = edges[:, 0] * (int(f.max()) + 1) + edges[:, 1]
    order = torch.argsort(key, stable=True)
    key_sorted, owner_sorted = key[order], owner[order]
    same = key_sorted[1:] == key_sorted[:-1]
    pairs = torch.stack([owner_sorted[:-1][same], owner_sorted[1:][same]], dim=1)
    return pairs.to(faces.device)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``(B, N, 3)``."""
    v0, v1, v2 = (verts[:, faces[:, k]] for k in range(3))
    n = torch.cross(v1 - v0, v2 - v0, dim=-1)  # (B, F, 3), length = 2 * area
    out = torch.zeros_like(verts)
    for k in range(3):
        out = out.index_add(1, faces[:, k], n)
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)
