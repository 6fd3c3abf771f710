"""Does correcting the annotated cameras make better pseudo ground truth? (``PseudoGTConfig.for_profile``'s
``refine_cameras``.)

On a built dataset (SynthBirds or SynthCars, lite by default) the species means are fitted to the first
``--mean-views`` training images of every class, and the last ``--per-class`` images of every class among the first
``--limit`` are fitted from them (the shipped priors' pseudo-GT recipe, "full"), once with the cameras as annotated and
once refined. Printed per variant, against the true maps: the means' and the pseudo-GT's 3D Chamfer distance, the
silhouette IoU of both, the texture error on seen texels, and the rotation error of the cameras before and after.

    python bench/pseudo_gt_cameras.py --data-dir data --category cars       # data/synthcars_lite (built if missing)
    python bench/pseudo_gt_cameras.py --category birds --camera exact        # the ceiling: true cameras

Prints one JSON line per variant, then ``pseudo_gt_chamfer_3d_<category>_off=... _refined=...``; ``--out`` writes
them all.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from meshinv_lite.config import CATEGORY_NAMES, set_threads
from meshinv_lite.data import ReconstructionDataset, build_dataset
from meshinv_lite.data.category import get_category
from meshinv_lite.data.dataset import batch_cameras
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.io import write_json
from meshinv_lite.metrics import chamfer_3d
from meshinv_lite.paths import resolve
from meshinv_lite.pseudo_gt import PseudoGTConfig, make_pseudo_gt, pseudo_gt_errors
from meshinv_lite.pseudo_gt.species_means import fit_species_means
from meshinv_lite.render import deform_vertices, make_uv_sphere, rotation_angle_deg


def run(data: ReconstructionDataset, cfg: PseudoGTConfig, mean_views: int, evaluate: list[int], seed: int) -> dict:
    template, classes, n = make_uv_sphere(), data.class_ids, data.num_classes
    t0 = time.perf_counter()
    views = torch.cat([torch.nonzero(classes == c).squeeze(1)[:mean_views] for c in range(n)])
    b = data.batch(views.tolist())
    means, mean_iou = fit_species_means(template, b["mask"], batch_cameras(b, cfg.camera), b["class_id"], n,
                                        cfg.mean_fit, generator=torch.Generator().manual_seed(seed))
    mean_seconds = time.perf_counter() - t0
    e = data.batch(evaluate)
    true_verts = deform_vertices(template, e["deform_map"])
    anchor = means[e["class_id"]]
    parts, t0 = [], time.perf_counter()
    for s in range(0, len(evaluate), cfg.batch_size):
        sl = slice(s, s + cfg.batch_size)
        cams = batch_cameras({k: v[sl] for k, v in e.items() if torch.is_tensor(v)}, cfg.camera)
        p = make_pseudo_gt(template, e["image"][sl], e["mask"][sl], cams, cfg.texture_size, cfg.fit, cfg.back_projection,
                           generator=torch.Generator().manual_seed(seed * 100003 + s), shape_anchor=anchor[sl])
        parts.append((p, (p.cameras if p.cameras is not None else cams).rotation))
    fit_seconds = time.perf_counter() - t0
    cat = lambda f: torch.cat([f(p) for p in parts])  # noqa: E731
    q = pseudo_gt_errors(cat(lambda p: p[0].deformation), cat(lambda p: p[0].texture), cat(lambda p: p[0].visibility),
                         cat(lambda p: p[0].iou), e["deform_map"], e["texture_map"])
    exact = batch_cameras(e, "exact").rotation
    return {"mean_chamfer_3d": float(chamfer_3d(deform_vertices(template, anchor), true_verts).mean()),
            "mean_iou": float(mean_iou.mean()), "pseudo_gt_chamfer_3d": q["chamfer_3d"], "pseudo_gt_iou": q["iou"],
            "texture_mae_visible": q["texture_mae_visible"], "visible_fraction": q["visible_fraction"],
            "rotation_error_deg_annotated": float(rotation_angle_deg(batch_cameras(e, cfg.camera).rotation, exact).mean()),
            "rotation_error_deg_used": float(rotation_angle_deg(cat(lambda p: p[1]), exact).mean()),
            "mean_seconds": mean_seconds, "seconds_per_image": fit_seconds / len(evaluate)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--category", default="cars", choices=CATEGORY_NAMES)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--camera", default="noisy", choices=["noisy", "exact"])
    parser.add_argument("--mean-views", type=int, default=12)
    parser.add_argument("--limit", type=int, default=1000, help="training images the pseudo-GT covers (the priors': 1,000)")
    parser.add_argument("--per-class", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()
    set_threads(args.threads)
    category = get_category(args.category)
    root = synthbirds_dir(resolve(args.data_dir), args.profile, category)
    build_dataset(root, category, profile=args.profile, seed=args.seed, progress=True)
    data = ReconstructionDataset(root, "train", load_gt=True, limit=args.limit)
    evaluate = [int(i) for c in range(data.num_classes)
                for i in torch.nonzero(data.class_ids == c).squeeze(1)[-args.per_class:]]
    results = []
    for refine in (False, True):
        cfg = PseudoGTConfig.for_profile(args.profile, fit_recipe="full", camera=args.camera, refine_cameras=refine)
        r = {"category": args.category, "profile": args.profile, "camera": args.camera, "refine_cameras": refine,
             "mean_views": args.mean_views, "images": len(evaluate), **run(data, cfg, args.mean_views, evaluate, args.seed)}
        print(json.dumps(r), flush=True)
        results.append(r)
    if args.out:
        write_json(args.out, {"results": results, "args": vars(args)})
    off, on = results
    print(f"pseudo_gt_chamfer_3d_{args.category}_off={off['pseudo_gt_chamfer_3d']:.4f} "
          f"pseudo_gt_chamfer_3d_{args.category}_refined={on['pseudo_gt_chamfer_3d']:.4f}")


if __name__ == "__main__":
    main()
