"""How good is a generator before any inversion: sample statistics against the data, and shape plausibility."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..config import RenderConfig
from ..render.camera import WeakPerspectiveCamera
from ..render.dibr import render_mesh
from ..render.mesh import TemplateMesh, deform_vertices, face_adjacency, make_uv_sphere
from .inputs import TrainingData
from .networks import Generator


@torch.no_grad()
def sample_quality(
    generator: Generator,
    data: TrainingData,
    render_config: RenderConfig,
    extractor=None,
    num_samples: int = 64,
    seed: int = 0,
    template: Optional[TemplateMesh] = None,
    batch_size: int = 16,
) -> dict:
    """How close generated birds look to the data, rendered through the data's cameras.

    Samples ``num_samples`` latents (classes drawn like the data's), renders them at real cameras on a
    black background, and compares with as many real masked images:

    * ``feature_frechet_distance``: Frechet distance between mean-pooled features of the two sets,
      computed with ``extractor`` (default: :func:`meshinv_lite.features.load_feature_extractor`),
      whose name is returned as ``feature_extractor``; with the offline fallback it is *not* FID;
    * ``mask_area_samples`` / ``mask_area_data``: mean silhouette area (fraction of the image), and
      ``mask_area_gap`` their absolute difference.
    """
    from ..features.registry import load_feature_extractor
    from ..metrics import frechet_distance_of

    device = next(generator.parameters()).device
    extractor = extractor or load_feature_extractor(device=device)
    template = (template or make_uv_sphere()).to(device)
    g = torch.Generator().manual_seed(seed)
    n = num_samples
    cams = data.cameras[torch.randint(0, data.cameras.shape[0], (n,), generator=g)]
    classes = data.class_id[torch.randint(0, data.class_id.shape[0], (n,), generator=g)]
    z = torch.randn(n, generator.config.latent_dim, generator=g)
    real_idx = torch.randint(0, data.images.shape[0], (n,), generator=g)
    was_training = generator.training
    generator.eval()
    feats_f, feats_r, area_f, area_r = [], [], [], []
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        tex, deform = generator(z[sl].to(device), classes[sl].to(device))
        verts = deform_vertices(template, deform)
        out = render_mesh(template, verts, WeakPerspectiveCamera.from_tensor(cams[sl].to(device)), tex, render_config, soft=False)
        img_r = data.images[real_idx[sl]].to(device).float() / 255
        mask_r = data.masks[real_idx[sl]].to(device).float() / 255
        feats_f.append(extractor(out.image).mean((2, 3)).cpu())
        feats_r.append(extractor(img_r * mask_r).mean((2, 3)).cpu())
        area_f.append(out.mask.mean((1, 2, 3)).cpu())
        area_r.append(mask_r.mean((1, 2, 3)).cpu())
    generator.train(was_training)
    a_f, a_r = torch.cat(area_f), torch.cat(area_r)
    return {
        "feature_frechet_distance": frechet_distance_of(torch.cat(feats_f), torch.cat(feats_r)),
        "feature_extractor": extractor.name,
        "feature_extractor_is_fallback": bool(extractor.is_fallback),
        "mask_area_samples": float(a_f.mean()),
        "mask_area_data": float(a_r.mean()),
        "mask_area_gap": float((a_f.mean() - a_r.mean()).abs()),
        "num_samples": n,
    }


@torch.no_grad()
def shape_plausibility(generator: Generator, dataset_root: str | Path, split: str = "train", per_class: int = 16,
                       max_reference: int = 600, seed: int = 0, points: int = 256) -> dict:
    """How close generated shapes are to *true* SynthBirds shapes of their class, and how much they fold.

    ``per_class`` samples per class; each is compared (3D Chamfer on ``points`` subsampled vertices) with
    the ground-truth shapes of its class among the first ``max_reference`` images of ``split``:
    ``sample_to_data`` is the mean distance from a sample to its nearest true shape (are samples real
    birds?), ``data_to_sample`` the mean distance from a true shape to its nearest sample (are all kinds
    of birds covered?). ``folded_samples`` / ``folded_data``: :func:`folded_fraction` of both sets.
    """
    from ..data.dataset import ReconstructionDataset
    from ..metrics import chamfer_3d, folded_fraction
    from ..render.mesh import deform_vertices, make_uv_sphere

    device = next(generator.parameters()).device
    data = ReconstructionDataset(dataset_root, split, load_gt=True, limit=max_reference)
    template = make_uv_sphere().to(device)
    pairs = face_adjacency(template.faces)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(template.num_vertices, generator=g)[:points].to(device)
    gt_cls = data.class_ids.to(device)
    gt_verts = deform_vertices(template, torch.from_numpy(data.annotation("deform_map")).float().to(device))
    was_training = generator.training
    generator.eval()
    s2d, d2s, folds = [], [], []
    for c in range(generator.config.num_classes):
        ref = gt_verts[gt_cls == c]
        if not len(ref):
            continue
        z = torch.randn(per_class, generator.config.latent_dim, generator=g).to(device)
        _, deform = generator(z, torch.full((per_class,), c, device=device, dtype=torch.long))
        v = deform_vertices(template, deform)
        folds.append(folded_fraction(v, template.faces, pairs))
        a, b = v[:, pick], ref[:, pick]
        d = torch.stack([chamfer_3d(a, b[j:j + 1].expand(len(a), -1, -1)) for j in range(len(b))], 1)  # (S, R)
        s2d.append(d.min(1).values)
        d2s.append(d.min(0).values)
    generator.train(was_training)
    return {"sample_to_data": float(torch.cat(s2d).mean()), "data_to_sample": float(torch.cat(d2s).mean()),
            "folded_samples": float(torch.cat(folds).mean()),
            "folded_data": float(folded_fraction(gt_verts, template.faces, pairs).mean()),
            "samples_per_class": per_class, "reference_shapes": len(gt_verts)}
