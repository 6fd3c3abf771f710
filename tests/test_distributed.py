"""Scale-out: torchrun with 2 CPU processes (gloo) against 1 process, at the quick profile."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from meshinv_lite.distributed import SINGLE, DistContext, init_distributed, launched_by_torchrun
from meshinv_lite.evaluation import CSV_NAME, read_rows, write_rows
from meshinv_lite.evaluation.store import _merge_parts
from meshinv_lite.io import read_json

REPO = Path(__file__).resolve().parent.parent


def _cli(args: list[str], nproc: int, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m meshinv_lite.cli ...`` (nproc 1) or the same under ``torchrun --nproc_per_node nproc``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    if nproc == 1:
        cmd = [sys.executable, "-m", "meshinv_lite.cli", *args, "--threads", "1"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               "-m", "meshinv_lite.cli", *args]  # --standalone: a free port of its own
    # its own process group, so a hung run is stopped with all of its ranks, not only the launcher
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} still running after {timeout} s:\n{out[-3000:]}\n{err[-5000:]}")
    p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p


def _rank_lines(out: str) -> dict[int, dict[str, str]]:
    """``[rank r/N] k=v k=v`` lines -> {r: {k: v}}."""
    lines = {}
    for line in out.splitlines():
        if line.startswith("[rank "):
            head, _, rest = line.partition("] ")
            rank = int(head[6:].split("/")[0])
            lines[rank] = dict(kv.split("=", 1) for kv in rest.split())
    return lines


# --------------------------------------------------------------------------------------------------
# The context itself
# --------------------------------------------------------------------------------------------------


def test_single_process_context_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert not launched_by_torchrun()
    ctx = init_distributed("cpu")
    assert ctx == SINGLE and ctx.is_main and not ctx.enabled
    assert ctx.all_gather_object({"a": 1}) == [{"a": 1}]
    assert ctx.broadcast_object(3) == 3
    assert ctx.mean_of({"x": 2.0}) == {"x": 2.0}
    ctx.barrier()


def test_shards_are_round_robin_and_cover_everything():
    items = list(range(11))
    shards = [DistContext(rank=r, world_size=3).shard(items) for r in range(3)]
    assert shards[0] == [0, 3, 6, 9] and shards[2] == [2, 5, 8]
    assert sorted(sum(shards, [])) == items


def test_batch_size_must_split_over_ranks():
    from meshinv_lite.gan import GANTrainer, PretrainConfig

    cfg = PretrainConfig.for_profile("quick", batch_size=9)
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        GANTrainer(cfg, data=None, dist=DistContext(rank=0, world_size=2))  # refused before the data is touched


def test_interrupted_sharded_rows_are_merged(tmp_path):
    write_rows(tmp_path / CSV_NAME, [{"name": "000000", "index": 0, "iou": 0.5}])
    write_rows(tmp_path / "per_image.part0.csv", [{"name": "000002", "index": 2, "iou": 0.7}])
    write_rows(tmp_path / "per_image.part1.csv", [{"name": "000001", "index": 1, "iou": 0.6},
                                                  {"name": "000000", "index": 0, "iou": 0.55}])
    _merge_parts(tmp_path)
    rows = read_rows(tmp_path / CSV_NAME)
    assert [r["name"] for r in rows] == ["000000", "000001", "000002"]
    assert rows[0]["iou"] == pytest.approx(0.55)  # a re-inverted image: the part file is newer
    assert not list(tmp_path.glob("per_image.part*.csv"))


# --------------------------------------------------------------------------------------------------
# torchrun, 2 gloo processes
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_root(tmp_path_factory):
    from meshinv_lite.data import build_synthbirds

    root = tmp_path_factory.mktemp("dist") / "synthbirds_quick"
    build_synthbirds(root, profile="quick", seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(quick_root):
    """Pseudo-GT + 4 GAN iterations under torchrun with 2 processes; returns the run's stdout."""
    p = _cli(["pretrain", "--profile", "quick", "--data-dir", str(quick_root), "--iterations", "4", "--quiet"],
             nproc=2, cwd=REPO)
    return p.stdout


