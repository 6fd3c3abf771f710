"""The template of the authors' generators (ConvMesh, MeshInversion), in this package's frame and conventions.

A generator's maps only mean something on the template they were trained with. The authors' (ConvMesh's
``rendering/mesh_template.py`` and ``mesh_templates/uvsphere_{16,31}rings.obj``, which MeshInversion copies) differs
from ours (:func:`~meshinv_lite.render.make_uv_sphere`) in four ways, each converted here once:

* **Frame.** Their sphere is CMR's SfM frame: ``x`` the bird's left, ``y`` towards the tail (the poles are the tail
  and the beak), ``z`` up. Vertices are built in that frame, deformed there, and mapped into ours (``y`` up, beak
  ``+z``) by ``X_ours = M X_theirs`` with :data:`AUTHORS_TO_OBJECT` (``det M = -1``: a mirror, harmless for
  left-right symmetric objects; faces are re-wound so that they stay counter-clockwise from outside).
* **UV layout.** ``u = 0.25 + phi / 2 pi`` (mod 1; the seam runs down the ``-x`` side, the generated half is
  ``u`` in ``[0.25, 0.75]``), ``v = 1 - theta / pi``. Their texture lookup puts ``v = 1`` on the **top** row with
  corner-aligned rows, ``row = (1 - v)(H - 1)``, and pixel-centred circular columns, ``col = W u - 0.5``; ours reads
  ``row = v H - 0.5``. So each UV corner stores ``v_ours = ((1 - v)(H - 1) + 0.5) / H`` for the texture size ``H``
  (affine, hence exact under barycentric interpolation).
* **Deformation.** Their 32 x 32 mesh map holds coefficients along each vertex's (normal, tangent, bitangent), not
  ``xyz`` offsets; it is sampled per vertex, only on one side (their ``x >= 0``), at ``col = W u - 0.5``,
  ``row = (theta / pi)(H - 1)``; the other side copies its mirror partner's offset with ``x`` negated and vertices on
  the symmetry plane get no ``x`` offset. :class:`ConvMeshVertexSampling` does exactly that, and
  :func:`~meshinv_lite.render.deform_vertices` calls it for a template that carries one.
* **Triangulation.** Their quads are split mirror-symmetrically (the diagonal changes at the symmetry plane), ours
  all the same way; it changes the rendered outline of a coarse sphere, so it is reproduced.

Facts read from dariopavllo/convmesh @ a79c685 (``rendering/mesh_template.py``, ``rendering/utils.py``,
``rendering/fragment_shader.py`` and the two ``.obj`` files); tested against reference outputs of their code in
``tests/fixtures/authors/`` (``tests/test_convmesh.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .camera import WeakPerspectiveCamera, matrix_to_quaternion, normalize_quaternion, quaternion_to_matrix
from .mesh import TemplateMesh, face_normals

#: ``M``: the authors' (CMR's) object frame (x left, y tail, z up) -> ours (y up, beak +z), mirror included.
AUTHORS_TO_OBJECT = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)

#: Template rings of the authors' released generators: CUB birds (ConvMesh and MeshInversion) and PASCAL3D+ cars.
AUTHORS_RINGS = {"cub": 16, "p3d": 31}

_SEGMENTS = 32
_PLANE_EPS = 1e-4  # the authors' test for "on the symmetry plane"


@dataclass
class ConvMeshVertexSampling:
    """Vertex offsets ``(B, N, 3)`` (our frame) from the authors' mesh map ``(B, 3, H, W)`` of frame coefficients.

    Attributes:
        sampled: ``(S,)`` vertices read from the map (the authors' ``x >= 0`` side, poles and plane included).
        corners: ``(S, 4)`` flat indices ``row * W + col`` of each one's four bilinear neighbours.
        weights: ``(S, 4)`` their bilinear weights.
        frames: ``(S, 3, 3)`` rows (normal, tangent, bitangent) in our frame; tangent and bitangent are 0 at the poles.
        mirrored: ``(M,)`` vertices that copy the offset of ``partners`` ``(M,)`` with ``x`` negated.
        on_plane: ``(N,)`` bool, vertices whose ``x`` offset is zero.
        map_size: ``(H, W)`` of the mesh map it was built for.
    """

    sampled: torch.Tensor
    corners: torch.Tensor
    weights: torch.Tensor
    frames: torch.Tensor
    mirrored: torch.Tensor
    partners: torch.Tensor
    on_plane: torch.Tensor
    map_size: tuple[int, int]

    def __call__(self, deform_map: torch.Tensor) -> torch.Tensor:
        b, c, h, w = deform_map.shape
        if (h, w) != tuple(self.map_size) or c != 3:
            raise ValueError(f"the authors' template reads (B, 3, {self.map_size[0]}, {self.map_size[1]}) mesh maps, "
                             f"got {tuple(deform_map.shape)}")
        flat = deform_map.reshape(b, 3, h * w)
        dev, dt = deform_map.device, deform_map.dtype
        picked = flat[:, :, self.corners.to(dev).reshape(-1)].reshape(b, 3, -1, 4)  # (B, 3, S, 4)
        coeffs = (picked * self.weights.to(dev, dt)[None, None]).sum(-1).transpose(1, 2)  # (B, S, 3): n, t, b
        local = (coeffs[..., None] * self.frames.to(dev, dt)[None]).sum(-2)  # (B, S, 3)
        n = self.on_plane.shape[0]
        offsets = deform_map.new_zeros(b, n, 3).index_copy(1, self.sampled.to(dev), local)
        flip = torch.tensor([-1.0, 1.0, 1.0], device=dev, dtype=dt)
        offsets = offsets.index_copy(1, self.mirrored.to(dev), offsets[:, self.partners.to(dev)] * flip)
        keep_x = (~self.on_plane.to(dev)).to(dt)
        return torch.cat([offsets[..., :1] * keep_x[None, :, None], offsets[..., 1:]], dim=-1)

    def to(self, device) -> "ConvMeshVertexSampling":
        return ConvMeshVertexSampling(self.sampled.to(device), self.corners.to(device), self.weights.to(device),
                                      self.frames.to(device), self.mirrored.to(device), self.partners.to(device),
                                      self.on_plane.to(device), self.map_size)


def _bilinear(col: torch.Tensor, row: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners ``(S, 4)`` and weights ``(S, 4)`` of a bilinear lookup, circular in columns, clamped in rows."""
    c0, r0 = torch.floor(col), torch.floor(row)
    fc, fr = col - c0, row - r0
    c0, r0 = c0.long(), r0.long().clamp(0, h - 1)
    c1, r1 = c0 + 1, (r0 + 1).clamp(max=h - 1)
    c0, c1 = c0 % w, c1 % w
    corners = torch.stack([r0 * w + c0, r0 * w + c1, r1 * w + c0, r1 * w + c1], dim=1)
    weights = torch.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc], dim=1)
    return corners, weights


