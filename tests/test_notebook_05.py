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
