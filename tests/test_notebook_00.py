import pytest

from conftest import assert_picture


@pytest.mark.notebook
def test_notebook_00_runs_and_reports(run_notebook):
    out, m = run_notebook("00_meshes_cameras_rendering")
    assert m["num_vertices"] == 962 and m["num_faces"] == 1920
    assert m["sphere_area_rel_error"] < 0.01
    assert m["fit_iou_final"] > 0.93 and m["fit_iou_final"] > m["fit_iou_initial"] + 0.1
    assert m["render_ms_per_image"] > 0
    for png in ("uv_layout.png", "uv_maps.png", "orbit.png", "render_stages.png", "fit_loss.png", "fit_overlay.png"):
        assert_picture(out / png)
