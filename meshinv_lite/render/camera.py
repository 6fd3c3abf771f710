"""Weak-perspective cameras, quaternions, image coordinates and view sampling.

Conventions (stated once, here):

* **Normalized image coordinates**: ``x`` right, ``y`` up, both in ``[-1, 1]``. The pixel in column ``i``
  and row ``j`` (row 0 at the top of the image) has its centre at
  ``x = (i + 0.5) / W * 2 - 1`` and ``y = 1 - (j + 0.5) / H * 2``. :func:`pixel_to_ndc` and
  :func:`ndc_to_pixel` are the only places that convert; everything else calls them.
* **Camera** (weak perspective, the paper's ``c = (s, t, r)``): ``V_cam = qrot(r, s * V) + (t_x, t_y, 0)``
  with ``s > 0`` the scale, ``t = (t_x, t_y)`` the image-plane translation in normalized units and ``r``
  a unit quaternion. Projection keeps ``x, y`` (orthographic); ``z`` points **away from the viewer, into
  the screen: larger z is farther** (the z-buffer keeps the smallest z; a face's normal with ``z < 0``
  faces the viewer). Everything here is differentiable in ``s``, ``t``, ``r`` and the points.
* **Quaternions** are ``(w, x, y, z)``, scalar first, unit norm.
* Because ``x`` right / ``y`` up / ``z`` away is a left-handed display frame while ``r`` is a proper
  rotation, a render is the mirror image of a pinhole photo taken from the same direction. This is
  self-consistent for everything rendered by the package; readers of real data (CUB) convert once.
* **Object frame** (the template and SynthBirds): ``y`` up, the bird's beak along ``+z``, its left-right
  symmetry plane ``x = 0``. :func:`view_rotation` turns an azimuth/elevation into ``r``: azimuth 0 sees
  the bird's side (``+x``), 90 its front (beak towards the viewer), 270 its back; positive elevation
  looks down on it from above.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .._checks import check_finite, check_shape

# --------------------------------------------------------------------------------------------------
# Image coordinates
# --------------------------------------------------------------------------------------------------


def pixel_to_ndc(ij: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel indices -> normalized image coordinates.

    Args:
        ij: ``(..., 2)`` ``(column, row)``, row 0 at the top; integers or floats (fractional positions allowed).
        height, width: image size ``H, W`` in pixels.
    Returns:
        ``(..., 2)`` float ``(x, y)``: ``x = (col + 0.5) / W * 2 - 1`` (right), ``y = 1 - (row + 0.5) / H * 2``
        (up); pixel centres of the image lie in ``(-1, 1)``. Affine, so differentiable in ``ij``.
    """
    x = (ij[..., 0] + 0.5) / width * 2 - 1
    y = 1 - (ij[..., 1] + 0.5) / height * 2
    return torch.stack([x, y], dim=-1)


