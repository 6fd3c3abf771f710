"""Issue 35, hardening round two: refuse before working, write output folders whole, never run code from a
checkpoint, lock shared data. Each test reproduces one finding of the sweep (it failed before the fix)."""
from __future__ import annotations

import json
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO

EXAMPLE = REPO / "notebooks" / "examples"
PHOTO, MASK = EXAMPLE / "bird.png", EXAMPLE / "bird_mask.png"


def _err_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _no_traceback(captured) -> None:
    assert "Traceback" not in captured.err and "Traceback" not in captured.out, captured.err


def _no_compute(monkeypatch):
    """Make the inversion fail loudly if a refused command starts it anyway."""
    import meshinv_lite.photo.reconstruct as rp

    def boom(*a, **kw):
        raise AssertionError("the compute started before the refusal")

    monkeypatch.setattr(rp, "reconstruct_photo", boom)


def _reconstruct(out, *extra):
    from meshinv_lite.cli import main

    return main(["reconstruct", str(PHOTO), "--mask", str(MASK), "--out", str(out), "--species", "robin",
                 "--azimuth", "170", "--elevation", "20", "--quiet", "--threads", "1", *extra])


# --------------------------------------------------------------------------------------------------
# 1. --out checked before the compute
# --------------------------------------------------------------------------------------------------


def test_out_that_is_a_file_is_refused_before_the_compute(tmp_path, monkeypatch, capsys):
    _no_compute(monkeypatch)
    target = tmp_path / "afile"
    target.write_text("mine")
    assert _reconstruct(target) == 2
    cap = capsys.readouterr()
    _no_traceback(cap)
    (line,) = _err_lines(cap.err)
    assert "--out" in line and str(target) in line and "folder" in line
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_out_that_cannot_be_written_is_refused_before_the_compute(tmp_path, monkeypatch, capsys):
    _no_compute(monkeypatch)
    (tmp_path / "afile").write_text("x")
    assert _reconstruct(tmp_path / "afile" / "sub") == 2  # the parent is a file: nothing can be made there
    cap = capsys.readouterr()
    _no_traceback(cap)
    (line,) = _err_lines(cap.err)
    assert "--out" in line and "afile" in line
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert _reconstruct(ro / "out") == 2
            (line,) = _err_lines(capsys.readouterr().err)
            assert "--out" in line and "write" in line
        finally:
            ro.chmod(0o700)


def test_out_holding_other_files_is_refused_before_the_compute(tmp_path, monkeypatch, capsys):
    _no_compute(monkeypatch)
    (tmp_path / "thesis.tex").write_text("years of work")
    assert _reconstruct(tmp_path) == 2
    (line,) = _err_lines(capsys.readouterr().err)
    assert "--out" in line and "thesis.tex" in line
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


# --------------------------------------------------------------------------------------------------
# 2. the output folder is written whole or not at all; Ctrl-C is one line
# --------------------------------------------------------------------------------------------------


class _Fake:
    """Stands in for a PhotoReconstruction: the CLI only hands it to write_outputs and reads its summary."""

    reconstruction = template = None

    def __init__(self, tag):
        self.tag = tag

    def summary(self):
        return {"class": {"name": "robin", "id": 4}, "camera": {"azimuth": 170.0, "elevation": 20.0}, "iou": 0.9,
                "phase": "latent", "timings_s": {"total": 1.0}}


def _fake_pipeline(monkeypatch, tag: str, interrupt_after: int | None = None):
    """reconstruct_photo returns at once; write_outputs writes the files of bird ``tag``, result.json last, and
    raises KeyboardInterrupt after ``interrupt_after`` files (Ctrl-C during the write)."""
    import meshinv_lite.photo.reconstruct as rp

    def fake_write(result, out_dir, **kw):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        for k, name in enumerate(("reconstruction.obj", "reconstruction.glb", "reconstruction.png", "overlay.png",
                                  "result.json")):
            if interrupt_after is not None and k == interrupt_after:
                raise KeyboardInterrupt
            (out / name).write_text(tag)
            files[name] = str(out / name)
        return {"obj": files["reconstruction.obj"], "glb": files["reconstruction.glb"],
                "png": files["reconstruction.png"], "json": files["result.json"]}

    monkeypatch.setattr(rp, "reconstruct_photo", lambda *a, **kw: _Fake(tag))
    monkeypatch.setattr(rp, "write_outputs", fake_write)


