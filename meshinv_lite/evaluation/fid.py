"""FID_k on the authors' multi-view protocol: renders at canonical views, features, Frechet distances (or the labelled fallback)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..metrics import feature_statistics, frechet_distance, frechet_distance_features
from ..render.camera import WeakPerspectiveCamera
from ..render.dibr import render_mesh
from ..render.mesh import TemplateMesh, deform_vertices
from ..render.views import normalize_for_protocol, protocol_azimuths, protocol_cameras

WHITE = (1.0, 1.0, 1.0)


@torch.no_grad()
def render_protocol_views(template: TemplateMesh, vertices: torch.Tensor, textures: torch.Tensor,
                          azimuths: Sequence[float], render_config) -> torch.Tensor:
    """Renders ``(B, K, 3, H, W)`` on white of meshes re-centred, scaled and in the canonical pose."""
    verts = normalize_for_protocol(vertices)
    cams = protocol_cameras(azimuths, device=vertices.device)
    k = len(cams)
    bg = torch.tensor(WHITE, device=vertices.device)
    out = []
    for i in range(verts.shape[0]):
        img = render_mesh(template, verts[i:i + 1].expand(k, -1, -1), cams, textures[i:i + 1].expand(k, -1, -1, -1),
                          render_config, background=bg, soft=False).image
        out.append(img)
    return torch.stack(out)


@torch.no_grad()
def extract_features(extractor, images: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """``(N, D)`` float64 features of images ``(N, 3, H, W)`` in [0, 1] (vectors, or feature maps mean-pooled)."""
    device = next(extractor.parameters()).device
    feats = []
    for s in range(0, images.shape[0], batch_size):
        f = extractor(images[s:s + batch_size].to(device))
        feats.append((f.mean((2, 3)) if f.dim() == 4 else f).double().cpu())
    return torch.cat(feats).numpy()


def fid_key(k: int, is_fallback: bool) -> str:
    """``fid_k`` with Inception-v3, ``fd_fallback_k`` otherwise (a fallback figure is never called FID)."""
    return f"{'fd_fallback' if is_fallback else 'fid'}_{k}"


def reference_images(dataset_root, splits: Sequence[str], size: int, background=WHITE) -> torch.Tensor:
    """All images of ``splits`` (those that exist) masked onto ``background`` at ``size`` px."""
    import torch.nn.functional as F

    from ..data.dataset import ReconstructionDataset

    imgs = []
    for split in splits:
        if not (Path(dataset_root) / split / "meta.json").exists():
            continue
        ds = ReconstructionDataset(dataset_root, split, load_gt=False)
        b = ds.batch(range(len(ds)))
        im, m = b["image"], b["mask"]
        if im.shape[-1] != size:
            im = F.interpolate(im, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            m = (F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False) > 0.5).float()
        bg = torch.tensor(background).view(1, 3, 1, 1) if background is not None else 0
        imgs.append(im * m + bg * (1 - m))
    if not imgs:
        raise FileNotFoundError(f"none of the reference splits {list(splits)} exists under {dataset_root}")
    return torch.cat(imgs)


@torch.no_grad()
def fid_figures(template: TemplateMesh, recs: dict, inputs: torch.Tensor, input_masks: torch.Tensor,
                reference: torch.Tensor | None, render_config, extractor, views: Sequence[int] = (1, 10, 12),
                batch_size: int = 16, reference_stats: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """FID_k (or the labelled fallback) of saved reconstructions (see :func:`load_reconstructions`).

    ``inputs``/``input_masks``: the input images at the render size (FID_1's real set, masked on black);
    ``reference``: real images masked on white (FID_10/12's real set). ``reference_stats``: precomputed Inception
    statistics ``(mu (2048,), sigma (2048, 2048))`` of the real set instead (MeshInversion's
    ``precomputed_fid_299x299_testval.npz``); used only when ``extractor`` is Inception-v3 (they mean nothing to a
    fallback network, which then uses ``reference``). Returns the figures under :func:`fid_key` names plus
    ``fd_feature_extractor``, ``fd_is_fallback``, ``fd_reference`` and the set sizes (no other key starts with ``fid``).
    """
    device = next(extractor.parameters()).device
    template = template.to(device)
    fb = bool(extractor.is_fallback)
    out = {"fd_feature_extractor": extractor.name, "fd_is_fallback": fb}
    n = recs["texture"].shape[0]
    multi = [k for k in views if k != 1]
    azimuths = protocol_azimuths(12) if multi else ()
    feats_1, feats_views = [], []
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        tex = recs["texture"][sl].to(device)
        verts = deform_vertices(template, recs["deformation"][sl].to(device))
        if 1 in views:
            cam = WeakPerspectiveCamera.from_tensor(recs["camera"][sl].to(device))
            r = render_mesh(template, verts, cam, tex, render_config, soft=False)
            feats_1.append(extract_features(extractor, r.image * r.mask))
        if multi:
            imgs = render_protocol_views(template, verts, tex, azimuths, render_config)  # (b, 12, 3, H, W)
            f = extract_features(extractor, imgs.flatten(0, 1))
            feats_views.append(f.reshape(imgs.shape[0], len(azimuths), -1))
    if 1 in views:
        real_1 = extract_features(extractor, inputs * input_masks)
        out[fid_key(1, fb)] = frechet_distance_features(np.concatenate(feats_1), real_1)
        out["fd_1_num_images"] = n
    if multi:
        fv = np.concatenate(feats_views)  # (N, 12, D)
        use_stats = reference_stats is not None and not fb
        if use_stats:
            out["fd_reference"] = "precomputed statistics"
        else:
            if reference is None:
                raise ValueError("FID_10/12 need reference images (or, with Inception-v3, precomputed statistics)")
            ref = extract_features(extractor, reference)
            out["fd_reference"] = "images"
            out["fd_reference_images"] = int(reference.shape[0])
        for k in multi:
            keep = [azimuths.index(a) for a in protocol_azimuths(k)]
            renders = fv[:, keep].reshape(-1, fv.shape[-1])
            out[fid_key(k, fb)] = (frechet_distance(*feature_statistics(renders), *reference_stats) if use_stats
                                   else frechet_distance_features(renders, ref))
            out[f"fd_{k}_num_renders"] = n * len(keep)
    return out


def _resize(images: torch.Tensor, masks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch.nn.functional as F

    if images.shape[-1] == size:
        return images, masks
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    masks = (F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False) > 0.5).to(images.dtype)
    return images, masks
