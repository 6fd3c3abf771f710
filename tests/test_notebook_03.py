import pytest


@pytest.mark.notebook
def test_notebook_03_pretraining(run_notebook, shared_data_dir):
    out, m = run_notebook("03_gan_pretraining", data_dir=str(shared_data_dir))
    assert m["iterations"] == 40
    # the trained prior is closer to the data than the untrained one, on both measures
    assert m["trained_feature_frechet_distance"] < m["untrained_feature_frechet_distance"]
    assert m["trained_mask_area_gap"] < m["untrained_mask_area_gap"]
    assert m["feature_extractor"]  # which extractor produced the distance is recorded
    assert m["feature_extractor_is_fallback"] == m["feature_extractor"].startswith("OFFLINE FALLBACK")
    for k in ("loss_g_uv_final", "loss_d_uv_final", "loss_g_img_final"):
        assert m[k] > 0
    assert (shared_data_dir / "synthbirds_quick" / "gan_noisy" / "latest.pt").exists()
    for png in ("samples_untrained.png", "samples_trained.png", "samples_orbit.png", "losses.png"):
        assert (out / png).stat().st_size > 1000
