"""Shared fixtures: executing a notebook at the quick profile and reading what it wrote."""
from __future__ import annotations

from pathlib import Path

import pytest

from meshinv_lite._allocator import tune_glibc_malloc

REPO = Path(__file__).resolve().parent.parent
tune_glibc_malloc()  # what set_threads does for notebooks and the CLI (tests call library code directly)


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory):
    """One quick-profile data root for all notebook tests: SynthBirds, pseudo-GT and the GAN checkpoint
    are built by whichever notebook needs them first and reused by the others (each notebook still
    builds what is missing, so any one of them runs alone)."""
    return tmp_path_factory.mktemp("shared_data")


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """``run_notebook("00_meshes_cameras_rendering", **params)`` -> (output dir, metrics dict).

    Executes ``notebooks/<name>.ipynb`` with papermill at the quick profile (headless), into ``tmp_path``.
    """
    import papermill as pm

    from meshinv_lite.io import read_json

    def _run(name: str, **params):
        out_dir = tmp_path / name
        params = {"profile": "quick", "device": "cpu", "seed": 0, "output_dir": str(out_dir), "interactive": False, **params}
        monkeypatch.setenv("MESHINV_HEADLESS", "1")
        pm.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                            parameters=params, kernel_name="python3", cwd=str(REPO), progress_bar=False)
        return out_dir, read_json(out_dir / "metrics.json")

    return _run


def assert_picture(path, min_std: float = 0.02, min_side: int = 100):
    """A figure a person can look at: it exists, has a sensible size, and is not blank (pixel spread)."""
    import numpy as np
    from PIL import Image

    assert path.exists(), f"{path} was not written"
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    assert min(img.shape[:2]) >= min_side, f"{path.name} is only {img.shape[1]} x {img.shape[0]} pixels"
    assert img.std() > min_std, f"{path.name} is (nearly) blank: pixel std {img.std():.4f}"


@pytest.fixture(scope="session")
def shared_cars_dir(tmp_path_factory):
    """One quick-profile data root for the cars notebook tests (SynthCars is built by the first that needs it)."""
    return tmp_path_factory.mktemp("shared_cars")


@pytest.fixture(scope="session")
def cub_and_authors(tmp_path_factory):
    """``(dataset, weights)``: a fabricated CUB in MeshInversion's layout converted at quick (64 px, 4 test images, no
    3D ground truth, only a ``test`` split) and the parity fixture's authors' generator imported (as
    tests/test_cub_paper_evaluation.py makes them); shared by the notebook 04-06 tests of ``weights=`` / ``dataset=``."""
    import importlib.util

    from test_cub_meshinversion_layout import fabricate

    from meshinv_lite.cli import main

    tmp = tmp_path_factory.mktemp("cub_quick")
    fabricate(tmp / "datasets" / "cub")
    spec = importlib.util.spec_from_file_location("prepare_cub", REPO / "data_scripts" / "prepare_cub.py")
    prepare_cub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare_cub)
    assert prepare_cub.main(["--cub-dir", str(tmp / "datasets" / "cub"), "--out", str(tmp / "cub_quick"),
                             "--profile", "quick", "--quiet"]) == 0
    fixture = REPO / "tests" / "fixtures" / "authors" / "cub_class" / "checkpoint_fixture.pth"
    assert main(["import-weights", str(fixture), "--from", "meshinversion", "--out", str(tmp / "g.pt")]) == 0
    return tmp / "cub_quick", tmp / "g.pt"

