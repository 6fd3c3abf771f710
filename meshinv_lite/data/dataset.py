"""The on-disk dataset format shared by SynthBirds and converted CUB, its writer, reader and torch ``Dataset``.

See :data:`FORMAT` for the layout. Writing is resumable and atomic: a split is built in a hidden
``.partial-<split>/`` folder chunk by chunk (each chunk's annotations saved after its PNGs, so an
interrupted run resumes at the first missing chunk), then its ``annotations.npz`` and, last, its
``meta.json`` are written and the folder is renamed to ``<split>/`` in one step. A folder named like a
split without a ``meta.json`` is therefore never complete, and readers refuse it. Builders hold
:func:`dataset_lock` (``<root>/.lock``) while they check and write, so two processes building one dataset
at once take turns: the second finds the first's finished splits.
"""
from __future__ import annotations

import json
import shutil
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..io import atomic_path, atomic_savez, file_lock, read_json, write_json
from ..render.camera import WeakPerspectiveCamera

FORMAT_NAME = "meshinv-lite-reconstruction"
FORMAT_VERSION = 1

FORMAT = """\
meshinv-lite reconstruction dataset format, version 1
======================================================

<root>/
  meta.json                 dataset summary: format, generator (+ version), category (procedural data:
                            "birds" = SynthBirds, "cars" = SynthCars), seed, profile, config,
                            class_names, unseen_species (procedural data: the held-out species, for
                            SynthCars the held-out body types, of test_unseen, never among class_names),
                            and the size of every finished split
  <split>/                  train, val, test, test_hard, test_unseen (SynthBirds, SynthCars); train, val,
                            test (CUB).
                            test_unseen holds only species no other split, pseudo-GT, GAN or feature
                            network saw (ordinary articulation, the cameras and backgrounds of test)
    images/<name>.png       RGB, 8 bit, S x S (S = image_size)
    masks/<name>.png        grayscale, 8 bit, S x S: 255 = object, 0 = background (read as value / 255)
    annotations.npz         one row per image, in this order:
      names           (N,)            str     file stem: images/<name>.png, masks/<name>.png
      camera          (N, 7)          float32 [s, tx, ty, qw, qx, qy, qz], package convention
                                              (meshinv_lite.render.camera: V_cam = qrot(q, s V) + (tx, ty, 0),
                                              x right, y up in [-1, 1], larger z farther)
      noisy_camera    (N, 7)          float32 the camera a reconstruction method is given (SynthBirds:
                                              exact camera + simulated SfM error; CUB: the SfM camera, or in
                                              MeshInversion's layout the authors' starting camera: CMR's
                                              predicted one where its overlay IoU > 0.7, else the SfM one)
      class_id        (N,)            int64   index into meta.json "class_names"; -1: a species with no
                                              class there (every row of test_unseen)
      occluded        (N,)            bool    an occluder hides part of the object (not in the mask)
      species         (N,)            str     test_unseen only: the held-out species' name (one of
                                              meta.json "unseen_species"; SynthCars: the body type)
     ground truth, procedural data only (absent for real data):
      deform_map      (N, 3, Hd, Wd)  float32 offsets of the 31 x 32 UV-sphere template
                                              (meshinv_lite.render.deform_vertices gives the vertices)
      texture_map     (N, 3, Ht, Wt)  uint8   texture, value / 255 in [0, 1] (what was rendered)
      occluder        (N, 5)          float32 twig bar (x0, y0, x1, y1, half_width), NaN if none
      extreme         (N,)            bool    articulation (SynthCars: proportions, lifted or lowered)
                                              drawn from the held-out extremes
      wing_open       (N, 2)          float32 SynthBirds: articulation of the +x / -x wing, 0 folded .. 1 open
      tail_scale      (N,)            float32 SynthBirds: tail length factor
      body            (N, 4)          float32 SynthCars: length, width, height (ground to roof), clearance
      azimuth, elevation (N,)         float32 view angles of the camera, degrees
     real data (CUB) only:
      source          (N,)            str     image path relative to the CUB images/ folder
      crop_box        (N, 4)          float32 square crop (x0, y0, side, side) in original 0-indexed pixels
     CUB in MeshInversion's layout only (meshinv_lite.data.cub_meshinversion):
      mask_source     (N,)            str     the mask stored (and scored by IoU): "predicted_mask (PointRend)"
                                              or "cmr_mat"
      noisy_camera_source (N,)        str     "cmr_pred_cam" or "sfm"
      pred_pose_overlay_iou (N,)      float32 CMR's overlay IoU of its predicted camera (NaN: not read)
      mat_index       (N,)            int64   position in <split>_cub_cleaned.mat (the authors' image index)
    meta.json               written last: marks the split complete (split, num_images, image_size,
                            has_ground_truth, class_names, generator, seed, profile, config;
                            test_unseen also unseen_species)
"""

