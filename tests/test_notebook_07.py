import json

import pytest

from conftest import REPO, assert_picture


@pytest.mark.notebook
def test_notebook_07_your_own_bird(run_notebook):
    """The bundled example photo (500 x 375, no camera file) goes in; species and camera are estimated."""
    out, m = run_notebook("07_your_own_bird")
    truth = json.loads((REPO / "notebooks" / "examples" / "bird_truth.json").read_text())
    assert m["profile"] == "quick" and m["hypotheses"] >= 2
    assert m["truth_azimuth"] == pytest.approx(truth["azimuth"])
    assert m["azimuth_error"] <= 30             # the estimated view is the true one (not its front/back mirror)
    assert m["species_right"] is True           # a robin comes back a robin
    assert m["iou"] >= 0.75                     # and its silhouette matches the photo's
    assert m["feature_extractor"].startswith(("in-domain features (SynthBirds-trained)", "vgg19"))  # never the random fallback
    result = json.loads((out / "result.json").read_text())
    assert result["camera"]["estimated"] and result["class"]["estimated"]
    assert result["photo"]["size"] == [375, 500] and len(result["hypotheses"]) == m["hypotheses"]
    for f in ("reconstruction.obj", "reconstruction.mtl", "reconstruction.png", "reconstruction.glb", "turntable.gif"):
        assert (out / f).stat().st_size > (40 if f.endswith(".mtl") else 400)
    for png in ("framing.png", "hypotheses.png", "overlay.png", "turntable.png"):
        assert_picture(out / png)
    # step 2 written out is the package's search (same hypotheses); its pictures
    assert m["search_matches_package"] is True
    # the fast path (the command's default): the encoder's hypotheses find the same robin on the same side, faster
    assert m["encoder_species"] == truth["species"] and m["encoder_vs_grid_azimuth"] < 30
    assert m["encoder_iou"] >= 0.75 and m["encoder_seconds"] < m["grid_seconds"]
    for png in ("hypotheses_search.png", "species_scores.png", "exercise_wrong_species.png", "exercise_wrong_side.png"):
        assert_picture(out / png)
    # exercise 1: a seagull bent into the robin's outline: the silhouette fits, the loss does not
    # (measured IoU 0.907 vs 0.909, loss 2.275 vs 2.115)
    assert m["exercise_wrong_species"]["species"] == "seagull" and m["exercise_wrong_species"]["held"] is True
    assert m["exercise_wrong_species"]["final_loss"] > m["final_loss"]
    # exercise 2: started on the other side (180 degrees), inversion does not find its way back (IoU 0.638, loss 2.398)
    assert m["exercise_wrong_side"]["turn"] == 180 and m["exercise_wrong_side"]["held"] is True
