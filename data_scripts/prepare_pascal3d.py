#!/usr/bin/env python
"""Convert PASCAL3D+ cars (release 1.1) into the package's dataset format.

    python data_scripts/prepare_pascal3d.py --p3d-dir /data/PASCAL3D+_release1.1 --out data/p3d_cars_lite
    python data_scripts/prepare_pascal3d.py --p3d-dir /data/PASCAL3D+_release1.1 --cmr-cache /data/cmr/cachedir/p3d \\
        --out data/p3d_cars_quick --profile quick --sources imagenet --limit 200

Needs ``<p3d-dir>/Images/car_{imagenet,pascal}``, ``Annotations/car_{imagenet,pascal}``, ``CAD/car.mat``,
``Image_sets/car_imagenet_{train,val}.txt`` and ``PASCAL/VOCdevkit/VOC2012/ImageSets/Main/car_{train,val}.txt``
(all in PASCAL3D+_release1.1.zip). Each car that is not truncated, occluded or difficult (``--keep-*`` to keep
them) and has a fine viewpoint is cropped to a padded square around its bbox; its viewpoint becomes our
weak-perspective camera and its mask is CMR's (``--cmr-cache``) or its CAD model's projected silhouette (see
``meshinv_lite.data.pascal3d``). Splits: PASCAL3D+'s ``train`` and ``val``. Nothing is downloaded.
"""
from __future__ import annotations

import argparse

from meshinv_lite.data.pascal3d import P3D_SOURCES, P3D_SPLITS, Pascal3DFormatError, build_pascal3d
from meshinv_lite.scripts import add_crop_arguments, crop_size, run_build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p3d-dir", required=True, help="the PASCAL3D+_release1.1 folder")
    parser.add_argument("--cmr-cache", default=None, help="CMR's cachedir/p3d (masks for the objects it lists)")
    add_crop_arguments(parser, "cars")
    parser.add_argument("--splits", nargs="+", default=list(P3D_SPLITS), choices=list(P3D_SPLITS))
    parser.add_argument("--sources", nargs="+", default=list(P3D_SOURCES), choices=list(P3D_SOURCES))
    parser.add_argument("--keep-truncated", action="store_true")
    parser.add_argument("--keep-occluded", action="store_true")
    parser.add_argument("--keep-difficult", action="store_true")
    args = parser.parse_args(argv)
    size = crop_size(args)
    report, code = run_build(lambda: build_pascal3d(
        args.p3d_dir, args.out, size, args.splits, args.sources, args.cmr_cache, args.padding,
        skip_truncated=not args.keep_truncated, skip_occluded=not args.keep_occluded,
        skip_difficult=not args.keep_difficult, limit=args.limit, force=args.force, progress=not args.quiet),
        errors=(Pascal3DFormatError,))
    if report is None:
        return code
    for split, r in report.items():
        dropped = ", ".join(f"{k} {v}" for k, v in r["dropped"].items() if v)
        print(f"{split:>6}: {r['num_images']:6d} cars  {r['status']:>8}  {r['seconds']:6.1f} s"
              + (f"  (dropped: {dropped})" if dropped else ""))
    print(f"PASCAL3D+ cars at {size} px in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