def _contents(folder: Path) -> dict:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_ctrl_c_while_writing_over_an_earlier_result_leaves_it_whole(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    _fake_pipeline(monkeypatch, "old bird")
    assert _reconstruct(out) == 0
    before = _contents(out)
    assert set(before.values()) == {"old bird"} and "result.json" in before
    _fake_pipeline(monkeypatch, "new bird", interrupt_after=3)  # OBJ, GLB and texture written, then Ctrl-C
    capsys.readouterr()
    assert _reconstruct(out) == 130
    cap = capsys.readouterr()
    _no_traceback(cap)
    assert len(cap.err.strip().splitlines()) == 1 and "interrupted" in cap.err
    assert _contents(out) == before  # the earlier result, whole: no new bird beside the old result.json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary sibling left behind
    # an uninterrupted run replaces the folder as a whole
    _fake_pipeline(monkeypatch, "new bird")
    assert _reconstruct(out) == 0
    assert set(_contents(out).values()) == {"new bird"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_ctrl_c_into_a_new_folder_leaves_nothing(tmp_path, monkeypatch, capsys):
    _fake_pipeline(monkeypatch, "bird", interrupt_after=2)
    assert _reconstruct(tmp_path / "new") == 130
    _no_traceback(capsys.readouterr())
    assert not any(tmp_path.iterdir())  # neither a folder without result.json nor a temporary


def test_ctrl_c_during_the_compute_is_one_line(tmp_path, monkeypatch, capsys):
    import meshinv_lite.photo.reconstruct as rp

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(rp, "reconstruct_photo", interrupted)
    assert _reconstruct(tmp_path / "out") == 130
    cap = capsys.readouterr()
    _no_traceback(cap)
    assert len(cap.err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_a_real_reconstruction_replaces_an_earlier_result_whole(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("reconstruction.obj", "views.png", "result.json"):  # an earlier run's files (older versions wrote views.png)
        (out / name).write_text("old")
    (out / "result.json").write_text(json.dumps({"files": {"obj": str(out / "reconstruction.obj"),
                                                           "views": str(out / "views.png")}}))
    assert _reconstruct(out) == 0
    r = json.loads((out / "result.json").read_text())
    assert r["class"]["name"] == "robin" and (out / "reconstruction.obj").read_text() != "old"
    assert not (out / "views.png").exists()  # the folder is the new run's, whole: nothing of the old one stays
    assert {Path(f).parent for f in r["files"].values()} == {out}  # paths name the final folder, not a temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_outputs_removes_an_old_result_json_first(tmp_path, monkeypatch):
    """The library writer (notebook 07 writes into a folder shared with its figures) cannot swap folders; it
    removes an earlier result.json before anything else, so a folder with result.json is never mixed."""
    import meshinv_lite.export as export
    from meshinv_lite.photo.reconstruct import write_outputs

    (tmp_path / "result.json").write_text("{}")

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_reconstruction", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(_Fake("x"), tmp_path)
    assert not (tmp_path / "result.json").exists()


# --------------------------------------------------------------------------------------------------
# 3. evaluate / reconstruct arguments refused before any work
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, flag", [
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-2"], "--batch-size"),
    (["--limit", "0"], "--limit"),
    (["--limit", "-1"], "--limit"),
    (["--views", "-3"], "--views"),
    (["--views", "1,abc"], "--views"),
    (["--threads", "0"], "--threads"),
])
def test_evaluate_arguments_are_refused_by_name(tmp_path, capsys, argv, flag):
    from meshinv_lite.cli import main

    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--data-dir", str(tmp_path), "--quiet", *argv])
    assert e.value.code == 2
    cap = capsys.readouterr()
    _no_traceback(cap)
    (line,) = [ln for ln in cap.err.splitlines() if "error:" in ln]
    assert flag in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, flag", [
    (["--threads", "0"], "--threads"),
    (["--azimuth", "nan", "--elevation", "20"], "--azimuth"),
    (["--azimuth", "30", "--elevation", "inf"], "--elevation"),
])
def test_reconstruct_arguments_are_refused_by_name(tmp_path, monkeypatch, capsys, argv, flag):
    from meshinv_lite.cli import main

    _no_compute(monkeypatch)
    with pytest.raises(SystemExit) as e:
        main(["reconstruct", str(PHOTO), "--mask", str(MASK), "--out", str(tmp_path / "o"), "--quiet", *argv])
    assert e.value.code == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert flag in line


