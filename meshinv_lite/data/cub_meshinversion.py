"""CUB-200-2011 in MeshInversion's layout (``datasets/cub`` as its README has it downloaded): read, convert, build.

Expected layout (``root`` is the ``datasets/cub`` folder; only the test split has predicted masks)::

    <root>/CUB_200_2011/images/<class dir>/<name>.jpg       the CUB_200_2011 archive
    <root>/CUB_200_2011/images.txt, image_class_labels.txt, classes.txt
    <root>/cache/data/<split>_cub_cleaned.mat                 MeshInversion's ``cache`` archive: CMR's struct
                                                              array ``images`` (rel_path, bbox, mask, parts)
    <root>/cache/sfm/anno_<split>.mat                         CMR's SfM cameras ``sfm_anno`` (scale, trans, rot)
    <root>/cache/cmr_pred_cam.pth                             torch dict: image basename without extension ->
                                                              {"pred_cam": (7,) [s, tx, ty, qw, qx, qy, qz] in
                                                              CMR's normalized crop, "pred_pose_overlay_iou": float, ...}
    <root>/cache/precomputed_fid_299x299_testval.npz          FID statistics: stats_m (2048,), stats_s (2048, 2048)
                                                              lower triangle only, num_images, resolution
    <root>/predicted_mask/<index>.npy                         the ``predicted_mask`` archive: PointRend mask, full
                                                              image size (H, W); ``<index>`` = position in
                                                              test_cub_cleaned.mat, not zero-padded ("12.npy")
    <root>/pseudogt_512x512/<idx>.npz                         the ``PseudoGT`` archive (GAN pretraining only;
                                                              pickled torch tensors: see :func:`read_pseudogt`)

What MeshInversion does at test time, and what is reproduced here:

* **Mask**: the predicted (PointRend) mask replaces the .mat mask, for the optimisation and for IoU. Recorded
  per image as ``mask_source`` = ``"predicted_mask (PointRend)"``; ``"cmr_mat"`` when the user opts into the
  .mat masks (``mask_source="cmr_mat"``: an ablation, or the train/val splits, which have no predicted masks).
* **Starting camera**: CMR's predicted camera when its ``pred_pose_overlay_iou > 0.7`` (strictly), otherwise
  the SfM camera of the test set; recorded per image as ``noisy_camera_source`` = ``"cmr_pred_cam"`` or
  ``"sfm"``. Both are converted to :class:`~meshinv_lite.render.camera.WeakPerspectiveCamera` in the
  package convention: the SfM one with :func:`~meshinv_lite.data.cub.cmr_to_camera`, the predicted one with
  :func:`~meshinv_lite.data.cub.cmr_normalized_to_camera` (``s_ours = s``, ``t_ours = (tx, -ty)``,
  ``R_ours = D R(q) M.T``). CMR normalizes with the corner convention ``2 p / size - 1`` on MATLAB's 1-indexed
  ``trans``, i.e. ``1 / side`` (half an original pixel) right/down of the pixel-centre position; by default
  (``corner_offset=True``) that offset is removed, so an SfM camera and its CMR normalization convert to the
  same camera, ``noisy_camera == camera`` for the SfM fall-back and ``noisy_camera - camera`` measures the
  prediction error only. ``corner_offset=False`` keeps the offset and reproduces MeshInversion's renders of
  the starting pose exactly (0.5 * S / side output pixels apart, 0.25 px for S = 256 and a 512-px crop).
* **Crop**: the 1-indexed bbox grown by 5 % of its size on each side, made square (as CMR/MeshInversion round
  it), cropped with image background 1 (white) and mask background 0, resized to ``image_size`` (256 in
  MeshInversion) with bilinear sampling at pixel centres and no antialiasing (cv2.INTER_LINEAR's sampling),
  and the mask thresholded ``> 0.95``. The photo background stays in the image (not masked).

Built datasets (:func:`build_meshinversion_cub`, or ``build_cub(..., layout="meshinversion")``) follow
:data:`meshinv_lite.data.dataset.FORMAT` with ``camera`` = the SfM camera, ``noisy_camera`` = the authors'
starting camera, and these extra per-image arrays: ``mask_source`` (str), ``noisy_camera_source`` (str),
``pred_pose_overlay_iou`` (float32, NaN when not read), ``mat_index`` (int64: position in
``<split>_cub_cleaned.mat``, MeshInversion's ``idx``), plus CUB's ``source`` and ``crop_box``.

Nothing here unpickles by default: ``cmr_pred_cam.pth`` is read with ``torch.load(weights_only=True)``
(tensors, numbers, dicts) and ``.npy`` masks with ``allow_pickle=False``. A file that needs general
unpickling (which can run code from the file) is refused unless ``trust_pickle=True``; the pseudo-GT
files always need it.
"""
from __future__ import annotations

