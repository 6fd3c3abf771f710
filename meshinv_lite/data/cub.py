"""CUB-200-2011 with CMR annotations: read, crop, convert cameras, write in the package's format.

Expected layout (the original dataset plus the cache of Kanazawa et al.'s CMR, also used by MeshInversion)::

    <cub_dir>/images/<class dir>/<name>.jpg
    <cub_dir>/segmentations/<class dir>/<name>.png   optional: masks come from the .mat when present
    <cub_dir>/classes.txt               "<class id> <class dir>"          (ids 1..200)
    <cub_dir>/images.txt                "<image id> <class dir>/<name>.jpg"
    <cub_dir>/image_class_labels.txt    "<image id> <class id>"
    <cub_dir>/bounding_boxes.txt        "<image id> <x> <y> <w> <h>"      (not needed: the .mat has the bbox)
    <cub_dir>/train_test_split.txt      "<image id> <is_train>"
    <cache_dir>/data/<split>_cub_cleaned.mat   struct array ``images``: rel_path, bbox (x1, y1, x2, y2,
                                                1-indexed), mask (H x W), parts (3 x 15: x, y, visible)
    <cache_dir>/sfm/anno_<split>.mat           struct array ``sfm_anno``: scale, trans (2), rot (3 x 3)
                                                (an ``sfm_anno`` field inside ``images`` works too)

``cache_dir`` defaults to ``<cub_dir>/cachedir/cub``; splits are CMR's ``train``, ``val``, ``test``.
MeshInversion's ``datasets/cub`` layout (the same files plus predicted masks and CMR-predicted cameras) is
read by :mod:`meshinv_lite.data.cub_meshinversion`; :func:`build_cub` detects it (:func:`detect_cub_layout`).

Camera conventions (converted once, in :func:`cmr_to_camera`)
-------------------------------------------------------------
CMR's structure-from-motion (``preprocess/cub/cub_sfm.m``) fits, for every image, keypoints in the
original image's **1-indexed** (MATLAB) pixel coordinates as ``kp = scale * rot[:2] @ X + trans``, with
``rot`` a proper rotation. Its object frame (``alignSfmModel.m``) has ``x`` towards the bird's left,
``y`` towards the tail and ``z`` up; its camera frame is the photo's: ``x`` right, ``y`` down
(image rows), ``z`` into the scene. CMR's data loader then crops, rescales and normalizes those pixel
coordinates (and drops the 1-pixel offset); MeshInversion's renderer multiplies rotated points by
``[1, -1, -1]`` to flip ``y`` (and ``z``) for its rasterizer.

Ours (:mod:`meshinv_lite.render.camera`): object ``y`` up, beak ``+z``, symmetry plane ``x = 0``; camera
``x`` right, ``y`` **up**, larger ``z`` farther, normalized coordinates of the square crop. Because
that display frame is left-handed, a proper rotation can only reproduce a photo of the *mirrored*
object, so the object frame change includes the left-right mirror (harmless for symmetric birds)::

    X_ours = M @ X_cmr,   M = [[-1, 0, 0], [0, 0, 1], [0, -1, 0]]   (det -1: tail -> -z, up -> +y)
    R_ours = D @ R_cmr @ M.T,   D = diag(1, -1, 1)                   (proper rotation)
    s_ours = 2 * scale / side
    t_ours = pixel_to_ndc(trans - 1 - (x0, y0), side, side)        (crop box x0, y0, side in 0-indexed px)

so that ``s_ours * (R_ours @ X_ours)[:2] + t_ours`` is the normalized position, in the crop, of the pixel
CMR's camera projects ``X_cmr`` to, and ``z`` grows with depth in the photo. Meshes in the CUB object
frame are brought into ours with :func:`cmr_points_to_object`.

CMR-normalized cameras (MeshInversion's ``sfm_pose`` and CMR's predicted ``pred_cam``)
--------------------------------------------------------------------------------------
CMR's data loader (copied by MeshInversion) turns the SfM camera into ``[s, tx, ty, qw, qx, qy, qz]`` in the
normalized square crop (x right, y **down**): ``s_n = 2 * scale / side`` (same as ``s_ours``),
``t_n = 2 * (trans - (x0, y0)) / side - 1`` and ``q`` = the quaternion of ``rot``. That is the *corner*
convention ``2 p / size - 1`` applied to ``trans`` without removing MATLAB's 1-pixel offset; in our
pixel-centre convention the same pixel is at ``2 (trans - 1 - x0 + 0.5) / side - 1 = t_n - 1 / side``.
So a CMR-normalized camera is ``1 / side`` (half an original pixel) right of and below the SfM fit;
CMR's pose predictor, trained on these targets, inherits the offset. :func:`cmr_normalized_to_camera`
converts such a camera with ``s_ours = s``, ``R_ours = D R(q) M.T`` and::

    t_ours = (tx - d, -(ty - d)),   d = 1 / side  (corner_offset=True, default)  or  0  (corner_offset=False)

With ``corner_offset=True`` the CMR normalization of an SfM camera converts to exactly
:func:`cmr_to_camera`'s camera (the two conversions agree); with ``corner_offset=False`` our renders equal
MeshInversion's DIB-R renders pixel for pixel (DIB-R also samples pixel centres: the offset is in the
normalization, not the renderer). The difference is ``0.5 * S / side`` output pixels for an ``S``-pixel
crop (0.25 px at S = 256 for a 512-px crop), well below a pixel.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..render.camera import WeakPerspectiveCamera, matrix_to_quaternion, pixel_to_ndc, quaternion_to_matrix
from ..render.convmesh_template import AUTHORS_TO_OBJECT, camera_from_authors

CMR_TO_OBJECT = AUTHORS_TO_OBJECT.numpy()
"""``M``: CMR's CUB object frame (x left, y tail, z up) -> ours (y up, beak +z), mirror included."""
_FLIP_Y = np.diag([1.0, -1.0, 1.0])
CUB_SPLITS = ("train", "val", "test")


