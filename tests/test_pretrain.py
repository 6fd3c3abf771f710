import pytest
import torch

from meshinv_lite.render import random_cameras
from meshinv_lite.gan import (CheckpointError, GANTrainer, PretrainConfig, TrainingData, discriminator_loss, generator_loss, load_generator, read_checkpoint)


def tiny_data(n=6, seed=0) -> TrainingData:
    g = torch.Generator().manual_seed(seed)
    vis = (torch.rand(n, 1, 64, 64, generator=g) > 0.5).float()
    return TrainingData(
        texture=torch.rand(n, 3, 64, 64, generator=g) * vis,
        visibility=vis,
        deformation=0.1 * torch.randn(n, 3, 16, 16, generator=g),
        class_id=torch.randint(0, 12, (n,), generator=g),
        images=torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8),
        masks=(torch.rand(n, 1, 64, 64, generator=g) > 0.5).to(torch.uint8) * 255,
        cameras=random_cameras(n, generator=g).as_tensor(),
        image_class_id=torch.randint(0, 12, (n,), generator=g),
    )


def quick_config(**kw) -> PretrainConfig:
    return PretrainConfig.for_profile("quick", batch_size=2, **kw)


def test_gan_losses():
    real, fake = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5])
    assert discriminator_loss(real, fake) == pytest.approx(0.25)  # mean((r-1)^2) + mean(f^2) = 0.125 + 0.125
    assert generator_loss(fake) == pytest.approx(0.625)
    assert discriminator_loss(torch.tensor([2.0]), torch.tensor([-2.0]), "hinge") == 0
    assert generator_loss(torch.tensor([3.0]), "hinge") == -3
    with pytest.raises(ValueError, match="unknown GAN loss"):
        generator_loss(fake, "wgan")


def test_training_data_checks_rows():
    d = tiny_data()
    with pytest.raises(ValueError, match="visibility"):
        TrainingData(d.texture, d.visibility[:3], d.deformation, d.class_id, d.images, d.masks, d.cameras, d.image_class_id)
    with pytest.raises(ValueError, match="no pseudo-GT"):
        TrainingData(d.texture[:0], d.visibility[:0], d.deformation[:0], d.class_id[:0], d.images, d.masks, d.cameras, d.image_class_id)


@pytest.mark.parametrize("image_d,uv_loss", [(True, "lsgan"), (False, "hinge")])
def test_steps_run_and_ema_moves(image_d, uv_loss):
    tr = GANTrainer(quick_config(image_discriminator=image_d, uv_loss=uv_loss), tiny_data())
    before = [p.detach().clone() for p in tr.G_ema.parameters()]
    for _ in range(2):
        terms = tr.step()
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    assert ("g_img" in terms) == image_d and (tr.D_img is not None) == image_d
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.G_ema.parameters()))
    assert tr.iteration == 2 and len(tr.history["g_uv"]) == 2


