"""Realism metrics (FD in-domain, perceptual distance, sharpness), camera-error scaling and the ablation's statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from meshinv_lite.evaluation import realism
from meshinv_lite.evaluation import bootstrap_mean, fd_paired, paired, summarize, cell_name
from meshinv_lite.render import WeakPerspectiveCamera, scale_camera_error
from meshinv_lite.features import DomainFeatureNet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return DomainFeatureNet().freeze()


def _birdlike(n: int, seed: int, stripes: bool = True):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    masks = ((xx / 0.7) ** 2 + (yy / 0.45) ** 2 < 1).float()[None, None].repeat(n, 1, 1, 1)
    base = torch.rand(n, 3, 1, 1, generator=g)
    img = base.expand(n, 3, 64, 64).clone()
    if stripes:
        img = img * (0.6 + 0.4 * torch.sin(xx * 25 + torch.rand(n, 1, 1, 1, generator=g) * 6)).clamp(0, 1)
    return img.clamp(0, 1) * masks, masks


def test_perceptual_distance_is_zero_for_identical_views_and_grows(net):
    img, m = _birdlike(3, 0)
    assert torch.allclose(realism.perceptual_distance(net, img, m, img, m), torch.zeros(3), atol=1e-5)
    other, _ = _birdlike(3, 1)
    d = realism.perceptual_distance(net, other, m, img, m)
    assert (d > 1e-3).all()


def test_sharpness_sees_blur(net):
    img, m = _birdlike(2, 0)
    blurred = F.avg_pool2d(img, 5, 1, 2) * m
    r = realism.sharpness_ratio(blurred, m, img, m)
    assert (r < 0.5).all()
    assert torch.allclose(realism.sharpness_ratio(img, m, img, m), torch.ones(2))


def test_fd_in_domain_separates_sets(net):
    a, ma = _birdlike(12, 0)
    b, mb = _birdlike(12, 1)
    flat, mf = _birdlike(12, 2, stripes=False)
    same = realism.fd_in_domain(net, a, ma, b, mb)
    different = realism.fd_in_domain(net, a, ma, flat, mf)
    assert realism.fd_in_domain(net, a, ma, a, ma) == pytest.approx(0.0, abs=1e-6)
    assert different > 1.3 * same  # flat colours are farther from striped birds than other striped birds


def test_fd_from_embeddings_views():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(5, 13, 8))
    out = realism.fd_from_embeddings(e, e + 0.0)
    assert set(out) == {"fd_in_domain_1", "fd_in_domain_10", "fd_in_domain_12"}
    assert all(abs(v) < 1e-8 for v in out.values())
    shifted = e.copy()
    shifted[:, 0] += 1.0  # only the input view differs
    out = realism.fd_from_embeddings(shifted, e)
    assert out["fd_in_domain_1"] == pytest.approx(8.0, rel=1e-6) and out["fd_in_domain_12"] < 1e-8
    with pytest.raises(ValueError, match="13"):
        realism.fd_from_embeddings(e[:, :12], e[:, :12])


def test_scale_camera_error():
    exact = WeakPerspectiveCamera.from_view([10.0, 200.0], [5.0, 30.0], [0.8, 0.7], [[0.0, 0.0], [0.1, -0.1]])
    dq = torch.tensor([[math.cos(0.05), math.sin(0.05), 0.0, 0.0]] * 2)
    from meshinv_lite.render import quaternion_multiply, rotation_angle_deg

    noisy = WeakPerspectiveCamera(exact.scale * 1.1, exact.translation + 0.02, quaternion_multiply(dq, exact.rotation))
    assert torch.allclose(scale_camera_error(exact, noisy, 1.0).as_tensor(), noisy.as_tensor(), atol=1e-5)
    assert torch.allclose(scale_camera_error(exact, noisy, 0.0).as_tensor(), exact.as_tensor(), atol=1e-5)
    two = scale_camera_error(exact, noisy, 2.0)
    angle = torch.deg2rad(rotation_angle_deg(two.rotation, exact.rotation))
    assert torch.allclose(angle, torch.full((2,), 0.2), atol=1e-4)  # 2 x 0.1 rad
    assert torch.allclose(two.scale, exact.scale * 1.21) and torch.allclose(two.translation, exact.translation + 0.04)


def test_paired_statistics():
    base = np.arange(10.0)
    better = base + np.array([1, 1, 1, 1, 1, 1, 1, 1, -1, -1.0])
    p = paired(better, base, sign=1)
    assert p["wins"] == 8 and p["n"] == 10 and p["diff"] == pytest.approx(0.6)
    assert p["lo"] < 0.6 < p["hi"]
    assert paired(better, base, sign=-1)["wins"] == 2
    m, lo, hi = bootstrap_mean(np.ones(5))
    assert m == lo == hi == 1.0


def test_summarize_and_fd_paired():
    rng = np.random.default_rng(0)
    n = 6
    true = rng.normal(size=(n, 13, 4))

    def cell(offset):
        c = {k: rng.normal(size=n) for k in ("iou", "psnr_novel", "ssim_novel", "perceptual", "sharpness", "chamfer_3d",
                                             "f_score", "folded")}
        c.update(embed_pred=true + offset, embed_true=true, seconds=np.asarray(6.0))
        return c

    cells = {cell_name("test", 1.0, "ours"): cell(0.0), cell_name("test", 1.0, "l1"): cell(1.0)}
    s = summarize(cells, [("test", 1.0)], ["ours", "l1"], fd_rounds=20)
    e = s["test x1"]["l1"]
    assert e["n"] == n and "vs_ours" in e["psnr_novel"] and e["seconds_per_image"] == 1.0
    assert e["fd_in_domain_12"]["vs_ours"]["diff"] > 0  # offset embeddings are farther from the truth
    # a figure only the variant's cell has (IoU with the twig ignored, added after ours was stored): its mean, no pair
    cells[cell_name("test", 1.0, "l1")]["iou_occluder_ignored"] = np.full(n, 0.9)
    e = summarize(cells, [("test", 1.0)], ["ours", "l1"], fd_rounds=20)["test x1"]
    assert e["l1"]["iou_occluder_ignored"]["mean"] == pytest.approx(0.9) and "vs_ours" not in e["l1"]["iou_occluder_ignored"]
    assert "iou_occluder_ignored" not in e["ours"] and "vs_ours" in e["l1"]["iou"]
    fd = fd_paired(true + 1.0, true, true, rounds=20)
    assert fd["fd_in_domain_1"]["lo"] > 0


def test_a_stored_ablation_cell_is_reused_only_with_its_own_settings(tmp_path):
    """run_cell reads a cell back (read_cell) instead of inverting when its signature matches; with other settings
    it inverts again (here a stand-in dataset without images, so starting to recompute fails loudly)."""
    import json
    from dataclasses import replace
    from types import SimpleNamespace

    from meshinv_lite.evaluation import VARIANTS, read_cell, run_cell, variant_config
    from meshinv_lite.inversion import InversionConfig
    from meshinv_lite.io import atomic_savez

    cfg = InversionConfig.for_profile("quick", mask_loss="iou", features="synthbirds_features")
    signature = json.dumps({"variant": "iou_cell", "noise": 1.0, "indices": [0, 1], "seed": 0, "config": cfg.to_dict(),
                            "split": "test", "eval_net": "net"}, sort_keys=True, default=str)
    path = tmp_path / "cell.npz"
    atomic_savez(path, signature=np.asarray(signature), iou=np.array([0.5, 0.75]))
    arrays, sig = read_cell(path)
    assert sig == signature and set(arrays) == {"iou"}
    dataset, net = SimpleNamespace(split="test"), SimpleNamespace(name="net")
    # the config is run as given: its mask loss is not replaced by a loss variant's (it once silently was)
    got = run_cell(None, dataset, [0, 1], "iou_cell", 1.0, cfg, net, path)
    assert set(got) == {"iou"} and np.array_equal(got["iou"], [0.5, 0.75])
    with pytest.raises(AttributeError, match="batch"):  # other settings: it starts inverting (this dataset has no images)
        run_cell(None, dataset, [0, 1], "iou_cell", 1.0, replace(cfg, stop_tol=0.01), net, path)
    with pytest.raises(AttributeError, match="batch"):  # a loss variant brings its own mask loss: other settings
        run_cell(None, dataset, [0, 1], "iou_cell", 1.0, variant_config(cfg, "ours"), net, path)
    made = variant_config(cfg, "ours_iou_mask")
    assert made.mask_loss == "iou" and made.texture_losses == VARIANTS["ours_iou_mask"].texture_losses
    assert variant_config(cfg, "l1").mask_loss == "chamfer" and variant_config(cfg, "l1").stop_tol == cfg.stop_tol
