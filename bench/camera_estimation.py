#!/usr/bin/env python
"""Camera and species withheld: how close does the estimate come, and what does it cost in quality?

    python bench/camera_estimation.py                      # 24 lite test images, quick schedule, shipped prior
    python bench/camera_estimation.py --num-images 40 --profile lite

Every test image goes through the "your own photo" path (:func:`meshinv_lite.photo.reconstruct_photo`:
re-framed around its mask, no camera, no class) and, for comparison, through the normal inversion with
its noisy SfM-like camera and its true class. Prints the azimuth error (median, share within 20 and 45
degrees, front/back flips beyond 135), the species accuracy, and IoU / novel-view PSNR of both paths with
the paired difference (mean, 95 % bootstrap interval, wins per image). Writes outputs/bench/camera_estimation.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch
import torch.nn.functional as F

from meshinv_lite import io
from meshinv_lite.render import WeakPerspectiveCamera
from meshinv_lite.config import RenderConfig, set_threads
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data import build_synthbirds
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.inversion import InversionConfig, invert_batch
from meshinv_lite.evaluation import reconstruction_metrics
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.metrics import mask_iou
from meshinv_lite.photo import Photo
from meshinv_lite.gan import load_shipped_prior
from meshinv_lite.photo import reconstruct_photo
from meshinv_lite.render import render_mesh


def bootstrap(d: torch.Tensor, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(d), (n, len(d)), generator=g)
    m = d[idx].mean(1).sort().values
    return float(m[int(0.025 * n)]), float(m[int(0.975 * n) - 1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--data-profile", default="lite",
                   help="SynthBirds profile of the test images (quick has only 16 test images, so 24+ need lite; "
                        "its 128 px images are resized to the inversion's render size, as invert() does)")
    p.add_argument("--num-images", type=int, default=24)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="outputs/bench/camera_estimation.json")
    p.add_argument("--hypotheses", nargs="+", default=["encoder"], choices=["encoder", "grid"],
                   help="where the camera and species hypotheses come from (both: timed one after the other on the "
                        "same images; results keyed by mode)")
    p.add_argument("--no-adapt", action="store_true", help="pure latent inversion after the hypotheses")
    a = p.parse_args(argv)
    set_threads(a.threads)
    data_profile = a.data_profile
    root = synthbirds_dir(a.data_dir, data_profile)
    build_synthbirds(root, profile=data_profile, splits=("test",), progress=False)
    data = ReconstructionDataset(root, "test", load_gt=True, limit=a.num_images)
    if len(data) < a.num_images:
        print(f"note: {root} has only {len(data)} test images (use --data-profile lite for more)")
    batch = data.batch(range(len(data)))
    G, info = load_shipped_prior(device=a.device)
    cfg = InversionConfig.for_profile(a.profile)
    template = make_uv_sphere().to(a.device)
    size = batch["image"].shape[-1]

    t0 = time.perf_counter()
    given = invert_batch(G, batch, cfg, camera="noisy", template=template)
    t_given = (time.perf_counter() - t0) / len(data)
    m_given = reconstruction_metrics(given, batch, template, cfg.render)

    results = {}
    for mode in a.hypotheses:
        az_err, cls_ok, iou_est, psnr_est, t_est = [], [], [], [], []
        true_az = WeakPerspectiveCamera.from_tensor(batch["camera"]).view_angles()[0]
        for i in range(len(data)):
            photo = Photo(batch["image"][i], batch["mask"][i], source=f"test/{batch['name'][i]}", source_size=(size, size))
            t1 = time.perf_counter()
            r = reconstruct_photo(photo, generator=G, profile=a.profile, device=a.device, progress=False, seed=i,
                                  config=cfg.with_encoder_start("guessed") if mode == "encoder" else cfg, hypotheses=mode,
                                  adapt=not a.no_adapt)
            t_est.append(time.perf_counter() - t1)
            cam = r.crop.to_photo_camera(r.reconstruction.camera)
            rec = dataclasses.replace(r.reconstruction, camera=cam)
            row = {k: v[i:i + 1] if torch.is_tensor(v) else v[i:i + 1] for k, v in batch.items()}
            m = reconstruction_metrics(rec, row, template, cfg.render)
            rs = cfg.render.image_size  # IoU at the render size, with the mask resized as invert() resizes it
            with torch.no_grad():
                out = render_mesh(template, rec.vertices, cam, rec.texture, RenderConfig(image_size=rs), soft=False)
                target = (F.interpolate(row["mask"].float(), size=(rs, rs), mode="bilinear", align_corners=False) > 0.5).float()
            iou_est.append(float(mask_iou(out.mask, target.to(out.mask.device))[0]))
            psnr_est.append(float(m["psnr_novel"][0]))
            d = abs(float(r.azimuth_elevation[0]) - float(true_az[i])) % 360
            az_err.append(min(d, 360 - d))
            cls_ok.append(r.class_id == int(batch["class_id"][i]))
            print(f"{i:3d} class {int(batch['class_id'][i]):2d}->{r.class_id:2d}  azimuth {float(true_az[i]):6.1f}->"
                  f"{r.azimuth_elevation[0]:6.1f} (err {az_err[-1]:5.1f})  IoU {iou_est[-1]:.3f} vs {float(m_given['iou'][i]):.3f}"
                  f"  PSNR {psnr_est[-1]:.2f} vs {float(m_given['psnr_novel'][i]):.2f}  {t_est[-1]:.1f} s", flush=True)
        err = torch.tensor(az_err)
        res = {"hypotheses": mode, "adapt": not a.no_adapt, "num_images": len(data), "profile": a.profile, "data_profile": data_profile, "prior": info.get("file"),
               "azimuth_error_median": float(err.median()), "azimuth_error_mean": float(err.mean()),
               "within_20": float((err <= 20).float().mean()), "within_45": float((err <= 45).float().mean()),
               "flips_over_135": int((err > 135).sum()), "class_accuracy": float(torch.tensor(cls_ok).float().mean()),
               "seconds_per_image_estimated": sum(t_est) / len(t_est), "seconds_per_image_given": t_given}
        for key, est, giv in (("iou", torch.tensor(iou_est), m_given["iou"].float()),
                              ("psnr_novel", torch.tensor(psnr_est), m_given["psnr_novel"].float())):
            d = est - giv
            lo, hi = bootstrap(d)
            res[key] = {"estimated_camera": float(est.mean()), "given_noisy_camera": float(giv.mean()),
                        "difference": float(d.mean()), "ci95": [lo, hi], "wins_estimated": int((d > 0).sum())}
        print(f"\n{len(data)} {data_profile} test images, {a.profile} schedule, camera and species withheld (prior {info.get('file')}):")
        print(f"  azimuth error: median {res['azimuth_error_median']:.1f} deg, mean {res['azimuth_error_mean']:.1f}; "
              f"{100 * res['within_20']:.0f}% within 20 deg, {100 * res['within_45']:.0f}% within 45; "
              f"{res['flips_over_135']} front/back flips (> 135 deg)")
        print(f"  species: {100 * res['class_accuracy']:.0f}% right")
        for key in ("iou", "psnr_novel"):
            r_ = res[key]
            print(f"  {key:10s} estimated {r_['estimated_camera']:.3f}  given {r_['given_noisy_camera']:.3f}  "
                  f"diff {r_['difference']:+.3f} [{r_['ci95'][0]:+.3f}, {r_['ci95'][1]:+.3f}]  estimated wins "
                  f"{r_['wins_estimated']}/{len(data)}")
        print(f"  time per image: {res['seconds_per_image_estimated']:.1f} s estimated vs {res['seconds_per_image_given']:.1f} s given")
        results[mode] = res
    io.write_json(a.out, results if len(results) > 1 else res)
    for mode, r_ in results.items():
        print(f"camera_estimation_{mode}_seconds_per_image={r_['seconds_per_image_estimated']:.3f}")
        print(f"camera_estimation_{mode}_azimuth_error_median={r_['azimuth_error_median']:.2f}")
        print(f"camera_estimation_{mode}_species_correct={round(r_['class_accuracy'] * r_['num_images'])}/{r_['num_images']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
