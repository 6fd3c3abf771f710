"""The Inception-v3 of FID, in plain torch, and the labelled fallback used when its weights are absent.

FID (Heusel et al. 2017) is the Frechet distance between Inception-v3 ``pool3`` activations (2048-d) of two
image sets. The network here is pytorch-fid's ``InceptionV3`` (``use_fid_inception=True``, output block 3):
torchvision's Inception-v3 layout with the TensorFlow graph's quirks (average pools that ignore the zero
padding, a max pool in the last block), so the weight file

    pt_inception-2015-12-05-6726825d.pth
    (https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth)

loads strictly and the features are the ones published FIDs use. Images ``(B, 3, H, W)`` in ``[0, 1]`` are
resized bilinearly to 299 x 299 and mapped to ``[-1, 1]`` inside, as pytorch-fid does.

Where the weights come from: an explicit file, else ``<torch.hub.get_dir()>/checkpoints/<that name>``
(where pytorch-fid's own download lands). A file that is present but cannot be read or does not match
the architecture is an error naming it, never a silent fallback. Without a file, :func:`load_fid_extractor`
returns a **labelled fallback**: mean-pooled features of the package's VGG extractor (itself the offline
fallback when VGG-19 weights are absent). Its Frechet distances are *not FID*: report them under another
name (``fd_fallback_k``) with the extractor's ``name``.

Importing this module (the package's ``__init__`` does) registers the kind ``"inception_v3_fid"`` in
:data:`meshinv_lite.features.EXTRACTORS` (fallback included), so ``load_feature_extractor("inception_v3_fid")``
works too; :mod:`meshinv_lite.features` itself never imports this module.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_shape
from .base import ExtractorKind, FeatureExtractor, resolve_weights
from .vgg import _build_vgg19, _resolve_vgg19

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"


INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILENAME


INCEPTION_SIZE = 299


FALLBACK_SIZE = 128  # the fallback looks at images at most this large (VGG at 299 px is slow on a CPU)


KIND = "inception_v3_fid"


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, cin: int, cout: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool(x: torch.Tensor) -> torch.Tensor:  # TensorFlow's: the zero padding is not averaged
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """``max_pool=False``: pytorch-fid's FIDInceptionE_1 (Mixed_7b); ``True``: FIDInceptionE_2 (Mixed_7c)."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pool)], 1)


class FIDInceptionV3(FeatureExtractor):
    """Inception-v3 up to ``pool3``: ``forward(images (B, 3, H, W) in [0, 1]) -> (B, 2048)``.

    Module names follow torchvision (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``,
    ..., ``fc.weight``) so pytorch-fid's weight file loads with :meth:`load_fid_state_dict`. ``fc`` (1008
    classes, TensorFlow's) is kept only so the file loads strictly; the features come before it.
    """

    def __init__(self, name: str = "inception-v3-fid (uninitialized)"):
        super().__init__(name, is_fallback=False, out_channels=2048, stride=0)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_shape("images", images, (None, 3, None, None), "(B, 3, H, W) in [0, 1]")
        x = F.interpolate(images, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean((2, 3))

    def load_fid_state_dict(self, state: dict, source: str) -> None:
        """Load pytorch-fid's weights strictly (``num_batches_tracked`` may be absent); ``ValueError``
        naming ``source`` for missing or unexpected keys, wrong shapes or non-finite values."""
        if not isinstance(state, dict):
            raise ValueError(f"{source}: expected a state dict (mapping of names to tensors), got {type(state).__name__}")
        own = self.state_dict()
        optional = {k for k in own if k.endswith("num_batches_tracked")}
        missing = sorted(k for k in own if k not in state and k not in optional)
        unexpected = sorted(k for k in state if k not in own)
        if missing or unexpected:
            raise ValueError(
                f"{source} is not pytorch-fid's Inception-v3 state dict: missing keys {missing[:8]}"
                f"{' ...' if len(missing) > 8 else ''} ({len(missing)}), unexpected keys {unexpected[:8]}"
                f"{' ...' if len(unexpected) > 8 else ''} ({len(unexpected)}). Expected the file {INCEPTION_URL}"
            )
        bad = []
        for k, v in own.items():
            if k not in state:
                continue
            t = state[k]
            if not isinstance(t, torch.Tensor) or t.shape != v.shape:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                bad.append(f"{k}: expected {tuple(v.shape)}, got {got}")
            elif t.is_floating_point() and not torch.isfinite(t).all():
                bad.append(f"{k}: contains NaN or infinite values")
        if bad:
            raise ValueError(f"{source} has mismatched Inception-v3 weights: " + "; ".join(bad[:8]))
        full = {k: (state[k].to(v.dtype) if k in state else v) for k, v in own.items()}
        self.load_state_dict(full, strict=True)


def inception_hub_path() -> Path:
    """``<torch.hub.get_dir()>/checkpoints/pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's download)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME


def fid_inception_v3(weights: str | os.PathLike) -> FIDInceptionV3:
    """The FID Inception-v3 from pytorch-fid's weight file (strict; errors name the file)."""
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"Inception-v3 weight file {path} does not exist (download {INCEPTION_URL})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, ...
        raise ValueError(f"cannot read Inception-v3 weights from {path} ({type(e).__name__}: {e}); the file is corrupt "
                         f"or not a PyTorch state dict: delete it and download {INCEPTION_URL} again") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    net = FIDInceptionV3(name=f"inception-v3-fid pool3 (pytorch-fid weights: {path})")
    net.load_fid_state_dict(state, source=str(path))
    return net.freeze()


class PooledFallback(FeatureExtractor):
    """NOT INCEPTION: spatially averaged features of a VGG extractor; images larger than ``size`` are resized to it.

    Frechet distances on these are *feature Frechet distances*, not FID: label them (``fd_fallback_k``)."""

    def __init__(self, base: FeatureExtractor, size: int = FALLBACK_SIZE, reason: str = ""):
        why = f"; {reason}" if reason else ""
        super().__init__(
            name=f"FID FALLBACK, NOT INCEPTION-V3 (figures are not FID): mean-pooled [{base.name}] at <= {size} px{why}",
            is_fallback=True, out_channels=base.out_channels, stride=0)
        self.base = base
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_shape("images", images, (None, 3, None, None), "(B, 3, H, W) in [0, 1]")
        x = images
        if max(x.shape[-2:]) > self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return self.base(x).mean((2, 3))


def fid_fallback(device: str | torch.device = "cpu", reason: str = "") -> PooledFallback:
    """The labelled fallback (VGG-19 relu3_1 when its weights are on disk, else the package's offline VGG fallback)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the VGG fallback warns; our name says it louder
        base = _build_vgg19(_resolve_vgg19(None, allow_fallback=True)).to(device)  # its own copy, not the cached one
    return PooledFallback(base, reason=reason).freeze()


def _resolve_inception(weights: Optional[str | os.PathLike], allow_fallback: bool) -> Optional[Path]:
    return resolve_weights(weights, inception_hub_path(), "Inception-v3 FID", INCEPTION_URL, allow_fallback,
                           "using a LABELLED FALLBACK whose figures are not FID")


def _build_inception(source: Optional[Path]) -> FeatureExtractor:
    if source is None:
        return fid_fallback(reason=f"no Inception-v3 weights at {inception_hub_path()}")
    return fid_inception_v3(source)


#: The kind this module adds to :data:`meshinv_lite.features.registry.EXTRACTORS`.
KINDS: dict[str, ExtractorKind] = {KIND: ExtractorKind(_resolve_inception, _build_inception)}
