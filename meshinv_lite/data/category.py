"""Procedural categories: what differs between SynthBirds and SynthCars, in one small record each.

A :class:`Category` names the class tables (seen and held out), the three functions that make an instance
(``sample_params`` -> ``deformation_map`` / ``texture_map``), the category's per-instance annotations, its
camera and framing ranges, its split sizes per profile, its background palettes and what its ``test_hard``
split means. Everything else (the template, cameras, occluders, rendering, the on-disk format, chunked and
resumable writing) is shared: :mod:`meshinv_lite.data.synthbirds` builds any category from its entry in
:data:`CATEGORIES`.

Both categories use :class:`~meshinv_lite.data.config.SynthBirdsConfig` as their dataset config (image, map
and split sizes, camera ranges and noise, hard-split probabilities); :meth:`Category.config` fills in the
category's own defaults. The birds' entry reproduces SynthBirds exactly (same config, same random stream,
same bytes on disk).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from ..config import CATEGORY_NAMES, get_profile
from . import bird_shape, bird_texture, car_shape, car_texture
from .car_types import CAR_TYPES, UNSEEN_CAR_TYPES
from .config import _SPLIT_SIZES, SynthBirdsConfig
from .species import SPECIES, UNSEEN_SPECIES

RGBPair = tuple[tuple[float, float, float], tuple[float, float, float]]

#: Background palettes of SynthBirds: pairs of colours a background blends between.
BIRD_BACKGROUNDS: tuple[RGBPair, ...] = (
    ((0.22, 0.38, 0.16), (0.55, 0.68, 0.32)),  # foliage
    ((0.50, 0.70, 0.92), (0.85, 0.90, 0.96)),  # sky
    ((0.34, 0.26, 0.18), (0.62, 0.52, 0.40)),  # bark, soil
    ((0.45, 0.46, 0.47), (0.75, 0.75, 0.72)),  # stone, haze
    ((0.72, 0.64, 0.46), (0.90, 0.84, 0.66)),  # sand, straw
    ((0.10, 0.22, 0.20), (0.30, 0.50, 0.45)),  # water, shade
)
#: Background palettes of SynthCars: streets, car parks, buildings, verges.
CAR_BACKGROUNDS: tuple[RGBPair, ...] = (
    ((0.24, 0.24, 0.25), (0.46, 0.46, 0.47)),  # asphalt
    ((0.55, 0.54, 0.51), (0.78, 0.77, 0.73)),  # concrete, pavement
    ((0.45, 0.26, 0.20), (0.70, 0.50, 0.40)),  # brick walls
    ((0.50, 0.66, 0.86), (0.84, 0.88, 0.94)),  # sky, glass facades
    ((0.26, 0.38, 0.18), (0.52, 0.62, 0.34)),  # verge, hedges
    ((0.58, 0.52, 0.42), (0.80, 0.74, 0.62)),  # gravel, dust
)


@dataclass(frozen=True)
class Category:
    """What makes one procedural category (see the module docstring).

    Attributes:
        name: ``"birds"`` or ``"cars"`` (written to meta.json as ``category``).
        generator: meta.json's ``generator`` and the prefix of every chunk's seed (``"synthbirds"``).
        version: generator version (part of every split's signature and chunk seed).
        classes / unseen_classes: the class table (index = ``class_id``) and the held-out table of
            ``test_unseen`` (class -1 there; names in the ``species`` annotation).
        class_label: what a class is called in words (``"species"``, ``"body type"``).
        sample_params: ``(class_ids (B,), generator, config, hard, table) -> params`` (length ``B``).
        deformation_map: ``(params, size) -> (B, 3, size, size)`` offsets of the 31 x 32 UV sphere.
        texture_map: ``(params, size, generator, deform_map=(B, 3, Hd, Wd)) -> (B, 3, size, size)`` in ``[0, 1]``.
        annotations: ``params -> {name: (B, ...) tensor}``, the category's own ground-truth annotations.
        elevation_range: camera elevations, degrees (azimuth always covers the full circle).
        fill_range: fraction of the frame spanned by the object's larger projected extent.
        sizes: ``{profile: {split: images}}``, the default split sizes.
        backgrounds: palettes of the textured backgrounds (pairs of RGB in ``[0, 1]``).
        hard: what ``test_hard`` holds, in words.
        loss_features / eval_features: the in-domain feature networks trained on this category
            (:mod:`meshinv_lite.features.in_domain`): one for inversion's feature loss, one only for metrics.
        word / plural: what one object is called in titles and captions (``"bird"`` / ``"birds"``).
        dataset_name: the dataset's name in words (``"SynthBirds"``).
        example: the stem of the bundled example photo in ``notebooks/examples/``: ``<example>.png``, its mask
            ``<example>_mask.png`` and the truth it was rendered with, ``<example>_truth.json``
            (``data_scripts/make_example_photo.py --category <name>`` writes them).
        has_encoder: whether a shipped image encoder (camera and class guesses for a photo) knows this category;
            without one, photos get their hypotheses from the grid search.
        front: what lies towards the object frame's ``+z`` (``"beak"``), for axis labels.
        refine_cameras: whether this category's pseudo ground truth corrects the annotated cameras while fitting
            (:meth:`meshinv_lite.pseudo_gt.PseudoGTConfig.for_profile`'s ``refine_cameras``).
    """

    name: str
    generator: str
    version: str
    classes: tuple
    unseen_classes: tuple
    class_label: str
    sample_params: Callable
    deformation_map: Callable
    texture_map: Callable
    annotations: Callable
    elevation_range: tuple[float, float]
    fill_range: tuple[float, float]
    sizes: Mapping[str, Mapping[str, int]]
    backgrounds: tuple[RGBPair, ...]
    hard: str
    loss_features: str = "synthbirds_features"
    eval_features: str = "synthbirds_eval"
    word: str = "bird"
    plural: str = "birds"
    dataset_name: str = "SynthBirds"
    example: str = "bird"
    has_encoder: bool = True
    front: str = "beak"
    refine_cameras: bool = False

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def unseen_class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.unseen_classes)

    def example_files(self, directory: "str | Path | None" = None) -> tuple[Path, Path]:
        """``(photo, mask)`` of the bundled example in ``directory`` (default: the project's ``notebooks/examples``)."""
        from ..paths import project_root

        d = Path(directory) if directory is not None else project_root() / "notebooks" / "examples"
        return d / f"{self.example}.png", d / f"{self.example}_mask.png"

    def config(self, profile: str = "lite", **overrides) -> SynthBirdsConfig:
        """The dataset config of a profile with this category's sizes and camera ranges (then ``overrides``)."""
        prof = get_profile(profile).name
        base = SynthBirdsConfig.for_profile(prof, sizes=dict(self.sizes[prof]), elevation_range=self.elevation_range,
                                            fill_range=self.fill_range)
        return replace(base, **overrides) if overrides else base


def _sample_birds(class_ids, generator, config, hard, table):
    return bird_shape.sample_bird_params(class_ids, generator, config, hard=hard, species=table)


def _sample_cars(class_ids, generator, config, hard, table):
    return car_shape.sample_car_params(class_ids, generator, config, hard=hard, types=table)


def _bird_annotations(p) -> dict[str, torch.Tensor]:
    return {"wing_open": p.wing_open, "tail_scale": p.tail_scale}


def _car_annotations(p) -> dict[str, torch.Tensor]:
    return {"body": p.body}


_BIRD_DEFAULTS = SynthBirdsConfig()

BIRDS = Category(
    name="birds",
    generator="synthbirds",
    version="1.0",
    classes=tuple(SPECIES),
    unseen_classes=tuple(UNSEEN_SPECIES),
    class_label="species",
    sample_params=_sample_birds,
    deformation_map=bird_shape.deformation_map,
    texture_map=bird_texture.texture_map,
    annotations=_bird_annotations,
    elevation_range=_BIRD_DEFAULTS.elevation_range,
    fill_range=_BIRD_DEFAULTS.fill_range,
    sizes=_SPLIT_SIZES,  # test_unseen's size comes from config._UNSEEN_SIZES (see config.UNSEEN_SPLIT)
    backgrounds=BIRD_BACKGROUNDS,
    hard="articulation extremes (wings spread, tails very short or long) and/or an occluding twig",
)

#: SynthCars sizes list test_unseen (there are no older car datasets whose signatures could change).
_CAR_SIZES = {
    "quick": {"train": 48, "val": 16, "test": 16, "test_hard": 16, "test_unseen": 6},
    "lite": {"train": 2000, "val": 200, "test": 200, "test_hard": 200, "test_unseen": 24},
    "paper": {"train": 6000, "val": 500, "test": 1000, "test_hard": 500, "test_unseen": 200},
}

CARS = Category(
    name="cars",
    generator="synthcars",
    version="1.0",
    classes=tuple(CAR_TYPES),
    unseen_classes=tuple(UNSEEN_CAR_TYPES),
    class_label="body type",
    sample_params=_sample_cars,
    deformation_map=car_shape.deformation_map,
    texture_map=car_texture.texture_map,
    annotations=_car_annotations,
    elevation_range=(-5.0, 20.0),  # PASCAL3D+-like: street-level views, all azimuths
    fill_range=(0.70, 0.90),
    sizes=_CAR_SIZES,
    backgrounds=CAR_BACKGROUNDS,
    hard="extreme proportions (lifted or lowered: clearance, tyres, height) and/or an occluding bar",
    loss_features="synthcars_features",
    eval_features="synthcars_eval",
    word="car",
    plural="cars",
    dataset_name="SynthCars",
    example="car",
    has_encoder=False,      # the shipped encoder knows SynthBirds only
    front="front",
    refine_cameras=True,    # pseudo-GT 3D Chamfer 0.081 -> 0.065 (PseudoGTConfig.for_profile; the shipped car prior too)
)

CATEGORIES: dict[str, Category] = {"birds": BIRDS, "cars": CARS}
if tuple(CATEGORIES) != CATEGORY_NAMES:   # the light list the command lines offer must name these records
    raise ImportError(f"meshinv_lite.config.CATEGORY_NAMES {CATEGORY_NAMES} must list {tuple(CATEGORIES)}")


def get_category(name: "str | Category") -> Category:
    """The category called ``name`` (a :class:`Category` is returned as is); unknown names are refused with a
    message naming the choices."""
    if isinstance(name, Category):
        return name
    if not isinstance(name, str) or name not in CATEGORIES:
        raise ValueError(f"unknown category {name!r}; choose one of {sorted(CATEGORIES)}")
    return CATEGORIES[name]


def category_name_of(dataset_root) -> str:
    """The ``category`` named by a dataset's root ``meta.json`` (datasets written before categories existed, converted
    CUB, and a folder without a ``meta.json`` are ``"birds"``); an unreadable ``meta.json`` raises ``OSError`` or
    ``ValueError``."""
    from ..io import read_json

    meta = Path(dataset_root) / "meta.json"
    return read_json(meta).get("category", BIRDS.name) if meta.is_file() else BIRDS.name


def category_of(dataset_root) -> Category:
    """The :class:`Category` of a dataset on disk (see :func:`category_name_of`)."""
    return get_category(category_name_of(dataset_root))


__all__: Sequence[str] = ["Category", "CATEGORIES", "BIRDS", "CARS", "BIRD_BACKGROUNDS", "CAR_BACKGROUNDS", "get_category",
                          "category_name_of", "category_of"]
