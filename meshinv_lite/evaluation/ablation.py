"""Which losses make MeshInversion work? A paired ablation over texture and mask losses, camera noise and splits.

Every variant inverts **the same images with the same seed**, so the figures are compared image by image:
for each metric, each variant's mean with a 95 % bootstrap interval, its paired difference to ``ours``
(with its own interval) and the number of images on which it wins. A *cell* is one ``(split, noise, variant)``
and is stored as soon as it is done (``<out>/<split>_x<noise>_<variant>.npz``), so an interrupted run resumes.

Variants (:data:`VARIANTS`): ``ours`` (Chamfer texture on pixels + in-domain features, Chamfer mask), the same with
the random VGG fallback as features, Chamfer on pixels only, pixel-aligned L1 and L2, the perceptual (feature L2)
loss, and ``ours`` with the soft-IoU mask loss. Camera noise ``x k`` multiplies the data's simulated SfM error
(:func:`meshinv_lite.render.scale_camera_error`; ``x1`` is the dataset's noisy camera).

Metrics per image: input-view IoU (and, on data with occluder annotations, the IoU with the twig's pixels
left out of both masks: :func:`meshinv_lite.evaluation.iou_occluder_ignored`); novel views (11 turns of 30
degrees) against the truth: PSNR, SSIM, perceptual distance and sharpness ratio (:mod:`meshinv_lite.evaluation.realism`,
the evaluation network that no loss sees); 3D Chamfer and F-score; the share of folded faces. Per cell: FD in-domain 1/10/12 against the
ground-truth renders (a set figure; its paired interval resamples images).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..io import atomic_savez

OURS = "ours"


@dataclass(frozen=True)
class Variant:
    """What a variant changes: texture losses ``(name, weight)``, the mask loss, the feature network (``None``: the
    config's in-domain network, see :func:`variant_config`)."""

    label: str
    texture_losses: tuple[tuple[str, float], ...]
    mask_loss: str = "chamfer"
    features: Optional[str] = None


VARIANTS: dict[str, Variant] = {
    OURS: Variant("Chamfer pixel + feature (ours)", (("chamfer", 1.0), ("chamfer_feature", 0.04))),
    "ours_random_features": Variant("Chamfer pixel + feature, random VGG", (("chamfer", 1.0), ("chamfer_feature", 0.04)),
                                    features="vgg19"),
    "chamfer_pixel": Variant("Chamfer pixel only", (("chamfer", 1.0),)),
    "l1": Variant("L1 (pixel-aligned)", (("l1", 1.0),)),
    "l2": Variant("L2 (pixel-aligned)", (("l2", 1.0),)),
    "perceptual": Variant("perceptual (feature L2)", (("perceptual", 1.0),)),
    "ours_iou_mask": Variant("ours, soft-IoU mask", (("chamfer", 1.0), ("chamfer_feature", 0.04)), mask_loss="iou"),
}

#: ``(key, label, +1 if higher is better, -1 if lower, 0 if neither)``; ``fd_in_domain_*`` are set figures, the rest
#: per image. The sharpness ratio is best at 1 (below: blurrier than the truth; above: more high-frequency energy,
#: e.g. creases and noise), so its paired comparison uses ``sharpness_gap = |log2 ratio|``.
METRICS = (("iou", "IoU (input view)", 1), ("iou_occluder_ignored", "IoU, twig ignored", 1),
           ("psnr_novel", "PSNR novel (dB)", 1), ("ssim_novel", "SSIM novel", 1),
           ("perceptual", "perceptual distance", -1), ("sharpness", "sharpness ratio (1 = truth)", 0),
           ("sharpness_gap", "sharpness gap |log2 ratio|", -1),
           ("chamfer_3d", "3D Chamfer", -1), ("f_score", "F-score@0.1", 1), ("folded", "folded faces", -1))
FD_METRICS = (("fd_in_domain_1", "FD in-domain 1", -1), ("fd_in_domain_10", "FD in-domain 10", -1),
              ("fd_in_domain_12", "FD in-domain 12", -1))


def cell_name(split: str, noise: float, variant: str) -> str:
    """``"<split>_x<noise>_<variant>"``, e.g. ``test_x1_ours``: a cell's key and file stem."""
    return f"{split}_x{noise:g}_{variant}"


def noisy_batch(batch: dict, noise: float) -> dict:
    """A copy of a dataset batch whose ``noisy_camera`` carries ``noise`` times the data's camera error."""
    from ..render.camera import WeakPerspectiveCamera, scale_camera_error

    if noise == 1:
        return batch
    exact = WeakPerspectiveCamera.from_tensor(batch["camera"])
    noisy = WeakPerspectiveCamera.from_tensor(batch["noisy_camera"])
    return {**batch, "noisy_camera": scale_camera_error(exact, noisy, noise).as_tensor()}


def read_cell(path) -> tuple[dict, str]:
    """A stored cell of :func:`run_cell`: its arrays, and the signature (the settings it was made with)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k != "signature"}, str(z["signature"])


def variant_config(config, variant: str):
    """``config`` (an :class:`~meshinv_lite.inversion.InversionConfig`) with the losses and feature network of
    :data:`VARIANTS` ``[variant]``; every other setting is kept. A variant without its own network uses the config's,
    with ``"auto"`` named as the shipped in-domain one (``synthbirds_features``; a car config already names
    ``synthcars_features``) so that no variant silently switches to ImageNet VGG where its weights exist."""
    from dataclasses import replace

    v = VARIANTS[variant]
    features = v.features or (config.features if config.features != "auto" else "synthbirds_features")
    return replace(config, texture_losses=v.texture_losses, mask_loss=v.mask_loss, features=features)


def run_cell(generator, dataset, indices: Sequence[int], variant: str, noise: float, config, eval_net, out_path,
             batch_size: int = 8, seed: int = 0, template=None) -> dict:
    """Invert ``indices`` of ``dataset`` with ``config`` exactly as given (for a loss variant of :data:`VARIANTS`,
    pass :func:`variant_config`) at camera noise ``x noise`` and score them; ``variant`` names the cell in its
    signature. The result (per-image metrics and view embeddings) is written to ``out_path`` (``.npz``) and
    returned. An existing file made with the same settings is read back instead of recomputed."""
    import torch

    from ..inversion.search import invert_batch
    from ..render.camera import WeakPerspectiveCamera
    from ..render.mesh import deform_vertices, make_uv_sphere
    from .ground_truth import reconstruction_metrics
    from .realism import realism_per_image

    signature = json.dumps({"variant": variant, "noise": noise, "indices": list(map(int, indices)), "seed": seed,
                            "config": config.to_dict(), "split": dataset.split, "eval_net": eval_net.name},
                           sort_keys=True, default=str)
    out_path = Path(out_path)
    if out_path.exists():
        old, old_signature = read_cell(out_path)
        if old_signature == signature:
            return old
    template = template or make_uv_sphere()
    rows: dict[str, list] = {}
    t0 = time.perf_counter()
    for s in range(0, len(indices), batch_size):
        idx = list(indices[s:s + batch_size])
        batch = noisy_batch(dataset.batch(idx), noise)
        rec = invert_batch(generator, batch, config, template=template, seed=seed + idx[0])
        m = reconstruction_metrics(rec, batch, template, config.render)
        gt_verts = deform_vertices(template, batch["deform_map"])
        r = realism_per_image(eval_net, template, rec.vertices, rec.texture, rec.camera, gt_verts,
                              batch["texture_map"], WeakPerspectiveCamera.from_tensor(batch["camera"]), config.render)
        for key in ("iou", "psnr_novel", "ssim_novel", "chamfer_3d", "f_score", "folded"):
            rows.setdefault(key, []).append(m[key].numpy())
        if "occluder" in dataset.data.annotations:
            from .evaluate import iou_occluder_ignored

            twig = torch.as_tensor(dataset.data.annotations["occluder"][np.asarray(idx)])
            rows.setdefault("iou_occluder_ignored", []).append(
                iou_occluder_ignored(rec, batch["mask"], twig, template, config.render).numpy())
        rows.setdefault("perceptual", []).append(r["perceptual"].mean(1).numpy())
        rows.setdefault("sharpness", []).append(r["sharpness_ratio"].mean(1).numpy())
        rows.setdefault("embed_pred", []).append(r["embed_pred"])
        rows.setdefault("embed_true", []).append(r["embed_true"])
        rows.setdefault("class_id", []).append(rec.class_id.cpu().numpy())
        rows.setdefault("steps", []).append(np.full(len(idx), len(rec.history.get("total", []))))
    result = {k: np.concatenate(v) for k, v in rows.items()}
    result["seconds"] = np.asarray(time.perf_counter() - t0)
    result["indices"] = np.asarray(list(indices))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_savez(out_path, signature=np.asarray(signature), **result)
    return result


# --------------------------------------------------------------------------------------------------
# Paired statistics
# --------------------------------------------------------------------------------------------------


def bootstrap_mean(values: np.ndarray, rounds: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` ``(N,)`` and its 95 % percentile bootstrap interval."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (rounds, values.size))].mean(1)
    return float(values.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def paired(a: np.ndarray, base: np.ndarray, sign: int, rounds: int = 10000, seed: int = 0) -> dict:
    """``a - base`` per image: mean, 95 % bootstrap interval, and wins of ``a`` (better by ``sign``)."""
    d = np.asarray(a, float) - np.asarray(base, float)
    mean, lo, hi = bootstrap_mean(d, rounds, seed)
    return {"diff": mean, "lo": lo, "hi": hi, "wins": int((sign * d > 0).sum()), "n": int(d.size)}


def fd_paired(embed_a: np.ndarray, embed_base: np.ndarray, embed_true: np.ndarray, views=(1, 10, 12),
              rounds: int = 300, seed: int = 0) -> dict:
    """FD in-domain of two variants against the same truths, and the bootstrap interval of their difference
    (images resampled with replacement, the same draw for both)."""
    from .realism import fd_from_embeddings

    fa, fb = fd_from_embeddings(embed_a, embed_true, views), fd_from_embeddings(embed_base, embed_true, views)
    rng = np.random.default_rng(seed)
    n = embed_a.shape[0]
    diffs: dict[str, list[float]] = {k: [] for k in fa}
    for _ in range(rounds):
        i = rng.integers(0, n, n)
        if np.unique(i).size < 2:
            continue
        ra, rb = fd_from_embeddings(embed_a[i], embed_true[i], views), fd_from_embeddings(embed_base[i], embed_true[i], views)
        for k in fa:
            diffs[k].append(ra[k] - rb[k])
    return {k: {"value": fa[k], "base": fb[k], "diff": fa[k] - fb[k], "lo": float(np.quantile(diffs[k], 0.025)),
                "hi": float(np.quantile(diffs[k], 0.975)), "n": n} for k in fa}


def _with_sharpness_gap(cell: dict) -> dict:
    """The cell with ``sharpness_gap = |log2 sharpness ratio|`` per image (0: the truth's level of detail)."""
    return {**cell, "sharpness_gap": np.abs(np.log2(np.clip(cell["sharpness"], 1e-6, None)))}


def summarize(cells: dict[str, dict], conditions: Sequence[tuple[str, float]], variants: Sequence[str],
              fd_rounds: int = 300) -> dict:
    """``{condition: {variant: {metric: {...}}}}`` from computed cells (``cells[cell_name(...)]``): per metric
    the variant's mean and interval, and (variants other than ``ours``) the paired difference to ``ours``."""
    out: dict = {}
    for split, noise in conditions:
        cond = f"{split} x{noise:g}"
        base = cells.get(cell_name(split, noise, OURS))
        if base is not None:
            base = _with_sharpness_gap(base)
        out[cond] = {}
        for v in variants:
            c = cells.get(cell_name(split, noise, v))
            if c is None:
                continue
            entry: dict = {"n": int(c["iou"].size), "seconds_per_image": float(c["seconds"]) / max(int(c["iou"].size), 1)}
            c = _with_sharpness_gap(c)
            for key, _, sign in METRICS:
                if key not in c:  # e.g. iou_occluder_ignored: data without occluder annotations, or an older cell
                    continue
                mean, lo, hi = bootstrap_mean(c[key])
                entry[key] = {"mean": mean, "lo": lo, "hi": hi}
                if base is not None and v != OURS and sign and key in base:
                    entry[key]["vs_ours"] = paired(c[key], base[key], sign)
            if base is not None and v != OURS and c["embed_pred"].shape[0] >= 2:
                for k, fd in fd_paired(c["embed_pred"], base["embed_pred"], base["embed_true"], rounds=fd_rounds).items():
                    entry[k] = {"mean": fd["value"], "vs_ours": {"diff": fd["diff"], "lo": fd["lo"], "hi": fd["hi"], "n": fd["n"]}}
            elif c["embed_pred"].shape[0] >= 2:
                from .realism import fd_from_embeddings

                for k, val in fd_from_embeddings(c["embed_pred"], c["embed_true"]).items():
                    entry[k] = {"mean": val}
            out[cond][v] = entry
    return out


def format_table(summary: dict, keys: Sequence[tuple[str, str, int]] = METRICS + FD_METRICS) -> str:
    """Plain-text tables, one per condition: rows variants, columns metrics; each cell the mean and, for
    variants other than ours, ``diff [lo, hi] wins/n`` against ours."""
    lines = []
    for cond, variants in summary.items():
        if not variants:
            continue
        n = next(iter(variants.values()))["n"]
        lines.append(f"\n== {cond} ({n} images; differences are variant - ours, paired, 95 % bootstrap; wins = images "
                     "where the variant is better)")
        for key, label, sign in keys:
            row = [f"{label:<22}"]
            for v, e in variants.items():
                if key not in e:
                    continue
                s = f"{v}: {e[key]['mean']:.4g}"
                vs = e[key].get("vs_ours")
                if vs:
                    s += f" ({vs['diff']:+.3g} [{vs['lo']:+.3g}, {vs['hi']:+.3g}]" + (f" {vs['wins']}/{vs['n']})" if "wins" in vs else ")")
                row.append(s)
            lines.append("  ".join(row))
    return "\n".join(lines)


def _better_side(sign: int) -> str:
    """How a panel of :func:`plot_summary` reads: which side of 0 is better for the variant."""
    if sign > 0:
        return "higher is better"
    if sign < 0:
        return "lower is better"
    return "neither side is better"


def plot_summary(summary: dict, keys: Sequence[tuple[str, str, int]] = (("psnr_novel", "PSNR novel (dB)", 1),
                 ("perceptual", "perceptual distance", -1), ("fd_in_domain_10", "FD in-domain 10", -1),
                 ("sharpness_gap", "sharpness gap |log2 ratio|", -1), ("iou", "IoU (input view)", 1),
                 ("chamfer_3d", "3D Chamfer", -1)),
                 path=None, dpi: int = 150):
    """One panel per metric: for every condition and variant (other than ours), the paired difference
    ``variant - ours`` with its 95 % bootstrap interval, drawn **as it is** (not sign-flipped), so the figure
    reads like :func:`format_table`, the JSON and the README tables.

    Which side is better depends on the metric: each panel's title says ``variant - ours, higher is better`` or
    ``variant - ours, lower is better`` (the third entry of ``keys``: +1 / -1), and its x label points to the
    side where the variant beats ours. Every panel is drawn the same way.

    Args:
        summary: :func:`summarize`'s ``{condition: {variant: {metric: {"mean", ..., "vs_ours": {"diff", "lo",
            "hi", ...}}}}}``; conditions with ours only are skipped; a metric without ``vs_ours`` leaves its row
            empty in that panel.
        keys: ``(metric key, label, sign)`` per panel, sign +1 if higher is better, -1 if lower is better
            (0: the title claims neither).
        path: where to save the figure (PNG), or None.
        dpi: the saved figure's resolution (>= 150 for the shipped pictures).

    Returns:
        The matplotlib Figure; rows follow :data:`VARIANTS`' order within each condition. In each panel, the point
        of a row (a ``Line2D`` with marker ``"o"``) is at ``x = diff`` and its interval (a two-point line) spans
        ``[lo, hi]``, at the row's y tick.
    """
    import matplotlib.pyplot as plt

    conds = [c for c, v in summary.items() if len(v) > 1]
    n_rows = sum(len(summary[c]) - 1 for c in conds)
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys) + 1.5, 0.32 * n_rows + 2.2),
                             sharey=True, squeeze=False)
    labels, ys = [], []
    y = 0
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = {v: i for i, v in enumerate(VARIANTS)}  # rows in the order of VARIANTS (a JSON summary comes sorted)
    for ci, cond in enumerate(conds):
        for v in sorted(summary[cond], key=lambda v: order.get(v, len(order))):
            if v == OURS:
                continue
            labels.append(f"{cond}: {v}")
            ys.append(y)
            for ax, (key, label, sign) in zip(axes[0], keys):
                e = summary[cond][v].get(key, {}).get("vs_ours")
                if e is None:
                    continue
                # drawn as stored: variant - ours (no sign flip; the title says which side is better)
                d, lo, hi = e["diff"], min(e["lo"], e["hi"]), max(e["lo"], e["hi"])
                ax.plot([lo, hi], [y, y], color=colours[ci % len(colours)], lw=2)
                ax.plot([d], [y], "o", color=colours[ci % len(colours)])
            y += 1
        y += 0.5
    for ax, (key, label, sign) in zip(axes[0], keys):
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{label}\n(variant - ours, {_better_side(sign)})", fontsize=8)
        side = "variant better \u2192" if sign > 0 else "\u2190 variant better" if sign < 0 else ""
        ax.set_xlabel(f"variant - ours   {side}".rstrip(), fontsize=7)
        ax.tick_params(labelsize=7)
        ax.locator_params(axis="x", nbins=4)
    axes[0][0].set_yticks(ys)
    axes[0][0].set_yticklabels(labels, fontsize=7)
    axes[0][0].invert_yaxis()
    fig.suptitle("paired differences variant - ours per image (mean, 95 % bootstrap interval); the better side "
                 "differs per metric: see each panel's title", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig
