"""Inversion losses: minima, behaviour under misalignment, gradients, errors, registries."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from meshinv_lite.losses import nearest as C
from meshinv_lite import losses as L
from meshinv_lite.render import pixel_centers
from meshinv_lite.features import fallback_vgg19
from meshinv_lite.render import face_adjacency, make_uv_sphere

SIZE = 64
RADIUS = 0.6  # foreground disc, normalized units (19 px at 64 px: shifts of 16 px stay inside the frame)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Many small products: with 2 threads on a busy 2-core machine, OpenMP hand-offs make them ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def extractor():
    return fallback_vgg19()


def _texture(seed: int, size: int = SIZE) -> torch.Tensor:
    """Smooth random colours (1, 3, size, size) in [0, 1]: blurred noise, ~4 px correlation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 4, size // 4, generator=g)
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _disc(size: int = SIZE, radius: float = RADIUS) -> torch.Tensor:
    xy = pixel_centers(size, size)
    return (xy.norm(dim=-1) < radius).float()[None, None]


def _shifted(img: torch.Tensor, mask: torch.Tensor, px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image and mask moved right by ``px`` pixels (the disc stays inside the frame)."""
    return torch.roll(img, px, dims=-1), torch.roll(mask, px, dims=-1)


def _dense_chamfer(a_xy, a_v, b_xy, b_v, two_sided=True, eps_s=C.EPS_S, alpha=1.0, eps_a=1.0):
    """Reference: the full cost matrix, no tricks."""
    ds = ((a_xy[:, None] - b_xy[None]) ** 2).sum(-1)
    da = ((a_v[:, None] - b_v[None]) ** 2).sum(-1)
    d = (ds + eps_s).clamp_min(0).pow(alpha).clamp_min(1) * (da + eps_a)
    out = d.min(1).values.mean()
    return out + d.min(0).values.mean() if two_sided else out


# --------------------------------------------------------------------------------------------------
# Nearest-neighbour machinery
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [5, 64, 200, 1000])
def test_row_argmin_matches_argmin_including_ties(m):
    g = torch.Generator().manual_seed(m)
    d = torch.randint(0, 7, (33, m), generator=g).float()  # many ties
    assert torch.equal(C._row_argmin(d), d.argmin(1))
    d = torch.rand(33, m, generator=g)
    assert torch.equal(C._row_argmin(d, group=16), d.argmin(1))


@pytest.mark.parametrize("n", [5, 64, 200, 1000])
def test_col_argmin_matches_argmin_including_ties(n):
    g = torch.Generator().manual_seed(n)
    d = torch.randint(0, 7, (3, n, 41), generator=g).float()  # many ties
    assert torch.equal(C._col_argmin(d), d.argmin(1))
    d = torch.rand(3, n, 41, generator=g)
    assert torch.equal(C._col_argmin(d, group=16), d.argmin(1))


@pytest.mark.parametrize("two_sided,alpha,eps_a", [(True, 1.0, 1.0), (False, 1.0, 1.0), (True, 2.0, 0.5)])
def test_chamfer_point_sets_matches_dense_reference(two_sided, alpha, eps_a):
    g = torch.Generator().manual_seed(1)
    a_xy, b_xy = torch.rand(300, 2, generator=g) * 2 - 1, torch.rand(411, 2, generator=g) * 2 - 1
    a_v, b_v = torch.rand(300, 3, generator=g), torch.rand(411, 3, generator=g)
    got = C.chamfer_point_sets(a_xy, a_v, b_xy, b_v, two_sided=two_sided, alpha=alpha, eps_a=eps_a, chunk_size=64)
    ref = _dense_chamfer(a_xy, a_v, b_xy, b_v, two_sided=two_sided, alpha=alpha, eps_a=eps_a)
    assert torch.allclose(got, ref, rtol=1e-5)


@pytest.mark.parametrize("case", range(6))
def test_pruned_search_equals_brute_force(case, monkeypatch):
    """The spatially pruned search (used for large sets) gives exactly the brute-force value, also with
    clustered sets, disjoint sets, many ties, other constants and features."""
    g = torch.Generator().manual_seed(10 + case)
    n, m, c = [(900, 1300, 3), (1500, 700, 3), (800, 800, 5), (1200, 1000, 3), (600, 1400, 3), (1000, 1000, 8)][case]
    a_xy, b_xy = torch.rand(n, 2, generator=g) * 2 - 1, torch.rand(m, 2, generator=g) * 2 - 1
    a_v, b_v = torch.rand(n, c, generator=g), torch.rand(m, c, generator=g)
    if case == 1:
        a_xy = a_xy * 0.3 + 0.5  # A in a corner: most of B far from it
    if case == 3:
        a_v, b_v = (a_v * 2).round() / 2, (b_v * 2).round() / 2  # few distinct colours: ties everywhere
    if case == 4:
        b_xy = b_xy * 0.2 - 0.7  # disjoint clusters
    kw = [{}, {"two_sided": False}, {"alpha": 2.0, "eps_a": 0.1}, {}, {"eps_s": 0.5}, {"alpha": 0.5, "eps_a": 2.0}][case]
    monkeypatch.setattr(C, "PRUNE_MIN_PAIRS", 1 << 62)
    brute = C.chamfer_point_sets(a_xy, a_v, b_xy, b_v, **kw)
    monkeypatch.setattr(C, "PRUNE_MIN_PAIRS", 0)
    a_v.requires_grad_()
    pruned = C.chamfer_point_sets(a_xy, a_v, b_xy, b_v, **kw)
    assert pruned.item() == pytest.approx(brute.item(), rel=1e-6)
    pruned.backward()
    assert a_v.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------------
# Chamfer texture loss
# --------------------------------------------------------------------------------------------------


def test_chamfer_minimal_on_identical_and_one_point_per_pixel_match():
    img, mask = _texture(0), _disc()
    # all points kept: every point finds itself, D = 1 * (0 + eps_a) per side
    v = L.chamfer_texture_loss(img, mask, img, mask)
    assert v.item() == pytest.approx(2.0, abs=1e-5)
    v1 = L.chamfer_texture_loss(img, mask, img, mask, two_sided=False, eps_a=0.5)
    assert v1.item() == pytest.approx(0.5, abs=1e-5)


def test_chamfer_tolerates_small_shifts_far_better_than_l1():
    """Relative excess ``(L(shift) - L(0)) / (L(unrelated texture) - L(0))``: how much of the "this is a
    different texture" penalty a small misalignment costs. L1 pays a large share for 2 px; the Chamfer
    loss (weight 1 within 0.32 = 10 px at 64 px) almost nothing, and it only grows past its radius."""
    img, mask = _texture(0), _disc()
    other = _texture(99)
    chamfer = lambda t, tm: L.chamfer_texture_loss(img, mask, t, tm).item()  # noqa: E731
    l1 = lambda t, tm: L.masked_pixel_loss(img, mask, t, tm, p=1).item()  # noqa: E731
    rel = {}
    for name, fn in [("chamfer", chamfer), ("l1", l1)]:
        base, far = fn(img, mask), fn(other, mask)
        vals = [fn(*_shifted(img, mask, s)) for s in (0, 2, 6, 16)]
        assert vals[0] == pytest.approx(base)
        assert vals[0] <= vals[1] + 1e-6 <= vals[2] + 2e-6 <= vals[3] + 3e-6, (name, vals)
        assert vals[3] > vals[0] + 1e-3, (name, vals)  # 16 px: beyond the Chamfer radius, both grow
        rel[name] = {s: (v - base) / (far - base) for s, v in zip((0, 2, 6, 16), vals)}
    assert rel["l1"][2] > 0.2  # L1: 2 px already costs a good share of a wrong texture
    assert rel["chamfer"][2] < 0.01
    assert rel["chamfer"][2] < 0.05 * rel["l1"][2]
    assert rel["chamfer"][6] < 0.1 * rel["l1"][6]


def test_chamfer_penalizes_wrong_colours():
    img, mask = _texture(0), _disc()
    v0 = L.chamfer_texture_loss(img, mask, img, mask)
    v1 = L.chamfer_texture_loss(img, mask, img * 0.8, mask)  # darker: colours leave the original set
    v2 = L.chamfer_texture_loss(img, mask, img * 0.3, mask)
    assert v0 < v1 < v2


def test_one_sided_vs_two_sided():
    """pred covers the left half of the target with identical colours: pred -> target is perfect,
    target -> pred is not; the two-sided loss sees it and is symmetric."""
    img, mask = _texture(0), _disc()
    left = mask * (pixel_centers(SIZE, SIZE)[..., 0] < 0).float()[None, None]
    one = L.chamfer_texture_loss(img, left, img, mask, two_sided=False).item()
    one_rev = L.chamfer_texture_loss(img, mask, img, left, two_sided=False).item()
    two = L.chamfer_texture_loss(img, left, img, mask, two_sided=True).item()
    two_rev = L.chamfer_texture_loss(img, mask, img, left, two_sided=True).item()
    assert one == pytest.approx(1.0, abs=1e-5)  # every pred point finds itself
    assert one_rev > 1.0 + 1e-3
    assert two == pytest.approx(one + one_rev, rel=1e-5)
    assert two == pytest.approx(two_rev, rel=1e-5)


def test_ds_is_a_weight_only_and_colour_gradient_is_exact():
    """Tiny example worked by hand: positions get no gradient even when the weighting decides the match,
    and the colour gradient is that of the matched pairs' weighted squared differences."""
    a_xy = torch.tensor([[0.0, 0.0], [0.9, 0.0]], requires_grad=True)
    b_xy = torch.tensor([[0.1, 0.0], [-0.8, 0.0], [0.9, 0.5]], requires_grad=True)
    a_v = torch.tensor([[0.2, 0.2, 0.2], [0.9, 0.1, 0.1]], requires_grad=True)
    b_v = torch.tensor([[0.8, 0.2, 0.2], [0.2, 0.2, 0.3], [0.9, 0.1, 0.0]], requires_grad=True)
    eps_s, eps_a = C.EPS_S, 1.0
    loss = C.chamfer_point_sets(a_xy, a_v, b_xy, b_v, eps_s=eps_s, eps_a=eps_a)
    loss.backward()
    assert a_xy.grad is None and b_xy.grad is None

    # by hand
    A, B = a_v.detach(), b_v.detach()
    w = lambda p, q: max(float(((p - q) ** 2).sum()) + eps_s, 1.0)  # noqa: E731
    D = torch.tensor([[w(a_xy[i].detach(), b_xy[j].detach()) * (float(((A[i] - B[j]) ** 2).sum()) + eps_a)
                       for j in range(3)] for i in range(2)])
    ja, ib = D.argmin(1), D.argmin(0)
    # the weighting matters here: a0's nearest colour b1 lies 0.8 away (weight 1.54), b0 is the match
    assert ja[0].item() == 0
    ga, gb = torch.zeros_like(A), torch.zeros_like(B)
    for i in range(2):
        j = ja[i].item()
        ww = w(a_xy[i].detach(), b_xy[j].detach())
        ga[i] += 2 * ww * (A[i] - B[j]) / 2
        gb[j] -= 2 * ww * (A[i] - B[j]) / 2
    for j in range(3):
        i = ib[j].item()
        ww = w(a_xy[i].detach(), b_xy[j].detach())
        gb[j] += 2 * ww * (B[j] - A[i]) / 3
        ga[i] -= 2 * ww * (B[j] - A[i]) / 3
    value = D.min(1).values.mean() + D.min(0).values.mean()
    assert loss.item() == pytest.approx(value.item(), rel=1e-6)
    assert torch.allclose(a_v.grad, ga, atol=1e-6)
    assert torch.allclose(b_v.grad, gb, atol=1e-6)

    # a different spatial weighting changes the value, still no position gradient
    a_xy.grad = None
    loss2 = C.chamfer_point_sets(a_xy, a_v, b_xy, b_v, eps_s=0.2, alpha=2.0)
    loss2.backward()
    assert a_xy.grad is None and loss2.item() != pytest.approx(loss.item())


def test_chamfer_texture_gradient_flows_to_pred_image_batched():
    img, mask = _texture(0), _disc()
    tgt, tmask = _shifted(_texture(5), mask, 3)
    pred = torch.cat([img, _texture(1)]).requires_grad_()
    masks, target, target_masks = mask.repeat(2, 1, 1, 1), tgt.repeat(2, 1, 1, 1), tmask.repeat(2, 1, 1, 1)
    per = L.chamfer_texture_loss(pred, masks, target, target_masks, reduction="none",
                                 num_points=500, generator=torch.Generator().manual_seed(0))
    assert per.shape == (2,)
    per.sum().backward()
    g = pred.grad
    assert g.abs().sum() > 0
    assert g[:, :, mask[0, 0] == 0].abs().max() == 0  # background pixels are not points
    # subsampling is reproducible with a generator
    again = L.chamfer_texture_loss(pred, masks, target, target_masks, reduction="none",
                                   num_points=500, generator=torch.Generator().manual_seed(0))
    assert torch.equal(per.detach(), again.detach())


def test_chamfer_feature_loss(extractor):
    img, mask = _texture(0), _disc()
    v0 = L.chamfer_feature_loss(img, mask, img, mask, extractor)
    assert v0.item() == pytest.approx(2.0, abs=1e-4)
    far = L.chamfer_feature_loss(img, mask, *_shifted(img, mask, 16), extractor)
    other = L.chamfer_feature_loss(img, mask, _texture(99), mask, extractor)
    assert far > v0 + 1e-3 and other > v0 + 1e-3
    pred = img.clone().requires_grad_()
    L.chamfer_feature_loss(pred, mask, _texture(99), mask, extractor).backward()
    assert pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.parameters())


