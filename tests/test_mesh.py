import math

EXACT = "donot_use_mm_for_euclid_dist"

import pytest
import torch

from meshinv_lite.render import (deform_vertices, face_adjacency, face_normals, make_uv_sphere, mirror_uv_map, sample_uv_map, sample_vertex_offsets, symmetrize_uv_map)


def test_default_template_counts():
    t = make_uv_sphere()
    assert t.num_vertices == 962
    assert t.num_faces == 1920
    assert torch.allclose(t.vertices.norm(dim=1), torch.ones(962), atol=1e-6)


@pytest.mark.parametrize("rings,segments", [(16, 17), (17, 32), (32, 32), (5, 3)])
def test_other_resolutions(rings, segments):
    t = make_uv_sphere(rings, segments)
    assert t.num_vertices == (rings - 1) * segments + 2
    assert t.num_faces == 2 * segments * (rings - 1)
    # closed surface: every edge shared by exactly two faces
    assert face_adjacency(t.faces).shape[0] * 2 == 3 * t.num_faces


def test_bad_resolution_rejected():
    with pytest.raises(ValueError, match="rings"):
        make_uv_sphere(1, 32)


def test_uv_seam_no_face_stretches_across():
    t = make_uv_sphere()
    u = t.uvs[t.faces_uv][..., 0]  # (F, 3)
    span = u.max(1).values - u.min(1).values
    assert span.max() <= 1 / t.segments + 1e-6
    assert (t.uvs >= 0).all() and (t.uvs <= 1).all()
    # UV points agree with the vertices they belong to (same polar angle)
    v_of_uv = t.vertices[t.uv_to_vertex]
    theta = torch.acos(v_of_uv[:, 1].clamp(-1, 1))
    assert torch.allclose(theta / math.pi, t.uvs[:, 1], atol=1e-5)


def test_faces_outward_and_adjacency():
    t = make_uv_sphere()
    n = face_normals(t.vertices[None], t.faces)[0]
    c = t.vertices[t.faces].mean(1)
    assert ((n * c).sum(-1) > 0).all()
    pairs = face_adjacency(t.faces)
    counts = torch.bincount(pairs.reshape(-1), minlength=t.num_faces)
    assert (counts == 3).all()
    shared = [len(set(t.faces[a].tolist()) & set(t.faces[b].tolist())) for a, b in pairs[:50].tolist()]
    assert all(s == 2 for s in shared)


def test_texture_lookup_continuous_across_seam():
    torch.manual_seed(0)
    tex = torch.rand(1, 3, 16, 32)
    v = torch.linspace(0.05, 0.95, 7)
    left = torch.stack([torch.full_like(v, 1e-6), v], -1)[None]
    right = torch.stack([torch.full_like(v, 1 - 1e-6), v], -1)[None]
    a, b = sample_uv_map(tex, left), sample_uv_map(tex, right)
    assert torch.allclose(a, b, atol=1e-4)
    # whereas the first and last texel columns themselves differ a lot
    assert (tex[..., 0] - tex[..., -1]).abs().max() > 0.3
    # and the seam value is the average of the first and last columns (a real wrap, not a clamp)
    at_seam = sample_uv_map(tex, torch.stack([torch.zeros_like(v), v], -1)[None])
    col_avg = 0.5 * (sample_uv_map(tex[..., :1].expand(-1, -1, -1, 32), left) + sample_uv_map(tex[..., -1:].expand(-1, -1, -1, 32), left))
    assert torch.allclose(at_seam, col_avg, atol=1e-4)


def test_zero_deformation_gives_template_and_constant_map_translates():
    t = make_uv_sphere()
    v = deform_vertices(t, torch.zeros(2, 3, 32, 32))
    assert torch.allclose(v, t.vertices.expand(2, -1, -1))
    shift = torch.tensor([0.1, -0.2, 0.3])
    v = deform_vertices(t, shift[None, :, None, None].expand(1, 3, 8, 8))
    assert torch.allclose(v[0], t.vertices + shift, atol=1e-6)


def test_deformation_gradients_reach_map():
    t = make_uv_sphere()
    d = torch.zeros(1, 3, 16, 16, requires_grad=True)
    sample_vertex_offsets(d, t).pow(2).sum().backward()
    assert d.grad is not None
    d2 = torch.randn(1, 3, 16, 16, requires_grad=True)
    sample_vertex_offsets(d2, t).sum().backward()
    assert d2.grad.abs().sum() > 0


def test_symmetric_map_gives_mirror_symmetric_mesh():
    t = make_uv_sphere()
    torch.manual_seed(1)
    half = 0.2 * torch.randn(1, 3, 16, 8)
    full = mirror_uv_map(half, negate_x=True)
    v = deform_vertices(t, full)[0]
    mirrored = v * torch.tensor([-1.0, 1.0, 1.0])
    # every vertex has a mirror partner in the mesh
    d = torch.cdist(mirrored, v, compute_mode=EXACT).min(dim=1).values
    assert d.max() < 1e-5
    # an asymmetric map does not
    v2 = deform_vertices(t, 0.2 * torch.randn(1, 3, 16, 16))[0]
    assert torch.cdist(v2 * torch.tensor([-1.0, 1.0, 1.0]), v2, compute_mode=EXACT).min(1).values.max() > 1e-3
    # symmetrize_uv_map projects onto symmetric maps (idempotent on them)
    assert torch.allclose(symmetrize_uv_map(full, negate_x=True), full, atol=1e-6)


def test_shape_errors():
    t = make_uv_sphere()
    with pytest.raises(ValueError, match="deformation map"):
        deform_vertices(t, torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="deformation map"):
        deform_vertices(t, torch.zeros(1, 4, 16, 16))
