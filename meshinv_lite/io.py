"""Atomic file writes and the small JSON/metrics helpers every notebook uses.

Everything the package writes goes through a temporary file in the target folder followed by
``os.replace``, so an interrupted run never leaves a half-written file under the final name.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step.

    ``suffix`` keeps an extension some writers need (``np.savez`` appends ``.npz`` otherwise).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the mode an ordinary open() would (0666 & ~umask),
        # so a shared data folder stays readable by the other users of a class
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a truncated checkpoint behind."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` written atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def state_checksum(state: dict) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a (nested) dict of tensors, keys sorted.

    Stored in checkpoints and shipped priors and checked on load: a flipped byte in the middle of a file
    loads without complaint otherwise."""
    import hashlib

    h = hashlib.sha256()

    def feed(prefix: str, d: dict) -> None:
        for k in sorted(d, key=str):
            v = d[k]
            name = f"{prefix}{k}"
            h.update(name.encode())
            if isinstance(v, dict):
                feed(name + ".", v)
            elif isinstance(v, torch.Tensor):
                t = v.detach().cpu().contiguous()
                h.update(f"{t.dtype}{tuple(t.shape)}".encode())
                h.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())
            else:
                h.update(repr(v).encode())

    feed("", state)
    return h.hexdigest()


def read_checked_artifact(path: Path, *, fmt: str, version: int, kind: str, config_key: str, want_config: dict,
                          config_noun: str, error: type, hint: str, weights_only: bool = True,
                          name: str | None = None) -> dict:
    """A shipped artifact's dict (a prior, a feature network), checked before anything is built from it.

    Raises ``error`` ending in ``hint`` (how to rebuild) when ``path`` is missing or unreadable, holds another
    format or format version, was made with a config (``state[config_key]``) other than ``want_config`` (the
    message names the differing keys and ``config_noun``), or its ``state_dict`` fails its stored checksum.
    ``name``: what a missing file is called (default ``kind``).
    """
    if not path.exists():
        raise error(f"no {name or kind} at {path}; {hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:  # truncated zip, pickling errors, not a torch file, ...
        raise error(f"{path} is damaged ({type(e).__name__}: {e}); {hint}") from None
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise error(f"{path} is not a meshinv-lite {kind} file; {hint}")
    if state.get("version") != version:
        raise error(f"{path} has {kind} format version {state.get('version')}, this code reads {version}; {hint}")
    want = json.loads(json.dumps(want_config))
    have = json.loads(json.dumps(state.get(config_key, {})))
    if want != have:
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise error(f"{path} was made for another {config_noun} (differs in: {', '.join(diff)}): the code changed "
                    f"since it was built; {hint}")
    weights = state.get("state_dict")
    if not isinstance(weights, dict) or state_checksum(weights) != state.get("checksum"):
        raise error(f"{path}: the weights do not match their checksum (the file is damaged); {hint}")
    return state


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (tensors, numpy values and paths converted; NaN becomes null)."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n").encode())
    return path


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it and re-run the step that writes it") from None


def write_metrics(output_dir: str | os.PathLike, metrics: dict, name: str = "metrics.json") -> Path:
    """Write a notebook's key figures to ``output_dir/metrics.json`` (merged with what is there)."""
    path = Path(output_dir) / name
    current = read_json(path) if path.exists() else {}
    current.update(_jsonable(metrics))
    return write_json(path, current)
