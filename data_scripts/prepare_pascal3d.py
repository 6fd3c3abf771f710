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
import sys

from meshinv_lite._checks import int_at_least
from meshinv_lite.config import get_profile
from meshinv_lite.data.pascal3d import P3D_SOURCES, P3D_SPLITS, Pascal3DFormatError, build_pascal3d


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p3d-dir", required=True, help="the PASCAL3D+_release1.1 folder")
    parser.add_argument("--cmr-cache", default=None, help="CMR's cachedir/p3d (masks for the objects it lists)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", default="lite", choices=["quick", "lite", "paper"], help="sets --image-size")
    parser.add_argument("--image-size", type=int_at_least(8), default=None, help="crop size in pixels (default: the profile's)")
    parser.add_argument("--splits", nargs="+", default=list(P3D_SPLITS), choices=list(P3D_SPLITS))
    parser.add_argument("--sources", nargs="+", default=list(P3D_SOURCES), choices=list(P3D_SOURCES))
    parser.add_argument("--keep-truncated", action="store_true")
    parser.add_argument("--keep-occluded", action="store_true")
    parser.add_argument("--keep-difficult", action="store_true")
    parser.add_argument("--padding", type=float, default=0.05, help="bbox padding, fraction of its size per side")
    parser.add_argument("--limit", type=int_at_least(1), default=None, help="only the first N cars of each split")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    size = args.image_size or get_profile(args.profile).render_size
    try:
        report = build_pascal3d(args.p3d_dir, args.out, size, args.splits, args.sources, args.cmr_cache, args.padding,
                                skip_truncated=not args.keep_truncated, skip_occluded=not args.keep_occluded,
                                skip_difficult=not args.keep_difficult, limit=args.limit, force=args.force,
                                progress=not args.quiet)
    except (FileNotFoundError, FileExistsError, Pascal3DFormatError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted (Ctrl-C); a re-run resumes the unfinished split", file=sys.stderr)
        return 130
    for split, r in report.items():
        dropped = ", ".join(f"{k} {v}" for k, v in r["dropped"].items() if v)
        print(f"{split:>6}: {r['num_images']:6d} cars  {r['status']:>8}  {r['seconds']:6.1f} s"
              + (f"  (dropped: {dropped})" if dropped else ""))
    print(f"PASCAL3D+ cars at {size} px in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
