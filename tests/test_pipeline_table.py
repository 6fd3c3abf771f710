"""The command line ends with notebook 06's evaluation table when that notebook ran."""
import meshinv_lite.pipeline as pl


def _fake_runs(out_root, names):
    def run(profile, output_root, *a, **k):
        runs = [pl.NotebookRun(n, "ok", 0.1, f"{n}.ipynb", {}) for n in names]
        pl.write_summary(runs, out_root, profile)
        return runs
    return run


def test_main_prints_the_evaluation_table(tmp_path, monkeypatch, capsys):
    out_root = tmp_path / "quick"
    (out_root / "06_evaluation").mkdir(parents=True)
    (out_root / "06_evaluation" / "table.md").write_text("| method | IoU |\n| paper | 0.708 |\n")
    monkeypatch.setattr(pl, "run_pipeline", _fake_runs(out_root, ["05_texture_transfer", "06_evaluation"]))
    assert pl.main(["--profile", "quick", "--output-root", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| paper | 0.708 |" in text and text.index("0.708") < text.index("summary.md") < text.rindex("outputs:")
    assert "2 of 2 notebooks ok" in text
    assert str(out_root) in text.splitlines()[-1]

    # a run that did not include notebook 06 does not print an old table
    monkeypatch.setattr(pl, "run_pipeline", _fake_runs(out_root, ["00_meshes"]))
    pl.main(["--profile", "quick", "--output-root", str(tmp_path)])
    assert "0.708" not in capsys.readouterr().out