def test_reconstruct_photo_names_a_non_finite_view():
    from meshinv_lite.photo import reconstruct_photo

    with pytest.raises(ValueError, match="azimuth.*finite"):
        reconstruct_photo(PHOTO, MASK, azimuth=float("nan"), elevation=20.0, progress=False)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A SynthBirds root with one 4-image test split, beside the folders a real root also holds."""
    from meshinv_lite.data import SynthBirdsConfig, build_synthbirds

    root = tmp_path_factory.mktemp("tiny") / "synthbirds_quick"
    cfg = SynthBirdsConfig.for_profile("quick", image_size=32, texture_size=16, sizes={"test": 4}, chunk=4)
    build_synthbirds(root, cfg, splits=("test",), progress=False, workers=0)
    for d in ("gan_noisy", "pseudo_gt_noisy", "pseudo_gt_exact"):
        (root / d).mkdir()
    return root


def test_unknown_split_lists_only_splits_and_is_refused_before_loading(tiny_root, tmp_path, monkeypatch, capsys):
    import meshinv_lite.gan.checkpoint as ck
    from meshinv_lite.cli import main

    monkeypatch.setattr(ck, "load_generator", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("loaded")))
    ckpt = tmp_path / "latest.pt"
    ckpt.write_bytes(b"not used")
    rc = main(["evaluate", "--data-dir", str(tiny_root), "--split", "nosuch", "--checkpoint", str(ckpt),
               "--out-dir", str(tmp_path / "ev"), "--quiet", "--threads", "1"])
    assert rc == 2
    cap = capsys.readouterr()
    _no_traceback(cap)
    (line,) = _err_lines(cap.err)
    assert "nosuch" in line and "'test'" in line and "gan_noisy" not in line and "pseudo_gt" not in line
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize("kw, message", [
    ({"limit": 0}, "limit"), ({"limit": -1}, "limit"), ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -2}, "batch_size"), ({"views": (-3,)}, "views"),
])
def test_evaluate_split_refuses_before_inverting(tiny_root, tmp_path, monkeypatch, kw, message):
    import meshinv_lite.inversion.search as inv
    from meshinv_lite.evaluation import evaluate_split
    from meshinv_lite.gan import Generator, GeneratorConfig
    from meshinv_lite.inversion import InversionConfig

    monkeypatch.setattr(inv, "invert_batch", lambda *a, **k: (_ for _ in ()).throw(AssertionError("inverted")))
    G = Generator(GeneratorConfig.for_profile("quick", num_classes=12)).eval()
    with pytest.raises(ValueError, match=message):
        evaluate_split(G, tiny_root, "test", InversionConfig.for_profile("quick"), tmp_path / "ev", progress=False, **kw)
    assert not (tmp_path / "ev" / "metrics.json").exists()


# --------------------------------------------------------------------------------------------------
# 4. pipeline arguments refused before any notebook runs
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, flag", [
    (["--train-images", "0"], "--train-images"),
    (["--threads", "0"], "--threads"),
    (["--seed", "-1"], "--seed"),
])
def test_pipeline_refuses_bad_numbers_before_running(tmp_path, capsys, argv, flag):
    from meshinv_lite.pipeline import main

    with pytest.raises(SystemExit) as e:
        main(["--output-root", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), *argv])
    assert e.value.code == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert flag in line
    assert not any(tmp_path.iterdir())  # nothing ran, nothing was made


# --------------------------------------------------------------------------------------------------
# 5. damaged pseudo-GT shards and meta.json files are named
# --------------------------------------------------------------------------------------------------


def _pseudo_gt(root: Path) -> Path:
    from meshinv_lite.pseudo_gt.config import pseudo_gt_dir

    out = pseudo_gt_dir(root, "train", "noisy")
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    n = 4
    np.savez_compressed(out / "shard_00000.npz", index=np.arange(n), class_id=np.zeros(n, np.int64),
                        camera=rng.random((n, 7), dtype=np.float32),
                        deformation=rng.random((n, 3, 16, 16), dtype=np.float32),
                        texture=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                        visibility=rng.random((n, 1, 32, 32)) > 0.5, iou=rng.random(n, dtype=np.float32))
    (out / "meta.json").write_text(json.dumps({"num_images": n, "num_shards": 1, "mean_iou": 0.5}))
    return out


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7, 0.9])
def test_a_flipped_byte_in_a_shard_names_the_shard(tmp_path, where):
    from meshinv_lite.pseudo_gt import PseudoGTDataset

    out = _pseudo_gt(tmp_path)
    PseudoGTDataset(tmp_path)  # reads while whole
    shard = out / "shard_00000.npz"
    data = bytearray(shard.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"shard_00000\.npz.*(damaged|corrupt).*rebuild"):
        PseudoGTDataset(tmp_path)


def test_a_meta_json_with_flipped_bytes_names_the_file(tmp_path, tiny_root):
    from meshinv_lite.data.dataset import read_split
    from meshinv_lite.io import read_json
    from meshinv_lite.pseudo_gt import PseudoGTDataset

    out = _pseudo_gt(tmp_path)
    raw = bytearray((out / "meta.json").read_bytes())
    raw[3] = 0xFF
    raw[4] = 0xFE
    (out / "meta.json").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"meta\.json"):
        read_json(out / "meta.json")
    with pytest.raises(ValueError, match=r"pseudo_gt_noisy/train/meta\.json"):
        PseudoGTDataset(tmp_path)
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(tiny_root / "test", copy / "test")
    (copy / "test" / "meta.json").write_bytes(b"\xff\xfe{\"split\": 1}")
    with pytest.raises(ValueError, match=r"test/meta\.json"):
        read_split(copy, "test")


# --------------------------------------------------------------------------------------------------
# 6. no checkpoint a user hands in can run code
# --------------------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker``: what a crafted checkpoint could do (os.system, ...)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def crafted(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "crafted.pt"
    torch.save({"format": "meshinv-lite-gan", "version": 1, "payload": _Payload(marker)}, path)
    assert not marker.exists()
    return path, marker


def test_a_crafted_gan_checkpoint_runs_nothing(crafted):
    from meshinv_lite.gan import CheckpointError, load_generator

    path, marker = crafted
    with pytest.raises(CheckpointError, match=str(path)):
        load_generator(path)
    assert not marker.exists()


def test_a_crafted_prior_file_runs_nothing(crafted):
    from meshinv_lite.gan import PriorError, load_shipped_prior

    path, marker = crafted
    with pytest.raises(PriorError, match=str(path)):
        load_shipped_prior(path=path)
    assert not marker.exists()


def test_a_crafted_checkpoint_given_to_evaluate_runs_nothing(crafted, tiny_root, tmp_path, capsys):
    from meshinv_lite.cli import main

    path, marker = crafted
    rc = main(["evaluate", "--data-dir", str(tiny_root), "--checkpoint", str(path), "--out-dir", str(tmp_path / "ev"),
               "--quiet", "--threads", "1"])
    assert rc == 2 and not marker.exists()
    cap = capsys.readouterr()
    _no_traceback(cap)
    (line,) = _err_lines(cap.err)
    assert str(path) in line


def test_genuine_checkpoints_still_load_with_weights_only(tmp_path):
    """The trainer's checkpoints (optimizer states, RNG states, history) and the shipped prior need no allow-list."""
    from meshinv_lite.gan import GANTrainer, PretrainConfig, load_generator, load_shipped_prior
    from meshinv_lite.gan.checkpoint import read_checkpoint

    from test_pretrain import tiny_data

    load_shipped_prior()
    trainer = GANTrainer(PretrainConfig.for_profile("quick", batch_size=2), tiny_data(4), checkpoint_dir=tmp_path)
    trainer.step()  # optimizer states with their step counters
    trainer.save_checkpoint(tmp_path / "latest.pt")
    torch.load(tmp_path / "latest.pt", weights_only=True)
    read_checkpoint(tmp_path / "latest.pt")
    load_generator(tmp_path / "latest.pt")


