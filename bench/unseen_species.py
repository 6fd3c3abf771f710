"""Out of distribution: inversion of held-out species (``test_unseen``) against ``test``, with the shipped prior.

Inverts the first ``--images`` images of three runs with the profile's schedule (default lite: 200 steps, Chamfer
pixel + feature texture losses, noisy cameras, seed 0) through :func:`meshinv_lite.evaluation.evaluate_split`:

* ``test_unseen``: birds of the three held-out species, no class given (chosen in the initialisation);
* ``test``: the twelve seen species with their class, as every other figure of the package;
* ``test, class hidden`` (``--no-control`` skips it): the same test images inverted as if their class were
  unknown, which separates what not knowing the class costs from what an unseen species costs, and says how
  often the initialisation picks the true class.

Builds ``test_unseen`` when missing (only that split). Results are kept per run under ``--out`` (a re-run
resumes). Prints one row per run (IoU, PSNR novel, 3D Chamfer, F-score, seconds per image) and the classes
chosen; last line: ``unseen_iou_gap=<float>`` (test_unseen IoU minus test IoU).

    python bench/unseen_species.py [--profile lite] [--images 8] [--threads 1] [--no-control]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import meshinv_lite as mi
from meshinv_lite.data.config import UNSEEN_SPLIT
from meshinv_lite.data import build_synthbirds
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.evaluation import evaluate_split
from meshinv_lite.inversion import InversionConfig
from meshinv_lite.paths import resolve
from meshinv_lite.gan import load_shipped_prior

COLUMNS = (("iou", "IoU", 3), ("psnr_novel", "PSNR novel", 2), ("chamfer_3d", "3D Chamfer", 4), ("f_score", "F-score", 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="outputs/bench_unseen_species")
    parser.add_argument("--no-control", action="store_true", help="skip the test images inverted without their class")
    args = parser.parse_args()
    mi.config.set_threads(args.threads)
    root = synthbirds_dir(resolve(args.data_dir), args.profile)
    print(build_synthbirds(root, profile=args.profile, splits=[UNSEEN_SPLIT], progress=False))
    G, _ = load_shipped_prior()
    cfg = InversionConfig.for_profile(args.profile)
    out = Path(resolve(args.out)) / args.profile
    runs = [("test_unseen", UNSEEN_SPLIT, False), ("test", "test", False)]
    if not args.no_control:
        runs.append(("test, class hidden", "test", True))
    results = {}
    for label, split, hide in runs:
        folder = out / (split + ("_class_hidden" if hide else ""))
        results[label] = evaluate_split(G, root, split, cfg, folder, limit=args.images, batch_size=args.batch,
                                        progress=False, views=(), choose_class=hide)
    print(f"\nshipped prior, {args.profile} schedule ({cfg.total_steps} steps), noisy cameras, first {args.images} images")
    print("| run | images | " + " | ".join(h for _, h, _ in COLUMNS) + " | s/image | class |")
    print("|---|---|" + "---|" * len(COLUMNS) + "---|---|")
    for label, m in results.items():
        cls = (m["class_choice"] if "class_choice" in m else
               f"accuracy {m['class_accuracy']:.2f}" if m.get("class_accuracy") is not None else "given")
        sec = f"{m['seconds_per_image']:.1f}" if m.get("seconds_per_image") else "(earlier run)"
        figures = " | ".join(f"{m[k]:.{d}f}" for k, _, d in COLUMNS)
        print(f"| {label} | {m['num_images']} | {figures} | {sec} | {cls} |")
    for name, g in results["test_unseen"].get("by_group", {}).items():
        if name.startswith("species="):
            print(f"  {name[8:]:<10} {g['num_images']} images: IoU {g['iou']:.3f}, PSNR novel {g['psnr_novel']:.2f} dB, "
                  f"3D Chamfer {g['chamfer_3d']:.4f}")
    print(f"unseen_iou_gap={results['test_unseen']['iou'] - results['test']['iou']:.4f}")


if __name__ == "__main__":
    main()
