"""PASCAL3D+ cars: read the release's annotations, convert viewpoints to our camera, render CAD masks, build splits.

Expected layout (``root`` is the unpacked ``PASCAL3D+_release1.1`` folder; all of it comes from
``PASCAL3D+_release1.1.zip``, https://cvgl.stanford.edu/projects/pascal3d.html)::

    <root>/Images/car_imagenet/<id>.JPEG            photos (ImageNet part)
    <root>/Images/car_pascal/<id>.jpg               photos (PASCAL VOC part)
    <root>/Annotations/car_{imagenet,pascal}/<id>.mat
        ``record``: filename, imgsize ([W, H, depth]), objects (struct array, one per object):
            class ('car', ...), bbox ([x1 y1 x2 y2], 1-indexed MATLAB pixels), truncated, occluded, difficult,
            cad_index (1..10, the CAD model the annotator aligned), viewpoint (struct: azimuth, elevation, theta
            in degrees; distance, focal, viewport; px, py the principal point in pixels; also azimuth_coarse,
            elevation_coarse; ``distance == 0`` means only the coarse view was annotated)
    <root>/CAD/car.mat                              ``car``: 1 x 10 struct array, vertices (V x 3), faces (F x 3,
                                                    1-indexed), plus anchor points
    <root>/Image_sets/car_imagenet_{train,val}.txt  ImageNet split lists (one id per line)
    <root>/PASCAL/VOCdevkit/VOC2012/ImageSets/Main/car_{train,val}.txt   VOC split lists ("<id> <label>")

Optional: the p3d cache of Kanazawa et al.'s CMR (``cachedir/p3d``, made by CMR's
``preprocess/pascal/preprocess_p3d.m``; ConvMesh's ``datasets/p3d/data`` is the same files)::

    <cmr_cache>/data/car_{all,train,val}.mat        ``images``: rel_path ("car_imagenet/<file>"), voc_rec_id
                                                    (the object's 1-based index in record.objects), bbox, mask
                                                    (H x W, full photo), parts, cad_index, is_train

Its masks (VOC polygon annotations for ``car_pascal``, Mask R-CNN masks for ``car_imagenet``) are used for the
objects it lists; every other object gets the silhouette of its CAD model rendered with its annotated camera.

Conventions (facts from the public sources named; converted once, here)
-----------------------------------------------------------------------
**Projection** (PASCAL3D+'s MATLAB ``project_3d``; same in yuxng/Pose_Dataset ``segmentation/project_3d.m``):
with ``a``, ``e``, ``theta`` the angles in radians, the camera centre is
``C = d (cos e sin a, -cos e cos a, sin e)`` in CAD coordinates, ``R = Rx(-(pi/2 - e)) Rz(-a)``,
``P = diag(f*viewport, f*viewport, -1) [R | -R C]``; a point's ``(u, v)`` (``v`` up) is rotated in the image plane
by ``theta`` and placed at ``col = u' + px``, ``row = -v' + py`` (MATLAB pixel coordinates: the pixel centres of
the photo are ``1..W``, ``1..H``, like the bbox). The CAD origin always projects to ``(px, py)``.

**CAD frame**: ``z`` up, the car's front towards ``-y`` (its back along ``+y``), ``x`` towards the car's left.
Evidence: UCMR (shubham-goel/ucmr ``src/p3d_iou/eval_mean_iou.m``) compares PASCAL3D+ CAD vertices with CMR's
predicted meshes after applying one and the same axis change to both, so both share CMR's p3d object frame;
CMR's ``preprocess/sfm/alignSfmModel.m`` defines that frame as ``z`` vertical, ``y`` along the car, ``x`` from its
right to its left, and ``preprocess/pascal/preprocess_p3d.m`` aligns ``y`` with back-wheel-minus-front-wheel
edges ("front to back"). Hence **azimuth 0 looks at the car's front** (camera at ``-y``), 90 at its left side
(camera at ``+x``; the front points to the image's left), 180 at its back, 270 at its right side.

**Our frame** (:mod:`meshinv_lite.data.car_types`): ``y`` up, the car's front ``+z``, symmetry plane ``x = 0``,
centred on its bounding box, cars about 2.1-2.6 units long. CAD points are brought in with the same frame change
as CMR's/CUB's (:data:`~meshinv_lite.render.AUTHORS_TO_OBJECT`, a mirror included, see :mod:`.cub`), after
centring on the CAD model's bounding box ``c`` and scaling by ``k = CAR_LENGTH / length`` (each CAD model becomes
:data:`CAR_LENGTH` = 2.4 units long, the SynthCars default)::

    X_ours = k M (X_cad - c),   M = [[-1, 0, 0], [0, 0, 1], [0, -1, 0]]

So PASCAL3D+ azimuth ``a`` is our :func:`~meshinv_lite.render.view_rotation` azimuth ``a + 90`` at the same
elevation (ours: 0 sees ``+x``, 90 the front ``+z``, 270 the back).

**Camera** (:func:`viewpoint_to_camera`): PASCAL3D+'s camera is a perspective camera with the object on the
optical axis; ours is weak perspective. The conversion is exact at the CAD model's centre ``c`` and linearizes
around its depth ``D_c``::

    R_full = Rz_image(theta) R,   R_ours = diag(1, 1, -1) R_full M^T      (proper rotation)
    s_ours = 2 f viewport / (D_c side k)
    t_ours = pixel_to_ndc(project(c) - 1 - (x0, y0), side, side)        (crop box x0, y0, side in 0-indexed px)

A point at depth offset ``dz`` from ``c`` lands ``|dz| / D_c`` (relative to its distance from the centre in the
image) away from PASCAL3D+'s projection; :func:`perspective_error` gives the largest such offset over the CAD
vertices, in output pixels (stored per image as ``perspective_error_px``).

**Classes**: PASCAL3D+ has no body-type labels. Every object gets ``class_id = -1`` (unknown; ``class_names`` are
SynthCars' 8 body types so a cars prior can read the dataset) and its ``cad_index`` (1..10) is stored.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..render.camera import WeakPerspectiveCamera, matrix_to_quaternion, pixel_to_ndc
from ..render.convmesh_template import AUTHORS_TO_OBJECT
from .cub import _crop, _open_image, square_crop_box, write_cub_split

P3D_SPLITS = ("train", "val")
P3D_SOURCES = ("imagenet", "pascal")
#: Length (object units) every CAD model is scaled to in our frame: SynthCars' default car length.
CAR_LENGTH = 2.4
#: ``M``: PASCAL3D+'s CAD frame (x left, y back, z up) -> ours (y up, front +z), mirror included.
CAD_TO_OBJECT = AUTHORS_TO_OBJECT.numpy()
_FLIP_Z = np.diag([1.0, 1.0, -1.0])
MASK_CMR = "cmr_cache"
MASK_CAD = "cad_projection"

ARCHIVES = {
    "release": "PASCAL3D+_release1.1.zip (https://cvgl.stanford.edu/projects/pascal3d.html); unpack it so that "
               "<root> is its PASCAL3D+_release1.1 folder",
    "cmr": "CMR's p3d cache (cachedir/p3d from akanazawa/cmr's preprocess/pascal/preprocess_p3d.m; ConvMesh's "
           "datasets/p3d/data holds the same files)",
}


class Pascal3DFormatError(ValueError):
    """A PASCAL3D+ file does not have the expected content; the message names the file."""


def _missing(path: Path, archive: str, what: str = "") -> FileNotFoundError:
    return FileNotFoundError(f"{path} is missing{what}: it comes from {ARCHIVES[archive]}")


@dataclass
class Pascal3DViewpoint:
    """One object's annotated camera (PASCAL3D+ ``record.objects(k).viewpoint``).

    Attributes:
        azimuth, elevation, theta: degrees (azimuth 0 = the car's front, 90 its left side; theta = in-plane
            rotation); distance: camera to CAD origin, CAD units (> 0); focal, viewport: the focal length is
            ``focal * viewport`` pixels; px, py: where the CAD origin projects, 1-indexed pixels.
    """

    azimuth: float
    elevation: float
    theta: float
    distance: float
    focal: float
    viewport: float
    px: float
    py: float


@dataclass
class CadModel:
    """A PASCAL3D+ CAD model: ``vertices`` ``(V, 3)`` float64 in the CAD frame, ``faces`` ``(F, 3)`` int64 0-based."""

    vertices: np.ndarray
    faces: np.ndarray

    @property
    def center(self) -> np.ndarray:
        """``(3,)`` centre of the bounding box (CAD units): the origin of our object frame."""
        return (self.vertices.min(0) + self.vertices.max(0)) / 2

    @property
    def scale(self) -> float:
        """``k``: object units per CAD unit, so that the model is :data:`CAR_LENGTH` long (along CAD ``y``)."""
        length = float(np.ptp(self.vertices[:, 1]))
        return CAR_LENGTH / length


@dataclass
class Pascal3DRecord:
    """One kept object of one photo (values as in the files: 1-indexed pixels, original image size).

    Attributes:
        rel_path: photo path under ``Images/`` (``"car_imagenet/<file>"``); annotation: the ``.mat`` it came from.
        object_index: 1-based index in ``record.objects`` (CMR's ``voc_rec_id``).
        bbox: ``(4,)`` ``(x1, y1, x2, y2)`` 1-indexed inclusive; image_size: ``(W, H)`` from ``record.imgsize``.
        viewpoint: the annotated camera; cad_index: 1-based CAD model index.
        truncated, occluded, difficult: PASCAL3D+'s flags; class_id: always -1 (see the module docstring).
    """

    rel_path: str
    annotation: str
    object_index: int
    bbox: np.ndarray
    image_size: tuple[int, int]
    viewpoint: Pascal3DViewpoint
    cad_index: int
    truncated: bool
    occluded: bool
    difficult: bool
    class_id: int = -1


@dataclass
class Pascal3DSample:
    """A cropped, resized object in package conventions.

    Attributes:
        image: ``(3, S, S)`` in ``[0, 1]``; mask: ``(1, S, S)`` in ``[0, 1]``; mask_source: ``"cmr_cache"`` or
            ``"cad_projection"``; camera: one :class:`WeakPerspectiveCamera` (our convention, this crop);
        crop_box: ``(x0, y0, side, side)`` in 0-indexed original pixels; perspective_error_px: largest distance,
            in output pixels, between PASCAL3D+'s projection of a CAD vertex and ours.
    """

    image: torch.Tensor
    mask: torch.Tensor
    mask_source: str
    camera: WeakPerspectiveCamera
    crop_box: np.ndarray
    perspective_error_px: float


# --------------------------------------------------------------------------------------------------
# Conventions
# --------------------------------------------------------------------------------------------------


def pascal3d_rotation(vp: Pascal3DViewpoint) -> tuple[np.ndarray, np.ndarray]:
    """PASCAL3D+'s camera: ``R_full`` ``(3, 3)`` (``R`` followed by the in-plane ``theta``) and centre ``C`` ``(3,)``.

    Camera coordinates ``R_full (X - C)``: ``x`` right, ``y`` up, the camera looking along ``-z``."""
    a, e, th = (math.radians(float(v)) for v in (vp.azimuth, vp.elevation, vp.theta))
    d = float(vp.distance)
    centre = d * np.array([math.cos(e) * math.sin(a), -math.cos(e) * math.cos(a), math.sin(e)])
    a2, e2 = -a, -(math.pi / 2 - e)
    rz = np.array([[math.cos(a2), -math.sin(a2), 0.0], [math.sin(a2), math.cos(a2), 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(e2), -math.sin(e2)], [0.0, math.sin(e2), math.cos(e2)]])
    r2 = np.array([[math.cos(th), -math.sin(th), 0.0], [math.sin(th), math.cos(th), 0.0], [0.0, 0.0, 1.0]])
    return r2 @ rx @ rz, centre


def project_pascal3d(points: np.ndarray, vp: Pascal3DViewpoint) -> tuple[np.ndarray, np.ndarray]:
    """PASCAL3D+'s perspective projection of CAD points ``(N, 3)``.

    Returns:
        ``(N, 2)`` float64 ``(col, row)`` in 1-indexed MATLAB pixels of the photo, and ``(N,)`` depths along the
        viewing direction (positive in front of the camera).
    """
    if not float(vp.distance) > 0:
        raise ValueError(f"a viewpoint with distance {vp.distance} has no camera (PASCAL3D+ gives only coarse angles)")
    r_full, centre = pascal3d_rotation(vp)
    cam = (np.asarray(points, dtype=np.float64).reshape(-1, 3) - centre) @ r_full.T
    depth = -cam[:, 2]
    f = float(vp.focal) * float(vp.viewport)
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = f * cam[:, 0] / depth, f * cam[:, 1] / depth
    return np.stack([u + float(vp.px), -v + float(vp.py)], 1), depth


def cad_points_to_object(points: np.ndarray, cad: CadModel) -> np.ndarray:
    """CAD points ``(N, 3)`` -> our object frame ``k M (X - c)`` (see the module docstring), ``(N, 3)`` float64."""
    return cad.scale * (np.asarray(points, dtype=np.float64).reshape(-1, 3) - cad.center) @ CAD_TO_OBJECT.T


def viewpoint_to_camera(vp: Pascal3DViewpoint, crop_box: Sequence[float], cad: CadModel) -> WeakPerspectiveCamera:
    """A PASCAL3D+ viewpoint -> our weak-perspective camera for a square crop, linearized at the CAD centre.

    Args:
        vp: the annotated viewpoint (``distance > 0``).
        crop_box: ``(x0, y0, side, side)``, the crop's top-left pixel (0-indexed) and size.
        cad: the object's CAD model (its centre and scale define our object frame).
    Returns:
        A batch of one float32 camera that maps :func:`cad_points_to_object` points to normalized crop
        coordinates; exact at the CAD centre (see the module docstring).
    """
    x0, y0, side = float(crop_box[0]), float(crop_box[1]), float(crop_box[2])
    r_full, _ = pascal3d_rotation(vp)
    r_ours = _FLIP_Z @ r_full @ CAD_TO_OBJECT.T
    pix, depth = project_pascal3d(cad.center[None], vp)
    if not depth[0] > 0:
        raise Pascal3DFormatError(f"the CAD model's centre lies behind the annotated camera (depth {depth[0]:.3g})")
    s = 2.0 * float(vp.focal) * float(vp.viewport) / (float(depth[0]) * side * cad.scale)
    t = pixel_to_ndc(torch.from_numpy(pix[0] - 1 - np.array([x0, y0])), side, side)
    q = matrix_to_quaternion(torch.from_numpy(r_ours))
    return WeakPerspectiveCamera(torch.tensor([s], dtype=torch.float32), t.float()[None], q.float()[None])


def _crop_ndc(pix1: np.ndarray, crop_box: Sequence[float]) -> torch.Tensor:
    """1-indexed photo pixels ``(N, 2)`` -> normalized coordinates ``(N, 2)`` float64 of the square crop."""
    x0, y0, side = float(crop_box[0]), float(crop_box[1]), float(crop_box[2])
    return pixel_to_ndc(torch.from_numpy(pix1 - 1 - np.array([x0, y0])), side, side)


def perspective_error(vp: Pascal3DViewpoint, crop_box: Sequence[float], cad: CadModel, image_size: int,
                      camera: Optional[WeakPerspectiveCamera] = None) -> float:
    """Largest distance, in pixels of an ``image_size`` crop, between PASCAL3D+'s projection of a CAD vertex and
    our camera's (the weak-perspective approximation error; 0 for a point at the CAD centre's depth)."""
    camera = camera if camera is not None else viewpoint_to_camera(vp, crop_box, cad)
    pix, _ = project_pascal3d(cad.vertices, vp)
    exact = _crop_ndc(pix, crop_box)
    ours = camera.to(dtype=torch.float64).project(torch.from_numpy(cad_points_to_object(cad.vertices, cad)))[0]
    return float((exact - ours).norm(dim=-1).max()) * image_size / 2


def cad_mask(cad: CadModel, vp: Pascal3DViewpoint, crop_box: Sequence[float], image_size: int,
             supersample: int = 2) -> torch.Tensor:
    """The CAD model's silhouette under PASCAL3D+'s (perspective) camera, in the square crop.

    Triangles project to triangles under perspective, so rasterizing the exactly projected vertices gives the
    exact silhouette (both sides of every face; no backface culling).

    Args:
        image_size: output side ``S``; supersample: samples per pixel side (values ``k / supersample**2``).
    Returns:
        ``(1, S, S)`` float32 in ``[0, 1]``: the fraction of each output pixel covered.
    """
    from ..render.dibr import rasterize

    pix, depth = project_pascal3d(cad.vertices, vp)
    if not (depth > 0).all():
        raise Pascal3DFormatError(f"{int((depth <= 0).sum())} CAD vertices lie behind the annotated camera")
    xy = _crop_ndc(pix, crop_box)
    verts = torch.cat([xy, torch.from_numpy(depth)[:, None]], 1)[None]
    size = image_size * supersample
    frags = rasterize(verts, torch.from_numpy(cad.faces), max(size, 8))
    mask = frags.mask.float()
    if supersample > 1:
        mask = F.avg_pool2d(mask, supersample)
    return mask[0].float()


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _loadmat(path: Path, archive: str, what: str = "") -> dict:
    from scipy.io import loadmat

    if not path.is_file():
        raise _missing(path, archive, what)
    try:
        return loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as e:  # scipy raises several types for corrupt files
        raise Pascal3DFormatError(f"cannot read {path} as a MATLAB file ({type(e).__name__}: {e}); the file is "
                                  f"damaged: extract it again from {ARCHIVES[archive].split(' (')[0]}") from None


def _get(entry, name: str, where: str):
    if not hasattr(entry, name):
        raise Pascal3DFormatError(f"{where} has no field {name!r} (fields: {getattr(entry, '_fieldnames', '?')})")
    return getattr(entry, name)


def _num(entry, name: str, where: str) -> float:
    value = np.asarray(_get(entry, name, where), dtype=np.float64)
    if value.size != 1 or not np.isfinite(value).all():
        raise Pascal3DFormatError(f"{where}.{name} must be one finite number, got {value.tolist()}")
    return float(value.reshape(()))


def read_cad_models(root: str | Path, category: str = "car") -> list[CadModel]:
    """The CAD models of ``<root>/CAD/<category>.mat`` in ``cad_index`` order (index ``i`` is ``cad_index = i + 1``)."""
    path = Path(root) / "CAD" / f"{category}.mat"
    data = _loadmat(path, "release", " (the CAD models)")
    if category not in data:
        raise Pascal3DFormatError(f"{path} has no variable {category!r} (it has {[k for k in data if not k.startswith('__')]})")
    models = []
    for i, entry in enumerate(np.atleast_1d(data[category])):
        where = f"{path} {category}({i + 1})"
        v = np.asarray(_get(entry, "vertices", where), dtype=np.float64)
        f = np.asarray(_get(entry, "faces", where))
        if v.ndim != 2 or v.shape[1] != 3 or len(v) < 3 or not np.isfinite(v).all():
            raise Pascal3DFormatError(f"{where}.vertices must be a finite (V, 3) array, got shape {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or f.min() < 1 or f.max() > len(v):
            raise Pascal3DFormatError(f"{where}.faces must be (F, 3) 1-based indices into {len(v)} vertices")
        if np.ptp(v[:, 1]) <= 0:
            raise Pascal3DFormatError(f"{where}.vertices have no extent along y (the car's length)")
        models.append(CadModel(v, f.astype(np.int64) - 1))
    return models


def _split_ids(root: Path, source: str, split: str, category: str) -> list[str]:
    if source == "imagenet":
        path = root / "Image_sets" / f"{category}_imagenet_{split}.txt"
    else:
        path = root / "PASCAL" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main" / f"{category}_{split}.txt"
    if not path.is_file():
        raise _missing(path, "release", f" (the {source} {split} split list)")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _viewpoint(obj, where: str) -> Optional[Pascal3DViewpoint]:
    vp = getattr(obj, "viewpoint", None)
    if vp is None or isinstance(vp, np.ndarray) or not hasattr(vp, "distance"):
        return None  # no viewpoint (other classes), or an empty [] one
    d = _num(vp, "distance", where + ".viewpoint")
    if d == 0:
        return None  # only azimuth_coarse / elevation_coarse annotated
    w = where + ".viewpoint"
    return Pascal3DViewpoint(*(_num(vp, n, w) for n in ("azimuth", "elevation", "theta")), d,
                             *(_num(vp, n, w) for n in ("focal", "viewport", "px", "py")))


def read_pascal3d(
    root: str | Path,
    split: str = "train",
    sources: Sequence[str] = P3D_SOURCES,
    category: str = "car",
    skip_truncated: bool = True,
    skip_occluded: bool = True,
    skip_difficult: bool = True,
) -> tuple[list[Pascal3DRecord], dict[str, int]]:
    """The objects of a PASCAL3D+ split, filtered (no pixels loaded yet).

    Args:
        root: the ``PASCAL3D+_release1.1`` folder; split: ``"train"`` or ``"val"``.
        sources: ``"imagenet"`` and/or ``"pascal"`` (VOC ids without an annotation file are VOC images without
            cars, skipped; a listed ImageNet id without one is an error).
        skip_truncated, skip_occluded, skip_difficult: drop objects with these flags (CMR drops all three).
    Returns:
        ``(records, dropped)``: the kept objects in list order, and how many objects were dropped per reason
        (``other_class``, ``truncated``, ``occluded``, ``difficult``, ``no_viewpoint``: distance 0 or absent).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"PASCAL3D+ folder {root} does not exist; it comes from {ARCHIVES['release']}")
    if split not in P3D_SPLITS:
        raise ValueError(f"unknown PASCAL3D+ split {split!r}; choose one of {P3D_SPLITS}")
    bad = [s for s in sources if s not in P3D_SOURCES]
    if bad or not sources:
        raise ValueError(f"unknown PASCAL3D+ sources {bad or list(sources)}; choose from {P3D_SOURCES}")
    dropped = {k: 0 for k in ("other_class", "truncated", "occluded", "difficult", "no_viewpoint")}
    records = []
    for source in sources:
        folder = f"{category}_{source}"
        for image_id in _split_ids(root, source, split, category):
            ann_path = root / "Annotations" / folder / f"{image_id}.mat"
            if source == "pascal" and not ann_path.is_file():
                continue
            data = _loadmat(ann_path, "release", f" (listed in the {source} {split} split)")
            if "record" not in data:
                raise Pascal3DFormatError(f"{ann_path} has no variable 'record' (it has "
                                          f"{[k for k in data if not k.startswith('__')]})")
            rec = data["record"]
            where = f"{ann_path} record"
            filename = str(_get(rec, "filename", where))
            size = np.asarray(_get(rec, "imgsize", where), dtype=np.float64).reshape(-1)
            if size.size < 2:
                raise Pascal3DFormatError(f"{where}.imgsize must hold [width, height, depth], got {size.tolist()}")
            for k, obj in enumerate(np.atleast_1d(_get(rec, "objects", where))):
                w = f"{where}.objects({k + 1})"
                if str(_get(obj, "class", w)) != category:
                    dropped["other_class"] += 1
                    continue
                flags = {n: bool(_num(obj, n, w)) for n in ("truncated", "occluded", "difficult")}
                skip = {"truncated": skip_truncated, "occluded": skip_occluded, "difficult": skip_difficult}
                reason = next((n for n in flags if flags[n] and skip[n]), None)
                if reason is not None:
                    dropped[reason] += 1
                    continue
                vp = _viewpoint(obj, w)
                if vp is None:
                    dropped["no_viewpoint"] += 1
                    continue
                bbox = np.asarray(_get(obj, "bbox", w), dtype=np.float64).reshape(-1)
                if bbox.shape != (4,) or not np.isfinite(bbox).all() or bbox[2] < bbox[0] or bbox[3] < bbox[1]:
                    raise Pascal3DFormatError(f"{w}.bbox must be [x1 y1 x2 y2] with x1 <= x2, y1 <= y2; got {bbox.tolist()}")
                records.append(Pascal3DRecord(
                    rel_path=f"{folder}/{filename}", annotation=f"{folder}/{image_id}.mat", object_index=k + 1,
                    bbox=bbox, image_size=(int(size[0]), int(size[1])), viewpoint=vp,
                    cad_index=int(_num(obj, "cad_index", w)), **flags))
    return records, dropped


