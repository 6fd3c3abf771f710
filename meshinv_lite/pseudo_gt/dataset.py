"""Pseudo ground truth as a torch ``Dataset``: the fitted maps of each training image, read from the shards."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .config import pseudo_gt_dir

#: The arrays every shard holds (see :data:`meshinv_lite.pseudo_gt.build.PSEUDO_GT_FORMAT`).
SHARD_KEYS = ("index", "class_id", "camera", "deformation", "texture", "visibility", "iou")


def _meta_counts(meta, meta_path: Path, rebuild: str) -> tuple[int, int]:
    """``(num_shards, num_images)`` of a pseudo-GT ``meta.json``; ``ValueError`` naming it when they are missing."""
    try:
        counts = int(meta["num_shards"]), int(meta["num_images"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{meta_path} lacks num_shards / num_images (the file is damaged); {rebuild}") from None
    if min(counts) < 0:
        raise ValueError(f"{meta_path} has negative counts {counts} (the file is damaged); {rebuild}")
    return counts


def _read_shard(shard: Path, rebuild: str) -> dict[str, np.ndarray]:
    """Every array of one shard, decompressed now; a missing, truncated or bit-flipped shard raises ``ValueError``
    naming it (a flipped byte surfaces as a bad CRC or a zlib error while decompressing)."""
    if not shard.exists():
        raise ValueError(f"pseudo-GT shard {shard} is missing; {rebuild}")
    try:
        with np.load(shard, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError) as e:
        raise ValueError(f"pseudo-GT shard {shard} is damaged ({type(e).__name__}: {e}); {rebuild}") from None


class PseudoGTDataset(torch.utils.data.Dataset):
    """A finished pseudo-GT split as a torch ``Dataset``.

    Items: ``deformation (3, Hd, Wd)``, ``texture (3, Ht, Wt)`` in ``[0, 1]`` (0 where invisible),
    ``visibility (1, Ht, Wt)`` in ``{0, 1}``, ``class_id`` (long), ``index`` (row in the image split),
    ``camera (7,)``, ``iou`` (float). All shards are held in memory (uint8 textures: ~50 KB per image
    at 128 px). A damaged ``meta.json`` or shard (truncated, a flipped byte) raises ``ValueError`` naming the
    file and how to rebuild it.
    """

    def __init__(self, dataset_root, split: str = "train", camera: str = "noisy"):
        from ..io import read_json

        self.path = pseudo_gt_dir(dataset_root, split, camera)
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(
                f"no finished pseudo ground truth at {self.path} (meta.json missing); "
                f"run meshinv_lite.pseudo_gt.build_pseudo_gt({str(dataset_root)!r}, {split!r}) or notebook 02 first"
            )
        self.meta = read_json(meta_path)  # a damaged meta.json: ValueError naming it
        rebuild = (f"rebuild it: delete {self.path} and re-run notebook 02, or call "
                   f"meshinv_lite.pseudo_gt.build_pseudo_gt({str(dataset_root)!r}, {split!r}, force=True)")
        num_shards, num_images = _meta_counts(self.meta, meta_path, rebuild)
        arrays: dict[str, list] = {}
        for i in range(num_shards):
            shard = self.path / f"shard_{i:05d}.npz"
            for k, v in _read_shard(shard, rebuild).items():
                arrays.setdefault(k, []).append(v)
        missing = [k for k in SHARD_KEYS if k not in arrays]
        if missing:
            raise ValueError(f"the pseudo-GT shards in {self.path} lack the arrays {missing}; {rebuild}")
        self.arrays = {k: np.concatenate(v) for k, v in arrays.items()}
        if len(self.arrays["index"]) != num_images:
            raise ValueError(f"{self.path}: shards hold {len(self.arrays['index'])} images, meta.json says {num_images}; "
                             f"{rebuild}")

    def __len__(self) -> int:
        return len(self.arrays["index"])

    def __getitem__(self, i: int) -> dict:
        a = self.arrays
        return {
            "deformation": torch.from_numpy(a["deformation"][i]),
            "texture": torch.from_numpy(a["texture"][i]).float() / 255,
            "visibility": torch.from_numpy(a["visibility"][i]).float(),
            "class_id": torch.tensor(int(a["class_id"][i])),
            "index": int(a["index"][i]),
            "camera": torch.from_numpy(a["camera"][i]),
            "iou": float(a["iou"][i]),
        }

    def tensors(self) -> dict:
        """Every array as one tensor (textures as float ``[0, 1]``): handy for fast in-memory training."""
        a = self.arrays
        return {
            "deformation": torch.from_numpy(a["deformation"]),
            "texture": torch.from_numpy(a["texture"]).float() / 255,
            "visibility": torch.from_numpy(a["visibility"]).float(),
            "class_id": torch.from_numpy(a["class_id"]).long(),
            "index": torch.from_numpy(a["index"]).long(),
        }