# --------------------------------------------------------------------------------------------------
# 7. two builds of one split at once
# --------------------------------------------------------------------------------------------------


def test_two_builds_of_one_split_at_once_wait_for_each_other(tmp_path, monkeypatch, capsys):
    import meshinv_lite.data.synthbirds as sb
    from meshinv_lite.data import SynthBirdsConfig, build_synthbirds
    from meshinv_lite.data.dataset import read_split

    cfg = SynthBirdsConfig.for_profile("quick", image_size=32, texture_size=16, sizes={"train": 6}, chunk=2)
    real = sb.make_chunk

    def slow_chunk(*a, **kw):
        time.sleep(0.3)  # both builders are inside the split at once
        return real(*a, **kw)

    monkeypatch.setattr(sb, "make_chunk", slow_chunk)
    start = threading.Barrier(2)
    results, errors = [], []

    def build():
        start.wait()
        try:
            results.append(build_synthbirds(tmp_path / "sb", cfg, splits=("train",), progress=False, workers=0))
        except Exception as e:  # noqa: BLE001 - the test reports it
            errors.append(e)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(r["train"]["status"] for r in results) == ["built", "exists"]
    assert len(read_split(tmp_path / "sb", "train").names) == 6
    assert "waiting" in capsys.readouterr().out


