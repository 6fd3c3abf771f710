import pytest

from conftest import assert_picture


@pytest.mark.notebook
def test_notebook_00_runs_and_reports(run_notebook):
    out, m = run_notebook("00_meshes_cameras_rendering")
    assert m["num_vertices"] == 962 and m["num_faces"] == 1920
    assert m["sphere_area_rel_error"] < 0.01
    assert m["fit_iou_final"] > 0.93 and m["fit_iou_final"] > m["fit_iou_initial"] + 0.1
    assert m["render_ms_per_image"] > 0
    # the hand-written loop (section 5): its loss falls and its silhouettes close in on the targets
    assert m["loop_steps"] == 40
    assert m["loop_loss_last"] < 0.25 * m["loop_loss_first"]
    assert m["loop_iou_final"] > 0.9 and m["loop_iou_final"] > m["loop_iou_initial"] + 0.1
    # the "Try it" checks, run with their defaults, find what the text tells the student to expect
    ex = m["exercises"]
    assert ex["quaternion_turn"]["found"] == "towards you" and ex["quaternion_turn"]["held"]
    assert ex["soft_reach"]["pixels"][1] > 2 * ex["soft_reach"]["pixels"][0] and ex["soft_reach"]["held"]
    assert ex["wide_blur_fit"]["area_ratio"] < 1 and ex["wide_blur_fit"]["iou"] < m["loop_iou_final"]
    assert ex["wide_blur_fit"]["held"]
    for png in ("uv_layout.png", "uv_maps.png", "orbit.png", "render_stages.png", "loop_fit.png", "fit_loss.png",
                "fit_overlay.png"):
        assert_picture(out / png)