@pytest.mark.slow
def test_torchrun_pretraining_trains_in_sync_and_checkpoints_once(quick_root, trained):
    from meshinv_lite.gan import gan_dir, load_generator, read_checkpoint

    ranks = _rank_lines(trained)
    assert sorted(ranks) == [0, 1]
    assert ranks[0]["checkpoints_written"] != "0" and ranks[1]["checkpoints_written"] == "0"
    assert ranks[0]["local_batch"] == ranks[1]["local_batch"] == "4"
    for net in ("G_ema", "D_uv", "D_img"):  # DDP kept the two copies of every network identical
        assert ranks[0][net] == ranks[1][net], net
    ckpt_dir = gan_dir(quick_root, "noisy")
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["latest.pt", "pretrain_run.json"]  # no stray temp files
    report = read_json(ckpt_dir / "pretrain_run.json")
    assert report["ranks_in_sync"] and report["num_processes"] == 2 and report["backend"] == "gloo"
    assert report["global_batch"] == 8 and report["iterations"] == 4
    state = read_checkpoint(ckpt_dir / "latest.pt")
    assert state["iteration"] == 4 and state["world_size"] == 2 and len(state["rank_rng"]) == 2
    G, cfg = load_generator(ckpt_dir / "latest.pt")
    with torch.no_grad():
        tex, deform = G(torch.randn(2, cfg.generator.latent_dim), torch.tensor([0, 1]))
    assert torch.isfinite(tex).all() and torch.isfinite(deform).all()


@pytest.mark.slow
def test_torchrun_pseudo_gt_matches_one_process(quick_root, trained, tmp_path):
    """Rank 1 made shard 1; one process remaking it gives the same maps."""
    from meshinv_lite.pseudo_gt import PseudoGTConfig, build_pseudo_gt, pseudo_gt_dir

    src = pseudo_gt_dir(quick_root, "train", "noisy")
    meta = read_json(src / "meta.json")
    assert meta["num_shards"] >= 2 and meta["mean_iou"] > 0.85
    copy = tmp_path / quick_root.name
    shutil.copytree(quick_root, copy, ignore=shutil.ignore_patterns("gan_*"))
    dst = pseudo_gt_dir(copy, "train", "noisy")
    (dst / "shard_00001.npz").unlink()
    (dst / "meta.json").unlink()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = build_pseudo_gt(copy, "train", PseudoGTConfig.for_profile("quick", camera="noisy"), progress=False)
    finally:
        torch.set_num_threads(before)
    assert r["status"] == "resumed"
    with np.load(src / "shard_00001.npz") as a, np.load(dst / "shard_00001.npz") as b:
        np.testing.assert_array_equal(a["index"], b["index"])
        np.testing.assert_allclose(a["deformation"], b["deformation"], atol=1e-4)
        assert np.abs(a["texture"].astype(int) - b["texture"].astype(int)).max() <= 1
        np.testing.assert_allclose(a["iou"], b["iou"], atol=1e-4)


@pytest.mark.slow
def test_torchrun_evaluation_matches_one_process(quick_root, trained, tmp_path):
    args = ["evaluate", "--profile", "quick", "--data-dir", str(quick_root), "--limit", "4", "--batch-size", "2",
            "--views", "1", "--quiet"]
    one = _cli(args + ["--out-dir", str(tmp_path / "one")], nproc=1, cwd=REPO)
    two = _cli(args + ["--out-dir", str(tmp_path / "two")], nproc=2, cwd=REPO)
    assert sorted(_rank_lines(two.stdout)) == [0, 1]
    assert _rank_lines(one.stdout)[0]["iou"] == _rank_lines(two.stdout)[1]["iou"]  # every rank gets the result
    rows1, rows2 = read_rows(tmp_path / "one" / CSV_NAME), read_rows(tmp_path / "two" / CSV_NAME)
    assert [r["name"] for r in rows1] == [r["name"] for r in rows2] and len(rows1) == 4
    for a, b in zip(rows1, rows2):
        for k in ("iou", "psnr_novel", "chamfer_3d", "tex_err_unseen"):
            assert a[k] == pytest.approx(b[k], abs=1e-4), k
    assert not list((tmp_path / "two").glob("per_image.part*.csv"))
    m1, m2 = read_json(tmp_path / "one" / "metrics.json"), read_json(tmp_path / "two" / "metrics.json")
    assert m2["num_processes"] == 2 and m2["num_images"] == 4
    fd = next(k for k in m1 if k in ("fid_1", "fd_fallback_1"))
    assert m1[fd] == pytest.approx(m2[fd], rel=1e-3, abs=1e-6)
    assert m1["iou"] == pytest.approx(m2["iou"], abs=1e-5)
