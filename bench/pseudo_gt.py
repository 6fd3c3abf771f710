"""Seconds per image to make pseudo ground truth (silhouette fit + back-projection).

Builds a small SynthBirds test split at the chosen profile in a temporary folder, makes its pseudo-GT with
the profile's settings, and prints the quality figures too. The species mean shapes (fitted once per dataset,
from the same split here) are fitted first and timed apart, so the per-image figure is what every further
image costs. Last line: ``pseudo_gt_s_per_image_lite=<float>`` (for --profile lite, the default).

    python bench/pseudo_gt.py [--profile lite] [--images 32] [--camera noisy] [--threads 1] [--workers 0]
    python bench/pseudo_gt.py --fit-recipe full      # the slower recipe the shipped prior was made with
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

from meshinv_lite.data import SynthBirdsConfig, build_synthbirds
from meshinv_lite.pseudo_gt import PseudoGTConfig, build_pseudo_gt, evaluate_pseudo_gt

try:
    from meshinv_lite.pseudo_gt import species_means
except ImportError:  # an older package without species mean shapes (bench/compare_commits.py --script-from new)
    species_means = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--camera", default="noisy", choices=["noisy", "exact"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: on <= 2 cores both when idle, else 1)")
    parser.add_argument("--workers", type=int, default=None, help="fitting processes (default: build_pseudo_gt's)")
    parser.add_argument("--fit-recipe", default="fast", choices=["fast", "full"], help="PseudoGTConfig.for_profile's")
    args = parser.parse_args()
    try:
        from meshinv_lite.config import set_threads
    except ImportError:  # an older package (bench/compare_commits.py --script-from new): torch's default threads
        def set_threads(n):
            if n:
                torch.set_num_threads(n)
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        sizes = {"train": args.images, "val": 1, "test": args.images, "test_hard": 1}
        build_synthbirds(root, SynthBirdsConfig.for_profile(args.profile, sizes=sizes), splits=["test"], progress=False)
        recipe = {} if args.fit_recipe == "fast" else {"fit_recipe": args.fit_recipe}
        cfg = PseudoGTConfig.for_profile(args.profile, camera=args.camera, **recipe)
        t0 = time.perf_counter()
        if species_means is not None and getattr(cfg, "shape_prior", "sphere") == "species_mean":
            species_means(root, cfg, device=args.device, progress=False, split="test")
        means_seconds = time.perf_counter() - t0
        workers = {} if args.workers is None else {"workers": args.workers}
        t0 = time.perf_counter()
        build_pseudo_gt(root, "test", cfg, device=args.device, progress=False, **workers)
        per_image = (time.perf_counter() - t0) / args.images
        m = evaluate_pseudo_gt(root, "test", args.camera)
    print(f"profile={args.profile} images={args.images} camera={args.camera} steps={cfg.fit.steps} "
          f"batch={cfg.batch_size} threads={torch.get_num_threads()} workers={args.workers} fit_recipe={args.fit_recipe} "
          f"render_size={getattr(cfg.fit, 'render_size', None)} mask_points={cfg.fit.mask_points}")
    for k in ("iou", "iou_min", "vertex_error", "chamfer_3d", "texture_mae_visible", "visible_fraction"):
        print(f"{k:>20} {m[k]:.4f}")
    print(f"{'species means s':>20} {means_seconds:.1f} (once per dataset, not in the figure below)")
    print(f"{'s per image':>20} {per_image:.3f}")
    print(f"pseudo_gt_s_per_image_{args.profile}={per_image:.3f}")


if __name__ == "__main__":
    main()
