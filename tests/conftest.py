"""Shared fixtures: executing a notebook at the quick profile and reading what it wrote."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_notebook(tmp_path):
    """``run_notebook("00_meshes_cameras_rendering", **params)`` -> (output dir, metrics dict).

    Executes ``notebooks/<name>.ipynb`` with papermill at the quick profile (headless), into ``tmp_path``.
    """
    import papermill as pm

    from meshinv_lite.io import read_json

    def _run(name: str, **params):
        out_dir = tmp_path / name
        params = {"profile": "quick", "device": "cpu", "seed": 0, "output_dir": str(out_dir), "interactive": False, **params}
        os.environ["MESHINV_HEADLESS"] = "1"
        pm.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                            parameters=params, kernel_name="python3", cwd=str(REPO), progress_bar=False)
        return out_dir, read_json(out_dir / "metrics.json")

    return _run
