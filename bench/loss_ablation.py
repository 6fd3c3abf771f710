"""The loss ablation as evidence (issue 14): texture and mask losses x camera noise x splits, paired per image.

Runs the cells of a plan (``meshinv_lite.evaluation.ablation``; each cell = one split, noise level and variant on the
same images and seeds, stored under ``--out`` as soon as it is done, so an interrupted run resumes), then
prints the tables (mean, 95 % bootstrap interval, paired difference to ours, wins per image), writes
``summary.json`` and ``ablation.png`` to ``--out``. Shards split the cells between processes that share
``--out`` (e.g. two shells with ``--shard 0/2`` and ``--shard 1/2``, then one with ``--report-only``).

Default plan (lite, shipped prior, the full 200-step lite schedule without early stopping, seed 0):

    test x1        every variant                                              24 images
    test x2        ours, random-feature ours, Chamfer pixel, L1, L2, perceptual  24
    test x4        ours, L1, L2                                               24
    test_hard x1   ours, Chamfer pixel, L1, L2, soft-IoU mask                 20
    test_unseen x1 ours, L1, L2 (when the split exists)                       24

    python bench/loss_ablation.py [--profile lite] [--out outputs/lite/ablation] [--shard 0/2] [--threads 1]
    python bench/loss_ablation.py --replot bench/results/loss_ablation_lite.json   # redraw <json stem>.png only

Last line: ``ablation_psnr_gap_l2_x1=<float>`` (ours - L2, novel-view PSNR at the data's noise).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import meshinv_lite as mi
from meshinv_lite.evaluation import (VARIANTS, cell_name, format_table, plot_summary, read_cell, run_cell, summarize, variant_config)
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.features import load_feature_extractor
from meshinv_lite.inversion import InversionConfig
from meshinv_lite.io import write_json
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.paths import resolve
from meshinv_lite.gan import load_shipped_prior

ALL = list(VARIANTS)
PLAN = (
    ("test", 1.0, ALL, 24),
    ("test", 2.0, ["ours", "ours_random_features", "chamfer_pixel", "l1", "l2", "perceptual"], 24),
    ("test", 4.0, ["ours", "l1", "l2"], 24),
    ("test_hard", 1.0, ["ours", "chamfer_pixel", "l1", "l2", "ours_iou_mask"], 20),
    ("test_unseen", 1.0, ["ours", "l1", "l2"], 24),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=None, help="default: outputs/<profile>/ablation")
    parser.add_argument("--images", type=int, default=None, help="override every condition's image count")
    parser.add_argument("--shard", default="0/1", help="k/n: run every n-th cell starting at k")
    parser.add_argument("--report-only", action="store_true", help="only summarize the cells already computed")
    parser.add_argument("--splits", nargs="+", default=None, help="compute only the cells of these splits")
    parser.add_argument("--variants", nargs="+", default=None, help="compute only the cells of these variants")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--replot", default=None, metavar="SUMMARY_JSON",
                        help="only redraw the figure of a written summary.json (no inversion, no cells): the PNG "
                             "is written beside it with the same stem")
    args = parser.parse_args()
    if args.replot:
        from meshinv_lite.io import read_json

        src = Path(args.replot)
        plot_summary(read_json(src)["summary"], path=src.with_suffix(".png"))
        print(f"wrote {src.with_suffix('.png')}")
        return
    mi.config.set_threads(args.threads)
    root = synthbirds_dir(resolve(args.data_dir), args.profile)
    out = Path(args.out) if args.out else resolve("outputs") / args.profile / "ablation"
    out.mkdir(parents=True, exist_ok=True)
    plan = []
    for split, noise, variants, n in PLAN:
        if not (root / split / "meta.json").exists():
            print(f"(skipping {split}: no such split in {root})")
            continue
        plan.append((split, noise, variants, args.images or n))
    cells = [(split, noise, v, n) for split, noise, variants, n in plan for v in variants]
    k, n_shards = (int(x) for x in args.shard.split("/"))
    G, info = load_shipped_prior()
    eval_net = load_feature_extractor("synthbirds_eval")
    template = make_uv_sphere()
    # the settings the committed evidence was made with: the full schedule, the authors' mask and latent weights,
    # 64 candidates, no latent bound, no crease penalty
    authors = {"w_mask": 10.0, "init_candidates": 64, "w_latent": 0.05, "latent_shell": None, "w_crease": 0.0}
    cfg = InversionConfig.for_profile(args.profile, stop_tol=None, **(authors if args.profile == "lite" else {}))
    t0 = time.perf_counter()
    results = {}
    datasets = {}
    for i, (split, noise, v, n) in enumerate(cells):
        path = out / f"{cell_name(split, noise, v)}.npz"
        mine = (i % n_shards == k and not args.report_only and (args.splits is None or split in args.splits)
                and (args.variants is None or v in args.variants))
        if not mine and not path.exists():
            continue
        ds = datasets.setdefault(split, ReconstructionDataset(root, split))
        n = min(n, len(ds))
        if mine or path.exists():
            t1 = time.perf_counter()
            try:
                results[cell_name(split, noise, v)] = run_cell(G, ds, list(range(n)), v, noise, variant_config(cfg, v), eval_net, path,
                                                               batch_size=args.batch, template=template) if mine else \
                    read_cell(path)[0]
            except Exception as e:  # one broken cell must not lose the others
                print(f"[{cell_name(split, noise, v)}] FAILED: {type(e).__name__}: {e}", flush=True)
                continue
            if mine:
                print(f"[{cell_name(split, noise, v)}] {n} images, {time.perf_counter() - t1:.0f} s "
                      f"(total {time.perf_counter() - t0:.0f} s)", flush=True)
    summary = summarize(results, [(s, nz) for s, nz, _, _ in plan], ALL)
    print(f"\n{args.profile}, shipped prior ({info.get('file')}), {cfg.total_steps} steps, seed 0; loss features: "
          f"in-domain (SynthBirds-trained) unless the variant says random; metrics: {eval_net.name}")
    print(format_table(summary))
    seconds = sum(float(c["seconds"]) for c in results.values())
    write_json(out / "summary.json", {"profile": args.profile, "plan": [list(p[:2]) + [p[2], p[3]] for p in plan],
                                      "summary": summary, "inversion_seconds": seconds, "prior": info.get("file"),
                                      "metric_network": eval_net.name})
    plot_summary(summary, path=out / "ablation.png")
    print(f"\nwrote {out / 'summary.json'} and {out / 'ablation.png'}; inversion time in these cells {seconds / 60:.1f} min")
    gap = summary.get("test x1", {}).get("l2", {}).get("psnr_novel", {}).get("vs_ours", {}).get("diff")
    print(f"ablation_psnr_gap_l2_x1={-gap if gap is not None else float('nan'):.4f}")


if __name__ == "__main__":
    main()
