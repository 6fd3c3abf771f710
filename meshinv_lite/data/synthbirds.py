"""SynthBirds: procedural, class-conditional birds with exact 3D ground truth, rendered and written to disk.

Every bird is the package's UV-sphere template deformed by a **deformation map** and painted by a
**texture map**, both functions of the template direction ``d(u, v)`` evaluated on the maps' texel
centres (``u = (j + 0.5) / W``, ``v = (i + 0.5) / H``). The ground-truth vertices are
``deform_vertices(template, deform_map)``, so maps and mesh agree exactly, and re-rendering a sample's
maps with its stored camera reproduces its image and mask.

Shapes come from :mod:`meshinv_lite.data.bird_shape`, textures from :mod:`meshinv_lite.data.bird_texture`,
species from :mod:`meshinv_lite.data.species`. This module adds the cameras, backgrounds and occluders,
renders batches, and builds the splits on disk.

The same machinery builds **SynthCars** (:func:`build_synthcars`): what differs between categories (class tables,
shape / texture functions, camera ranges, sizes, backgrounds, the meaning of ``test_hard``) is a
:class:`~meshinv_lite.data.category.Category`, passed as ``category`` (default birds, which give exactly the
SynthBirds they always gave) to :func:`generate_batch`, :func:`make_chunk` and :func:`build_dataset`.

Entry points: :func:`sample_bird_params`, :func:`deformation_map`, :func:`texture_map`,
:func:`fit_cameras`, :func:`perturb_cameras`, :func:`backgrounds`, :func:`generate_batch`,
:func:`render_ground_truth`; :func:`build_synthbirds` writes the splits to disk
(format: :mod:`meshinv_lite.data.dataset`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RenderConfig, get_profile
from ..io import read_json
from ..render.camera import (
    WeakPerspectiveCamera,
    normalize_quaternion,
    pixel_centers,
    quaternion_multiply,
    view_rotation,
)
from ..render.dibr import render_mesh
from ..render.mesh import TemplateMesh, deform_vertices, make_uv_sphere
from .bird_geometry import BirdParams, normalize, uv_directions
from .bird_shape import bird_surface, deformation_map, sample_bird_params
from .bird_texture import shading_map, texture_map
from .category import BIRD_BACKGROUNDS, BIRDS, CARS, Category, category_name_of, get_category
from .config import UNSEEN_SPLIT, SynthBirdsConfig
from .species import SPECIES, SPECIES_NAMES, UNSEEN_SPECIES, UNSEEN_SPECIES_NAMES, Species  # noqa: F401 (re-exported)

GENERATOR_VERSION = BIRDS.version  # "1.0"
#: Every SynthBirds split. ``test_unseen`` holds only species of
#: :data:`~meshinv_lite.data.species.UNSEEN_SPECIES` (class -1 in its annotations): no other split, pseudo
#: ground truth, GAN class or feature network sees them.
SPLITS: tuple[str, ...] = ("train", "val", "test", "test_hard", UNSEEN_SPLIT)

# --------------------------------------------------------------------------------------------------
# Per-instance parameters
# --------------------------------------------------------------------------------------------------

__all__ = [
    "GENERATOR_VERSION",
    "SPLITS",
    "UNSEEN_SPLIT",
    "SynthBirdsConfig",
    "BirdParams",
    "sample_bird_params",
    "bird_surface",
    "deformation_map",
    "uv_directions",
    "texture_map",
    "shading_map",
    "fit_cameras",
    "perturb_cameras",
    "backgrounds",
    "occluder_mask",
    "SynthBatch",
    "generate_batch",
    "render_ground_truth",
    "default_template",
    "torch_threads",
    "synthbirds_dir",
    "chunk_generator",
    "make_chunk",
    "batch_annotations",
    "build_synthbirds",
    "build_synthcars",
    "build_dataset",
    "Category",
    "get_category",
]


# --------------------------------------------------------------------------------------------------
# Cameras, backgrounds, occluders
# --------------------------------------------------------------------------------------------------


def _uniform(generator: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)


def fit_cameras(
    verts: torch.Tensor,
    generator: torch.Generator,
    config: SynthBirdsConfig = SynthBirdsConfig(),
) -> WeakPerspectiveCamera:
    """Random views of meshes ``(B, N, 3)`` that frame each bird.

    Azimuth is uniform over the full circle, elevation uniform in ``config.elevation_range``; the scale
    makes the larger side of the projected bounding box span a fraction ``fill`` (uniform in
    ``config.fill_range``) of the frame, and the box centre lands within ``config.max_offset`` of the
    image centre (never closer to the border than the free margin allows).
    """
    b = verts.shape[0]
    az = _uniform(generator, b, 0.0, 360.0)
    el = _uniform(generator, b, *config.elevation_range)
    fill = _uniform(generator, b, *config.fill_range)
    jitter = 2 * torch.rand(b, 2, generator=generator, dtype=torch.float64) - 1
    rot = view_rotation(az, el)
    unit = WeakPerspectiveCamera(torch.ones(b), torch.zeros(b, 2), rot)
    proj = unit.project(verts.detach().float()).double()  # (B, N, 2)
    lo, hi = proj.min(dim=1).values, proj.max(dim=1).values
    center, half = (lo + hi) / 2, ((hi - lo) / 2).max(dim=1).values
    scale = fill / half
    margin = (1 - fill).clamp_min(0)
    offset = jitter * torch.minimum(margin, torch.full_like(margin, config.max_offset))[:, None]
    trans = -center * scale[:, None] + offset
    return WeakPerspectiveCamera(scale.float(), trans.float(), rot)


def perturb_cameras(
    camera: WeakPerspectiveCamera,
    generator: torch.Generator,
    rot_deg: float = 6.0,
    scale_std: float = 0.04,
    trans_std: float = 0.03,
) -> WeakPerspectiveCamera:
    """A noisy copy that mimics structure-from-motion error.

    Rotation: composed with a random rotation about a uniformly random axis, angle ``|N(0, rot_deg)|``
    degrees; scale: times ``exp(N(0, scale_std))``; translation: plus ``N(0, trans_std)`` per axis.
    """
    b = len(camera)
    axis = normalize(torch.randn(b, 3, generator=generator, dtype=torch.float64))
    angle = torch.deg2rad(torch.randn(b, generator=generator, dtype=torch.float64).abs() * rot_deg)
    dq = torch.cat([torch.cos(angle / 2)[:, None], torch.sin(angle / 2)[:, None] * axis], dim=1)
    rot = normalize_quaternion(quaternion_multiply(dq, camera.rotation.double())).float()
    scale = camera.scale * torch.exp(scale_std * torch.randn(b, generator=generator, dtype=torch.float64)).float()
    trans = camera.translation + trans_std * torch.randn(b, 2, generator=generator, dtype=torch.float64).float()
    return WeakPerspectiveCamera(scale, trans, rot)


_BG_PALETTES = BIRD_BACKGROUNDS  # pairs of colours a background blends between (category.CAR_BACKGROUNDS for cars)


def _upsampled_noise(b: int, c: int, cells: int, size: int, generator: torch.Generator) -> torch.Tensor:
    low = torch.randn(b, c, cells, cells, generator=generator)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)


def backgrounds(batch: int, size: int, generator: torch.Generator, palettes: Sequence = _BG_PALETTES) -> torch.Tensor:
    """Textured backgrounds ``(B, 3, size, size)`` in ``[0, 1]``: a random palette of ``palettes`` (``K`` pairs of
    RGB, default the birds') blended by smooth noise, a vertical light gradient, blotches and fine grain."""
    pal = torch.tensor(palettes, dtype=torch.float32)  # (K, 2, 3)
    which = torch.randint(len(palettes), (batch,), generator=generator)
    c1, c2 = pal[which, 0][..., None, None], pal[which, 1][..., None, None]
    t = torch.sigmoid(1.5 * _upsampled_noise(batch, 1, 4, size, generator))
    img = c1 + t * (c2 - c1)
    rows = torch.linspace(1, -1, size)[None, None, :, None]
    slope = 0.12 * torch.randn(batch, 1, 1, 1, generator=generator)
    img = img * (1 + slope * rows)
    img = img * (1 + 0.10 * _upsampled_noise(batch, 1, 12, size, generator))
    img = img + 0.025 * _upsampled_noise(batch, 3, max(size // 2, 8), size, generator)
    return img.clamp(0, 1)


def occluder_mask(params: torch.Tensor, size: int) -> torch.Tensor:
    """Pixels covered by twig occluders, ``(B, 1, size, size)`` bool.

    ``params`` ``(B, 5)`` = ``(x0, y0, x1, y1, half_width)`` in normalized image coordinates: a bar of
    that half-width along the segment; rows holding NaN (no occluder) cover nothing.
    """
    pts = pixel_centers(size, size).reshape(1, -1, 2)  # (1, P, 2)
    a, bb, hw = params[:, None, 0:2], params[:, None, 2:4], params[:, 4, None]
    ab = bb - a
    t = (((pts - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    dist = (pts - (a + t[..., None] * ab)).norm(dim=-1)
    covered = dist <= hw
    covered = covered & torch.isfinite(params).all(dim=1, keepdim=True)
    return covered.reshape(-1, 1, size, size)


def _sample_occluders(masks: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One twig per image ``(B, 5)`` crossing a random foreground pixel of ``masks`` ``(B, 1, H, W)``."""
    b, _, h, w = masks.shape
    flat = masks.reshape(b, -1).double() + 1e-9
    idx = torch.multinomial(flat, 1, generator=generator)[:, 0]
    col, row = (idx % w).double(), (idx // w).double()
    p = torch.stack([(col + 0.5) / w * 2 - 1, 1 - (row + 0.5) / h * 2], dim=-1)  # == camera.pixel_to_ndc
    ang = _uniform(generator, b, 0.0, math.pi)
    dvec = torch.stack([torch.cos(ang), torch.sin(ang)], dim=-1)
    hw = _uniform(generator, b, 0.035, 0.07)
    return torch.cat([p - 3 * dvec, p + 3 * dvec, hw[:, None]], dim=1).float()


def _paint_twigs(images: torch.Tensor, params: torch.Tensor, covered: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Paint bark-coloured bars (darker at their edges) over ``images`` where ``covered``."""
    b, _, h, w = images.shape
    pts = pixel_centers(h, w).reshape(1, -1, 2)
    a, bb, hw = params[:, None, 0:2], params[:, None, 2:4], params[:, 4, None]
    ab = bb - a
    t = (((pts - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    dist = (pts - (a + t[..., None] * ab)).norm(dim=-1) / hw.clamp_min(1e-6)
    bark = torch.tensor([0.36, 0.26, 0.16])[None, :, None] * (1 - 0.45 * dist.clamp(0, 1)[:, None] ** 2)
    grain = 1 + 0.12 * _upsampled_noise(b, 1, max(h // 4, 4), h, generator).reshape(b, 1, -1)
    twig = (bark * grain).clamp(0, 1).reshape(b, 3, h, w)
    return torch.where(covered, twig, images)


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------


@dataclass
class SynthBatch:
    """A generated batch; every tensor is batch first.

    Attributes:
        images: ``(B, 3, S, S)`` in ``[0, 1]`` (bird on a textured background, twig on top if occluded).
        masks: ``(B, 1, S, S)`` in ``{0, 1}``: visible bird pixels (twig pixels excluded).
        camera: exact cameras; noisy_camera: their "SfM" copies.
        class_id: ``(B,)`` long.
        deform_map: ``(B, 3, Hd, Wd)`` ground-truth offsets; texture_map: ``(B, 3, Ht, Wt)`` in ``[0, 1]``,
            quantized to 1/255 (exactly what is stored and rendered).
        occluded: ``(B,)`` bool; occluder: ``(B, 5)`` twig ``(x0, y0, x1, y1, half_width)``, NaN if none.
        extreme: ``(B,)`` bool, articulation (cars: proportions) from the held-out extremes.
        extras: the category's own annotations (:attr:`Category.annotations`): birds ``wing_open`` ``(B, 2)``,
            ``tail_scale`` ``(B,)``; cars ``body`` ``(B, 4)`` (length, width, height, clearance).
        azimuth, elevation: ``(B,)`` degrees.
        species: ``B`` class names for instances of a table other than the category's (``class_id`` is then
            -1: no class of the prior; cars: the held-out body types); ``None`` for the seen classes.
    """

    images: torch.Tensor
    masks: torch.Tensor
    camera: WeakPerspectiveCamera
    noisy_camera: WeakPerspectiveCamera
    class_id: torch.Tensor
    deform_map: torch.Tensor
    texture_map: torch.Tensor
    occluded: torch.Tensor
    occluder: torch.Tensor
    extreme: torch.Tensor
    extras: dict
    azimuth: torch.Tensor
    elevation: torch.Tensor
    species: Optional[tuple[str, ...]] = None

    def __len__(self) -> int:
        return self.class_id.shape[0]

    @property
    def wing_open(self) -> Optional[torch.Tensor]:
        """Birds: ``(B, 2)`` wing articulation (``None`` for other categories)."""
        return self.extras.get("wing_open")

    @property
    def tail_scale(self) -> Optional[torch.Tensor]:
        """Birds: ``(B,)`` tail length factor (``None`` for other categories)."""
        return self.extras.get("tail_scale")


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` torch intra-op threads, restoring the previous number afterwards.

    Generation is many small kernels: on a busy 2-core machine two OpenMP threads wait for each other
    at every kernel and a batch can take 30x longer than with one thread. One thread per process
    (and several processes, see ``build_synthbirds(workers=...)``) is the robust choice.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_TEMPLATE_CACHE: dict = {}


def default_template() -> TemplateMesh:
    """The 31 x 32 UV sphere SynthBirds is built on (cached)."""
    if "t" not in _TEMPLATE_CACHE:
        _TEMPLATE_CACHE["t"] = make_uv_sphere(31, 32)
    return _TEMPLATE_CACHE["t"]


def render_ground_truth(
    deform_map: torch.Tensor,
    texture_map: torch.Tensor,
    camera: WeakPerspectiveCamera,
    image_size: int,
    background: Optional[torch.Tensor] = None,
    template: Optional[TemplateMesh] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ground-truth maps: ``(images (B, 3, S, S), masks (B, 1, S, S))``.

    This is exactly how SynthBirds images are made (before twigs are painted over), so rendering a
    stored sample's maps with its stored camera and background reproduces its image and mask.
    """
    template = template or default_template()
    verts = deform_vertices(template, deform_map)
    out = render_mesh(template, verts, camera, texture_map, RenderConfig(image_size=image_size), background=background, soft=False)
    return out.image, out.mask


def generate_batch(
    class_ids: torch.Tensor,
    generator: torch.Generator,
    config: SynthBirdsConfig = SynthBirdsConfig(),
    hard: bool = False,
    template: Optional[TemplateMesh] = None,
    species: Optional[Sequence[Species]] = None,
    category: Category | str = BIRDS,
) -> SynthBatch:
    """Generate and render one batch of the category's objects of the given classes ``(B,)`` (indices into
    ``species``).

    ``hard`` draws the ``test_hard`` variety (:attr:`Category.hard`): extremes and/or an occluding bar.
    ``species``: the class table, default the category's (birds: the GAN's twelve,
    :data:`~meshinv_lite.data.species.SPECIES`), or another one such as
    :data:`~meshinv_lite.data.species.UNSEEN_SPECIES` / :data:`~meshinv_lite.data.car_types.UNSEEN_CAR_TYPES`;
    instances of another table get ``class_id`` -1 and their names in ``species``.
    ``category``: ``"birds"`` (default) or ``"cars"`` (:data:`~meshinv_lite.data.category.CATEGORIES`).
    Runs with one torch thread (see :func:`torch_threads`); the caller's setting is restored.
    """
    cat = get_category(category)
    table = cat.classes if species is None else tuple(species)
    with torch_threads(1):
        return _generate_batch(class_ids, generator, config, hard, template or default_template(), table, cat)


def _generate_batch(class_ids, generator, config, hard, template, species, category: Category = BIRDS) -> SynthBatch:
    p = category.sample_params(class_ids, generator, config, hard, species)
    held_out = species != category.classes
    deform = category.deformation_map(p, config.deform_size)
    tex = category.texture_map(p, config.texture_size, generator, deform_map=deform)
    tex = torch.round(tex * 255) / 255
    verts = deform_vertices(template, deform)
    cam = fit_cameras(verts, generator, config)
    noisy = perturb_cameras(cam, generator, config.noise_rot_deg, config.noise_scale, config.noise_trans)
    bg = backgrounds(len(p), config.image_size, generator, category.backgrounds)
    out = render_mesh(template, verts, cam, tex, RenderConfig(image_size=config.image_size), background=bg, soft=False)
    images, masks = out.image, out.mask
    b = len(p)
    occluder = torch.full((b, 5), float("nan"))
    occluded = torch.zeros(b, dtype=torch.bool)
    if hard:
        occluded = (torch.rand(b, generator=generator) < config.hard_occlusion_prob) | ~p.extreme
        if occluded.any():
            params = _sample_occluders(masks, generator)
            occluder = torch.where(occluded[:, None], params, occluder)
            covered = occluder_mask(occluder, config.image_size)
            images = _paint_twigs(images, occluder, covered, generator)
            masks = masks * (~covered).to(masks.dtype)
    az, el = cam.view_angles()
    return SynthBatch(
        images=images.clamp(0, 1),
        masks=masks,
        camera=cam,
        noisy_camera=noisy,
        class_id=torch.full_like(p.class_id, -1) if held_out else p.class_id,
        deform_map=deform,
        texture_map=tex,
        occluded=occluded,
        occluder=occluder,
        extreme=p.extreme,
        extras=category.annotations(p),
        azimuth=az,
        elevation=el,
        species=tuple(species[i].name for i in p.class_id.tolist()) if held_out else None,
    )


# --------------------------------------------------------------------------------------------------
# Building the dataset on disk
# --------------------------------------------------------------------------------------------------


def synthbirds_dir(data_dir: str | Path, profile: str, category: Optional[Category | str] = None) -> Path:
    """Where the dataset of a profile lives (SynthBirds, or SynthCars with ``category="cars"``).

    A path whose last component starts with the category's generator name (``data/synthbirds_quick``,
    ``data/synthcars_lite``) or that already holds a dataset ``meta.json`` is used as is; any other folder
    (``data``) is a root holding datasets, and the answer is ``<data_dir>/synthbirds_<profile>``
    (``synthcars_<profile>``). ``category=None`` means birds.

    With a ``category`` given, a folder used as is whose ``meta.json`` names another category is refused
    (``ValueError``: e.g. ``data_dir="data/synthbirds_quick"`` with ``category="cars"``), so a notebook asked
    for cars never reads birds silently. A ``meta.json`` without a category is SynthBirds' (older builds).
    """
    data_dir = Path(data_dir)
    cat = get_category(BIRDS if category is None else category)
    if data_dir.name.startswith(cat.generator) or (data_dir / "meta.json").exists():
        if category is not None and (data_dir / "meta.json").exists():
            try:
                have = category_name_of(data_dir)
            except (OSError, ValueError):
                have = None   # unreadable: the dataset reader says so when it is read
            if have is not None and have != cat.name:
                raise ValueError(f"{data_dir} holds a dataset of category {have!r}, not {cat.name!r}: pass the data "
                                 f"root (e.g. 'data') or a {cat.generator}_<profile> folder")
        return data_dir
    return data_dir / f"{cat.generator}_{get_profile(profile).name}"


def chunk_generator(seed: int, split: str, chunk: int, category: Category | str = BIRDS) -> torch.Generator:
    """The random generator of one chunk: a hash of ``(category's generator and version, seed, split, chunk)``,
    so chunks can be made in any order, in parallel or after an interruption, and still give the same dataset."""
    cat = get_category(category)
    digest = hashlib.sha256(f"{cat.generator}/{cat.version}/{seed}/{split}/{chunk}".encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def _split_class_ids(split: str, start: int, stop: int, num_classes: int) -> torch.Tensor:
    """Balanced species: image ``i`` of a split shows species ``(i + offset) % num_classes``
    (``test_unseen``: offset 0, indices into its own table)."""
    offset = SPLITS.index(split) * 5 if split in SPLITS and split != UNSEEN_SPLIT else 0
    return (torch.arange(start, stop) + offset) % num_classes


def make_chunk(config: SynthBirdsConfig, seed: int, split: str, chunk: int,
               category: Category | str = BIRDS) -> tuple[list[str], SynthBatch]:
    """Generate chunk ``chunk`` of a split (deterministic for ``(category, config, seed, split, chunk)``).

    ``test_unseen`` draws ordinary instances (articulation, cameras, noise and backgrounds as ``test``) of the
    held-out classes, balanced over the category's ``unseen_classes`` (birds:
    :data:`~meshinv_lite.data.species.UNSEEN_SPECIES`).
    """
    cat = get_category(category)
    n = config.split_size(split)
    start, stop = chunk * config.chunk, min(n, (chunk + 1) * config.chunk)
    species = cat.unseen_classes if split == UNSEEN_SPLIT else cat.classes
    ids = _split_class_ids(split, start, stop, len(species))
    batch = generate_batch(ids, chunk_generator(seed, split, chunk, cat), config, hard=(split == "test_hard"),
                           species=species, category=cat)
    return [f"{i:06d}" for i in range(start, stop)], batch


def batch_annotations(batch: SynthBatch) -> dict:
    """The annotation arrays of a batch, as stored in ``annotations.npz`` (see ``dataset.FORMAT``): the shared
    columns, the category's own (:attr:`SynthBatch.extras`), and the ``species`` column only for held-out classes
    (the seen splits' files stay as they were)."""
    out = {
        "camera": batch.camera.as_tensor().float(),
        "noisy_camera": batch.noisy_camera.as_tensor().float(),
        "class_id": batch.class_id.long(),
        "occluded": batch.occluded,
        "deform_map": batch.deform_map.float(),
        "texture_map": (batch.texture_map * 255).round().to(torch.uint8),
        "occluder": batch.occluder.float(),
        "extreme": batch.extreme,
        **{k: v.float() for k, v in batch.extras.items()},  # birds: wing_open, tail_scale (in this order)
        "azimuth": batch.azimuth.float(),
        "elevation": batch.elevation.float(),
    }
    if batch.species is not None:
        out["species"] = np.asarray(batch.species, dtype=str)
    return out


def _split_signature(config: SynthBirdsConfig, seed: int, split: str, category: Category = BIRDS) -> dict:
    """What determines a split's content. ``test_unseen``'s size lives outside ``config.sizes`` (see
    :data:`~meshinv_lite.data.config.UNSEEN_SPLIT`), so it is added here; the other splits' signatures are
    those they have always had."""
    sig = {"generator": category.generator, "generator_version": category.version, "seed": int(seed), "split": split,
           "config": config.to_dict()}
    if split not in config.sizes:
        sig["num_images"] = config.split_size(split)
    return sig


def _worker_chunk(args) -> int:
    """Process-pool task: make and write one chunk (one torch thread per worker)."""
    from .dataset import SplitWriter

    config_dict, seed, split, chunk, root, category = args
    torch.set_num_threads(1)
    config = SynthBirdsConfig.from_dict(config_dict)
    cat = get_category(category)
    writer = SplitWriter(root, split, _split_signature(config, seed, split, cat))
    names, batch = make_chunk(config, seed, split, chunk, cat)
    writer.write_chunk(chunk, names, batch.images, batch.masks, batch_annotations(batch))
    return len(names)


def build_synthbirds(
    out_dir: str | Path,
    config: Optional[SynthBirdsConfig] = None,
    profile: str = "lite",
    seed: int = 0,
    splits: Sequence[str] = SPLITS,
    force: bool = False,
    workers: Optional[int] = None,
    progress: bool = True,
) -> dict:
    """Generate SynthBirds splits into ``out_dir``: :func:`build_dataset` with the birds category."""
    return build_dataset(out_dir, BIRDS, config, profile, seed, splits, force, workers, progress)


def build_synthcars(
    out_dir: str | Path,
    config: Optional[SynthBirdsConfig] = None,
    profile: str = "lite",
    seed: int = 0,
    splits: Optional[Sequence[str]] = None,
    force: bool = False,
    workers: Optional[int] = None,
    progress: bool = True,
) -> dict:
    """Generate SynthCars splits into ``out_dir``: :func:`build_dataset` with the cars category (config default:
    ``CARS.config(profile)``: elevations -5..20 degrees, all azimuths, street backgrounds; ``test_hard``: lifted or
    lowered cars and/or an occluding bar; ``test_unseen``: the two held-out body types, class -1, their names in
    ``species``)."""
    return build_dataset(out_dir, CARS, config, profile, seed, splits, force, workers, progress)


def build_dataset(
    out_dir: str | Path,
    category: Category | str = BIRDS,
    config: Optional[SynthBirdsConfig] = None,
    profile: str = "lite",
    seed: int = 0,
    splits: Optional[Sequence[str]] = None,
    force: bool = False,
    workers: Optional[int] = None,
    progress: bool = True,
) -> dict:
    """Generate a procedural category's splits into ``out_dir`` (format: :data:`meshinv_lite.data.dataset.FORMAT`).

    ``category``: ``"birds"`` (SynthBirds) or ``"cars"`` (SynthCars), see :mod:`meshinv_lite.data.category`;
    ``config`` defaults to ``category.config(profile)``, ``splits`` to every split of the config.

    A finished split with the same settings is kept (``status="exists"``); one with other settings is
    an error unless ``force``. "Same settings" means the generator version, seed, ``config.to_dict()`` and
    the split's own size, so ``test_unseen`` (whose size is not in ``config.sizes``) can be added to a
    dataset built before it existed, leaving the other splits untouched. An interrupted build resumes at its
    first missing chunk. Chunks are generated with one torch thread, in this process for small splits and
    by 2 worker processes for splits of 16 chunks or more (``workers`` overrides: 0 = in this process).
    The build holds the dataset's lock (:func:`~meshinv_lite.data.dataset.dataset_lock`): a second process
    building the same folder at the same time waits, saying so, and then finds the splits finished.

    Returns ``{split: {"num_images", "seconds", "status"}}`` (status: built, resumed or exists).
    """
    from tqdm.auto import tqdm

    from .dataset import SplitWriter, dataset_lock, read_split, update_root_meta

    cat = get_category(category)
    config = config or cat.config(profile)
    splits = config.split_names if splits is None else splits
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [s for s in splits if s not in config.split_names]
    if unknown:
        raise ValueError(f"unknown splits {unknown}; {cat.generator} has {list(config.split_names)}")
    info = {"generator": cat.generator, "generator_version": cat.version, "category": cat.name, "seed": int(seed),
            "profile": config.profile, "config": config.to_dict(), "class_names": list(cat.class_names),
            "image_size": config.image_size}
    # the root meta.json also names the held-out classes (a key added to a root written without it); the key
    # says "species" for every category (cars: body types), so readers of test_unseen need no category switch
    root_info = {**info, "unseen_species": list(cat.unseen_class_names)}
    report = {}
    with dataset_lock(out):  # a second build of this dataset waits, then finds the finished splits
        for split in splits:
            t0 = time.perf_counter()
            signature = _split_signature(config, seed, split, cat)
            n = config.split_size(split)
            final = out / split
            if final.exists():
                meta_path = final / "meta.json"
                if meta_path.exists() and not force:
                    meta = read_json(meta_path)
                    same = {k: meta.get(k) for k in ("generator", "generator_version", "seed", "config", "num_images")} == {
                        "generator": cat.generator, "generator_version": cat.version, "seed": int(seed),
                        "config": json.loads(json.dumps(config.to_dict())), "num_images": n}
                    if not same:
                        raise FileExistsError(
                            f"{final} was built with other settings (seed {meta.get('seed')}, profile {meta.get('profile')}, "
                            f"{meta.get('num_images')} images); pass force=True (--force) to rebuild it, or choose another output folder"
                        )
                    read_split(out, split)  # still valid?
                    update_root_meta(out, root_info, split, meta["num_images"])
                    report[split] = {"num_images": meta["num_images"], "seconds": 0.0, "status": "exists"}
                    continue
                shutil.rmtree(final)
            if force and (out / f".partial-{split}").exists():
                shutil.rmtree(out / f".partial-{split}")
            writer = SplitWriter(out, split, signature)
            n_chunks = max(1, math.ceil(n / config.chunk))
            done = writer.done_chunks()
            todo = [c for c in range(n_chunks) if c not in done]
            status = "resumed" if done else "built"
            n_workers = workers if workers is not None else (2 if len(todo) >= 16 and (os.cpu_count() or 1) >= 2 else 0)
            bar = tqdm(total=n, initial=n - sum(min(config.chunk, n - c * config.chunk) for c in todo),
                       desc=f"{cat.generator} {split}", unit="img", disable=not progress)
            if n_workers > 0 and len(todo) > 1:
                import multiprocessing as mp

                ctx = mp.get_context("spawn")
                jobs = [(config.to_dict(), seed, split, c, str(out), cat.name) for c in todo]
                with ctx.Pool(n_workers) as pool:
                    for k in pool.imap_unordered(_worker_chunk, jobs):
                        bar.update(k)
            else:
                # birds call make_chunk with the four arguments it always had (tests stand in for it)
                chunk_kw = {} if cat is BIRDS else {"category": cat}
                for c in todo:
                    names, batch = make_chunk(config, seed, split, c, **chunk_kw)
                    writer.write_chunk(c, names, batch.images, batch.masks, batch_annotations(batch))
                    bar.update(len(names))
            bar.close()
            meta = {**info, "split": split, "has_ground_truth": True}
            if split == UNSEEN_SPLIT:  # class_id is -1 there; the held-out classes are named apart from class_names
                meta["unseen_species"] = list(cat.unseen_class_names)
            writer.finalize(n_chunks, meta)
            update_root_meta(out, root_info, split, n)
            report[split] = {"num_images": n, "seconds": time.perf_counter() - t0, "status": status}
    return report
