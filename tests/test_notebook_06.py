import csv
import math

import pytest

from conftest import assert_picture


@pytest.mark.notebook
def test_notebook_06_evaluation(run_notebook, shared_data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no Inception weights: the fallback must run
    out, m = run_notebook("06_evaluation", data_dir=str(shared_data_dir))
    assert m["profile"] == "quick" and m["test_num_images"] == 6 and m["test_hard_num_images"] == 3
    assert m["test_iou"] >= 0.82 and m["test_hard_iou"] >= 0.74  # measured 0.861 / 0.816 (a plain sphere: 0.79)
    assert m["test_psnr_novel"] >= 17.5 and m["test_chamfer_3d"] < 0.077  # measured 20.7 dB, 0.065
    # the twig is cut out of the mask, never in it: leaving its pixels out can only raise the IoU
    assert m["test_hard_iou_occluder_ignored"] >= m["test_hard_iou"] - 1e-3
    # labelled fallback: figures under fd_fallback_k, nothing called FID
    assert m["fd_is_fallback"] is True and "NOT INCEPTION" in m["fd_feature_extractor"]
    assert not [k for k in m if k.startswith("fid")]
    assert all(m[f"fd_fallback_{k}"] > 0 for k in (1, 10, 12))
    table = (out / "table.md").read_text()
    assert "0.708" in table and "38.6" in table and "56.6" in table and "NOT FID" in table and "FID_1" not in table
    # in-domain realism against each bird's own truth, in the evaluation network's features (never FID)
    assert "never used by a loss" in m["realism_network"] and "FD in-domain_10" in table
    assert all(m[f"test_fd_in_domain_{k}"] >= 0 for k in (1, 10, 12))
    # measured at quick: perceptual 0.111 (test) / 0.376 (unseen species); sharpness 2.0: 64 px renders of the
    # prior's 128 px textures alias (more high-frequency energy than the truth's 64 px texture), see notebook 06
    assert 0 < m["test_perceptual_novel"] < 0.3 and 0.2 < m["test_sharpness_novel"] < 8
    assert m["test_unseen_perceptual_novel"] > m["test_perceptual_novel"]  # the unseen species look less right
    # ground truth around the circle
    pv = m["test_psnr_per_view"]
    assert sorted(int(a) for a in pv) == list(range(0, 360, 30)) and all(5 < v < 60 for v in pv.values())
    # orderings the protocol implies: the seen view beats the back, seen texels beat unseen ones
    assert pv["0"] > pv["180"] + 1 and m["test_psnr_near_side"] > m["test_psnr_far_side"]
    # seen vs unseen texels: close with the symmetric shipped prior (measured 0.094 vs 0.085, unseen even
    # lower: the notebook teaches why), so the test holds both small and close rather than ordered
    assert m["test_tex_err_seen"] < 0.15 and m["test_tex_err_unseen"] < 0.15
    assert abs(m["test_tex_err_seen"] - m["test_tex_err_unseen"]) < 0.04
    assert 0.1 < m["test_seen_fraction"] < 0.7
    with open(out / "test" / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [f"{i:06d}" for i in range(6)]
    # held-out species: inverted without a class (the initialisation chose one), reported beside test and test_hard
    assert m["test_unseen_num_images"] == 3 and "unseen species" in table
    assert m["test_unseen_iou"] >= 0.70  # measured 0.805 (hoopoe as goldfinch, toucan as crow, peafowl as blue jay)
    assert m["test_unseen_psnr_novel"] < m["test_psnr_novel"]  # out of distribution: measured 16.0 vs 20.7 dB
    assert set(m["test_unseen_class_choice"]) == {"hoopoe", "toucan", "peafowl"}
    with open(out / "test_unseen" / "per_image.csv") as f:
        unseen = list(csv.DictReader(f))
    assert [r["class_id"] for r in unseen] == ["-1"] * 3 and all(r["class_chosen_name"] for r in unseen)
    for png in ("psnr_per_view.png", "protocol_views.png", "texture_error_seen_unseen.png", "reference_images.png",
                "unseen_species.png"):
        assert_picture(out / png)
    # the comparison written out with render_turned gives the package's per-view PSNR for image 0 (measured: 0.0 dB apart)
    assert m["written_out_psnr_max_gap"] < 0.5
    # exercise 1: exact instead of noisy cameras (image 1): IoU and the 3D Chamfer barely move (measured IoU
    # 0.876 -> 0.868 / 0.878 -> 0.864, Chamfer 0.0668 -> 0.0644 at 1 thread, 0.0656 -> 0.0674 at 2: noise)
    ex = m["exercise_camera"]
    assert ex["image"] == 1 and ex["iou_within_0.02"] is True and ex["chamfer_within_0.01"] is True
    # exercise 2: the Frechet distance between two halves of the real images falls as the sets grow
    fd = m["exercise_fd_set_size"]
    assert set(fd) == {"2", "4", "8", "16"} and fd["16"] < fd["2"]   # (metrics.json sorts its keys)
    for png in ("one_bird_around.png", "exercise_fd_set_size.png"):
        assert_picture(out / png)
    _reports_both_methods(out, m)
    _reports_the_regression_baseline(out, m)


def _reports_both_methods(out, m):
    """Each split evaluated twice: the paper's latent inversion and with the adaptation phase (issue 29)."""
    for split in ("test", "test_hard", "test_unseen"):
        assert m[f"{split}_adapt_iou"] > m[f"{split}_latent_iou"], split            # measured +0.08 to +0.14
        assert m[f"{split}_adapt_psnr_input_view"] > m[f"{split}_latent_psnr_input_view"] + 1, split   # +4.4 to +7.1 dB
        assert m[f"{split}_adapt_psnr_novel"] > m[f"{split}_latent_psnr_novel"] - 0.5, split          # +0.4 to +0.6 dB
    assert (out / "test_adapt" / "per_image.csv").exists()


def _reports_the_regression_baseline(out, m):
    """The paper's comparison (issue 32): the encoder's one forward pass beside inversion on every split."""
    for split in ("test", "test_hard", "test_unseen"):
        for method in ("encoder_only", "texture_flow"):
            assert 0.3 < m[f"{split}_{method}_iou"] < m[f"{split}_latent_iou"], (split, method)   # search fits better
            assert m[f"{split}_{method}_seconds_per_image"] < m[f"{split}_inversion_seconds_per_image"] / 5
            assert (out / f"{split}_{method}" / "per_image.csv").exists()
        # one shape and camera, two textures: the silhouettes are the same
        assert abs(m[f"{split}_encoder_only_iou"] - m[f"{split}_texture_flow_iou"]) < 1e-6
    # where regression wins: the held-out species' colours, which the texture flow copies and the prior cannot make
    # (measured at quick: FD in-domain 10 0.093 against inversion's 0.205; lite 0.078 against 0.235)
    assert "test_unseen" in m["texture_flow_more_realistic_on"]
    assert_picture(out / "methods_turned.png")


@pytest.mark.notebook
def test_notebook_06_evaluation_for_cars(run_notebook, shared_cars_dir, monkeypatch, tmp_path):
    """category='cars' on a few images: SynthCars splits scored against their ground truth with the synthcars_lite
    prior; the regression baselines (bird encoder) skip; tables and labels say SynthCars, realism is scored with the
    cars' own metric network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    out, m = run_notebook("06_evaluation", data_dir=str(shared_cars_dir), category="cars", num_images=2, hard_images=1,
                          unseen_images=1, batch_size=2, threads=1)
    from meshinv_lite.data.category import CARS

    assert m["category"] == "cars" and m["checkpoint"].endswith("synthcars_lite.pt")
    assert m["test_num_images"] == 2 and m["test_hard_num_images"] == 1 and m["test_unseen_num_images"] == 1
    # the car prior at work (quick, 2 test cars): the quick pipeline's 6 give IoU 0.85 and novel-view PSNR 22.5 dB; a
    # plain sphere, a bird prior or a broken template stays well below
    assert m["test_iou"] >= 0.80 and m["test_psnr_novel"] >= 19.0 and m["test_chamfer_3d"] <= 0.11, \
        {k: m[k] for k in ("test_iou", "test_psnr_novel", "test_chamfer_3d")}
    assert "SynthCars-trained" in m["realism_network"]
    assert not any("encoder_only" in k or "texture_flow" in k for k in m)   # skipped: the encoder is bird-only
    chosen = [c for per in m["test_unseen_class_choice"].values() for c in per]
    assert chosen and set(chosen) <= set(CARS.class_names)   # held-out cars answered with a body type of the prior
    assert set(m["test_unseen_class_choice"]) <= set(CARS.unseen_class_names)
    table = (out / "table.md").read_text()
    assert "SynthCars test, 2 images" in table and "SynthBirds" not in table
    assert "Ground truth (SynthCars only" in table and "synthcars_eval" in table
    with open(out / "test" / "per_image.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    for png in ("protocol_views.png", "methods_turned.png", "psnr_per_view.png", "unseen_species.png",
                "one_bird_around.png"):
        assert_picture(out / png)


@pytest.mark.notebook
def test_notebook_06_with_imported_weights_on_a_dataset_without_ground_truth(run_notebook, cub_and_authors, monkeypatch,
                                                                              tmp_path):
    """weights= and dataset= (converted CUB: no 3D ground truth, only a test split) on 2 images: IoU against the
    dataset's masks and FID_1/10/12 (the labelled fallback here) run, the results table holds the rows that exist, and
    every cell that needs ground truth, test_hard / test_unseen or the SynthBirds encoder says it is skipped and why."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))   # no Inception weights: the fallback must run
    dataset, weights = cub_and_authors
    out, m = run_notebook("06_evaluation", data_dir=str(tmp_path / "data"), weights=str(weights), dataset=str(dataset),
                          num_images=2, batch_size=2, threads=1)
    assert m["weights"] == str(weights) and m["checkpoint"] == str(weights)
    assert m["dataset"] == str(dataset) and m["has_ground_truth"] is False and m["dataset_name"] == "CUB (converted)"
    assert m["test_num_images"] == 2 and 0 <= m["test_iou"] <= 1
    assert m["test_iou_mask_source"] == ["predicted_mask (PointRend)"]   # the paper's: IoU against the mask used
    assert m["fd_is_fallback"] is True and not [k for k in m if k.startswith("fid")]
    assert all(math.isfinite(m[f"fd_fallback_{k}"]) and m[f"fd_fallback_{k}"] >= 0 for k in (1, 10, 12))
    # nothing that needs the truth, another split or the encoder was scored
    assert not [k for k in m if k.startswith(("test_hard", "test_unseen"))]
    assert not [k for k in m if any(s in k for s in ("psnr", "chamfer", "tex_err", "fd_in_domain", "perceptual",
                                                     "adapt", "encoder_only", "texture_flow", "exercise_camera"))]
    assert not (tmp_path / "data").exists()
    table = (out / "table.md").read_text()
    assert "CUB (converted) test, 2 images" in table and "real photos" in table and "NOT FID" in table
    assert "Ground truth" not in table and "hard cases" not in table and "unseen" not in table
    text = (out.parent / "06_evaluation.ipynb").read_text()
    for split in ("test_hard", "test_unseen"):
        assert f"skipped: inverting and scoring of {split}: it needs {split}" in text, split
    for what in ("the ground-truth table", "the adaptation phase", "the comparison with the truth around the circle",
                 "texture error on the seen and unseen texels", "exercise 1"):
        assert f"skipped: {what}" in text, what
    assert "skipped: the regression baselines (encoder only, texture flow): it needs the shipped image encoder" in text
    with open(out / "test" / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and not any(k.startswith("psnr") for k in rows[0])
    for png in ("protocol_views.png", "reference_images.png", "methods_turned.png"):
        assert_picture(out / png)
    for png in ("psnr_per_view.png", "one_bird_around.png", "texture_error_seen_unseen.png", "unseen_species.png"):
        assert not (out / png).exists(), png
