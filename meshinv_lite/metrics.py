"""Evaluation measures: mask IoU, Frechet distance between feature sets, and their statistics.

Everything here is plain math on tensors; which feature extractor produced the features is recorded
by the caller (a fallback extractor's distance is *not* FID and must be labelled as such).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from ._checks import check_shape


def mask_iou(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """IoU ``(B,)`` of masks ``(B, 1, H, W)`` binarized at ``threshold``; 1 when both are empty."""
    check_shape("pred", pred, (None, 1, None, None), "(B, 1, H, W)")
    if pred.shape != target.shape:
        raise ValueError(f"mask shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}")
    p, t = pred > threshold, target > threshold
    inter = (p & t).flatten(1).sum(1).double()
    union = (p | t).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).float()


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (float64) of features ``(N, D)``, N >= 2."""
    f = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features of shape (N >= 2, D), got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``.

    The formula FID uses (Heusel et al.); with Inception-v3 pool features it *is* FID.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape} vs {mu2.shape}, {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular product: regularize (as pytorch-fid does)
        offset = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_distance_of(features_a, features_b) -> float:
    """Frechet distance between two feature sets ``(N, D)`` and ``(M, D)``."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))
