"""The shipped prior: its file checks, the build command on a tiny recipe, and prepare_prior's choice."""
import json

import pytest
import torch

from meshinv_lite.gan import Generator
from meshinv_lite.gan import SHIPPED, PriorError, PriorRecipe, load_shipped_prior, save_prior, shipped_paths
from meshinv_lite.gan.prior import SHIPPED_CARS, shipped_recipe
from meshinv_lite.artifacts import build_prior


@pytest.fixture
def saved(tmp_path):
    G = Generator(SHIPPED.generator_config()).eval()
    path = save_prior(tmp_path / "p.pt", G, SHIPPED, iteration=7)
    return G, path


def test_a_saved_prior_loads_back_exactly(saved):
    G, path = saved
    H, info = load_shipped_prior(path=path)
    assert info["iteration"] == 7 and not H.training
    for (k, a), (_, b) in zip(G.state_dict().items(), H.state_dict().items()):
        assert torch.equal(a, b), k


def test_another_generator_config_is_refused_with_the_rebuild_command(saved, tmp_path):
    _, path = saved
    state = torch.load(path, weights_only=True)
    state["generator_config"]["max_channels"] = 64
    torch.save(state, tmp_path / "old.pt")
    with pytest.raises(PriorError, match=r"another generator configuration \(differs in: max_channels\).*cli build-prior"):
        load_shipped_prior(path=tmp_path / "old.pt")


def test_weights_that_no_longer_fit_the_architecture_are_refused(saved, tmp_path):
    from meshinv_lite.io import state_checksum

    _, path = saved
    state = torch.load(path, weights_only=True)
    w = state["state_dict"]
    k = next(k for k in w if k.endswith("weight") and w[k].dim() == 4)
    w[k] = w[k][:, :1]  # a layer of another width: what a change of the architecture code looks like
    state["checksum"] = state_checksum(w)
    torch.save(state, tmp_path / "arch.pt")
    with pytest.raises(PriorError, match="does not fit the generator this code builds.*build-prior"):
        load_shipped_prior(path=tmp_path / "arch.pt")


