import pytest
import torch

from meshinv_lite.render import WeakPerspectiveCamera
from meshinv_lite.inversion import InversionConfig, InversionStage, invert
from meshinv_lite.render import deform_vertices, make_uv_sphere
from meshinv_lite.gan import Generator, GeneratorConfig
from meshinv_lite.render import render_mesh
from meshinv_lite.features import load_feature_extractor


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig.for_profile("quick", deform_init_gain=1.5)).eval()  # shapes that vary with z
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
    assert rec.iou.shape == (2,)
    # better than what random codes give: the best of 32 draws through the true cameras
    from meshinv_lite.metrics import mask_iou

    with torch.no_grad():
        z = torch.randn(32, 64, generator=torch.Generator().manual_seed(9))
        best = torch.zeros(2)
        for i in range(2):
            tex, d = G(z, cls[i].repeat(32))
            sil = render_mesh(t, deform_vertices(t, d), cams[i].expand(32), tex, cfg.render, soft=False).mask
            best[i] = mask_iou(sil, masks[i:i + 1].expand(32, -1, -1, -1)).max()
    from dataclasses import replace

    longer = invert(G, images, masks, cams, cls, replace(cfg, stages=(InversionStage(40, 0.1, 1e-2), InversionStage(40, 0.02, 2e-3))),
                    template=t, seed=1)
    # (an untrained G barely varies its shapes with z, so the margin over 32 draws is small but real)
    assert (longer.iou > best + 0.01).all() and (longer.iou >= rec.iou - 0.01).all(), (longer.iou, rec.iou, best)
    assert rec.texture.shape == (2, 3, 64, 64) and rec.vertices.shape == (2, t.num_vertices, 3)
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k])
    assert [p.requires_grad for p in G.parameters()] == flags
    assert rec.feature_extractor == ""  # no feature loss in this config


def _perturbed(cams):
    return WeakPerspectiveCamera(cams.scale * 1.12, cams.translation + torch.tensor([0.06, -0.05]), cams.rotation)


@pytest.mark.parametrize("mask_loss, keep, stages", [
    ("chamfer", 0.7, (InversionStage(30, 0.05, 1e-2),)),
    ("iou", 1.0, (InversionStage(30, 0.05, 1e-2),)),
    # the camera learns only from the second stage on: guards against a camera learning rate that is set in
    # stage 0 only (or zeroed after it), which a one-stage schedule cannot tell apart
    ("chamfer", 0.7, (InversionStage(1, 0.05, 0.0), InversionStage(30, 0.05, 1e-2))),
], ids=["chamfer", "iou", "chamfer-second-stage"])
def test_camera_refinement_moves_a_perturbed_camera_towards_the_truth(setup, mask_loss, keep, stages):
    """The refined camera ends closer to the truth than it started: by 30 % with the Chamfer mask loss (its
    pull reaches the whole mask); with the soft IoU closer but by less (measured: translation error 0.11 ->
    0.09 for one image, where the shape absorbs part of the offset and the silhouette fits better)."""
    G, t, cfg, images, masks, cams, cls = setup
    from dataclasses import replace

    off = _perturbed(cams)
    c = replace(cfg, stages=stages, mask_loss=mask_loss)
    rec = invert(G, images, masks, off, cls, c, template=t, seed=1)
    for name in ("scale", "translation"):
        start = (getattr(off, name) - getattr(cams, name)).abs().flatten(1 if name == "translation" else 0)
        end = (getattr(rec.camera, name) - getattr(cams, name)).abs().flatten(1 if name == "translation" else 0)
        assert (end.sum(-1) if end.dim() > 1 else end).lt(keep * (start.sum(-1) if start.dim() > 1 else start)).all(), name


def test_camera_frozen_when_not_refined(setup):
    """``refine_camera=False`` keeps the given camera even though the schedule has a camera learning rate (guards
    against the flag being ignored: a zero learning rate alone would hide that); the same schedule with the flag
    on does move it."""
    G, t, cfg, images, masks, cams, cls = setup
    from dataclasses import replace

    off = _perturbed(cams)
    c = replace(cfg, stages=(InversionStage(3, 0.1, 1e-2),))
    frozen = invert(G, images, masks, off, cls, replace(c, refine_camera=False), template=t)
    assert torch.allclose(frozen.camera.as_tensor(), off.as_tensor(), atol=1e-6)
    assert not torch.equal(frozen.z, invert(G, images, masks, off, cls, replace(c, stages=()), template=t).z)  # z did move
    moved = invert(G, images, masks, off, cls, c, template=t)
    assert (moved.camera.as_tensor() - off.as_tensor()).abs().max() > 1e-3


