"""Error around the circle: per-view ground-truth figures of a split, summarised by side.

:func:`~meshinv_lite.evaluation.evaluate_split` writes one ``psnr_azNNN`` column per turn from the input view
(``GT_AZIMUTHS``: 0, 30, ..., 330). :func:`psnr_around` reads them back as an array and says what a person wants
to know from it: the input view, straight behind, and the near side (within 90 degrees of the input view) against
the far side (90-270 degrees, where everything comes from the prior). Notebook 06 plots it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .evaluate import GT_AZIMUTHS


def near_side(azimuth: float) -> bool:
    """Whether a turn of ``azimuth`` degrees from the input view still looks at the input's side (< 90 away)."""
    a = float(azimuth) % 360
    return a < 90 or a > 270


def psnr_around(rows: Sequence[dict], azimuths: Sequence[int] = GT_AZIMUTHS) -> dict:
    """Per-view PSNR of ``rows`` (``per_image.csv`` rows with ``psnr_azNNN`` columns), summarised.

    Returns ``{"azimuths": [...], "per_image": (N, K) array, "mean": (K,) array, "per_view": {"0": dB, ...},
    "input_view", "back" (180), "near_side", "far_side"}`` (the last four: means in dB over the images'
    mean curve; ``back`` is ``nan`` when 180 is not among ``azimuths``).
    """
    if not rows:
        raise ValueError("psnr_around needs at least one row")
    az = [int(a) for a in azimuths]
    missing = [f"psnr_az{a:03d}" for a in az if f"psnr_az{a:03d}" not in rows[0]]
    if missing:
        raise KeyError(f"the rows have no column {missing[0]} (were they written with ground truth?)")
    per_image = np.array([[float(r[f"psnr_az{a:03d}"]) for a in az] for r in rows])
    mean = per_image.mean(0)
    per_view = {str(a): float(v) for a, v in zip(az, mean)}
    near = [v for a, v in zip(az, mean) if near_side(a)]
    far = [v for a, v in zip(az, mean) if not near_side(a)]
    return {"azimuths": az, "per_image": per_image, "mean": mean, "per_view": per_view,
            "input_view": per_view.get("0", float("nan")), "back": per_view.get("180", float("nan")),
            "near_side": float(np.mean(near)) if near else float("nan"),
            "far_side": float(np.mean(far)) if far else float("nan")}
