"""A photo without a mask: how good is the estimated mask, and what does it cost the reconstruction? (issue 32)

On lite test images (default 48; their true masks known) the shipped segmenter estimates each mask from the image
alone (:func:`meshinv_lite.photo.segment.estimate_mask`, two passes, largest blob). Prints the mask IoU against the
truth (mean, worst, bootstrap interval), then inverts every image twice with the profile's inversion (noisy
camera, its class): once with the true mask and once with the estimated one, and scores both reconstructions'
silhouettes against the TRUE mask (paired difference, interval, wins).

    python bench/mask_estimation.py --threads 2                    # 48 lite test images
    python bench/mask_estimation.py --split test_hard --images 20

Ends with key=value lines.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import meshinv_lite as mi
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.encoder import load_shipped_encoder
from meshinv_lite.evaluation import paired
from meshinv_lite.evaluation.ablation import bootstrap_mean
from meshinv_lite.gan import load_shipped_prior
from meshinv_lite.inversion import InversionConfig, invert_batch
from meshinv_lite.io import write_json
from meshinv_lite.metrics import mask_iou
from meshinv_lite.paths import resolve
from meshinv_lite.photo.segment import estimate_mask
from meshinv_lite.render import make_uv_sphere, render_mesh


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="lite")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--split", default="test")
    p.add_argument("--images", type=int, default=48)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="default: outputs/<profile>/mask_estimation_<split>.json")
    a = p.parse_args()
    print("torch threads:", mi.config.set_threads(a.threads))
    root = synthbirds_dir(resolve(a.data_dir), a.profile)
    ds = ReconstructionDataset(root, a.split, load_gt=True, limit=a.images)
    _, seg, _ = load_shipped_encoder()
    G, _ = load_shipped_prior()
    cfg = InversionConfig.for_profile(a.profile)
    template = make_uv_sphere()
    batch = ds.batch(range(len(ds)))
    t0 = time.perf_counter()
    est = torch.stack([estimate_mask(batch["image"][i], seg).mask for i in range(len(ds))])
    t_mask = (time.perf_counter() - t0) / len(ds)
    mask_iou_v = mask_iou(est, batch["mask"]).numpy()
    rec_iou = {"true_mask": [], "estimated_mask": []}
    size = cfg.render.image_size
    truth = (F.interpolate(batch["mask"], size=(size, size), mode="bilinear", align_corners=False) > 0.5).float()
    for s in range(0, len(ds), a.batch):
        sl = slice(s, s + a.batch)
        sub = {k: v[sl] if torch.is_tensor(v) else v for k, v in batch.items()}
        for name, masks in (("true_mask", sub["mask"]), ("estimated_mask", est[sl])):
            rec = invert_batch(G, {**sub, "mask": masks}, cfg, template=template, seed=s)
            with torch.no_grad():
                out = render_mesh(template, rec.vertices, rec.camera, rec.texture, cfg.render, soft=False)
            rec_iou[name].append(mask_iou(out.mask, truth[sl]).numpy())
        print(f"  {min(s + a.batch, len(ds))}/{len(ds)}", flush=True)
    r_true, r_est = np.concatenate(rec_iou["true_mask"]), np.concatenate(rec_iou["estimated_mask"])
    m, lo, hi = bootstrap_mean(mask_iou_v)
    diff = paired(r_est, r_true, 1)
    res = {"profile": a.profile, "split": a.split, "images": len(ds), "seconds_per_mask": t_mask,
           "mask_iou": {"mean": m, "lo": lo, "hi": hi, "min": float(mask_iou_v.min()),
                        "below_0.9": int((mask_iou_v < 0.9).sum())},
           "reconstruction_iou_vs_true_mask": {"with_true_mask": float(r_true.mean()),
                                               "with_estimated_mask": float(r_est.mean()), "difference": diff}}
    print(f"\n{len(ds)} {a.profile} {a.split} images: estimated mask IoU {m:.3f} [{lo:.3f}, {hi:.3f}], worst "
          f"{mask_iou_v.min():.3f}, {res['mask_iou']['below_0.9']} below 0.9; {t_mask:.3f} s per mask")
    print(f"reconstruction IoU against the true mask: inverted with the true mask {r_true.mean():.3f}, with the "
          f"estimated one {r_est.mean():.3f}: {diff['diff']:+.4f} [{diff['lo']:+.4f}, {diff['hi']:+.4f}], estimated "
          f"wins {diff['wins']}/{diff['n']}")
    out = resolve(a.out) if a.out else resolve("outputs") / a.profile / f"mask_estimation_{a.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, res)
    print(f"mask_estimation_{a.split}_mask_iou={m:.4f}")
    print(f"mask_estimation_{a.split}_reconstruction_iou_gap={diff['diff']:.4f}")


if __name__ == "__main__":
    main()
