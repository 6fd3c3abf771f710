"""What the method-comparison benches share: per-method rows paired against a base method, and their text lines.

A *cell* is one method's per-image arrays on one split (``(N,)`` per metric, ``psnr_per_view`` ``(N, V)``,
``perceptual_per_view``, and the metric network's ``embed_pred`` / ``embed_true`` for FD in-domain).
"""
from __future__ import annotations

from meshinv_lite.evaluation import fd_paired, paired
from meshinv_lite.evaluation.ablation import bootstrap_mean

FD_KEYS = ("fd_in_domain_1", "fd_in_domain_10", "fd_in_domain_12")


def paired_row(cell: dict, base: dict, metrics, vs_key: str, is_base: bool) -> dict:
    """Mean and 95 % bootstrap interval of each metric ``(key, label, sign)`` the cell has, paired against ``base``
    under ``vs_key`` (``sign`` +1 higher is better, -1 lower, 0 neither: then read as +1), the per-view means and FD
    in-domain 1/10/12 paired against the base's renders."""
    row = {}
    for key, _, sign in metrics:
        if key not in cell:
            continue
        mean, lo, hi = bootstrap_mean(cell[key])
        row[key] = {"mean": mean, "lo": lo, "hi": hi}
        if not is_base:
            row[key][vs_key] = paired(cell[key], base[key], sign if sign else 1)
    row["psnr_per_view"] = cell["psnr_per_view"].mean(0).tolist()
    row["perceptual_per_view"] = cell["perceptual_per_view"].mean(0).tolist()
    row["fd"] = fd_paired(cell["embed_pred"], base["embed_pred"], cell["embed_true"])
    return row


def paired_lines(row: dict, metrics, vs_key: str, vs_label: str, width: int) -> list[str]:
    """The metric and FD lines of one row: ``label  mean [lo, hi]   vs <base> diff [lo, hi] wins k/n``."""
    lines = []
    for key, label, _ in metrics:
        if key not in row:
            continue
        r = row[key]
        txt = f"    {label:<{width}} {r['mean']:8.4f} [{r['lo']:.4f}, {r['hi']:.4f}]"
        if vs_key in r:
            p = r[vs_key]
            txt += f"   {vs_label} {p['diff']:+.4f} [{p['lo']:+.4f}, {p['hi']:+.4f}] wins {p['wins']}/{p['n']}"
        lines.append(txt)
    for k in FD_KEYS:
        f = row["fd"].get(k)
        if f:
            lines.append(f"    {k:<{width}} {f['value']:8.4f}   {vs_label} {f['diff']:+.4f} [{f['lo']:+.4f}, {f['hi']:+.4f}]")
    return lines