def ndc_to_pixel(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Normalized image coordinates -> continuous pixel positions (the inverse of :func:`pixel_to_ndc`).

    Args:
        xy: ``(..., 2)`` float ``(x, y)``, x right, y up, the image spanning ``[-1, 1]``.
        height, width: image size ``H, W`` in pixels.
    Returns:
        ``(..., 2)`` ``(column, row)`` in ``xy``'s dtype, row 0 at the top; pixel centres are integers, the
        image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``. Affine, so differentiable in ``xy``.
    """
    col = (xy[..., 0] + 1) * 0.5 * width - 0.5
    row = (1 - xy[..., 1]) * 0.5 * height - 0.5
    return torch.stack([col, row], dim=-1)


def pixel_centers(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalized coordinates of every pixel centre.

    Returns:
        ``(H, W, 2)`` in ``dtype`` (default float32): ``[row, col] = (x, y)`` of that pixel's centre, x right,
        y up, all in ``(-1, 1)`` (``[0, 0]`` is the top-left pixel: ``x = 1 / W - 1``, ``y = 1 - 1 / H``).
    """
    rows, cols = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return pixel_to_ndc(torch.stack([cols, rows], dim=-1), height, width)


# --------------------------------------------------------------------------------------------------
# Quaternions
# --------------------------------------------------------------------------------------------------


def normalize_quaternion(q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale quaternions ``(..., 4)`` ``(w, x, y, z)`` to unit norm; same shape and dtype.

    Differentiable in ``q`` (use it on optimized raw values); norms below ``eps`` (default 1e-8) are
    divided by ``eps`` instead of 0.
    """
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` of ``(..., 4)`` quaternions ``(w, x, y, z)`` (broadcast): rotate by ``b``
    then by ``a``. Returns ``(..., 4)``, a unit quaternion for unit inputs; differentiable in both."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate points by unit quaternions: the ``qrot(r, .)`` of ``V_cam = qrot(r, s V) + (t_x, t_y, 0)``.

    Uses ``v' = v + 2 w (u x v) + 2 u x (u x v)`` with ``q = (w, u)``; equal to
    ``quaternion_to_matrix(q) @ v`` for unit ``q``. ``q`` is not normalized here (a non-unit ``q`` also scales).

    Args:
        q: ``(B, 4)`` float unit quaternions ``(w, x, y, z)``.
        v: ``(B, N, 3)`` float points.
    Returns:
        ``(B, N, 3)`` rotated points, differentiable in ``q`` and ``v``.
    """
    w = q[:, None, :1]
    u = q[:, None, 1:].expand_as(v)
    uv = torch.cross(u, v, dim=-1)
    return v + 2 * (w * uv + torch.cross(u, uv, dim=-1))


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``(..., 4)`` ``(w, x, y, z)`` -> rotation matrices ``(..., 3, 3)`` acting on column
    vectors (``R @ v`` equals :func:`qrot`); differentiable in ``q``."""
    w, x, y, z = q.unbind(-1)
    m = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` ``(w, x, y, z)`` with ``w >= 0``.

    Shepperd's method: of the four ways to read a quaternion off a rotation matrix, each divides by one
    component; use the one whose component is largest (never near zero), so 180-degree rotations
    (``w = 0``) about any axis come out right.
    """
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    m01, m02, m10, m12, m20, m21 = m[..., 0, 1], m[..., 0, 2], m[..., 1, 0], m[..., 1, 2], m[..., 2, 0], m[..., 2, 1]
    t = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    candidates = torch.stack([  # (..., 4 pivots, 4 components), each row = 4 q_pivot * q
        torch.stack([t[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
        torch.stack([m21 - m12, t[..., 1], m01 + m10, m02 + m20], -1),
        torch.stack([m02 - m20, m01 + m10, t[..., 2], m12 + m21], -1),
        torch.stack([m10 - m01, m02 + m20, m12 + m21, t[..., 3]], -1),
    ], -2)
    best = t.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0)  # q and -q are the same rotation: keep w >= 0
    return normalize_quaternion(q)


def view_rotation(azimuth_deg, elevation_deg, device=None, dtype=torch.float32) -> torch.Tensor:
    """Quaternions ``r`` that show the object from the given azimuths/elevations.

    The viewing direction (object -> viewer) in the object frame is
    ``d = (cos e cos a, sin e, cos e sin a)``; the object's ``+y`` stays up in the image. Azimuth 0 sees
    the object's ``+x`` side, 90 its ``+z`` side (the bird's front), 270 its back; elevation > 0 looks
    down from above.

    Args:
        azimuth_deg, elevation_deg: degrees, numbers, sequences or tensors, broadcast against each other;
            elevation strictly between -90 and 90.
        dtype: of the result (computed in float64).
    Returns:
        ``(B, 4)`` unit quaternions ``(w, x, y, z)`` with ``w >= 0``, ``B`` the broadcast size.
    """
    a = torch.as_tensor(azimuth_deg, device=device, dtype=torch.float64).reshape(-1)
    e = torch.as_tensor(elevation_deg, device=device, dtype=torch.float64).reshape(-1)
    a, e = torch.broadcast_tensors(a, e)
    if (e.abs() >= 90).any():
        raise ValueError("elevation must lie strictly between -90 and 90 degrees")
    a, e = torch.deg2rad(a), torch.deg2rad(e)
    d = torch.stack([torch.cos(e) * torch.cos(a), torch.sin(e), torch.cos(e) * torch.sin(a)], dim=-1)
    zc = -d  # camera z axis (away from the viewer) in object coordinates
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64, device=d.device).expand_as(d)
    yc = up - (up * zc).sum(-1, keepdim=True) * zc
    yc = yc / yc.norm(dim=-1, keepdim=True)
    xc = torch.cross(yc, zc, dim=-1)
    rot = torch.stack([xc, yc, zc], dim=-2)  # rows: camera axes in object coordinates
    return matrix_to_quaternion(rot).to(dtype)


def rotation_angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle of the rotation between unit quaternions ``a`` and ``b`` (``(..., 4)``, broadcast), degrees in
    ``[0, 180]`` (``q`` and ``-q`` are the same rotation)."""
    return torch.rad2deg(2 * torch.acos((a * b).sum(-1).abs().clamp(max=1)))


def azimuth_elevation(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`view_rotation` for unit quaternions ``q`` ``(B, 4)``: azimuth in ``[0, 360)`` and
    elevation in ``[-90, 90]``, degrees, each ``(B,)`` in ``q``'s dtype. The camera's roll is ignored."""
    rot = quaternion_to_matrix(q)
    d = -rot[..., 2, :]
    elev = torch.rad2deg(torch.asin(d[..., 1].clamp(-1, 1)))
    azim = torch.rad2deg(torch.atan2(d[..., 2], d[..., 0])) % 360
    azim = torch.where(azim >= 360, azim - 360, azim)  # -tiny % 360 rounds up to 360 in float32
    return azim, elev


# --------------------------------------------------------------------------------------------------
# The camera
# --------------------------------------------------------------------------------------------------


@dataclass
class WeakPerspectiveCamera:
    """A batch of weak-perspective cameras ``c = (s, t, r)``: ``V_cam = qrot(r, s V) + (t_x, t_y, 0)``.

    Attributes:
        scale: ``(B,)`` float, positive scale ``s`` (object units -> normalized image units: a unit sphere
            at ``s = 0.8`` has radius 0.8, 80 % of the image's half-width).
        translation: ``(B, 2)`` float image-plane translation ``(t_x, t_y)`` in normalized units (x right, y up).
        rotation: ``(B, 4)`` float unit quaternions ``r = (w, x, y, z)`` (norm within 1e-3 of 1).

    ``apply`` maps object points to camera space (``z`` larger = farther from the viewer), ``project`` keeps
    their normalized ``(x, y)``; both are differentiable in the three attributes and the points.
    Construction checks shapes, finiteness, ``s > 0`` and unit quaternions; to optimize a camera keep raw
    parameters and build one per step with ``normalize_quaternion`` (see :meth:`from_raw`).
    """

    scale: torch.Tensor
    translation: torch.Tensor
    rotation: torch.Tensor

    def __post_init__(self) -> None:
        check_shape("camera scale", self.scale, (None,), "(B,)")
        b = self.scale.shape[0]
        check_shape("camera translation", self.translation, (b, 2), f"({b}, 2)")
        check_shape("camera rotation", self.rotation, (b, 4), f"({b}, 4) quaternions (w, x, y, z)")
        for name, t in (("scale", self.scale), ("translation", self.translation), ("rotation", self.rotation)):
            check_finite(f"camera {name}", t)
        norms = self.rotation.detach().norm(dim=-1)
        if (norms < 1e-6).any():
            raise ValueError("camera rotation contains a zero quaternion; a rotation needs a unit quaternion")
        if ((norms - 1).abs() > 1e-3).any():
            worst = float((norms - 1).abs().max())
            raise ValueError(
                f"camera rotation quaternions must have unit norm (largest deviation {worst:.3g}); "
                "pass normalize_quaternion(q) or use WeakPerspectiveCamera.from_raw"
            )
        if (self.scale.detach() <= 0).any():
            raise ValueError("camera scale must be positive")

    # construction ------------------------------------------------------------------------------
    @classmethod
    def from_raw(cls, scale: torch.Tensor, translation: torch.Tensor, rotation: torch.Tensor) -> "WeakPerspectiveCamera":
        """Build from unconstrained (optimized) values ``scale (B,)``, ``translation (B, 2)``, ``rotation (B, 4)``
        (any non-zero norm): the quaternion is normalized, differentiably; ``scale`` must still be positive."""
        return cls(scale, translation, normalize_quaternion(rotation))

    @classmethod
    def from_tensor(cls, params: torch.Tensor) -> "WeakPerspectiveCamera":
        """From a ``(B, 7)`` float tensor ``[s, t_x, t_y, q_w, q_x, q_y, q_z]`` (views of it, so gradients flow)."""
        check_shape("camera parameters", params, (None, 7), "(B, 7) = [s, tx, ty, qw, qx, qy, qz]")
        return cls(params[:, 0], params[:, 1:3], params[:, 3:7])

    @classmethod
    def from_view(
        cls,
        azimuth_deg,
        elevation_deg=0.0,
        scale=0.8,
        translation=(0.0, 0.0),
        device=None,
        dtype=torch.float32,
    ) -> "WeakPerspectiveCamera":
        """Cameras looking at the object from azimuths/elevations (degrees, see :func:`view_rotation`).

        Defaults: elevation 0 (level), ``scale = 0.8``, ``translation = (0, 0)`` (object centred). Each
        argument is a number or a per-camera sequence, broadcast to one batch ``B``.
        """
        rot = view_rotation(azimuth_deg, elevation_deg, device=device, dtype=dtype)
        b = rot.shape[0]
        s = torch.as_tensor(scale, device=device, dtype=dtype).reshape(-1).expand(b).clone()
        t = torch.as_tensor(translation, device=device, dtype=dtype).reshape(-1, 2).expand(b, 2).clone()
        return cls(s, t, rot)

    def as_tensor(self) -> torch.Tensor:
        """``(B, 7)`` tensor ``[s, t_x, t_y, q_w, q_x, q_y, q_z]`` (differentiable; inverse of :meth:`from_tensor`)."""
        return torch.cat([self.scale[:, None], self.translation, self.rotation], dim=1)

    # use ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """The batch size ``B``."""
        return self.scale.shape[0]

    def __getitem__(self, idx) -> "WeakPerspectiveCamera":
        """The cameras at ``idx`` (an int gives a batch of one; slices, index tensors and masks as in torch)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return WeakPerspectiveCamera(self.scale[idx], self.translation[idx], self.rotation[idx])

    @staticmethod
    def cat(cameras: Sequence["WeakPerspectiveCamera"]) -> "WeakPerspectiveCamera":
        """One batch of all ``cameras``' cameras, in order."""
        return WeakPerspectiveCamera(
            torch.cat([c.scale for c in cameras]),
            torch.cat([c.translation for c in cameras]),
            torch.cat([c.rotation for c in cameras]),
        )

    def to(self, device=None, dtype=None) -> "WeakPerspectiveCamera":
        """The same cameras on ``device`` / in ``dtype`` (``None``: unchanged)."""
        return WeakPerspectiveCamera(
            self.scale.to(device=device, dtype=dtype),
            self.translation.to(device=device, dtype=dtype),
            self.rotation.to(device=device, dtype=dtype),
        )

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return self.scale.device

    def detach(self) -> "WeakPerspectiveCamera":
        """The same cameras, cut from the autograd graph."""
        return WeakPerspectiveCamera(self.scale.detach(), self.translation.detach(), self.rotation.detach())

    def apply(self, verts: torch.Tensor) -> torch.Tensor:
        """Object points -> camera space: ``V_cam = qrot(r, s V) + (t_x, t_y, 0)``.

        Args:
            verts: ``(B, N, 3)`` float object-space points (or ``(N, 3)`` / ``(1, N, 3)``, shared by the
                cameras; a single camera is broadcast to ``B`` point sets).
        Returns:
            ``(B, N, 3)``: ``x, y`` normalized image coordinates (x right, y up, the image spans ``[-1, 1]``);
            ``z`` is depth, larger is farther (not shifted: ``t`` has no z). Differentiable in ``verts``,
            ``scale``, ``translation`` and ``rotation``.
        """
        if verts.dim() == 2:
            verts = verts[None].expand(len(self), -1, -1)
        check_shape("vertices", verts, (None, None, 3), "(B, N, 3)")
        if verts.shape[0] != len(self):
            if verts.shape[0] == 1:
                verts = verts.expand(len(self), -1, -1)
            elif len(self) == 1:
                return self.expand(verts.shape[0]).apply(verts)
            else:
                raise ValueError(f"mismatched batch sizes: vertices {verts.shape[0]}, cameras {len(self)}")
        v = qrot(self.rotation, self.scale[:, None, None] * verts)
        shift = torch.cat([self.translation, torch.zeros_like(self.translation[:, :1])], dim=1)
        return v + shift[:, None, :]

    def project(self, verts: torch.Tensor) -> torch.Tensor:
        """Normalized image coordinates ``(B, N, 2)`` (x right, y up) of object points ``(B, N, 3)``: the first
        two columns of :meth:`apply` (orthographic); differentiable like it."""
        return self.apply(verts)[..., :2]

    def expand(self, batch: int) -> "WeakPerspectiveCamera":
        """Repeat a single camera ``batch`` times (expanded views of its tensors; gradients flow back)."""
        if len(self) != 1:
            raise ValueError(f"only a single camera can be expanded, this batch holds {len(self)}")
        return WeakPerspectiveCamera(
            self.scale.expand(batch), self.translation.expand(batch, 2), self.rotation.expand(batch, 4)
        )

    def view_angles(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Azimuth in ``[0, 360)`` and elevation (degrees) of each camera, ``(B,)`` each; see
        :func:`azimuth_elevation`."""
        return azimuth_elevation(self.rotation)


def check_camera(name: str, camera) -> WeakPerspectiveCamera:
    """Refuse anything but a :class:`WeakPerspectiveCamera` (a raw ``(B, 7)`` tensor is the common slip)."""
    if isinstance(camera, WeakPerspectiveCamera):
        return camera
    if isinstance(camera, torch.Tensor):
        raise TypeError(f"{name} must be a WeakPerspectiveCamera, got a tensor of shape {tuple(camera.shape)}; "
                        "wrap (B, 7) [s, tx, ty, qw, qx, qy, qz] rows with WeakPerspectiveCamera.from_tensor(...)")
    raise TypeError(f"{name} must be a WeakPerspectiveCamera, got {type(camera).__name__}")


def scale_camera_error(exact: WeakPerspectiveCamera, noisy: WeakPerspectiveCamera, factor: float) -> WeakPerspectiveCamera:
    """``noisy``'s error relative to ``exact`` (both ``B`` cameras), multiplied by ``factor``.

    ``factor`` 1 gives ``noisy``, 0 ``exact``, 2 twice as far; returns ``B`` cameras in ``exact``'s dtype.

    The rotation error ``dq = q_noisy q_exact^-1`` keeps its axis and has its angle multiplied; the scale
    error is a ratio (raised to ``factor``), the translation error a difference (multiplied). The same
    error directions at larger sizes make conditions comparable image by image (paired ablations).
    """
    check_camera("exact", exact)
    check_camera("noisy", noisy)
    conj = exact.rotation * exact.rotation.new_tensor([1.0, -1.0, -1.0, -1.0])
    dq = normalize_quaternion(quaternion_multiply(noisy.rotation.double(), conj.double()))
    dq = dq * torch.where(dq[:, :1] < 0, -1.0, 1.0)  # the short way round
    half = torch.acos(dq[:, 0].clamp(-1, 1))
    axis = dq[:, 1:] / torch.sin(half).clamp_min(1e-12)[:, None]
    scaled = torch.cat([torch.cos(factor * half)[:, None], torch.sin(factor * half)[:, None] * axis], 1)
    rot = normalize_quaternion(quaternion_multiply(scaled, exact.rotation.double())).to(exact.rotation.dtype)
    scale = exact.scale * (noisy.scale / exact.scale) ** factor
    trans = exact.translation + factor * (noisy.translation - exact.translation)
    return WeakPerspectiveCamera(scale, trans, rot)


# --------------------------------------------------------------------------------------------------
# View sampling
# --------------------------------------------------------------------------------------------------


def orbit_azimuths(k: int, step_deg: float | None = None, start_deg: float = 0.0) -> list[float]:
    """``k`` azimuths (degrees, in ``[0, 360)``) around the object: ``(start + i * step) % 360``, ``i < k``;
    ``step_deg`` defaults to ``360 / k`` (evenly spaced), ``start_deg`` to 0 (the object's ``+x`` side)."""
    if k < 1:
        raise ValueError(f"need at least one view, got k={k}")
    step = 360.0 / k if step_deg is None else float(step_deg)
    return [float((start_deg + i * step) % 360) for i in range(k)]


def orbit_cameras(
    k: int,
    elevation_deg: float = 20.0,
    scale: float = 0.8,
    step_deg: float | None = None,
    start_deg: float = 0.0,
    device=None,
    dtype=torch.float32,
) -> WeakPerspectiveCamera:
    """``k`` cameras turning about the object's vertical axis at a fixed elevation (see :func:`orbit_azimuths`).

    Defaults: elevation 20 degrees (looking slightly down), ``scale = 0.8``, no translation, evenly spaced
    azimuths from 0.
    """
    az = orbit_azimuths(k, step_deg, start_deg)
    return WeakPerspectiveCamera.from_view(az, elevation_deg, scale, device=device, dtype=dtype)


def random_cameras(
    batch: int,
    elevation_range: tuple[float, float] = (-10.0, 40.0),
    scale_range: tuple[float, float] = (0.7, 0.9),
    translation_std: float = 0.03,
    generator: torch.Generator | None = None,
    device=None,
    dtype=torch.float32,
) -> WeakPerspectiveCamera:
    """``batch`` random views over the full azimuth circle and a moderate elevation band.

    Azimuth uniform in ``[0, 360)``, elevation uniform in ``elevation_range`` (default -10 to 40 degrees),
    scale uniform in ``scale_range`` (default 0.7 to 0.9), translation ``N(0, translation_std^2)`` per axis
    (default 0.03 normalized units). ``generator`` is a CPU ``torch.Generator`` (``None``: the global RNG);
    the cameras are then moved to ``device``.
    """
    u = torch.rand(batch, 3, generator=generator, dtype=torch.float64)
    az = u[:, 0] * 360
    el = elevation_range[0] + u[:, 1] * (elevation_range[1] - elevation_range[0])
    s = scale_range[0] + u[:, 2] * (scale_range[1] - scale_range[0])
    t = torch.randn(batch, 2, generator=generator, dtype=torch.float64) * translation_std
    cam = WeakPerspectiveCamera.from_view(az, el, s.to(dtype), t.to(dtype), dtype=dtype)
    return cam.to(device)
