import pytest

from conftest import assert_picture


@pytest.mark.notebook
def test_notebook_05_texture_transfer(run_notebook, shared_data_dir):
    out, m = run_notebook("05_texture_transfer", data_dir=str(shared_data_dir))
    assert m["profile"] == "quick"
    assert m["num_shapes"] == 4 and m["num_textures"] == 4 and m["num_pairs"] == 12 and m["num_views"] == 2
    assert m["geometry_unchanged"] is True                 # a swap never moves a vertex
    assert m["ground_truth_geometry_unchanged"] is True
    assert m["direct_render_max_error"] < 1e-5             # grid cell == rendering A's vertices with B's texture
    assert m["transfer_colour_change_min"] > 0.005         # ... and it does change the colours
    assert m["shape_silhouette_iou_between_rows_max"] < 0.999  # the shapes differ, so the check is not empty
    assert m["hard_indices"]["wing_open"] != m["hard_indices"]["long_tail"]
    assert all(0.6 < v <= 1 for v in m["iou"].values()) and len(m["iou"]) == 4  # the shipped prior fits them
    for png in ("transfer_grid.png", "transfer_grid_ground_truth.png", "inputs_and_textures.png", "hard_cases_input_view.png"):
        assert_picture(out / png)
    # written-out swap and the exercises (true shapes and textures: deterministic)
    assert_picture(out / "swap_one_shape.png")
    assert m["exercise_same_species_psnr"] > m["exercise_other_species_psnr"] + 5   # the layout lines up (34.8 vs 18.0 dB)
    assert m["exercise_roll_shift"] == 8 and m["exercise_rolled_psnr"] < m["exercise_same_species_psnr"] - 5  # 26.1 dB
    assert_picture(out / "exercise_rolled_texture.png")


@pytest.mark.notebook
def test_notebook_05_with_imported_weights_on_a_dataset_without_ground_truth(run_notebook, cub_and_authors, tmp_path):
    """weights= (the authors' generator, its own template) and dataset= (converted CUB: no 3D ground truth, no
    test_hard) on 2 test images: the reconstructions' transfer grid runs and its checks hold; the true-shape grid,
    the hard birds and the exercises say they are skipped and why."""
    dataset, weights = cub_and_authors
    out, m = run_notebook("05_texture_transfer", data_dir=str(tmp_path / "data"), weights=str(weights),
                          dataset=str(dataset), num_test=2, threads=1)
    assert m["weights"] == str(weights) and m["checkpoint"] == str(weights)
    assert m["dataset"] == str(dataset) and m["has_ground_truth"] is False and m["dataset_name"] == "CUB (converted)"
    assert set(m["iou"]) == {"test 0", "test 1"} and all(0 <= v <= 1 for v in m["iou"].values())
    assert m["num_shapes"] == 2 and m["num_textures"] == 2 and m["num_pairs"] == 2
    assert m["geometry_unchanged"] is True and m["direct_render_max_error"] < 1e-5   # the swap, on the authors' mesh
    assert m["transfer_colour_change_min"] > 0
    assert not any(k in m for k in ("hard_indices", "ground_truth_geometry_unchanged", "exercise_same_species_psnr",
                                    "exercise_rolled_psnr"))
    assert not (tmp_path / "data").exists()   # nothing of SynthBirds built, no shipped prior needed
    text = (out.parent / "05_texture_transfer.ipynb").read_text()
    for what in ("the same swap on the true shapes and textures", "exercise 1", "exercise 2"):
        assert f"skipped: {what}" in text and "has no 3D ground truth" in text, what
    assert "skipped: the open-wing and long-tail birds" in text and "it needs test_hard" in text
    for png in ("transfer_grid.png", "inputs_and_textures.png", "swap_one_shape.png"):
        assert_picture(out / png)
    for png in ("transfer_grid_ground_truth.png", "hard_cases_input_view.png", "exercise_rolled_texture.png"):
        assert not (out / png).exists(), png