REQUIRED_KEYS = ("names", "camera", "noisy_camera", "class_id", "occluded")
GT_KEYS = ("deform_map", "texture_map")


class DatasetFormatError(ValueError):
    """A dataset on disk does not follow :data:`FORMAT`; the message names the file and what to do."""


# --------------------------------------------------------------------------------------------------
# PNG helpers
# --------------------------------------------------------------------------------------------------


def image_to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in ``[0, 1]`` -> ``(H, W, 3)`` uint8 (rounded)."""
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def mask_to_uint8(mask: torch.Tensor) -> np.ndarray:
    """``(1, H, W)`` in ``[0, 1]`` -> ``(H, W)`` uint8 (rounded; hard masks give 0 / 255)."""
    return (mask.detach().clamp(0, 1)[0] * 255).round().to(torch.uint8).cpu().numpy()


def save_png(path: Path, array: np.ndarray, atomic: bool = True) -> None:
    """Write a uint8 ``(H, W)`` or ``(H, W, 3)`` array as PNG (atomically unless told otherwise)."""
    if not atomic:
        Image.fromarray(array).save(path, format="PNG", compress_level=1)
        return
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=1)


def load_png(path: Path, mode: str) -> np.ndarray:
    """Read a PNG as uint8 in ``mode`` (``"RGB"`` or ``"L"``); a clear error names unreadable files."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; re-build or re-convert this split")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetFormatError(f"cannot read {path} as a PNG image ({e}); the file is corrupt: re-build this split") from None


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def _signature_matches(a: dict, b: dict) -> bool:
    return json.loads(json.dumps(a, sort_keys=True)) == json.loads(json.dumps(b, sort_keys=True))


@contextmanager
def dataset_lock(root: str | Path) -> Iterator[None]:
    """Hold the build lock of the dataset in ``root`` (``<root>/.lock``, :func:`meshinv_lite.io.file_lock`):
    a second builder of the same dataset waits, with a message, instead of writing into the same
    ``.partial-<split>`` folder."""
    root = Path(root)
    with file_lock(root / ".lock", f"the dataset in {root}"):
        yield


class SplitWriter:
    """Write one split chunk by chunk into ``<root>/.partial-<split>/``, then publish it atomically.

    Args:
        root: dataset folder.
        split: split name.
        signature: JSON-able settings that determine the split's content (generator, seed, config...).
            A partial folder left by an interrupted run is resumed only when its signature matches,
            otherwise it is discarded.
    """

    def __init__(self, root: str | Path, split: str, signature: dict):
        self.root = Path(root)
        self.split = split
        self.signature = json.loads(json.dumps(signature, default=str))
        self.final = self.root / split
        self.partial = self.root / f".partial-{split}"
        self.chunks = self.partial / "chunks"
        sig_path = self.partial / "partial.json"
        if self.partial.exists():
            ok = False
            if sig_path.exists():
                try:
                    ok = _signature_matches(read_json(sig_path), self.signature)
                except ValueError:
                    ok = False
            if not ok:
                shutil.rmtree(self.partial)
        for sub in ("images", "masks", "chunks"):
            (self.partial / sub).mkdir(parents=True, exist_ok=True)
        if not sig_path.exists():
            write_json(sig_path, self.signature)

    def done_chunks(self) -> set[int]:
        """Indices of chunks already written completely (by this run or an interrupted one)."""
        return {int(p.stem.split("_")[1]) for p in self.chunks.glob("chunk_*.npz")}

    def write_chunk(
        self,
        index: int,
        names: Sequence[str],
        images: torch.Tensor,
        masks: torch.Tensor,
        annotations: dict[str, Any],
    ) -> None:
        """Write the PNGs of one chunk, then its annotations (which mark the chunk done).

        Args:
            names: ``N`` file stems.
            images: ``(N, 3, S, S)`` in ``[0, 1]``; masks: ``(N, 1, S, S)`` in ``[0, 1]``.
            annotations: arrays with ``N`` rows (see :data:`FORMAT`), tensors or numpy.
        """
        n = len(names)
        if images.shape[0] != n or masks.shape[0] != n:
            raise ValueError(f"chunk {index}: {n} names but {images.shape[0]} images and {masks.shape[0]} masks")
        # PNGs go straight into the hidden partial folder: the chunk counts as done only once its
        # annotations are saved (atomically, below), so a half-written PNG is always rewritten.
        for k in range(n):
            save_png(self.partial / "images" / f"{names[k]}.png", image_to_uint8(images[k]), atomic=False)
            save_png(self.partial / "masks" / f"{names[k]}.png", mask_to_uint8(masks[k]), atomic=False)
        arrays = {"names": np.asarray(list(names), dtype=str)}
        for key, value in annotations.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.shape[:1] != (n,):
                raise ValueError(f"chunk {index}: annotation {key!r} has shape {value.shape}, expected {n} rows")
            arrays[key] = value
        atomic_savez(self.chunks / f"chunk_{index:05d}.npz", **arrays)

    def finalize(self, num_chunks: int, meta: dict) -> Path:
        """Merge ``num_chunks`` chunk annotations, write ``annotations.npz`` and ``meta.json`` (last),
        and rename the folder to ``<root>/<split>``. Returns the split folder."""
        missing = sorted(set(range(num_chunks)) - self.done_chunks())
        if missing:
            raise RuntimeError(f"cannot finalize split {self.split!r}: chunks {missing[:5]} were not written")
        parts: dict[str, list[np.ndarray]] = {}
        for i in range(num_chunks):
            with np.load(self.chunks / f"chunk_{i:05d}.npz") as z:
                for key in z.files:
                    parts.setdefault(key, []).append(z[key])
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        n = len(arrays["names"])
        atomic_savez(self.partial / "annotations.npz", **arrays)
        shutil.rmtree(self.chunks)
        (self.partial / "partial.json").unlink()
        write_json(self.partial / "meta.json", {**meta, "split": self.split, "num_images": n, "format": FORMAT_NAME, "format_version": FORMAT_VERSION})
        if self.final.exists():
            shutil.rmtree(self.final)
        self.partial.rename(self.final)
        return self.final


