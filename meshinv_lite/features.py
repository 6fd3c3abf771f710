"""Frozen feature extractors, and where their weights come from.

One extractor today, built for the feature-level Chamfer texture loss (DESIGN.md section 4):

* ``"vgg19"``: VGG-19 up to ``relu3_1`` (torchvision's layer layout, built here in plain torch so
  torchvision is not a dependency). Weights: an explicit file, else torchvision's hub cache file
  ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``
  (download it once from https://download.pytorch.org/models/vgg19-dcbb9e9d.pth). Without either, an
  **offline fallback** runs and says so in ``.name`` / ``.is_fallback`` (see :func:`fallback_vgg19`).

Every extractor is a :class:`FeatureExtractor`: images ``(B, 3, H, W)`` in ``[0, 1]`` in, features out,
frozen (no parameter gradients; gradients do flow to the input), with a ``name`` that every result
derived from it must record. More kinds (the Inception-v3 of FID, :mod:`meshinv_lite.inception`) register in :data:`EXTRACTORS`;
:func:`load_feature_extractor` caches what it builds per (kind, weight file, device).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import check_finite, check_shape

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


def _resolve_vgg19(weights: Optional[str | os.PathLike], allow_fallback: bool) -> Optional[Path]:
    """The VGG-19 weight file to load, or ``None`` for the offline fallback (with a warning)."""
    return resolve_weights(weights, vgg19_hub_path(), "VGG-19", VGG19_URL, allow_fallback,
                           "using the OFFLINE FALLBACK (fixed random VGG-shaped network, not perceptual)")


def _build_vgg19(source: Optional[Path]) -> FeatureExtractor:
    if source is None:
        return fallback_vgg19(reason=f"no pretrained weights found at {vgg19_hub_path()}")
    return vgg19_relu3_1(source)


@dataclass(frozen=True)
class ExtractorKind:
    """How to get one kind of extractor: ``resolve(weights, allow_fallback)`` finds the weight file
    (``None``: the labelled fallback; raises when there is none and no fallback is allowed), and
    ``build(source)`` constructs the frozen network on the CPU."""

    resolve: Callable[[Optional[str | os.PathLike], bool], Optional[Path]]
    build: Callable[[Optional[Path]], FeatureExtractor]


#: Extractor kinds by name.
EXTRACTORS: dict[str, ExtractorKind] = {
    "vgg19": ExtractorKind(_resolve_vgg19, _build_vgg19),
    # "inception_v3_fid" (FID's Inception-v3, pytorch-fid weights) is registered by meshinv_lite.inception
    # (imported by the package's __init__; the registry only ever points down, never to a module above it),
    # with the same rules: explicit file, else the hub cache, else a labelled fallback whose scores are NOT FID.
    # "auto" (inversion's default: VGG-19 when its weights are on disk, else the shipped in-domain network),
    # "synthbirds_features" and "synthbirds_eval" are registered by meshinv_lite.domain_features.
}

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
