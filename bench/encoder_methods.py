"""Regression against inversion, and the encoder as inversion's fast start (issue 32).

On the same images (lite: 24 test, 20 test_hard, 24 test_unseen; noisy cameras, shipped prior, seed 0) every
method reconstructs every image, and each is paired against today's inversion (``inversion``: the profile's
best-of-N random start):

* ``encoder_only``: the encoder's latent, species and camera through the prior (a regression method);
* ``texture_flow``: the same shape and camera, the texture sampled from the photo by the predicted flow;
* ``--fast NAME:N:STAGES``: inversion started from the encoder's latent and ``N - 1`` draws around it, with a
  shorter schedule (``20x0.05,15x0.01``: 20 steps at learning rate 0.05, then 15 at 0.01; ``15x0.1x0.01xshape``:
  a shape-only stage, silhouette and regularizers without the texture losses; ``30x0.1xrgb``: a stage with the
  pixel-level texture losses only, no feature network, :attr:`InversionStage.features`; ``30x0.1@64``: a stage
  rendered at 64 px instead of the profile's render size, against the targets resized to it).

Per image: IoU, input-view and novel-view PSNR, SSIM, perceptual distance (metric network), 3D Chamfer, F-score, per
view around the circle; per method FD in-domain 1/10/12 and seconds per image (timed in this one process, one
after the other on the same batches, so the ratio is fair even on a busy machine; absolute times need idle cores).

    python bench/encoder_methods.py --threads 2
    python bench/encoder_methods.py --fast enc4:4:20x0.05,15x0.01 --fast enc1:1:skip1 --splits test --images 24

Prints a table and key=value lines; writes ``--out`` (JSON + text; the JSON keeps every image's figures under
``per_image``, so that sets from several runs can be pooled).
"""
from __future__ import annotations

import argparse
import ast
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import meshinv_lite as mi
from _paired import paired_lines, paired_row
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.encoder import load_shipped_encoder
from meshinv_lite.evaluation import realism_per_image, reconstruction_metrics
from meshinv_lite.features import load_feature_extractor
from meshinv_lite.gan import load_shipped_prior
from meshinv_lite.inversion import InversionConfig, InversionStage, invert_batch, regress_batch
from meshinv_lite.io import write_json
from meshinv_lite.paths import resolve
from meshinv_lite.render import WeakPerspectiveCamera, deform_vertices, make_uv_sphere

BASE = "inversion"
METRICS = (("iou", "IoU input view", 1), ("psnr_input_view", "PSNR input view", 1), ("psnr_novel", "PSNR novel", 1),
           ("ssim_novel", "SSIM novel", 1), ("perceptual", "perceptual novel", -1), ("chamfer_3d", "3D Chamfer", -1),
           ("f_score", "F-score", 1), ("azimuth_error", "azimuth error (deg)", -1))


def fast_config(cfg: InversionConfig, candidates: int, stages: str) -> InversionConfig:
    """Inversion from the encoder's start: ``candidates`` draws (the encoder's latent first) and the schedule
    ``stages`` = ``"STEPSxLR[xCAMERA_LR][xshape|xrgb][@SIZE],..."`` (camera learning rate by default a tenth of the
    latent's, as in the authors'; ``xrgb``: without the feature-level losses; ``@SIZE``: the stage renders at SIZE px,
    :attr:`InversionStage.render_size`;
    ``"skipK"``: the profile's schedule without its first K stages), each stage run in full."""
    if stages.startswith("skip"):
        sched = cfg.stages[int(stages[4:]):]
        return replace(cfg, init="encoder", init_candidates=candidates, init_batch=max(candidates, 1), stages=sched)
    def stage(text: str) -> InversionStage:   # STEPSxLR (camera LR / 10) or STEPSxLRxCAMERA_LR, "xshape": shape only,
        text, *size = text.split("@")         # "@SIZE": rendered at SIZE px (InversionStage.render_size)
        n, lr, *cam = text.split("x")
        shape = bool(cam) and cam[-1] == "shape"
        cam = cam[:-1] if shape else cam
        pixel = bool(cam) and cam[-1] == "rgb"
        cam = cam[:-1] if pixel else cam
        return InversionStage(int(n), float(lr), float(cam[0]) if cam else float(lr) / 10, shape_only=shape,
                              render_size=int(size[0]) if size else None, features=not pixel)

    sched = tuple(stage(p) for p in stages.split(","))
    return replace(cfg, init="encoder", init_candidates=candidates, init_batch=max(candidates, 1), stages=sched,
                   stop_tol=None)


