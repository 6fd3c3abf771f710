import pytest

from conftest import assert_picture


@pytest.mark.notebook
def test_notebook_01_builds_the_data_and_reports(run_notebook, tmp_path):
    data = tmp_path / "data" / "synthbirds_quick"
    out, m = run_notebook("01_synthbirds_data", data_dir=str(data))
    assert m["split_sizes"] == {"train": 48, "val": 16, "test": 16, "test_hard": 16, "test_unseen": 6}
    assert (data / "train" / "meta.json").exists() and (data / "test_hard" / "annotations.npz").exists()
    assert m["gt_rerender_mask_iou"] > 0.99 and m["gt_rerender_color_error_255"] < 1.5
    assert 0.1 < m["mask_coverage_mean"] < 0.6
    assert m["species_mean_color_min_distance"] > 0.04
    assert 1.0 < m["noisy_rotation_error_deg_mean"] < 12.0
    assert m["test_hard_occluded_fraction"] > 0 and m["test_hard_extreme_fraction"] > 0
    # the "Try it" checks, run with their defaults, find what the text tells the student to expect
    ex = m["exercises"]
    assert ex["own_species"]["iou"] > 0.999 and ex["own_species"]["rgb"][2] > ex["own_species"]["rgb"][0]
    assert ex["wings_open"]["area_ratio"] > 1.1
    assert ex["camera_iou"]["camera"] == "noisy" and 0.75 < ex["camera_iou"]["iou_mean"] < 0.97
    assert all(e["held"] for e in ex.values()), ex
    for png in ("species_grid.png", "images_masks.png", "cameras.png", "gt_maps.png", "gt_rerender.png",
                "articulation.png", "test_hard.png", "species_colors.png"):
        assert_picture(out / png)
