"""Datasets: the procedural SynthBirds and SynthCars generators, the on-disk format and its torch ``Dataset``, and the
CUB-200-2011 reader.

* :mod:`meshinv_lite.data.synthbirds`: generate birds with exact ground truth and write the splits;
* :mod:`meshinv_lite.data.species`: the species table;
* :mod:`meshinv_lite.data.category`: what differs between the procedural categories (birds, cars);
* :mod:`meshinv_lite.data.dataset`: the on-disk format (documented there) and :class:`ReconstructionDataset`;
* :mod:`meshinv_lite.data.cub`: CUB-200-2011 + CMR annotations -> the same format.
* :mod:`meshinv_lite.data.pascal3d`: PASCAL3D+ cars (viewpoints, CAD masks) -> the same format.
"""
from .config import SynthBirdsConfig
from .dataset import FORMAT, ReconstructionDataset, read_split, write_split
from .species import SPECIES, SPECIES_NAMES
from .category import CATEGORIES, Category, get_category
from .synthbirds import build_dataset, build_synthbirds, build_synthcars, generate_batch, render_ground_truth

__all__ = [
    "FORMAT",
    "ReconstructionDataset",
    "read_split",
    "write_split",
    "SPECIES",
    "SPECIES_NAMES",
    "SynthBirdsConfig",
    "build_synthbirds",
    "build_synthcars",
    "build_dataset",
    "Category",
    "CATEGORIES",
    "get_category",
    "generate_batch",
    "render_ground_truth",
]
