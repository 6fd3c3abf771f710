"""Evaluation: IoU and Frechet distance on known cases, the multi-view protocol, texture error by visibility,
texture transfer, the FID Inception-v3 loader and its labelled fallback, and the resumable split evaluation."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from meshinv_lite.render import WeakPerspectiveCamera
from meshinv_lite.config import RenderConfig
from meshinv_lite.render import deform_vertices, make_uv_sphere
from meshinv_lite.metrics import feature_statistics, frechet_distance, frechet_distance_of, mask_iou
from meshinv_lite.render import normalize_for_protocol, protocol_azimuths
from meshinv_lite.evaluation import texture_error_by_visibility


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------------
# IoU and Frechet distance
# --------------------------------------------------------------------------------------------------


def test_mask_iou_known_cases():
    """Known IoUs; ``ignore`` leaves pixels out of both masks (guards against it being applied to one mask only:
    item 2 ignores pixels only the target covers, item 4 pixels only the prediction covers)."""
    a = torch.zeros(5, 1, 8, 8)
    b = torch.zeros(5, 1, 8, 8)
    a[0, :, :4] = 1; b[0, :, :4] = 1            # identical -> 1
    a[1, :, :4] = 1; b[1, :, 4:] = 1            # disjoint -> 0
    a[2, :, :4] = 1; b[2, :, 2:6] = 1           # overlap 2 rows of 6 -> 1/3
    # item 3: both empty -> 1 by convention
    a[4, :, :4] = 1; b[4, :, :2] = 1            # the prediction covers 2 more rows -> 2/4
    iou = mask_iou(a, b)
    assert torch.allclose(iou, torch.tensor([1.0, 0.0, 1 / 3, 1.0, 0.5]))
    assert torch.allclose(mask_iou(b, a), iou)  # symmetric
    ignore = torch.zeros(5, 1, 8, 8, dtype=torch.bool)
    ignore[2, :, 4:6] = True                    # the pixels only the target covers, left out of both -> 2/4
    ignore[1, :, 4:] = True                     # all of item 1's target left out: 0 overlap of 4 rows -> 0
    ignore[4, :, 2:4] = True                    # the pixels only the prediction covers, left out of both -> 1
    want = torch.tensor([1.0, 0.0, 0.5, 1.0, 1.0])
    assert torch.allclose(mask_iou(a, b, ignore=ignore), want)
    assert torch.allclose(mask_iou(b, a, ignore=ignore), want)  # still symmetric
    with pytest.raises(ValueError, match="ignore"):
        mask_iou(a, b, ignore=ignore[:, :, :4])


def test_frechet_identical_sets_is_zero():
    f = np.random.default_rng(0).normal(size=(200, 6))
    assert abs(frechet_distance_of(f, f)) < 1e-6


def test_frechet_closed_form_shift_and_scale():
    """N(m1, S) vs N(m2, c^2 S): |m1 - m2|^2 + (1 - c)^2 tr(S), exactly and from samples."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5))
    s = a @ a.T + 0.5 * np.eye(5)
    m1, m2, c = np.zeros(5), np.arange(5.0) / 2, 1.7
    expect = float(m2 @ m2 + (1 - c) ** 2 * np.trace(s))
    assert frechet_distance(m1, s, m2, c * c * s) == pytest.approx(expect, rel=1e-6)
    # diagonal, non-proportional: sum (sqrt(a_i) - sqrt(b_i))^2
    va, vb = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 16.0])
    assert frechet_distance(np.zeros(3), np.diag(va), np.ones(3), np.diag(vb)) == pytest.approx(
        3 + float(((np.sqrt(va) - np.sqrt(vb)) ** 2).sum()), rel=1e-6)
    # from samples: the estimate converges to the closed form
    ch = np.linalg.cholesky(s)
    x = rng.normal(size=(40000, 5)) @ ch.T + m1
    y = c * (rng.normal(size=(40000, 5)) @ ch.T) + m2
    assert frechet_distance_of(x, y) == pytest.approx(expect, rel=0.05)
    mu, sig = feature_statistics(x)
    assert mu.shape == (5,) and sig.shape == (5, 5)


