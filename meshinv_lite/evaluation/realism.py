"""Realism and detail of rendered views, measured with the in-domain *evaluation* network.

PSNR and SSIM against the true novel view reward a blurred guess; the paper's claim is about realism (FID).
Without Inception weights, these figures use the SynthBirds-trained evaluation network
(:data:`meshinv_lite.features.METRIC_NET`), which no loss ever sees:

* :func:`fd_in_domain` - Frechet distance between two sets of views ("FD in-domain", never "FID"): each
  view is summarised by the mean and standard deviation of its unit features over the bird's cells;
* :func:`perceptual_distance` - per image, ``1 - cos`` between the evaluation features of a view and of
  the true view at the same place, averaged over the cells either bird covers;
* :func:`sharpness` / :func:`sharpness_ratio` - high-frequency energy (mean squared Laplacian inside the
  eroded silhouette) of a view, and its ratio to the true view's (1: as detailed as the truth; < 1 blurrier).

Every function takes images ``(B, 3, H, W)`` in ``[0, 1]`` and masks ``(B, 1, H, W)`` in ``[0, 1]``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_image_and_mask
from ..metrics import frechet_distance_features

#: Label of every figure computed here.
FD_LABEL = "FD in-domain"


def _cells(net, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    feats = net(images)
    cover = F.adaptive_avg_pool2d(masks.to(feats.dtype), feats.shape[-2:])
    return feats, cover


@torch.no_grad()
def view_embeddings(net, images: torch.Tensor, masks: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """``(B, 2C)``: per view, the mean and standard deviation of the features over the bird's cells
    (weighted by cell coverage). Images are used as given (on black or white)."""
    check_image_and_mask("images", images, masks)
    out = []
    for s in range(0, images.shape[0], batch_size):
        f, w = _cells(net, images[s:s + batch_size], masks[s:s + batch_size])
        w = w / w.sum((2, 3), keepdim=True).clamp_min(1e-6)
        mean = (f * w).sum((2, 3))
        std = ((f - mean[..., None, None]).square() * w).sum((2, 3)).clamp_min(0).sqrt()
        out.append(torch.cat([mean, std], 1).cpu().double().numpy())
    return np.concatenate(out)


def fd_in_domain(net, images_a: torch.Tensor, masks_a: torch.Tensor, images_b: torch.Tensor,
                 masks_b: torch.Tensor) -> float:
    """Frechet distance between the view embeddings of two sets (:func:`view_embeddings`); lower is closer."""
    return frechet_distance_features(view_embeddings(net, images_a, masks_a), view_embeddings(net, images_b, masks_b))


@torch.no_grad()
def perceptual_distance(net, pred: torch.Tensor, pred_mask: torch.Tensor, true: torch.Tensor,
                        true_mask: torch.Tensor) -> torch.Tensor:
    """``(B,)`` in ``[0, 2]``: mean ``1 - cos`` of evaluation features at the same cell, over cells either
    silhouette covers (0: the same features everywhere)."""
    check_image_and_mask("pred", pred, pred_mask)
    check_image_and_mask("true", true, true_mask)
    fp, cp = _cells(net, pred, pred_mask)
    ft, ct = _cells(net, true, true_mask)
    w = torch.maximum(cp, ct)
    d = 1 - (fp * ft).sum(1, keepdim=True)
    return (d * w).sum((1, 2, 3)) / w.sum((1, 2, 3)).clamp_min(1e-6)


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


@torch.no_grad()
def sharpness(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(B,)``: mean squared Laplacian of the grey image inside the silhouette eroded by 2 px (the outline
    itself is not texture detail)."""
    check_image_and_mask("images", images, masks)
    grey = images.mean(1, keepdim=True)
    lap = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), _LAPLACIAN.to(grey)[None, None])
    inner = -F.max_pool2d(-(masks > 0.5).to(grey), 5, 1, 2)  # erosion by 2 px
    return (lap.square() * inner).sum((1, 2, 3)) / inner.sum((1, 2, 3)).clamp_min(1.0)