def _weighted_sum(cfg, terms):
    """The total an objective of ``cfg`` should report for its ``terms``: every term times its weight."""
    total = sum(w * terms[name] for name, w in cfg.texture_losses) + cfg.w_mask * terms[f"mask_{cfg.mask_loss}"]
    total = total + cfg.w_latent * terms["latent"]
    total = total + (cfg.w_smooth * terms["smooth"] if cfg.w_smooth else 0) + (cfg.w_crease * terms["crease"] if cfg.w_crease else 0)
    return total


@pytest.mark.parametrize("texture,mask", [("l1", "iou"), ("l2", "l1"), ("chamfer", "chamfer")])
def test_ablation_losses_run(setup, texture, mask):
    """Each ablation pair is the loss that runs (guards against a name dropped or mapped to another loss, or a
    term left out of the total or cut from the graph): its terms, and only those, are reported, the total is
    their weighted sum, and a few steps lower it from the best initial draw."""
    G, t, cfg, images, masks, cams, cls = setup
    from dataclasses import replace

    c = replace(cfg.with_losses(texture, mask), stages=(InversionStage(5, 0.1, 1e-2),))
    rec = invert(G, images, masks, cams, cls, c, template=t)
    assert set(rec.terms) == {texture, f"mask_{mask}", "smooth", "latent", "total"}
    assert torch.allclose(rec.terms["total"], _weighted_sum(c, rec.terms), rtol=1e-5)
    assert (rec.terms[texture] < 1e3).all()  # a real value, not the constant of a render that left the frame
    assert (rec.terms["total"] < rec.init_loss).all(), (rec.terms["total"], rec.init_loss)


def test_feature_chamfer_records_the_extractor(setup):
    """The feature term runs on the extractor it is given and the result names that one (guards against the given
    extractor being ignored for the default one, or the name recorded from another), and it enters the total at
    its weight."""
    G, t, cfg, images, masks, cams, cls = setup
    from dataclasses import replace

    from meshinv_lite.features import fallback_vgg19

    c = replace(cfg, texture_losses=(("chamfer", 1.0), ("chamfer_feature", 0.04)), stages=(InversionStage(1, 0.1, 1e-2),))
    rec = invert(G, images[:1], masks[:1], cams[:1], cls[:1], c, template=t)
    auto = load_feature_extractor(c.features)
    assert rec.feature_extractor == auto.name
    other = fallback_vgg19()
    rec_other = invert(G, images[:1], masks[:1], cams[:1], cls[:1], c, template=t, extractor=other)
    assert rec_other.feature_extractor == other.name != auto.name
    for r in (rec, rec_other):
        assert 0 < float(r.terms["chamfer_feature"]) < 1e3
        assert torch.allclose(r.terms["total"], _weighted_sum(c, r.terms), rtol=1e-5)
    # the same draws scored through another network: the feature term, hence the best draw's loss, differs
    assert not torch.equal(rec.init_loss, rec_other.init_loss)


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


