"""Which texture loss should the latent search use when the adaptation phase follows? (issue 29, item 6)

Pairs two runs of ``bench/adapt_phase.py`` made on the same images with different latent texture losses (the
default Chamfer pixel + feature, and e.g. ``--texture-loss l1``), image by image, after the adaptation phase and
before it: IoU, input-view and novel-view PSNR, perceptual distance, 3D Chamfer (mean difference B - A, 95 %
bootstrap interval, images where B is better) and FD in-domain 10 (set figure, images resampled).

    python bench/adapt_phase.py --texture-loss l1 --splits test test_unseen test@hue120 --images 24 --out outputs/lite/adapt_l1
    python bench/compare_latent_losses.py outputs/lite/adapt_phase:sharp40 outputs/lite/adapt_l1:adapt --splits test test_unseen test@hue120
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from meshinv_lite.evaluation import fd_paired, paired
from meshinv_lite.io import write_json

KEYS = (("iou", 1), ("psnr_input_view", 1), ("psnr_novel", 1), ("perceptual", -1), ("chamfer_3d", -1))


def cell(spec: str, split: str) -> dict:
    folder, _, variant = spec.partition(":")
    with np.load(Path(folder) / f"{split}_{variant or 'adapt'}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k != "signature"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="FOLDER:VARIANT of the reference run (e.g. outputs/lite/adapt_phase:sharp40)")
    p.add_argument("b", help="FOLDER:VARIANT of the other run")
    p.add_argument("--splits", nargs="+", default=["test", "test_unseen", "test@hue120"])
    p.add_argument("--results", default=None, help="also write the comparison here (JSON)")
    args = p.parse_args()
    report = {}
    for split in args.splits:
        for phase, (va, vb) in (("adapted", (args.a, args.b)),
                                ("latent only", (args.a.split(":")[0] + ":latent", args.b.split(":")[0] + ":latent"))):
            a, b = cell(va, split), cell(vb, split)
            if a["iou"].shape != b["iou"].shape:
                raise SystemExit(f"{split}: the runs hold different numbers of images ({a['iou'].size}, {b['iou'].size})")
            row = {k: {"a": float(a[k].mean()), "b": float(b[k].mean()), **paired(b[k], a[k], s)} for k, s in KEYS}
            fd = fd_paired(b["embed_pred"], a["embed_pred"], a["embed_true"])["fd_in_domain_10"]
            row["fd_in_domain_10"] = {"a": fd["base"], "b": fd["value"], "diff": fd["diff"], "lo": fd["lo"], "hi": fd["hi"]}
            report.setdefault(split, {})[phase] = row
            print(f"\n{split}, {phase} ({a['iou'].size} images): B - A")
            for k, r in row.items():
                wins = f" B better on {r['wins']}/{r['n']}" if "wins" in r else ""
                print(f"  {k:<18} A {r['a']:.4f}  B {r['b']:.4f}  {r['diff']:+.4f} [{r['lo']:+.4f}, {r['hi']:+.4f}]{wins}")
    if args.results:
        write_json(args.results, {"a": args.a, "b": args.b, "comparison": report})
    for split, phases in report.items():   # key=value lines: B - A after the adaptation phase
        print(f"latent_loss_b_minus_a_{split}_adapted_iou={phases['adapted']['iou']['diff']:.4f}")


if __name__ == "__main__":
    main()
