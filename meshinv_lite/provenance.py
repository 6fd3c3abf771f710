"""Where an artifact came from: the package version, torch and, in a git checkout, the commit and local changes."""
from __future__ import annotations

import subprocess
from pathlib import Path

import torch


def code_version() -> dict:
    """Package version and, in a git checkout, the commit and whether the tree had local changes."""
    from . import __version__

    info = {"package": __version__, "torch": torch.__version__}
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--", "meshinv_lite"], cwd=root,
                                   capture_output=True, text=True, timeout=10)
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info