import math
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..render.camera import WeakPerspectiveCamera
from .cub import (
    CUB_SPLITS,
    CubFormatError,
    CubRecord,
    CubSample,
    _crop,
    _open_image,
    cmr_normalized_to_camera,
    cmr_to_camera,
    crop_keypoints,
    cub_class_names,
    read_cub,
    square_crop_box,
    write_cub_split,
)

MI_PADDING = 0.05
MI_IMAGE_SIZE = 256
MI_MASK_THRESHOLD = 0.95
MI_POSE_IOU_THRESHOLD = 0.7
MASK_PREDICTED = "predicted_mask (PointRend)"
MASK_MAT = "cmr_mat"
CAMERA_PRED = "cmr_pred_cam"
CAMERA_SFM = "sfm"
FID_STATS_NAME = "precomputed_fid_299x299_testval.npz"
FID_DIM = 2048

ARCHIVES = {
    "cub": "the CUB_200_2011 archive (CUB_200_2011.tgz, Caltech-UCSD Birds-200-2011)",
    "cache": "MeshInversion's 'cache' archive (linked in the README of junzhezhang/mesh-inversion)",
    "predicted_mask": "MeshInversion's 'predicted_mask' archive (PointRend masks, linked in its README)",
    "pseudogt": "MeshInversion's 'PseudoGT' archive (pseudogt_512x512, linked in its README)",
}
_UNPACK = {"cub": "CUB_200_2011", "cache": "cache", "predicted_mask": "predicted_mask", "pseudogt": "pseudogt_512x512"}


class UntrustedPickleError(CubFormatError):
    """A file can only be read by general unpickling (which may run code from it) and ``trust_pickle`` is off."""


def _missing(path: Path, archive: str, hint: str = "") -> FileNotFoundError:
    """The error for a missing file of the layout: the path, the archive that holds it, and ``hint``."""
    return FileNotFoundError(f"{path} is missing: download {ARCHIVES[archive]} and unpack it into datasets/cub/ "
                             f"(as {_UNPACK[archive]}/){hint}")


@dataclass
class MeshInversionCubRecord(CubRecord):
    """A :class:`~meshinv_lite.data.cub.CubRecord` plus what MeshInversion uses at test time.

    Attributes:
        index: position in ``<split>_cub_cleaned.mat`` (names ``predicted_mask/<index>.npy``, MeshInversion's ``idx``).
        mask_source: ``"predicted_mask (PointRend)"`` or ``"cmr_mat"``: the mask used (optimisation and IoU).
        predicted_mask_path: the ``.npy`` read when the source is the predicted mask, else ``None``.
        camera_source: ``"cmr_pred_cam"`` or ``"sfm"``: the camera MeshInversion starts from.
        pred_cam: ``(7,)`` CMR-normalized ``[s, tx, ty, qw, qx, qy, qz]`` from ``cmr_pred_cam.pth``, or ``None``
            (predicted poses not read).
        pred_pose_overlay_iou: its overlay IoU in ``[0, 1]``, NaN when not read.
    """

    index: int = -1
    mask_source: str = MASK_MAT
    predicted_mask_path: Optional[Path] = None
    camera_source: str = CAMERA_SFM
    pred_cam: Optional[np.ndarray] = None
    pred_pose_overlay_iou: float = float("nan")

    def used_mask(self, trust_pickle: bool = False) -> np.ndarray:
        """The mask MeshInversion uses, full image size ``(H, W)`` float32 in ``[0, 1]`` (loaded now)."""
        if self.mask_source == MASK_PREDICTED:
            return read_predicted_mask(self.predicted_mask_path, trust_pickle)
        if self.mask is None:
            raise CubFormatError(f"images[{self.index}] ({self.rel_path}) has no mask in the CMR .mat")
        m = self.mask.astype(np.float32)
        return m / 255 if m.max() > 1 else m


