"""What every feature extractor is: a frozen network, images ``(B, 3, H, W)`` in [0, 1] in, features out, with a name."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_finite, check_shape


def check_feature_images(images: torch.Tensor) -> None:
    """What every stride-4 extractor takes: float images ``(B, 3, H, W)`` of at least 4 x 4 pixels."""
    check_shape("images", images, (None, 3, None, None), "(B, 3, H, W) in [0, 1]")
    if images.shape[2] < 4 or images.shape[3] < 4:
        raise ValueError(f"images must be at least 4 x 4 pixels, got {tuple(images.shape[2:])}")
    if not images.is_floating_point():
        raise TypeError(f"images are a {images.dtype} tensor; pass floats in [0, 1] (e.g. images.float() / 255)")


class FeatureExtractor(nn.Module):
    """A frozen feature network with a label.

    Attributes:
        name: what ran, e.g. ``"vgg19-relu3_1 (torchvision weights: /path)"`` or ``"OFFLINE FALLBACK: ..."``.
        is_fallback: ``True`` when the features are not the ones the method specifies.
        out_channels: ``C`` of the output.
        stride: spatial down-sampling factor (output ``H // stride``, ``W // stride``).
    """

    def __init__(self, name: str, is_fallback: bool, out_channels: int, stride: int):
        super().__init__()
        self.name = name
        self.is_fallback = is_fallback
        self.out_channels = out_channels
        self.stride = stride

    def freeze(self) -> "FeatureExtractor":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "FeatureExtractor":  # frozen: always in eval mode
        return super().train(False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, is_fallback={self.is_fallback})"


def resolve_weights(weights: Optional[str | os.PathLike], cached: Path, what: str, url: str, allow_fallback: bool,
                    fallback_note: str) -> Optional[Path]:
    """The weight file to load: an explicit ``weights`` path (must exist), else ``cached`` (the hub cache),
    else ``None`` for a fallback (with a warning ending in ``fallback_note``) if ``allow_fallback``."""
    if weights is not None:  # an explicit file must exist: the caller asked for it
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{what} weight file {path} does not exist (download {url})")
        return path
    if cached.is_file():
        return cached
    msg = (f"no {what} weights: {cached} does not exist. Download {url} and put it there "
           "(or set TORCH_HOME, or pass weights=<path>)")
    if not allow_fallback:
        raise FileNotFoundError(msg)
    warnings.warn(f"{msg}; {fallback_note}", stacklevel=5)
    return None


@dataclass(frozen=True)
class ExtractorKind:
    """How to get one kind of extractor: ``resolve(weights, allow_fallback)`` finds the weight file
    (``None``: the labelled fallback; raises when there is none and no fallback is allowed), and
    ``build(source)`` constructs the frozen network on the CPU."""

    resolve: Callable[[Optional[str | os.PathLike], bool], Optional[Path]]
    build: Callable[[Optional[Path]], FeatureExtractor]


def masked_features(extractor: FeatureExtractor, images: torch.Tensor, masks: torch.Tensor,
                    threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of masked images and the mask at feature resolution.

    Args:
        images: ``(B, 3, H, W)`` in ``[0, 1]``; masks ``(B, 1, H, W)`` in ``[0, 1]``.
    Returns:
        features ``(B, C, h, w)`` of ``images * masks``, and ``(B, 1, h, w)`` binary masks: the mask
        average-pooled by ``extractor.stride`` (4 for VGG-19 relu3_1) and thresholded at ``threshold`` (as in the authors' code).
    """
    check_shape("images", images, (None, 3, None, None), "(B, 3, H, W) in [0, 1]")
    check_shape("masks", masks, (images.shape[0], 1) + tuple(images.shape[2:]), "(B, 1, H, W) matching the images")
    check_finite("images", images)
    feats = extractor(images * masks)
    s = extractor.stride  # VGG's max-pools floor odd sizes; so does avg_pool2d, then crop to be safe
    small = F.avg_pool2d(masks.to(feats.dtype), s, s)[..., : feats.shape[-2], : feats.shape[-1]]
    return feats, (small > threshold).to(feats.dtype)