def read_cmr_masks(cmr_cache: str | Path, category: str = "car") -> dict[tuple[str, int], np.ndarray]:
    """CMR's p3d masks, ``{(rel_path, voc_rec_id): (H, W) mask}`` from ``data/<category>_all.mat`` (or the train
    and val files when there is no ``_all``). Values 0/1 (or 0/255), full photo size."""
    data_dir = Path(cmr_cache) / "data"
    names = [f"{category}_all.mat"] if (data_dir / f"{category}_all.mat").is_file() else \
        [f"{category}_train.mat", f"{category}_val.mat"]
    masks: dict[tuple[str, int], np.ndarray] = {}
    for name in names:
        path = data_dir / name
        data = _loadmat(path, "cmr", f" (CMR's {category} annotations; or leave out the CMR cache)")
        if "images" not in data:
            raise Pascal3DFormatError(f"{path} has no variable 'images' (it has {[k for k in data if not k.startswith('__')]})")
        for i, entry in enumerate(np.atleast_1d(data["images"])):
            where = f"{path} images({i + 1})"
            rel = str(_get(entry, "rel_path", where)).replace("\\", "/")
            masks[(rel, int(_num(entry, "voc_rec_id", where)))] = np.asarray(_get(entry, "mask", where))
    return masks


def load_pascal3d_sample(
    record: Pascal3DRecord,
    root: str | Path,
    cads: Sequence[CadModel],
    image_size: int,
    padding: float = 0.05,
    cmr_masks: Optional[dict] = None,
    pad_value: float = 1.0,
    supersample: int = 2,
) -> Pascal3DSample:
    """Crop a padded square around the bbox, resize to ``image_size``, convert the camera and make the mask.

    The mask is CMR's (cropped and resized like the photo) when ``cmr_masks`` has this object, else the CAD
    model's silhouette under the annotated camera (:func:`cad_mask`). Outside the photo the crop is filled with
    ``pad_value`` (white, as CMR) and CMR's mask with 0.
    """
    from PIL import Image

    root = Path(root)
    if not 1 <= record.cad_index <= len(cads):
        raise Pascal3DFormatError(f"{root / 'Annotations' / record.annotation} object {record.object_index}: "
                                  f"cad_index {record.cad_index} is not in 1..{len(cads)} (CAD models in CAD/*.mat)")
    cad = cads[record.cad_index - 1]
    img_path = root / "Images" / record.rel_path
    if not img_path.is_file():
        raise _missing(img_path, "release", f" (the photo of {record.annotation})")
    img = _open_image(img_path, "RGB").astype(np.float32) / 255
    if (img.shape[1], img.shape[0]) != tuple(record.image_size):
        raise Pascal3DFormatError(f"{img_path} is {img.shape[1]}x{img.shape[0]} but {record.annotation} says "
                                  f"{record.image_size[0]}x{record.image_size[1]} (record.imgsize)")
    box = square_crop_box(record.bbox, padding)
    size = (image_size, image_size)
    crop_img = _crop(img, box, pad_value)
    img_r = np.asarray(Image.fromarray((crop_img * 255).round().astype(np.uint8)).resize(size, Image.BILINEAR))
    key = (record.rel_path, record.object_index)
    if cmr_masks is not None and key in cmr_masks:
        m = np.asarray(cmr_masks[key], dtype=np.float32)
        m = m / 255 if m.max() > 1 else m
        if m.shape != img.shape[:2]:
            raise Pascal3DFormatError(f"CMR's mask of {record.rel_path} object {record.object_index} is "
                                      f"{m.shape[1]}x{m.shape[0]} but the photo is {img.shape[1]}x{img.shape[0]}")
        mask_r = np.asarray(Image.fromarray(_crop(m, box, 0.0), mode="F").resize(size, Image.BILINEAR))
        mask = torch.from_numpy(np.clip(mask_r, 0, 1).copy())[None].float()
        source = MASK_CMR
    else:
        mask = cad_mask(cad, record.viewpoint, box, image_size, supersample)
        source = MASK_CAD
    camera = viewpoint_to_camera(record.viewpoint, box, cad)
    return Pascal3DSample(
        image=torch.from_numpy(img_r.copy()).permute(2, 0, 1).float() / 255,
        mask=mask,
        mask_source=source,
        camera=camera,
        crop_box=box,
        perspective_error_px=perspective_error(record.viewpoint, box, cad, image_size, camera),
    )