def test_frechet_low_rank_route_matches_direct_formula():
    from meshinv_lite.metrics import frechet_distance_features

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(12, 40)), 0.5 + 2 * rng.normal(size=(9, 40))  # fewer samples than dimensions
    assert frechet_distance_features(a, b) == pytest.approx(frechet_distance_of(a, b), rel=1e-6)
    assert abs(frechet_distance_features(a, a)) < 1e-9
    c, d = rng.normal(size=(60, 5)), rng.normal(size=(50, 5)) + 1  # more samples: the direct formula
    assert frechet_distance_features(c, d) == pytest.approx(frechet_distance_of(c, d), rel=1e-9)


# --------------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------------


def test_protocol_azimuths():
    assert protocol_azimuths(12) == tuple(range(0, 331, 30))
    assert protocol_azimuths(10) == (0, 30, 60, 120, 150, 180, 210, 240, 300, 330)
    assert protocol_azimuths(1) == (0,)
    for k in (0, 2, 11, 13):
        with pytest.raises(ValueError):
            protocol_azimuths(k)


def test_protocol_front_and_back_are_the_dropped_views():
    """Azimuth 90 looks at the beak (+z), 270 at the tail: the views FID_10 drops."""
    from meshinv_lite.render import protocol_cameras

    cams = protocol_cameras([90, 270], elevation_deg=0.0)
    beak = torch.tensor([[0.0, 0.0, 1.0]])
    z = cams.apply(beak.expand(2, 1, 3)[:, :, :].contiguous())[:, 0, 2]  # larger z is farther
    assert z[0] < 0 < z[1]  # the beak faces the camera at 90 and looks away at 270


def test_normalize_for_protocol():
    v = torch.rand(3, 50, 3) * torch.tensor([4.0, 1.0, 2.0]) + torch.tensor([5.0, -2.0, 1.0])
    n = normalize_for_protocol(v)
    lo, hi = n.amin(1), n.amax(1)
    assert torch.allclose((lo + hi) / 2, torch.zeros(3, 3), atol=1e-5)
    assert torch.allclose(((hi - lo) / 2).amax(-1), torch.ones(3), atol=1e-5)
    # shape kept: a scaled copy of the centred input
    c = v - (v.amin(1, keepdim=True) + v.amax(1, keepdim=True)) / 2
    ratio = n / c
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), rtol=1e-4)


def _random_meshes(b, seed, size=16, amount=0.25):
    g = torch.Generator().manual_seed(seed)
    t = make_uv_sphere()
    deform = amount * torch.randn(b, 3, size, size, generator=g)
    deform = torch.nn.functional.avg_pool2d(deform, 5, 1, 2)  # smooth
    return t, deform_vertices(t, deform)


