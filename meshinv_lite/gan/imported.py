"""The authors' pretrained generators, converted once into this package's format and loaded like the shipped prior.

    python -m meshinv_lite.cli import-weights checkpoints_gan/pretrained/checkpoint_latest.pth --from meshinversion
    python -m meshinv_lite.cli import-weights pretrained_p3d_512x512_class/checkpoint_latest.pth --from convmesh

reads the authors' checkpoint with ``weights_only=True`` (nothing in it runs), takes the EMA generator they infer with
(``generator_running_avg``), works out the architecture from the weights themselves (class and colour counts, texture
size, width) and the saved arguments (template, padding), checks every tensor's name and shape, and writes
``<name>.pt`` (format :data:`IMPORTED_FORMAT`: config, weights, checksum, source) with ``<name>.json`` beside it (the
source file and its SHA-256, the authors' arguments, when and with which code). :func:`load_imported_generator`
reads it back as a :class:`~meshinv_lite.gan.convmesh.ConvMeshGenerator` and refuses damaged or foreign files.

Checkpoint layouts (facts from dariopavllo/convmesh @ a79c685 ``run_generation.py`` and junzhezhang/mesh-inversion
@ d661472 ``run_pretraining.py``): a dict with ``generator``, ``generator_running_avg``, ``discriminator``,
optimizer states and ``args`` (MeshInversion writes ``'self.args'``); spectral norm in the hook layout
(``weight_orig``, ``weight_u``, ``weight_v``).
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Optional

import torch

from ..io import atomic_torch_save, load_user_torch_file, read_checked_artifact, read_json, state_checksum, write_json
from .convmesh import ConvMeshConfig, ConvMeshGenerator

IMPORTED_FORMAT = "meshinv-lite-imported-generator"
IMPORTED_VERSION = 1
SOURCES = ("meshinversion", "convmesh")
_EMA_KEY = "generator_running_avg"
_SN_SUFFIXES = {"weight_orig": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u",
                "weight_v": "parametrizations.weight.0._v"}


class ImportedWeightsError(RuntimeError):
    """A checkpoint that cannot be imported, or an imported file that cannot be used; the message says why."""


def from_authors_state_dict(state: dict) -> dict:
    """The authors' generator state dict with this package's names (hook spectral norm -> parametrization), float32."""
    out = {}
    for key, value in state.items():
        head, _, last = key.rpartition(".")
        name = f"{head}.{_SN_SUFFIXES[last]}" if last in _SN_SUFFIXES else key
        out[name] = value.float() if torch.is_tensor(value) and value.is_floating_point() else value
    return out


def _args_of(checkpoint: dict) -> dict:
    args = checkpoint.get("args", checkpoint.get("self.args"))
    return dict(args) if isinstance(args, dict) else {}


def config_from_authors(state: dict, args: dict, source: str, rings: Optional[int] = None) -> ConvMeshConfig:
    """The :class:`ConvMeshConfig` of an authors' generator state dict (hook layout) and its saved ``args``.

    The weights decide the class and colour counts, latent size, texture size and width; ``args`` the template
    (``mesh_path``), symmetry and normalisation; ``rings`` overrides the template (default: from ``mesh_path``, else 16
    for MeshInversion, which only has CUB)."""
    if args.get("conditional_text") or "att.conv_context.weight" in state:
        raise ImportedWeightsError("this is a text-conditioned generator (ConvMesh --conditional_text); only the class-"
                                   "conditional and unconditional models are supported")
    if "conv_mesh.weight" not in state:
        raise ImportedWeightsError("this generator has no mesh head (trained with --texture_only): it makes textures "
                                   "only, and inversion needs shapes")
    for need in ("fc.weight", "blk1.conv1.weight_orig"):
        if need not in state:
            raise ImportedWeightsError(f"the generator's weights have no {need!r}: not a ConvMesh/MeshInversion "
                                       "generator (expected keys like fc.weight, blk1.conv1.weight_orig, conv_mesh.weight)")
    norm = str(args.get("norm_g", "syncbatch"))
    if norm not in ("syncbatch", "batch"):
        raise ImportedWeightsError(f"generators trained with --norm_g {norm} are not supported (only syncbatch/batch)")
    c512 = state["blk1.conv1.weight_orig"].shape[0]
    if 512 % c512:
        raise ImportedWeightsError(f"blk1 has {c512} channels; the authors' architecture has 512 (or a divisor)")
    cells = state["fc.weight"].shape[0] // c512
    symmetric = bool(args.get("symmetric_g", cells == 32))
    shape_classes = int(state["emb_class.weight"].shape[0]) if "emb_class.weight" in state else 0
    color_classes = int(state["emb_color.weight"].shape[0]) if "emb_color.weight" in state else 0
    if shape_classes and color_classes:
        latent = 2 * int(state["emb_class.weight"].shape[1])
    elif shape_classes:
        latent = int(state["emb_class.weight"].shape[1])
    else:
        latent = int(state["fc.weight"].shape[1])
    texture = 128 * 2 ** sum(f"{b}.conv1.weight_orig" in state for b in ("blk3a", "blk3b", "blk3c"))
    if rings is None:
        mesh_path = str(args.get("mesh_path", ""))
        rings = 31 if "31rings" in mesh_path else 16 if ("16rings" in mesh_path or source == "meshinversion") else None
        if rings is None:
            raise ImportedWeightsError("the checkpoint does not say which template it was trained with (no mesh_path in "
                                       "its args); pass --rings 16 (CUB) or --rings 31 (PASCAL3D+)")
    try:
        return ConvMeshConfig(texture_size=texture, latent_dim=latent, shape_classes=shape_classes,
                              color_classes=color_classes, rings=rings, symmetric=symmetric, width_div=512 // c512,
                              norm=norm)
    except ValueError as e:
        raise ImportedWeightsError(f"the weights describe a generator this package cannot build: {e}") from None


def build_from_authors(state: dict, config: ConvMeshConfig) -> ConvMeshGenerator:
    """A :class:`ConvMeshGenerator` holding the authors' weights ``state`` (hook layout), every name and shape checked."""
    G = ConvMeshGenerator(config)
    want = G.state_dict()
    have = from_authors_state_dict(state)
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    wrong = [f"{k} {tuple(have[k].shape)} (expected {tuple(want[k].shape)})" for k in want
             if k in have and tuple(have[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                parts.append(f"{label}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''} ({len(items)})")
        raise ImportedWeightsError(f"the weights do not fit the authors' generator {config.to_dict()}: " + "; ".join(parts))
    G.load_state_dict(have)
    return G.eval()


def read_authors_checkpoint(path: str | Path, source: str) -> tuple[dict, dict, str]:
    """``(generator state dict, args, entry)`` of an authors' checkpoint; ``entry`` names the generator taken."""
    if source not in SOURCES:
        raise ImportedWeightsError(f"--from must be one of {SOURCES}, got {source!r}")
    path = Path(path)
    ckpt = load_user_torch_file(
        path, ImportedWeightsError, file_name="checkpoint_latest.pth",
        missing=f"no checkpoint at {path}; download the authors' pretrained GAN (MeshInversion: "
                "checkpoints_gan/pretrained/checkpoint_latest.pth; ConvMesh: "
                "checkpoints_gan/pretrained_<dataset>_512x512_<condition>/checkpoint_latest.pth)",
        damaged=lambda reason: f"{path} is not a readable PyTorch checkpoint ({reason}); download it again")
    if not isinstance(ckpt, dict):
        raise ImportedWeightsError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict")
    if ckpt.get("format") == IMPORTED_FORMAT:
        raise ImportedWeightsError(f"{path} is already imported; load it with load_imported_generator (or pass it as "
                                   "--weights)")
    for entry in (_EMA_KEY, "generator"):
        if isinstance(ckpt.get(entry), dict):
            return ckpt[entry], _args_of(ckpt), entry
    if all(torch.is_tensor(v) for v in ckpt.values()) and "fc.weight" in ckpt:
        return ckpt, {}, "state dict"
    raise ImportedWeightsError(f"{path} has no generator weights (keys: {sorted(map(str, ckpt))[:8]}); expected "
                               f"'{_EMA_KEY}' (the authors' EMA generator) or 'generator'")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_authors_weights(path: str | Path, source: str, out: str | Path, rings: Optional[int] = None) -> dict:
    """Convert an authors' checkpoint into ``out`` (``.pt``, with a ``.json`` provenance beside it); returns the
    provenance. The generator is built and run once on a few latents before anything is written."""
    from ..provenance import code_version

    t0 = time.perf_counter()
    path, out = Path(path), Path(out)
    if out.suffix != ".pt":
        raise ImportedWeightsError(f"--out must end in .pt, got {out}")
    state, args, entry = read_authors_checkpoint(path, source)
    config = config_from_authors(state, args, source, rings)
    G = build_from_authors(state, config)
    with torch.no_grad():
        z = torch.randn(2, config.latent_dim, generator=torch.Generator().manual_seed(0))
        tex, mesh = G(z, torch.zeros(2, dtype=torch.long))
    if not (torch.isfinite(tex).all() and torch.isfinite(mesh).all()):
        raise ImportedWeightsError(f"{path}: the generator makes non-finite maps; the weights are damaged")
    weights = {k: v.detach().cpu() for k, v in G.state_dict().items()}
    provenance = {
        "source": {"file": str(path.resolve()), "sha256": _sha256(path), "from": source, "entry": entry,
                   "authors_args": {k: v for k, v in args.items() if isinstance(v, (int, float, str, bool, list, tuple))}},
        "config": config.to_dict(),
        "parameters": sum(p.numel() for p in G.parameters()),
        "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": time.perf_counter() - t0,
        "code": code_version(),
        "note": "weights converted name for name (spectral norm: hook layout -> parametrization); values unchanged",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"format": IMPORTED_FORMAT, "version": IMPORTED_VERSION, "config": config.to_dict(),
                       "state_dict": weights, "checksum": state_checksum(weights),
                       "source": {k: provenance["source"][k] for k in ("sha256", "from", "entry")}}, out)
    write_json(out.with_suffix(".json"), provenance)
    return provenance


def load_imported_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[ConvMeshGenerator, dict]:
    """An imported authors' generator (eval mode, on ``device``) and its provenance, every check passed first."""
    path = Path(path)
    hint = ("import the authors' checkpoint again: python -m meshinv_lite.cli import-weights CHECKPOINT "
            "--from meshinversion|convmesh")
    state = read_checked_artifact(path, fmt=IMPORTED_FORMAT, version=IMPORTED_VERSION, kind="imported generator",
                                  config_key="config", want_config=None, config_noun="generator", error=ImportedWeightsError,
                                  hint=hint)
    try:
        config = ConvMeshConfig(**state["config"])
    except (TypeError, ValueError) as e:
        raise ImportedWeightsError(f"{path} holds a generator config this code cannot build ({e}); {hint}") from None
    G = ConvMeshGenerator(config)
    try:
        G.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        raise ImportedWeightsError(f"{path} does not fit the generator its config describes "
                                   f"({str(e).strip().splitlines()[0]}); {hint}") from None
    js = path.with_suffix(".json")
    info = read_json(js) if js.exists() else {}
    info.setdefault("file", str(path))
    return G.to(device).eval(), info