class CubFormatError(ValueError):
    """The CUB folder or the CMR annotations do not have the expected layout; the message names the file."""


@dataclass
class CubRecord:
    """One annotated CUB image (values as in the files: 1-indexed pixels, original image size).

    Attributes:
        rel_path: path under ``images/``; class_id: 0-based class index; class_name: its folder name.
        bbox: ``(x1, y1, x2, y2)`` 1-indexed inclusive pixel box.
        sfm_scale, sfm_trans ``(2,)``, sfm_rot ``(3, 3)``: CMR's SfM camera (see the module docstring).
        mask: ``(H, W)`` from the .mat (values 0/1 or 0/255), or ``None`` (then ``segmentations/`` is read).
        parts: ``(15, 3)`` keypoints ``(x, y, visible)``, 1-indexed, or ``None``.
    """

    rel_path: str
    class_id: int
    class_name: str
    bbox: np.ndarray
    sfm_scale: float
    sfm_trans: np.ndarray
    sfm_rot: np.ndarray
    mask: Optional[np.ndarray] = None
    parts: Optional[np.ndarray] = None


@dataclass
class CubSample:
    """A cropped, resized CUB image in package conventions.

    Attributes:
        image: ``(3, S, S)`` in ``[0, 1]``; mask: ``(1, S, S)`` in ``[0, 1]``.
        camera: one :class:`WeakPerspectiveCamera` in our convention for this crop.
        keypoints: ``(15, 3)`` normalized ``(x, y)`` in the crop plus visibility (0 rows when not visible),
            or ``None``.
        crop_box: ``(x0, y0, side, side)`` of the square crop in 0-indexed original pixels.
    """

    image: torch.Tensor
    mask: torch.Tensor
    camera: WeakPerspectiveCamera
    keypoints: Optional[torch.Tensor]
    crop_box: np.ndarray


# --------------------------------------------------------------------------------------------------
# Conventions
# --------------------------------------------------------------------------------------------------


def cmr_points_to_object(points: np.ndarray | torch.Tensor):
    """Points ``(..., 3)`` in CMR's CUB object frame -> our object frame (``X @ M.T``)."""
    m = CMR_TO_OBJECT
    if isinstance(points, torch.Tensor):
        return points @ torch.as_tensor(m.T, dtype=points.dtype, device=points.device)
    return np.asarray(points) @ m.T


