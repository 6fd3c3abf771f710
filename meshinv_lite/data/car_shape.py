"""Procedural car shapes: per-instance parameters and the analytic surface, sampled as deformation maps.

Every car is the UV-sphere template deformed by a **deformation map**, a function of the template
direction ``d(u, v)`` evaluated on the map's texel centres (``u = (j + 0.5) / W``, ``v = (i + 0.5) / H``),
exactly as SynthBirds birds are (:mod:`meshinv_lite.data.bird_shape`), so
``deform_vertices(template, deformation_map(p, size))`` is the ground-truth mesh.

How a car is built (lengths in object units; see :mod:`meshinv_lite.data.car_types` for the table and its
ground/nose-based measures):

1. **the solid**: an implicit function ``F <= 0`` inside. The body is a rounded intersection of five
   half-spaces: the sides (half-width stepping in above the belt line for the cabin and leaning in,
   rounded in plan at the nose and tail, flared over the wheels, tucked in at the sills), the top (the side
   profile nose - bonnet - windscreen - roof - rear window - boot - tail, with corners rounded, and an optional
   open well: a pickup's bed, a roadster's cockpit), the underbody, the front and the rear faces. Four tyres
   (rounded discs at the axles, reaching the ground and standing slightly proud of the body) are added by
   union;
2. **the parametrisation**: template direction ``d`` -> a ray from a *spine*, a segment along the car's
   length, 55 % of the way from the underbody to the belt (lower under an open well, so that the rays see
   into it). The angle ``alpha`` of ``d`` from ``+z`` runs along a meridian of rays (:func:`template_rays`):
   first fanning from straight ahead to square to the spine at its front end, then sliding along the
   spine square to it (each cross-section of the car gets a fan of rays), then fanning backwards from its
   rear end. The angle of ``d`` about the ``z`` axis turns the ray within its cross-section. Both angles
   are warped so that the 962 vertices go where they matter: along the car, more rays at the axles; around
   it, more at the lower flanks (tyres, sills), fewer on the underbody. Rays from a spine cover a long car
   far more evenly than rays from one centre, and neighbouring rays never cross, so the map is one-to-one
   wherever each ray meets the surface once;
3. **the surface point** of a direction is the *outermost* crossing of its ray with the solid (marched, then
   bisected), so parts hidden from the spine (the inner faces of the tyres, the deep corners of a pickup's
   bed) are bridged rather than folded.

The surface is left-right symmetric: maps are computed on the ``x >= 0`` half (``u < 0.5``) and mirrored.
The texture that goes with a shape is in :mod:`meshinv_lite.data.car_texture`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ._sampling import class_draws
from .bird_geometry import uv_directions
from .car_types import CAR_TYPES, CarType
from .config import SynthBirdsConfig

#: Length of the meridian (in object units, like the spine it continues) over which rays fan out over the
#: nose and over the tail: the larger, the more of the template goes to the car's front and back.
CAP_LENGTH = 1.3
#: Extra density of rays at the axles (along the car) and at the lower flanks (around it), relative to 1.
AXLE_DENSITY = 3.5
FLANK_DENSITY = 4.0
#: Relative density of rays towards the underbody (hardly ever seen).
UNDERBODY_DENSITY = 0.3
#: Distance of the spine's ends from the nose and the tail.
SPINE_INSET = 0.24
#: Radius of the body's edges, of the side profile's corners and of the tyres' edges.
EDGE_RADIUS = 0.06
PROFILE_RADIUS = 0.035
TYRE_RADIUS = 0.035
#: How far the tyres stand out of the body side, and how far the body flares over them.
TYRE_PROUD = 0.015
ARCH_FLARE = 0.02
SILL_TUCK = 0.03
#: Plan-view corner radius at the nose and the tail.
PLAN_CORNER = 0.16
#: Steps of the ray march and of the bisection that follows.
MARCH_STEPS = 56
BISECT_STEPS = 14

_PAINT_KEYS = ("paint", "cargo", "glass", "trim", "interior")


@dataclass
class CarParams:
    """Shape and paint of ``B`` cars (all tensors, batch first, float32 unless said).

    Lengths in object units; heights ``y`` from the ground, positions ``s`` from the nose (see
    :mod:`meshinv_lite.data.car_types`).

    Attributes:
        class_id: ``(B,)`` long, indices into the type table the cars were drawn from.
        body: ``(B, 4)`` length, width, height (ground to roof), clearance.
        nose: ``(B,)`` ground to the top edge of the front face.
        bonnet: ``(B, 2)`` length and height at the windscreen base.
        belt: ``(B,)`` ground to the window sills.
        roof: ``(B, 2)`` start and end of the flat roof (from the nose).
        boot: ``(B, 2)`` length (from the tail) and height at the rear window's base.
        tail: ``(B,)`` ground to the top edge of the rear face.
        wheels: ``(B, 4)`` tyre radius, tyre width, front axle, rear axle (from the nose).
        cabin: ``(B, 2)`` tumblehome (inward lean of the side glass) and shoulder (step in at the belt).
        open_top: ``(B, 3)`` start, end and depth of an open well in the top (depth 0: none).
        windows: ``(B, 2)`` side panes per side and where the side glass ends (from the nose; past the
            tail: at the rear pillar).
        colors: name -> ``(B, 3)`` RGB in ``[0, 1]``: ``paint``, ``cargo`` (rear body of a box truck, else the
            paint), ``glass``, ``trim`` (bumpers, sills), ``interior`` (a bed's liner, a cockpit).
        extreme: ``(B,)`` bool, proportions drawn from the held-out extremes (lifted or lowered).
    """

    class_id: torch.Tensor
    body: torch.Tensor
    nose: torch.Tensor
    bonnet: torch.Tensor
    belt: torch.Tensor
    roof: torch.Tensor
    boot: torch.Tensor
    tail: torch.Tensor
    wheels: torch.Tensor
    cabin: torch.Tensor
    open_top: torch.Tensor
    windows: torch.Tensor
    colors: dict
    extreme: torch.Tensor

    def __len__(self) -> int:
        return self.class_id.shape[0]

    @property
    def top(self) -> torch.Tensor:
        """``(B,)`` ground to the highest point of the top line (the car is centred on ``top / 2``)."""
        return torch.stack([self.body[:, 2], self.boot[:, 1], self.tail, self.nose, self.bonnet[:, 1]], 1).amax(1)


def _table(types: Sequence[CarType], key: str) -> torch.Tensor:
    """Per-type values of one attribute, ``(T, ...)`` float64."""
    return torch.tensor([getattr(t, key) for t in types], dtype=torch.float64)


def sample_car_params(
    class_ids: torch.Tensor,
    generator: torch.Generator,
    config: Optional[SynthBirdsConfig] = None,
    hard: bool = False,
    types: Sequence[CarType] = CAR_TYPES,
) -> CarParams:
    """Draw instances of the given body types.

    Each instance scales its type's lengths, heights and width by a few percent (all longitudinal positions
    with the length, all heights with the height), jitters its wheels, cabin and clearance, and draws a paint
    colour from the type's palette with a little brightness and hue noise.

    Args:
        class_ids: ``(B,)`` indices into ``types``.
        generator: the only source of randomness.
        config: read only for ``hard_extreme_prob`` (default 0.6 without a config).
        hard: draw extreme proportions with probability ``hard_extreme_prob``: lifted (clearance x 1.8, tyres
            x 1.25) or lowered (height x 0.9, clearance x 0.5, tyres x 1.1).
        types: the type table (default :data:`~meshinv_lite.data.car_types.CAR_TYPES`;
            :data:`~meshinv_lite.data.car_types.UNSEEN_CAR_TYPES` for the held-out types). The random draws
            do not depend on the table, only the type means do.
    Returns:
        :class:`CarParams`; ``class_id`` holds the indices into ``types``.
    """
    class_ids, rn, ru = class_draws(class_ids, len(types), generator)
    b = class_ids.shape[0]

    def pick(key):
        return _table(types, key)[class_ids]

    k_len = torch.exp(0.035 * rn(b))
    k_h = torch.exp(0.03 * rn(b))
    k_w = torch.exp(0.025 * rn(b))
    k_clear = torch.exp(0.10 * rn(b))
    k_wheel = torch.exp(0.04 * rn(b))
    shift = 0.02 * rn(b, 4)  # small moves of the bonnet end, roof start/end and boot start

    extreme = torch.zeros(b, dtype=torch.bool)
    if hard:
        prob = config.hard_extreme_prob if config is not None else 0.6
        extreme = ru(b) < prob
        lifted = ru(b) < 0.5
        k_clear = torch.where(extreme, k_clear * torch.where(lifted, 1.8, 0.5), k_clear)
        k_wheel = torch.where(extreme, k_wheel * torch.where(lifted, 1.25, 1.1), k_wheel)
        k_h = torch.where(extreme & ~lifted, k_h * 0.9, k_h)

    length = pick("length") * k_len
    width = pick("width") * k_w
    clearance = pick("clearance") * k_clear
    lift = clearance - pick("clearance")  # heights above the underbody move with the clearance

    def height(key):
        return pick(key) * k_h + lift

    bonnet = torch.stack([pick("bonnet")[:, 0] * k_len + shift[:, 0], pick("bonnet")[:, 1] * k_h + lift], 1)
    roof = pick("roof") * k_len[:, None] + shift[:, 1:3]
    boot = torch.stack([pick("boot")[:, 0] * k_len - shift[:, 3], pick("boot")[:, 1] * k_h + lift], 1)
    # keep the top line's knots in order: nose < bonnet end < roof start <= roof end < boot start < tail
    gap = 0.02
    bonnet[:, 0] = bonnet[:, 0].clamp(gap, None)
    roof[:, 0] = torch.maximum(roof[:, 0], bonnet[:, 0] + gap)
    roof[:, 1] = torch.maximum(roof[:, 1], roof[:, 0] + gap)
    boot[:, 0] = torch.minimum(boot[:, 0].clamp_min(gap), length - roof[:, 1] - gap)
    radius = pick("wheel_radius") * k_wheel
    axles = pick("axles") * k_len[:, None]
    wheels = torch.stack([radius, pick("tyre_width") * k_w, axles[:, 0], axles[:, 1]], 1)
    cabin = torch.stack([pick("tumblehome") * torch.exp(0.1 * rn(b)), pick("shoulder")], 1)
    open_top = pick("open_top")
    open_top[:, :2] = open_top[:, :2] * k_len[:, None]
    glass_end = torch.tensor([t.glass_end if t.glass_end is not None else 99.0 for t in types], dtype=torch.float64)
    windows = torch.stack([pick("side_windows"), glass_end[class_ids] * k_len], 1)

    # paint: a palette colour (drawn without regard to the table's palette sizes), brightness and hue noise
    which = ru(b)
    rows = []
    for c, w in zip(class_ids.tolist(), which.tolist()):
        palette = types[c].palette
        rows.append(palette[min(int(w * len(palette)), len(palette) - 1)])
    paint = torch.tensor(rows, dtype=torch.float64).reshape(-1, 3)
    paint = paint * torch.exp(0.06 * rn(b))[:, None] + 0.02 * rn(b, 3)
    own = [types[c].cargo_color for c in class_ids.tolist()]
    cargo = paint.clone()
    for i, rgb in enumerate(own):
        if rgb is not None:
            cargo[i] = torch.tensor(rgb, dtype=torch.float64)
    glass = torch.tensor([0.10, 0.13, 0.16], dtype=torch.float64) * torch.exp(0.1 * rn(b, 1)) + 0.01 * rn(b, 3)
    trim = torch.tensor([0.16, 0.16, 0.17], dtype=torch.float64) * torch.exp(0.15 * rn(b, 1))
    interior = torch.tensor([0.14, 0.13, 0.12], dtype=torch.float64) * torch.exp(0.2 * rn(b, 1))
    colors = {k: v.clamp(0, 1).float() for k, v in zip(_PAINT_KEYS, (paint, cargo, glass, trim, interior))}

    return CarParams(
        class_id=class_ids,
        body=torch.stack([length, width, pick("height") * k_h + lift, clearance], 1).float(),
        nose=height("nose_height").float(),
        bonnet=bonnet.float(),
        belt=height("belt").float(),
        roof=roof.float(),
        boot=boot.float(),
        tail=height("tail_height").float(),
        wheels=wheels.float(),
        cabin=cabin.float(),
        open_top=open_top.float(),
        windows=windows.float(),
        colors=colors,
        extreme=extreme,
    )


# --------------------------------------------------------------------------------------------------
# The solid (car-local coordinates: x, y from the ground, s from the nose)
# --------------------------------------------------------------------------------------------------


def _col(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(B,)`` per-car values shaped ``(B, 1, ..., 1)`` to broadcast against ``ndim``-dimensional fields."""
    return t.reshape((t.shape[0],) + (1,) * (ndim - 1))


