"""Frozen feature extractors, and where their weights come from.

One extractor today, built for the feature-level Chamfer texture loss (DESIGN.md section 4):

* ``"vgg19"``: VGG-19 up to ``relu3_1`` (torchvision's layer layout, built here in plain torch so
  torchvision is not a dependency). Weights: an explicit file, else torchvision's hub cache file
  ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``
  (download it once from https://download.pytorch.org/models/vgg19-dcbb9e9d.pth). Without either, an
  **offline fallback** runs and says so in ``.name`` / ``.is_fallback`` (see :func:`fallback_vgg19`).

Every extractor is a :class:`FeatureExtractor`: images ``(B, 3, H, W)`` in ``[0, 1]`` in, features out,
frozen (no parameter gradients; gradients do flow to the input), with a ``name`` that every result
derived from it must record. More kinds (the Inception-v3 of FID, :mod:`meshinv_lite.features.inception`) register in :data:`EXTRACTORS`;
:func:`load_feature_extractor` caches what it builds per (kind, weight file, device).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ExtractorKind, FeatureExtractor, check_feature_images, resolve_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


VGG19_FILENAME = "vgg19-dcbb9e9d.pth"


VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILENAME


#: torchvision ``vgg19().features`` indices of the 16 convolutions, and of the classifier's linears.
VGG19_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


VGG19_CLASSIFIER_INDICES = (0, 3, 6)


#: The layers up to ``relu3_1``: (``features`` index, in channels, out channels); max-pools after 2 and 7.
VGG19_RELU3_1_CONVS = ((0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256))


FALLBACK_SEED = 0


class VGG19Relu31(FeatureExtractor):
    """VGG-19 ``features[0:12]`` (conv1_1 ... relu3_1) in torchvision's state-dict layout.

    ``forward(images (B, 3, H, W) in [0, 1]) -> (B, 256, H // 4, W // 4)``, unit L2 norm over channels at
    every location (zero vectors stay zero). ImageNet normalization happens inside. Load weights with
    :meth:`load_torchvision_state_dict` or build one with :func:`load_feature_extractor`.
    """

    def __init__(self, name: str = "vgg19-relu3_1 (uninitialized)", is_fallback: bool = False):
        super().__init__(name, is_fallback, out_channels=256, stride=4)
        layers: dict[str, nn.Module] = {}
        for idx, cin, cout in VGG19_RELU3_1_CONVS:
            layers[str(idx)] = nn.Conv2d(cin, cout, 3, padding=1)
            layers[str(idx + 1)] = nn.ReLU()
        layers["4"] = nn.MaxPool2d(2, 2)
        layers["9"] = nn.MaxPool2d(2, 2)
        self.features = nn.Sequential(*(layers[str(i)] for i in range(12)))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_feature_images(images)
        x = (images.to(self.mean.dtype) - self.mean) / self.std
        f = self.features(x)
        return F.normalize(f, dim=1, eps=1e-10)

    def load_torchvision_state_dict(self, state: dict, source: str) -> None:
        """Load the relu3_1 layers from a torchvision VGG-19 state dict, strictly.

        Raises ``ValueError`` naming ``source`` when a needed key is missing, a shape differs, or the
        dict holds keys that torchvision's VGG-19 does not have (another network, e.g. ``vgg19_bn``).
        """
        if not isinstance(state, dict):
            raise ValueError(f"{source}: expected a state dict (mapping of names to tensors), got {type(state).__name__}")
        allowed = {f"features.{i}.{p}" for i in VGG19_CONV_INDICES for p in ("weight", "bias")}
        allowed |= {f"classifier.{i}.{p}" for i in VGG19_CLASSIFIER_INDICES for p in ("weight", "bias")}
        own = self.features.state_dict()
        needed = {f"features.{k}": v for k, v in own.items()}
        missing = sorted(k for k in needed if k not in state)
        unexpected = sorted(k for k in state if k not in allowed)
        if missing or unexpected:
            raise ValueError(
                f"{source} is not a torchvision VGG-19 state dict: missing keys {missing[:8]}"
                f"{' ...' if len(missing) > 8 else ''}, unexpected keys {unexpected[:8]}"
                f"{' ...' if len(unexpected) > 8 else ''}. Expected the file {VGG19_URL}"
            )
        bad = []
        for k, v in needed.items():
            t = state[k]
            if not isinstance(t, torch.Tensor) or t.shape != v.shape:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                bad.append(f"{k}: expected {tuple(v.shape)}, got {got}")
            elif not torch.isfinite(t).all():
                bad.append(f"{k}: contains NaN or infinite values")
        if bad:
            raise ValueError(f"{source} has mismatched VGG-19 weights: " + "; ".join(bad))
        self.features.load_state_dict({k[len("features."):]: state[k].float() for k in needed}, strict=True)


def vgg19_hub_path() -> Path:
    """Where torchvision caches VGG-19: ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def _read_state_dict(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or not a torch file
        raise ValueError(
            f"cannot read VGG-19 weights from {path} ({type(e).__name__}: {e}); the file is corrupt or not a "
            f"PyTorch state dict: delete it and download {VGG19_URL} again"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def vgg19_relu3_1(weights: str | os.PathLike) -> VGG19Relu31:
    """Pretrained VGG-19 up to relu3_1 from a torchvision weight file (strict; see :meth:`VGG19Relu31.load_torchvision_state_dict`)."""
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"VGG-19 weight file {path} does not exist (download {VGG19_URL})")
    net = VGG19Relu31(name=f"vgg19-relu3_1 (torchvision weights: {path})", is_fallback=False)
    net.load_torchvision_state_dict(_read_state_dict(path), source=str(path))
    return net.freeze()


def fallback_vgg19(seed: int = FALLBACK_SEED, reason: str = "") -> VGG19Relu31:
    """OFFLINE FALLBACK: the VGG-19 relu3_1 architecture with fixed random weights.

    Weights are drawn from He-normal (fan-in) with zero biases from a ``torch.Generator`` seeded with
    ``seed``, so the network is the same in every run (with the same torch version) and features are
    comparable across runs. Output shape, normalization and cost match the real extractor.

    Limits: random convolutional features respond to local colour and edge structure (which keeps a
    feature-level Chamfer loss meaningful as a local-appearance term, cf. texture synthesis with random
    shallow CNNs, Ustyuzhaninov et al. 2016), but carry no learned semantics: losses and scores computed
    with them are not comparable to anything computed with ImageNet VGG-19, and ablations "with
    perceptual features" run on them are not the paper's: figures made with the fallback are not
    comparable to the paper's. Every result must carry this extractor's
    ``name``.
    """
    why = f"; {reason}" if reason else ""
    net = VGG19Relu31(
        name=f"OFFLINE FALLBACK: vgg19-relu3_1 architecture with fixed random weights (seed {seed}), "
             f"not ImageNet features{why}",
        is_fallback=True,
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.features:
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                m.bias.zero_()
    return net.freeze()


def _resolve_vgg19(weights: Optional[str | os.PathLike], allow_fallback: bool) -> Optional[Path]:
    """The VGG-19 weight file to load, or ``None`` for the offline fallback (with a warning)."""
    return resolve_weights(weights, vgg19_hub_path(), "VGG-19", VGG19_URL, allow_fallback,
                           "using the OFFLINE FALLBACK (fixed random VGG-shaped network, not perceptual)")


def _build_vgg19(source: Optional[Path]) -> FeatureExtractor:
    if source is None:
        return fallback_vgg19(reason=f"no pretrained weights found at {vgg19_hub_path()}")
    return vgg19_relu3_1(source)


#: The kind this module adds to :data:`meshinv_lite.features.registry.EXTRACTORS`.
KINDS: dict[str, ExtractorKind] = {"vgg19": ExtractorKind(_resolve_vgg19, _build_vgg19)}
