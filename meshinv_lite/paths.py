"""Where relative paths point: the project root, the same from JupyterLab, papermill and the command line.

A notebook opened in JupyterLab runs with ``notebooks/`` as its working directory, papermill and the CLI
with the project root: ``data_dir="data"`` used to mean two different folders, and a notebook silently
rebuilt everything in ``notebooks/data``. Every relative ``data_dir`` / ``output_dir`` is now resolved by
:func:`resolve` against :func:`project_root`:

1. the environment variable ``MESHINV_ROOT`` when set (``make lab`` and ``make demo`` set it);
2. else the source checkout this package was imported from (the folder holding ``pyproject.toml`` and
   ``notebooks/``, also for an editable install);
3. else the current working directory.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MESHINV_ROOT"
_CHECKOUT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The folder relative paths are resolved against (see the module docstring)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    if (_CHECKOUT / "pyproject.toml").exists() and (_CHECKOUT / "notebooks").is_dir():
        return _CHECKOUT
    return Path.cwd().resolve()


def resolve(path: str | os.PathLike) -> Path:
    """``path`` as an absolute path: kept if absolute (``~`` expanded), else joined to :func:`project_root`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p
