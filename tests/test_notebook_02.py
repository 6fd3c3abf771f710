import pytest

from conftest import assert_picture


@pytest.mark.notebook
def test_notebook_02_pseudo_gt(run_notebook, shared_data_dir):
    out, m = run_notebook("02_pseudo_ground_truth", data_dir=str(shared_data_dir))
    assert m["train_images"] == 48
    # the hand-written silhouette fit works: from the sphere (0.41 measured) to a fitted outline (0.94), loss down
    assert m["my_fit_iou_before"] < 0.6 and m["my_fit_iou_after"] >= 0.9
    assert m["my_fit_soft_iou_loss_last"] < 0.2 * m["my_fit_soft_iou_loss_first"]
    # the exercises' default runs show what their text expects (deterministic on the CPU)
    for k in ("exercise_smoothness_held", "exercise_anchor_held", "exercise_mirror_held"):
        assert m[k] is True, k
    assert m["test_exact_iou"] >= 0.93 and m["test_noisy_iou"] >= 0.93  # silhouettes fit (0.97 measured)
    # the species mean fixes depth: 3D error well below the fit from the sphere (0.073 vs 0.115 measured)
    assert m["test_noisy_chamfer_3d"] < 0.8 * m["test_noisy_sphere_chamfer_3d"]
    assert m["demo_chamfer_species_mean"] < 0.8 * m["demo_chamfer_sphere"]
    assert m["test_exact_chamfer_3d"] < 0.08
    # the camera refinement cell: correcting each demo image's camera keeps its shape nearer the truth (measured 0.072
    # -> 0.069); a correction that does not move the camera gives the same figure twice
    assert m["demo_chamfer_cameras_refined"] < 0.99 * m["demo_chamfer_cameras_given"]
    assert m["demo_chamfer_cameras_given"] == m["demo_chamfer_species_mean"]  # birds: off by default, the fit above
    # the mirror fill recovers the far flank: visible share grows by half or more (0.32 -> 0.54 measured)
    assert m["demo_visible_fraction_mirror_filled"] > 1.5 * m["demo_visible_fraction"]
    assert 0.4 < m["test_exact_visible_fraction"] < 0.7
    assert m["test_exact_texture_mae_visible"] < 0.12
    for png in ("my_fit_loss.png", "my_fit_silhouettes.png", "fit_loss.png", "fitted_silhouettes.png",
                "species_means.png", "depth_from_species_mean.png", "back_projection.png", "train_pseudo_gt.png",
                "pseudo_gt_vs_truth.png"):
        assert_picture(out / png)
    assert (shared_data_dir / "synthbirds_quick" / "pseudo_gt_noisy" / "train" / "meta.json").exists()
    assert (shared_data_dir / "synthbirds_quick" / "pseudo_gt_noisy" / "species_means.npz").exists()
