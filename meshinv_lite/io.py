"""Atomic file writes, whole-folder publishing, a lock for shared data, safe loading, and the small JSON/metrics
helpers every notebook uses.

Everything the package writes goes through a temporary file in the target folder followed by
``os.replace``, so an interrupted run never leaves a half-written file under the final name. A folder whose
files belong together (the ``reconstruct`` command's output) is written into a hidden sibling and renamed
into place as a whole (:class:`StagedDir`). Builds of shared data (dataset splits, pseudo ground truth)
hold a :func:`file_lock`, so two processes started at once take turns instead of writing over each other.
Files a user can hand in (checkpoints, priors) are read with ``torch.load(weights_only=True)``
(:func:`safe_torch_load`): tensors and plain values only, so a crafted file cannot run code.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

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


class UnsafeFileError(ValueError):
    """A ``.pt`` file holding Python objects other than tensors and plain values (it could run code when loaded)."""


def safe_torch_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors, numbers, strings, lists, tuples and dicts only.

    A pickled object of any other kind (a crafted ``__reduce__`` that runs a command, a class of some other
    package) is never built: :class:`UnsafeFileError` names the file and the object. Other failures (truncated
    zip, not a torch file) raise as torch raises them, with torch's advice to load with ``weights_only=False``
    cut from the message.
    """
    import pickle
    import re

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if unsafe:
            raise UnsafeFileError(
                f"{path} holds a Python object ({unsafe.group(1)}) other than tensors and plain values, which could "
                "run code when loaded, so it was not loaded; use only files written by meshinv-lite") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", text, re.S)
        raise pickle.UnpicklingError(detail.group(1).strip() if detail else text.splitlines()[0]) from None


def load_user_torch_file(path: str | os.PathLike, error: type, *, missing: str, damaged: Callable[[str], str],
                         file_name: str | None = None, unsafe_suffix: str = "") -> Any:
    """:func:`safe_torch_load` of a file a user hands in, every failure raised as ``error`` saying what to do.

    ``missing``: the message for a path that does not exist; ``file_name``: the file to name when ``path`` is a
    folder (``None``: no folder check); ``damaged(reason)``: the message for an unreadable file (``reason``:
    ``"TypeName: message"``); a file holding Python objects gets :class:`UnsafeFileError`'s message followed by
    ``unsafe_suffix``."""
    path = Path(path)
    if not path.exists():
        raise error(missing)
    if file_name is not None and path.is_dir():
        raise error(f"{path} is a folder; give the checkpoint file in it ({file_name})")
    try:
        return safe_torch_load(path)
    except UnsafeFileError as e:
        raise error(f"{e}{unsafe_suffix}") from None
    except Exception as e:  # truncated zip, not a torch file, ...
        raise error(damaged(f"{type(e).__name__}: {e}")) from None


def read_checked_artifact(path: Path, *, fmt: str, version: int, kind: str, config_key: str, want_config: dict | None,
                          config_noun: str, error: type, hint: str, weights_only: bool = True,
                          name: str | None = None) -> dict:
    """A shipped artifact's dict (a prior, a feature network), checked before anything is built from it.

    Raises ``error`` ending in ``hint`` (how to rebuild) when ``path`` is missing or unreadable, holds Python
    objects other than tensors and plain values (it is read with ``weights_only=True``: nothing in it runs),
    holds another format or format version, was made with a config (``state[config_key]``) other than
    ``want_config`` (the message names the differing keys and ``config_noun``; ``None``: any, the caller checks it),
    or its ``state_dict`` fails its
    stored checksum. ``name``: what a missing file is called (default ``kind``). ``weights_only`` must stay
    ``True`` (kept for callers that pass it).
    """
    if not weights_only:
        raise ValueError("read_checked_artifact loads with weights_only=True only: a file a user hands in must "
                         "never run code")
    state = load_user_torch_file(path, error, missing=f"no {name or kind} at {path}; {hint}",
                                 damaged=lambda reason: f"{path} is damaged ({reason}); {hint}", unsafe_suffix=f"; {hint}")
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise error(f"{path} is not a meshinv-lite {kind} file; {hint}")
    if state.get("version") != version:
        raise error(f"{path} has {kind} format version {state.get('version')}, this code reads {version}; {hint}")
    want = json.loads(json.dumps(want_config)) if want_config is not None else None
    have = json.loads(json.dumps(state.get(config_key, {})))
    if want is not None and want != have:
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
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({type(e).__name__}: {e}); the file is damaged: delete it and "
                         "re-run the step that writes it") from None


