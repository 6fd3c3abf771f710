"""Per-species mean shapes: the anchor each image's silhouette fit starts from (fitted once from the training
masks, cached on disk).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..data.dataset import batch_cameras
from ..distributed import SINGLE, DistContext
from ..render.camera import WeakPerspectiveCamera
from ..render.mesh import TemplateMesh
from .config import PseudoGTConfig, pseudo_gt_dir, read_json_roundtrip
from .silhouette_fit import SilhouetteFitConfig, fit_deformation


def species_means_path(dataset_root, camera: str = "noisy"):
    """``<dataset_root>/pseudo_gt_<camera>/species_means.npz``."""
    return pseudo_gt_dir(dataset_root, "train", camera).parent / "species_means.npz"


def species_means(
    dataset_root,
    config: PseudoGTConfig = PseudoGTConfig(),
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    dist: Optional[DistContext] = None,
    split: str = "train",
) -> torch.Tensor:
    """The species mean shapes ``(C, 3, Hd, Wd)`` of a dataset, fitted once and kept on disk.

    Fitted (:func:`fit_species_means`) to the first ``config.mean_views`` images of every class in
    ``split`` (the train split; another only for a dataset without one), with the cameras
    ``config.camera`` names; every split's pseudo-GT uses the same means. A file made with other settings
    is refitted. Under ``torchrun`` rank 0 fits, the others read.
    """
    import json
    import time

    import numpy as np

    from ..data.dataset import ReconstructionDataset
    from ..io import atomic_savez
    from ..render.mesh import make_uv_sphere

    ctx = dist or SINGLE
    path = species_means_path(dataset_root, config.camera)
    data = ReconstructionDataset(dataset_root, split, load_gt=False)
    recipe = {"camera": config.camera, "mean_views": config.mean_views, "mean_fit": config.mean_fit.to_dict(), "seed": seed,
              "dataset": {k: data.meta.get(k) for k in ("generator", "seed", "profile", "num_images")}}
    if split != "train":
        recipe["split"] = split
    signature = json.dumps(read_json_roundtrip(recipe), sort_keys=True)

    def load():
        try:
            with np.load(path) as z:
                if str(z["signature"]) == signature:
                    return torch.from_numpy(z["means"]).to(device)
        except (OSError, ValueError, KeyError):
            pass  # absent, damaged or from other settings: fit again
        return None

    means = load() if path.exists() else None
    if means is None and ctx.is_main:
        classes = data.class_ids
        views = torch.cat([torch.nonzero(classes == c).squeeze(1)[: config.mean_views] for c in range(data.num_classes)])
        batch = data.batch(views.tolist())
        cams = batch_cameras(batch, config.camera).to(device)
        t0 = time.perf_counter()
        if progress:
            print(f"species mean shapes: {data.num_classes} classes x {config.mean_views} views ...", flush=True)
        means, iou = fit_species_means(make_uv_sphere().to(device), batch["mask"].to(device), cams, batch["class_id"],
                                       data.num_classes, config.mean_fit, generator=torch.Generator().manual_seed(seed))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_savez(path, means=means.cpu().numpy().astype(np.float32), views=views.numpy().astype(np.int64),
                     iou=iou.cpu().numpy().astype(np.float32), signature=np.asarray(signature))
        if progress:
            print(f"species mean shapes: silhouette IoU {float(iou.mean()):.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    ctx.barrier()
    return means if means is not None else load()


def fit_species_means(
    template: TemplateMesh,
    masks: torch.Tensor,
    cameras: WeakPerspectiveCamera,
    class_id: torch.Tensor,
    num_classes: int,
    config: SilhouetteFitConfig,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One deformation map per class fitted to the silhouettes of all its images at once.

    ``masks (B, 1, H, W)``, ``B`` cameras, ``class_id (B,)`` in ``[0, num_classes)``. Returns the maps
    ``(num_classes, 3, Hd, Wd)`` (zeros, the sphere, for a class without images) and the per-image
    silhouette IoU ``(B,)`` of its class's mean shape.
    """
    class_id = class_id.to(masks.device).long()
    present = torch.unique(class_id)
    slot = torch.full((num_classes,), -1, dtype=torch.long, device=masks.device)
    slot[present] = torch.arange(len(present), device=masks.device)
    fitted = fit_deformation(template, masks, cameras, view_to_mesh=slot[class_id], config=config, generator=generator)
    means = torch.zeros(num_classes, 3, config.deform_size, config.deform_size, device=masks.device)
    means[present] = fitted.deformation
    return means, fitted.iou
