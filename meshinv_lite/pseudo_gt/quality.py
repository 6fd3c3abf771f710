"""How good is the pseudo ground truth? Errors of fitted shapes and textures against SynthBirds' true maps."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .dataset import PseudoGTDataset


def evaluate_pseudo_gt(dataset_root, split: str = "test", camera: str = "noisy", limit: Optional[int] = None) -> dict:
    """Compare a finished pseudo-GT split with SynthBirds' ground truth.

    Returns means over the split of: ``iou`` (fitted silhouette vs mask), ``vertex_error`` (mean
    distance between fitted and true vertices, same topology, object frame of the camera used),
    ``chamfer_3d`` (symmetric mean nearest-vertex distance, shape only), ``texture_mae_visible``
    (mean absolute colour error on visible texels, in [0, 1]) and ``visible_fraction`` of texels.
    ``limit``: only the first ``limit`` images (the comparison holds all of them in memory at once).
    """
    from ..data.dataset import ReconstructionDataset

    pgt = PseudoGTDataset(dataset_root, split, camera)
    data = ReconstructionDataset(dataset_root, split, load_gt=True)
    if not data.has_gt:
        raise ValueError(f"{dataset_root}/{split} has no ground-truth maps (real data?): nothing to compare with")
    t = {k: v[:limit] for k, v in pgt.tensors().items()}
    idx = t["index"].numpy()
    gt_deform = torch.from_numpy(data.annotation("deform_map")[idx]).float()
    gt_tex = torch.from_numpy(data.annotation("texture_map")[idx]).float() / 255
    ious = torch.from_numpy(pgt.arrays["iou"][:limit])
    return {**pseudo_gt_errors(t["deformation"], t["texture"], t["visibility"], ious, gt_deform, gt_tex),
            "camera": camera}


def pseudo_gt_errors(deformation: torch.Tensor, texture: torch.Tensor, visibility: torch.Tensor, iou: torch.Tensor,
                     gt_deformation: torch.Tensor, gt_texture: torch.Tensor) -> dict:
    """Pseudo-GT maps against true ones (all ``(B, ...)``, textures in ``[0, 1]``): the figures of
    :func:`evaluate_pseudo_gt` (means over the batch), for pseudo-GT held in memory."""
    from ..render.mesh import deform_vertices, make_uv_sphere

    template = make_uv_sphere().to(deformation.device)
    v_fit = deform_vertices(template, deformation)
    v_gt = deform_vertices(template, gt_deformation.to(deformation))
    vertex_error = (v_fit - v_gt).norm(dim=-1).mean(1)
    d = torch.cdist(v_fit, v_gt)
    chamfer = 0.5 * (d.min(2).values.mean(1) + d.min(1).values.mean(1))
    gt_tex = gt_texture.to(texture)
    if gt_tex.shape[-2:] != texture.shape[-2:]:
        gt_tex = F.interpolate(gt_tex, size=texture.shape[-2:], mode="bilinear", align_corners=False)
    err = ((texture - gt_tex).abs() * visibility).sum((1, 2, 3)) / (3 * visibility.sum((1, 2, 3))).clamp_min(1)
    return {
        "iou": float(iou.float().mean()),
        "iou_min": float(iou.float().min()),
        "vertex_error": float(vertex_error.mean()),
        "chamfer_3d": float(chamfer.mean()),
        "texture_mae_visible": float(err.mean()),
        "visible_fraction": float(visibility.float().mean()),
        "num_images": len(deformation),
    }