def cmr_to_camera(scale: float, trans: Sequence[float], rot: np.ndarray, crop_box: Sequence[float]) -> WeakPerspectiveCamera:
    """CMR's SfM camera (1-indexed original pixels) -> our camera for a square crop.

    Args:
        scale, trans ``(2,)``, rot ``(3, 3)``: ``kp = scale * rot[:2] @ X_cmr + trans``.
        crop_box: ``(x0, y0, side, side)``, the crop's top-left pixel (0-indexed) and size.
    Returns:
        A batch of one camera; see the module docstring for the derivation.
    """
    rot = np.asarray(rot, dtype=np.float64).reshape(3, 3)
    if abs(np.linalg.det(rot) - 1) > 1e-3:
        raise CubFormatError(f"the SfM rotation must be a proper rotation (det {np.linalg.det(rot):.4f})")
    x0, y0, side = float(crop_box[0]), float(crop_box[1]), float(crop_box[2])
    r_ours = _FLIP_Y @ rot @ CMR_TO_OBJECT.T
    q = matrix_to_quaternion(torch.tensor(r_ours, dtype=torch.float64)[None]).float()
    s = torch.tensor([2.0 * float(scale) / side], dtype=torch.float32)
    pix = torch.tensor(np.asarray(trans, dtype=np.float64).reshape(2) - 1 - np.array([x0, y0]))
    t = pixel_to_ndc(pix, side, side).float()[None]
    return WeakPerspectiveCamera(s, t, q)


