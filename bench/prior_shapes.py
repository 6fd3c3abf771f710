"""Where does a prior's 3D error come from? Two priors of one category, paired, and the shapes they can make.

On the first ``--images`` test images of a built dataset (lite inversion, noisy cameras, the category's loss network):

* each prior inverts every image; IoU, novel-view PSNR and 3D Chamfer per image, paired (``B - A``, 95 % bootstrap
  interval, wins of B);
* without any image: the 3D Chamfer to the true shapes of each prior's sample at ``z = 0`` for the image's true class,
  the mean over 16 random ``z`` and the best of those 16 (an oracle: the closest shape a random search could find);
* the species means the pseudo-GT was anchored to (``--means A.npz B.npz``), against the same true shapes: what the
  prior was taught to reach.

    python bench/prior_shapes.py --category cars --prior-a meshinv_lite/priors/synthcars_lite.pt \\
        --prior-b other/synthcars_lite.pt --means data/.../species_means.npz data/.../species_means.npz

Prints the figures, then ``chamfer_3d_a=... chamfer_3d_b=... psnr_novel_a=... psnr_novel_b=...``; ``--out`` writes
them as JSON.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from meshinv_lite.config import CATEGORY_NAMES, set_threads
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data.category import get_category
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.evaluation import paired
from meshinv_lite.evaluation.ground_truth import reconstruction_metrics
from meshinv_lite.gan.prior import load_shipped_prior, shipped_recipe
from meshinv_lite.inversion import InversionConfig, invert_batch
from meshinv_lite.io import write_json
from meshinv_lite.metrics import chamfer_3d
from meshinv_lite.paths import resolve
from meshinv_lite.render import deform_vertices, make_uv_sphere


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--category", default="cars", choices=CATEGORY_NAMES)
    parser.add_argument("--prior-a", required=True)
    parser.add_argument("--prior-b", required=True)
    parser.add_argument("--means", nargs="*", default=[], help="species_means.npz files to score as shapes")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    set_threads(args.threads)
    category = get_category(args.category)
    root = synthbirds_dir(resolve(args.data_dir), "lite", category)
    data = ReconstructionDataset(root, "test", load_gt=True, limit=args.images)
    batch_all = data.batch(range(len(data)))
    template = make_uv_sphere()
    truth = deform_vertices(template, batch_all["deform_map"])
    classes = batch_all["class_id"]
    cfg = InversionConfig.for_profile("lite", category=category.name)
    out: dict = {"images": len(data), "category": category.name, "priors": {}}
    per: dict = {}
    for key, path in (("a", args.prior_a), ("b", args.prior_b)):
        G, _ = load_shipped_prior(path=path, recipe=shipped_recipe(category.name))
        rows: dict = {"iou": [], "psnr_novel": [], "chamfer_3d": []}
        for s in range(0, len(data), 8):
            b = data.batch(range(s, min(s + 8, len(data))))
            rec = invert_batch(G, b, cfg, camera="noisy", template=template, seed=s)
            m = reconstruction_metrics(rec, b, template, cfg.render)
            for k in rows:
                rows[k] += [float(x) for x in m[k]]
        with torch.no_grad():
            z0 = chamfer_3d(deform_vertices(template, G.deformation(torch.zeros(len(data), G.config.latent_dim), classes)), truth)
            g = torch.Generator().manual_seed(0)
            draws = torch.stack([chamfer_3d(deform_vertices(template, G.deformation(
                torch.randn(len(data), G.config.latent_dim, generator=g), classes)), truth) for _ in range(16)])
        per[key] = {k: np.asarray(v) for k, v in rows.items()}
        out["priors"][key] = {"path": path, **{k: float(np.mean(v)) for k, v in rows.items()},
                              "sample_z0_chamfer_3d": float(z0.mean()), "samples_chamfer_3d": float(draws.mean()),
                              "best_of_16_samples_chamfer_3d": float(draws.min(0).values.mean())}
        print(json.dumps(out["priors"][key]), flush=True)
    out["b_minus_a"] = {k: paired(per["b"][k], per["a"][k], 1 if k != "chamfer_3d" else -1) for k in per["a"]}
    for path in args.means:
        means = torch.from_numpy(np.load(path)["means"])
        out.setdefault("species_means_chamfer_3d", {})[path] = float(chamfer_3d(deform_vertices(template, means[classes]), truth).mean())
    print(json.dumps({k: v for k, v in out.items() if k != "priors"}, default=float))
    if args.out:
        write_json(args.out, out)
    a, b = out["priors"]["a"], out["priors"]["b"]
    print(f"chamfer_3d_a={a['chamfer_3d']:.4f} chamfer_3d_b={b['chamfer_3d']:.4f} "
          f"psnr_novel_a={a['psnr_novel']:.2f} psnr_novel_b={b['psnr_novel']:.2f}")


if __name__ == "__main__":
    main()
