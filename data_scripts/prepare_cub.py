#!/usr/bin/env python
"""Convert CUB-200-2011 (+ CMR's cached annotations) into the package's dataset format.

    python data_scripts/prepare_cub.py --cub-dir /data/CUB_200_2011 --out data/cub_lite --profile lite
    python data_scripts/prepare_cub.py --cub-dir /data/CUB_200_2011 --cache-dir /data/cmr/cachedir/cub \\
        --out data/cub_quick --image-size 64 --limit 200
    # MeshInversion's datasets/cub as downloaded (predicted masks and cameras, test split, 256 px as the authors)
    python data_scripts/prepare_cub.py --cub-dir datasets/cub --out data/cub_paper --profile paper

Needs ``<cub-dir>/images``, ``classes.txt``, ``images.txt``, ``image_class_labels.txt`` and CMR's
``data/<split>_cub_cleaned.mat`` + ``sfm/anno_<split>.mat`` (default ``<cub-dir>/cachedir/cub``).
Each image is cropped to a padded square around its bbox and resized; the SfM camera is converted
to the package convention (see ``meshinv_lite.data.cub``). MeshInversion's ``datasets/cub`` layout is recognised
(``--layout auto``): its PointRend masks and CMR-predicted starting cameras are used as the authors use them
(``meshinv_lite.data.cub_meshinversion``). Nothing is downloaded.
"""
from __future__ import annotations

import argparse

from meshinv_lite.data.cub import CUB_SPLITS, CubFormatError, build_cub
from meshinv_lite.scripts import add_crop_arguments, crop_size, run_build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cub-dir", required=True, help="the CUB_200_2011 folder, or MeshInversion's datasets/cub")
    parser.add_argument("--cache-dir", default=None, help="CMR's cachedir/cub (default: <cub-dir>/cachedir/cub)")
    add_crop_arguments(parser, "images")
    parser.add_argument("--splits", nargs="+", default=None, choices=list(CUB_SPLITS),
                        help="default: train val test (CMR layout), test (MeshInversion's)")
    parser.add_argument("--layout", default="auto", choices=["auto", "cmr", "meshinversion"])
    parser.add_argument("--mask-source", default=None, choices=["predicted", "cmr_mat"],
                        help="MeshInversion layout: its PointRend masks (default, as the authors) or the .mat masks")
    parser.add_argument("--no-pred-pose", action="store_true",
                        help="MeshInversion layout: start from the SfM cameras, not CMR's predicted ones")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow files that need general unpickling (it can run code from the file)")
    args = parser.parse_args(argv)
    size = crop_size(args)
    report, code = run_build(lambda: build_cub(
        args.cub_dir, args.out, size, args.cache_dir, args.splits, args.padding, args.limit, args.force,
        progress=not args.quiet, layout=args.layout, mask_source=args.mask_source,
        use_pred_pose=False if args.no_pred_pose else None, trust_pickle=args.trust_pickle),
        errors=(CubFormatError,))
    if report is None:
        return code
    for split, r in report.items():
        print(f"{split:>6}: {r['num_images']:6d} images  {r['status']:>8}  {r['seconds']:6.1f} s")
    print(f"CUB at {size} px in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
