"""Views around an object: cameras turned about its vertical axis, and the authors' canonical multi-view protocol."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from .._checks import check_shape
from ..config import RenderConfig
from .camera import WeakPerspectiveCamera
from .mesh import TemplateMesh


def turn_cameras(camera, azimuth_deg: float):
    """The same cameras after turning the object by ``azimuth_deg`` about its vertical (``y``) axis."""
    import math

    from .camera import WeakPerspectiveCamera, quaternion_multiply

    half = math.radians(azimuth_deg) / 2
    q = camera.rotation.new_tensor([math.cos(half), 0.0, math.sin(half), 0.0]).expand_as(camera.rotation)
    return WeakPerspectiveCamera(camera.scale, camera.translation, quaternion_multiply(camera.rotation, q))


def render_turned(
    template: TemplateMesh,
    verts: torch.Tensor,
    texture_map: torch.Tensor,
    camera: WeakPerspectiveCamera,
    azimuths: Sequence[float] = (0, 60, 120, 180, 240, 300),
    config: RenderConfig = RenderConfig(),
    background: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each mesh seen from its own camera turned about its vertical axis: the views a person looks at.

    Args:
        template: the shared topology and UV layout.
        verts: ``(B, N, 3)`` object-space vertices; ``texture_map`` ``(B, 3, Ht, Wt)`` in [0, 1].
        camera: ``B`` cameras (e.g. the input views); azimuth 0 is that camera itself.
        azimuths: turns in degrees (``K`` of them); the default goes round in 60 degree steps.
        background: ``(3,)`` colour in [0, 1]; white by default.
    Returns:
        images ``(B, K, 3, H, W)`` and masks ``(B, K, 1, H, W)``, both in [0, 1], hard (no soft silhouette).
    """
    from .dibr import render_mesh

    check_shape("verts", verts, (None, None, 3), "(B, N, 3)")
    b, k = verts.shape[0], len(azimuths)
    if b == 0 or k == 0:
        raise ValueError(f"render_turned needs at least one mesh and one azimuth, got {b} meshes and {k} azimuths")
    bg = background if background is not None else verts.new_ones(3)
    cams = WeakPerspectiveCamera.cat([turn_cameras(camera, a) for a in azimuths])  # (K * B), azimuth-major
    out = render_mesh(template, verts.repeat(k, 1, 1), cams, texture_map.repeat(k, 1, 1, 1), config,
                      background=bg, soft=False)
    h, w = out.image.shape[-2:]
    return (out.image.reshape(k, b, 3, h, w).transpose(0, 1), out.mask.reshape(k, b, 1, h, w).transpose(0, 1))


#: Azimuth step of the multi-view protocol, degrees.
PROTOCOL_STEP_DEG = 30


#: Exact front (beak, ``+z``) and back azimuths in the package's convention (see
#: :func:`meshinv_lite.render.view_rotation`: azimuth 90 looks from ``+z``); FID_10 leaves them out.
PROTOCOL_FRONT_BACK = (90, 270)


PROTOCOL_ELEVATION_DEG = 30.0


PROTOCOL_SCALE = 0.7


def protocol_azimuths(k: int) -> tuple[int, ...]:
    """The views of FID_k, degrees.

    * ``k = 12``: ``0, 30, ..., 330`` about the vertical axis, object in the canonical pose;
    * ``k = 10``: the same without the exact front (90) and back (270), as the authors' FID_10;
    * ``k = 1``: ``(0,)``, meaning *no turn from the input camera* (FID_1 renders at the input view).
    """
    if k == 1:
        return (0,)
    if k == 12:
        return tuple(range(0, 360, PROTOCOL_STEP_DEG))
    if k == 10:
        return tuple(a for a in range(0, 360, PROTOCOL_STEP_DEG) if a not in PROTOCOL_FRONT_BACK)
    raise ValueError(f"the protocol defines FID_1, FID_10 and FID_12; got k={k}")


def normalize_for_protocol(verts: torch.Tensor) -> torch.Tensor:
    """Re-centre meshes ``(B, N, 3)`` at their bounding-box centre and scale each so that half its largest
    bounding-box side is 1 (the protocol camera's scale 0.7 then makes the largest side span 70% of the frame).
    Orientation is kept: the generator's object frame is the canonical pose (``y`` up, beak ``+z``)."""
    check_shape("verts", verts, (None, None, 3), "(B, N, 3)")
    lo, hi = verts.amin(1, keepdim=True), verts.amax(1, keepdim=True)
    half = ((hi - lo) / 2).amax(-1, keepdim=True).clamp_min(1e-8)
    return (verts - (lo + hi) / 2) / half


def protocol_cameras(azimuths, elevation_deg: float = PROTOCOL_ELEVATION_DEG, scale: float = PROTOCOL_SCALE,
                     device=None):
    """Cameras of the canonical pose at ``azimuths`` (degrees), elevation 30, scale 0.7, no translation."""
    from .camera import WeakPerspectiveCamera

    return WeakPerspectiveCamera.from_view([float(a) for a in azimuths], elevation_deg, scale, device=device)
