import math

import numpy as np
import pytest
import torch

from meshinv_lite.render import WeakPerspectiveCamera, pixel_centers
from meshinv_lite.config import RenderConfig
from meshinv_lite.render import deform_vertices, make_uv_sphere
from meshinv_lite.render import interpolate, project, rasterize, render_mesh, soft_mask, texture


def brute_force_inside(tri_xy: np.ndarray, size: int) -> np.ndarray:
    """Pixel centres inside a triangle, by an independent numpy edge test (float64)."""
    c = pixel_centers(size, size, dtype=torch.float64).numpy()
    a, b, d = tri_xy

    def edge(p, q):
        return (q[0] - p[0]) * (c[..., 1] - p[1]) - (q[1] - p[1]) * (c[..., 0] - p[0])

    e = np.stack([edge(a, b), edge(b, d), edge(d, a)])
    return (e >= 0).all(0) | (e <= 0).all(0)


@pytest.mark.parametrize("seed", range(5))
def test_triangle_coverage_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    tri = rng.uniform(-0.9, 0.9, size=(3, 2))
    verts = torch.tensor(np.concatenate([tri, np.zeros((3, 1))], 1), dtype=torch.float64)[None]
    frags = rasterize(verts, torch.tensor([[0, 1, 2]]), 32)
    expected = brute_force_inside(tri, 32)
    assert np.array_equal((frags.pix_to_face[0] >= 0).numpy(), expected)


def test_shared_edge_is_watertight():
    # a square split along its diagonal: every pixel inside exactly once, none lost on the diagonal
    verts = torch.tensor([[[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]]])
    frags = rasterize(verts, torch.tensor([[0, 1, 2], [0, 2, 3]]), 64)
    assert int((frags.pix_to_face >= 0).sum()) == 32 * 32
    # and a fan of many thin triangles around a centre: no holes either
    n = 37
    ang = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    ring = torch.stack([0.7 * torch.cos(ang), 0.7 * torch.sin(ang), torch.zeros(n)], -1)
    verts = torch.cat([torch.zeros(1, 3), ring])[None]
    faces = torch.tensor([[0, 1 + i, 1 + (i + 1) % n] for i in range(n)])
    covered = rasterize(verts, faces, 96).pix_to_face[0] >= 0
    c = pixel_centers(96, 96)
    r = c.norm(dim=-1)
    assert covered[r < 0.6].all()  # inside the inscribed circle of the polygon: all covered


def test_sphere_silhouette_area():
    t = make_uv_sphere(64, 128)
    r, size = 0.7, 256
    cam = WeakPerspectiveCamera.from_view([30.0], 20.0, r)
    out = render_mesh(t, t.vertices[None], cam, torch.ones(1, 3, 4, 4), RenderConfig(size), soft=False)
    area = float(out.mask.sum()) * (2 / size) ** 2
    assert abs(area - math.pi * r**2) / (math.pi * r**2) < 0.01


def test_zbuffer_keeps_nearest_in_any_order():
    near = [[-0.5, -0.5, 0.1], [0.5, -0.5, 0.1], [0.0, 0.5, 0.1]]
    far = [[-0.6, -0.6, 0.5], [0.6, -0.6, 0.5], [0.0, 0.6, 0.5]]
    for order in ([near, far], [far, near]):
        verts = torch.tensor([order[0] + order[1]])
        frags = rasterize(verts, torch.tensor([[0, 1, 2], [3, 4, 5]]), 32)
        near_face = 0 if order[0] is near else 1
        centre = frags.pix_to_face[0, 16, 16]
        assert int(centre) == near_face
        assert abs(float(frags.zbuf[0, 16, 16]) - 0.1) < 1e-4


