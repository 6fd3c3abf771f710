"""The committed notebooks: output-stripped, parametrised the same way, runtime on the first screen, and
notebook 00 runs as committed (nbval, default parameters, live widgets on) in a scratch directory.

The papermill runs with explicit parameters live in tests/test_notebook_NN.py; this file checks the files
themselves.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMS = ("profile", "device", "seed", "output_dir")
ALLOWED_CELL_METADATA = {"tags"}
FORBIDDEN_NB_METADATA = {"widgets", "papermill", "execution"}


def _read(path: Path):
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    return nb


def _parameters(cell) -> dict:
    """``name = literal`` assignments of a parameters cell."""
    values = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_output_stripped(path):
    nb = _read(path)
    dirty = [
        i for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; strip them before committing"
    extra = {i: sorted(set(c.metadata) - ALLOWED_CELL_METADATA) for i, c in enumerate(nb.cells)
             if set(c.metadata) - ALLOWED_CELL_METADATA}
    assert not extra, f"{path.name}: cell metadata beyond tags (run/widget state?): {extra}"
    stale = FORBIDDEN_NB_METADATA & set(nb.metadata)
    assert not stale, f"{path.name}: notebook metadata holds run state {sorted(stale)}"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec should be python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_quick_parameters_cell(path):
    nb = _read(path)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters', found {len(tagged)}"
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert tagged[0] == first_code, f"{path.name}: the parameters cell should be the first code cell"
    params = _parameters(nb.cells[tagged[0]])
    missing = [k for k in REQUIRED_PARAMS if k not in params]
    assert not missing, f"{path.name}: parameters cell lacks {missing}"
    assert params["profile"] == "quick", f"{path.name}: the committed default profile must be 'quick'"
    assert params["device"] == "cpu", f"{path.name}: the committed default device must be 'cpu'"
    assert isinstance(params["seed"], int), f"{path.name}: seed must be an int"
    out = str(params["output_dir"])
    assert out.startswith("outputs/") and not os.path.isabs(out), \
        f"{path.name}: output_dir must default to a relative path under outputs/, got {out!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_title_and_runtime(path):
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell should be the markdown introduction"
    assert first.source.lstrip().startswith("# "), f"{path.name}: the first cell should start with a '# ' title"
    assert re.search(r"runtime", first.source, re.I) and "quick" in first.source, \
        f"{path.name}: the first markdown cell should state the runtime at the quick profile"


@pytest.mark.notebook
@pytest.mark.slow
def test_notebook_00_runs_as_committed_with_nbval(tmp_path):
    """nbval --nbval-lax over a copy of notebook 00 with its committed defaults (outputs land in tmp_path).

    Unlike the papermill test this keeps ``interactive=None``, so the live widget path runs in a kernel.
    """
    pytest.importorskip("nbval")
    nb = tmp_path / "00_meshes_cameras_rendering.ipynb"
    shutil.copy(REPO / "notebooks" / nb.name, nb)
    env = {k: v for k, v in os.environ.items() if k != "MESHINV_HEADLESS"}
    env["MESHINV_ROOT"] = str(tmp_path)  # relative paths resolve against the project root: here the scratch folder
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env", nb.name],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"nbval failed on {nb.name}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    assert (tmp_path / "outputs" / "quick" / "00_meshes_cameras_rendering" / "metrics.json").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path):
    """papermill parses each `name = value  # help` line (a line it cannot parse is only a warning in every
    run's log, and that parameter loses its help text in `papermill --help-notebook`)."""
    from papermill.translators import PythonTranslator

    nb = _read(path)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    found = {p.name for p in PythonTranslator.inspect(cell)}
    assert found == set(_parameters(cell)), f"{path.name}: papermill cannot parse {set(_parameters(cell)) - found}"
