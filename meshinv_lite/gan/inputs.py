"""What pretraining reads: the training pseudo-GT maps, images and cameras, and building them when missing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..config import get_profile
from ..data.dataset import camera_key
from ..distributed import SINGLE, DistContext


@dataclass
class TrainingData:
    """What pretraining reads, held in memory.

    Attributes:
        texture: ``(N, 3, Ht, Wt)`` pseudo-GT textures in ``[0, 1]`` (0 where invisible).
        visibility: ``(N, 1, Ht, Wt)`` in ``{0, 1}``.
        deformation: ``(N, 3, Hd, Wd)`` pseudo-GT deformation maps.
        class_id: ``(N,)`` long.
        images: ``(M, 3, H, W)`` uint8 real images; masks ``(M, 1, H, W)`` uint8; cameras ``(M, 7)``.
    """

    texture: torch.Tensor
    visibility: torch.Tensor
    deformation: torch.Tensor
    class_id: torch.Tensor
    images: torch.Tensor
    masks: torch.Tensor
    cameras: torch.Tensor
    image_class_id: torch.Tensor

    @classmethod
    def from_dataset(cls, dataset_root, split: str = "train", camera: str = "noisy") -> "TrainingData":
        """Pseudo-GT of ``split`` (see :mod:`meshinv_lite.pseudo_gt`) plus the split's images."""
        from ..data.dataset import ReconstructionDataset
        from ..pseudo_gt.dataset import PseudoGTDataset

        pgt = PseudoGTDataset(dataset_root, split, camera).tensors()
        data = ReconstructionDataset(dataset_root, split, load_gt=False)
        items = data.batch(range(len(data)))
        return cls(
            texture=pgt["texture"], visibility=pgt["visibility"], deformation=pgt["deformation"],
            class_id=pgt["class_id"],
            images=(items["image"] * 255).round().byte(), masks=(items["mask"] * 255).round().byte(),
            cameras=items[camera_key(camera)], image_class_id=items["class_id"],
        )

    def __post_init__(self) -> None:
        n = self.texture.shape[0]
        if n == 0:
            raise ValueError("no pseudo-GT samples to train on")
        for name in ("visibility", "deformation", "class_id"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"pseudo-GT {name} has {getattr(self, name).shape[0]} rows, texture has {n}")
        m = self.images.shape[0]
        for name in ("masks", "cameras", "image_class_id"):
            if getattr(self, name).shape[0] != m:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} rows, images has {m}")


def gan_dir(dataset_root, camera: str = "noisy", image_discriminator: bool = True) -> Path:
    """Where a dataset's GAN checkpoints live: ``<root>/gan_<camera>[_no_image_d]/``."""
    return Path(dataset_root) / f"gan_{camera}{'' if image_discriminator else '_no_image_d'}"


def build_training_inputs(
    data_dir,
    profile: str = "quick",
    camera: str = "noisy",
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    dist: Optional[DistContext] = None,
    train_images: Optional[int] = None,
    category: str = "birds",
) -> Path:
    """SynthBirds of a profile (SynthCars with ``category="cars"``) and its training pseudo ground truth, each
    built only when absent.

    ``train_images``: how many training images get pseudo ground truth (``None``: the profile's
    :func:`~meshinv_lite.pseudo_gt.train_image_limit`); changing it reuses the shards already made.

    Under ``torchrun`` rank 0 builds the dataset while the others wait, and the pseudo-GT shards are
    dealt to the ranks. Returns the dataset root.
    """
    from ..data.synthbirds import build_dataset, synthbirds_dir
    from ..pseudo_gt.build import build_pseudo_gt
    from ..pseudo_gt.config import PseudoGTConfig, train_image_limit

    ctx = dist or SINGLE
    prof = get_profile(profile)
    root = synthbirds_dir(data_dir, prof.name, category)
    if ctx.is_main:
        build_dataset(root, category, profile=prof.name, seed=seed, progress=progress)
    ctx.barrier()
    build_pseudo_gt(root, "train", PseudoGTConfig.for_profile(prof.name, camera=camera, category=category), device=device,
                    limit=train_images if train_images is not None else train_image_limit(prof.name), seed=seed,
                    progress=progress, dist=ctx)
    return root
