import pytest
import torch

from meshinv_lite.camera import WeakPerspectiveCamera
from meshinv_lite.invert import InversionConfig, InversionStage, invert
from meshinv_lite.mesh import deform_vertices, make_uv_sphere
from meshinv_lite.models import Generator, GeneratorConfig
from meshinv_lite.render import render_mesh


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig.for_profile("quick")).eval()
    t = make_uv_sphere()
    cfg = InversionConfig.for_profile(
        "quick", texture_losses=(("chamfer", 1.0),), num_points=256, init_candidates=4, init_batch=4,
        stages=(InversionStage(8, 0.1, 1e-2), InversionStage(8, 0.05, 5e-3)))
    z_true = torch.randn(2, 64, generator=torch.Generator().manual_seed(5))
    cls = torch.tensor([1, 4])
    cams = WeakPerspectiveCamera.from_view([30.0, 200.0], [15.0, 5.0], 0.7)
    with torch.no_grad():
        tex, d = G(z_true, cls)
        out = render_mesh(t, deform_vertices(t, d), cams, tex, cfg.render, soft=False)
    return G, t, cfg, out.image, out.mask, cams, cls


def test_inversion_reduces_the_loss_and_leaves_the_generator_alone(setup):
    G, t, cfg, images, masks, cams, cls = setup
    before = {k: v.clone() for k, v in G.state_dict().items()}
    flags = [p.requires_grad for p in G.parameters()]
    rec = invert(G, images, masks, cams, cls, cfg, template=t, seed=1)
    assert len(rec.history["total"]) == cfg.total_steps == 16
    assert (rec.terms["total"] < rec.init_loss).all()
    assert rec.history["total"][-1] < rec.history["total"][0]
    assert rec.iou.shape == (2,) and (rec.iou > 0.5).all()
    assert rec.texture.shape == (2, 3, 64, 64) and rec.vertices.shape == (2, t.num_vertices, 3)
    assert not torch.equal(rec.camera.as_tensor(), cams.as_tensor())  # refined
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k])
    assert [p.requires_grad for p in G.parameters()] == flags
    assert rec.feature_extractor == ""  # no feature loss in this config


def test_camera_frozen_when_not_refined(setup):
    G, t, cfg, images, masks, cams, cls = setup
    from dataclasses import replace

    rec = invert(G, images, masks, cams, cls, replace(cfg, refine_camera=False, stages=(InversionStage(2, 0.1, 0.0),)), template=t)
    assert torch.allclose(rec.camera.as_tensor(), cams.as_tensor(), atol=1e-6)


@pytest.mark.parametrize("texture,mask", [("l1", "iou"), ("l2", "l1"), ("chamfer", "chamfer")])
def test_ablation_losses_run(setup, texture, mask):
    G, t, cfg, images, masks, cams, cls = setup
    from dataclasses import replace

    c = replace(cfg.with_losses(texture, mask), stages=(InversionStage(2, 0.1, 1e-2),))
    rec = invert(G, images, masks, cams, cls, c, template=t)
    assert f"mask_{mask}" in rec.terms and texture in rec.terms
    assert torch.isfinite(rec.terms["total"]).all()


def test_feature_chamfer_records_the_extractor(setup):
    G, t, cfg, images, masks, cams, cls = setup
    from dataclasses import replace

    c = replace(cfg, texture_losses=(("chamfer", 1.0), ("chamfer_feature", 0.04)), stages=(InversionStage(1, 0.1, 1e-2),))
    rec = invert(G, images[:1], masks[:1], cams[:1], cls[:1], c, template=t)
    assert rec.feature_extractor and "chamfer_feature" in rec.terms


def test_bad_inputs(setup):
    G, t, cfg, images, masks, cams, cls = setup
    with pytest.raises(ValueError, match="sizes differ"):
        invert(G, images, masks[..., :32, :32], cams, cls, cfg, template=t)
    empty = masks.clone()
    empty[1] = 0
    with pytest.raises(ValueError, match=r"empty mask for image\(s\) \[1\]"):
        invert(G, images, empty, cams, cls, cfg, template=t)
    with pytest.raises(ValueError, match="NaN"):
        invert(G, images * float("nan"), masks, cams, cls, cfg, template=t)
    with pytest.raises(ValueError, match="batch"):
        invert(G, images, masks, cams[:1], cls, cfg, template=t)
    bad = cams.as_tensor().clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        WeakPerspectiveCamera.from_tensor(bad)  # a NaN camera is refused before it reaches invert
    with pytest.raises(ValueError, match="unknown texture loss"):
        invert(G, images, masks, cams, cls, cfg.with_losses("l3"), template=t)
