"""Feature extractors by name, built once per (kind, weight file, device): the one place that knows every kind."""
from __future__ import annotations

import os
from typing import Optional

import torch

from . import in_domain, inception, vgg
from .base import ExtractorKind, FeatureExtractor

#: Extractor kinds by name: each module of this package that defines a kind lists it in its ``KINDS``.
#: "vgg19" (the paper's loss network), "inception_v3_fid" (FID's network, pytorch-fid weights; else a labelled
#: fallback whose scores are NOT FID), "synthbirds_features" / "synthbirds_eval" (the shipped in-domain networks:
#: one for the loss, one for metrics) and "auto" (inversion's default: VGG-19 when its weights are on disk, else
#: the shipped in-domain loss network).
EXTRACTORS: dict[str, ExtractorKind] = {**vgg.KINDS, **inception.KINDS, **in_domain.KINDS}

_CACHE: dict[tuple, FeatureExtractor] = {}


def clear_extractor_cache() -> None:
    """Forget the extractors :func:`load_feature_extractor` has built (e.g. after replacing a weight file)."""
    _CACHE.clear()


def load_feature_extractor(
    kind: str = "vgg19",
    weights: Optional[str | os.PathLike] = None,
    device: str | torch.device = "cpu",
    allow_fallback: bool = True,
) -> FeatureExtractor:
    """A frozen extractor of ``kind`` on ``device``, cached.

    ``weights``: a weight file (must exist and match exactly); ``None`` looks in torch's hub cache
    (:func:`vgg19_hub_path`) and, when absent, returns the labelled OFFLINE FALLBACK (with a warning) if
    ``allow_fallback``, else raises ``FileNotFoundError`` saying where to put the file. A corrupt or
    mismatched file always raises ``ValueError`` naming it (never a partial load).

    Repeated calls with the same kind, resolved weight file (path, size, modification time) and device
    return the same module: treat it as read-only (do not ``.to()`` it elsewhere; ask for the device).
    """
    try:
        spec = EXTRACTORS[kind]
    except KeyError:
        raise ValueError(f"unknown feature extractor {kind!r}; choose one of {sorted(EXTRACTORS)}") from None
    source = spec.resolve(weights, allow_fallback)
    if source is None:
        ident: tuple = ("fallback",)
    else:
        st = source.stat()
        ident = (str(source.resolve()), st.st_size, st.st_mtime_ns)
    key = (kind, ident, str(torch.device(device)))
    if key not in _CACHE:
        _CACHE[key] = spec.build(source).to(device)
    return _CACHE[key]


def load_fid_extractor(weights: Optional[str | os.PathLike] = None, device: str | torch.device = "cpu",
                       allow_fallback: bool = True) -> FeatureExtractor:
    """Inception-v3 for FID (``weights`` file, else the hub cache), else the labelled fallback.

    ``forward`` gives ``(B, D)`` vectors; ``is_fallback`` says whether they are Inception's (``D = 2048``).
    A present file that cannot be loaded raises ``ValueError``; ``allow_fallback=False`` raises
    ``FileNotFoundError`` instead of falling back. Cached like :func:`~meshinv_lite.features.load_feature_extractor`.
    """
    return load_feature_extractor(inception.KIND, weights=weights, device=device, allow_fallback=allow_fallback)