def test_objective_total_is_the_weighted_sum_and_the_latent_term_pulls_z_to_the_origin(setup):
    """The objective's total is every term times its weight (guards against a term, e.g. the latent regulariser,
    dropped from the total or weighted twice), and the latent term's gradient alone, the difference between the
    same objective with and without it, is ``w_latent * z / D``."""
    from dataclasses import replace

    from meshinv_lite.inversion import InversionObjective
    from meshinv_lite.inversion.objective import _frozen

    G, t, cfg, images, masks, cams, cls = setup
    # every kind of term on, each with a weight of its own
    c = replace(cfg, texture_losses=(("chamfer", 0.7), ("l1", 0.3)), w_mask=2.0, w_smooth=0.01, w_crease=0.2, w_latent=0.5)
    z = 2 * torch.randn(2, G.config.latent_dim, generator=torch.Generator().manual_seed(1))

    def total_and_grad(config):
        objective = InversionObjective(G, t, images, masks, cls, config, None, seed=3)  # the same point samples
        zz = z.clone().requires_grad_()
        total, terms = objective(zz, cams)
        total.sum().backward()
        return terms, zz.grad

    with _frozen(G):  # gradients for z only, as in invert
        terms, grad = total_and_grad(c)
        terms_off, grad_off = total_and_grad(replace(c, w_latent=0.0))
    assert set(terms) == {"chamfer", "l1", "mask_chamfer", "smooth", "crease", "latent", "total"}
    assert all((terms[k] > 0).all() for k in terms)
    assert torch.allclose(terms["total"], _weighted_sum(c, terms), rtol=1e-6)
    assert torch.allclose(terms["latent"], z.pow(2).mean(1) / 2)
    assert torch.allclose(terms_off["total"], terms["total"] - c.w_latent * terms["latent"], rtol=1e-6)
    assert torch.allclose(grad - grad_off, c.w_latent * z / z.shape[1], atol=1e-6)


# bad inputs, refused at the entry point with a message that says what to do ---------------------------------

def _one_step(cfg):
    from dataclasses import replace

    return replace(cfg, init_candidates=1, stages=(InversionStage(1, 0.1, 1e-2),))


@pytest.mark.parametrize("shape", ["3x3", "line"])
def test_tiny_masks_are_refused_before_the_losses(setup, shape):
    G, t, cfg, images, masks, cams, cls = setup
    tiny = torch.zeros_like(masks[:1])
    if shape == "3x3":
        tiny[..., 30:33, 30:33] = 1
    else:
        tiny[..., 30, 10:50] = 1  # one pixel tall
    full = _one_step(cfg).with_losses((("chamfer", 1.0), ("chamfer_feature", 0.04)))
    with pytest.raises(ValueError, match="too small for the feature-level Chamfer loss.*at least"):
        invert(G, images[:1], tiny, cams[:1], cls[:1], full, template=t)
    # without the feature term the same mask is usable: every term is a real value (the render is in the frame, not
    # the 1e3 of one that left it), and a few steps fit the silhouette to it (guards against a tiny target that
    # yields no mask gradient, or NaN/empty point samples)
    from dataclasses import replace

    rec = invert(G, images[:1], tiny, cams[:1], cls[:1], replace(_one_step(cfg), stages=(InversionStage(4, 0.1, 1e-2),)),
                 template=t)
    assert all(torch.isfinite(v).all() for v in rec.terms.values()) and float(rec.terms["chamfer"]) < 1e3
    mask_term = rec.history["mask_chamfer"]
    assert mask_term[-1] < mask_term[0] and float(rec.terms["total"]) < float(rec.init_loss), mask_term


def test_masks_that_vanish_at_the_render_size_are_refused(setup):
    G, t, cfg, images, masks, cams, cls = setup
    big_img = torch.nn.functional.interpolate(images[:1], size=(256, 256))
    dot = torch.zeros(1, 1, 256, 256)
    dot[..., 100, 100] = 1  # one pixel at 256 px: nothing left at the 64 px render size
    with pytest.raises(ValueError, match="vanishes when resized"):
        invert(G, big_img, dot, cams[:1], cls[:1], _one_step(cfg), template=t)


def test_images_outside_the_unit_range_are_refused(setup):
    G, t, cfg, images, masks, cams, cls = setup
    c = _one_step(cfg)
    with pytest.raises(TypeError, match=r"uint8.*images.float\(\) / 255"):
        invert(G, (images * 255).round().to(torch.uint8), masks, cams, cls, c, template=t)
    with pytest.raises(ValueError, match=r"values in \[0, 1[0-9.]+\].*divide by 255"):
        invert(G, images * 255, masks, cams, cls, c, template=t)
    with pytest.raises(ValueError, match="masks has values"):
        invert(G, images, masks * 2, cams, cls, c, template=t)
    # float64 is converted, not a dtype error deep in a convolution
    rec = invert(G, images.double(), masks.double(), cams, cls, c.with_losses((("chamfer", 1.0), ("chamfer_feature", 0.04))),
                 template=t)
    assert rec.texture.dtype == torch.float32


