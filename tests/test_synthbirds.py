"""SynthBirds: determinism, masks, ground truth that really is the ground truth, species, splits, resuming."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from meshinv_lite.render import WeakPerspectiveCamera, quaternion_to_matrix
from meshinv_lite.data import synthbirds as sb
from meshinv_lite.data import ReconstructionDataset, read_split
from meshinv_lite.data import SPECIES, SPECIES_NAMES
from meshinv_lite.data.species import UNSEEN_SPECIES, UNSEEN_SPECIES_NAMES
from meshinv_lite.io import read_json
from meshinv_lite.render import deform_vertices, make_uv_sphere, mirror_uv_map

SIZES = {"train": 12, "val": 4, "test": 4, "test_hard": 8}
ALL_SIZES = {**SIZES, "test_unseen": 6}  # test_unseen's size is the profile's (quick: 6), not in SIZES


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def tiny_config(**kw) -> sb.SynthBirdsConfig:
    return sb.SynthBirdsConfig.for_profile("quick", sizes=dict(SIZES), chunk=4, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthbirds")
    report = sb.build_synthbirds(root, tiny_config(), seed=3, progress=False)
    return root, report


def test_generate_batch_is_deterministic_for_a_seed():
    cfg = tiny_config()
    ids = torch.arange(6)
    a = sb.generate_batch(ids, torch.Generator().manual_seed(5), cfg, hard=True)
    b = sb.generate_batch(ids, torch.Generator().manual_seed(5), cfg, hard=True)
    c = sb.generate_batch(ids, torch.Generator().manual_seed(6), cfg, hard=True)
    for name in ("images", "masks", "deform_map", "texture_map"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.camera.as_tensor(), b.camera.as_tensor())
    assert torch.equal(a.noisy_camera.as_tensor(), b.noisy_camera.as_tensor())
    assert not torch.equal(a.images, c.images)


def test_build_is_deterministic_and_reports(built, tmp_path):
    root, report = built
    assert {s: r["num_images"] for s, r in report.items()} == ALL_SIZES
    again = sb.build_synthbirds(tmp_path, tiny_config(), seed=3, splits=["val"], progress=False)
    assert again["val"]["status"] == "built"
    a, b = read_split(root, "val"), read_split(tmp_path, "val")
    for key in a.annotations:
        assert same(a.annotations[key], b.annotations[key]), key
    for i in range(len(a.names)):
        assert a.image_path(i).read_bytes() == b.image_path(i).read_bytes()
        assert a.mask_path(i).read_bytes() == b.mask_path(i).read_bytes()
    # Same settings again: kept, not rebuilt; other settings: refused without force.
    assert sb.build_synthbirds(root, tiny_config(), seed=3, splits=["val"], progress=False)["val"]["status"] == "exists"
    with pytest.raises(FileExistsError, match="--force"):
        sb.build_synthbirds(root, tiny_config(), seed=4, splits=["val"], progress=False)


def test_masks_non_empty_binary_and_sized(built):
    root, _ = built
    for split in ALL_SIZES:
        ds = ReconstructionDataset(root, split)
        for i in range(len(ds)):
            item = ds[i]
            s = ds.image_size
            assert item["image"].shape == (3, s, s) and item["mask"].shape == (1, s, s)
            m = item["mask"]
            assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
            cover = float(m.mean())
            assert 0.05 < cover < 0.8, (split, i, cover)
            # The bird is not cut by the frame: the mask border rows/columns are empty.
            assert m[0, 0].sum() + m[0, -1].sum() + m[0, :, 0].sum() + m[0, :, -1].sum() == 0


def test_rendering_the_ground_truth_reproduces_images_and_masks(built):
    root, _ = built
    template = make_uv_sphere()
    for split in ("train", "test_hard", "test_unseen"):
        ds = ReconstructionDataset(root, split)
        batch = ds.batch(range(len(ds)))
        cam = WeakPerspectiveCamera.from_tensor(batch["camera"])
        image, mask = sb.render_ground_truth(batch["deform_map"], batch["texture_map"], cam, ds.image_size, template=template)
        twig = sb.occluder_mask(torch.from_numpy(ds.annotation("occluder")), ds.image_size)
        expected = mask * (~twig).float()
        mismatch = (expected != batch["mask"]).float().mean()
        assert mismatch < 2e-3, f"{split}: {float(mismatch):.4f} of mask pixels differ"
        inside = (expected * batch["mask"]).bool().expand_as(image)
        diff = (image - batch["image"]).abs()[inside]
        assert float(diff.mean()) < 1.5 / 255 and float((diff > 3 / 255).float().mean()) < 0.01
        # Outside the bird the images are not black: textured backgrounds.
        outside = (~batch["mask"].bool()).expand_as(image)
        assert float(batch["image"][outside].std()) > 0.03
        # The stored vertices are the map's vertices, and they project inside the frame.
        verts = deform_vertices(template, batch["deform_map"])
        assert float(cam.project(verts).abs().max()) < 1.0


def test_occluded_images_lose_the_twig_pixels(built):
    root, _ = built
    ds = ReconstructionDataset(root, "test_hard")
    occluded, extreme = ds.annotation("occluded"), ds.annotation("extreme")
    assert occluded.any() and (occluded | extreme).all()
    occ = np.asarray(ds.annotation("occluder"))
    assert np.isnan(occ[~occluded]).all() and np.isfinite(occ[occluded]).all()
    twig = sb.occluder_mask(torch.from_numpy(occ), ds.image_size)
    for i in np.flatnonzero(occluded):
        mask = ds[int(i)]["mask"].bool()
        assert not (mask & twig[i]).any()
    ordinary = ReconstructionDataset(root, "train")
    assert not ordinary.annotation("occluded").any() and not ordinary.annotation("extreme").any()


def test_articulation_extremes_are_held_out():
    cfg = tiny_config()
    g = torch.Generator().manual_seed(0)
    ordinary = sb.sample_bird_params(torch.arange(200) % 12, g, cfg)
    hard = sb.sample_bird_params(torch.arange(200) % 12, g, cfg, hard=True)
    assert float(ordinary.wing_open.max()) <= cfg.wing_open_range[1]
    lo, hi = cfg.tail_scale_range
    assert float(ordinary.tail_scale.min()) >= lo and float(ordinary.tail_scale.max()) <= hi
    ext = hard.extreme
    outside = (hard.wing_open[:, 0] > cfg.wing_open_range[1]) | (hard.tail_scale < lo) | (hard.tail_scale > hi)
    assert torch.equal(outside[ext], torch.ones_like(outside[ext])) and ext.float().mean() > 0.3
    # Open wings reach further out than folded ones.
    p = sb.sample_bird_params(torch.zeros(2, dtype=torch.long), g, cfg)
    p.wing_open = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    v = deform_vertices(make_uv_sphere(), sb.deformation_map(p, 32))
    span = v[..., 0].abs().amax(1)
    assert float(span[1]) > float(span[0]) + 0.4


def test_symmetric_maps_and_asymmetric_option():
    g = torch.Generator().manual_seed(1)
    p = sb.sample_bird_params(torch.arange(12), g, tiny_config())
    deform = sb.deformation_map(p, 16)
    tex = sb.texture_map(p, 32, g, deform_map=deform)
    assert torch.equal(mirror_uv_map(deform[..., :8], negate_x=True), deform)
    assert torch.equal(mirror_uv_map(tex[..., :16], negate_x=False), tex)
    verts = deform_vertices(make_uv_sphere(), deform)
    mirrored = verts * torch.tensor([-1.0, 1, 1])
    # Every vertex has a mirror partner (x -> -x) on the symmetric mesh.
    d = torch.cdist(verts, mirrored).amin(-1)
    assert float(d.max()) < 2e-3  # float32 round-off of u vs 1 - u lookups
    q = sb.sample_bird_params(torch.arange(12), g, tiny_config(symmetric=False))
    assert not torch.equal(q.wing_open[:, 0], q.wing_open[:, 1])
    deform_q = sb.deformation_map(q, 16)
    assert not torch.allclose(mirror_uv_map(deform_q[..., :8], negate_x=True), deform_q, atol=1e-3)
    tex_q = sb.texture_map(q, 32, g, deform_map=deform_q)
    assert tex_q.shape == (12, 3, 32, 32) and 0 <= float(tex_q.min()) and float(tex_q.max()) <= 1
    assert not torch.allclose(mirror_uv_map(tex_q[..., :16], negate_x=False), tex_q, atol=1e-2)
    batch = sb.generate_batch(torch.arange(4), g, tiny_config(symmetric=False), hard=True)
    assert (batch.masks.sum((1, 2, 3)) > 0).all()


def test_species_are_distinguishable_by_colour():
    cfg = tiny_config()
    g = torch.Generator().manual_seed(2)
    ids = torch.arange(12 * 6) % 12
    batch = sb.generate_batch(ids, g, cfg)
    m = batch.masks
    feats = (batch.images * m).sum((2, 3)) / m.sum((2, 3))  # mean bird colour per image
    centroids = torch.stack([feats[ids == k].mean(0) for k in range(12)])
    dist = torch.cdist(centroids, centroids) + torch.eye(12) * 10
    assert float(dist.min()) > 0.04, f"closest species pair in mean colour: {float(dist.min()):.3f}"
    # A nearest-centroid classifier on held-out birds beats chance (1/12) by far.
    test = sb.generate_batch(ids, torch.Generator().manual_seed(9), cfg)
    tf = (test.images * test.masks).sum((2, 3)) / test.masks.sum((2, 3))
    acc = float((torch.cdist(tf, centroids).argmin(1) == ids).float().mean())
    assert acc > 0.6, acc
    assert len(SPECIES) >= 12


def test_cameras_cover_the_circle_and_noise_is_moderate():
    cfg = tiny_config()
    g = torch.Generator().manual_seed(4)
    batch = sb.generate_batch(torch.arange(64) % 12, g, cfg)
    az, el = batch.azimuth, batch.elevation
    hist = torch.histc(az, bins=4, min=0, max=360)
    assert (hist > 5).all()
    assert float(el.min()) >= cfg.elevation_range[0] - 1 and float(el.max()) <= cfg.elevation_range[1] + 1
    assert 0.6 < float(batch.camera.scale.median()) < 2.0
    r1 = quaternion_to_matrix(batch.camera.rotation)
    r2 = quaternion_to_matrix(batch.noisy_camera.rotation)
    cos = ((torch.einsum("bij,bij->b", r1, r2) - 1) / 2).clamp(-1, 1)
    angle = torch.rad2deg(torch.acos(cos))
    assert 2.0 < float(angle.mean()) < 12.0
    rel = (batch.noisy_camera.scale / batch.camera.scale).log().abs().mean()
    assert 0.005 < float(rel) < 0.1


def test_interrupted_build_never_looks_complete_and_resumes(tmp_path, monkeypatch):
    cfg = tiny_config()
    real = sb.make_chunk
    calls = {"n": 0}

    def flaky(config, seed, split, chunk):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        return real(config, seed, split, chunk)

    monkeypatch.setattr(sb, "make_chunk", flaky)
    with pytest.raises(KeyboardInterrupt):
        sb.build_synthbirds(tmp_path / "a", cfg, seed=3, splits=["train"], progress=False, workers=0)
    assert not (tmp_path / "a" / "train").exists()
    assert (tmp_path / "a" / ".partial-train").exists()
    with pytest.raises(FileNotFoundError, match="interrupted"):
        read_split(tmp_path / "a", "train")
    monkeypatch.setattr(sb, "make_chunk", real)
    report = sb.build_synthbirds(tmp_path / "a", cfg, seed=3, splits=["train"], progress=False, workers=0)
    assert report["train"]["status"] == "resumed"
    sb.build_synthbirds(tmp_path / "b", cfg, seed=3, splits=["train"], progress=False, workers=0)
    a, b = read_split(tmp_path / "a", "train"), read_split(tmp_path / "b", "train")
    for key in a.annotations:
        assert same(a.annotations[key], b.annotations[key]), key
    assert not (tmp_path / "a" / ".partial-train").exists()


def test_synthbirds_dir_resolution(tmp_path):
    assert sb.synthbirds_dir("data", "quick").as_posix() == "data/synthbirds_quick"
    assert sb.synthbirds_dir("data/synthbirds_quick", "lite").as_posix() == "data/synthbirds_quick"


# --------------------------------------------------------------------------------------------------
# test_unseen: held-out species
# --------------------------------------------------------------------------------------------------


def test_unseen_species_are_new_names_and_new_shapes():
    assert len(UNSEEN_SPECIES) == 3 and not set(UNSEEN_SPECIES_NAMES) & set(SPECIES_NAMES)
    # each lies outside the seen species' range in at least one body-plan number
    seen = {"crest": max(s.crest for s in SPECIES), "beak_length": max(s.beak[0] for s in SPECIES),
            "beak_width": max(s.beak[1] for s in SPECIES), "tail_fan": max(s.tail[4] for s in SPECIES)}
    hoopoe, toucan, peafowl = UNSEEN_SPECIES
    assert hoopoe.crest > seen["crest"]
    assert toucan.beak[0] > seen["beak_length"] and toucan.beak[1] > seen["beak_width"]
    assert peafowl.tail[4] > seen["tail_fan"]


def test_unseen_split_holds_only_held_out_species(built):
    root, _ = built
    ds = ReconstructionDataset(root, "test_unseen")
    assert len(ds) == 6
    assert (ds.annotation("class_id") == -1).all() and (ds.class_ids == -1).all()
    species = ds.annotation("species").tolist()
    assert sorted(species) == sorted(UNSEEN_SPECIES_NAMES * 2)  # balanced
    assert ds.meta["unseen_species"] == list(UNSEEN_SPECIES_NAMES) and ds.class_names == list(SPECIES_NAMES)
    # ordinary birds: no extremes, no twigs
    assert not ds.annotation("extreme").any() and not ds.annotation("occluded").any()
    assert float(ds.annotation("wing_open").max()) <= tiny_config().wing_open_range[1]
    root_meta = read_json(root / "meta.json")
    assert root_meta["unseen_species"] == list(UNSEEN_SPECIES_NAMES) and root_meta["splits"]["test_unseen"] == 6
    # the seen splits: the GAN's classes only, no species column
    for split in SIZES:
        seen = read_split(root, split)
        assert "species" not in seen.annotations, split
        ids = seen.annotations["class_id"]
        assert ids.min() >= 0 and ids.max() < len(SPECIES), split


def test_unseen_birds_are_drawn_from_their_own_table():
    """The same draws with the unseen table give other birds (its species' means), class -1 and names."""
    cfg = tiny_config()
    ids = torch.arange(3)
    p_seen = sb.sample_bird_params(ids, torch.Generator().manual_seed(7), cfg)
    p_unseen = sb.sample_bird_params(ids, torch.Generator().manual_seed(7), cfg, species=UNSEEN_SPECIES)
    assert torch.equal(p_seen.wing_open, p_unseen.wing_open)  # the same random stream...
    assert not torch.allclose(sb.deformation_map(p_seen, 16), sb.deformation_map(p_unseen, 16), atol=0.05)  # ...other birds
    seen = sb.generate_batch(ids, torch.Generator().manual_seed(7), cfg)
    unseen = sb.generate_batch(ids, torch.Generator().manual_seed(7), cfg, species=UNSEEN_SPECIES)
    assert seen.species is None and torch.equal(seen.class_id, ids)
    assert unseen.species == UNSEEN_SPECIES_NAMES and (unseen.class_id == -1).all()
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        sb.generate_batch(torch.tensor([3]), torch.Generator().manual_seed(7), cfg, species=UNSEEN_SPECIES)


def _split_files(root, split) -> dict:
    folder = root / split
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_adding_test_unseen_to_an_older_dataset_leaves_the_rest_alone(tmp_path):
    """A dataset built before test_unseen existed (its four splits, a root meta.json without unseen_species)
    gets only the new split: the others are reported "exists" and keep their bytes and signatures."""
    import json
    import shutil

    cfg = sb.SynthBirdsConfig.for_profile("quick", sizes={"train": 4, "val": 2, "test": 3, "test_hard": 2}, chunk=4)
    root = tmp_path / "older"
    old = ("train", "val", "test", "test_hard")
    sb.build_synthbirds(root, cfg, seed=3, splits=old, progress=False, workers=0)
    meta = json.loads((root / "meta.json").read_text())
    del meta["unseen_species"]  # as the code before test_unseen wrote it
    (root / "meta.json").write_text(json.dumps(meta))
    before = {s: _split_files(root, s) for s in old}
    shutil.copytree(root, tmp_path / "copy")

    # the new split alone (as on a shipped dataset): the root meta.json keeps the other splits
    assert sb.build_synthbirds(tmp_path / "copy", cfg, seed=3, splits=["test_unseen"], progress=False)["test_unseen"][
        "status"] == "built"
    assert json.loads((tmp_path / "copy" / "meta.json").read_text())["splits"] == {**meta["splits"], "test_unseen": 6}

    report = sb.build_synthbirds(root, cfg, seed=3, progress=False, workers=0)  # the default: every split
    assert {s: r["status"] for s, r in report.items()} == {**{s: "exists" for s in old}, "test_unseen": "built"}
    assert {s: _split_files(root, s) for s in old} == before
    for s in old:  # the signature a split was built with is the one it always had: config without test_unseen
        assert "test_unseen" not in json.loads((root / s / "meta.json").read_text())["config"]["sizes"]
    after = json.loads((root / "meta.json").read_text())
    assert after["splits"] == {"train": 4, "val": 2, "test": 3, "test_hard": 2, "test_unseen": 6}
    assert after["unseen_species"] == list(UNSEEN_SPECIES_NAMES)
    assert {k: after[k] for k in meta if k != "splits"} == {k: meta[k] for k in meta if k != "splits"}
    # again: nothing to do; another size for test_unseen is another dataset, refused without force
    assert {r["status"] for r in sb.build_synthbirds(root, cfg, seed=3, progress=False).values()} == {"exists"}
    other = sb.SynthBirdsConfig.for_profile("quick", sizes={**cfg.sizes, "test_unseen": 3}, chunk=4)
    with pytest.raises(FileExistsError, match="other settings"):
        sb.build_synthbirds(root, other, seed=3, splits=["test_unseen"], progress=False)
    with pytest.raises(ValueError, match="unknown splits"):
        sb.build_synthbirds(root, cfg, seed=3, splits=["test_unknown"], progress=False)


def test_unseen_split_sizes_per_profile():
    assert {p: sb.SynthBirdsConfig.for_profile(p).split_size("test_unseen") for p in ("quick", "lite", "paper")} == {
        "quick": 6, "lite": 24, "paper": 200}
    for profile in ("quick", "lite", "paper"):  # every split's signature holds the config: it must not change
        cfg = sb.SynthBirdsConfig.for_profile(profile)
        assert "test_unseen" not in cfg.sizes and "test_unseen" not in cfg.to_dict()["sizes"]
        assert cfg.split_names == ("train", "val", "test", "test_hard", "test_unseen") == sb.SPLITS


def test_lite_config_is_the_one_the_shipped_prior_was_trained_on():
    """Datasets built before test_unseen existed stay valid only if the config they record is still the code's:
    the shipped prior's provenance holds the lite dataset's meta.json as that older code wrote it."""
    import json

    from meshinv_lite.gan import shipped_paths

    recorded = read_json(shipped_paths()[1])["data_recipe"]["dataset_meta"]
    assert json.loads(json.dumps(sb.SynthBirdsConfig.for_profile("lite").to_dict())) == recorded["config"]
    assert recorded["class_names"] == list(SPECIES_NAMES)
