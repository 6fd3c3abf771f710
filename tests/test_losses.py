"""Inversion losses: minima on identical inputs, growth with misalignment, gradients, errors, registries."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from meshinv_lite.camera import pixel_centers
from meshinv_lite.features import fallback_vgg19
from meshinv_lite.losses import (
    MASK_LOSSES,
    TEXTURE_LOSSES,
    ChamferMaskConfig,
    ChamferTextureConfig,
    chamfer_colored_points,
    chamfer_feature_loss,
    chamfer_mask_loss,
    chamfer_texture_loss,
    contextual_loss,
    foreground_points,
    get_mask_loss,
    get_texture_loss,
    latent_loss,
    mask_iou_loss,
    mask_l1_loss,
    masked_pixel_loss,
    smoothness_loss,
)
from meshinv_lite.mesh import deform_vertices, face_adjacency, make_uv_sphere

ALL = ChamferTextureConfig(num_points=100_000)  # keep every point: deterministic


@pytest.fixture(scope="module")
def extractor():
    return fallback_vgg19()


def _disk(size: int, radius: float, cx: float = 0.0, cy: float = 0.0, batch: int = 1) -> torch.Tensor:
    xy = pixel_centers(size, size)
    m = (((xy[..., 0] - cx) ** 2 + (xy[..., 1] - cy) ** 2) < radius ** 2).float()
    return m[None, None].expand(batch, 1, size, size).clone()


def _striped(size: int = 32, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Smooth-ish coloured texture: stripes plus blurred noise (structure at a few pixels' scale)."""
    g = torch.Generator().manual_seed(seed)
    noise = F.avg_pool2d(torch.rand(batch, 3, size, size, generator=g), 3, 1, 1)
    xs = torch.arange(size).float()
    stripes = (torch.sin(xs / 2.0)[None, None, None, :] * 0.5 + 0.5).expand(batch, 3, size, size)
    return (0.5 * noise + 0.5 * stripes).clamp(0, 1)