def test_raw_camera_tensors_and_empty_batches_are_refused(setup):
    G, t, cfg, images, masks, cams, cls = setup
    c = _one_step(cfg)
    with pytest.raises(TypeError, match="WeakPerspectiveCamera.from_tensor"):
        invert(G, images, masks, cams.as_tensor(), cls, c, template=t)
    with pytest.raises(ValueError, match="empty batch"):
        invert(G, images[:0], masks[:0], cams[:0], cls[:0], c, template=t)
    with pytest.raises(TypeError, match="WeakPerspectiveCamera"):
        render_mesh(t, t.vertices[None], cams.as_tensor()[:1], torch.rand(1, 3, 8, 8), cfg.render)
    with pytest.raises(ValueError, match="empty batch"):
        render_mesh(t, t.vertices[None][:0], cams[:1], torch.rand(1, 3, 8, 8), cfg.render)
    with pytest.raises(ValueError, match="empty batch"):
        G(torch.zeros(0, 64), torch.zeros(0, dtype=torch.long))


# the class chosen in the initialisation (class_id -1: a species the prior has no class for) -------------------

def _initialise_as_before(G, t, cfg, images, masks, cams, cls, seed):
    """The initialisation as :func:`invert` computed it before classes could be chosen (kept verbatim)."""
    from meshinv_lite.inversion import InversionObjective

    b, n = images.shape[0], max(1, cfg.init_candidates)
    rng = torch.Generator().manual_seed(seed)
    objective = InversionObjective(G, t, images, masks, cls, cfg, None, seed)
    with torch.no_grad():
        cands = torch.randn(b, n, G.config.latent_dim, generator=rng)
        scores = torch.empty(b, n)
        flat_img = torch.arange(b).repeat_interleave(n)
        flat_z = cands.reshape(b * n, -1)
        for s in range(0, b * n, cfg.init_batch):
            sl = slice(s, s + cfg.init_batch)
            scores.view(-1)[sl] = objective(flat_z[sl], cams[flat_img[sl]], flat_img[sl])[0]
        return cands[torch.arange(b), scores.argmin(1)], scores.min(1).values


def test_known_classes_initialise_exactly_as_before(setup):
    """Given classes: the same draws, scored in the same order and chunks, bit for bit (3 chunks of 4 rows)."""
    from dataclasses import replace

    G, t, cfg, images, masks, cams, cls = setup
    c = replace(cfg, init_candidates=6, init_batch=4, stages=())
    z0, loss0 = _initialise_as_before(G, t, c, images, masks, cams, cls, seed=3)
    rec = invert(G, images, masks, cams, cls, c, template=t, seed=3)
    assert torch.equal(rec.z, z0) and torch.equal(rec.init_loss, loss0)
    assert torch.equal(rec.class_id, cls) and rec.class_scores is None


@pytest.fixture(scope="module")
def prior_birds():
    """Birds rendered by the shipped prior, G(z, c), for four classes whose classes the inversion is not told."""
    from meshinv_lite.gan import load_shipped_prior

    G, _ = load_shipped_prior()
    t = make_uv_sphere()
    cfg = InversionConfig.for_profile("quick", texture_losses=(("chamfer", 1.0),), num_points=256, init_candidates=6,
                                      init_batch=36, stages=())
    cls = torch.tensor([1, 4, 7, 10])  # blue jay, robin, mallard, kingfisher
    z = 0.7 * torch.randn(4, G.config.latent_dim, generator=torch.Generator().manual_seed(3))
    cams = WeakPerspectiveCamera.from_view([20.0, 110.0, 200.0, 290.0], [15.0, 5.0, 25.0, 10.0], 0.7)
    with torch.no_grad():
        tex, d = G(z, cls)
        out = render_mesh(t, deform_vertices(t, d), cams, tex, cfg.render, soft=False)
    return G, t, cfg, out.image, out.mask, cams, cls