def write_split(
    root: str | Path,
    split: str,
    images: torch.Tensor,
    masks: torch.Tensor,
    annotations: dict[str, Any],
    meta: dict,
    names: Optional[Sequence[str]] = None,
) -> Path:
    """Write a whole (small) split in one call; see :class:`SplitWriter` for large or resumable ones.

    Args:
        images: ``(N, 3, S, S)`` in ``[0, 1]``; masks: ``(N, 1, S, S)``.
        annotations: at least ``camera``, ``noisy_camera``, ``class_id`` (``occluded`` defaults to False).
        meta: split metadata; must hold ``image_size`` and ``class_names``.
    """
    n = images.shape[0]
    names = list(names) if names is not None else [f"{i:06d}" for i in range(n)]
    annotations = dict(annotations)
    annotations.setdefault("occluded", np.zeros(n, dtype=bool))
    for key in ("camera", "noisy_camera", "class_id"):
        if key not in annotations:
            raise ValueError(f"write_split needs the annotation {key!r}")
    writer = SplitWriter(root, split, {"write_split": split, "n": n})
    writer.write_chunk(0, names, images, masks, annotations)
    return writer.finalize(1, meta)


def update_root_meta(root: str | Path, info: dict, split: str, num_images: int) -> None:
    """Record a finished split in ``<root>/meta.json`` (created from ``info`` when absent).

    A root meta that disagrees with ``info`` on any key it holds describes another dataset and is started
    afresh; keys of ``info`` it lacks (written by an older version) are added, keeping its splits."""
    path = Path(root) / "meta.json"
    current = read_json(path) if path.exists() else {}
    shared = [k for k in info if k in current]
    if not shared or not _signature_matches({k: current[k] for k in shared}, {k: info[k] for k in shared}):
        current = {}
    current.update(info)
    current.setdefault("splits", {})[split] = num_images
    current["format"], current["format_version"] = FORMAT_NAME, FORMAT_VERSION
    write_json(path, current)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


#: Which cameras a method is given: ``"noisy"`` (SfM-like error, the default everywhere) or ``"exact"``.
CAMERA_KINDS = ("noisy", "exact")


def camera_key(camera: str) -> str:
    """The annotation / batch key of a camera kind: ``"noisy"`` -> ``"noisy_camera"``, ``"exact"`` -> ``"camera"``."""
    if camera not in CAMERA_KINDS:
        raise ValueError(f"camera must be one of {CAMERA_KINDS}, got {camera!r}")
    return "noisy_camera" if camera == "noisy" else "camera"