# --------------------------------------------------------------------------------------------------
# Mask Chamfer
# --------------------------------------------------------------------------------------------------


def _circle(n: int, r: float, cx: float = 0.0) -> torch.Tensor:
    t = torch.linspace(0, 2 * torch.pi, n + 1)[:-1]
    return torch.stack([cx + r * t.cos(), r * t.sin()], -1)


def test_chamfer_mask_matches_dense_reference():
    mask = _disc(32)
    verts = _circle(50, 0.7, 0.2)[None]
    pix = pixel_centers(32, 32).reshape(-1, 2)[mask.reshape(-1) > 0.5]
    d = ((verts[0][:, None] - pix[None]) ** 2).sum(-1)
    ref = d.min(1).values.mean() + d.min(0).values.mean()
    assert L.chamfer_mask_loss(verts, mask, chunk_size=100).item() == pytest.approx(ref.item(), rel=1e-5)
    one = L.chamfer_mask_loss(verts, mask, two_sided=False)
    assert one.item() == pytest.approx(d.min(1).values.mean().item(), rel=1e-5)


def test_chamfer_mask_gradient_pulls_vertices_to_the_mask():
    mask = _disc(64, 0.5)
    verts = _circle(80, 0.5, 0.3)[None].requires_grad_()  # shifted right: the right side is outside

    def outside_distance(v):
        r = v.norm(dim=-1)
        out = r > 0.5 + 1 / 64
        return (r[out] - 0.5).mean(), out

    loss = L.chamfer_mask_loss(verts, mask)
    loss.backward()
    with torch.no_grad():
        moved = verts - 5.0 * verts.grad  # the per-vertex gradient carries 1 / N: ~1/8 of the way
    before, out = outside_distance(verts.detach())
    after = (moved.norm(dim=-1)[out] - 0.5).clamp_min(0).mean()
    assert out.sum() > 10
    assert L.chamfer_mask_loss(moved, mask) < loss
    assert after < 0.95 * before
    assert verts.grad[0, out[0], 0].mean() > 0  # outside vertices (right side) are pushed left


