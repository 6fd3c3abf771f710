#!/usr/bin/env python
"""Build the SynthBirds dataset (images, masks, cameras and 3D ground truth) for a profile, or SynthCars.

    python data_scripts/make_synthbirds.py --profile quick --out data/synthbirds_quick
    python data_scripts/make_synthbirds.py --profile quick --category cars     # -> data/synthcars_quick
    python data_scripts/make_synthbirds.py --profile lite --out data/synthbirds_lite --splits train val
    python data_scripts/make_synthbirds.py --profile lite --out data/synthbirds_lite --splits test_unseen

Every split is built by default, ``test_unseen`` (three held-out species, class -1) included; on a dataset
built before that split existed, only it is added (the other splits are reported "exists").

Deterministic for a seed. Each split is written into a hidden ``.partial-<split>/`` folder and renamed
into place only when complete (its ``meta.json`` is written last), so an interrupted run never leaves a
split that looks complete; re-running resumes where it stopped. A finished split with the same
settings is kept; ``--force`` rebuilds. The format is documented in ``meshinv_lite.data.dataset.FORMAT``
(``python data_scripts/make_synthbirds.py --format`` prints it).
"""
from __future__ import annotations

import argparse
import time

from meshinv_lite._checks import int_at_least
from meshinv_lite.config import CATEGORY_NAMES
from meshinv_lite.data import FORMAT
from meshinv_lite.data.synthbirds import SPLITS
from meshinv_lite.data import SynthBirdsConfig, build_dataset, get_category
from meshinv_lite.scripts import run_build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite", choices=["quick", "lite", "paper"])
    parser.add_argument("--category", default="birds", choices=CATEGORY_NAMES,
                        help="SynthBirds (default) or SynthCars")
    parser.add_argument("--out", default=None,
                        help="output folder (default: data/synthbirds_<profile>, data/synthcars_<profile> for cars)")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--force", action="store_true", help="rebuild splits that already exist")
    parser.add_argument("--workers", type=int_at_least(0), default=None,
                        help="worker processes (0: in this process; default: 2 for splits of 512+ images)")
    parser.add_argument("--asymmetric", action="store_true", help="left and right sides differ (wings, texture noise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--format", action="store_true", help="print the on-disk format and exit")
    args = parser.parse_args(argv)
    if args.format:
        print(FORMAT)
        return 0
    cat = get_category(args.category)
    out = args.out or f"data/{cat.generator}_{args.profile}"
    config = (SynthBirdsConfig.for_profile(args.profile, symmetric=not args.asymmetric) if cat.name == "birds"
              else cat.config(args.profile, symmetric=not args.asymmetric))
    t0 = time.perf_counter()
    report, code = run_build(lambda: build_dataset(out, cat, config, seed=args.seed, splits=args.splits,
                                                   force=args.force, workers=args.workers, progress=not args.quiet))
    if report is None:
        return code
    for split, r in report.items():
        print(f"{split:>10}: {r['num_images']:6d} images  {r['status']:>8}  {r['seconds']:6.1f} s")
    print(f"{cat.dataset_name} ({args.profile}, seed {args.seed}) in {out} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