def test_resume_continues_the_same_run(tmp_path):
    cfg = quick_config(checkpoint_every=2, iterations=4)
    straight = GANTrainer(cfg, tiny_data(), checkpoint_dir=tmp_path / "a")
    straight.train(progress=False)
    interrupted = GANTrainer(cfg, tiny_data(), checkpoint_dir=tmp_path / "b")
    interrupted.train(iterations=2, progress=False)  # stops after writing the checkpoint at 2
    resumed = GANTrainer(cfg, tiny_data(), checkpoint_dir=tmp_path / "b")
    info = resumed.train(progress=False)
    assert info["resumed_from"] == 2 and resumed.iteration == 4
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.history == resumed.history
    G, loaded_cfg = load_generator(tmp_path / "b" / "latest.pt")
    assert loaded_cfg == cfg
    for a, b in zip(G.state_dict().values(), resumed.G_ema.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    tr = GANTrainer(quick_config(), tiny_data())
    path = tr.save_checkpoint(tmp_path / "ok.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_checkpoint(tmp_path / "garbage.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_checkpoint(truncated)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a meshinv-lite GAN checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    other = GANTrainer(quick_config(lambda_image=0.5), tiny_data())
    with pytest.raises(CheckpointError, match="lambda_image"):
        other.load_checkpoint(path)
    # weights that no longer fit the networks (the architecture changed) are refused, not partially loaded,
    # with a message that says how to retrain
    from meshinv_lite.io import state_checksum
    from meshinv_lite.gan import CHECKSUMMED

    state = torch.load(path, weights_only=False)
    for net in ("G", "G_ema"):
        state[net].pop(next(iter(state[net])))
    state["checksum"] = state_checksum({k: state[k] for k in CHECKSUMMED if state[k] is not None})
    torch.save(state, tmp_path / "tampered.pt")
    fresh = GANTrainer(quick_config(), tiny_data())
    with pytest.raises(CheckpointError, match="does not fit.*--rebuild gan"):
        fresh.load_checkpoint(tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="does not fit the generator this code builds.*--rebuild gan"):
        load_generator(tmp_path / "tampered.pt")
    # a config written by another version of the code (a field this code does not know)
    state = torch.load(path, weights_only=False)
    state["config"]["generator"]["attention_layers"] = 2
    torch.save(state, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="another version of meshinv-lite.*retrain"):
        load_generator(tmp_path / "newer.pt")


def test_a_flipped_byte_in_the_weights_is_caught(tmp_path):
    tr = GANTrainer(quick_config(), tiny_data())
    path = tr.save_checkpoint(tmp_path / "ok.pt")
    raw = bytearray(path.read_bytes())
    w = max(tr.G.state_dict().values(), key=lambda t: t.numel())  # the largest tensor's bytes sit mid-file
    at = bytes(raw).find(w.contiguous().numpy().tobytes()[:64])
    assert at > 0
    raw[at + 10] ^= 0x10
    path.write_bytes(bytes(raw))
    torch.load(path, weights_only=False)  # still loads: only the checksum notices
    with pytest.raises(CheckpointError, match="damaged.*checksum"):
        read_checkpoint(path)


def _scores(tr, fake):
    """D_uv and D_img scores of a fixed real batch and a fixed fake batch (eval: no spectral-norm update)."""
    with torch.no_grad():
        d = tr.data
        idx = torch.arange(2)
        real_uv = tr.D_uv(d.texture[idx] * d.visibility[idx], d.deformation[idx], d.visibility[idx], d.class_id[idx])
        fake_uv = tr.D_uv(fake["texture"] * fake["visibility"], fake["deformation"], fake["visibility"], fake["class_id"])
        fake_img = tr.D_img(fake["image"], fake["mask"]).mean()
    return real_uv.mean(), fake_uv.mean(), fake_img


def test_one_discriminator_step_separates_real_from_fake():
    torch.manual_seed(0)
    tr = GANTrainer(quick_config(lr_d=1e-3), tiny_data())
    with torch.no_grad():
        fake = tr._fakes(2)
    before = _scores(tr, fake)
    g_before = [p.detach().clone() for p in tr.G.parameters()]
    for _ in range(3):  # the same fixed fake batch each time, fresh real samples
        tr._d_step(fake, {})
    after = _scores(tr, fake)
    assert after[0] - after[1] > before[0] - before[1]  # real scored higher relative to fake
    assert all(torch.equal(a, b) for a, b in zip(g_before, tr.G.parameters()))  # the D step leaves G alone


def test_one_generator_step_with_frozen_discriminators_raises_their_score_of_the_fakes():
    torch.manual_seed(0)
    tr = GANTrainer(quick_config(lr_g=1e-3, d_steps=1), tiny_data())
    d_before = {k: v.clone() for k, v in {**tr.D_uv.state_dict(), **{f"img.{k}": v for k, v in tr.D_img.state_dict().items()}}.items()}
    z, c = tr.sample_latents(2)
    rng_state = tr.rng.get_state()

    def fakes_for(z, c):
        tex, deform = tr.G(z, c)
        tr.rng.set_state(rng_state)
        vis = tr._real_uv(2)[2]
        cams = tr._real_images(2)[2]
        img, mask, _ = tr.render(tex, deform, cams)
        return {"texture": tex, "deformation": deform, "visibility": vis, "class_id": c, "image": img, "mask": mask}

    tr.D_uv.eval(), tr.D_img.eval()
    with torch.no_grad():
        before = _scores(tr, fakes_for(z, c))
    # the G step of GANTrainer.step on these latents: discriminators frozen, only G moves
    for d in (tr.D_uv, tr.D_img):
        d.requires_grad_(False)
    f = fakes_for(z, c)
    from meshinv_lite.gan import generator_loss
    loss = generator_loss(tr.D_uv(f["texture"] * f["visibility"], f["deformation"], f["visibility"], c)) + \
        tr.config.lambda_image * generator_loss(tr.D_img(f["image"], f["mask"]))
    tr.opt_G.zero_grad()
    loss.backward()
    assert all(p.grad is None for p in tr.D_uv.parameters())  # frozen: no weight gradients at all
    for _ in range(1):
        tr.opt_G.step()
    with torch.no_grad():
        after = _scores(tr, fakes_for(z, c))
    assert after[1] + tr.config.lambda_image * after[2] > before[1] + tr.config.lambda_image * before[2]
    now = {**tr.D_uv.state_dict(), **{f"img.{k}": v for k, v in tr.D_img.state_dict().items()}}
    assert all(torch.equal(d_before[k], now[k]) for k in d_before)


def test_training_step_leaves_no_discriminator_frozen():
    tr = GANTrainer(quick_config(), tiny_data())
    tr.step()
    assert all(p.requires_grad for p in tr.D_uv.parameters()) and all(p.requires_grad for p in tr.D_img.parameters())
