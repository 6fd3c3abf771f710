"""The parameters cell check every notebook runs first, and the device check of the entry points."""
import pytest

from meshinv_lite.config import check_device
from meshinv_lite.params import check_parameters


@pytest.mark.parametrize("values, message", [
    ({"seed": "abc"}, "parameter 'seed' must be an integer >= 0, got 'abc' (str)"),
    ({"seed": -1}, "parameter 'seed' must be an integer >= 0"),
    ({"seed": True}, "parameter 'seed'"),
    ({"num_images": "two"}, "parameter 'num_images' must be None or an integer >= 1, got 'two'"),
    ({"num_images": 0}, "parameter 'num_images'"),
    ({"profile": "fast"}, "parameter 'profile' must be one of 'quick', 'lite', 'paper', got 'fast'"),
    ({"camera": "sfm"}, "parameter 'camera' must be one of 'noisy', 'exact'"),
    ({"prior": "pretrained"}, "parameter 'prior' must be one of None, 'shipped', 'train'"),
    ({"interactive": "yes"}, "parameter 'interactive' must be None, True or False"),
    ({"device": "cdua"}, "parameter 'device': unknown device 'cdua'; use one of: cpu"),
    ({"data_dir": 3}, "parameter 'data_dir' must be a folder or file path"),
    ({"category": "dogs"}, "parameter 'category' must be one of 'birds', 'cars', got 'dogs' (str)"),
    ({"category": None}, "parameter 'category' must be one of 'birds', 'cars', got None"),
    ({"weights": 3}, "parameter 'weights' must be None or a folder or file path"),
    ({"dataset": ""}, "parameter 'dataset' must be None or a folder or file path"),
])
def test_wrong_parameters_are_named(values, message):
    with pytest.raises(ValueError) as e:
        check_parameters({"profile": "quick", "seed": 0, **values})
    assert message in str(e.value)


def test_good_parameters_pass_and_unknown_names_are_left_alone():
    got = check_parameters({"profile": "lite", "seed": 3, "num_images": None, "prior": "train", "device": "cpu",
                            "data_dir": "data", "In": [], "torch": object()})
    from meshinv_lite.paths import resolve

    assert got == {"profile": "lite", "seed": 3, "num_images": None, "prior": "train", "device": "cpu",
                   "data_dir": resolve("data")}


def test_device_check_names_what_is_available():
    import torch

    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'cdua'"):
        check_device("cdua")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' was asked for.*use one of: cpu"):
            check_device("cuda")


def test_prepare_prior_checks_the_device_first(tmp_path):
    from meshinv_lite.gan import prepare_prior

    with pytest.raises(ValueError, match="unknown device"):
        prepare_prior(tmp_path, "quick", device="cdua")


def test_cli_refuses_a_bad_device_with_its_usage(capsys):
    from meshinv_lite.cli import main

    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--device", "cdua"])
    assert e.value.code == 2 and "unknown device 'cdua'" in capsys.readouterr().err


@pytest.mark.notebook
def test_a_notebook_names_its_wrong_parameter(run_notebook):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as e:
        run_notebook("00_meshes_cameras_rendering", seed="abc")
    assert "parameter 'seed' must be an integer" in str(e.value)
    assert e.value.exec_count == 3  # 1: parameters, 2: papermill's injected ones, 3: the first code cell, before any work


