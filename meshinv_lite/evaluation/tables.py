"""The markdown tables of evaluation results: the paper-style table and the ground-truth table."""
from __future__ import annotations

import math
from typing import Sequence

from .fid import fid_key

#: The paper's Table 1 (CUB, MeshInversion): reference figures printed beside ours.
PAPER_CUB = {"iou": 0.708, "fid_1": 38.6, "fid_10": 38.6, "fid_12": 56.6}


def _fmt(v, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _fmt_sig(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def results_table(metrics: dict, label: str = "ours (SynthBirds)", extra_rows: Sequence[tuple[str, dict]] = (),
                  dataset: str = "SynthBirds", objects: str = "synthetic birds") -> str:
    """The paper's Table 1 layout (IoU, FID_1, FID_10, FID_12) in Markdown, the paper's CUB figures
    beside ours, with the differences spelled out (data; and the feature extractor when the fallback ran).
    ``extra_rows``: more ``(label, metrics)`` rows (e.g. the hard split; missing figures print as n/a).
    ``dataset`` / ``objects``: what our rows ran on, in the data column and the note (``"SynthCars"`` /
    ``"synthetic cars"``; a converted CUB: ``"CUB (converted)"`` / ``"real photos"``)."""
    fb = bool(metrics.get("fd_is_fallback", True))
    name = "FD (fallback)" if fb else "FID"
    head = f"| method | data | IoU ↑ | {name}_1 ↓ | {name}_10 ↓ | {name}_12 ↓ |"
    lines = [head, "|---|---|---|---|---|---|",
             f"| MeshInversion (paper, Table 1) | CUB-200-2011 | {PAPER_CUB['iou']:.3f} | {PAPER_CUB['fid_1']:.1f} | "
             f"{PAPER_CUB['fid_10']:.1f} | {PAPER_CUB['fid_12']:.1f} |"]
    for lab, m in [(label, metrics), *extra_rows]:
        figs = [m.get(fid_key(k, fb)) for k in (1, 10, 12)]
        lines.append(f"| {lab} | {dataset} {m.get('split', '')}, {m.get('num_images', 0)} images, "
                     f"{m.get('camera', '')} cameras | {_fmt(m.get('iou'), 3)} | "
                     + " | ".join(_fmt_sig(f) if fb else _fmt(f, 1) for f in figs) + " |")
    notes = ["", f"The paper's row is on CUB (real photos, thousands of test images); ours is on {objects} with far fewer "
             "images: the numbers show the protocol running, not a reproduction of the paper's figures."]
    if fb:
        notes.append(f"**Our distance columns are NOT FID**: no Inception-v3 FID weights were found, so they are Frechet "
                     f"distances of a fallback extractor ({metrics.get('fd_feature_extractor', '?')}), on another "
                     f"scale and not comparable to the paper's FID.")
    else:
        notes.append(f"FID with {metrics.get('fd_feature_extractor', 'Inception-v3')}; with so few images FID is "
                     "biased upwards and not comparable to figures over thousands of images.")
    return "\n".join(lines + notes) + "\n"


GT_COLUMNS = (("psnr_input_view", "PSNR input view ↑", 2), ("psnr_novel", "PSNR novel views ↑", 2),
              ("ssim_novel", "SSIM novel ↑", 3), ("chamfer_3d", "3D Chamfer ↓", 4), ("f_score", "F-score ↑", 3),
              ("tex_err_seen", "texture error, seen ↓", 3), ("tex_err_unseen", "texture error, unseen ↓", 3),
              ("folded", "folded faces ↓", 4), ("folded_gt", "folded faces, true birds", 4))


#: In-domain realism (:func:`realism_figures`): the evaluation network's figures, never called FID.
REALISM_COLUMNS = (("fd_in_domain_1", "FD in-domain_1 ↓", 3), ("fd_in_domain_10", "FD in-domain_10 ↓", 3),
                   ("fd_in_domain_12", "FD in-domain_12 ↓", 3), ("perceptual_novel", "perceptual distance, novel ↓", 4),
                   ("sharpness_novel", "sharpness ratio, novel (1 = true detail)", 3))


def ground_truth_table(rows: Sequence[tuple[str, dict]], category: str = "birds") -> str:
    """Markdown table of the SynthBirds ground-truth figures (not in the paper: CUB has no 3D ground truth);
    ``category="cars"`` for SynthCars' (the words, and the realism network's label says where it was trained)."""
    from ..data.category import get_category

    cat = get_category(category)
    lines = ["| split | " + " | ".join(h.replace("true birds", f"true {cat.plural}") for _, h, _ in GT_COLUMNS) + " |",
             "|---|" + "---|" * len(GT_COLUMNS)]
    for lab, m in rows:
        lines.append(f"| {lab} | " + " | ".join(_fmt(m.get(k), d) for k, _, d in GT_COLUMNS) + " |")
    if any("fd_in_domain_12" in m for _, m in rows):
        lines += ["", "| split | " + " | ".join(h for _, h, _ in REALISM_COLUMNS) + " |",
                  "|---|" + "---|" * len(REALISM_COLUMNS)]
        for lab, m in rows:
            lines.append(f"| {lab} | " + " | ".join(_fmt(m.get(k), d) for k, _, d in REALISM_COLUMNS) + " |")
        net = next((m.get("realism_network") for _, m in rows if m.get("realism_network")), "?")
        lines += ["", f"FD in-domain: Frechet distance of novel views to the true {cat.plural}' renders (the paper's 1/10/12-view "
                  f"protocol) in the features of {net}; not FID, and on its own scale."]
    return "\n".join(lines) + "\n"