def convmesh_template(rings: int = 16, texture_size: int = 512, map_size: int = 32, device=None) -> TemplateMesh:
    """The authors' UV sphere (``rings`` 16: CUB birds, 482 vertices; 31: PASCAL3D+ cars, 962) in our frame.

    ``texture_size``: the side of the texture maps it will be rendered with (their row convention depends on it);
    ``map_size``: the side of the mesh maps it deforms with (32 in every released model). The returned template's
    ``uvs`` reproduce their texture lookup under our renderer, and ``offset_sampler`` their vertex construction.
    """
    if rings < 2:
        raise ValueError(f"the authors' template needs rings >= 2, got {rings}")
    seg = _SEGMENTS
    theta = torch.arange(1, rings, dtype=torch.float64) * math.pi / rings  # (rings - 1,)
    phi = torch.arange(seg, dtype=torch.float64) * 2 * math.pi / seg
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    ring_verts = torch.stack([st * torch.sin(phi), ct.expand(-1, seg), st * torch.cos(phi)], dim=-1).reshape(-1, 3)
    theirs = torch.cat([torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64), ring_verts,
                        torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64)])
    n_inner, north, south = rings - 1, 0, 1 + (rings - 1) * seg

    def vid(k: int, j: int) -> int:  # ring k in [0, rings - 1), segment j mod 32
        return 1 + k * seg + j % seg

    # UV corners, their convention: u = 0.25 + j / 32 (mod 1, seam at j = 24 where u is 1 on its left, 0 on its right)
    def u_of(j: int) -> float:
        return (0.25 + (j % seg) / seg) % 1.0

    uv_list: list[tuple[float, float]] = []
    uv_vertex: list[int] = []
    uv_index: dict[tuple[int, float, float], int] = {}

    def uid(vertex: int, u: float, v: float) -> int:
        key = (vertex, round(u, 9), round(v, 9))
        if key not in uv_index:
            uv_index[key] = len(uv_list)
            uv_list.append((u, v))
            uv_vertex.append(vertex)
        return uv_index[key]

    def corner(k: int, j: int, seam_left: bool) -> int:
        u = u_of(j)
        if j % seg == 24 and seam_left:
            u = 1.0
        return uid(vid(k, j), u, 1.0 - (k + 1) / rings)

    # Their diagonal: for 16 rings "(k, j)-(k+1, j+1)" on the x >= 0 side (j < 16), the other one beyond; 31 rings the
    # opposite (tests/fixtures/authors, diag pattern of the .obj files).
    faces, faces_uv = [], []
    for j in range(seg):
        left = (j + 1) % seg == 24  # the face whose right edge is the seam sees u = 1 there
        u_mid = u_of(j) + 0.5 / seg
        faces.append((north, vid(0, j), vid(0, j + 1)))
        faces_uv.append((uid(north, u_mid, 1.0), corner(0, j, False), corner(0, j + 1, left)))
    for k in range(n_inner - 1):
        for j in range(seg):
            left = (j + 1) % seg == 24
            a, b, c, d = vid(k, j), vid(k, j + 1), vid(k + 1, j), vid(k + 1, j + 1)
            ua, ub = corner(k, j, False), corner(k, j + 1, left)
            uc, ud = corner(k + 1, j, False), corner(k + 1, j + 1, left)
            main = (j < seg // 2) == (rings == 16)
            if main:  # diagonal a-d
                faces += [(a, c, d), (a, d, b)]
                faces_uv += [(ua, uc, ud), (ua, ud, ub)]
            else:  # diagonal b-c
                faces += [(a, c, b), (c, d, b)]
                faces_uv += [(ua, uc, ub), (uc, ud, ub)]
    last = n_inner - 1
    for j in range(seg):
        left = (j + 1) % seg == 24
        u_mid = u_of(j) + 0.5 / seg
        faces.append((south, vid(last, j + 1), vid(last, j)))
        faces_uv.append((uid(south, u_mid, 0.0), corner(last, j + 1, left), corner(last, j, False)))

    m = AUTHORS_TO_OBJECT
    verts = theirs @ m.T
    faces_t = torch.tensor(faces, dtype=torch.long)[:, [0, 2, 1]]  # det M = -1: re-wound to stay outward
    faces_uv_t = torch.tensor(faces_uv, dtype=torch.long)[:, [0, 2, 1]]
    uv = torch.tensor(uv_list, dtype=torch.float64)
    h = texture_size
    uvs = torch.stack([uv[:, 0], ((1 - uv[:, 1]) * (h - 1) + 0.5) / h], dim=1)

    # the vertex construction: sampled side, frames, mirror partners
    x = theirs[:, 0]
    on_plane = x.abs() < _PLANE_EPS
    sampled = torch.nonzero(x >= -_PLANE_EPS).squeeze(1)
    mirrored = torch.nonzero(x < -_PLANE_EPS).squeeze(1)
    mirror_pos = theirs[mirrored] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    partners = torch.cdist(mirror_pos, theirs).argmin(1)
    normal = theirs / theirs.norm(dim=1, keepdim=True)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(normal)
    tangent = torch.linalg.cross(normal, up, dim=1)
    tangent = tangent / tangent.norm(dim=1, keepdim=True).clamp_min(1e-12)
    bitangent = torch.linalg.cross(normal, tangent, dim=1)
    tangent[[north, south]] = 0
    bitangent[[north, south]] = 0
    frames = torch.stack([normal, tangent, bitangent], dim=1) @ m.T  # (N, 3, 3): rows mapped into our frame
    theta_all = torch.acos(theirs[:, 1].clamp(-1, 1))
    phi_all = torch.atan2(theirs[:, 0], theirs[:, 2])
    u_all = torch.remainder(0.25 + phi_all / (2 * math.pi), 1.0)
    u_all[[north, south]] = 0.5  # the mean of their fans' corners (the pole rows are constant anyway)
    hm = wm = map_size
    col = wm * u_all[sampled] - 0.5
    row = theta_all[sampled] / math.pi * (hm - 1)
    corners, weights = _bilinear(col, row, hm, wm)
    sampler = ConvMeshVertexSampling(sampled=sampled, corners=corners, weights=weights.float(),
                                     frames=frames[sampled].float(), mirrored=mirrored, partners=partners,
                                     on_plane=on_plane, map_size=(hm, wm))
    mesh = TemplateMesh(vertices=verts.float(), faces=faces_t, uvs=uvs.float(), faces_uv=faces_uv_t,
                        uv_to_vertex=torch.tensor(uv_vertex, dtype=torch.long), rings=rings, segments=seg,
                        offset_sampler=sampler)
    normals = face_normals(mesh.vertices[None], mesh.faces)[0]
    centers = mesh.vertices[mesh.faces].mean(1)
    assert (torch.sum(normals * centers, -1) > 0).all(), "the authors' template faces must be wound outward"
    return mesh.to(device) if device is not None else mesh


def camera_from_authors(scale: torch.Tensor, translation: torch.Tensor, quaternion: torch.Tensor) -> WeakPerspectiveCamera:
    """Our camera for the authors' ``(s (B,) or (B, 1), t (B, 2) or (B, 3), q (B, 4) w-first)``.

    Theirs renders ``qrot(q, s X) + t`` of their-frame points ``X`` in CMR's normalized crop (``x`` right, ``y``
    down, ``z`` into the scene), then flips it by ``[1, -1, -1]`` for DIB-R. The same picture of ``M X`` comes from
    ``s``, ``(t_x, -t_y)`` and ``R = D R(q) M^T`` with ``D = diag(1, -1, 1)``: our camera space is theirs after the
    flip with ``z`` negated (larger ``z`` farther). A quaternion that is not of unit norm (MeshInversion optimises a raw
    one) is normalised first: only its rotation is kept."""
    q = normalize_quaternion(quaternion.double())
    d = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64, device=q.device))
    rot = d @ quaternion_to_matrix(q) @ AUTHORS_TO_OBJECT.to(q.device).T
    dt = translation.dtype if translation.is_floating_point() else torch.float32
    t = translation[:, :2].double() * torch.tensor([1.0, -1.0], dtype=torch.float64, device=q.device)
    return WeakPerspectiveCamera(scale.reshape(-1).to(dt), t.to(dt), matrix_to_quaternion(rot).to(dt))