def test_unknown_class_is_found_on_the_priors_own_birds(prior_birds):
    G, t, cfg, images, masks, cams, cls = prior_birds
    rec = invert(G, images, masks, cams, torch.full((4,), -1), cfg, template=t, seed=0)
    assert rec.class_id.tolist() == cls.tolist()
    scores = rec.class_scores
    assert scores.shape == (4, G.config.num_classes) and torch.isfinite(scores).all()
    assert torch.equal(scores.argmin(1), rec.class_id) and torch.equal(scores.min(1).values, rec.init_loss)
    # a given class is kept, even a wrong one, and only it is scored; the others are still chosen
    given = torch.tensor([5, -1, -1, -1])
    mixed = invert(G, images, masks, cams, given, cfg, template=t, seed=0)
    assert mixed.class_id.tolist() == [5] + cls[1:].tolist()
    assert torch.isfinite(mixed.class_scores[0]).tolist() == [c == 5 for c in range(G.config.num_classes)]
    assert mixed.init_loss[0] > rec.init_loss[0]  # the wrong class explains the bird worse
    assert mixed[0].class_scores.shape == (1, G.config.num_classes)


def test_class_ids_out_of_range_are_refused(setup):
    G, t, cfg, images, masks, cams, cls = setup
    for bad in (torch.tensor([1, -2]), torch.tensor([1, G.config.num_classes])):
        with pytest.raises(ValueError, match=r"class_id values must lie in \[0, 12\) or be -1"):
            invert(G, images, masks, cams, bad, _one_step(cfg), template=t)


def test_early_stopping_ends_a_converged_stage_and_only_then():
    from meshinv_lite.inversion.search import _converged

    assert not _converged([5.0] * 19, 1e-3, 10)  # too few steps to judge
    assert _converged([5.0] * 20, 1e-3, 10)  # flat: converged
    falling = [10.0 - 0.1 * i for i in range(20)]
    assert not _converged(falling, 1e-3, 10)  # still falling by ~10 % per window
    assert _converged(falling, 0.5, 10)  # ... which a loose tolerance calls converged
    assert not _converged([5.0] * 20, None, 10)  # off


def test_inversion_with_early_stopping_records_its_stages(setup):
    from dataclasses import replace

    G, t, cfg, images, masks, cams, cls = setup
    full = invert(G, images, masks, cams, cls, cfg, template=t, seed=1)
    assert full.history["stage"] == [0.0] * 8 + [1.0] * 8
    # a tolerance nothing can meet stops each stage as soon as it may: after 2 windows of 3 steps
    loose = invert(G, images, masks, cams, cls, replace(cfg, stop_tol=10.0, stop_window=3), template=t, seed=1)
    assert loose.history["stage"] == [0.0] * 6 + [1.0] * 6
    assert loose.history["total"][:6] == full.history["total"][:6]  # the same steps until it stops
    strict = invert(G, images, masks, cams, cls, replace(cfg, stop_tol=-1.0, stop_window=3), template=t, seed=1)
    assert strict.history["total"] == full.history["total"]  # a tolerance never met: the full schedule


def test_latent_shell_bounds_z_and_changes_nothing_inside_it(setup):
    from dataclasses import replace

    from meshinv_lite.inversion import project_to_shell

    z = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # |z| / sqrt(2): 3.54 and 0.35
    out = project_to_shell(z, 1.0)
    assert torch.allclose(out[0].norm(), torch.tensor(2 ** 0.5))  # scaled back onto the shell
    assert torch.allclose(out[0] / out[0].norm(), z[0] / z[0].norm())  # direction kept
    assert torch.equal(out[1], z[1])  # inside: untouched

    G, t, cfg, images, masks, cams, cls = setup
    # a learning rate that throws z far out in a few steps, and no latent pull
    wild = replace(cfg, w_latent=0.0, stages=(InversionStage(4, 5.0, 1e-2),))
    free = invert(G, images, masks, cams, cls, wild, template=t, seed=1)
    bound = invert(G, images, masks, cams, cls, replace(wild, latent_shell=0.5), template=t, seed=1)
    d = G.config.latent_dim ** 0.5
    assert (free.z.norm(dim=1) / d).max() > 0.6  # without the bound it leaves the shell ...
    assert (bound.z.norm(dim=1) / d).max() <= 0.5 + 1e-5  # ... with it, it never does
    assert max(bound.history["z_norm"]) <= 0.5 + 1e-5
    assert "latent_shell" not in cfg.to_dict() and replace(cfg, latent_shell=1.27).to_dict()["latent_shell"] == 1.27
    with pytest.raises(ValueError, match="latent_shell must be a positive"):
        replace(cfg, latent_shell=0.0)


