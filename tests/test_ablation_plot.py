"""The ablation figure draws what its panels say (issue 33): a variant worse than ours on a lower-is-better metric
must sit on the side its title calls worse, at the stored difference, with its bootstrap interval."""
from __future__ import annotations


import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from meshinv_lite.evaluation.ablation import plot_summary  # noqa: E402

KEYS = (("perceptual", "perceptual distance", -1), ("chamfer_3d", "3D Chamfer", -1), ("iou", "IoU (input view)", 1))


def _entry(diff: float, lo: float, hi: float) -> dict:
    return {"mean": 0.5, "vs_ours": {"diff": diff, "lo": lo, "hi": hi, "n": 4, "wins": 1}}


def _summary() -> dict:
    # "worse": worse than ours on every metric (higher perceptual / Chamfer, lower IoU); "better": the reverse
    ours = {"n": 4, "perceptual": {"mean": 0.2}, "chamfer_3d": {"mean": 0.07}, "iou": {"mean": 0.8}}
    return {"test x1": {"ours": ours,
                        "worse": {"n": 4, "perceptual": _entry(0.03, 0.01, 0.05),
                                  "chamfer_3d": _entry(0.004, 0.001, 0.007), "iou": _entry(-0.02, -0.03, -0.01)},
                        "better": {"n": 4, "perceptual": _entry(-0.01, -0.02, -0.005),
                                   "chamfer_3d": _entry(-0.002, -0.003, -0.001), "iou": _entry(0.01, 0.002, 0.02)}}}


def _drawn(ax, y: float) -> tuple[float, tuple[float, float]]:
    """The point and the interval drawn on row ``y`` of ``ax``."""
    point = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and np.allclose(ln.get_ydata(), y)]
    span = [ln for ln in ax.get_lines() if ln.get_marker() != "o" and len(ln.get_xdata()) == 2
            and np.allclose(ln.get_ydata(), y)]
    assert len(point) == 1 and len(span) == 1, (len(point), len(span))
    x = span[0].get_xdata()
    return float(point[0].get_xdata()[0]), (float(min(x)), float(max(x)))


def _reading(title: str) -> tuple[int, int]:
    """``(what is drawn: +1 for variant - ours, -1 for ours - variant, better side: +1 right, -1 left)`` from a
    panel's title, whichever of the two honest conventions it uses."""
    t = title.lower()
    if "ours - variant" in t or "improvement over ours" in t:
        drawn = -1
    elif "variant - ours" in t:
        drawn = 1
    else:
        raise AssertionError(f"the title does not say what is drawn: {title!r}")
    if "higher is better" in t:
        better = 1
    elif "lower is better" in t:
        better = -1
    else:
        raise AssertionError(f"the title does not say which side is better: {title!r}")
    return drawn, better


def test_every_panel_draws_what_its_title_says(tmp_path):
    summary = _summary()
    path = tmp_path / "ablation.png"
    fig = plot_summary(summary, keys=KEYS, path=path)
    axes = fig.axes
    assert len(axes) == len(KEYS)
    rows = {t.get_text(): y for t, y in zip(axes[0].get_yticklabels(), axes[0].get_yticks())}
    assert set(rows) == {"test x1: worse", "test x1: better"}
    for ax, (key, _, sign) in zip(axes, KEYS):
        drawn, better = _reading(ax.get_title())
        for v, worse in (("worse", True), ("better", False)):
            e = summary["test x1"][v][key]["vs_ours"]
            x, (lo, hi) = _drawn(ax, rows[f"test x1: {v}"])
            assert x == pytest.approx(drawn * e["diff"])
            assert (lo, hi) == pytest.approx(tuple(sorted((drawn * e["lo"], drawn * e["hi"]))))
            assert lo <= x <= hi
            # the side the title calls better is where a better variant lies, and not where a worse one does
            assert np.sign(x) == (-better if worse else better), (key, v, ax.get_title(), x)
        assert ax.get_xlabel(), f"{key}: no axis label"
    # a lower-is-better panel read with the raw difference: the worse variant is right of 0
    perceptual = axes[0]
    if _reading(perceptual.get_title())[0] == 1:
        assert _drawn(perceptual, rows["test x1: worse"])[0] > 0
    matplotlib.pyplot.close(fig)
    from PIL import Image

    with Image.open(path) as im:
        assert min(im.info["dpi"]) >= 149.5


def test_the_shipped_picture_is_at_least_150_dpi():
    from pathlib import Path

    from PIL import Image

    png = Path(__file__).resolve().parents[1] / "bench" / "results" / "loss_ablation_lite.png"
    if not png.exists():
        pytest.skip("no shipped ablation picture")
    with Image.open(png) as im:
        assert min(im.info["dpi"]) >= 149.5
