"""Atomic writes: what a shared data folder needs (issue 16.1) and what an interruption must not leave."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from meshinv_lite.io import (atomic_path, atomic_savez, atomic_torch_save, atomic_write_bytes, write_json, write_metrics)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_everything(folder):
    """Every atomic writer once; returns the files written."""
    from meshinv_lite.export import export_glb, export_obj
    from meshinv_lite.render import make_uv_sphere

    t = make_uv_sphere(8, 8)
    tex = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    files = [folder / "a.bin", folder / "ckpt.pt", folder / "shard.npz", folder / "meta.json"]
    atomic_write_bytes(files[0], b"x")
    atomic_torch_save({"w": torch.ones(2)}, files[1])
    atomic_savez(files[2], a=np.arange(3))
    write_json(files[3], {"a": 1})
    files.append(write_metrics(folder, {"iou": 0.5}))
    files += export_obj(folder / "bird", t.vertices, t, tex)
    files.append(export_glb(folder / "bird", t.vertices, t, tex))
    return files


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        files = _write_everything(tmp_path)
    finally:
        os.umask(old)
    assert len(files) == 9
    modes = {p.name: oct(_mode(p)) for p in files}
    assert set(modes.values()) == {oct(expected)}, modes


def test_an_interrupted_write_leaves_neither_a_partial_file_nor_a_temporary(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