def test_both_sides_render_unless_culled():
    ccw_from_viewer = torch.tensor([[[-0.5, -0.5, 0.0], [0.0, 0.5, 0.0], [0.5, -0.5, 0.0]]])  # normal z < 0
    faces = torch.tensor([[0, 1, 2]])
    for verts, front in ((ccw_from_viewer, True), (ccw_from_viewer[:, [0, 2, 1]], False)):
        assert (rasterize(verts, faces, 16).pix_to_face >= 0).any()
        culled = rasterize(verts, faces, 16, cull_backfaces=True).pix_to_face >= 0
        assert culled.any() == front


def test_interpolation_exact_for_affine_attributes():
    torch.manual_seed(0)
    t = make_uv_sphere()
    v = deform_vertices(t, 0.1 * torch.randn(2, 3, 16, 16))
    cam = WeakPerspectiveCamera.from_view([20.0, 200.0], [10.0, -5.0], 0.8)
    vc = cam.apply(v).double()
    frags = rasterize(vc, t.faces, 48)
    a = torch.randn(3, 4, dtype=torch.float64)
    attr = vc @ a + 0.5
    got = interpolate(attr, t.faces, frags)
    c = pixel_centers(48, 48, dtype=torch.float64)
    pts = torch.cat([c.expand(2, -1, -1, -1), frags.zbuf[..., None]], -1)
    want = pts @ a + 0.5
    fg = frags.pix_to_face >= 0
    assert fg.sum() > 500
    assert torch.allclose(got[fg], want[fg], atol=1e-6)  # zbuf is quantized to ~1e-12
    assert (got[~fg] == 0).all()


def test_barycentrics_sum_to_one_and_are_in_range():
    t = make_uv_sphere()
    frags = rasterize(WeakPerspectiveCamera.from_view([45.0], 20.0, 0.8).apply(t.vertices), t.faces, 64)
    assert torch.allclose(frags.fg_bary.sum(-1), torch.ones(len(frags.fg_bary)), atol=1e-5)
    assert (frags.fg_bary > -1e-4).all() and (frags.fg_bary < 1 + 1e-4).all()