def score(rec, batch, template, cfg, eval_net) -> dict:
    m = reconstruction_metrics(rec, batch, template, cfg.render)
    gt_verts = deform_vertices(template, batch["deform_map"])
    true_cam = WeakPerspectiveCamera.from_tensor(batch["camera"])
    r = realism_per_image(eval_net, template, rec.vertices, rec.texture, rec.camera, gt_verts, batch["texture_map"],
                          true_cam, cfg.render)
    pa, ta = rec.camera.view_angles()[0], true_cam.view_angles()[0]
    out = {k: m[k].numpy() for k in ("iou", "psnr_input_view", "psnr_novel", "ssim_novel", "chamfer_3d", "f_score")}
    out.update(psnr_per_view=m["psnr_per_view"].numpy(), perceptual_per_view=r["perceptual"].numpy(),
               perceptual=r["perceptual"].mean(1).numpy(), embed_pred=r["embed_pred"], embed_true=r["embed_true"],
               azimuth_error=((pa.cpu() - ta + 180) % 360 - 180).abs().numpy())
    return out


def run_split(G, encoder, ds, indices, methods: dict, eval_net, template, batch_size: int) -> dict:
    rows = {m: {} for m in methods}
    seconds = {m: 0.0 for m in methods}
    for s in range(0, len(indices), batch_size):
        idx = list(indices[s:s + batch_size])
        batch = ds.batch(idx)
        for name, (kind, cfg) in methods.items():
            t0 = time.perf_counter()
            if kind == "invert":
                rec = invert_batch(G, batch, cfg, template=template, seed=idx[0], encoder=encoder)
            else:
                rec = regress_batch(G, batch, kind, cfg.render, encoder=encoder, template=template)
            seconds[name] += time.perf_counter() - t0
            for k, a in score(rec, batch, template, cfg, eval_net).items():
                rows[name].setdefault(k, []).append(a)
        print(f"  {ds.split} {s + len(idx)}/{len(indices)}", flush=True)
    cells = {}
    for m in methods:
        cells[m] = {k: np.concatenate(a) for k, a in rows[m].items()}
        cells[m]["seconds"] = seconds[m]
    return cells


def summarize(cells: dict) -> dict:
    base = cells[BASE]
    out = {}
    for m, c in cells.items():
        row = paired_row(c, base, METRICS, "vs_inversion", m == BASE)
        row["seconds_per_image"] = c["seconds"] / c["iou"].size
        row["speedup_vs_inversion"] = (cells[BASE]["seconds"] / c["seconds"]) if c["seconds"] else None
        out[m] = row
    return out


