import pytest


@pytest.mark.notebook
def test_notebook_04_inversion(run_notebook, shared_data_dir):
    out, m = run_notebook("04_inversion", data_dir=str(shared_data_dir))
    assert m["steps"] == 40 and m["profile"] == "quick"
    assert m["shift2_chamfer_excess"] < 0.25 * m["shift2_l1"]  # Chamfer forgives a 2 px shift, L1 does not
    assert 0.3 < m["test_iou"] <= 1 and 0 < m["test_hard_iou"] <= 1
    assert m["test_psnr_novel"] > 8
    assert set(m["ablation"]) >= {"Chamfer (ours) + Chamfer mask", "L1 + Chamfer mask", "Chamfer + IoU mask"}
    for f in ("obj", "png", "glb"):
        assert (out / "meshes" / f"test_0000.{f}").stat().st_size > 1000
    assert "map_Kd test_0000.png" in (out / "meshes" / "test_0000.mtl").read_text()
    for png in ("novel_views.png", "inversion_loss.png"):
        assert (out / png).stat().st_size > 1000