# --------------------------------------------------------------------------------------------------
# Conversion to the package format
# --------------------------------------------------------------------------------------------------


def build_pascal3d(
    root: str | Path,
    out_dir: str | Path,
    image_size: int = 128,
    splits: Optional[Sequence[str]] = None,
    sources: Sequence[str] = P3D_SOURCES,
    cmr_cache: Optional[str | Path] = None,
    padding: float = 0.05,
    skip_truncated: bool = True,
    skip_occluded: bool = True,
    skip_difficult: bool = True,
    limit: Optional[int] = None,
    force: bool = False,
    chunk: int = 64,
    progress: bool = True,
) -> dict:
    """Convert PASCAL3D+ cars into :data:`meshinv_lite.data.dataset.FORMAT` under ``out_dir``.

    The converted viewpoint is stored as both ``camera`` and ``noisy_camera`` (there is no other). Extra
    per-image arrays: ``source`` (photo under ``Images/``), ``crop_box``, ``object_index`` (1-based in
    ``record.objects``), ``cad_index`` (1..10), ``mask_source`` (``"cmr_cache"`` / ``"cad_projection"``),
    ``perspective_error_px``, ``azimuth``/``elevation``/``theta`` (PASCAL3D+'s, degrees) and the flags
    ``p3d_truncated``/``p3d_occluded``/``p3d_difficult``. ``class_id`` is -1 for every image. Returns
    ``{split: {"num_images", "seconds", "status", "dropped"}}``.
    """
    from .category import CARS
    from .dataset import dataset_lock, update_root_meta

    splits = P3D_SPLITS if splits is None else tuple(splits)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"PASCAL3D+ folder {root} does not exist; it comes from {ARCHIVES['release']}")
    cads = read_cad_models(root)
    cmr_masks = read_cmr_masks(cmr_cache) if cmr_cache is not None else None
    info = {"generator": "pascal3d", "category": "cars", "source": str(root.resolve()), "image_size": int(image_size),
            "padding": padding, "sources": list(sources), "class_names": list(CARS.class_names),
            "cmr_cache": str(Path(cmr_cache).resolve()) if cmr_cache is not None else None,
            "filters": {"truncated": skip_truncated, "occluded": skip_occluded, "difficult": skip_difficult}}
    report = {}
    out = Path(out_dir)
    with dataset_lock(out):
        for split in splits:
            t0 = time.perf_counter()
            records, dropped = read_pascal3d(root, split, sources, skip_truncated=skip_truncated,
                                             skip_occluded=skip_occluded, skip_difficult=skip_difficult)
            records = records[:limit] if limit is not None else records
            if not records:
                raise Pascal3DFormatError(f"PASCAL3D+ split {split!r} ({', '.join(sources)}) has no car left after "
                                          f"filtering (dropped: {dropped})")

            def convert(part: list[Pascal3DRecord]) -> tuple[list, dict]:
                samples = [load_pascal3d_sample(r, root, cads, image_size, padding, cmr_masks) for r in part]
                cams = WeakPerspectiveCamera.cat([s.camera for s in samples]).as_tensor()
                return samples, {
                    "camera": cams, "noisy_camera": cams,
                    "object_index": np.array([r.object_index for r in part], dtype=np.int64),
                    "cad_index": np.array([r.cad_index for r in part], dtype=np.int64),
                    "mask_source": np.array([s.mask_source for s in samples], dtype=str),
                    "perspective_error_px": np.array([s.perspective_error_px for s in samples], dtype=np.float32),
                    **{n: np.array([getattr(r.viewpoint, n) for r in part], dtype=np.float32)
                       for n in ("azimuth", "elevation", "theta")},
                    **{f"p3d_{n}": np.array([getattr(r, n) for r in part], dtype=bool)
                       for n in ("truncated", "occluded", "difficult")},
                }

            status = write_cub_split(out, split, records, convert, {**info, "split": split, "limit": limit},
                                     {**info, "split": split, "has_ground_truth": False}, force, chunk, progress,
                                     f"pascal3d {split}")
            update_root_meta(out, info, split, len(records))
            report[split] = {"num_images": len(records), "seconds": time.perf_counter() - t0, "status": status,
                             "dropped": dropped}
    return report
