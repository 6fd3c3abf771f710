"""One check for every notebook's parameters cell.

papermill passes ``-p name value`` through as typed (``-p seed abc`` arrives as the string ``"abc"``), and a
wrong value used to fail cells later with an error that named neither the parameter nor what it should be.
Each notebook's first code cell calls :func:`check_parameters` on its parameters; every name it knows is
validated here, with one message naming the parameter, what it got and what it takes.
"""
from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Callable, Mapping

from .config import CATEGORY_NAMES, PROFILES, check_device


def _choice(*options):
    def check(v):
        if v not in options:
            raise ValueError(f"one of {', '.join(repr(o) for o in options)}")
        return v
    return check


def _int(minimum: int, optional: bool = False):
    def check(v):
        if v is None and optional:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{'None or ' if optional else ''}an integer >= {minimum}")
        if v < minimum:
            raise ValueError(f"{'None or ' if optional else ''}an integer >= {minimum}")
        return v
    return check


def _bool(optional: bool = False):
    def check(v):
        if v is None and optional:
            return v
        if not isinstance(v, bool):
            raise ValueError(f"{'None, ' if optional else ''}True or False")
        return v
    return check


def _path(optional: bool = False):
    def check(v):
        if v is None and optional:
            return v
        if not isinstance(v, (str, Path)) or not str(v):
            raise ValueError(f"{'None or ' if optional else ''}a folder or file path (a string)")
        return v
    return check


def _species(v):
    if v is None or isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
        return v
    raise ValueError("None, a species name or a class index >= 0")


def _device(v):
    try:
        check_device(v)
    except ValueError as e:
        raise ValueError(str(e)) from None
    return v


#: What each known notebook parameter takes.
RULES: dict[str, Callable[[Any], Any]] = {
    "profile": _choice(*PROFILES),
    "device": _device,
    "seed": _int(0),
    "data_dir": _path(),
    "output_dir": _path(),
    "interactive": _bool(optional=True),
    "camera": _choice("noisy", "exact"),
    "prior": _choice(None, "shipped", "train"),
    "image_discriminator": _bool(),
    "iterations": _int(1, optional=True),
    "num_images": _int(1, optional=True),
    "num_train": _int(1, optional=True),
    "num_test": _int(1, optional=True),
    "hard_images": _int(1, optional=True),
    "unseen_images": _int(1, optional=True),
    "ablation_images": _int(1, optional=True),
    "batch_size": _int(1, optional=True),
    "threads": _int(1, optional=True),
    "fid_weights": _path(optional=True),
    "image_path": _path(optional=True),
    "mask_path": _path(optional=True),
    "species": _species,
    "category": _choice(*CATEGORY_NAMES),
    "weights": _path(optional=True),
    "dataset": _path(optional=True),
}


#: Parameters that are paths: returned resolved against the project root (:mod:`meshinv_lite.paths`).
PATH_PARAMETERS = ("data_dir", "output_dir", "fid_weights", "image_path", "mask_path", "weights", "dataset")


def check_parameters(values: Mapping[str, Any], verbose: bool = True) -> dict:
    """Validate the known parameters among ``values`` (e.g. a notebook's ``globals()``); returns them, with
    ``data_dir``, ``output_dir`` and ``fid_weights`` as absolute paths (:func:`meshinv_lite.paths.resolve`:
    the same folders from JupyterLab, papermill and the command line). ``verbose`` prints where data and
    outputs are.

    Raises ``ValueError`` naming the first wrong parameter, the value it got (with its type) and what it
    takes, e.g. ``parameter 'seed' must be an integer >= 0, got 'abc' (str)``.
    """
    from .paths import resolve

    checked = {}
    for name, rule in RULES.items():
        if name not in values:
            continue
        v = values[name]
        if isinstance(v, (types.ModuleType, type)) or callable(v):
            continue   # a module or function of that name (``from meshinv_lite import camera``), not a parameter
        try:
            checked[name] = rule(v)
        except ValueError as e:
            raise ValueError(f"parameter {name!r} must be {e}, got {v!r} ({type(v).__name__})"
                             if not str(e).startswith(("device", "unknown device")) else
                             f"parameter 'device': {e}") from None
    for name in PATH_PARAMETERS:
        if checked.get(name) is not None:
            checked[name] = resolve(checked[name])
    if verbose:
        where = [f"{label}: {checked[k]}" for k, label in (("data_dir", "data"), ("output_dir", "outputs")) if k in checked]
        if where:
            print("  |  ".join(where))
    return checked