def test_damaged_missing_and_foreign_files_are_refused(saved, tmp_path):
    _, path = saved
    with pytest.raises(PriorError, match="no shipped prior.*build-prior"):
        load_shipped_prior(path=tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(PriorError, match="damaged.*build-prior"):
        load_shipped_prior(path=tmp_path / "junk.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(PriorError, match="not a meshinv-lite prior"):
        load_shipped_prior(path=tmp_path / "other.pt")
    state = torch.load(path, weights_only=True)
    first = next(iter(state["state_dict"]))
    state["state_dict"][first] = state["state_dict"][first] + 1e-3  # a changed weight, checksum kept
    torch.save(state, tmp_path / "flipped.pt")
    with pytest.raises(PriorError, match="checksum"):
        load_shipped_prior(path=tmp_path / "flipped.pt")


@pytest.mark.parametrize("recipe", [SHIPPED, SHIPPED_CARS], ids=["birds", "cars"])
def test_the_shipped_prior_is_in_the_repository_with_its_provenance(recipe):
    pt, js = shipped_paths(recipe)
    assert pt.exists() and pt.stat().st_size < 10 * 2**20, "the shipped prior must stay under 10 MB"
    G, info = load_shipped_prior(recipe=recipe)
    assert isinstance(G, Generator) and G.config == recipe.generator_config()
    p = json.loads(js.read_text())
    for key in ("recipe", "seed", "data_recipe", "code_version", "wall_time", "quality", "pretrain_config",
                "pseudo_gt_config", "rebuild_command"):
        assert key in p, key
    assert p["complete"] is True and p["iterations"] == recipe.iterations
    # the file is what the code's recipe makes (the birds' was made before recipes named their category)
    assert {**p["recipe"], "category": p["recipe"].get("category", "birds")} == json.loads(json.dumps(recipe.to_dict()))
    # and a rebuild remakes the pseudo-GT it was trained on (the recipe pins it; the lite default is faster)
    assert p["pseudo_gt_config"] == json.loads(json.dumps(recipe.pseudo_gt_config().to_dict()))
    assert p["file_bytes"] == pt.stat().st_size
    assert p["shipped_iteration"] == info["iteration"] == (recipe.ship_iteration or recipe.iterations)
    assert p["rebuild_command"] in (recipe.rebuild_command, "python -m meshinv_lite.cli build-prior")
    assert p["pretrain_config"]["generator"]["num_classes"] == recipe.num_classes


def test_the_car_prior_is_its_own_recipe_and_names_its_rebuild():
    assert SHIPPED_CARS.num_classes == 8 and SHIPPED.num_classes == 12
    assert shipped_recipe("cars") is SHIPPED_CARS and shipped_recipe("birds") is SHIPPED
    assert shipped_paths(SHIPPED_CARS)[0].name == "synthcars_lite.pt"
    with pytest.raises(ValueError, match="unknown category 'boats'"):
        shipped_recipe("boats")
    # the bird prior's file is not the car prior (another number of classes), and the refusal says how to rebuild
    with pytest.raises(PriorError, match=r"num_classes.*build-prior --category cars"):
        load_shipped_prior(path=shipped_paths(SHIPPED)[0], recipe=SHIPPED_CARS)


@pytest.mark.slow
def test_build_prior_runs_end_to_end_on_a_tiny_recipe(tmp_path):
    recipe = PriorRecipe(name="tiny", data_profile="quick", train_images=24, iterations=4, batch_size=4,
                         checkpoint_every=2, snapshot_every=2, probe_images=2, ship_iteration=2)
    p = build_prior(tmp_path / "data", recipe, out_dir=tmp_path / "out", progress=False)
    G, info = load_shipped_prior(path=tmp_path / "out" / "tiny.pt", recipe=recipe)
    assert info["iterations"] == 4 and p["complete"] is True
    # the shipped weights are the snapshot of recipe.ship_iteration, not the last EMA
    snaps = tmp_path / "data" / "prior_tiny" / "synthbirds_quick" / "gan_noisy" / "snapshots"
    snap2, _ = load_shipped_prior(path=snaps / "G_ema_000002.pt", recipe=recipe)
    snap4, _ = load_shipped_prior(path=snaps / "G_ema_000004.pt", recipe=recipe)
    assert p["shipped_iteration"] == 2
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), snap2.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), snap4.state_dict().values()))
    assert set(p["quality"]) >= {"samples_vs_data", "shapes", "inversion_probe_val"}
    assert p["quality"]["inversion_probe_val"]["num_images"] == 2
    assert (tmp_path / "data" / "prior_tiny" / "synthbirds_quick" / "gan_noisy" / "snapshots" / "G_ema_000004.pt").exists()
    # a second run reuses every stage: nothing is rebuilt, the GAN resumes at its end
    again = build_prior(tmp_path / "data", recipe, out_dir=tmp_path / "out", progress=False)
    assert again["iterations"] == 4 and again["shipped_iteration"] == 2 and again["wall_time"]["gan_seconds"] == pytest.approx(p["wall_time"]["gan_seconds"])
    # the file a longer recipe expects is not this one
    with pytest.raises(PriorError, match="another generator configuration"):
        load_shipped_prior(path=tmp_path / "out" / "tiny.pt")


def test_prepare_prior_defaults(tmp_path):
    from meshinv_lite.gan import default_prior, prepare_prior

    assert default_prior("quick") == default_prior("lite") == "shipped" and default_prior("paper") == "train"
    G, cfg, path = prepare_prior(tmp_path, "quick")  # nothing is built: the shipped prior is loaded
    assert path == shipped_paths()[0] and not any(tmp_path.iterdir())
    assert G.config.texture_size == 128  # one prior, at the lite sizes, serves quick too
    with pytest.raises(ValueError, match="prior must be one of"):
        prepare_prior(tmp_path, "quick", prior="pretrained")


def test_ship_iteration_must_be_a_snapshot():
    with pytest.raises(ValueError, match="must be a snapshot"):
        PriorRecipe(iterations=6000, snapshot_every=1000, ship_iteration=4500)
    with pytest.raises(ValueError, match="must be a snapshot"):
        PriorRecipe(iterations=3000, snapshot_every=1000, ship_iteration=4000)
    assert PriorRecipe(iterations=4, snapshot_every=2, ship_iteration=None).ship_iteration is None
