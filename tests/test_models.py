"""Generator and discriminators: shapes, ranges, symmetry, circular padding, masking, EMA, conditioning."""
from __future__ import annotations

import copy

import pytest
import torch

from meshinv_lite.render import deform_vertices, make_uv_sphere, mirror_uv_map
from meshinv_lite.gan import (DiscriminatorConfig, Generator, GeneratorConfig, PatchDiscriminator, UVConv2d, UVDiscriminator, count_parameters, ema_update, uv_pad)


def _z(b: int, seed: int = 0, dim: int = 64) -> torch.Tensor:
    return torch.randn(b, dim, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def quick_g():
    """A fresh generator per test: a shared one run in train mode by one test would change the batch-norm
    statistics the next test sees."""
    torch.manual_seed(0)
    return Generator(GeneratorConfig.for_profile("quick"))


@pytest.mark.parametrize("profile", ["quick", "lite"])
def test_generator_shapes_and_ranges(profile):
    torch.manual_seed(0)
    cfg = GeneratorConfig.for_profile(profile, num_classes=5)
    g = Generator(cfg)
    tex, deform = g(_z(3), torch.tensor([0, 2, 4]))
    t, d = cfg.texture_size, cfg.deform_size
    assert tex.shape == (3, 3, t, t) and deform.shape == (3, 3, d, d)
    assert tex.min() >= 0 and tex.max() <= 1
    assert deform.abs().max() <= cfg.max_offset
    # Sphere-like at initialisation: small offsets, a closed mesh near the unit sphere.
    verts = deform_vertices(make_uv_sphere(), deform)
    assert deform.abs().mean() < 0.1
    assert (verts.norm(dim=-1) - 1).abs().mean() < 0.1
    (tex.mean() + deform.mean()).backward()
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad)


def test_paper_profile_is_reachable_by_config():
    cfg = GeneratorConfig.for_profile("paper", num_classes=200)
    assert (cfg.texture_size, cfg.deform_size, cfg.max_channels, cfg.latent_dim) == (512, 32, 512, 64)
    assert cfg.channels()[0] == 512 and len(cfg.channels()) == cfg.num_blocks + 1
    dcfg = DiscriminatorConfig.for_profile("paper", num_classes=200)
    assert (dcfg.render_size, dcfg.patch_ndf, dcfg.texture_size) == (256, 64, 512)
    assert GeneratorConfig.for_profile("quick", symmetric=False).symmetric is False
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(texture_size=100)
    with pytest.raises(ValueError, match="unknown profile"):
        GeneratorConfig.for_profile("huge")