def _scene(size: int = 48, dx: float = 0.0, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured disk (radius 0.45) centred at ``(dx, 0)``; its texture moves with it (no wrap-around)."""
    xy = pixel_centers(size, size)
    u, v = xy[..., 0] - dx, xy[..., 1]
    img = torch.stack([0.5 + 0.5 * torch.sin(4 * u), 0.5 + 0.5 * torch.cos(3 * v + u), (u + 1) * (v + 1) / 4])
    img = img.clamp(0, 1)[None].expand(batch, 3, size, size).clone()
    mask = ((u ** 2 + v ** 2) < 0.45 ** 2).float()[None, None].expand(batch, 1, size, size).clone()
    return img, mask


def _brute_chamfer(pxy, pv, txy, tv, cfg):
    ds = torch.cdist(pxy.double(), txy.double()) ** 2
    da = torch.cdist(pv.double(), tv.double()) ** 2
    d = ((ds + cfg.eps_s) ** cfg.alpha).clamp_min(1) * (da + cfg.eps_a)
    return d.min(1).values.mean(), d.min(0).values.mean()


# ---------------------------------------------------------------------------------------------
# Chamfer texture
# ---------------------------------------------------------------------------------------------


def test_chamfer_points_match_brute_force_both_sides():
    g = torch.Generator().manual_seed(1)
    pxy, txy = torch.rand(300, 2, generator=g) * 2 - 1, torch.rand(250, 2, generator=g) * 2 - 1
    pv, tv = torch.rand(300, 3, generator=g), torch.rand(250, 3, generator=g)
    for alpha in (1.0, 2.0):
        cfg = ChamferTextureConfig(alpha=alpha, chunk_size=64)
        fwd, bwd = chamfer_colored_points(pxy, pv, txy, tv, cfg)
        ref_f, ref_b = _brute_chamfer(pxy, pv, txy, tv, cfg)
        assert fwd.item() == pytest.approx(ref_f.item(), rel=1e-5)
        assert bwd.item() == pytest.approx(ref_b.item(), rel=1e-5)


def test_chamfer_constants_follow_the_authors():
    cfg = ChamferTextureConfig()
    assert cfg.eps_s == pytest.approx(1 - (2 * 0.16) ** 2)
    assert (cfg.num_points, cfg.alpha, cfg.eps_a, cfg.two_sided) == (8192, 1.0, 1.0, True)


def test_chamfer_texture_minimal_on_identical_images():
    img, mask = _striped(), _disk(32, 0.8, batch=2)
    per = chamfer_texture_loss(img, mask, img, mask, ALL, reduction="none")
    assert per.shape == (2,)
    assert torch.allclose(per, torch.full((2,), 2 * ALL.eps_a))  # eps_a per side, two sides
    one = chamfer_texture_loss(img, mask, img, mask, ChamferTextureConfig(num_points=100_000, two_sided=False))
    assert one.item() == pytest.approx(ALL.eps_a)


def test_chamfer_texture_grows_with_misalignment():
    img, mask = _scene()
    values = [chamfer_texture_loss(*_scene(dx=dx), img, mask, ALL).item() for dx in (0.0, 0.2, 0.4, 0.6)]
    assert values == sorted(values) and values[-1] > values[0] + 0.05


def test_chamfer_tolerates_small_shifts_far_better_than_l1():
    img, mask = _striped(48), _disk(48, 0.7, batch=2)
    base_c = chamfer_texture_loss(img, mask, img, mask, ALL)
    base_l1 = masked_pixel_loss(img, mask, img, mask)
    assert base_l1.item() == 0
    wrong = torch.rand(img.shape, generator=torch.Generator().manual_seed(5))
    for shift in (1, 2):
        moved_img, moved_mask = img.roll(shift, -1), mask.roll(shift, -1)
        # Increase above the minimum, relative to a completely wrong texture, for each loss.
        c = (chamfer_texture_loss(moved_img, moved_mask, img, mask, ALL) - base_c) / (
            chamfer_texture_loss(wrong, mask, img, mask, ALL) - base_c)
        l1 = masked_pixel_loss(moved_img, moved_mask, img, mask) / masked_pixel_loss(wrong, mask, img, mask)
        assert c.item() < 0.2 * l1.item(), (shift, c.item(), l1.item())


def test_chamfer_spatial_term_carries_no_gradient():
    g = torch.Generator().manual_seed(2)
    pxy = (torch.rand(50, 2, generator=g) * 2 - 1).requires_grad_(True)
    pv = torch.rand(50, 3, generator=g).requires_grad_(True)
    txy, tv = torch.rand(40, 2, generator=g) * 2 - 1, torch.rand(40, 3, generator=g)
    fwd, bwd = chamfer_colored_points(pxy, pv, txy, tv)
    gxy, gv = torch.autograd.grad(fwd + bwd, [pxy, pv], allow_unused=True)
    assert gxy is None or torch.count_nonzero(gxy) == 0
    assert gv is not None and gv.abs().sum() > 0


def test_chamfer_texture_gradient_moves_colours_toward_target():
    target, mask = _striped(), _disk(32, 0.8, batch=2)
    pred = (target * 0.5 + 0.25).requires_grad_(True)
    loss = chamfer_texture_loss(pred, mask, target, mask, ALL)
    loss.backward()
    with torch.no_grad():
        after = chamfer_texture_loss(pred - 2.0 * pred.grad, mask, target, mask, ALL)
    assert after < loss
    assert pred.grad[(mask == 0).expand_as(pred)].abs().sum() == 0  # background pixels are not points


def test_one_sided_ignores_unmatched_target_content():
    """pred -> target only: a target region that pred lacks costs nothing one-sided, something two-sided."""
    mask = _disk(32, 0.8, batch=1)
    target = torch.full((1, 3, 32, 32), 0.2)
    target[..., 14:18, 14:18] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]  # a small red spot
    pred = torch.full((1, 3, 32, 32), 0.2)
    one = ChamferTextureConfig(num_points=100_000, two_sided=False)
    assert chamfer_texture_loss(pred, mask, target, mask, one).item() == pytest.approx(1.0)
    assert chamfer_texture_loss(pred, mask, target, mask, ALL).item() > 2.005


def test_chamfer_subsampling_is_reproducible_with_a_generator():
    img, mask = _striped(64), _disk(64, 0.9, batch=2)
    cfg = ChamferTextureConfig(num_points=256)
    a = chamfer_texture_loss(img.roll(3, -1), mask, img, mask, cfg, generator=torch.Generator().manual_seed(0))
    b = chamfer_texture_loss(img.roll(3, -1), mask, img, mask, cfg, generator=torch.Generator().manual_seed(0))
    assert a.item() == b.item()
    xy, vals = foreground_points(img[0], mask[0], 256, generator=torch.Generator().manual_seed(0))
    assert xy.shape == (256, 2) and vals.shape == (256, 3)


def test_chamfer_feature_loss(extractor):
    img, mask = _striped(32), _disk(32, 0.8, batch=2)
    same = chamfer_feature_loss(img, mask, img, mask, extractor, ALL, reduction="none")
    assert torch.allclose(same, torch.full((2,), 2.0), atol=1e-5)
    moved = chamfer_feature_loss(torch.rand(img.shape, generator=torch.Generator().manual_seed(0)), mask, img, mask,
                                 extractor, ALL)
    assert moved.item() > same.mean().item() + 0.01


# ---------------------------------------------------------------------------------------------
# Chamfer mask
# ---------------------------------------------------------------------------------------------


def test_chamfer_mask_matches_brute_force_and_is_small_when_aligned():
    mask = _disk(48, 0.6, batch=2)
    inside = pixel_centers(48, 48).reshape(-1, 2)[mask[0].reshape(-1) > 0.5]
    pts = torch.stack([inside, inside.flip(0)])
    assert chamfer_mask_loss(pts, mask).item() == pytest.approx(0.0, abs=1e-8)
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(2, 300, 2, generator=g) * 2 - 1
    per = chamfer_mask_loss(pts, mask, ChamferMaskConfig(chunk_size=100), reduction="none")
    for b in range(2):
        d = torch.cdist(pts[b].double(), inside.double()) ** 2
        assert per[b].item() == pytest.approx((d.min(1).values.mean() + d.min(0).values.mean()).item(), rel=1e-5)
    one = chamfer_mask_loss(pts, mask, ChamferMaskConfig(two_sided=False), reduction="none")
    assert (one < per).all()


def test_chamfer_mask_grows_with_misalignment():
    mask = _disk(48, 0.5)
    inside = pixel_centers(48, 48).reshape(-1, 2)[mask.reshape(-1) > 0.5]
    values = [chamfer_mask_loss((inside + torch.tensor([dx, 0.0]))[None], mask).item() for dx in (0.0, 0.1, 0.3, 0.6)]
    assert values[0] == pytest.approx(0.0, abs=1e-8)
    assert values == sorted(values) and values[-1] > 10 * values[1] > 0


def test_chamfer_mask_gradient_pulls_vertices_into_the_mask():
    mask = _disk(64, 0.4)
    template = make_uv_sphere(rings=8, segments=12)
    pts = (template.vertices[None, :, :2] * 0.9).clone().requires_grad_(True)  # a blob larger than the disk
    loss = chamfer_mask_loss(pts, mask)
    loss.backward()
    radius_before = pts.detach().norm(dim=-1)
    stepped = pts.detach() - 0.5 * pts.grad
    assert chamfer_mask_loss(stepped, mask) < loss
    outside = radius_before > 0.45
    assert outside.any()
    assert (stepped.norm(dim=-1)[outside] < radius_before[outside]).all()  # outside points move inward


# ---------------------------------------------------------------------------------------------
# Regularizers and baselines
# ---------------------------------------------------------------------------------------------


def test_smoothness_zero_for_flat_small_for_sphere_large_for_noise():
    t = make_uv_sphere()
    pairs = face_adjacency(t.faces)
    sphere = smoothness_loss(t.vertices[None], t.faces, pairs)
    noisy = t.vertices[None] + 0.1 * torch.randn(1, t.num_vertices, 3, generator=torch.Generator().manual_seed(0))
    assert 0 < sphere.item() < 0.05
    assert smoothness_loss(noisy, t.faces).item() > 5 * sphere.item()
    flat = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]])
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    assert smoothness_loss(flat, faces).item() == pytest.approx(0.0, abs=1e-7)
    offsets = torch.zeros(2, 3, 8, 8)
    assert smoothness_loss(deform_vertices(t, offsets), t.faces, pairs, reduction="none").shape == (2,)


def test_latent_loss():
    z = torch.tensor([[1.0, -1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(latent_loss(z, reduction="none"), torch.tensor([6 / 8, 0.0]))


def test_pixel_baselines_zero_when_identical_and_grow():
    img, mask = _striped(), _disk(32, 0.8, batch=2)
    for p in (1, 2):
        assert masked_pixel_loss(img, mask, img, mask, p=p).item() == 0
        small = masked_pixel_loss(img.roll(1, -1), mask.roll(1, -1), img, mask, p=p)
        large = masked_pixel_loss(img.roll(8, -1), mask.roll(8, -1), img, mask, p=p)
        assert 0 < small < large


def test_feature_baselines(extractor):
    img, mask = _striped(32), _disk(32, 0.8, batch=2)
    other = torch.rand(img.shape, generator=torch.Generator().manual_seed(0))
    for name in ("perceptual", "perceptual_l1", "contextual"):
        loss = get_texture_loss(name)
        same = loss(img, mask, img, mask, extractor=extractor, reduction="none")
        diff = loss(other, mask, img, mask, extractor=extractor, reduction="none")
        assert same.shape == (2,) and torch.allclose(same, torch.zeros(2), atol=1e-4), name
        assert (diff > same + 1e-5).all(), name
    cx = contextual_loss(img.roll(1, -1), mask.roll(1, -1), img, mask, extractor)
    assert cx.item() < contextual_loss(other, mask, img, mask, extractor).item()


def test_mask_baselines():
    target = _disk(32, 0.5, batch=2)
    assert mask_l1_loss(target, target).item() == 0
    assert mask_iou_loss(target, target).item() == pytest.approx(0, abs=1e-6)
    shifted = target.roll(4, -1)
    assert 0 < mask_l1_loss(shifted, target) < mask_l1_loss(target.roll(12, -1), target)
    assert 0 < mask_iou_loss(shifted, target) < mask_iou_loss(target.roll(12, -1), target) <= 1
    soft = (target * 0.8 + 0.1).requires_grad_(True)
    mask_iou_loss(soft, target).backward()
    assert soft.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# Errors and registries
# ---------------------------------------------------------------------------------------------


def test_empty_mask_is_rejected_with_a_clear_error(extractor):
    img, mask = _striped(), _disk(32, 0.8, batch=2)
    empty = mask.clone()
    empty[1] = 0
    with pytest.raises(ValueError, match=r"target_mask is empty .*\[1\]"):
        chamfer_texture_loss(img, mask, img, empty)
    with pytest.raises(ValueError, match=r"pred_mask is empty"):
        chamfer_feature_loss(img, empty, img, mask, extractor)
    with pytest.raises(ValueError, match=r"target_mask is empty"):
        chamfer_mask_loss(torch.zeros(2, 10, 2), empty)


def test_size_mismatch_is_rejected():
    img, mask = _striped(), _disk(32, 0.8, batch=2)
    with pytest.raises(ValueError, match="differ in batch or size"):
        chamfer_texture_loss(img, _disk(16, 0.8, batch=2), img, mask)
    with pytest.raises(ValueError, match="differ in size"):
        masked_pixel_loss(F.interpolate(img, 16), _disk(16, 0.8, batch=2), img, mask)
    with pytest.raises(ValueError, match="differ"):
        mask_l1_loss(_disk(16, 0.5), _disk(32, 0.5))
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        chamfer_mask_loss(torch.zeros(2, 10, 3), mask)
    with pytest.raises(ValueError, match="batch"):
        chamfer_texture_loss(img[:1], mask[:1], img, mask)


def test_nan_is_rejected():
    img, mask = _striped(), _disk(32, 0.8, batch=2)
    bad = img.clone()
    bad[0, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="pred_image contains NaN"):
        chamfer_texture_loss(bad, mask, img, mask)
    with pytest.raises(ValueError, match="NaN"):
        chamfer_mask_loss(torch.full((2, 4, 2), float("nan")), mask)
    with pytest.raises(ValueError, match="NaN"):
        latent_loss(torch.tensor([[float("nan")]]))


def test_registries():
    assert {"chamfer", "chamfer_feature", "l1", "l2", "perceptual", "contextual"} <= set(TEXTURE_LOSSES)
    assert set(MASK_LOSSES) == {"chamfer", "l1", "iou"}
    with pytest.raises(ValueError, match="unknown texture loss 'ssim'.*chamfer"):
        get_texture_loss("ssim")
    with pytest.raises(ValueError, match="unknown mask loss 'dice'.*iou"):
        get_mask_loss("dice")
    img, mask = _striped(), _disk(32, 0.8, batch=2)
    with pytest.raises(ValueError, match="needs a feature extractor"):
        get_texture_loss("perceptual")(img, mask, img, mask)
    assert get_texture_loss("l1")(img, mask, img, mask, reduction="none").shape == (2,)
    assert get_mask_loss("chamfer").needs == ("points",)
    assert get_mask_loss("iou").needs == ("soft_mask",)
    with pytest.raises(ValueError, match="needs points"):
        get_mask_loss("chamfer")(mask)
    with pytest.raises(ValueError, match="needs soft_mask"):
        get_mask_loss("l1")(mask, points=torch.zeros(2, 3, 2))
    pts = torch.zeros(2, 5, 2)
    assert torch.allclose(get_mask_loss("chamfer")(mask, points=pts), chamfer_mask_loss(pts, mask))
    with pytest.raises(ValueError, match="unknown reduction"):
        latent_loss(torch.zeros(1, 2), reduction="avg")