def test_a_pseudo_gt_build_waits_for_another_builder_of_its_split(tmp_path, monkeypatch, capsys):
    import meshinv_lite.pseudo_gt.build as build
    from meshinv_lite.io import file_lock

    (tmp_path / "root").mkdir()
    seen = []
    monkeypatch.setattr(build, "_build", lambda *a, **kw: seen.append(time.perf_counter()) or {"status": "exists"})
    lock = tmp_path / "root" / "pseudo_gt_noisy" / ".lock-train"
    released = []
    with file_lock(lock, "a test"):
        t = threading.Thread(target=build.build_pseudo_gt, args=(tmp_path / "root", "train"), kwargs={"progress": False})
        t.start()
        time.sleep(0.5)
        assert not seen  # still waiting for the holder
        released.append(time.perf_counter())
    t.join(10)
    assert seen and seen[0] >= released[0]
    assert "waiting for another process that is building the pseudo ground truth of 'train'" in capsys.readouterr().out


def test_a_staged_folder_replaces_the_target_of_a_link(tmp_path):
    from meshinv_lite.io import StagedDir

    real = tmp_path / "real"
    real.mkdir()
    (real / "result.json").write_text("old")
    (tmp_path / "link").symlink_to(real)
    with StagedDir(tmp_path / "link") as tmp:
        (tmp / "result.json").write_text("new")
    assert (tmp_path / "link").is_symlink() and (real / "result.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


# --------------------------------------------------------------------------------------------------
# weak: huge, animated, opaque-alpha photos; stray blobs in a mask
# --------------------------------------------------------------------------------------------------


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _box_mask(h, w, box):
    m = np.zeros((h, w), np.uint8)
    t, l, b, r = box
    m[t:b, l:r] = 255
    return m


def test_a_huge_photo_and_its_mask_are_shrunk_together_without_pil_warnings(tmp_path, monkeypatch):
    from meshinv_lite.photo import load_photo

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # a 10000 px photo, scaled down
    Image.fromarray(_rgb(1000, 1200)).save(tmp_path / "big.png")
    Image.fromarray(_box_mask(1000, 1200, (300, 300, 700, 900))).save(tmp_path / "mask.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither PIL's DecompressionBombWarning nor "differ in size"
        p = load_photo(tmp_path / "big.png", tmp_path / "mask.png", max_side=300)
    assert p.size == (250, 300) and p.mask.shape == (1, 250, 300)
    assert any("downscaled" in n for n in p.notes)
    rows = torch.nonzero(p.mask[0].any(1)).squeeze(1)
    assert abs(int(rows[0]) - 75) <= 1 and abs(int(rows[-1]) - 174) <= 1


def test_an_animated_gif_says_it_uses_the_first_frame(tmp_path):
    from meshinv_lite.photo import load_photo

    frames = [Image.fromarray(_rgb(60, 80, seed=s)) for s in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(_box_mask(60, 80, (15, 20, 45, 60))).save(tmp_path / "mask.png")
    with pytest.warns(UserWarning, match="3 frames.*first"):
        p = load_photo(tmp_path / "anim.gif", tmp_path / "mask.png")
    assert any("first" in n for n in p.notes)


def test_an_opaque_alpha_channel_is_called_opaque_not_missing(tmp_path):
    from meshinv_lite.photo import PhotoError, load_photo

    rgba = np.dstack([_rgb(60, 80), np.full((60, 80), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    with pytest.raises(PhotoError, match="alpha channel of .*opaque.png is fully opaque.*--mask") as e:
        load_photo(tmp_path / "opaque.png")
    assert "has no alpha channel" not in str(e.value)


def test_a_stray_blob_in_a_corner_is_dropped_with_a_warning(tmp_path):
    from meshinv_lite.photo import load_photo

    Image.fromarray(_rgb(120, 160)).save(tmp_path / "photo.png")
    m = _box_mask(120, 160, (40, 50, 90, 120))
    m[2:6, 150:156] = 255  # a speck of the background left in the mask, far from the bird
    Image.fromarray(m).save(tmp_path / "mask.png")
    with pytest.warns(UserWarning, match="separate regions.*kept the largest"):
        p = load_photo(tmp_path / "photo.png", tmp_path / "mask.png")
    assert float(p.mask.sum()) == 50 * 70 and any("region" in n for n in p.notes)


def test_a_bird_split_by_a_twig_keeps_both_parts(tmp_path):
    from meshinv_lite.photo import load_photo

    Image.fromarray(_rgb(120, 160)).save(tmp_path / "photo.png")
    m = _box_mask(120, 160, (40, 50, 90, 120))
    m[:, 84:88] = 0  # a twig across the bird: two parts, side by side
    Image.fromarray(m).save(tmp_path / "mask.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = load_photo(tmp_path / "photo.png", tmp_path / "mask.png")
    assert float(p.mask.sum()) == 50 * 66