def test_symmetric_generator_is_mirror_symmetric(quick_g):
    tex, deform = quick_g(_z(2), torch.tensor([1, 3]))
    w = tex.shape[-1]
    assert torch.equal(tex, mirror_uv_map(tex[..., : w // 2], negate_x=False))
    assert torch.equal(deform, mirror_uv_map(deform[..., : deform.shape[-1] // 2], negate_x=True))
    flipped = deform.flip(-1)
    assert torch.equal(flipped[:, 0], -deform[:, 0]) and torch.equal(flipped[:, 1:], deform[:, 1:])


def test_asymmetric_generator_is_not_symmetric():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.for_profile("quick", symmetric=False)).eval()
    tex, _ = g(_z(1), torch.tensor([0]))
    assert (tex - tex.flip(-1)).abs().max() > 1e-3


def test_uv_padding_wraps_along_u_and_zero_pads_along_v():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    p = uv_pad(x, 1, "circular")
    assert torch.equal(p[0, 0, 1:-1, 0], x[0, 0, :, -1]) and torch.equal(p[0, 0, 1:-1, -1], x[0, 0, :, 0])
    assert (p[0, 0, 0] == 0).all() and (p[0, 0, -1] == 0).all()
    # Mirror mode on a half map == circular padding of the mirrored full map.
    half = torch.randn(2, 3, 5, 4)
    full = torch.cat([half, half.flip(-1)], -1)
    assert torch.equal(uv_pad(half, 2, "mirror")[..., :6], uv_pad(full, 2, "circular")[..., :6])
    with pytest.raises(ValueError, match="padding mode"):
        uv_pad(x, 1, "reflect")


def test_circular_padding_really_wraps():
    torch.manual_seed(0)
    conv = UVConv2d(2, 2, 3, spectral_norm=False)
    x = torch.randn(1, 2, 8, 8)
    y = x.clone()
    y[..., 0] += 1.0  # perturb column 0
    delta = (conv(y) - conv(x)).abs()
    assert delta[..., -1].sum() > 0  # ... reaches the last column through the seam
    assert delta[..., 3:6].sum() == 0
    # The full asymmetric generator: a perturbation of the features at u = 0 reaches u = 1.
    g = Generator(GeneratorConfig.for_profile("quick", symmetric=False)).eval()
    feats = {}

    def capture(module, inputs, output):
        feats["x"] = output

    def perturb(module, inputs, output):
        out = output.clone()
        out[..., 0] += 5.0
        return out

    z, c = _z(1), torch.tensor([0])
    h = g.blocks[-1].register_forward_hook(capture)
    base, _ = g(z, c)
    h.remove()
    h = g.blocks[-1].register_forward_hook(perturb)
    moved, _ = g(z, c)
    h.remove()
    diff = (moved - base).abs()
    assert diff[..., -1].sum() > 0 and diff[..., feats["x"].shape[-1] // 2].sum() == 0


def test_class_conditioning_changes_output(quick_g):
    g = quick_g.eval()
    z = _z(1).expand(2, -1)
    tex, deform = g(z, torch.tensor([0, 7]))
    assert (tex[0] - tex[1]).abs().max() > 1e-4
    assert (deform[0] - deform[1]).abs().max() > 1e-6
    with pytest.raises(ValueError, match=r"class_id values must lie in \[0, 12\)"):
        g(_z(1), torch.tensor([12]))
    with pytest.raises(ValueError, match=r"z must have shape"):
        g(torch.zeros(1, 10), torch.tensor([0]))


def test_uv_discriminator_ignores_invisible_texels():
    torch.manual_seed(0)
    cfg = DiscriminatorConfig.for_profile("quick")
    d = UVDiscriminator(cfg).eval()
    t, s = cfg.texture_size, cfg.deform_size
    tex, deform = torch.rand(2, 3, t, t), torch.randn(2, 3, s, s) * 0.2
    vis = torch.zeros(2, 1, t, t)
    vis[..., :, : t // 2] = 1
    cls = torch.tensor([0, 5])
    out = d(tex, deform, vis, cls)
    assert out.shape == (2, 2)
    tex2 = tex.clone()
    tex2[..., :, t // 2:] = torch.rand(2, 3, t, t - t // 2)  # change only invisible texels
    assert torch.equal(d(tex2, deform, vis, cls), out)
    tex3 = tex.clone()
    tex3[..., :, : t // 2] = 1 - tex3[..., :, : t // 2]  # change visible texels
    assert not torch.allclose(d(tex3, deform, vis, cls), out)
    assert not torch.allclose(d(tex, deform + 0.3, vis, cls), out)  # the mesh branch sees the deformation
    assert not torch.allclose(d(tex, deform, vis, torch.tensor([1, 5])), out)  # class projection
    t_map, m_map = d.forward_maps(tex, deform, vis, cls)
    assert t_map.shape == (2, 1, cfg.uv_min_size, cfg.uv_min_size) and m_map.shape == t_map.shape
    with pytest.raises(ValueError, match="visibility"):
        d(tex, deform, vis[..., :8, :8], cls)


def test_patch_discriminator():
    torch.manual_seed(0)
    cfg = DiscriminatorConfig.for_profile("lite")
    d = PatchDiscriminator(cfg)
    img, mask = torch.rand(2, 3, 128, 128), torch.ones(2, 1, 128, 128)
    out = d(img, mask)
    assert out.shape == (2, 1, 14, 14)  # 70 x 70 PatchGAN on 128 px
    assert not torch.allclose(d(img, mask * 0), out)
    with pytest.raises(ValueError, match="pass mask"):
        d(img)
    d3 = PatchDiscriminator(DiscriminatorConfig.for_profile("quick", patch_use_mask=False))
    assert d3(torch.rand(1, 3, 64, 64)).shape == (1, 1, 6, 6)


def test_ema_update_math():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.for_profile("quick"))
    ema = copy.deepcopy(g)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    g(_z(4), torch.tensor([0, 1, 2, 3]))  # train mode: running stats and SN vectors move
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    ema_update(ema, g, decay=0.9)
    src = g.state_dict()
    for name, p in ema.named_parameters():
        expected = 0.9 * before[name] + 0.1 * src[name]
        assert torch.allclose(p, expected, atol=1e-6), name
    for name, b in ema.named_buffers():
        if not b.is_floating_point():
            assert torch.equal(b, src[name]), name
        elif name.endswith(("._u", "._v")):
            assert b.norm().item() == pytest.approx(1.0, abs=1e-5), name
        else:
            assert torch.allclose(b, 0.9 * before[name] + 0.1 * src[name], atol=1e-6), name
    ema_update(ema, g, decay=0.0)
    assert all(torch.equal(p, src[n]) for n, p in ema.named_parameters())
    with pytest.raises(ValueError, match="decay"):
        ema_update(ema, g, decay=1.5)
    with pytest.raises(ValueError, match="differ in structure"):
        ema_update(ema, Generator(GeneratorConfig.for_profile("lite")), 0.9)


def test_count_parameters_and_state_dict_round_trip():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.for_profile("quick"))
    n = count_parameters(g)
    assert n == sum(p.numel() for p in g.parameters()) and n > 0
    g.requires_grad_(False)
    assert count_parameters(g) == 0 and count_parameters(g, trainable_only=False) == n
    g2 = Generator(GeneratorConfig.for_profile("quick"))
    g2.load_state_dict(g.state_dict())
    z, c = _z(2), torch.tensor([0, 1])
    assert torch.equal(g.eval()(z, c)[0], g2.eval()(z, c)[0])
