"""The encoder stage (issue 32): texture flow geometry, the shipped file's refusals, and bands a broken encoder fails.

The bands are measured on SynthBirds birds generated here with a seed no split uses (birds the encoder never saw).
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from meshinv_lite.config import RenderConfig
from meshinv_lite.data.synthbirds import SynthBirdsConfig, default_template, fit_cameras, generate_batch
from meshinv_lite.encoder import (EncoderError, ImageEncoder, SegmentationNet, flow_targets, load_shipped_encoder,
                                  sample_flow, save_encoder)
from meshinv_lite.encoder.network import EncoderConfig
from meshinv_lite.encoder.training import EncoderRecipe, camera_labels
from meshinv_lite.metrics import mask_iou
from meshinv_lite.render import render_mesh
from meshinv_lite.render.mesh import deform_vertices


@pytest.fixture(scope="module")
def shipped():
    return load_shipped_encoder()


@pytest.fixture(scope="module")
def prior():
    from meshinv_lite.gan import load_shipped_prior

    return load_shipped_prior()[0]


@pytest.fixture(scope="module")
def fresh_birds():
    """24 SynthBirds birds (two of each species) the encoder never saw: lite's 128 px framing, seed 4242."""
    cls = torch.arange(12).repeat(2)
    return generate_batch(cls, torch.Generator().manual_seed(4242), SynthBirdsConfig(image_size=128))


def test_flow_targets_sample_the_texture_back_from_a_render(prior):
    """Sampling a render where each texel projects gives back the texture on the visible half; a flow with y not
    flipped (grid_sample's rows run down, the camera's y up) does not."""
    t = default_template()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        tex, d = prior(torch.randn(4, prior.config.latent_dim, generator=g), torch.arange(4))
        v = deform_vertices(t, d)
        cam = fit_cameras(v, g, SynthBirdsConfig())
        img = render_mesh(t, v, cam, tex, RenderConfig(image_size=128), soft=False).image
        flow = flow_targets(d, cam, t, 32)
        err = (sample_flow(img, flow, tex.shape[-1]) - tex).abs().mean(1)
        wrong = (sample_flow(img, flow * torch.tensor([1.0, -1.0])[None, :, None, None], tex.shape[-1]) - tex).abs().mean(1)
    assert flow.shape == (4, 2, 32, 32) and flow.abs().max() < 1
    seen_share = float((err < 0.05).float().mean())
    assert 0.4 < seen_share < 0.8            # about half the texels face the camera
    assert seen_share > 2 * float((wrong < 0.05).float().mean())


def test_shipped_encoder_is_small_and_recorded(shipped):
    enc, seg, info = shipped
    assert info["rebuild_command"] == "python -m meshinv_lite.cli build-encoder"
    assert info["file_bytes"] <= 10 * 2 ** 20 and info["complete"]
    assert isinstance(enc, ImageEncoder) and isinstance(seg, SegmentationNet) and not enc.training


def test_damaged_foreign_and_crafted_files_are_refused(tmp_path, shipped):
    enc, seg, _ = shipped
    path = tmp_path / "enc.pt"
    save_encoder(path, enc, seg, EncoderRecipe())
    assert load_shipped_encoder(path=path)[0] is not None
    data = bytearray(path.read_bytes())
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(EncoderError, match="damaged.*build-encoder"):
        load_shipped_encoder(path=bad)
    other = tmp_path / "other.pt"
    save_encoder(other, ImageEncoder(EncoderConfig(widths=(16, 32, 64, 96))), seg, EncoderRecipe())
    with pytest.raises(EncoderError, match="another encoder configuration.*widths"):
        load_shipped_encoder(path=other)
    state = torch.load(path, weights_only=True)
    key = next(k for k in state["state_dict"] if k.endswith("weight"))
    state["state_dict"][key] = state["state_dict"][key] + 1
    torch.save(state, tmp_path / "tampered.pt")
    with pytest.raises(EncoderError, match="checksum"):
        load_shipped_encoder(path=tmp_path / "tampered.pt")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"format": "meshinv-lite-encoder", "x": Payload()}, tmp_path / "crafted.pt")
    with pytest.raises(EncoderError, match="crafted.pt"):
        load_shipped_encoder(path=tmp_path / "crafted.pt")
    assert not marker.exists()


def test_species_and_camera_on_birds_it_never_saw(shipped, fresh_birds):
    """Bands a broken encoder fails: species, azimuth (the front/back flip is the hard part) and elevation."""
    enc, _, _ = shipped
    b = fresh_birds
    with torch.no_grad():
        out = enc(b.images, b.masks)
    lab = camera_labels(b.camera.as_tensor())
    az_err = ((out.azimuths(1)[:, 0] - lab["azimuth"] + 180) % 360 - 180).abs()
    assert float((out.class_id == b.class_id).float().mean()) >= 0.9
    assert float(az_err.median()) <= 15
    assert float((az_err > 90).float().mean()) <= 0.2
    assert float((out.elevation - lab["elevation"]).abs().median()) <= 10
    assert float((out.log_scale - lab["log_scale"]).abs().median()) <= 0.1


