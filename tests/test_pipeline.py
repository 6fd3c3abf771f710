import json

import pytest

from meshinv_lite.pipeline import find_notebooks, run_pipeline, write_summary, NotebookRun


def test_find_notebooks_orders_and_filters(tmp_path):
    for name in ("01_b.ipynb", "00_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in find_notebooks(tmp_path)] == ["00_a.ipynb", "01_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in find_notebooks(tmp_path, ["01"])] == ["01_b.ipynb"]
    with pytest.raises(FileNotFoundError, match="no notebooks"):
        find_notebooks(tmp_path, ["99"])


def test_summary_lists_status_and_figures(tmp_path):
    runs = [NotebookRun("00_x", "ok", 1.5, "a.ipynb", {"iou": 0.9, "name": "n"}), NotebookRun("01_y", "failed", 0.2, "b.ipynb", {}, "cell 3: ValueError: boom")]
    md = write_summary(runs, tmp_path, "quick").read_text()
    assert "| 00_x | ok | 1.5 | iou=0.9 |" in md
    assert "ValueError: boom" in md
    assert json.loads((tmp_path / "summary.json").read_text())["notebooks"][1]["status"] == "failed"


@pytest.mark.notebook
def test_pipeline_stops_at_a_failing_notebook(tmp_path):
    import nbformat as nbf

    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    for name, src in (("00_ok", "x = 1"), ("01_bad", "raise ValueError('broken on purpose')"), ("02_never", "x = 2")):
        nb = nbf.v4.new_notebook()
        params = nbf.v4.new_code_cell("profile = 'quick'\noutput_dir = 'o'")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbf.v4.new_code_cell(src)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbf.write(nb, nbdir / f"{name}.ipynb")
    runs = run_pipeline("quick", tmp_path / "out", notebook_dir=nbdir)
    assert [r.status for r in runs] == ["ok", "failed"]
    assert "broken on purpose" in runs[1].error
    assert "01_bad" in (tmp_path / "out" / "quick" / "summary.md").read_text()