def test_gradcheck_interpolation_through_vertices():
    torch.manual_seed(3)
    base = torch.tensor([[-0.6, -0.5, 0.2], [0.7, -0.4, 0.3], [0.1, 0.8, 0.4], [0.9, 0.7, 0.1]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    attr = torch.randn(1, 4, 2, dtype=torch.float64)
    frags0 = rasterize(base[None], faces, 16)
    weights = torch.randn(1, 16, 16, 2, dtype=torch.float64)

    def f(v):
        frags = rasterize(v[None], faces, 16)
        assert torch.equal(frags.pix_to_face, frags0.pix_to_face)  # the perturbation keeps coverage
        return (interpolate(attr, faces, frags) * weights).sum()

    assert torch.autograd.gradcheck(f, (base.clone().requires_grad_(),), eps=1e-7, atol=1e-5)


def test_gradcheck_soft_mask_through_vertices():
    base = torch.tensor([[-0.5, -0.4, 0.2], [0.45, -0.35, 0.3], [0.05, 0.5, 0.4]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    frags = rasterize(base[None], faces, 24)
    weights = torch.randn(1, 1, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(v):
        return (soft_mask(v[None], faces, frags, sigma_inv=300.0, box_len=0.3) * weights).sum()

    v = base.clone().requires_grad_()
    out = soft_mask(v[None], faces, frags, sigma_inv=300.0, box_len=0.3)
    assert ((out > 0.01) & (out < 0.99)).sum() > 20  # a real soft band around the triangle
    assert torch.autograd.gradcheck(f, (v,), eps=1e-7, atol=1e-5)


def test_soft_mask_is_one_inside_and_decays_outside():
    t = make_uv_sphere()
    vc = WeakPerspectiveCamera.from_view([0.0], 0.0, 0.5).apply(t.vertices)
    frags = rasterize(vc, t.faces, 64)
    sm = soft_mask(vc, t.faces, frags)
    assert (sm[frags.mask > 0] == 1).all()
    c = pixel_centers(64, 64)
    r = c.norm(dim=-1)
    ring = sm[0, 0][(r > 0.505) & (r < 0.515)]
    far = sm[0, 0][r > 0.6]
    assert ring.mean() > 0.05 and far.max() < 1e-3


def test_recover_scale_and_translation_from_silhouette():
    t = make_uv_sphere(16, 24)
    cfg = RenderConfig(image_size=48, sigma_inv=10000.0, box_len=0.03)
    tex = torch.ones(1, 3, 4, 4)
    rot = WeakPerspectiveCamera.from_view([30.0], 15.0).rotation
    target_cam = WeakPerspectiveCamera(torch.tensor([0.55]), torch.tensor([[0.12, -0.08]]), rot)
    target = render_mesh(t, t.vertices[None], target_cam, tex, cfg, soft=False).mask
    s = torch.tensor([0.45], requires_grad=True)
    tr = torch.zeros(1, 2, requires_grad=True)
    opt = torch.optim.Adam([s, tr], lr=0.01)
    for _ in range(120):
        out = render_mesh(t, t.vertices[None], WeakPerspectiveCamera(s, tr, rot), tex, cfg)
        inter = (out.soft_mask * target).sum()
        loss = 1 - inter / (out.soft_mask + target - out.soft_mask * target).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # from 0.1 off in scale (2.4 px of radius) to within 0.03 (0.7 px; the soft tail biases the
    # optimum inwards by a fraction of a pixel) and the translation to within 0.01 (a quarter pixel)
    assert abs(float(s.detach()) - 0.55) < 0.03
    assert torch.allclose(tr.detach(), torch.tensor([[0.12, -0.08]]), atol=0.01)


def test_gradients_reach_deformation_and_texture():
    t = make_uv_sphere()
    d = torch.zeros(1, 3, 16, 16, requires_grad=True)
    tex = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = render_mesh(t, deform_vertices(t, d), WeakPerspectiveCamera.from_view([40.0], 10.0, 0.7), tex, RenderConfig(48))
    (out.image.sum() + out.soft_mask.sum()).backward()
    assert d.grad.abs().sum() > 0 and tex.grad.abs().sum() > 0


def test_render_across_seam_is_smooth():
    # a smooth periodic texture rendered with the seam (u = 0, the +z front) facing the viewer
    t = make_uv_sphere()
    u = (torch.arange(64) + 0.5) / 64
    tex = (0.5 + 0.4 * torch.cos(2 * math.pi * u))[None, None, None, :].expand(1, 3, 32, 64)
    out = render_mesh(t, t.vertices[None], WeakPerspectiveCamera.from_view([90.0], 0.0, 0.8), tex, RenderConfig(64), soft=False)
    img, m = out.image[0, 0, 8:56, 28:36], out.mask[0, 0, 8:56, 28:36] > 0  # the seam runs down column 32
    both = m[:, 1:] & m[:, :-1]
    jumps = (img[:, 1:] - img[:, :-1]).abs()[both]
    assert both.sum() > 200
    assert jumps.max() < 0.02
    # a texture that does not wrap (a ramp in u) shows the seam as a jump there
    ramp = u[None, None, None, :].expand(1, 3, 32, 64)
    out = render_mesh(t, t.vertices[None], WeakPerspectiveCamera.from_view([90.0], 0.0, 0.8), ramp, RenderConfig(64), soft=False)
    img = out.image[0, 0, 8:56, 28:36]
    assert (img[:, 1:] - img[:, :-1]).abs()[both].max() > 0.3


def test_cpu_determinism():
    t = make_uv_sphere()
    d = (0.05 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))).requires_grad_()
    tex = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cam = WeakPerspectiveCamera.from_view([10.0, 100.0], 20.0, 0.8)
    results = []
    for _ in range(2):
        d.grad = None
        out = render_mesh(t, deform_vertices(t, d), cam, tex, RenderConfig(64))
        (out.image.sum() + out.soft_mask.sum()).backward()
        results.append((out.image.detach().clone(), out.soft_mask.detach().clone(), d.grad.clone()))
    for a, b in zip(results[0], results[1]):
        assert torch.equal(a, b)


def test_project_is_camera_projection():
    t = make_uv_sphere()
    cam = WeakPerspectiveCamera.from_view([70.0], 25.0, 0.6, (0.1, 0.0))
    assert torch.allclose(project(t.vertices[None], cam), cam.apply(t.vertices[None])[..., :2])


def test_bad_inputs_have_clear_errors():
    t = make_uv_sphere()
    faces = t.faces
    v = t.vertices[None]
    with pytest.raises(ValueError, match=r"verts must have 3 dimensions"):
        rasterize(t.vertices, faces, 32)
    with pytest.raises(ValueError, match="at least 8"):
        rasterize(v, faces, 4)
    with pytest.raises(ValueError, match="empty mesh"):
        rasterize(v, faces[:0], 32)
    with pytest.raises(ValueError, match="empty mesh"):
        rasterize(v[:, :0], faces, 32)
    with pytest.raises(ValueError, match="outside"):
        rasterize(v, faces + 1000, 32)
    with pytest.raises(ValueError, match="NaN"):
        rasterize(v * float("nan"), faces, 32)
    cam = WeakPerspectiveCamera.from_view([0.0, 10.0, 20.0], 0.0)
    with pytest.raises(ValueError, match="mismatched batch"):
        render_mesh(t, v.expand(2, -1, -1), cam, torch.ones(1, 3, 8, 8))
    with pytest.raises(ValueError, match="texture_map"):
        render_mesh(t, v, cam[0], torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="uv"):
        texture(torch.ones(1, 3, 8, 8), torch.zeros(1, 4, 4, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    t = make_uv_sphere()
    d = 0.05 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    tex = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cam = WeakPerspectiveCamera.from_view([10.0, 100.0], 20.0, 0.8)
    cpu = render_mesh(t, deform_vertices(t, d), cam, tex, RenderConfig(64))
    gpu = render_mesh(t.to("cuda"), deform_vertices(t.to("cuda"), d.cuda()), cam.to("cuda"), tex.cuda(), RenderConfig(64))
    assert (cpu.mask != gpu.mask.cpu()).float().mean() < 0.002
    assert torch.allclose(cpu.soft_mask, gpu.soft_mask.cpu(), atol=1e-3)


def test_mesh_partly_outside_the_image():
    t = make_uv_sphere()
    for shift in ((0.9, 0.0), (-0.9, 0.5), (0.0, -1.2), (2.5, 0.0)):
        cam = WeakPerspectiveCamera.from_view([30.0], 10.0, 0.8, shift)
        v = t.vertices[None].clone().requires_grad_()
        out = render_mesh(t, v, cam, torch.ones(1, 3, 8, 8), RenderConfig(32, box_len=0.2, sigma_inv=500.0))
        out.soft_mask.sum().backward()
        inside = abs(shift[0]) < 1.8
        assert bool(out.mask.any()) == inside
        assert (out.soft_mask >= 0).all() and (out.soft_mask <= 1).all()


def test_gradcheck_whole_render_mesh_image_in_texture_and_vertices():
    # the full textured image, not only "grad > 0": finite differences in float64 on a coarse sphere
    from meshinv_lite.config import RenderConfig

    t = make_uv_sphere(rings=7, segments=8)
    cam = WeakPerspectiveCamera.from_view([30.0], 20.0, 0.8, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    v = (t.vertices.double() * (1 + 0.1 * torch.randn(t.num_vertices, 1, generator=g, dtype=torch.float64)))[None]
    tex = torch.rand(1, 3, 8, 16, dtype=torch.float64, generator=g)

    def image(v, tex):
        return render_mesh(t, v, cam, tex, RenderConfig(image_size=12), soft=False).image

    assert torch.autograd.gradcheck(image, (v.requires_grad_(), tex.requires_grad_()), eps=1e-6, atol=1e-5, rtol=1e-3)