@dataclass
class MeshInversionSample(CubSample):
    """A :class:`~meshinv_lite.data.cub.CubSample` (``camera`` = SfM; ``mask`` = the used mask, thresholded,
    values 0/1) plus ``noisy_camera``, the camera MeshInversion starts from, in our convention."""

    noisy_camera: WeakPerspectiveCamera


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def meshinversion_paths(root: str | Path, split: str = "test", cache_dir: Optional[str | Path] = None) -> dict[str, Path]:
    """The files of the layout for one split: ``cub_dir``, ``data_mat``, ``sfm_mat``, ``pred_cam``,
    ``predicted_mask`` (folder), ``fid_stats`` and ``pseudogt`` (folder)."""
    root = Path(root)
    cache = Path(cache_dir) if cache_dir is not None else root / "cache"
    return {
        "cub_dir": root / "CUB_200_2011",
        "data_mat": cache / "data" / f"{split}_cub_cleaned.mat",
        "sfm_mat": cache / "sfm" / f"anno_{split}.mat",
        "pred_cam": cache / "cmr_pred_cam.pth",
        "predicted_mask": root / "predicted_mask",
        "fid_stats": cache / FID_STATS_NAME,
        "pseudogt": root / "pseudogt_512x512",
    }


def _numpy_safe_globals() -> list:
    """numpy array/scalar/dtype reconstruction for ``torch.load(weights_only=True)``, under the module names
    of numpy 1 and 2 (objects inside object arrays still go through the restricted unpickler)."""
    try:
        from numpy._core import multiarray as ma
    except ImportError:  # numpy 1
        from numpy.core import multiarray as ma

    allowed: list = [np.ndarray, np.dtype]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(ma._reconstruct, f"{mod}._reconstruct"), (ma.scalar, f"{mod}.scalar")]
    allowed += sorted({type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFD"}, key=lambda t: t.__name__)
    return allowed


def read_cmr_pred_cams(path: str | Path, trust_pickle: bool = False) -> dict:
    """Load ``cmr_pred_cam.pth`` (a dict keyed by image basename without extension).

    Read with ``torch.load(weights_only=True)`` (tensors, numbers, containers, plus numpy arrays and
    scalars); a file that needs more is refused unless ``trust_pickle``. Entries are validated when used
    (:func:`read_meshinversion_cub`).
    """
    path = Path(path)
    if not path.exists():
        raise _missing(path, "cache", " (or pass use_pred_pose=False to start every image from its SfM camera)")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise UntrustedPickleError(
                f"{path} holds more than tensors and numbers (torch.load(weights_only=True): {str(e).splitlines()[0]}); "
                "loading it would unpickle arbitrary objects: pass trust_pickle=True (--trust-pickle) only if you "
                "trust the file") from None
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # corrupt or not a torch file
        raise CubFormatError(f"cannot read {path} with torch.load ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise CubFormatError(f"{path} holds a {type(data).__name__}, expected a dict keyed by image basename")
    return data


def _pred_entry(data: dict, key: str, path: Path, where: str) -> tuple[np.ndarray, float]:
    if key not in data:
        raise CubFormatError(f"{path} has no entry {key!r} ({where}); pass use_pred_pose=False to start from SfM cameras")
    entry = data[key]
    if not isinstance(entry, dict) or "pred_cam" not in entry or "pred_pose_overlay_iou" not in entry:
        have = list(entry) if isinstance(entry, dict) else type(entry).__name__
        raise CubFormatError(f"{path} entry {key!r}: expected keys 'pred_cam' and 'pred_pose_overlay_iou', got {have}")
    cam = entry["pred_cam"]
    cam = np.asarray(cam.detach().cpu().numpy() if isinstance(cam, torch.Tensor) else cam, dtype=np.float64).reshape(-1)
    if cam.shape != (7,) or not np.isfinite(cam).all():
        raise CubFormatError(f"{path} entry {key!r}: 'pred_cam' must be 7 finite numbers, got {cam.tolist()}")
    iou = entry["pred_pose_overlay_iou"]
    iou = float(iou.item() if hasattr(iou, "item") else iou)
    if not math.isfinite(iou):
        raise CubFormatError(f"{path} entry {key!r}: 'pred_pose_overlay_iou' is {iou}")
    return cam, iou


def read_predicted_mask(path: str | Path, trust_pickle: bool = False) -> np.ndarray:
    """One ``predicted_mask/<index>.npy`` -> ``(H, W)`` float32 in ``[0, 1]`` (bool, 0/1 or 0/255 accepted)."""
    path = Path(path)
    if not path.exists():
        raise _missing(path, "predicted_mask", " (or pass mask_source='cmr_mat' to use the CMR .mat masks)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise CubFormatError(f"cannot read {path} as a .npy array ({e})") from None
        if not trust_pickle:
            raise UntrustedPickleError(f"{path} is a pickled object array; pass trust_pickle=True (--trust-pickle) "
                                       "only if you trust the file") from None
        arr = np.load(path, allow_pickle=True)
        arr = arr.item() if arr.dtype == object and arr.ndim == 0 else arr
        arr = np.asarray(arr.numpy() if isinstance(arr, torch.Tensor) else arr)
    except OSError as e:
        raise CubFormatError(f"cannot read {path} as a .npy array ({e})") from None
    arr = np.squeeze(np.asarray(arr))
    if arr.ndim != 2 or arr.dtype == object:
        raise CubFormatError(f"{path}: expected an (H, W) mask, got shape {arr.shape} dtype {arr.dtype}")
    m = arr.astype(np.float32)
    if not np.isfinite(m).all():
        raise CubFormatError(f"{path}: the mask holds NaN or infinite values")
    if m.max() > 1:
        m = m / 255
    if m.min() < 0 or m.max() > 1:
        raise CubFormatError(f"{path}: mask values must be in [0, 1] (or 0..255), got [{m.min()}, {m.max()}]")
    return m


def _npy_shape(path: Path) -> Optional[tuple]:
    """Shape from the .npy header only (``None`` for pickled object arrays)."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(f)
        except ValueError as e:
            raise CubFormatError(f"cannot read {path} as a .npy array ({e})") from None
    return None if dtype.hasobject else tuple(int(v) for v in shape)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def read_meshinversion_cub(
    root: str | Path,
    split: str = "test",
    cache_dir: Optional[str | Path] = None,
    mask_source: Optional[str] = None,
    use_pred_pose: Optional[bool] = None,
    pred_pose_iou_threshold: float = MI_POSE_IOU_THRESHOLD,
    trust_pickle: bool = False,
) -> list[MeshInversionCubRecord]:
    """The images of a split in MeshInversion's layout, with the mask and starting camera its authors use.

    Args:
        root: MeshInversion's ``datasets/cub`` folder; ``cache_dir`` overrides ``<root>/cache``.
        mask_source: ``"predicted"`` (PointRend masks; refused with the expected path when absent) or
            ``"cmr_mat"``; default: predicted for ``test``, cmr_mat otherwise (predicted masks are indexed by
            position in ``test_cub_cleaned.mat`` and exist for the test split only).
        use_pred_pose: read ``cmr_pred_cam.pth`` and start from the predicted camera where its overlay IoU
            is ``> pred_pose_iou_threshold``; default: ``True`` for ``test`` only, as MeshInversion.
        trust_pickle: allow general unpickling of files that need it (see the module docstring).
    Returns:
        One :class:`MeshInversionCubRecord` per image, in .mat order (no pixels loaded; masks checked for
        presence and size).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MeshInversion CUB folder {root} does not exist (expected datasets/cub)")
    if split not in CUB_SPLITS:
        raise ValueError(f"unknown CUB split {split!r}; choose one of {CUB_SPLITS}")
    if mask_source is None:
        mask_source = "predicted" if split == "test" else "cmr_mat"
    if mask_source not in ("predicted", "cmr_mat"):
        raise ValueError(f"mask_source must be 'predicted' or 'cmr_mat', got {mask_source!r}")
    if mask_source == "predicted" and split != "test":
        raise ValueError(f"predicted_mask/<index>.npy is indexed by position in test_cub_cleaned.mat: split {split!r} "
                         "has no predicted masks; pass mask_source='cmr_mat'")
    if use_pred_pose is None:
        use_pred_pose = split == "test"
    paths = meshinversion_paths(root, split, cache_dir)
    cub_dir = paths["cub_dir"]
    if not cub_dir.is_dir():
        raise _missing(cub_dir, "cub")
    for name in ("images.txt", "image_class_labels.txt", "classes.txt"):
        if not (cub_dir / name).exists():
            raise _missing(cub_dir / name, "cub")
    for key in ("data_mat", "sfm_mat"):
        if not paths[key].exists():
            raise _missing(paths[key], "cache")
    mask_dir = paths["predicted_mask"]
    if mask_source == "predicted" and not mask_dir.is_dir():
        raise _missing(mask_dir, "predicted_mask", " (or opt into the CMR .mat masks with mask_source='cmr_mat', "
                                                   "--mask-source cmr_mat; recorded as 'cmr_mat')")
    pred = read_cmr_pred_cams(paths["pred_cam"], trust_pickle) if use_pred_pose else None
    base = read_cub(cub_dir, split, paths["data_mat"].parent.parent)
    records = []
    for k, rec in enumerate(base):
        where = f"images[{k}] of {paths['data_mat']}: {rec.rel_path}"
        extra: dict = {"index": k}
        if mask_source == "predicted":
            mp = mask_dir / f"{k}.npy"
            if not mp.exists():
                raise _missing(mp, "predicted_mask", f" ({len(base)} files 0.npy .. {len(base) - 1}.npy expected; "
                                                     "or pass mask_source='cmr_mat')")
            shape = _npy_shape(mp)
            if shape is not None and rec.mask is not None and tuple(v for v in shape if v != 1) != rec.mask.shape:
                raise CubFormatError(f"{mp} has shape {shape} but the .mat mask of {where} is {rec.mask.shape}: "
                                     f"the predicted masks do not belong to {paths['data_mat'].name}")
            extra.update(mask_source=MASK_PREDICTED, predicted_mask_path=mp)
        else:
            extra.update(mask_source=MASK_MAT)
        if pred is not None:
            cam, iou = _pred_entry(pred, Path(rec.rel_path).stem, paths["pred_cam"], where)
            extra.update(pred_cam=cam, pred_pose_overlay_iou=iou,
                         camera_source=CAMERA_PRED if iou > pred_pose_iou_threshold else CAMERA_SFM)
        records.append(MeshInversionCubRecord(**vars(rec), **extra))
    return records


def resize_bilinear(array: np.ndarray, size: int) -> np.ndarray:
    """``(H, W[, C])`` float -> ``(size, size[, C])`` float32, sampling as cv2.INTER_LINEAR does (pixel centres,
    edge clamp, no antialiasing), which MeshInversion's crops use."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=False)[0]
    out = out[0] if array.ndim == 2 else out.permute(1, 2, 0)
    return out.float().numpy()


def load_meshinversion_sample(
    record: MeshInversionCubRecord,
    root: str | Path,
    image_size: int = MI_IMAGE_SIZE,
    padding: float = MI_PADDING,
    mask_threshold: Optional[float] = MI_MASK_THRESHOLD,
    corner_offset: bool = True,
    trust_pickle: bool = False,
) -> MeshInversionSample:
    """MeshInversion's test-time crop of one record, with both cameras in our convention.

    Returns ``image (3, S, S)`` in ``[0, 1]`` (photo background kept, white outside the photo), ``mask (1, S, S)``
    = the used mask resized and thresholded ``> mask_threshold`` (``None``: not thresholded, in ``[0, 1]``),
    ``camera`` (SfM), ``noisy_camera`` (the starting camera), ``keypoints (15, 3)`` and ``crop_box``.
    """
    cub_dir = Path(root) / "CUB_200_2011"
    img_path = cub_dir / "images" / record.rel_path
    if not img_path.exists():
        raise _missing(img_path, "cub", f" (listed as images[{record.index}] in the CMR .mat)")
    img = _open_image(img_path, "RGB").astype(np.float32) / 255
    mask = record.used_mask(trust_pickle)
    if mask.shape != img.shape[:2]:
        src = record.predicted_mask_path if record.mask_source == MASK_PREDICTED else f"the .mat mask of images[{record.index}]"
        raise CubFormatError(f"{src} is {mask.shape[1]}x{mask.shape[0]} but {img_path} is {img.shape[1]}x{img.shape[0]}")
    box = square_crop_box(record.bbox, padding)
    side = float(box[2])
    img_r = np.clip(resize_bilinear(_crop(img, box, 1.0), image_size), 0, 1)
    mask_r = np.clip(resize_bilinear(_crop(mask, box, 0.0), image_size), 0, 1)
    if mask_threshold is not None:
        mask_r = (mask_r > mask_threshold).astype(np.float32)
    camera = cmr_to_camera(record.sfm_scale, record.sfm_trans, record.sfm_rot, box)
    if record.camera_source == CAMERA_PRED:
        noisy = cmr_normalized_to_camera(record.pred_cam, side, corner_offset)
    else:
        noisy = camera
    return MeshInversionSample(
        image=torch.from_numpy(img_r).permute(2, 0, 1).contiguous(),
        mask=torch.from_numpy(mask_r)[None].contiguous(),
        camera=camera,
        keypoints=crop_keypoints(record.parts, box),
        crop_box=box,
        noisy_camera=noisy,
    )


# --------------------------------------------------------------------------------------------------
# Conversion to the package format
# --------------------------------------------------------------------------------------------------


def build_meshinversion_cub(
    root: str | Path,
    out_dir: str | Path,
    image_size: int = MI_IMAGE_SIZE,
    splits: Sequence[str] = ("test",),
    cache_dir: Optional[str | Path] = None,
    padding: float = MI_PADDING,
    limit: Optional[int] = None,
    force: bool = False,
    chunk: int = 64,
    progress: bool = True,
    mask_source: Optional[str] = None,
    use_pred_pose: Optional[bool] = None,
    mask_threshold: Optional[float] = MI_MASK_THRESHOLD,
    pred_pose_iou_threshold: float = MI_POSE_IOU_THRESHOLD,
    corner_offset: bool = True,
    trust_pickle: bool = False,
) -> dict:
    """Convert MeshInversion's ``datasets/cub`` into :data:`meshinv_lite.data.dataset.FORMAT` under ``out_dir``.

    ``camera`` = the SfM camera, ``noisy_camera`` = the camera MeshInversion starts from, masks = the used
    mask (thresholded), plus the per-image arrays listed in the module docstring. Options as in
    :func:`read_meshinversion_cub` and :func:`load_meshinversion_sample`. Returns
    ``{split: {"num_images", "seconds", "status", "mask_source", "camera_sources"}}``.
    """
    from .dataset import dataset_lock, update_root_meta

    root, out = Path(root), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"MeshInversion CUB folder {root} does not exist (expected datasets/cub)")
    if not (root / "CUB_200_2011" / "classes.txt").exists():
        raise _missing(root / "CUB_200_2011" / "classes.txt", "cub")
    names = cub_class_names(root / "CUB_200_2011")
    info = {"generator": "cub", "layout": "meshinversion", "source": str(root.resolve()), "image_size": int(image_size),
            "padding": padding, "class_names": names}
    report = {}
    with dataset_lock(out):
        for split in splits:
            t0 = time.perf_counter()
            records = read_meshinversion_cub(root, split, cache_dir, mask_source, use_pred_pose,
                                             pred_pose_iou_threshold, trust_pickle)
            if limit is not None:
                records = records[:limit]
            n = len(records)
            used_masks = sorted({r.mask_source for r in records})
            sources = {s: sum(r.camera_source == s for r in records) for s in (CAMERA_PRED, CAMERA_SFM)}
            settings = {"mask_source": used_masks[0] if len(used_masks) == 1 else used_masks,
                        "mask_threshold": mask_threshold, "use_pred_pose": bool(records and records[0].pred_cam is not None),
                        "pred_pose_iou_threshold": pred_pose_iou_threshold, "corner_offset_removed": corner_offset,
                        "resize": "bilinear, pixel centres, no antialiasing (cv2.INTER_LINEAR sampling)"}

            def convert(part: list[MeshInversionCubRecord]) -> tuple[list, dict]:
                samples = [load_meshinversion_sample(r, root, image_size, padding, mask_threshold, corner_offset,
                                                     trust_pickle) for r in part]
                return samples, {
                    "camera": WeakPerspectiveCamera.cat([s.camera for s in samples]).as_tensor(),
                    "noisy_camera": WeakPerspectiveCamera.cat([s.noisy_camera for s in samples]).as_tensor(),
                    "mat_index": np.array([r.index for r in part], dtype=np.int64),
                    "mask_source": np.array([r.mask_source for r in part], dtype=str),
                    "noisy_camera_source": np.array([r.camera_source for r in part], dtype=str),
                    "pred_pose_overlay_iou": np.array([r.pred_pose_overlay_iou for r in part], dtype=np.float32),
                }

            final_meta = {**info, **settings, "split": split, "has_ground_truth": False, "camera_sources": sources,
                          "noisy_camera": "MeshInversion's starting camera: CMR prediction if its overlay "
                                          f"IoU > {pred_pose_iou_threshold}, else SfM"}
            status = write_cub_split(out, split, records, convert, {**info, **settings, "split": split, "limit": limit},
                                     final_meta, force, chunk, progress, f"cub (meshinversion) {split}")
            update_root_meta(out, info, split, n)
            report[split] = {"num_images": n, "seconds": time.perf_counter() - t0, "status": status,
                             "mask_source": settings["mask_source"], "camera_sources": sources}
    return report


# --------------------------------------------------------------------------------------------------
# FID statistics and pseudo-GT
# --------------------------------------------------------------------------------------------------


def read_fid_stats(path: str | Path, dim: Optional[int] = FID_DIM) -> tuple[np.ndarray, np.ndarray]:
    """``precomputed_fid_299x299_testval.npz`` -> ``(mu (D,), sigma (D, D))`` float64, sigma full and symmetric.

    ``path``: the file, or the ``datasets/cub`` folder. The file stores ``stats_s`` as its lower triangle
    (``np.tril``); the full matrix is ``S + triu(S.T, 1)``. A matrix that is already symmetric is kept;
    anything else, a missing key or a shape other than ``(dim,)`` / ``(dim, dim)`` (``dim=None``: any ``D``)
    is refused with the file and key named.
    """
    path = Path(path)
    if path.is_dir():
        path = meshinversion_paths(path)["fid_stats"]
    if not path.exists():
        raise _missing(path, "cache")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # not a zip, corrupt, or pickled content
        raise CubFormatError(f"cannot read {path} as an .npz of arrays ({type(e).__name__}: {e})") from None
    for key in ("stats_m", "stats_s"):
        if key not in arrays:
            raise CubFormatError(f"{path} has no array {key!r} (it has {sorted(arrays)})")
    mu = np.asarray(arrays["stats_m"], dtype=np.float64)
    s = np.asarray(arrays["stats_s"], dtype=np.float64)
    d = mu.shape[0] if mu.ndim == 1 else None
    if mu.ndim != 1 or (dim is not None and d != dim):
        raise CubFormatError(f"{path}: 'stats_m' has shape {mu.shape}, expected ({dim if dim is not None else 'D'},)")
    if s.shape != (d, d):
        raise CubFormatError(f"{path}: 'stats_s' has shape {s.shape}, expected ({d}, {d}) to match 'stats_m'")
    if not (np.isfinite(mu).all() and np.isfinite(s).all()):
        raise CubFormatError(f"{path}: 'stats_m' or 'stats_s' holds NaN or infinite values")
    upper = np.triu(s, 1)
    if not upper.any():
        return mu, s + np.triu(s.T, 1)
    if np.allclose(s, s.T, rtol=1e-5, atol=1e-12):
        return mu, (s + s.T) / 2
    raise CubFormatError(f"{path}: 'stats_s' is neither lower-triangular (as written by np.tril) nor symmetric")


PSEUDOGT_KEYS = ("mesh", "texture", "texture_alpha", "image")


def read_pseudogt(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """One ``pseudogt_512x512/<idx>.npz`` (ConvMesh format) -> ``{"mesh" (3, 32, 32), "texture" (3, 512, 512)
    in [-1, 1], "texture_alpha" (1, 512, 512), "image" (C, 299, 299) in [-1, 1]}`` float32 tensors.

    The file is a pickled dict of torch tensors inside numpy: reading it unpickles, which can run code from
    the file, so it is refused unless ``trust_pickle=True`` (use it for files you downloaded yourself from
    the authors' archive).
    """
    path = Path(path)
    if not path.exists():
        raise _missing(path, "pseudogt")
    if not trust_pickle:
        raise UntrustedPickleError(f"{path} holds pickled torch tensors; reading it unpickles (which can run code "
                                   "from the file): pass trust_pickle=True (--trust-pickle) only if you trust it")
    try:
        with np.load(path, allow_pickle=True) as z:
            data = z["data"].item()
    except KeyError:
        raise CubFormatError(f"{path} has no array 'data'") from None
    except Exception as e:
        raise CubFormatError(f"cannot read {path} ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise CubFormatError(f"{path}: 'data' holds a {type(data).__name__}, expected a dict")
    missing = [k for k in PSEUDOGT_KEYS if k not in data]
    if missing:
        raise CubFormatError(f"{path}: 'data' lacks {missing} (has {sorted(data)})")
    return {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).float() for k, v in data.items()}


__all__ = [
    "ARCHIVES",
    "CAMERA_PRED",
    "CAMERA_SFM",
    "MASK_MAT",
    "MASK_PREDICTED",
    "MeshInversionCubRecord",
    "MeshInversionSample",
    "UntrustedPickleError",
    "build_meshinversion_cub",
    "load_meshinversion_sample",
    "meshinversion_paths",
    "read_cmr_pred_cams",
    "read_fid_stats",
    "read_meshinversion_cub",
    "read_predicted_mask",
    "read_pseudogt",
    "resize_bilinear",
]