def _smoothstep(e0, e1, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _soft_hinge(x: torch.Tensor, r: float) -> torch.Tensor:
    """``max(x, 0)`` with its corner rounded over about ``r``."""
    return r * torch.nn.functional.softplus(x / r)


def profile_knots(p: CarParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The top line's knots ``(s, y)``, each ``(B, 6)``: nose, bonnet end, roof start and end, boot start, tail."""
    length = p.body[:, 0]
    s = [torch.zeros_like(length), p.bonnet[:, 0], p.roof[:, 0], p.roof[:, 1], length - p.boot[:, 0], length]
    s = torch.stack(s, 1)
    y = torch.stack([p.nose, p.bonnet[:, 1], p.body[:, 2], p.body[:, 2], p.boot[:, 1], p.tail], 1)
    return s, y


def top_line(s: torch.Tensor, p: CarParams) -> torch.Tensor:
    """Height of the car's top line at positions ``s`` ``(B, ...)``: the piecewise-linear profile through
    :func:`profile_knots`, flat beyond its ends, corners rounded over :data:`PROFILE_RADIUS`."""
    ks, ky = profile_knots(p)
    slopes = (ky[:, 1:] - ky[:, :-1]) / (ks[:, 1:] - ks[:, :-1]).clamp_min(1e-3)
    zero = torch.zeros_like(slopes[:, :1])
    dslope = torch.cat([slopes, zero], 1) - torch.cat([zero, slopes], 1)  # (B, 6) change of slope at each knot
    out = _col(ky[:, 0], s.dim()).expand_as(s).clone()
    for k in range(ks.shape[1]):
        out = out + _col(dslope[:, k], s.dim()) * _soft_hinge(s - _col(ks[:, k], s.dim()), PROFILE_RADIUS)
    return out


def _rounded_max(fields: Sequence[torch.Tensor], r: float) -> torch.Tensor:
    """Rounded intersection of half-spaces ``f_i <= 0`` (edges rounded with radius ``r``; exact for
    orthogonal planar distance fields)."""
    q = [f + r for f in fields]
    outside = torch.sqrt(sum(qi.clamp_min(0) ** 2 for qi in q) + 1e-12)
    inside = torch.stack(q, 0).amax(0).clamp_max(0)
    return outside + inside - r


def body_fields(x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, p: CarParams) -> dict:
    """The body's half-space fields at car-local points ``(B, ...)`` each (``<= 0`` inside each):
    ``side``, ``top``, ``bottom``, ``front``, ``rear``; also ``well`` ``(B, ...)`` in ``[0, 1]`` (inside the
    open well of a bed or cockpit) and ``cabin`` (``1`` where the side steps in above the belt line)."""
    n = x.dim()
    length, width, _, clearance = (_col(p.body[:, k], n) for k in range(4))
    belt = _col(p.belt, n)
    radius = _col(p.wheels[:, 0], n)
    ax = x.abs()

    # plan view: rounded corners at the nose and the tail
    rp = PLAN_CORNER
    front_d = (rp - s).clamp(0, rp)
    rear_d = (s - (length - rp)).clamp(0, rp)
    corner = rp - torch.sqrt((rp * rp - front_d**2).clamp_min(0)) + rp - torch.sqrt((rp * rp - rear_d**2).clamp_min(0))
    half = width / 2 - corner
    # the cabin steps in above the belt and leans in; not over a long boot (a box, a bed) that stays full width
    boot_len = _col(p.boot[:, 0], n)
    long_boot = (boot_len > 0.3).to(x.dtype)
    cabin = 1 - long_boot * _smoothstep(length - boot_len - 0.02, length - boot_len + 0.06, s)
    above = _smoothstep(belt - 0.01, belt + 0.03, y)
    tumble, shoulder = _col(p.cabin[:, 0], n), _col(p.cabin[:, 1], n)
    half = half - cabin * above * (shoulder + tumble * (y - belt).clamp_min(0))
    # flares over the wheels, sills tucked in
    for k in (2, 3):
        dist2 = (s - _col(p.wheels[:, k], n)) ** 2 + (y - radius) ** 2
        half = half + ARCH_FLARE * torch.exp(-dist2 / (1.3 * radius) ** 2) * (1 - above)
    half = half - SILL_TUCK * _smoothstep(clearance + 0.12, clearance, y)

    # top line with the open well
    top = top_line(s, p)
    o_start, o_end, depth = (_col(p.open_top[:, k], n) for k in range(3))
    # sloping walls (a bowl), so that they stay visible from the spine below the floor
    well = _smoothstep(o_start - 0.06, o_start + 0.1, s) * (1 - _smoothstep(o_end - 0.16, o_end + 0.02, s))
    well = well * (1 - _smoothstep(width / 2 - 0.36, width / 2 - 0.08, ax))
    top = top - depth * well

    # underbody, swept up at the overhangs; front and rear faces leaning back above the bumper line
    bottom = clearance + 0.05 * _smoothstep(0.35, 0.0, s) + 0.06 * _smoothstep(length - 0.35, length, s)
    nose, tail = _col(p.nose, n), _col(p.tail, n)
    front = 0.18 * (y - 0.55 * nose).clamp_min(0) + 0.25 * (0.3 * nose - y).clamp_min(0)
    rear = length - 0.10 * (y - 0.6 * tail).clamp_min(0) - 0.25 * (0.3 * tail - y).clamp_min(0)
    return {
        "side": ax - half,
        "top": y - top,
        "bottom": bottom - y,
        "front": front - s,
        "rear": s - rear,
        "well": well * (depth > 0).to(x.dtype),
        "cabin": cabin * above,
    }


def tyre_field(x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, p: CarParams) -> torch.Tensor:
    """Signed field of the four tyres (``<= 0`` inside), rounded discs across ``x`` at the axles, ``(B, ...)``."""
    n = x.dim()
    width = _col(p.body[:, 1], n)
    radius, tyre_w = _col(p.wheels[:, 0], n), _col(p.wheels[:, 1], n)
    ax = x.abs()
    out_face = ax - (width / 2 + TYRE_PROUD)
    in_face = (width / 2 - tyre_w) - ax
    best = None
    for k in (2, 3):
        rho = torch.sqrt((s - _col(p.wheels[:, k], n)) ** 2 + (y - radius) ** 2) - radius
        f = _rounded_max([rho, out_face, in_face], TYRE_RADIUS)
        best = f if best is None else torch.minimum(best, f)
    return best


def car_field(x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, p: CarParams) -> torch.Tensor:
    """The car's implicit function at car-local points ``(B, ...)``: ``<= 0`` inside (body or tyres)."""
    f = body_fields(x, y, s, p)
    body = _rounded_max([f["side"], f["top"], f["bottom"], f["front"], f["rear"]], EDGE_RADIUS)
    return torch.minimum(body, tyre_field(x, y, s, p))


# --------------------------------------------------------------------------------------------------
# Directions -> rays -> surface points
# --------------------------------------------------------------------------------------------------


def spine(p: CarParams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rays' spine: height above the ground and its two ends (from the nose), each ``(B,)``."""
    clearance, belt, length = p.body[:, 3], p.belt, p.body[:, 0]
    height = clearance + 0.55 * (belt - clearance)
    # below the floor of an open well (a bed, a cockpit), so that the rays see into it
    floor = top_line(p.open_top[:, :2].mean(1, keepdim=True), p)[:, 0] - p.open_top[:, 2]
    low = torch.minimum(height, floor - 0.25).clamp_min(clearance + 0.08)
    height = torch.where(p.open_top[:, 2] > 0, low, height)
    return height, torch.full_like(length, SPINE_INSET), length - SPINE_INSET


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of increasing tables ``xp``, ``fp`` ``(B, K)`` at ``x`` ``(B, P)``."""
    i = torch.searchsorted(xp.contiguous(), x.contiguous()).clamp(1, xp.shape[1] - 1)
    x0, x1 = xp.gather(1, i - 1), xp.gather(1, i)
    f0, f1 = fp.gather(1, i - 1), fp.gather(1, i)
    w = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return f0 + w * (f1 - f0)


def _inverse_cdf(grid: torch.Tensor, density: torch.Tensor, lo: float, hi: float, x: torch.Tensor) -> torch.Tensor:
    """Warp ``x`` ``(B, P)`` in ``[lo, hi]`` onto ``grid`` ``(B, K)`` so that the image is sampled in proportion
    to ``density`` ``(B, K)`` (positive) on the grid: the inverse of its normalized cumulative."""
    step = grid[:, 1:] - grid[:, :-1]
    area = torch.cumsum(0.5 * (density[:, 1:] + density[:, :-1]) * step, 1)
    cum = torch.cat([torch.zeros_like(grid[:, :1]), area], 1)
    cum = lo + (hi - lo) * cum / cum[:, -1:]
    return _interp(x, cum, grid)


def _meridian(tau: torch.Tensor, caps: float, s0: torch.Tensor, s1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origin ``s`` on the spine and tilt ``theta`` (from straight ahead) at meridian positions ``tau``."""
    span = s1 - s0
    theta = 0.5 * math.pi * ((tau / caps).clamp(max=1) + ((tau - caps - span) / caps).clamp(min=0))
    return s0 + (tau - caps).clamp(min=0).minimum(span), theta


def template_rays(d: torch.Tensor, p: CarParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Car-local ray origins and unit directions ``(B, P, 3)`` (``x``, ``y``, ``s``) of template directions
    ``d`` ``(P, 3)``.

    The angle ``alpha`` of ``d`` from ``+z`` runs along a *meridian* of rays: first tilting from straight
    ahead to square to the spine at its front end (over a length :data:`CAP_LENGTH`), then sliding along the
    spine, then tilting backwards from its rear end. ``alpha`` is spread over the meridian in proportion to a
    density that is ``1 + AXLE_DENSITY`` times higher at the axles, so the wheels get more of the template's
    vertices. The angle ``beta`` of ``d`` about ``z`` (from the side, ``+y`` up, mirrored for ``x < 0``) turns the
    ray within its cross-section; it too is warped, towards the lower flanks where the tyres and the sills are
    (:data:`FLANK_DENSITY`).
    """
    b = len(p)
    d = d.double()
    dx, dy, dz = d.unbind(-1)
    alpha = torch.acos(dz.clamp(-1, 1))[None].expand(b, -1)  # (B, P)
    beta = torch.atan2(dy, dx.abs())[None].expand(b, -1)  # in [-pi/2, pi/2]
    side = torch.where(dx < 0, -1.0, 1.0).to(d.dtype)[None]
    yc, s0, s1 = (t.double()[:, None] for t in spine(p))

    # meridian: tau in [0, caps + spine + caps], density bumps at the axles
    caps = CAP_LENGTH
    k = 513
    tau_end = 2 * caps + (s1 - s0)
    tau = torch.linspace(0, 1, k, dtype=d.dtype)[None] * tau_end  # (B, K)
    s_tau, _ = _meridian(tau, caps, s0, s1)
    on_spine = ((tau > caps) & (tau < caps + (s1 - s0))).to(d.dtype)
    radius = p.wheels[:, 0].double()[:, None]
    dens = torch.ones_like(tau)
    for j in (2, 3):
        axle = p.wheels[:, j].double()[:, None]
        dens = dens + AXLE_DENSITY * on_spine * torch.exp(-(((s_tau - axle) / (1.2 * radius)) ** 2))
    tau_d = _inverse_cdf(tau, dens, 0.0, math.pi, alpha)
    origin_s, theta = _meridian(tau_d, caps, s0, s1)

    # cross-section: more rays at the lower flanks (from the tyres' inner bottom edge up to the sills), few on
    # the underbody
    grid = torch.linspace(-0.5 * math.pi, 0.5 * math.pi, 361, dtype=d.dtype)[None].expand(b, -1)
    half_w, clearance = 0.5 * p.body[:, 1].double()[:, None], p.body[:, 3].double()[:, None]
    ground = torch.atan2(-yc, half_w - p.wheels[:, 1].double()[:, None])
    sill = torch.atan2(clearance + 0.06 - yc, half_w)
    band = _smoothstep(ground - 0.12, ground, grid) * (1 - _smoothstep(sill, sill + 0.12, grid))
    dens = UNDERBODY_DENSITY + (1 - UNDERBODY_DENSITY) * _smoothstep(ground - 0.4, ground - 0.1, grid)
    beta_w = _inverse_cdf(grid, dens + FLANK_DENSITY * band, -0.5 * math.pi, 0.5 * math.pi, beta)

    e = torch.stack([side * theta.sin() * beta_w.cos(), theta.sin() * beta_w.sin(), -theta.cos()], -1)
    o = torch.stack([torch.zeros_like(origin_s), yc.expand_as(origin_s), origin_s], -1)
    return o.float(), e.float()


def _march(o: torch.Tensor, e: torch.Tensor, p: CarParams, reach: torch.Tensor) -> torch.Tensor:
    """Distance ``(B, P)`` along each ray to its outermost crossing of the surface (the solid beyond the last
    marched sample that is inside is bisected)."""
    b, n_rays, _ = o.shape
    steps = torch.linspace(0, 1, MARCH_STEPS, dtype=o.dtype)
    out = torch.empty(b, n_rays, dtype=o.dtype)
    chunk = max(1, 600_000 // max(1, b * MARCH_STEPS))
    for lo in range(0, n_rays, chunk):
        oc, ec = o[:, lo : lo + chunk], e[:, lo : lo + chunk]
        t = steps[None, None, :] * reach[:, None, None]  # (B, 1, S)
        pts = oc[:, :, None] + t[..., None] * ec[:, :, None]  # (B, C, S, 3)
        inside = car_field(pts[..., 0], pts[..., 1], pts[..., 2], p) <= 0
        idx = torch.arange(MARCH_STEPS)
        last = torch.where(inside, idx, torch.zeros_like(idx)).amax(-1)  # (B, C)
        t_in = steps[last] * reach[:, None]
        t_out = steps[(last + 1).clamp(max=MARCH_STEPS - 1)] * reach[:, None]
        for _ in range(BISECT_STEPS):
            t_mid = 0.5 * (t_in + t_out)
            q = oc + t_mid[..., None] * ec
            ins = car_field(q[..., 0], q[..., 1], q[..., 2], p) <= 0
            t_in = torch.where(ins, t_mid, t_in)
            t_out = torch.where(ins, t_out, t_mid)
        out[:, lo : lo + chunk] = 0.5 * (t_in + t_out)
    return out


def car_points_local(d: torch.Tensor, p: CarParams) -> torch.Tensor:
    """Car-local surface points ``(B, P, 3)`` (``x``, ``y`` from the ground, ``s`` from the nose) of
    template directions ``d`` ``(P, 3)``."""
    o, e = template_rays(d, p)
    length, width = p.body[:, 0], p.body[:, 1]
    reach = 0.5 * torch.sqrt(length**2 + width**2 + (2 * p.top) ** 2) + 0.1
    t = _march(o, e, p, reach)
    return o + t[..., None] * e


def local_to_object(pts: torch.Tensor, p: CarParams) -> torch.Tensor:
    """Car-local points ``(B, ..., 3)`` -> object frame (``y`` up, front ``+z``, centred on the bounding box)."""
    n = pts.dim() - 1
    length, top = _col(p.body[:, 0], n), _col(p.top, n)
    return torch.stack([pts[..., 0], pts[..., 1] - top / 2, length / 2 - pts[..., 2]], -1)


def object_to_local(pts: torch.Tensor, p: CarParams) -> torch.Tensor:
    """Inverse of :func:`local_to_object`: object-frame points ``(B, ..., 3)`` -> car-local ``(x, y, s)``."""
    n = pts.dim() - 1
    length, top = _col(p.body[:, 0], n), _col(p.top, n)
    return torch.stack([pts[..., 0], pts[..., 1] + top / 2, length / 2 - pts[..., 2]], -1)


def car_surface(d: torch.Tensor, p: CarParams) -> torch.Tensor:
    """Points on each car's surface (object frame) for template directions ``d`` ``(..., 3)`` (unit vectors):
    ``(B, ..., 3)``, e.g. ``(H, W, 3)`` -> ``(B, H, W, 3)``, ``(P, 3)`` -> ``(B, P, 3)``.

    This is the analytic shape; :func:`deformation_map` samples ``car_surface(d) - d`` on a texel grid.
    """
    lead = d.shape[:-1]
    pts = local_to_object(car_points_local(d.reshape(-1, 3), p), p)
    return pts.reshape((len(p),) + tuple(lead) + (3,))


def half_directions(size: int) -> torch.Tensor:
    """Template directions ``(size, size // 2, 3)`` of the ``u < 0.5`` half (``x >= 0``) of a square map."""
    if size % 2:
        raise ValueError(f"car maps are mirror-symmetric and need an even size, got {size}")
    return uv_directions(size, size).reshape(size, size, 3)[:, : size // 2]


def mirror_columns(half: torch.Tensor, negate_x: bool) -> torch.Tensor:
    """``(B, C, H, W/2)`` ``u < 0.5`` half -> full ``(B, C, H, W)`` map, mirrored ``u -> 1 - u``."""
    flipped = torch.flip(half, dims=[-1])
    if negate_x:
        flipped = flipped * torch.tensor([-1.0, 1.0, 1.0], dtype=half.dtype)[None, :, None, None]
    return torch.cat([half, flipped], dim=-1).contiguous()


def deformation_map(p: CarParams, size: int) -> torch.Tensor:
    """Ground-truth deformation maps ``(B, 3, size, size)``: offsets ``car_surface(d) - d`` per texel.

    ``deform_vertices(template, map)`` gives the ground-truth mesh. Maps are exactly mirror-symmetric
    (``x`` offsets negated under ``u -> 1 - u``), as :func:`~meshinv_lite.render.mirror_uv_map` expects;
    every component lies within ``[-1.5, 1.5]`` (the generator's ``max_offset``) for the types of
    :mod:`meshinv_lite.data.car_types`.
    """
    d = half_directions(size)
    off = car_surface(d, p) - d[None]  # (B, size, size/2, 3)
    return mirror_columns(off.permute(0, 3, 1, 2), negate_x=True)
