"""The shipped encoder file: ``meshinv_lite/priors/synthbirds_encoder.pt`` (+ provenance ``.json``).

One file holds both networks (:class:`~meshinv_lite.encoder.network.ImageEncoder` and
:class:`~meshinv_lite.encoder.network.SegmentationNet`), their config, the recipe and a checksum of the weights.
Loading refuses, with :class:`EncoderError` naming the rebuild command, a missing or unreadable file, another
format or version, a config other than the one this code builds, and weights that fail their checksum. The
file is read with ``torch.load(weights_only=True)``: it holds tensors and plain values only, never code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..io import atomic_torch_save, read_checked_artifact, state_checksum
from .network import EncoderConfig, ImageEncoder, SegmentationNet

ENCODER_FORMAT = "meshinv-lite-encoder"
ENCODER_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "priors"
REBUILD_COMMAND = "python -m meshinv_lite.cli build-encoder"


class EncoderError(RuntimeError):
    """The shipped encoder cannot be used (the message says why and how to rebuild it)."""


def shipped_paths(recipe=None, directory: Optional[str | Path] = None) -> tuple[Path, Path]:
    from .training import EncoderRecipe

    name = (recipe or EncoderRecipe()).name
    d = Path(directory) if directory is not None else SHIPPED_DIR
    return d / f"{name}.pt", d / f"{name}.json"


def save_encoder(path: str | Path, encoder: ImageEncoder, segmenter: SegmentationNet, recipe) -> Path:
    """Write both networks as one shipped file (atomically; float weights stored as float16, half the bytes)."""
    def half(v: torch.Tensor) -> torch.Tensor:
        return v.detach().cpu().clone().half() if v.is_floating_point() else v.detach().cpu().clone()

    state = {f"encoder.{k}": half(v) for k, v in encoder.state_dict().items()}
    state.update({f"segmenter.{k}": half(v) for k, v in segmenter.state_dict().items()})
    atomic_torch_save({"format": ENCODER_FORMAT, "version": ENCODER_VERSION, "recipe": recipe.to_dict(),
                       "encoder_config": encoder.config.to_dict(), "state_dict": state,
                       "checksum": state_checksum(state)}, path)
    return Path(path)


def expected_config() -> EncoderConfig:
    """The config this code builds for the shipped prior (12 classes, 64-d latents)."""
    from ..gan.prior import SHIPPED

    g = SHIPPED.generator_config()
    return EncoderConfig(latent_dim=g.latent_dim, num_classes=g.num_classes)


def load_shipped_encoder(device: str | torch.device = "cpu", path: Optional[str | Path] = None
                         ) -> tuple[ImageEncoder, SegmentationNet, dict]:
    """The shipped encoder and segmentation net (eval mode, on ``device``) and the provenance (``{}`` without JSON)."""
    from ..io import read_json

    pt, js = shipped_paths() if path is None else (Path(path), Path(path).with_suffix(".json"))
    hint = f"rebuild it with `{REBUILD_COMMAND}` (about 25 min on 2 CPU cores; it needs the shipped prior)"
    cfg = expected_config()
    state = read_checked_artifact(pt, fmt=ENCODER_FORMAT, version=ENCODER_VERSION, kind="encoder",
                                  config_key="encoder_config", want_config=cfg.to_dict(),
                                  config_noun="encoder configuration", error=EncoderError, hint=hint,
                                  weights_only=True, name="shipped encoder")
    encoder, segmenter = ImageEncoder(cfg), SegmentationNet(cfg)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    try:
        encoder.load_state_dict({k[8:]: v for k, v in weights.items() if k.startswith("encoder.")})
        segmenter.load_state_dict({k[10:]: v for k, v in weights.items() if k.startswith("segmenter.")})
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise EncoderError(f"{pt} does not fit the networks this code builds ({first}); {hint}") from None
    info = read_json(js) if js.exists() else {}
    info.setdefault("file", str(pt))
    return encoder.to(device).eval(), segmenter.to(device).eval(), info