def _objective_grad(setup, config, z, extractor=None, **kw):
    """The inversion objective's terms at ``z`` and its gradient with respect to ``z`` (seed 3), for the setup's
    targets; ``kw`` go to the objective's call (``texture_terms``, ``feature_terms``)."""
    from meshinv_lite.inversion import InversionObjective
    from meshinv_lite.inversion.objective import _frozen

    G, t, _, images, masks, cams, cls = setup
    zz = z.clone().requires_grad_()
    with _frozen(G):
        total, terms = InversionObjective(G, t, images, masks, cls, config, extractor, seed=3)(zz, cams, **kw)
        total.sum().backward()
    return terms, zz.grad


def test_a_shape_only_stage_follows_the_silhouette_and_regularizers_alone(setup):
    """``InversionStage(shape_only=True)`` leaves the texture losses out: the step's gradient is exactly that of the
    same objective without texture losses, the history keeps its rows aligned (NaN for the missing terms), and the
    next full stage scores the texture again."""
    from dataclasses import replace

    G, t, cfg, images, masks, cams, cls = setup
    c = replace(cfg, mask_loss="iou", w_mask=1.0, w_smooth=0.01, texture_losses=(("chamfer", 1.0), ("l1", 0.5)))
    z = torch.randn(2, G.config.latent_dim, generator=torch.Generator().manual_seed(2))
    full_terms, full_grad = _objective_grad(setup, c, z)
    shape_terms, shape_grad = _objective_grad(setup, c, z, texture_terms=False)
    _, bare_grad = _objective_grad(setup, replace(c, texture_losses=()), z)
    assert "chamfer" in full_terms and "chamfer" not in shape_terms and "l1" not in shape_terms
    assert torch.allclose(shape_grad, bare_grad, atol=1e-7)
    assert not torch.allclose(shape_grad, full_grad, atol=1e-4)  # the texture terms do pull on z

    staged = replace(c, stages=(InversionStage(3, 0.1, 1e-2, shape_only=True), InversionStage(2, 0.05, 5e-3)))
    rec = invert(G, images, masks, cams, cls, staged, template=t, seed=1)
    h = rec.history
    assert len(h["chamfer"]) == len(h["total"]) == 5
    assert all(v != v for v in h["chamfer"][:3]) and all(v == v for v in h["chamfer"][3:])  # NaN, then scored
    assert staged.to_dict()["stages"][0]["shape_only"] is True and "shape_only" not in c.to_dict()["stages"][0]


def test_a_stage_without_features_keeps_the_pixel_losses_and_drops_the_feature_ones(setup):
    """``InversionStage(features=False)`` leaves out the texture losses that need the feature network and keeps the
    pixel-level ones: its gradient is exactly that of the objective with only the pixel losses configured; the
    history keeps its rows aligned (NaN for the feature term during that stage)."""
    from dataclasses import replace

    from meshinv_lite.features import load_feature_extractor

    G, t, cfg, images, masks, cams, cls = setup
    ex = load_feature_extractor("synthbirds_features")
    c = replace(cfg, texture_losses=(("chamfer", 1.0), ("chamfer_feature", 0.5)), num_points=64,
                init_candidates=2, init_batch=2)
    z = torch.randn(2, G.config.latent_dim, generator=torch.Generator().manual_seed(2))
    full_terms, full_grad = _objective_grad(setup, c, z, ex)
    pixel_terms, pixel_grad = _objective_grad(setup, c, z, ex, feature_terms=False)
    _, bare_grad = _objective_grad(setup, replace(c, texture_losses=(("chamfer", 1.0),)), z, ex)
    assert "chamfer_feature" in full_terms and "chamfer_feature" not in pixel_terms and "chamfer" in pixel_terms
    assert torch.allclose(pixel_grad, bare_grad, atol=1e-7)
    assert not torch.allclose(pixel_grad, full_grad, atol=1e-4)  # the feature term does pull on z

    staged = replace(c, stages=(InversionStage(2, 0.1, 1e-2, features=False), InversionStage(2, 0.05, 5e-3)))
    h = invert(G, images, masks, cams, cls, staged, template=t, seed=1, extractor=ex).history
    assert len(h["chamfer_feature"]) == len(h["chamfer"]) == 4
    assert all(v != v for v in h["chamfer_feature"][:2]) and all(v == v for v in h["chamfer_feature"][2:])
    assert all(v == v for v in h["chamfer"])
    assert staged.to_dict()["stages"][0]["features"] is False and "features" not in c.to_dict()["stages"][0]


