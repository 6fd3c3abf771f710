"""Pseudo ground truth as a torch ``Dataset``: the fitted maps of each training image, read from the shards."""
from __future__ import annotations

import torch

from .config import pseudo_gt_dir


class PseudoGTDataset(torch.utils.data.Dataset):
    """A finished pseudo-GT split as a torch ``Dataset``.

    Items: ``deformation (3, Hd, Wd)``, ``texture (3, Ht, Wt)`` in ``[0, 1]`` (0 where invisible),
    ``visibility (1, Ht, Wt)`` in ``{0, 1}``, ``class_id`` (long), ``index`` (row in the image split),
    ``camera (7,)``, ``iou`` (float). All shards are held in memory (uint8 textures: ~50 KB per image
    at 128 px).
    """

    def __init__(self, dataset_root, split: str = "train", camera: str = "noisy"):
        import numpy as np

        from ..io import read_json

        self.path = pseudo_gt_dir(dataset_root, split, camera)
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(
                f"no finished pseudo ground truth at {self.path} (meta.json missing); "
                f"run meshinv_lite.pseudo_gt.build_pseudo_gt({str(dataset_root)!r}, {split!r}) or notebook 02 first"
            )
        self.meta = read_json(meta_path)
        arrays: dict[str, list] = {}
        for i in range(self.meta["num_shards"]):
            shard = self.path / f"shard_{i:05d}.npz"
            try:
                with np.load(shard) as z:
                    for k in z.files:
                        arrays.setdefault(k, []).append(z[k])
            except (OSError, ValueError) as e:
                raise ValueError(f"pseudo-GT shard {shard} is missing or corrupt ({e}); rebuild with force=True") from None
        self.arrays = {k: np.concatenate(v) for k, v in arrays.items()}
        if len(self.arrays["index"]) != self.meta["num_images"]:
            raise ValueError(f"{self.path}: shards hold {len(self.arrays['index'])} images, meta.json says {self.meta['num_images']}")

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
