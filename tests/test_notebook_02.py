import pytest


@pytest.mark.notebook
def test_notebook_02_pseudo_gt(run_notebook, shared_data_dir):
    out, m = run_notebook("02_pseudo_ground_truth", data_dir=str(shared_data_dir))
    assert m["train_images"] == 48
    assert m["test_exact_iou"] >= 0.90  # the target with exact cameras
    assert m["test_noisy_iou"] >= 0.85
    assert 0 < m["test_exact_texture_mae_visible"] < 0.2
    assert 0.1 < m["test_exact_visible_fraction"] < 0.6
    assert m["test_exact_vertex_error"] < 0.6
    for png in ("fitted_silhouettes.png", "back_projection.png", "train_pseudo_gt.png", "pseudo_gt_vs_truth.png"):
        assert (out / png).stat().st_size > 1000, png
    assert (shared_data_dir / "synthbirds_quick" / "pseudo_gt_noisy" / "train" / "meta.json").exists()