def batch_cameras(batch: dict, camera: str = "noisy") -> WeakPerspectiveCamera:
    """The cameras of a batch of :meth:`ReconstructionDataset.batch` (or ``__getitem__``) of kind ``camera``
    (:data:`CAMERA_KINDS`), as a :class:`~meshinv_lite.render.camera.WeakPerspectiveCamera` on the batch's device."""
    return WeakPerspectiveCamera.from_tensor(batch[camera_key(camera)])


@dataclass
class SplitData:
    """A validated split: its folder, ``meta.json`` content and annotation arrays (loaded lazily)."""

    path: Path
    meta: dict
    annotations: dict[str, np.ndarray]

    @property
    def names(self) -> np.ndarray:
        return self.annotations["names"]

    def image_path(self, i: int) -> Path:
        return self.path / "images" / f"{self.names[i]}.png"

    def mask_path(self, i: int) -> Path:
        return self.path / "masks" / f"{self.names[i]}.png"


def list_splits(root: str | Path) -> list[str]:
    """The finished splits in a dataset folder: sub-folders with a ``meta.json`` and an ``annotations.npz``
    (not ``pseudo_gt_*``, ``gan_*`` or hidden build folders)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / "meta.json").is_file() and (p / "annotations.npz").is_file())


def read_split(root: str | Path, split: str, check_files: bool = True) -> SplitData:
    """Open and validate ``<root>/<split>``: completeness, annotation keys and lengths, and (with
    ``check_files``) that every annotated image and mask exists. Errors name the offending file."""
    root = Path(root)
    path = root / split
    if not root.exists():
        raise FileNotFoundError(f"dataset folder {root} does not exist; build it first (data_scripts/make_synthbirds.py)")
    if not path.is_dir():
        partial = root / f".partial-{split}"
        hint = f" ({partial} holds an interrupted build: re-run the build to resume it)" if partial.exists() else ""
        raise FileNotFoundError(f"split {split!r} not found in {root}{hint}; available splits: {list_splits(root)}")
    meta_path = path / "meta.json"
    if not meta_path.exists():
        raise DatasetFormatError(f"{meta_path} is missing: split {split!r} is incomplete; re-build it (with --force)")
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise DatasetFormatError(f"{meta_path} holds no JSON object: the file is damaged; re-build split {split!r}")
    ann_path = path / "annotations.npz"
    if not ann_path.exists():
        raise FileNotFoundError(f"{ann_path} is missing; re-build split {split!r}")
    try:
        with np.load(ann_path, allow_pickle=False) as z:
            annotations = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as e:
        raise DatasetFormatError(f"cannot read {ann_path} ({type(e).__name__}: {e}); the file is corrupt: re-build "
                                 f"split {split!r}") from None
    missing = [k for k in REQUIRED_KEYS if k not in annotations]
    if missing:
        raise DatasetFormatError(f"{ann_path} lacks the arrays {missing} required by the format (see meshinv_lite.data.dataset.FORMAT)")
    n = len(annotations["names"])
    for key, arr in annotations.items():
        if arr.shape[:1] != (n,):
            raise DatasetFormatError(f"{ann_path}: array {key!r} has {arr.shape[0] if arr.ndim else 0} rows, 'names' has {n}")
    for key in ("camera", "noisy_camera"):
        cams = annotations[key]
        if cams.shape[1:] != (7,):
            raise DatasetFormatError(f"{ann_path}: {key!r} must have shape (N, 7), got {cams.shape}")
        bad = np.nonzero(~np.isfinite(cams).all(1))[0]
        if bad.size:
            i = int(bad[0])
            raise DatasetFormatError(
                f"{ann_path}: {key!r} of image {i} ({annotations['names'][i]}) holds NaN or infinite values "
                f"{cams[i].tolist()} ({bad.size} such row(s): {bad[:10].tolist()}); fix or re-build the annotations")
    if "num_images" in meta and meta["num_images"] != n:
        raise DatasetFormatError(f"{meta_path} says {meta['num_images']} images but {ann_path} annotates {n}")
    data = SplitData(path, meta, annotations)
    if check_files:
        for sub, what in (("images", data.image_path), ("masks", data.mask_path)):
            folder = path / sub
            present = {p.name for p in folder.glob("*.png")} if folder.is_dir() else set()
            absent = [i for i in range(n) if what(i).name not in present]
            if absent:
                raise DatasetFormatError(
                    f"split {split!r} in {root} annotates {n} images but {folder} holds {len(present)} PNGs; "
                    f"missing {what(absent[0])} ({len(absent)} missing in all): re-build the split"
                )
    return data


class ReconstructionDataset(torch.utils.data.Dataset):
    """A split in :data:`FORMAT` as a torch ``Dataset``.

    Each item is a dict:

    * ``image`` ``(3, S, S)`` float in ``[0, 1]``; ``mask`` ``(1, S, S)`` float in ``[0, 1]``;
    * ``camera``, ``noisy_camera`` ``(7,)`` (see :meth:`WeakPerspectiveCamera.from_tensor`);
    * ``class_id`` (long scalar), ``occluded`` (bool scalar), ``index`` (int), ``name`` (str);
    * with ground truth (SynthBirds, ``load_gt=True``): ``deform_map`` ``(3, Hd, Wd)`` and
      ``texture_map`` ``(3, Ht, Wt)`` in ``[0, 1]``.

    Args:
        root: dataset folder; split: e.g. ``"train"``.
        load_gt: include ground-truth maps when the split has them.
        limit: use only the first ``limit`` images.
    """

    def __init__(self, root: str | Path, split: str, load_gt: bool = True, limit: Optional[int] = None):
        self.data = read_split(root, split)
        self.split = split
        self.root = Path(root)
        self.load_gt = load_gt and self.has_gt
        n = len(self.data.names)
        self._n = n if limit is None else min(n, int(limit))

    # metadata -------------------------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        return self.data.meta

    @property
    def image_size(self) -> int:
        return int(self.data.meta["image_size"])

    @property
    def class_names(self) -> list[str]:
        return list(self.data.meta.get("class_names", []))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_gt(self) -> bool:
        return all(k in self.data.annotations for k in GT_KEYS)

    def annotation(self, key: str) -> np.ndarray:
        """All rows of one annotation array (first ``len(self)``)."""
        if key not in self.data.annotations:
            raise KeyError(f"{self.data.path / 'annotations.npz'} has no {key!r}; it has {sorted(self.data.annotations)}")
        return self.data.annotations[key][: self._n]

    def cameras(self, noisy: bool = False) -> WeakPerspectiveCamera:
        """All cameras of the split as one batch."""
        return WeakPerspectiveCamera.from_tensor(torch.from_numpy(self.annotation(camera_key("noisy" if noisy else "exact"))).float())

    @property
    def class_ids(self) -> torch.Tensor:
        return torch.from_numpy(self.annotation("class_id")).long()

    # items ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def _load(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.image_size
        img_path, mask_path = self.data.image_path(i), self.data.mask_path(i)
        img = load_png(img_path, "RGB")
        if img.shape[:2] != (s, s):
            raise DatasetFormatError(f"image {img_path} is {img.shape[1]}x{img.shape[0]} but the split's image_size is {s}: re-build the split")
        mask = load_png(mask_path, "L")
        if mask.shape != (s, s):
            raise DatasetFormatError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image is {s}x{s}: masks must match their images; re-build the split"
            )
        image = torch.from_numpy(img.copy()).permute(2, 0, 1).float() / 255
        return image, torch.from_numpy(mask.copy())[None].float() / 255

    def __getitem__(self, i: int) -> dict:
        if not -self._n <= i < self._n:
            raise IndexError(f"index {i} out of range for {self._n} images")
        i = i % self._n
        image, mask = self._load(i)
        a = self.data.annotations
        item = {
            "image": image,
            "mask": mask,
            "camera": torch.from_numpy(a["camera"][i].astype(np.float32)),
            "noisy_camera": torch.from_numpy(a["noisy_camera"][i].astype(np.float32)),
            "class_id": torch.tensor(int(a["class_id"][i]), dtype=torch.long),
            "occluded": torch.tensor(bool(a["occluded"][i])),
            "index": i,
            "name": str(a["names"][i]),
        }
        if self.load_gt:
            item["deform_map"] = torch.from_numpy(a["deform_map"][i].astype(np.float32))
            item["texture_map"] = torch.from_numpy(a["texture_map"][i]).float() / 255
        return item

    def batch(self, indices: Iterable[int]) -> dict:
        """Several items stacked into one dict of batched tensors (``names`` as a list)."""
        items = [self[i] for i in indices]
        out = {}
        for key in items[0]:
            vals = [it[key] for it in items]
            out[key] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
        return out

    def validate(self) -> int:
        """Read every image and mask (raising on the first bad file); returns the number checked."""
        for i in range(len(self)):
            self._load(i)
        return len(self)
