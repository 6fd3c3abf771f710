"""Which silhouette loss? The Chamfer mask loss (projected vertices, the paper's) against losses on the rendered
soft silhouette (soft IoU, L1), paired on the same images, with the shipped prior.

Inverts ``--images`` test images of a profile (default lite: full 200-step schedule, Chamfer pixel + feature
texture losses, noisy cameras, seed 0) once per mask loss and scores each against SynthBirds' ground truth.
Prints, per metric, each variant's mean and, against ``chamfer``, the mean paired difference with a 95 %
bootstrap interval and the wins per image. Last line: ``mask_ablation_iou_gain_<variant>=<float>`` for the
last variant (IoU, variant minus chamfer).

    python bench/mask_loss_ablation.py [--profile lite] [--images 24] [--masks chamfer iou l1] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import meshinv_lite as mi
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data import build_synthbirds
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.inversion import InversionConfig, invert_batch
from meshinv_lite.evaluation import reconstruction_metrics
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.paths import resolve
from meshinv_lite.gan import load_shipped_prior

METRICS = (("iou", "IoU", 1), ("psnr_novel", "PSNR novel", 1), ("ssim_novel", "SSIM novel", 1),
           ("chamfer_3d", "3D Chamfer", -1), ("f_score", "F-score@0.1", 1))


def bootstrap_interval(diff: torch.Tensor, rounds: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``diff`` ``(N,)``."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, diff.numel(), (rounds, diff.numel()), generator=g)
    means = diff[idx].mean(1)
    return float(means.quantile(0.025)), float(means.quantile(0.975))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--split", default="test")
    parser.add_argument("--masks", nargs="+", default=["chamfer", "iou", "l1"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=None, help="write the per-image figures as JSON here")
    args = parser.parse_args()
    if args.masks[0] != "chamfer":
        args.masks = ["chamfer"] + [m for m in args.masks if m != "chamfer"]
    mi.config.set_threads(args.threads)
    root = synthbirds_dir(resolve(args.data_dir), args.profile)
    build_synthbirds(root, profile=args.profile, seed=0, progress=False)
    data = ReconstructionDataset(root, args.split)
    G, info = load_shipped_prior()
    template = make_uv_sphere()
    cfg = InversionConfig.for_profile(args.profile)
    per_image: dict[str, dict[str, list[float]]] = {}
    t0 = time.perf_counter()
    for mask in args.masks:
        vcfg = cfg.with_losses(cfg.texture_losses, mask)
        rows: dict[str, list[float]] = {}
        for s in range(0, args.images, args.batch):
            batch = data.batch(range(s, min(args.images, s + args.batch)))
            rec = invert_batch(G, batch, vcfg, template=template, seed=0)
            sc = reconstruction_metrics(rec, batch, template, cfg.render)
            for key, _, _ in METRICS:
                rows.setdefault(key, []).extend(sc[key].tolist())
        per_image[mask] = rows
        print(f"[{mask}] done, {time.perf_counter() - t0:.0f} s", flush=True)
    n = args.images
    print(f"\n{args.profile}, {n} {args.split} images, noisy cameras, shipped prior ({info.get('file')}), seed 0, "
          f"{cfg.total_steps} steps; differences are variant - chamfer, paired per image; "
          f"'wins' counts images where the variant is better")
    print(f"{'metric':<12} " + " ".join(f"{m:>9}" for m in args.masks) + "   paired difference [95 % bootstrap]  wins")
    last = 0.0
    for key, label, sign in METRICS:
        means = [sum(per_image[m][key]) / n for m in args.masks]
        line = f"{label:<12} " + " ".join(f"{v:9.4f}" for v in means)
        base = torch.tensor(per_image["chamfer"][key])
        for m in args.masks[1:]:
            diff = torch.tensor(per_image[m][key]) - base
            lo, hi = bootstrap_interval(diff)
            wins = int((sign * diff > 0).sum())
            line += f"   {m}: {float(diff.mean()):+.4f} [{lo:+.4f}, {hi:+.4f}] {wins}/{n}"
            if key == "iou":
                last = float(diff.mean())
        print(line)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(per_image, fh)
    print(f"seconds={time.perf_counter() - t0:.0f}")
    print(f"mask_ablation_iou_gain_{args.masks[-1]}={last:.4f}")


if __name__ == "__main__":
    main()
