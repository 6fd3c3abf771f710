import json
from pathlib import Path

import pytest

from conftest import assert_picture
from meshinv_lite.pipeline import find_notebooks, run_pipeline, write_summary, NotebookRun


def test_find_notebooks_orders_and_filters(tmp_path):
    for name in ("01_b.ipynb", "00_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in find_notebooks(tmp_path)] == ["00_a.ipynb", "01_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in find_notebooks(tmp_path, ["01"])] == ["01_b.ipynb"]
    with pytest.raises(ValueError, match=r"no notebook matches '99'; valid ids: 00, 01, 10"):
        find_notebooks(tmp_path, ["99"])
    with pytest.raises(ValueError, match="'99'"):  # one bad id among good ones is not silently dropped
        find_notebooks(tmp_path, ["00", "99"])
    with pytest.raises(FileNotFoundError, match="no notebooks"):
        find_notebooks(tmp_path / "empty")


@pytest.mark.parametrize("argv, message", [
    (["--only", "99"], "valid ids: 00"),
    (["--only", "00", "99"], "no notebook matches '99'"),
    (["--device", "cdua"], "unknown device 'cdua'"),
    (["--device", "cuda:7"], "cuda"),
])
def test_pipeline_command_refuses_bad_arguments_before_running(argv, message, capsys, tmp_path):
    from meshinv_lite.pipeline import main

    with pytest.raises(SystemExit) as e:
        main(["--output-root", str(tmp_path / "out"), *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing ran


def _notebooks(nbdir, cells):
    import nbformat as nbf

    nbdir.mkdir()
    for name, src in cells:
        nb = nbf.v4.new_notebook()
        params = nbf.v4.new_code_cell("profile = 'quick'\noutput_dir = 'o'\nprior = None")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbf.v4.new_code_cell(src)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbf.write(nb, nbdir / f"{name}.ipynb")


@pytest.mark.notebook
def test_ctrl_c_stops_cleanly_and_keeps_the_summary(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    nbdir = tmp_path / "nbs"
    _notebooks(nbdir, [("00_fast", "x = 1"), ("01_slow", "import time\ntime.sleep(120)")])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "meshinv_lite.pipeline", "--output-root", str(out),
                             "--notebook-dir", str(nbdir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    md = out / "quick" / "summary.md"
    deadline = time.time() + 120
    while not (md.exists() and "00_fast" in md.read_text()) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(5)  # the slow notebook's kernel is running its cell now
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group, kernel included
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr and len(stderr.strip().splitlines()) <= 3, stderr
    text = md.read_text()
    assert "| 00_fast | ok |" in text
    assert "| 01_slow | interrupted |" in text


@pytest.mark.notebook
def test_rebuild_gan_makes_the_notebooks_train_their_own_prior(tmp_path, capsys):
    from meshinv_lite.pipeline import main

    nbdir = tmp_path / "nbs"
    _notebooks(nbdir, [("00_prior", "import json, pathlib\npathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
                                    "pathlib.Path(output_dir, 'metrics.json').write_text(json.dumps({'prior': str(prior)}))")])
    common = ["--output-root", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), "--notebook-dir", str(nbdir)]
    assert main(common) == 0
    metrics = tmp_path / "out" / "quick" / "00_prior" / "metrics.json"
    assert json.loads(metrics.read_text())["prior"] == "None"  # each notebook's default: the shipped prior
    assert main(common + ["--prior", "shipped"]) == 0
    assert json.loads(metrics.read_text())["prior"] == "shipped"
    assert main(common + ["--rebuild", "gan"]) == 0
    assert json.loads(metrics.read_text())["prior"] == "train"


def test_summary_lists_status_and_figures(tmp_path):
    runs = [NotebookRun("00_x", "ok", 1.5, "a.ipynb", {"iou": 0.9, "name": "n"}), NotebookRun("01_y", "failed", 0.2, "b.ipynb", {}, "cell 3: ValueError: boom")]
    (tmp_path / "06_evaluation").mkdir()
    (tmp_path / "06_evaluation" / "table.md").write_text("# Evaluation, profile `quick`\n\n| method | IoU |\n|---|---|\n| ours | 0.8 |\n")
    runs.append(NotebookRun("06_evaluation", "ok", 3.0, "c.ipynb", {"test_iou": 0.81234}))
    md = write_summary(runs, tmp_path, "quick").read_text()
    assert "| 00_x | ok | 1.5 |  |" in md and "- `iou`: 0.9" in md and "- `name`: n" in md
    assert "| 01_y | failed | 0.2 | cell 3: ValueError: boom |" in md
    assert "- `test_iou`: 0.8123" in md
    assert "## Evaluation, profile `quick`" in md and "| ours | 0.8 |" in md  # the evaluation table itself
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


def _fake_caches(tmp_path):
    root = tmp_path / "data" / "synthbirds_quick"
    for d in ("train/images", "pseudo_gt_noisy/train", "pseudo_gt_exact/train", "gan_noisy", "gan_noisy_no_image_d"):
        (root / d).mkdir(parents=True)
    (root / "meta.json").write_text("{}")
    (root / "gan_noisy" / "latest.pt").write_bytes(b"x")
    (tmp_path / "outputs" / "quick" / "06_evaluation").mkdir(parents=True)
    (tmp_path / "outputs" / "lite").mkdir(parents=True)
    return root


@pytest.mark.parametrize("stage, kept", [
    ("results", {"train", "meta.json", "pseudo_gt_noisy", "pseudo_gt_exact", "gan_noisy", "gan_noisy_no_image_d"}),
    ("gan", {"train", "meta.json", "pseudo_gt_noisy", "pseudo_gt_exact"}),
    ("pseudo_gt", {"train", "meta.json"}),
])
def test_rebuild_clears_a_stage_and_the_later_ones(tmp_path, stage, kept):
    from meshinv_lite.pipeline import clear_stages

    root = _fake_caches(tmp_path)
    removed = clear_stages(stage, "quick", tmp_path / "data", tmp_path / "outputs")
    assert {p.name for p in root.iterdir()} == kept
    assert not (tmp_path / "outputs" / "quick").exists() and (tmp_path / "outputs" / "lite").exists()
    assert tmp_path / "outputs" / "quick" in removed


def test_rebuild_data_removes_the_dataset_but_only_a_real_one(tmp_path):
    from meshinv_lite.pipeline import clear_stages

    root = _fake_caches(tmp_path)
    clear_stages("data", "quick", tmp_path / "data", tmp_path / "outputs")
    assert not root.exists() and (tmp_path / "data").exists()
    stranger = tmp_path / "data" / "synthbirds_quick"
    (stranger / "my_files").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a SynthBirds folder"):
        clear_stages("data", "quick", tmp_path / "data", tmp_path / "outputs")
    assert (stranger / "my_files").exists()
    with pytest.raises(ValueError, match="unknown stage"):
        clear_stages("everything", "quick", tmp_path / "data", tmp_path / "outputs")


@pytest.mark.notebook
def test_pipeline_passes_only_declared_parameters(tmp_path):
    import nbformat as nbf

    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = nbf.v4.new_notebook()
    params = nbf.v4.new_code_cell("profile = 'x'\noutput_dir = 'o'")
    params.metadata["tags"] = ["parameters"]
    check = "import json, pathlib\npathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n" \
            "pathlib.Path(output_dir, 'metrics.json').write_text(json.dumps({'has_data_dir': 'data_dir' in dir(), 'profile': profile}))"
    nb.cells = [params, nbf.v4.new_code_cell(check)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, nbdir / "00_p.ipynb")
    runs = run_pipeline("quick", tmp_path / "out", data_dir="somewhere", notebook_dir=nbdir)
    assert runs[0].status == "ok", runs[0].error
    assert runs[0].metrics == {"has_data_dir": False, "profile": "quick"}


@pytest.mark.notebook
def test_pipeline_runs_the_notebooks_for_cars(tmp_path):
    """``pipeline --category cars`` over 01, 02, 03, 05, 07 and 08 (04 and 06: their own tests): every notebook gets
    category='cars', reads SynthCars and writes under outputs/cars_quick/; 08 (birds only) is skipped with its reason;
    nothing of SynthBirds is built; bird-only cells skip; inversion uses the cars' own feature network."""
    from meshinv_lite.data.category import CARS
    from meshinv_lite.pipeline import main

    data, out = tmp_path / "data", tmp_path / "out"
    assert main(["--profile", "quick", "--category", "cars", "--data-dir", str(data), "--output-root", str(out),
                 "--threads", "1", "--only", "01", "02", "03", "05", "07", "08"]) == 0
    root = out / "cars_quick"
    assert not (out / "quick").exists()   # birds' outputs untouched
    runs = {r["name"]: r for r in json.loads((root / "summary.json").read_text())["notebooks"]}
    assert {n: r["status"] for n, r in runs.items()} == {
        "01_synthbirds_data": "ok", "02_pseudo_ground_truth": "ok", "03_gan_pretraining": "ok",
        "05_texture_transfer": "ok", "07_your_own_bird": "ok", "08_beyond_the_prior": "skipped"}
    assert "birds only" in runs["08_beyond_the_prior"]["error"] and not (root / "08_beyond_the_prior").exists()
    assert "skipped" in (root / "summary.md").read_text()
    m = {n[:2]: json.loads((root / n / "metrics.json").read_text()) for n, r in runs.items() if r["status"] == "ok"}
    assert all(v["category"] == "cars" for v in m.values()), {k: v.get("category") for k, v in m.items()}
    # the data: SynthCars only, in data/synthcars_quick
    meta = json.loads((data / "synthcars_quick" / "meta.json").read_text())
    assert meta["category"] == "cars" and meta["class_names"] == list(CARS.class_names)
    assert not (data / "synthbirds_quick").exists()
    # 01: the 8 body types; the bird-only exercises skipped, the generic one ran
    assert m["01"]["split_sizes"] == {"train": 48, "val": 16, "test": 16, "test_hard": 16, "test_unseen": 6}
    assert set(m["01"]["exercises"]) == {"camera_iou"} and m["01"]["gt_rerender_mask_iou"] > 0.99
    for png in ("species_grid.png", "cameras.png", "gt_rerender.png", "test_hard.png", "species_colors.png"):
        assert_picture(root / "01_synthbirds_data" / png)
    assert not (root / "01_synthbirds_data" / "articulation.png").exists()
    # 02: pseudo ground truth of the 48 training cars, checked against SynthCars' truth
    assert m["02"]["train_images"] == 48 and m["02"]["test_exact_iou"] > 0.9 and m["02"]["test_exact_chamfer_3d"] < 0.2
    assert (data / "synthcars_quick" / "pseudo_gt_noisy" / "train" / "meta.json").exists()
    # cars correct their cameras while fitting (Category.refine_cameras), the means and every image: the anchored demo
    # fit is the refined one, and the recorded settings say so (a notebook that forgot the category would not)
    assert m["02"]["demo_chamfer_cameras_refined"] == m["02"]["demo_chamfer_species_mean"]
    assert m["02"]["demo_chamfer_cameras_given"] != m["02"]["demo_chamfer_species_mean"]
    signature = json.loads((data / "synthcars_quick" / "pseudo_gt_noisy" / "train" / "signature.json").read_text())
    assert signature["config"]["fit"]["lr_camera"] > 0 and signature["config"]["mean_fit"]["lr_camera"] > 0
    for png in ("species_means.png", "back_projection.png", "pseudo_gt_vs_truth.png"):
        assert_picture(root / "02_pseudo_ground_truth" / png)
    # 03: a GAN of 8 classes trained on the cars' pseudo-GT, beside the shipped synthcars_lite
    assert m["03"]["checkpoint"].startswith(str(data / "synthcars_quick" / "gan_noisy"))
    from meshinv_lite.gan.checkpoint import checkpoint_config, read_checkpoint

    assert checkpoint_config(read_checkpoint(m["03"]["checkpoint"]), m["03"]["checkpoint"]).num_classes == 8
    for png in ("samples_trained.png", "samples_shipped.png", "losses.png"):
        assert_picture(root / "03_gan_pretraining" / png)
    # 05: the hard cases are extreme cars (no wings or tails)
    assert set(m["05"]["hard_indices"]) == {"extreme_1", "extreme_2"} and m["05"]["geometry_unchanged"] is True
    for png in ("transfer_grid.png", "transfer_grid_ground_truth.png", "inputs_and_textures.png"):
        assert_picture(root / "05_texture_transfer" / png)
    # 07: the car example (no image_path given), the grid search (the encoder is bird-only), the SynthCars prior
    truth = json.loads((Path(__file__).parents[1] / "notebooks" / "examples" / "car_truth.json").read_text())
    r07 = json.loads((root / "07_your_own_bird" / "result.json").read_text())
    assert r07["category"] == "cars" and r07["hypotheses_from"] == "grid"
    assert r07["photo"]["source"].endswith("car.png") and r07["prior"]["recipe"] == "synthcars_lite"
    assert m["07"]["species"] in CARS.class_names and m["07"]["truth_azimuth"] == pytest.approx(truth["azimuth"])
    assert not any(k.startswith("encoder_") for k in m["07"])   # the encoder's fast path skipped
    assert "SynthCars-trained" in m["07"]["feature_extractor"], m["07"]["feature_extractor"]
    for png in ("framing.png", "hypotheses_search.png", "species_scores.png", "hypotheses.png", "overlay.png"):
        assert_picture(root / "07_your_own_bird" / png)
