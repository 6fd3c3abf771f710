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