@pytest.mark.notebook
def test_a_notebook_refuses_an_unknown_category_naming_the_choices(run_notebook, tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as e:
        run_notebook("01_synthbirds_data", category="dogs", data_dir=str(tmp_path / "data"))
    assert "parameter 'category' must be one of 'birds', 'cars', got 'dogs'" in str(e.value)
    assert not (tmp_path / "data").exists()   # refused before any dataset is built


def test_category_parameter_and_dataset_folder_of_another_category(tmp_path):
    """category='cars' is checked and recorded; a SynthBirds folder given with category='cars' is refused (never read
    silently as cars), while the data root resolves to synthcars_<profile>."""
    import json

    from meshinv_lite.data.synthbirds import synthbirds_dir
    from meshinv_lite.notebook import start

    assert check_parameters({"category": "cars"})["category"] == "cars"
    run = start({"profile": "quick", "seed": 0, "threads": 1, "category": "cars", "output_dir": str(tmp_path / "o")})
    assert run.category.name == "cars" and run.metrics["category"] == "cars" and run.category.word == "car"
    birds_run = start({"profile": "quick", "seed": 0, "threads": 1, "output_dir": str(tmp_path / "o2")})
    assert birds_run.category.name == "birds" and "category" not in birds_run.metrics   # no parameter, nothing recorded
    assert synthbirds_dir(tmp_path, "quick", "cars") == tmp_path / "synthcars_quick"
    birds = tmp_path / "synthbirds_quick"
    birds.mkdir()
    (birds / "meta.json").write_text(json.dumps({"generator": "synthbirds"}))   # an older SynthBirds: no category key
    assert synthbirds_dir(birds, "quick") == birds and synthbirds_dir(birds, "quick", "birds") == birds
    with pytest.raises(ValueError, match="holds a dataset of category 'birds', not 'cars'"):
        synthbirds_dir(birds, "quick", "cars")


def test_relative_paths_mean_the_project_roots_folders(tmp_path, monkeypatch):
    from meshinv_lite.paths import project_root, resolve

    monkeypatch.delenv("MESHINV_ROOT", raising=False)
    repo = project_root()
    assert (repo / "pyproject.toml").exists() and (repo / "notebooks").is_dir()
    monkeypatch.chdir(repo / "notebooks")  # where JupyterLab starts a notebook's kernel
    got = check_parameters({"data_dir": "data", "output_dir": "outputs/quick/04", "fid_weights": None}, verbose=False)
    assert got["data_dir"] == repo / "data" and got["output_dir"] == repo / "outputs" / "quick" / "04"
    assert got["fid_weights"] is None
    assert resolve(tmp_path / "x") == tmp_path / "x"  # absolute paths are kept
    monkeypatch.setenv("MESHINV_ROOT", str(tmp_path))
    assert resolve("data") == tmp_path / "data"


def test_set_threads_default_and_override(monkeypatch):
    import os

    import torch

    from meshinv_lite.config import set_threads

    import meshinv_lite.config as config

    real_probe = config.idle_cores
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        monkeypatch.setattr(config, "idle_cores", lambda: 0.7)  # something else holds a core
        torch.set_num_threads(2)
        assert set_threads(None) == 1  # a small, busy machine: one thread
        assert config.default_workers() == 0
        monkeypatch.setattr(config, "idle_cores", lambda: 1.9)  # both cores idle
        assert set_threads(None) == 2
        assert config.default_workers() == 2
        monkeypatch.setattr(config, "idle_cores", lambda: None)  # no /proc/stat: the cautious choice
        assert set_threads(None) == 1
        assert set_threads(2) == 2  # an explicit choice wins
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the environment's choice is left alone
        monkeypatch.setattr(config, "idle_cores", lambda: 1.9)
        torch.set_num_threads(1)
        assert set_threads(None) == 1 and config.default_workers() == 0
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(os, "cpu_count", lambda: 16)
        torch.set_num_threads(3)
        assert set_threads(None) == 3  # a big machine: torch's setting is left alone
        with pytest.raises(ValueError, match="threads must be >= 1"):
            set_threads(0)
        real = real_probe(0.05)  # the real probe: a number of cores between 0 and the machine's
        assert real is None or 0.0 <= real <= (os.cpu_count() or 1) + 1e-6
    finally:
        torch.set_num_threads(before)


def test_a_module_named_like_a_parameter_is_not_checked():
    """Notebook 00 does ``from meshinv_lite import camera`` and has no ``camera`` parameter: its globals()
    must pass, while a wrong *value* of the same name is still refused."""
    from meshinv_lite.render import camera

    got = check_parameters({"profile": "quick", "camera": camera, "seed": 1}, verbose=False)
    assert "camera" not in got and got["seed"] == 1
    with pytest.raises(ValueError, match="parameter 'camera'"):
        check_parameters({"camera": "blurry"}, verbose=False)