def write_metrics(output_dir: str | os.PathLike, metrics: dict, name: str = "metrics.json") -> Path:
    """Write a notebook's key figures to ``output_dir/metrics.json`` (merged with what is there)."""
    path = Path(output_dir) / name
    current = read_json(path) if path.exists() else {}
    current.update(_jsonable(metrics))
    return write_json(path, current)


# --------------------------------------------------------------------------------------------------
# Whole folders: written beside the target, renamed into place
# --------------------------------------------------------------------------------------------------


class StagedDir:
    """A folder written as a whole: files go into a hidden sibling ``.<name>.partial-XXXX`` that replaces
    ``final`` when the block ends without an error (:meth:`publish`).

    Creating it is the writability check: it makes ``final``'s parent and the sibling at once, so a folder
    that cannot be written fails (``OSError``) before any work. On an error or Ctrl-C the sibling is removed
    and ``final`` is left as it was: the folder holds either the earlier content, whole, or the new one,
    never a mix. An existing ``final`` is renamed aside (``.<name>.old-*``), the new folder renamed into place,
    and the old one deleted, with Ctrl-C held back for those few steps (main thread, POSIX); only a kill
    (``SIGKILL``, power loss) between the two renames leaves ``final`` absent, its earlier content whole in the
    ``.old`` sibling. The caller decides whether ``final``'s earlier content may be replaced.

    Use ``with StagedDir(out) as tmp: ...write into tmp...``; ``published`` says whether the swap happened.
    """

    def __init__(self, final: str | os.PathLike):
        self.final = Path(final)
        if self.final.is_symlink():  # a link to a results folder: replace the folder it points to, keep the link
            self.final = self.final.resolve()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.partial-", dir=self.final.parent))
        os.chmod(self.path, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder an ordinary mkdir's mode
        self.published = False

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary sibling (``final`` untouched)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def publish(self) -> Path:
        """Rename the temporary folder to ``final``, replacing what was there; returns ``final``."""
        old = None
        with _ctrl_c_held_back():
            try:
                if self.final.exists() or self.final.is_symlink():
                    old = self.final.parent / f".{self.final.name}.old-{os.getpid()}-{threading.get_ident()}"
                    os.rename(self.final, old)
                try:
                    os.rename(self.path, self.final)
                except OSError:
                    if old is not None:
                        os.rename(old, self.final)  # put the earlier folder back
                    raise
                self.published = True
            finally:
                if not self.published:
                    self.discard()
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return self.final


@contextmanager
def _ctrl_c_held_back() -> Iterator[None]:
    """Hold SIGINT back for a few file operations (main thread, POSIX); it is delivered at the end."""
    import signal

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


# --------------------------------------------------------------------------------------------------
# A lock for shared data
# --------------------------------------------------------------------------------------------------


_HELD = threading.local()  # lock files this thread holds (a nested request for one of them is granted at once)


@contextmanager
def file_lock(lock_path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing) while the block runs.

    For builds of shared data: a second process (or thread) that asks for the same lock waits, printing once
    that it waits for ``what``, then goes on and finds the finished result. ``fcntl.flock`` (POSIX; also over
    NFS on Linux): the kernel releases the lock when its holder dies, so a killed build never blocks the next.
    Where ``fcntl`` is missing (Windows) the block runs unlocked. Nested use of one path in one thread is fine.
    """
    path = Path(lock_path)
    held = getattr(_HELD, "paths", None)
    if held is None:
        held = _HELD.paths = set()
    key = str(path.resolve())
    if key in held:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+b")
    except OSError:  # not ours to write (PermissionError), a read-only file system, ...
        try:
            f = open(path, "rb")  # someone else's lock file in a shared folder: a read handle locks as well
        except OSError:  # a folder this process cannot write: it builds nothing there, nothing to lock
            yield
            return
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process that is building {what} (lock: {path}) ...", flush=True)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
