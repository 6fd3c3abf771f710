"""Inversion settings against the profile's defaults, paired per image (issues 13 and 17).

Inverts the same images (lite test and test_hard by default; noisy cameras, shipped prior, in-domain features,
seed 0) with the profile's ``InversionConfig`` ("ours") and with each ``--variant NAME:KEY=VALUE,...``, where a
KEY is a field of ``InversionConfig`` (``stop_tol``, ``w_latent``, ``mask_loss``, ``w_crease``, ...) or
``steps_fraction`` (every stage cut to that share of its steps); ``--noise 0`` gives every run the exact
cameras instead (``--noise 2``: twice the data's camera error). Prints seconds and optimisation steps per image
and, per split, the paired differences to ours (mean, 95 % bootstrap interval, wins per image) on IoU,
novel-view PSNR/SSIM, perceptual distance, 3D Chamfer, F-score, folding and FD in-domain. Cells are stored under
``--out`` and reused, so an interrupted run resumes. The default variants are the early-stopping study
(lite's default stops each stage early: ``stop_tol=0.005``, a stage ends when its batch-mean loss, averaged over
the last 10 steps, fell by less than 0.5 % against the 10 steps before; the next stage starts from there):

    full          stop_tol=None: every stage runs all its steps (200 at lite)
    stop_0.002    a stricter tolerance, 0.2 %
    steps_0.5     no early stopping, every stage at half its steps

    python bench/inversion_variants.py [--splits test test_hard] [--images 24 20] [--first 0] [--threads N]
    python bench/inversion_variants.py --variant "iou_crease:mask_loss='iou',w_crease=1.0"
    python bench/inversion_variants.py --variant "before:w_mask=10.0,init_candidates=64" \
        --variant "w10_i32:w_mask=10.0" --variant "w100_i64:w_mask=100.0,init_candidates=64" \
        --variant "crease10:w_crease=10.0" --results bench/results/mask_weight_lite.json   # lite's mask weight
    python bench/inversion_variants.py --variant "before:w_latent=0.05,latent_shell=None,w_crease=0.0" \
        --variant "shell:w_crease=0.0" --variant "shell_c5:w_crease=5.0"   # lite's latent bound (ours: shell_c2)
    python bench/inversion_variants.py --category cars --data-dir data/prior_synthcars_lite \
        --variant "bird_features:features='synthbirds_features'" --results bench/results/car_features_lite.json

Last line: ``variants_speedup_<first variant>=<float>`` (the first variant's seconds per image / ours', on test:
above 1 when ours is faster).
"""
from __future__ import annotations

import argparse
import ast
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

import meshinv_lite as mi
from meshinv_lite.evaluation import cell_name, format_table, read_cell, run_cell, summarize
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.features import load_feature_extractor
from meshinv_lite.inversion import InversionConfig, InversionStage
from meshinv_lite.config import CATEGORY_NAMES
from meshinv_lite.io import write_json
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.paths import resolve
from meshinv_lite.data.category import get_category
from meshinv_lite.gan import load_shipped_prior
from meshinv_lite.gan.prior import shipped_recipe

DEFAULT_VARIANTS = ["full:stop_tol=None", "stop_0.002:stop_tol=0.002", "steps_0.5:steps_fraction=0.5,stop_tol=None"]


