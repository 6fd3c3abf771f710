"""A quick check of a prior: invert a few validation images and score them against ground truth."""
from __future__ import annotations

from pathlib import Path

import torch

from ..gan.networks import Generator


def inversion_probe(generator: Generator, dataset_root: str | Path, split: str = "val", num_images: int = 16,
                    profile: str = "lite", seed: int = 0, camera: str = "noisy", batch_size: int = 8,
                    progress: bool = False) -> dict:
    """What the prior is for: invert ``num_images`` images of ``split`` (the profile's inversion schedule; on a
    category other than birds with that category's in-domain loss network) and score them against ground truth. Means of IoU, PSNR/SSIM of novel views, 3D Chamfer, F-score and
    the folded fraction (:func:`~meshinv_lite.metrics.folded_fraction`) of reconstructions and true shapes."""
    from ..data.category import category_of
    from ..data.dataset import ReconstructionDataset
    from ..inversion.config import InversionConfig
    from ..inversion.search import invert_batch
    from ..render.mesh import make_uv_sphere
    from .ground_truth import reconstruction_metrics

    device = next(generator.parameters()).device
    data = ReconstructionDataset(dataset_root, split, load_gt=True, limit=num_images)
    cfg = InversionConfig.for_profile(profile, category=category_of(dataset_root).name)  # its own loss network
    template = make_uv_sphere().to(device)
    rows: dict[str, list] = {}
    for s in range(0, len(data), batch_size):
        batch = data.batch(range(s, min(s + batch_size, len(data))))
        rec = invert_batch(generator, batch, cfg, camera=camera, template=template, seed=seed + s)
        m = reconstruction_metrics(rec, batch, template, cfg.render)
        for k in ("iou", "psnr_novel", "ssim_novel", "chamfer_3d", "f_score", "folded", "folded_gt"):
            rows.setdefault(k, []).append(m[k])
        if progress:
            print(f"  probe {min(s + batch_size, len(data))}/{len(data)}: IoU {float(rec.iou.mean()):.3f}", flush=True)
    out = {k: float(torch.cat(v).mean()) for k, v in rows.items()}
    out.update(num_images=len(data), split=split, profile=profile, camera=camera, steps=cfg.total_steps,
               features=cfg.features)
    return out