def test_texture_error_by_visibility_separates_seen_and_unseen():
    t, verts = _random_meshes(2, 0)
    cam = WeakPerspectiveCamera.from_view([30.0, 200.0], 20.0, 0.8)
    cfg = RenderConfig(image_size=48)
    from meshinv_lite.render import render_mesh

    masks = render_mesh(t, verts, cam, torch.ones(2, 3, 8, 8), cfg, soft=False).mask
    gt = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(1)), size=32,
                                         mode="bilinear", align_corners=False)  # smooth: survives resizing
    same = texture_error_by_visibility(t, verts, cam, masks, gt.clone(), gt)
    assert torch.allclose(same["seen"], torch.zeros(2)) and torch.allclose(same["unseen"], torch.zeros(2))
    assert ((same["seen_fraction"] > 0.2) & (same["seen_fraction"] < 0.7)).all()
    # what the camera sees, from first principles (not from back_project, the function under test): these
    # near-spheres are convex, so a texel is seen exactly when its face turns towards the camera
    from meshinv_lite.render import face_normals
    from meshinv_lite.pseudo_gt import uv_fragments

    face_of_texel = uv_fragments(t, 32, 1).pix_to_face[0]  # (32, 32), -1 outside the UV layout
    toward = -face_normals(cam.apply(verts), t.faces)[..., 2]  # (2, F): larger z is farther
    facing = torch.stack([toward[i][face_of_texel.clamp_min(0)] for i in range(2)])
    vis = ((facing > 0.15) & (face_of_texel >= 0))[:, None].float()  # 0.15: BackProjectionConfig.min_facing
    wrong_unseen = gt * vis + (1 - gt) * (1 - vis)  # exact where seen, inverted where not
    e = texture_error_by_visibility(t, verts, cam, masks, wrong_unseen, gt)
    assert (e["seen"] < 0.01).all()  # texels along the silhouette may disagree by a hair
    assert (e["unseen"] > 0.1).all()
    # a few facing texels project just outside the binarized mask at the silhouette: seen is a little less
    facing_fraction = vis.flatten(1).sum(1) / (face_of_texel >= 0).sum()
    assert ((e["seen_fraction"] <= facing_fraction + 0.01) & (e["seen_fraction"] > facing_fraction - 0.08)).all()
    # a prediction at another resolution is resized, not rejected
    e2 = texture_error_by_visibility(t, verts, cam, masks, torch.nn.functional.interpolate(gt, size=64, mode="bilinear"), gt)
    assert (e2["seen"] < 0.02).all()


# --------------------------------------------------------------------------------------------------
# Texture transfer
# --------------------------------------------------------------------------------------------------


def test_texture_swap_keeps_geometry_and_moves_texture():
    from meshinv_lite.render import render_mesh
    from meshinv_lite.inversion import swap_textures, transfer_grid, transfer_views

    t, verts = _random_meshes(2, 3, amount=0.6)
    g = torch.Generator().manual_seed(4)
    tex = torch.stack([torch.rand(3, 16, 16, generator=g) * 0.5, 0.5 + torch.rand(3, 16, 16, generator=g) * 0.5])
    cfg = RenderConfig(image_size=40)
    views = transfer_views()
    grid = transfer_grid(t, verts, tex, views, cfg, background=None)  # (S, T, V, 3, H, W)
    assert grid.shape == (2, 2, 2, 3, 40, 40)
    direct = render_mesh(t, normalize_for_protocol(verts[:1]).expand(2, -1, -1), views, tex[1:2].expand(2, -1, -1, -1),
                         cfg, soft=False).image
    assert torch.allclose(grid[0, 1], direct, atol=1e-6)  # shape A with texture B == A's vertices + B's map
    assert (grid[0, 1] - grid[0, 0]).abs().mean() > 0.1   # ... and not A's own look
    sil = (grid.sum(3) > 0)
    assert torch.equal(sil[0, 0], sil[0, 1]) and torch.equal(sil[1, 0], sil[1, 1])  # geometry stays per row
    assert not torch.equal(sil[0, 0], sil[1, 0])                                      # rows differ in shape
    assert torch.equal(swap_textures(tex, [1, 0]), tex.flip(0))
    with pytest.raises(ValueError):
        swap_textures(tex, [0, 2])


# --------------------------------------------------------------------------------------------------
# Inception-v3 and the labelled fallback
# --------------------------------------------------------------------------------------------------


def _fake_inception_file(path):
    from meshinv_lite.features import FIDInceptionV3

    torch.manual_seed(0)
    sd = {k: v for k, v in FIDInceptionV3().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, path)
    return sd


