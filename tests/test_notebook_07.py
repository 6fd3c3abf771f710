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