def test_the_deformation_alone_and_the_silhouette_alone_equal_the_full_forward_and_render(setup):
    """``Generator.deformation`` and ``render_silhouette`` (the cheap path of a shape-only stage) give exactly what
    the full generator and renderer give for the shape."""
    from meshinv_lite.render import render_silhouette

    G, t, cfg, images, masks, cams, cls = setup
    z = torch.randn(2, G.config.latent_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        tex, d = G(z, cls)
        d_only = G.deformation(z, cls)
        v = deform_vertices(t, d)
        full = render_mesh(t, v, cams, tex, cfg.render, soft=True)
        sil = render_silhouette(t, v, cams, cfg.render, soft=True)
    assert torch.equal(d_only, d)
    assert torch.equal(sil.mask, full.mask) and torch.equal(sil.soft_mask, full.soft_mask)
    assert sil.image.shape == full.image.shape and torch.equal(sil.image[:, :1], full.mask) and sil.uv is None


def test_a_stage_with_a_render_size_renders_and_scores_at_that_size(setup):
    """``InversionStage(render_size=S)`` renders that stage at ``S`` px against the targets resized to ``S`` (what the
    callback sees, render and target), the other stages and the final result at the config's size; a stage at the
    config's own size is exactly the default; a size below 16 px or above the config's is refused."""
    from dataclasses import replace

    G, t, cfg, images, masks, cams, cls = setup
    full = cfg.render.image_size
    coarse = full // 2
    c = replace(cfg, mask_loss="iou", w_mask=1.0, texture_losses=(("chamfer", 1.0),), init_candidates=2, init_batch=2)
    seen = []
    staged = replace(c, stages=(InversionStage(2, 0.1, 1e-2, shape_only=True, render_size=coarse // 2),
                                InversionStage(3, 0.1, 1e-2, render_size=coarse), InversionStage(2, 0.05, 5e-3)))
    rec = invert(G, images, masks, cams, cls, staged, template=t, seed=1,
                 callback=lambda step, terms, images: seen.append((images[0].shape[-2:], images[1].shape[-2:])))
    assert seen == ([((coarse // 2, coarse // 2), (coarse // 2, coarse // 2))] * 2 + [((coarse, coarse), (coarse, coarse))] * 3
                    + [((full, full), (full, full))] * 2)
    assert len(rec.history["total"]) == 7 and rec.iou.shape == (2,)
    # the final terms and IoU are the full-size objective's: the same z and camera rescored at full size agree
    from meshinv_lite.inversion import InversionObjective
    from meshinv_lite.inversion.objective import _frozen
    from meshinv_lite.metrics import mask_iou

    with _frozen(G), torch.no_grad():
        out = InversionObjective(G, t, images, masks, rec.class_id, c, None, seed=0)(rec.z, rec.camera, return_render=True)[2][3]
    assert out.mask.shape[-1] == full and torch.allclose(mask_iou(out.mask, masks), rec.iou)
    # coarse steps really are a different objective: the same schedule at full size ends elsewhere
    same = replace(staged, stages=tuple(replace(s, render_size=None) for s in staged.stages))
    assert not torch.allclose(invert(G, images, masks, cams, cls, same, template=t, seed=1).z, rec.z)
    # the config's own size is the default path, bit for bit
    at_full = replace(c, stages=tuple(replace(s, render_size=full) for s in c.stages))
    assert torch.equal(invert(G, images, masks, cams, cls, at_full, template=t, seed=1).z,
                       invert(G, images, masks, cams, cls, c, template=t, seed=1).z)
    assert "render_size" not in c.to_dict()["stages"][0] and staged.to_dict()["stages"][1]["render_size"] == coarse
    with pytest.raises(ValueError, match="render_size must be None .* at least 16 pixels, got 8"):
        InversionStage(5, 0.1, 1e-2, render_size=8)
    with pytest.raises(ValueError, match="render_size must be None"):
        InversionStage(5, 0.1, 1e-2, render_size=64.0)
    with pytest.raises(ValueError, match=rf"must not exceed the config's render size \({full} px\).*\[{2 * full}\]"):
        replace(c, stages=(InversionStage(5, 0.1, 1e-2, render_size=2 * full),))