def format_summary(summary: dict, counts: dict) -> str:
    lines = []
    for split, rows in summary.items():
        lines.append(f"\n== {split} ({counts[split]} images)")
        for m, row in rows.items():
            lines.append(f"  {m}: {row['seconds_per_image']:.2f} s/image ({row['speedup_vs_inversion']:.1f}x inversion's speed)")
            lines += paired_lines(row, METRICS, "vs_inversion", "vs inversion", 20)
            lines.append("    PSNR per view (0..330 by 30): " + " ".join(f"{x:.1f}" for x in row["psnr_per_view"]))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="lite")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--splits", nargs="+", default=["test", "test_hard", "test_unseen"])
    p.add_argument("--images", type=int, nargs="+", default=[24, 20, 24])
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--fast", action="append", default=None,
                   help="NAME:CANDIDATES:STAGES[:KEY=VALUE;...], STAGES 'STEPSxLR,...' or 'skipK', the optional overrides "
                        "InversionConfig fields (default: encoder_start, what InversionConfig.with_encoder_start runs)")
    p.add_argument("--no-regression", action="store_true", help="leave out encoder_only and texture_flow")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="default: outputs/<profile>/encoder_methods.json (+ .txt)")
    a = p.parse_args()
    print("torch threads:", mi.config.set_threads(a.threads))
    root = synthbirds_dir(resolve(a.data_dir), a.profile)
    G, info = load_shipped_prior()
    encoder, _, enc_info = load_shipped_encoder()
    eval_net = load_feature_extractor("synthbirds_eval")
    template = make_uv_sphere()
    cfg = replace(InversionConfig.for_profile(a.profile), features="synthbirds_features")
    methods = {BASE: ("invert", cfg)}
    if not a.fast:  # what the package runs
        methods["encoder_start"] = ("invert", cfg.with_encoder_start())
    for spec in a.fast or []:
        name, n, stages, *extra = spec.split(":")
        over = {k: ast.literal_eval(v) for k, v in (kv.split("=") for kv in extra[0].split(";"))} if extra else {}
        methods[name] = ("invert", replace(fast_config(cfg, int(n), stages), **over))
    if not a.no_regression:
        methods["encoder_only"] = ("generator", cfg)
        methods["texture_flow"] = ("flow", cfg)
    counts = dict(zip(a.splits, a.images + [a.images[-1]] * len(a.splits)))
    summary, per_image = {}, {}
    for split, n in counts.items():
        ds = ReconstructionDataset(root, split, load_gt=True)
        idx = list(range(a.first, min(a.first + n, len(ds))))
        cells = run_split(G, encoder, ds, idx, methods, eval_net, template, a.batch)
        summary[split] = summarize(cells)
        # per image, so that sets from several runs can be pooled into one paired bootstrap later
        per_image[split] = {"index": idx, **{m: {k: c[k].tolist() for k, _, _ in METRICS} for m, c in cells.items()}}
    text = format_summary(summary, counts)
    print(text)
    out = Path(a.out) if a.out else resolve("outputs") / a.profile / "encoder_methods.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, {"profile": a.profile, "first": a.first, "images": counts, "threads": torch.get_num_threads(),
                     "methods": {m: {"kind": k, "inversion": c.to_dict()} for m, (k, c) in methods.items()},
                     "prior": info.get("file"), "encoder": enc_info.get("file"), "metric_network": eval_net.name,
                     "summary": summary, "per_image": per_image})
    out.with_suffix(".txt").write_text(text + "\n")
    for split, rows in summary.items():
        for m, row in rows.items():
            if m == BASE:
                continue
            for key in ("iou", "psnr_novel"):
                print(f"{m}_{split}_{key}_vs_inversion={row[key]['vs_inversion']['diff']:.4f}")
            print(f"{m}_{split}_speedup={row['speedup_vs_inversion']:.2f}")
        print(f"inversion_{split}_seconds_per_image={rows[BASE]['seconds_per_image']:.3f}")
    # issue 32's speed target is one ratio for one run over its 24 + 20 test and test_hard images
    both = [sp for sp in ("test", "test_hard") if sp in summary]
    if len(both) == 2:
        seconds = {m: sum(summary[sp][m]["seconds_per_image"] * len(per_image[sp]["index"]) for sp in both)
                   for m in summary[both[0]]}
        for m, sec in seconds.items():
            if m != BASE and sec:
                print(f"{m}_test_and_test_hard_speedup={seconds[BASE] / sec:.2f}")


if __name__ == "__main__":
    main()