def test_chamfer_mask_zero_when_vertices_are_the_pixels():
    mask = _disc(16)
    pix = pixel_centers(16, 16).reshape(-1, 2)[mask.reshape(-1) > 0.5]
    assert L.chamfer_mask_loss(pix[None], mask).item() == pytest.approx(0.0, abs=1e-10)


# --------------------------------------------------------------------------------------------------
# Regularizers and baselines
# --------------------------------------------------------------------------------------------------


def test_smoothness_and_latent():
    sphere = make_uv_sphere(rings=8, segments=10)
    faces = sphere.faces
    verts = sphere.vertices[None].repeat(2, 1, 1)
    pairs = face_adjacency(faces)
    g = torch.Generator().manual_seed(0)
    bumpy = verts + 0.1 * torch.randn(verts.shape, generator=g)
    s0 = L.smoothness_loss(verts, faces, pairs, reduction="none")
    s1 = L.smoothness_loss(bumpy, faces, pairs, reduction="none")
    assert s0.shape == (2,) and (s1 > s0).all()
    assert torch.allclose(L.smoothness_loss(bumpy, faces), s1.mean())
    # two triangles hinged along a shared edge at a known dihedral angle: 1 - cos(angle between normals)
    for deg in (0.0, 30.0, 90.0, 150.0):
        a = math.radians(deg)
        quad = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                              [0.0, -math.cos(a), math.sin(a)]]])  # second face turned by deg about the x axis
        tri = torch.tensor([[0, 1, 2], [1, 0, 3]])
        got = L.smoothness_loss(quad, tri, torch.tensor([[0, 1]]), reduction="none")
        assert float(got) == pytest.approx(1 - math.cos(a), abs=1e-5), deg
    z = torch.tensor([[1.0, -2.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(L.latent_loss(z, reduction="none"), torch.tensor([14 / 8, 0.0]))
    assert L.latent_loss(z).item() == pytest.approx(7 / 8)


def test_pixel_and_perceptual_baselines_grow_with_shift(extractor):
    img, mask = _texture(0), _disc()
    for name in ["l1", "l2", "perceptual"]:
        fn = L.get_texture_loss(name)
        vals = [fn(img, mask, *_shifted(img, mask, s), extractor=extractor).item() for s in (0, 2, 6)]
        assert vals[0] == pytest.approx(0.0, abs=1e-7), name
        assert vals[0] < vals[1] < vals[2], (name, vals)


def test_contextual_loss(extractor):
    img, mask = _texture(0), _disc()
    fn = L.get_texture_loss("contextual")
    same = fn(img, mask, img, mask, extractor=extractor)
    shifted = fn(img, mask, *_shifted(img, mask, 2), extractor=extractor)
    other = fn(img, mask, _texture(99), mask, extractor=extractor)
    assert same.item() == pytest.approx(0.0, abs=1e-3)
    assert other.item() > 0.5
    assert shifted.item() < 0.5 * other.item()  # features are matched regardless of position
    pred = img.clone().requires_grad_()
    fn(pred, mask, _texture(99), mask, extractor=extractor).sum().backward()
    assert pred.grad.abs().sum() > 0


def test_mask_baselines():
    t = _disc(32)
    soft = torch.cat([t, _disc(32, 0.3), torch.zeros_like(t)])
    target = t.repeat(3, 1, 1, 1)
    l1 = L.get_mask_loss("l1")(soft, None, target)
    iou = L.get_mask_loss("iou")(soft, None, target)
    assert l1.shape == iou.shape == (3,)
    assert l1[0] == 0 and iou[0].abs() < 1e-6
    assert l1[0] < l1[1] < l1[2] and iou[0] < iou[1] < iou[2]
    assert iou[2].item() == pytest.approx(1.0)
    assert iou[1].item() == pytest.approx(1 - soft[1].sum().item() / t.sum().item(), abs=1e-5)


# --------------------------------------------------------------------------------------------------
# Errors and registries
# --------------------------------------------------------------------------------------------------


def test_empty_foreground_names_batch_index():
    img, mask = _texture(0).repeat(3, 1, 1, 1), _disc().repeat(3, 1, 1, 1)
    empty = mask.clone()
    empty[1] = 0
    with pytest.raises(ValueError, match=r"target_mask.*batch index \[1\]"):
        L.chamfer_texture_loss(img, mask, img, empty)
    with pytest.raises(ValueError, match=r"pred_mask.*batch index \[1\]"):
        L.chamfer_texture_loss(img, empty, img, mask)
    with pytest.raises(ValueError, match=r"batch index \[1\]"):
        L.chamfer_mask_loss(torch.zeros(3, 10, 2), empty)


def test_shape_and_value_errors():
    img, mask = _texture(0), _disc()
    with pytest.raises(ValueError, match="pred_mask"):
        L.chamfer_texture_loss(img, _disc(32), img, mask)
    with pytest.raises(ValueError, match="target_img"):
        L.chamfer_texture_loss(img, mask, img[0], mask)
    bad = img.clone()
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        L.chamfer_texture_loss(bad, mask, img, mask)
    with pytest.raises(ValueError, match="NaN"):
        L.chamfer_mask_loss(torch.full((1, 4, 2), float("nan")), mask)
    with pytest.raises(ValueError, match="differ in size"):
        L.masked_pixel_loss(img, mask, _texture(0, 32), _disc(32))
    with pytest.raises(ValueError, match="reduction"):
        L.chamfer_texture_loss(img, mask, img, mask, reduction="avg")
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        L.chamfer_mask_loss(torch.zeros(1, 4, 3), mask)
    with pytest.raises(ValueError, match="batch sizes differ"):
        L.chamfer_texture_loss(img.repeat(2, 1, 1, 1), mask.repeat(2, 1, 1, 1), img, mask)


def test_registries():
    assert set(L.TEXTURE_LOSSES) == {"chamfer", "chamfer_feature", "l1", "l2", "perceptual", "contextual"}
    assert set(L.MASK_LOSSES) == {"chamfer", "l1", "iou"}
    with pytest.raises(ValueError, match=r"unknown texture loss 'ssim'.*chamfer.*contextual"):
        L.get_texture_loss("ssim")
    with pytest.raises(ValueError, match=r"unknown mask loss 'dice'.*chamfer.*iou"):
        L.get_mask_loss("dice")
    img, mask = _texture(0, 32).repeat(2, 1, 1, 1), _disc(32).repeat(2, 1, 1, 1)
    for name in L.TEXTURE_LOSSES:
        fn = L.get_texture_loss(name)
        if name in L.NEEDS_EXTRACTOR:
            with pytest.raises(ValueError, match="extractor"):
                fn(img, mask, img, mask)
        out = fn(img, mask, img, mask, extractor=fallback_vgg19(), generator=torch.Generator().manual_seed(0))
        assert out.shape == (2,), name
    # options pass through
    one = L.get_texture_loss("chamfer")(img, mask, img, mask, two_sided=False, num_points=None)
    assert torch.allclose(one, torch.ones(2))
    verts = _circle(20, 0.5)[None].repeat(2, 1, 1)
    assert L.get_mask_loss("chamfer")(None, verts, mask).shape == (2,)
    with pytest.raises(ValueError, match="projected_verts"):
        L.get_mask_loss("chamfer")(mask, None, mask)
    with pytest.raises(ValueError, match="pred_soft_mask"):
        L.get_mask_loss("iou")(None, verts, mask)


def test_each_registered_name_is_the_loss_it_names(extractor):
    """A name looked up in the registries computes the loss of that name, per image (guards against two names
    mapped to one function, e.g. ``"l2"`` to the L1 loss, which a check of shapes alone lets through)."""
    img, mask = _texture(0, 32).repeat(2, 1, 1, 1), _disc(32).repeat(2, 1, 1, 1)
    pred, pmask = _shifted(_texture(1, 32), _disc(32), 3)
    pred, pmask = torch.cat([pred, img[:1]]), torch.cat([pmask, mask[:1]])  # item 1 differs, item 2 does not
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731 (the same point samples for both calls)
    direct = {
        "chamfer": L.chamfer_texture_loss(pred, pmask, img, mask, generator=g(), reduction="none"),
        "chamfer_feature": L.chamfer_feature_loss(pred, pmask, img, mask, extractor, generator=g(), reduction="none"),
        "l1": L.masked_pixel_loss(pred, pmask, img, mask, p=1, reduction="none"),
        "l2": L.masked_pixel_loss(pred, pmask, img, mask, p=2, reduction="none"),
        "perceptual": L.perceptual_loss(pred, pmask, img, mask, extractor, reduction="none"),
        "contextual": L.contextual_loss(pred, pmask, img, mask, extractor, generator=g(), reduction="none"),
    }
    assert set(direct) == set(L.TEXTURE_LOSSES)
    got = {name: L.get_texture_loss(name)(pred, pmask, img, mask, extractor=extractor, generator=g()) for name in direct}
    for name in direct:
        assert got[name].shape == (2,) and torch.allclose(got[name], direct[name]), name
        assert got[name][0] > got[name][1], name  # the shifted image costs more than the identical one
    values = [float(v[0]) for v in got.values()]
    assert len(set(values)) == len(values), got  # six names, six different losses
    soft = F.avg_pool2d(F.pad(pmask, (1, 1, 1, 1), mode="replicate"), 3, stride=1)  # a soft silhouette
    verts = _circle(40, 0.5)[None].repeat(2, 1, 1)
    mask_direct = {"chamfer": L.chamfer_mask_loss(verts, mask, reduction="none"),
                   "l1": L.mask_l1_loss(soft, mask, reduction="none"), "iou": L.mask_iou_loss(soft, mask, reduction="none")}
    assert set(mask_direct) == set(L.MASK_LOSSES)
    for name, want in mask_direct.items():
        got_mask = L.get_mask_loss(name)(soft, verts, mask)
        assert torch.allclose(got_mask, want), name
    assert len({round(float(L.get_mask_loss(n)(soft, verts, mask)[0]), 6) for n in mask_direct}) == 3


def test_dense_and_chunked_chamfer_agree(monkeypatch):
    """The batched dense search and the per-image chunked one give the same loss and gradient."""
    import meshinv_lite.losses.registry as L

    g = torch.Generator().manual_seed(7)
    img = torch.rand(3, 3, 24, 24, generator=g, requires_grad=True)
    tgt = torch.rand(3, 3, 24, 24, generator=g)
    m = (torch.rand(3, 1, 24, 24, generator=g) > 0.3).float()
    tm = (torch.rand(3, 1, 24, 24, generator=g) > 0.5).float()  # different point counts per image
    results = []
    for budget in (10**9, 2 * 200 * 200, 0):  # one dense batch; dense groups of 2 images (2 + 1); chunked
        monkeypatch.setattr(C, "DENSE_BUDGET", budget)
        loss = L.chamfer_texture_loss(img, m, tgt, tm, num_points=200, reduction="none",
                                      generator=torch.Generator().manual_seed(1))
        grad, = torch.autograd.grad(loss.sum(), img)
        results.append((loss.detach(), grad))
    for other in results[1:]:
        assert torch.allclose(results[0][0], other[0], atol=1e-5)
        assert torch.allclose(results[0][1], other[1], atol=1e-6)
