"""Does the adaptation phase help where the prior cannot make what the photo shows? (issue 29)

Paired evidence: each split's images are inverted ONCE with the profile's latent-only inversion (seed 0, noisy
cameras, shipped prior, in-domain loss features); every adaptation variant then starts from that same result, so
the comparison is exact image by image (``latent`` against ``latent+adapt``). Per image: input-view IoU (and with the
twig ignored on test_hard), input-view PSNR, novel-view PSNR / SSIM / perceptual distance, per view around the
circle (12 turns of 30 degrees; perceptual on 11), 3D Chamfer and F-score, folded faces, roughness (mean angle
between neighbouring face normals, with the true birds' beside it), ``|z| / sqrt(64)``; per variant FD in-domain
1/10/12 (a set figure, images resampled for its interval); seconds per image of each phase.

    python bench/adapt_phase.py                                     # lite: 24 test, 20 test_hard, 24 test_unseen
    python bench/adapt_phase.py --first 24 --out outputs/lite/adapt_heldout   # images the choice never saw
    python bench/adapt_phase.py --variant shape_only:texture=False --variant tex_only:shape_steps=0
    python bench/adapt_phase.py --splits test@hue120 --images 24   # recoloured birds (meshinv_lite.data.ood)

Cells are stored per (split, variant) under --out and reused when their settings match (an interrupted run resumes).
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

import meshinv_lite as mi
from _paired import paired_lines, paired_row
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data.ood import recolour_batch
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.evaluation import iou_occluder_ignored, realism_per_image, reconstruction_metrics
from meshinv_lite.features import load_feature_extractor
from meshinv_lite.gan import load_shipped_prior
from meshinv_lite.inversion import AdaptConfig, InversionConfig, adapt_reconstruction, invert_batch
from meshinv_lite.inversion.search import resize_targets
from meshinv_lite.io import atomic_savez, atomic_torch_save, write_json
from meshinv_lite.paths import resolve
from meshinv_lite.render import WeakPerspectiveCamera, deform_vertices, make_uv_sphere

LATENT = "latent"
#: per-image metrics: (key, label, +1 higher is better / -1 lower / 0 neither)
METRICS = (("iou", "IoU input view", 1), ("iou_occluder_ignored", "IoU, twig ignored", 1),
           ("psnr_input_view", "PSNR input view", 1), ("psnr_novel", "PSNR novel", 1), ("ssim_novel", "SSIM novel", 1),
           ("perceptual", "perceptual novel", -1), ("chamfer_3d", "3D Chamfer", -1), ("f_score", "F-score", 1),
           ("folded", "folded faces", -1), ("roughness", "roughness (deg)", -1), ("z_norm", "|z|/sqrt(64)", 0))
DEFAULT_VARIANTS = ("adapt:",)


def parse_variant(text: str, base: AdaptConfig) -> tuple[str, AdaptConfig]:
    name, _, assigns = text.partition(":")
    changes = {}
    known = {f.name for f in fields(AdaptConfig)}
    for item in filter(None, re.split(r",(?![^()]*\))", assigns)):   # commas inside a tuple stay
        key, _, value = item.partition("=")
        if key not in known:
            raise SystemExit(f"--variant {text!r}: {key!r} is not a field of AdaptConfig ({sorted(known)})")
        changes[key] = ast.literal_eval(value)
    return name, replace(base, **changes)


def score(rec, batch, template, cfg, eval_net, twig) -> dict:
    """Per-image figures of one reconstruction (numpy arrays, first axis the images)."""
    m = reconstruction_metrics(rec, batch, template, cfg.render)
    gt_verts = deform_vertices(template, batch["deform_map"])
    r = realism_per_image(eval_net, template, rec.vertices, rec.texture, rec.camera, gt_verts, batch["texture_map"],
                          WeakPerspectiveCamera.from_tensor(batch["camera"]), cfg.render)
    out = {k: m[k].numpy() for k in ("iou", "psnr_input_view", "psnr_novel", "ssim_novel", "chamfer_3d", "f_score",
                                     "folded", "folded_gt", "roughness", "roughness_gt")}
    out.update(psnr_per_view=m["psnr_per_view"].numpy(), perceptual_per_view=r["perceptual"].numpy(),
               perceptual=r["perceptual"].mean(1).numpy(), embed_pred=r["embed_pred"], embed_true=r["embed_true"],
               z_norm=(rec.z.norm(dim=1) / rec.z.shape[1] ** 0.5).cpu().numpy())
    if twig is not None:
        out["iou_occluder_ignored"] = iou_occluder_ignored(rec, batch["mask"], twig, template, cfg.render).numpy()
    return out


def run_split(G, ds, indices, cfg, variants: dict, eval_net, template, out: Path, batch_size: int,
              hue: float = 0.0) -> dict:
    """Cells ``{variant: arrays}`` of one split (its birds hue-rotated by ``hue`` degrees), computed or read back."""
    tag = ds.split + (f"@hue{hue:g}" if hue else "")
    sig = {"split": tag, "indices": list(map(int, indices)), "config": cfg.to_dict(), "eval_net": eval_net.name}
    paths = {v: out / f"{tag}_{v}.npz" for v in [LATENT, *variants]}
    sigs = {v: json.dumps({**sig, "adapt": a.to_dict() if a is not None else None}, sort_keys=True, default=str)
            for v, a in [(LATENT, None), *variants.items()]}
    cells = {}
    for v, p in paths.items():
        if p.exists():
            with np.load(p, allow_pickle=False) as z:
                if str(z["signature"]) == sigs[v]:
                    cells[v] = {k: z[k] for k in z.files if k != "signature"}
    if len(cells) == len(paths):
        return cells
    todo = [v for v in paths if v not in cells]
    rows = {v: {} for v in todo}
    seconds = {v: 0.0 for v in todo}
    twig_all = ds.data.annotations.get("occluder") if hasattr(ds.data, "annotations") else None
    rec_path = out / f"{tag}_latent_reconstructions.pt"   # the latent results, so that new variants need no search
    saved = torch.load(rec_path, weights_only=False) if rec_path.exists() else {}
    if saved.get("signature") != sigs[LATENT]:
        saved = {"signature": sigs[LATENT], "batches": {}}
    for s in range(0, len(indices), batch_size):
        idx = list(indices[s:s + batch_size])
        batch = ds.batch(idx)
        if hue:
            batch = recolour_batch(batch, hue)
        twig = torch.as_tensor(twig_all[np.asarray(idx)]) if twig_all is not None else None
        if s in saved["batches"]:
            rec, latent_seconds = saved["batches"][s]
        else:
            t0 = time.perf_counter()
            rec = invert_batch(G, batch, cfg, template=template, seed=idx[0])
            latent_seconds = time.perf_counter() - t0
            saved["batches"][s] = (rec, latent_seconds)
            atomic_torch_save(saved, rec_path)
        if LATENT in seconds:
            seconds[LATENT] += latent_seconds
        images, masks = resize_targets(batch["image"], batch["mask"], cfg.render.image_size)
        recs = {LATENT: rec} if LATENT in todo else {}
        for v in todo:
            if v == LATENT:
                continue
            t0 = time.perf_counter()
            recs[v] = adapt_reconstruction(rec, images, masks, template, variants[v], cfg.render)
            seconds[v] += time.perf_counter() - t0
        for v, r in recs.items():
            for k, a in score(r, batch, template, cfg, eval_net, twig).items():
                rows[v].setdefault(k, []).append(a)
        print(f"  {tag} {s + len(idx)}/{len(indices)}: IoU " + ", ".join(
            f"{v} {float(r.iou.mean()):.3f}" for v, r in recs.items()), flush=True)
    for v in todo:
        cells[v] = {k: np.concatenate(a) for k, a in rows[v].items()}
        cells[v]["seconds"] = np.asarray(seconds[v])
        atomic_savez(paths[v], signature=np.asarray(sigs[v]), **cells[v])
    return {v: cells[v] for v in paths}


def summarize_split(cells: dict) -> dict:
    base = cells[LATENT]
    out = {}
    for v, c in cells.items():
        row = paired_row(c, base, METRICS, "vs_latent", v == LATENT)
        row["roughness_gt"] = {"mean": float(np.mean(c["roughness_gt"]))}
        row["folded_gt"] = {"mean": float(np.mean(c["folded_gt"]))}
        row["seconds_per_image"] = float(c["seconds"]) / c["iou"].size
        out[v] = row
    return out


def format_summary(summary: dict) -> str:
    lines = []
    for split, rows in summary.items():
        lines.append(f"\n== {split} ({rows[LATENT]['iou'] and len(rows)} variants)")
        for v, row in rows.items():
            lines.append(f"  {v}: {row['seconds_per_image']:.2f} s/image (latent phase included only in 'latent')")
            lines += paired_lines(row, METRICS, "vs_latent", "vs latent", 22)
            lines.append(f"    true birds: roughness {row['roughness_gt']['mean']:.2f} deg, folded {row['folded_gt']['mean']:.4f}")
            lines.append("    PSNR per view (0..330 by 30): " + " ".join(f"{x:.1f}" for x in row["psnr_per_view"]))
            lines.append("    perceptual per view (30..330): " + " ".join(f"{x:.3f}" for x in row["perceptual_per_view"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=None, help="default: outputs/<profile>/adapt_phase")
    parser.add_argument("--splits", nargs="+", default=["test", "test_hard", "test_unseen"],
                        help="split names; SPLIT@hueDEG recolours its birds (image and true texture) by DEG degrees")
    parser.add_argument("--images", type=int, nargs="+", default=[24, 20, 24], help="per split, in --splits order")
    parser.add_argument("--first", type=int, default=0, help="index of each split's first image")
    parser.add_argument("--variant", action="append", default=None, help="NAME:KEY=VALUE,... over AdaptConfig")
    parser.add_argument("--texture-loss", default=None,
                        help="the latent search's texture loss instead of the profile's (e.g. l1, chamfer): to choose it "
                             "with out-of-distribution birds in the evidence; use another --out")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--results", default=None, help="also write the summary JSON here (bench/results/...)")
    args = parser.parse_args()
    print("torch threads:", mi.config.set_threads(args.threads))
    root = synthbirds_dir(resolve(args.data_dir), args.profile)
    out = Path(args.out) if args.out else resolve("outputs") / args.profile / "adapt_phase"
    out.mkdir(parents=True, exist_ok=True)
    G, info = load_shipped_prior()
    eval_net = load_feature_extractor("synthbirds_eval")
    template = make_uv_sphere()
    cfg = replace(InversionConfig.for_profile(args.profile), features="synthbirds_features", adapt=None)
    if args.texture_loss:
        cfg = cfg.with_losses(args.texture_loss)
    variants = dict(parse_variant(v, AdaptConfig()) for v in (args.variant or DEFAULT_VARIANTS))
    summary = {}
    counts = args.images + [args.images[-1]] * len(args.splits)
    for split, n in zip(args.splits, counts):
        name, _, hue = split.partition("@hue")
        ds = ReconstructionDataset(root, name, load_gt=True)
        indices = list(range(min(args.first, len(ds)), min(args.first + n, len(ds))))
        cells = run_split(G, ds, indices, cfg, variants, eval_net, template, out, args.batch, float(hue or 0))
        summary[split] = summarize_split(cells)
    text = format_summary(summary)
    print(text)
    report = {"profile": args.profile, "first": args.first, "images": dict(zip(args.splits, counts)),
              "inversion": cfg.to_dict(), "variants": {k: v.to_dict() for k, v in variants.items()},
              "metric_network": eval_net.name, "prior": info.get("file"), "summary": summary}
    write_json(out / "summary.json", report)
    (out / "summary.txt").write_text(text + "\n")
    if args.results:
        write_json(args.results, report)
        Path(args.results).with_suffix(".txt").write_text(text + "\n")
    first = next(iter(variants))   # key=value lines: the first variant against latent-only inversion, per split
    for split, rows in summary.items():
        for key in ("iou", "psnr_input_view", "psnr_novel"):
            print(f"adapt_{first}_{split}_{key}_gain={rows[first][key]['vs_latent']['diff']:.4f}")
    ratio = max(rows[first]["seconds_per_image"] / rows[LATENT]["seconds_per_image"] for rows in summary.values())
    print(f"adapt_{first}_time_vs_latent_max={ratio:.3f}")


if __name__ == "__main__":
    main()
