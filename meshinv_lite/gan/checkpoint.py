"""GAN checkpoints: format, checks (config, checksum) with messages that say how to retrain, and loading a generator."""
from __future__ import annotations

from pathlib import Path

import torch

from ..io import load_user_torch_file, state_checksum
from .config import PretrainConfig
from .networks import DiscriminatorConfig, Generator, GeneratorConfig

CHECKPOINT_FORMAT = "meshinv-lite-gan"


CHECKPOINT_VERSION = 1


#: Entries of a checkpoint whose tensors are covered by its ``checksum``.
CHECKSUMMED = ("G", "G_ema", "D_uv", "D_img")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, or from another configuration."""


def _comparable(cfg: dict) -> dict:
    """Config entries that must match to resume (the schedule's length and checkpoint cadence may differ)."""
    import json

    from ..io import _jsonable

    flat = json.loads(json.dumps(_jsonable(cfg)))
    for k in ("iterations", "checkpoint_every"):
        flat.pop(k, None)
    return flat


def read_checkpoint(path: str | Path) -> dict:
    """Load a pretraining checkpoint and check its format; clear errors for missing or damaged files.

    Read with ``weights_only=True`` (:func:`~meshinv_lite.io.safe_torch_load`): a checkpoint holds tensors,
    numbers, strings and containers of them only, so a crafted file (``--checkpoint`` of someone else's) is
    refused without running anything it holds."""
    path = Path(path)
    state = load_user_torch_file(path, CheckpointError, file_name="latest.pt",
                                 missing=f"no checkpoint at {path}; train first (notebook 03 or meshinv_lite.gan)",
                                 damaged=lambda reason: f"{path} is corrupt or truncated ({reason}); delete it and retrain")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a meshinv-lite GAN checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}, this package reads {CHECKPOINT_VERSION}")
    missing = [k for k in ("config", "G", "G_ema", "iteration") if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}: incomplete checkpoint")
    if "checksum" in state:  # checkpoints from before checksums load unchecked
        nets = {k: state[k] for k in CHECKSUMMED if state.get(k) is not None}
        if state_checksum(nets) != state["checksum"]:
            raise CheckpointError(f"{path} is damaged: its network weights do not match their checksum; delete it and "
                                  "retrain (or restore it from a copy)")
    return state


RETRAIN_HINT = ("retrain it: delete the checkpoint folder, or run `python -m meshinv_lite.pipeline --rebuild gan`, "
                "or `python -m meshinv_lite.cli pretrain --no-resume`")


def checkpoint_config(state: dict, path: str | Path = "checkpoint") -> PretrainConfig:
    """The :class:`PretrainConfig` a checkpoint was trained with; :class:`CheckpointError` when this code's
    config no longer has the same fields (the package changed since the checkpoint was written)."""
    try:
        return config_from_dict(state["config"])
    except (TypeError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path} was written by another version of meshinv-lite (its config does not fit "
                              f"this code: {e}); {RETRAIN_HINT}") from None


def load_generator(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> tuple[Generator, PretrainConfig]:
    """The (EMA) generator of a checkpoint, in eval mode, and the run's config.

    A checkpoint whose config or weights no longer fit this code's generator is refused with a
    :class:`CheckpointError` that says how to retrain, never a shape-mismatch traceback."""
    state = read_checkpoint(path)
    cfg = checkpoint_config(state, path)
    G = Generator(cfg.generator)
    try:
        G.load_state_dict(state["G_ema" if ema else "G"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit the generator this code builds ({first}): the architecture "
                              f"changed since it was trained; {RETRAIN_HINT}") from None
    return G.to(device).eval(), cfg


def config_from_dict(d: dict) -> PretrainConfig:
    """Rebuild a :class:`PretrainConfig` from its ``to_dict`` form."""
    d = dict(d)
    d["generator"] = GeneratorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["generator"].items()})
    d["discriminator"] = DiscriminatorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["discriminator"].items()})
    d["betas"] = tuple(d["betas"])
    return PretrainConfig(**d)