def cmr_normalized_to_camera(
    cam: Sequence[float] | np.ndarray | torch.Tensor,
    crop_side: Optional[float] = None,
    corner_offset: bool = True,
) -> WeakPerspectiveCamera:
    """A camera in CMR's normalized crop (MeshInversion ``sfm_pose``, CMR ``pred_cam``) -> ours.

    Args:
        cam: ``(7,)`` ``[s, tx, ty, qw, qx, qy, qz]``: ``s > 0`` in normalized units per object unit,
            ``t`` in ``[-1, 1]``-ish crop units (x right, y down), ``q`` acting on CMR object points
            (renormalized here; a norm off by more than 10 % is refused as not a rotation).
        crop_side: side of the square crop in original pixels; needed when ``corner_offset``.
        corner_offset: remove CMR's corner-convention offset ``1 / crop_side`` (see the module docstring),
            so the result agrees with :func:`cmr_to_camera`; ``False`` reproduces MeshInversion's renders.
    Returns:
        A batch of one :class:`WeakPerspectiveCamera` (float32).
    """
    c = np.asarray(cam.detach().cpu().numpy() if isinstance(cam, torch.Tensor) else cam, dtype=np.float64).reshape(-1)
    if c.shape != (7,) or not np.isfinite(c).all():
        raise CubFormatError(f"a CMR camera needs 7 finite numbers [s, tx, ty, qw, qx, qy, qz], got {c.tolist()}")
    s, tx, ty, q = c[0], c[1], c[2], c[3:]
    if s <= 0:
        raise CubFormatError(f"a CMR camera needs a positive scale, got {s}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1) > 0.1:
        raise CubFormatError(f"the quaternion {q.tolist()} of a CMR camera has norm {norm:.4f}, not a rotation")
    if corner_offset:
        if crop_side is None or not crop_side > 0:
            raise ValueError("corner_offset=True needs the crop side in original pixels (crop_side)")
        d = 1.0 / float(crop_side)
    else:
        d = 0.0
    cam64 = camera_from_authors(torch.tensor([s], dtype=torch.float64), torch.tensor([[tx - d, ty - d]], dtype=torch.float64),
                                torch.tensor(q / norm, dtype=torch.float64)[None])
    return WeakPerspectiveCamera(cam64.scale.float(), cam64.translation.float(), cam64.rotation.float())


def camera_to_cmr_normalized(camera: WeakPerspectiveCamera, crop_side: Optional[float] = None,
                             corner_offset: bool = True) -> np.ndarray:
    """The inverse of :func:`cmr_normalized_to_camera`: our cameras -> ``(B, 7)`` float64
    ``[s, tx, ty, qw, qx, qy, qz]`` in CMR's normalized crop (e.g. to start MeshInversion from them)."""
    d = 0.0
    if corner_offset:
        if crop_side is None or not crop_side > 0:
            raise ValueError("corner_offset=True needs the crop side in original pixels (crop_side)")
        d = 1.0 / float(crop_side)
    r_ours = quaternion_to_matrix(camera.rotation.detach().double().cpu()).numpy()
    rot = _FLIP_Y @ r_ours @ CMR_TO_OBJECT  # D^-1 = D, (M.T)^-1 = M
    q = matrix_to_quaternion(torch.from_numpy(rot)).numpy()
    t = camera.translation.detach().double().cpu().numpy()
    s = camera.scale.detach().double().cpu().numpy()
    return np.concatenate([s[:, None], t[:, :1] + d, -t[:, 1:2] + d, q], axis=1)


def square_crop_box(bbox: Sequence[float], padding: float = 0.05) -> np.ndarray:
    """A square crop ``(x0, y0, side, side)`` (0-indexed integer pixels) around a 1-indexed
    ``(x1, y1, x2, y2)`` box grown by ``padding`` of its size on each side (CMR's test-time crop)."""
    x1, y1, x2, y2 = (float(v) - 1 for v in bbox)
    w, h = x2 - x1 + 1, y2 - y1 + 1
    x1, x2 = x1 - padding * w, x2 + padding * w
    y1, y2 = y1 - padding * h, y2 + padding * h
    x1, y1, x2, y2 = (int(round(v)) for v in (x1, y1, x2, y2))
    side = max(x2 - x1 + 1, y2 - y1 + 1)
    x0 = x1 - int(round((side - (x2 - x1 + 1)) / 2))
    y0 = y1 - int(round((side - (y2 - y1 + 1)) / 2))
    return np.array([x0, y0, side, side], dtype=np.int64)


def _crop(array: np.ndarray, box: np.ndarray, fill: float) -> np.ndarray:
    """Crop ``(H, W[, C])`` to the square box, filling outside the image with ``fill``."""
    x0, y0, side = int(box[0]), int(box[1]), int(box[2])
    h, w = array.shape[:2]
    out = np.full((side, side) + array.shape[2:], fill, dtype=array.dtype)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _read_table(path: Path, columns: int) -> list[list[str]]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: is {path.parent} the CUB_200_2011 folder?")
    rows = []
    for k, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < columns:
            raise CubFormatError(f"{path} line {k + 1}: expected {columns} fields, got {line!r}")
        rows.append(parts)
    return rows


def _field(entry, name: str, where: str):
    if not hasattr(entry, name):
        raise CubFormatError(f"{where}: entry has no field {name!r} (fields: {getattr(entry, '_fieldnames', '?')})")
    return getattr(entry, name)


def _loadmat(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: CMR's CUB annotations (cachedir/cub) are needed for cameras")
    try:
        data = loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except Exception as e:  # scipy raises several types for corrupt files
        raise CubFormatError(f"cannot read {path} as a MATLAB file ({e})") from None
    if key not in data:
        raise CubFormatError(f"{path} has no variable {key!r} (it has {[k for k in data if not k.startswith('__')]})")
    return np.atleast_1d(data[key])


def read_cub(cub_dir: str | Path, split: str = "train", cache_dir: Optional[str | Path] = None) -> list[CubRecord]:
    """All annotated images of a CMR split of CUB, as :class:`CubRecord` (no pixels loaded yet)."""
    cub_dir = Path(cub_dir)
    if not cub_dir.is_dir():
        raise FileNotFoundError(f"CUB folder {cub_dir} does not exist")
    if detect_cub_layout(cub_dir) == "meshinversion" and not (cub_dir / "images.txt").exists():
        raise CubFormatError(f"{cub_dir} has MeshInversion's datasets/cub layout: read it with "
                             "meshinv_lite.data.cub_meshinversion.read_meshinversion_cub (or build_cub(layout='meshinversion'))")
    if split not in CUB_SPLITS:
        raise ValueError(f"unknown CUB split {split!r}; choose one of {CUB_SPLITS}")
    cache = Path(cache_dir) if cache_dir is not None else cub_dir / "cachedir" / "cub"
    classes = {int(r[0]): r[1] for r in _read_table(cub_dir / "classes.txt", 2)}
    path_to_id = {r[1]: int(r[0]) for r in _read_table(cub_dir / "images.txt", 2)}
    labels = {int(r[0]): int(r[1]) for r in _read_table(cub_dir / "image_class_labels.txt", 2)}
    dir_to_class = {name: cid for cid, name in classes.items()}
    data_path = cache / "data" / f"{split}_cub_cleaned.mat"
    images = _loadmat(data_path, "images")
    sfm_path = cache / "sfm" / f"anno_{split}.mat"
    sfm = _loadmat(sfm_path, "sfm_anno") if sfm_path.exists() else None
    if sfm is not None and len(sfm) != len(images):
        raise CubFormatError(f"{sfm_path} has {len(sfm)} cameras but {data_path} has {len(images)} images")
    records = []
    for k, entry in enumerate(images):
        where = f"{data_path} images[{k}]"
        rel = str(_field(entry, "rel_path", where)).replace("\\", "/")
        if rel in path_to_id:
            cls = labels.get(path_to_id[rel])
        else:
            cls = dir_to_class.get(rel.split("/")[0])
        if cls is None or cls not in classes:
            raise CubFormatError(f"{where}: cannot find the class of {rel!r} in images.txt / classes.txt")
        b = _field(entry, "bbox", where)
        bbox = np.array([float(_field(b, n, where + ".bbox")) for n in ("x1", "y1", "x2", "y2")])
        cam = sfm[k] if sfm is not None else _field(entry, "sfm_anno", where + f" (and {sfm_path} is missing)")
        mask = np.asarray(entry.mask) if hasattr(entry, "mask") and np.size(entry.mask) > 1 else None
        parts = np.asarray(entry.parts, dtype=np.float64).T if hasattr(entry, "parts") and np.size(entry.parts) >= 3 else None
        records.append(
            CubRecord(
                rel_path=rel,
                class_id=cls - 1,
                class_name=classes[cls],
                bbox=bbox,
                sfm_scale=float(_field(cam, "scale", where + ".sfm")),
                sfm_trans=np.asarray(_field(cam, "trans", where + ".sfm"), dtype=np.float64).reshape(2),
                sfm_rot=np.asarray(_field(cam, "rot", where + ".sfm"), dtype=np.float64).reshape(3, 3),
                mask=mask,
                parts=parts,
            )
        )
    return records


CUB_LAYOUTS = ("cmr", "meshinversion")


def detect_cub_layout(path: str | Path) -> Optional[str]:
    """``"meshinversion"`` if ``path`` is MeshInversion's ``datasets/cub`` (``CUB_200_2011/`` and ``cache/``
    inside, see :mod:`meshinv_lite.data.cub_meshinversion`), ``"cmr"`` if it is the ``CUB_200_2011`` folder
    itself (``images.txt`` inside; CMR annotations in ``cachedir/cub`` or ``--cache-dir``), else ``None``."""
    path = Path(path)
    if (path / "CUB_200_2011").is_dir() and (path / "cache").is_dir():
        return "meshinversion"
    if (path / "images.txt").is_file():
        return "cmr"
    return None


def cub_class_names(cub_dir: str | Path) -> list[str]:
    """The 200 class folder names in class-id order (``classes.txt``)."""
    rows = _read_table(Path(cub_dir) / "classes.txt", 2)
    return [name for _, name in sorted((int(i), n) for i, n in rows)]


def _open_image(path: Path, mode: str) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (listed in the CMR annotations)")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise CubFormatError(f"cannot read image {path} ({e})") from None


def crop_keypoints(parts: Optional[np.ndarray], box: np.ndarray) -> Optional[torch.Tensor]:
    """CUB's part keypoints ``(15, 3)`` (1-indexed ``x, y``, visible) in the square crop ``box`` ``(x0, y0, side, side)``:
    ``(15, 3)`` float ``(x, y)`` normalized (0 where hidden) and visible in ``{0, 1}``; ``None`` without parts."""
    if parts is None:
        return None
    side = float(box[2])
    xy = torch.tensor(parts[:, :2] - 1 - box[None, :2], dtype=torch.float64)
    vis = torch.tensor(parts[:, 2] > 0, dtype=torch.float64)
    return torch.cat([pixel_to_ndc(xy, side, side) * vis[:, None], vis[:, None]], dim=1).float()


def load_cub_sample(
    record: CubRecord,
    cub_dir: str | Path,
    image_size: int,
    padding: float = 0.05,
    pad_value: float = 1.0,
) -> CubSample:
    """Crop a padded square around the bbox, resize to ``image_size`` and convert the camera.

    Outside the photo the crop is filled with ``pad_value`` (white, as in CMR) and the mask with 0.
    """
    cub_dir = Path(cub_dir)
    img_path = cub_dir / "images" / record.rel_path
    img = _open_image(img_path, "RGB").astype(np.float32) / 255
    if record.mask is not None:
        mask = record.mask.astype(np.float32)
        mask = mask / 255 if mask.max() > 1 else mask
        mask_src = f"the mask of {record.rel_path} in the CMR .mat"
    else:
        seg = cub_dir / "segmentations" / (str(Path(record.rel_path).with_suffix(".png")))
        mask = _open_image(seg, "L").astype(np.float32) / 255
        mask_src = str(seg)
    if mask.shape != img.shape[:2]:
        raise CubFormatError(f"{mask_src} is {mask.shape[1]}x{mask.shape[0]} but {img_path} is {img.shape[1]}x{img.shape[0]}")
    box = square_crop_box(record.bbox, padding)
    crop_img = _crop(img, box, pad_value)
    crop_mask = _crop(mask, box, 0.0)
    size = (image_size, image_size)
    img_r = np.asarray(Image.fromarray((crop_img * 255).round().astype(np.uint8)).resize(size, Image.BILINEAR))
    mask_r = np.asarray(Image.fromarray(crop_mask.astype(np.float32), mode="F").resize(size, Image.BILINEAR))
    camera = cmr_to_camera(record.sfm_scale, record.sfm_trans, record.sfm_rot, box)
    return CubSample(
        image=torch.from_numpy(img_r.copy()).permute(2, 0, 1).float() / 255,
        mask=torch.from_numpy(np.clip(mask_r, 0, 1).copy())[None].float(),
        camera=camera,
        keypoints=crop_keypoints(record.parts, box),
        crop_box=box,
    )


# --------------------------------------------------------------------------------------------------
# Conversion to the package format
# --------------------------------------------------------------------------------------------------


def build_cub(
    cub_dir: str | Path,
    out_dir: str | Path,
    image_size: int = 128,
    cache_dir: Optional[str | Path] = None,
    splits: Optional[Sequence[str]] = None,
    padding: float = 0.05,
    limit: Optional[int] = None,
    force: bool = False,
    chunk: int = 64,
    progress: bool = True,
    *,
    layout: str = "auto",
    mask_source: Optional[str] = None,
    use_pred_pose: Optional[bool] = None,
    trust_pickle: bool = False,
) -> dict:
    """Convert CUB + CMR annotations into :data:`meshinv_lite.data.dataset.FORMAT` under ``out_dir``.

    The SfM camera is stored as both ``camera`` and ``noisy_camera`` (it is what a method is given);
    there is no ground truth. ``limit`` keeps the first images of each split; ``splits`` defaults to
    ``train, val, test``. Returns ``{split: {"num_images", "seconds", "status"}}``.

    ``layout``: ``"cmr"`` (``cub_dir`` is ``CUB_200_2011``), ``"meshinversion"`` (``cub_dir`` is
    MeshInversion's ``datasets/cub``: see :func:`meshinv_lite.data.cub_meshinversion.build_meshinversion_cub`,
    which also takes ``mask_source``, ``use_pred_pose`` and ``trust_pickle``; its ``splits`` default to
    ``test``), or ``"auto"`` (:func:`detect_cub_layout`, ``"cmr"`` when undecided).
    """
    from .dataset import dataset_lock, update_root_meta

    if layout not in CUB_LAYOUTS + ("auto",):
        raise ValueError(f"unknown CUB layout {layout!r}; choose one of {CUB_LAYOUTS + ('auto',)}")
    if layout == "auto":
        layout = detect_cub_layout(cub_dir) or "cmr"
    if layout == "meshinversion":
        from .cub_meshinversion import build_meshinversion_cub

        return build_meshinversion_cub(
            cub_dir, out_dir, image_size, splits=splits if splits is not None else ("test",), cache_dir=cache_dir,
            padding=padding, limit=limit, force=force, chunk=chunk, progress=progress, mask_source=mask_source,
            use_pred_pose=use_pred_pose, trust_pickle=trust_pickle)
    if mask_source not in (None, "cmr_mat") or use_pred_pose or trust_pickle:
        raise ValueError(f"{cub_dir} has the CMR layout: mask_source='predicted', use_pred_pose and trust_pickle "
                         "apply to MeshInversion's datasets/cub layout only (layout='meshinversion')")
    splits = CUB_SPLITS if splits is None else splits
    out = Path(out_dir)
    if not Path(cub_dir).is_dir():
        raise FileNotFoundError(f"CUB folder {cub_dir} does not exist")
    names = cub_class_names(cub_dir)
    info = {"generator": "cub", "source": str(Path(cub_dir).resolve()), "image_size": int(image_size),
            "padding": padding, "class_names": names}
    report = {}
    with dataset_lock(out):  # a second conversion into this folder waits, then finds the finished splits
        for split in splits:
            t0 = time.perf_counter()
            records = read_cub(cub_dir, split, cache_dir)
            records = records[:limit] if limit is not None else records

            def convert(part: list[CubRecord]) -> tuple[list, dict]:
                samples = [load_cub_sample(r, cub_dir, image_size, padding) for r in part]
                cams = WeakPerspectiveCamera.cat([s.camera for s in samples]).as_tensor()
                return samples, {"camera": cams, "noisy_camera": cams}

            status = write_cub_split(out, split, records, convert, {**info, "split": split, "limit": limit},
                                     {**info, "split": split, "has_ground_truth": False}, force, chunk, progress,
                                     f"cub {split}")
            update_root_meta(out, info, split, len(records))
            report[split] = {"num_images": len(records), "seconds": time.perf_counter() - t0, "status": status}
    return report


def write_cub_split(out: Path, split: str, records: Sequence, convert, signature: dict, final_meta: dict, force: bool,
                    chunk: int, progress: bool, desc: str) -> str:
    """Write converted CUB ``records`` as ``out/split`` in chunks of ``chunk`` images, resuming finished chunks.

    ``convert(part)`` -> ``(samples, annotations)``: samples with ``image``, ``mask`` and ``crop_box``, and the
    annotations of its own (at least ``camera`` and ``noisy_camera``); ``class_id``, ``occluded``, ``source`` and
    ``crop_box`` are added here from the records (``class_id``, ``rel_path``). ``signature``: the settings a resumed
    run must share; ``final_meta``: what ``meta.json`` holds. Returns ``"built"`` or ``"resumed"``.
    Refuses an empty split and, without ``force``, a split already converted."""
    from tqdm.auto import tqdm

    from .dataset import SplitWriter

    n = len(records)
    if n == 0:
        raise CubFormatError(f"CMR split {split!r} has no images")
    final = out / split
    if final.exists() and (final / "meta.json").exists() and not force:
        raise FileExistsError(f"{final} exists; pass force=True (--force) to convert again")
    writer = SplitWriter(out, split, signature)
    n_chunks = math.ceil(n / chunk)
    done = writer.done_chunks()
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress)
    for c in range(n_chunks):
        part = records[c * chunk : (c + 1) * chunk]
        if c not in done:
            samples, annotations = convert(part)
            writer.write_chunk(
                c,
                [f"{c * chunk + i:06d}" for i in range(len(part))],
                torch.stack([s.image for s in samples]),
                torch.stack([s.mask for s in samples]),
                {
                    **annotations,
                    "class_id": np.array([r.class_id for r in part], dtype=np.int64),
                    "occluded": np.zeros(len(part), dtype=bool),
                    "source": np.array([r.rel_path for r in part], dtype=str),
                    "crop_box": np.stack([s.crop_box for s in samples]).astype(np.float32),
                },
            )
        bar.update(len(part))
    bar.close()
    writer.finalize(n_chunks, final_meta)
    return "resumed" if done else "built"