def parse_variant(text: str, base: InversionConfig) -> tuple[str, InversionConfig]:
    """``"name:key=value,key=value"`` -> ``(name, config)``; values are Python literals."""
    name, _, spec = text.partition(":")
    known = {f.name for f in fields(InversionConfig)}
    changes, cfg = {}, base
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, _, value = item.partition("=")
        value = ast.literal_eval(value)
        if key == "steps_fraction":
            cfg = replace(cfg, stages=tuple(InversionStage(max(1, round(s.steps * value)), s.lr_z, s.lr_camera)
                                            for s in cfg.stages))
        elif key in known:
            changes[key] = value
        else:
            raise SystemExit(f"--variant {text!r}: {key!r} is not a field of InversionConfig (nor steps_fraction)")
    return name, replace(cfg, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--category", default="birds", choices=CATEGORY_NAMES,
                        help="SynthBirds with the bird prior and networks, or SynthCars with the car ones")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=None, help="default: outputs/<profile>/inversion_variants")
    parser.add_argument("--splits", nargs="+", default=["test", "test_hard"])
    parser.add_argument("--images", type=int, nargs="+", default=[24, 20], help="images per split, in --splits order")
    parser.add_argument("--first", type=int, default=0,
                        help="index of each split's first image (e.g. 24: images the default run never saw, to check a "
                             "setting chosen on those); use another --out, cells are named by split and variant only")
    parser.add_argument("--variant", action="append", default=None, help="NAME:KEY=VALUE,... (repeatable)")
    parser.add_argument("--only", nargs="*", default=None, help="compute only these variants (others: reuse stored cells)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--noise", type=float, default=1.0,
                        help="camera error as a multiple of the data's (0: the exact cameras; 1: the noisy ones)")
    parser.add_argument("--results", default=None, help="also write the summary JSON here (e.g. bench/results/NAME.json)")
    args = parser.parse_args()
    print("torch threads:", mi.config.set_threads(args.threads))
    category = get_category(args.category)
    root = synthbirds_dir(resolve(args.data_dir), args.profile, category)
    default_out = "inversion_variants" if category.name == "birds" else f"inversion_variants_{category.name}"
    out = Path(args.out) if args.out else resolve("outputs") / args.profile / default_out
    out.mkdir(parents=True, exist_ok=True)
    G, info = load_shipped_prior(recipe=shipped_recipe(category.name))
    eval_net = load_feature_extractor(category.eval_features)
    template = make_uv_sphere()
    # the in-domain features named explicitly ("auto" would pick ImageNet VGG-19 where its weights are on disk)
    base = replace(InversionConfig.for_profile(args.profile), features=category.loss_features)
    configs = dict([("ours", base)] + [parse_variant(v, base) for v in (args.variant or DEFAULT_VARIANTS)])
    cells, timing = {}, {}
    for split, n in zip(args.splits, args.images + [args.images[-1]] * len(args.splits)):
        ds = ReconstructionDataset(root, split)
        indices = list(range(min(args.first, len(ds)), min(args.first + n, len(ds))))
        n = len(indices)
        for name, cfg in configs.items():
            key = cell_name(split, args.noise, name)
            path = out / f"{key}.npz"
            if args.only is not None and name not in args.only:
                if path.exists():
                    cells[key] = read_cell(path)[0]
                continue
            c = cells[key] = run_cell(G, ds, indices, name, args.noise, cfg, eval_net, path, batch_size=args.batch,
                                      template=template)
            print(f"[{split} {name}] {n} images: {float(c['seconds']) / n:.2f} s/image, {float(np.mean(c['steps'])):.0f} steps",
                  flush=True)
    for key, c in cells.items():
        timing[key] = {"seconds_per_image": float(c["seconds"]) / c["iou"].size, "steps": float(np.mean(c["steps"])),
                       "folded": float(np.mean(c["folded"]))}
    conditions = [(s, args.noise) for s in args.splits]
    summary = summarize(cells, conditions, list(configs))
    print(f"\n{args.profile}, shipped prior ({info.get('file')}), {base.total_steps}-step schedule; metrics: {eval_net.name}")
    for name, cfg in configs.items():
        if name != "ours":
            changed = {k: v for k, v in cfg.to_dict().items() if base.to_dict().get(k) != v}
            print(f"  {name}: {changed}")
    print(format_table(summary))
    print(f"\n{'cell':<28} {'s/image':>8} {'steps':>6} {'folded':>7}")
    for key, r in timing.items():
        print(f"{key:<28} {r['seconds_per_image']:8.2f} {r['steps']:6.0f} {r['folded']:7.4f}")
    report = {"profile": args.profile, "variants": {k: c.to_dict() for k, c in configs.items()},
              "timing": timing, "summary": summary, "metric_network": eval_net.name}
    write_json(out / "summary.json", report)
    if args.results:
        write_json(args.results, report)
    first = next((n for n in configs if n != "ours"), None)
    a, b = timing.get(cell_name(args.splits[0], args.noise, "ours")), timing.get(cell_name(args.splits[0], args.noise, first or ""))
    print(f"variants_speedup_{first}={b['seconds_per_image'] / a['seconds_per_image'] if a and b else float('nan'):.3f}")


if __name__ == "__main__":
    main()
