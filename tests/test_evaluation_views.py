import numpy as np
import pytest

from meshinv_lite.evaluation import GT_AZIMUTHS, near_side, psnr_around


def _rows(values):
    return [{"name": f"{i:06d}", **{f"psnr_az{a:03d}": v for a, v in zip(GT_AZIMUTHS, vals)}} for i, vals in enumerate(values)]


def test_near_side_splits_the_circle_at_90_degrees():
    assert [a for a in GT_AZIMUTHS if near_side(a)] == [0, 30, 60, 300, 330]
    assert not near_side(90) and not near_side(270) and near_side(360) and near_side(-30)


def test_psnr_around_means_and_sides():
    # image 0: 30 dB on the near side, 20 dB on the far side; image 1: 2 dB less everywhere
    a = [30.0 if near_side(x) else 20.0 for x in GT_AZIMUTHS]
    s = psnr_around(_rows([a, [v - 2 for v in a]]))
    assert s["per_image"].shape == (2, 12) and s["azimuths"] == list(GT_AZIMUTHS)
    assert np.allclose(s["mean"], [v - 1 for v in a])
    assert s["per_view"]["0"] == pytest.approx(29.0) and s["back"] == pytest.approx(19.0)
    assert s["input_view"] == pytest.approx(29.0)
    assert s["near_side"] == pytest.approx(29.0) and s["far_side"] == pytest.approx(19.0)
    assert set(s["per_view"]) == {str(x) for x in GT_AZIMUTHS}


def test_psnr_around_reads_csv_strings_and_refuses_missing_columns():
    rows = [{k: str(v) for k, v in r.items()} for r in _rows([list(range(12))])]
    assert psnr_around(rows)["back"] == pytest.approx(6.0)
    assert np.isnan(psnr_around(_rows([list(range(12))]), azimuths=(0, 90))["back"])
    with pytest.raises(KeyError, match="psnr_az"):
        psnr_around([{"name": "x"}])
    with pytest.raises(ValueError):
        psnr_around([])