def test_segmentation_finds_the_birds_it_never_saw_and_no_bird_where_there_is_none(shipped, fresh_birds):
    from meshinv_lite.data.synthbirds import backgrounds
    from meshinv_lite.photo import PhotoError, estimate_mask

    _, seg, _ = shipped
    with torch.no_grad():
        masks = (seg(fresh_birds.images) > 0).float()
    iou = mask_iou(masks, fresh_birds.masks)
    assert float(iou.mean()) >= 0.9 and float(iou.min()) >= 0.7
    two_pass = torch.stack([estimate_mask(fresh_birds.images[i], seg).mask for i in range(0, 24, 6)])
    assert float(mask_iou(two_pass, fresh_birds.masks[::6]).mean()) >= 0.9
    # a segmenter that saw only images with a bird finds one everywhere (it did, at 0.96 confidence)
    for image in [torch.full((3, 96, 128), 0.5), *backgrounds(2, 128, torch.Generator().manual_seed(7))]:
        with pytest.raises(PhotoError, match="found no bird.*--box"):
            estimate_mask(image, seg)
    with pytest.raises(PhotoError, match="not a box inside"):
        estimate_mask(fresh_birds.images[0], seg, box=(10, 10, 500, 60))


def test_regression_variants_and_the_encoder_start(prior, shipped, fresh_birds):
    """Texture flow keeps the encoder's shape and takes its texture from the photo where the flow head says; an inversion
    started from the encoder with the class unknown scores only the encoder's likeliest classes, and picks the right one."""
    from meshinv_lite.inversion import InversionConfig, invert, regress

    enc = shipped[0]
    b = fresh_birds
    idx = torch.arange(0, 24, 4)
    images, masks = b.images[idx], b.masks[idx]
    cfg = InversionConfig.for_profile("lite")
    recs = {}
    for kind in ("generator", "flow"):
        recs[kind] = regress(prior, b.images, b.masks, enc, kind, cfg.render)     # all 24 birds
    t = default_template()
    assert float(recs["flow"].iou.mean()) >= 0.7 and torch.equal(recs["flow"].vertices, recs["generator"].vertices)
    assert recs["flow"].phase == "regression:flow" and not torch.equal(recs["flow"].texture, recs["generator"].texture)
    # the flow reads the photo: where both silhouettes cover the input view, it beats the prior's texture on the same
    # mesh (measured on all 24 birds: 26.9 against 25.8 dB; a flow with y flipped or untrained falls far below)
    from meshinv_lite.metrics import psnr

    def seen_psnr(rec):
        r = render_mesh(t, rec.vertices, rec.camera, rec.texture, cfg.render, soft=False)
        both = r.mask * b.masks
        return psnr(r.image * both, b.images * both)

    assert float((seen_psnr(recs["flow"]) - seen_psnr(recs["generator"])).mean()) > 0.5
    short = replace(cfg, stages=(), init_candidates=1)
    unknown = torch.full((len(idx),), -1)
    rand = invert(prior, images, masks, b.noisy_camera[idx], unknown, short, template=t, seed=0)
    from_enc = invert(prior, images, masks, b.noisy_camera[idx], unknown, replace(short, init="encoder"), template=t,
                      seed=0, encoder=enc)
    # the encoder narrows the classes to score to its two likeliest (the random start scores all twelve) and the
    # one chosen among them is right
    assert (torch.isfinite(from_enc.class_scores).sum(1) == 2).all()
    assert (torch.isfinite(rand.class_scores).sum(1) == prior.config.num_classes).all()
    assert float((from_enc.class_id == b.class_id[idx]).float().mean()) >= 0.8


def test_the_fast_start_fits_like_inversion_in_fewer_steps(prior, shipped, fresh_birds):
    """``with_encoder_start()`` (given camera): the encoder's latent alone, a coarse stage at half lite's render size,
    half its Chamfer points, twice its feature-Chamfer weight (the guessed-camera start keeps the profile's), and on
    birds the encoder never saw an IoU within 0.02 of lite's full inversion; the encoder's start alone, without the
    schedule's steps, is far below both."""
    from meshinv_lite.inversion import InversionConfig, invert

    cfg = InversionConfig.for_profile("lite")
    fast = cfg.with_encoder_start()
    assert [s.render_size for s in fast.stages] == [None, 64, None] and fast.stages[0].shape_only
    assert fast.num_points == 512 and fast.stop_tol is None and fast.init == "encoder"
    assert all(s.render_size is None for s in InversionConfig.for_profile("quick").with_encoder_start().stages)
    assert cfg.with_encoder_start("guessed").num_points == cfg.num_points
    assert fast.init_candidates == 1 and cfg.with_encoder_start("guessed").init_candidates == 4
    weights, profile = dict(fast.texture_losses), dict(cfg.texture_losses)
    assert weights["chamfer_feature"] == 2 * profile["chamfer_feature"] and weights["chamfer"] == profile["chamfer"]
    assert cfg.with_encoder_start("guessed").texture_losses == cfg.texture_losses
    b, t, enc = fresh_birds, default_template(), shipped[0]
    idx = torch.arange(1, 24, 4)
    args = (b.images[idx], b.masks[idx], b.noisy_camera[idx], b.class_id[idx])
    full = invert(prior, *args, cfg, template=t, seed=0)
    short = invert(prior, *args, fast, template=t, seed=0, encoder=enc)
    start = invert(prior, *args, replace(fast, stages=()), template=t, seed=0, encoder=enc)
    iou_full, iou_short, iou_start = (float(r.iou.mean()) for r in (full, short, start))
    assert iou_short >= iou_full - 0.02, (iou_short, iou_full)
    assert iou_start < iou_short - 0.05, (iou_start, iou_short)


def test_init_must_be_known():
    from meshinv_lite.inversion import InversionConfig

    with pytest.raises(ValueError, match="init must be 'random'"):
        InversionConfig(init="regress")
    assert "init" not in InversionConfig().to_dict()          # earlier results' signatures stay valid
    assert InversionConfig(init="encoder").to_dict()["init"] == "encoder"