def test_inception_loads_strictly_and_fails_clearly(tmp_path):
    from meshinv_lite.features import FIDInceptionV3, fid_inception_v3

    good = tmp_path / "pt_inception.pth"
    sd = _fake_inception_file(good)
    assert len(sd) == 472  # pytorch-fid's file: 566 keys with the 94 num_batches_tracked counters
    net = fid_inception_v3(good)
    assert not net.is_fallback and "pytorch-fid weights" in net.name
    f = net(torch.rand(1, 3, 40, 40))
    assert f.shape == (1, 2048) and torch.isfinite(f).all()
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt.pth"):
        fid_inception_v3(bad)
    partial = dict(sd)
    partial.pop("Mixed_7c.branch_pool.conv.weight")
    partial["AuxLogits.fc.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="missing keys.*Mixed_7c.branch_pool.conv.weight.*unexpected keys.*AuxLogits"):
        fid_inception_v3(tmp_path / "partial.pth")
    shaped = dict(sd)
    shaped["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(shaped, tmp_path / "shaped.pth")
    with pytest.raises(ValueError, match="fc.weight"):
        fid_inception_v3(tmp_path / "shaped.pth")
    with pytest.raises(FileNotFoundError):
        fid_inception_v3(tmp_path / "absent.pth")
    assert isinstance(net, FIDInceptionV3)


def test_fid_extractor_labelled_fallback_without_weights(tmp_path, monkeypatch):
    from meshinv_lite import features
    from meshinv_lite.features import load_fid_extractor

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    features.clear_extractor_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fb = load_fid_extractor()
    assert fb.is_fallback and "NOT INCEPTION" in fb.name and "not FID" in fb.name
    with pytest.raises(FileNotFoundError, match="pt_inception"):
        load_fid_extractor(allow_fallback=False)
    # the same file in the hub cache is found and used
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    _fake_inception_file(tmp_path / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth")
    real = load_fid_extractor()
    assert not real.is_fallback and real.out_channels == 2048
    # present but broken: an error, never a silent fallback
    (tmp_path / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"not a torch file")
    features.clear_extractor_cache()
    with pytest.raises(ValueError, match="pt_inception"):
        load_fid_extractor()
    features.clear_extractor_cache()


def test_fid_keys_are_labelled(tmp_path):
    """fid_figures names its figures fid_k only with Inception; with the fallback no key starts with 'fid'."""
    from meshinv_lite.evaluation import fid_figures
    from meshinv_lite.features import fid_fallback

    t, verts = _random_meshes(3, 5)
    g = torch.Generator().manual_seed(6)
    recs = {"texture": torch.rand(3, 3, 16, 16, generator=g), "deformation": torch.zeros(3, 3, 16, 16),
            "camera": WeakPerspectiveCamera.from_view([0.0, 90.0, 200.0], 10.0, 0.8).as_tensor()}
    cfg = RenderConfig(image_size=32)
    inputs, masks = torch.rand(3, 3, 32, 32, generator=g), torch.ones(3, 1, 32, 32)
    reference = torch.rand(4, 3, 32, 32, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fb = fid_fallback()
    m = fid_figures(t, recs, inputs, masks, reference, cfg, fb, views=(1, 10, 12))
    assert not [k for k in m if k.lower().startswith("fid")]
    assert {"fd_fallback_1", "fd_fallback_10", "fd_fallback_12"} <= set(m) and m["fd_is_fallback"] is True
    assert all(math.isfinite(m[k]) and m[k] >= -1e-6 for k in ("fd_fallback_1", "fd_fallback_10", "fd_fallback_12"))
    assert m["fd_10_num_renders"] == 30 and m["fd_12_num_renders"] == 36
    # a real (non-fallback) extractor's figures are FID; a small stand-in keeps the test fast (Inception's own
    # loading and forward pass are tested above)
    from meshinv_lite.features import FeatureExtractor

    class Pooled(FeatureExtractor):
        def __init__(self):
            super().__init__("stand-in for inception", is_fallback=False, out_channels=3, stride=0)
            self.w = torch.nn.Parameter(torch.eye(3))

        def forward(self, x):
            return x.mean((2, 3)) @ self.w

    m = fid_figures(t, recs, inputs, masks, reference, cfg, Pooled(), views=(1, 10, 12))
    assert {"fid_1", "fid_10", "fid_12"} <= set(m) and m["fd_is_fallback"] is False
    assert not [k for k in m if k.startswith("fd_fallback")]


def test_results_table_labels_the_fallback():
    from meshinv_lite.evaluation import results_table

    fb = results_table({"iou": 0.6, "fd_fallback_1": 0.01, "fd_fallback_10": 0.02, "fd_fallback_12": 0.03,
                        "fd_is_fallback": True, "fd_feature_extractor": "FALLBACK X", "num_images": 4, "split": "test"})
    assert "FID_1" not in fb and "FD (fallback)_1" in fb and "NOT FID" in fb and "FALLBACK X" in fb
    assert "0.708" in fb and "38.6" in fb and "56.6" in fb and "CUB" in fb
    real = results_table({"iou": 0.6, "fid_1": 50.0, "fid_10": 60.0, "fid_12": 70.0, "fd_is_fallback": False,
                          "fd_feature_extractor": "inception"})
    assert "FID_1" in real and "50.0" in real and "NOT FID" not in real


# --------------------------------------------------------------------------------------------------
# evaluate_split: batches, CSV, resume
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from meshinv_lite.data import SynthBirdsConfig, build_synthbirds

    root = tmp_path_factory.mktemp("tiny_birds")
    cfg = SynthBirdsConfig.for_profile("quick", image_size=32, texture_size=16, sizes={"test": 5, "val": 2, "test_unseen": 3,
                                                                                         "test_hard": 4},
                                       chunk=8)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_synthbirds(root, cfg, splits=("test", "val", "test_unseen", "test_hard"), progress=False, workers=0)
    finally:
        torch.set_num_threads(before)
    return root


def _tiny_setup():
    from meshinv_lite.inversion import InversionConfig, InversionStage
    from meshinv_lite.gan import Generator, GeneratorConfig

    torch.manual_seed(0)
    G = Generator(GeneratorConfig.for_profile("quick", num_classes=12)).eval()
    cfg = InversionConfig.for_profile("quick", num_points=128, init_candidates=2, init_batch=4,
                                      stages=(InversionStage(2, 0.05, 1e-3),), render=RenderConfig(image_size=32),
                                      texture_losses=(("chamfer", 1.0),))
    return G, cfg


def test_evaluate_split_resumes_from_csv(tiny_dataset, tmp_path, monkeypatch):
    import meshinv_lite.evaluation.evaluate as ev
    import meshinv_lite.inversion.search as inv

    G, cfg = _tiny_setup()
    calls = []
    real_invert_batch = inv.invert_batch

    def counting(generator, batch, *a, **k):
        calls.append(list(batch["name"]))
        return real_invert_batch(generator, batch, *a, **k)

    monkeypatch.setattr(inv, "invert_batch", counting)
    out = tmp_path / "eval"
    m1 = ev.evaluate_split(G, tiny_dataset, "test", cfg, out, limit=3, batch_size=2, progress=False, views=())
    assert m1["newly_inverted"] == 3 and m1["num_images"] == 3 and calls == [["000000", "000001"], ["000002"]]
    rows = ev.read_rows(out / ev.CSV_NAME)
    assert [r["name"] for r in rows] == ["000000", "000001", "000002"]
    assert {"iou", "psnr_novel", "chamfer_3d", "tex_err_seen", "tex_err_unseen", "psnr_az180"} <= set(rows[0])
    assert all(0 <= r["iou"] <= 1 for r in rows)
    # no twig in test: the IoU with the twig's pixels left out is the IoU (the evaluation renders it again)
    assert all(r["iou_occluder_ignored"] == pytest.approx(r["iou"], abs=1e-5) for r in rows)
    csv_before = (out / ev.CSV_NAME).read_bytes()

    calls.clear()
    m2 = ev.evaluate_split(G, tiny_dataset, "test", cfg, out, limit=3, batch_size=2, progress=False, views=())
    assert calls == [] and m2["newly_inverted"] == 0  # nothing new to invert
    assert (out / ev.CSV_NAME).read_bytes() == csv_before
    assert m2["iou"] == pytest.approx(m1["iou"])
    # in-domain realism against each image's own ground truth, in the evaluation network's features
    assert "never used by a loss" in m1["realism_network"]
    assert all(math.isfinite(m1[f"fd_in_domain_{k}"]) and m1[f"fd_in_domain_{k}"] >= 0 for k in (1, 10, 12))
    assert 0 < m1["perceptual_novel"] < 1 and m1["sharpness_novel"] > 0

    # an interrupted batch (its row never written) is redone, and only it; a larger limit adds the rest
    ev.write_rows(out / ev.CSV_NAME, rows[:2])
    m3 = ev.evaluate_split(G, tiny_dataset, "test", cfg, out, limit=4, batch_size=2, progress=False, views=())
    assert calls == [["000002", "000003"]] and m3["newly_inverted"] == 2 and m3["num_images"] == 4
    recs = ev.load_reconstructions(out, ["000000", "000003"])
    assert recs["texture"].shape == (2, 3, 64, 64) and recs["camera"].shape == (2, 7)

    # other settings: refuse to mix, unless forced
    cfg2 = cfg.with_losses("l1")
    with pytest.raises(ValueError, match="other settings"):
        ev.evaluate_split(G, tiny_dataset, "test", cfg2, out, limit=1, progress=False, views=())
    calls.clear()
    m4 = ev.evaluate_split(G, tiny_dataset, "test", cfg2, out, limit=1, progress=False, views=(), force=True)
    assert m4["newly_inverted"] == 1 and len(ev.read_rows(out / ev.CSV_NAME)) == 1


def test_evaluate_split_on_unseen_species_writes_the_chosen_class(tiny_dataset, tmp_path, monkeypatch):
    """test_unseen has no class (-1): each image is inverted with the class its initialisation chose, which the
    CSV, the saved reconstructions and metrics.json record beside the held-out species."""
    import meshinv_lite.evaluation.evaluate as ev
    from meshinv_lite.data import SPECIES_NAMES
    from meshinv_lite.data.species import UNSEEN_SPECIES_NAMES

    G, cfg = _tiny_setup()
    out = tmp_path / "unseen"
    m = ev.evaluate_split(G, tiny_dataset, "test_unseen", cfg, out, batch_size=2, progress=False, views=())
    rows = ev.read_rows(out / ev.CSV_NAME)
    assert m["split"] == "test_unseen" and m["num_images"] == len(rows) == 3
    assert [r["class_id"] for r in rows] == [-1] * 3
    assert [r["species"] for r in rows] == list(UNSEEN_SPECIES_NAMES)
    assert all(0 <= r["class_chosen"] < 12 and r["class_chosen_name"] == SPECIES_NAMES[int(r["class_chosen"])] for r in rows)
    recs = ev.load_reconstructions(out, [r["name"] for r in rows])
    assert recs["class_id"].tolist() == [int(r["class_chosen"]) for r in rows]
    assert {"iou", "psnr_novel", "chamfer_3d"} <= set(rows[0]) and "class_chosen" not in m
    assert m["class_choice"] == {s: {r["class_chosen_name"]: 1} for s, r in zip(UNSEEN_SPECIES_NAMES, rows)}
    assert m["by_group"]["species=toucan"]["num_images"] == 1

    # a split with classes: the given class is the one inverted with
    m_test = ev.evaluate_split(G, tiny_dataset, "test", cfg, tmp_path / "test", limit=2, batch_size=2, progress=False,
                               views=())
    test_rows = ev.read_rows(tmp_path / "test" / ev.CSV_NAME)
    assert [r["class_chosen"] for r in test_rows] == [r["class_id"] for r in test_rows] and "class_choice" not in m_test
    assert "choose_class" not in ev.read_json(tmp_path / "test" / ev.SIGNATURE_NAME)  # older results stay valid
    # ... unless the classes are hidden on purpose: the true class stays in class_id, the chosen one beside it
    import meshinv_lite.inversion.search as inv

    seen, real = [], inv.invert_batch
    monkeypatch.setattr(inv, "invert_batch", lambda G_, b, *a, **k: seen.append(b["class_id"].tolist()) or real(G_, b, *a, **k))
    m_hid = ev.evaluate_split(G, tiny_dataset, "test", cfg, tmp_path / "hidden", limit=2, batch_size=2, progress=False,
                              views=(), choose_class=True)
    hid_rows = ev.read_rows(tmp_path / "hidden" / ev.CSV_NAME)
    assert seen == [[-1, -1]] and [r["class_id"] for r in hid_rows] == [r["class_id"] for r in test_rows]
    assert m_hid["class_accuracy"] == np.mean([r["class_chosen"] == r["class_id"] for r in hid_rows])


def test_iou_with_the_twig_ignored_scores_the_true_bird_whole(tiny_dataset):
    """The input mask of an occluded image has the twig cut out: the true bird, rendered whole, loses plain IoU
    there, and gets it back (1) once the twig's pixels are left out of both masks; where there is no twig the two
    IoUs are the same."""
    from types import SimpleNamespace

    from meshinv_lite.data import ReconstructionDataset
    from meshinv_lite.evaluation import iou_occluder_ignored
    from meshinv_lite.metrics import mask_iou
    from meshinv_lite.render import render_mesh

    ds = ReconstructionDataset(tiny_dataset, "test_hard")
    b = ds.batch(range(len(ds)))
    occluded = b["occluded"].bool()
    assert occluded.any(), "the fixture needs an occluded test_hard image"
    template = make_uv_sphere()
    cam = WeakPerspectiveCamera.from_tensor(b["camera"])
    truth = SimpleNamespace(vertices=deform_vertices(template, b["deform_map"]), camera=cam, texture=b["texture_map"])
    render_cfg = RenderConfig(image_size=b["mask"].shape[-1])
    ignored = iou_occluder_ignored(truth, b["mask"], torch.as_tensor(ds.data.annotations["occluder"]), template, render_cfg)
    plain = mask_iou(render_mesh(template, truth.vertices, cam, truth.texture, render_cfg, soft=False).mask, b["mask"])
    assert torch.all(ignored > 0.97)
    assert torch.all(plain[occluded] < ignored[occluded] - 0.01)
    assert torch.allclose(plain[~occluded], ignored[~occluded])
    nan_twigs = torch.full((len(ds), 5), float("nan"))  # no twig anywhere: the plain IoU
    assert torch.allclose(iou_occluder_ignored(truth, b["mask"], nan_twigs, template, render_cfg), plain)


def test_an_imported_generator_is_not_scored_against_our_ground_truth(tiny_dataset, cub_and_authors, tmp_path):
    """The authors' generator deforms its own template: against SynthBirds' true maps (offsets of our sphere) its 3D
    figures would compare different meshes, so evaluate_split refuses before inverting anything (on CUB, without 3D
    ground truth, the same generator is evaluated: tests/test_cub_paper_evaluation.py)."""
    import meshinv_lite.evaluation.evaluate as ev
    from meshinv_lite.gan.imported import load_imported_generator
    from meshinv_lite.inversion import InversionConfig

    G, _ = load_imported_generator(cub_and_authors[1])
    cfg = InversionConfig.for_profile("quick")
    with pytest.raises(ValueError, match="deforms another mesh.*dataset without 3D ground truth"):
        ev.evaluate_split(G, tiny_dataset, "test", cfg, tmp_path / "out", limit=1, progress=False, views=())
    assert not (tmp_path / "out" / "per_image.csv").exists()
    # this package's prior on the same images passes the check (its template is the dataset's sphere)
    ev.check_template_fits_ground_truth(_tiny_setup()[0].template(), True, tiny_dataset)