def sharpness_ratio(pred: torch.Tensor, pred_mask: torch.Tensor, true: torch.Tensor, true_mask: torch.Tensor) -> torch.Tensor:
    """``(B,)``: :func:`sharpness` of ``pred`` over that of ``true`` (1: as much detail; < 1: blurrier)."""
    return sharpness(pred, pred_mask) / sharpness(true, true_mask).clamp_min(1e-8)


# --------------------------------------------------------------------------------------------------
# Reconstructions against ground truth in the template's topology (SynthBirds)
# --------------------------------------------------------------------------------------------------

#: Embedding rows of :func:`realism_per_image`: the input view, then the 12 protocol azimuths.
INPUT_VIEW = 0


@torch.no_grad()
def realism_per_image(net, template, verts: torch.Tensor, texture: torch.Tensor, camera, gt_verts: torch.Tensor,
                      gt_texture: torch.Tensor, gt_camera, render_config,
                      azimuths: tuple[float, ...] = tuple(range(30, 360, 30))) -> dict:
    """Perceptual distance, sharpness and view embeddings of reconstructions against the truth.

    Novel views: both meshes turned by each of ``azimuths`` and seen by their own cameras (as
    :func:`meshinv_lite.evaluation.ground_truth_metrics`), on black: ``perceptual`` and ``sharpness_ratio``
    ``(B, K)``. Embeddings for :func:`fd_from_embeddings`: ``embed_pred`` / ``embed_true`` ``(B, 13, 2C)``,
    row 0 the input view (reconstruction at its refined camera, truth at the exact one), rows 1-12 the
    paper's protocol views (re-centred, canonical pose, 30 degree steps, on white).
    """
    from ..render.dibr import render_mesh
    from ..render.views import normalize_for_protocol, protocol_azimuths, protocol_cameras, turn_cameras

    white = torch.ones(3, device=verts.device)
    per, sharp = [], []
    for az in azimuths:
        p = render_mesh(template, verts, turn_cameras(camera, az), texture, render_config, soft=False)
        t = render_mesh(template, gt_verts, turn_cameras(gt_camera, az), gt_texture, render_config, soft=False)
        per.append(perceptual_distance(net, p.image, p.mask, t.image, t.mask))
        sharp.append(sharpness_ratio(p.image, p.mask, t.image, t.mask))
    embeds = {}
    for key, v, tex, cam in (("embed_pred", verts, texture, camera), ("embed_true", gt_verts, gt_texture, gt_camera)):
        first = render_mesh(template, v, cam, tex, render_config, background=white, soft=False)
        rows = [view_embeddings(net, first.image, first.mask)]
        pv = normalize_for_protocol(v)
        for az in protocol_azimuths(12):
            pc = protocol_cameras([az] * v.shape[0], device=v.device)
            r = render_mesh(template, pv, pc, tex, render_config, background=white, soft=False)
            rows.append(view_embeddings(net, r.image, r.mask))
        embeds[key] = np.stack(rows, 1)
    return {"perceptual": torch.stack(per, 1), "sharpness_ratio": torch.stack(sharp, 1), **embeds,
            "azimuths": list(azimuths)}


def fd_from_embeddings(pred: np.ndarray, true: np.ndarray, views=(1, 10, 12)) -> dict:
    """``{"fd_in_domain_<k>": float}`` for each ``k`` of ``views`` from ``(N, 13, D)`` embeddings
    (:func:`realism_per_image`): k = 1 the input view; 10 and 12 the protocol views (10 drops the exact
    front and back, as FID_10 does). Needs at least 2 reconstructions."""
    from ..render.views import protocol_azimuths

    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[1] != 13:
        raise ValueError(f"embeddings must both be (N, 13, D); got {pred.shape} and {true.shape}")
    if pred.shape[0] < 2:
        raise ValueError("a Frechet distance needs at least 2 reconstructions")
    all12 = list(protocol_azimuths(12))
    out = {}
    for k in views:
        rows = [INPUT_VIEW] if k == 1 else [1 + all12.index(a) for a in protocol_azimuths(k)]
        a, b = pred[:, rows].reshape(-1, pred.shape[-1]), true[:, rows].reshape(-1, true.shape[-1])
        out[f"fd_in_domain_{k}"] = frechet_distance_features(a, b)
    return out
