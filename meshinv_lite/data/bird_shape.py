"""Procedural bird shapes: per-instance parameters and the analytic surface, sampled as deformation maps.

Every bird is the UV-sphere template deformed by a **deformation map**, a function of the template
direction ``d(u, v)`` evaluated on the map's texel centres (``u = (j + 0.5) / W``, ``v = (i + 0.5) / H``),
so ``deform_vertices(template, deformation_map(p, size))`` is the ground-truth mesh exactly.

How a bird is built (object frame: ``y`` up, beak ``+z``, symmetry plane ``x = 0``):

1. body: an egg-shaped ellipsoid;
2. head: a cap of the sphere around the head direction is remapped onto a head sphere, blending into the
   body through a neck;
3. beak, crest, tail and two wings: smooth bumps of the surface *extruded* along an axis (a bump's
   profile sets the part's outline: pointed, rounded, fan-shaped);
4. articulation: each wing's axis and length interpolate between folded (along the body, tips past the
   back) and open (out to the side, raised); the tail length scales;
5. the whole bird is pitched head-up by the species' posture.

The texture that goes with a shape is in :mod:`meshinv_lite.data.bird_texture`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .species import SPECIES

if TYPE_CHECKING:  # only for annotations: synthbirds imports this module
    from .synthbirds import SynthBirdsConfig

_COLOR_KEYS = ("base", "belly", "wing", "head", "beak", "tail", "wing_tip", "accent")
_PLUMAGE_SCALARS = (
    "head_cover", "mask", "eye_ring", "belly_line", "wing_bars", "tail_band", "bars", "bar_contrast",
    "streaks", "spots", "spot_radius", "noise",
)


@dataclass
class BirdParams:
    """Shape, articulation and plumage of ``B`` birds (all tensors, batch first).

    Lengths are in object units, angles in degrees (see :mod:`meshinv_lite.data.species`).
    ``wing_open`` ``(B, 2)``: articulation of the ``+x`` and ``-x`` wings in ``[0, 1]``.
    ``colors``: name -> ``(B, 3)`` RGB in ``[0, 1]``; ``plumage``: name -> ``(B,)`` pattern scalars.
    """

    class_id: torch.Tensor  # (B,) long
    body: torch.Tensor  # (B, 4)
    taper: torch.Tensor  # (B,)
    pitch: torch.Tensor  # (B,)
    head: torch.Tensor  # (B, 3)
    crest: torch.Tensor  # (B,)
    beak: torch.Tensor  # (B, 4)
    tail: torch.Tensor  # (B, 5)
    wing: torch.Tensor  # (B, 7)
    wing_open: torch.Tensor  # (B, 2)
    tail_scale: torch.Tensor  # (B,)
    colors: dict
    plumage: dict
    extreme: torch.Tensor  # (B,) bool: articulation drawn from the held-out extremes

    def __len__(self) -> int:
        return self.class_id.shape[0]


def _species_table(key: str, plumage: bool = False) -> torch.Tensor:
    """Per-species values of one shape (or, with ``plumage``, plumage) attribute, ``(S, ...)`` float64."""
    rows = [getattr(sp.plumage if plumage else sp, key) for sp in SPECIES]
    return torch.tensor(rows, dtype=torch.float64)


def sample_bird_params(
    class_ids: torch.Tensor,
    generator: torch.Generator,
    config: "SynthBirdsConfig",
    hard: bool = False,
) -> BirdParams:
    """Draw instances of the given species.

    Args:
        class_ids: ``(B,)`` species indices into :data:`~meshinv_lite.data.species.SPECIES`.
        generator: the only source of randomness.
        config: articulation ranges and symmetry.
        hard: draw articulation extremes with probability ``config.hard_extreme_prob``.
    Returns:
        :class:`BirdParams` (float32 tensors).
    """
    class_ids = torch.as_tensor(class_ids, dtype=torch.long).reshape(-1)
    if class_ids.numel() and (class_ids.min() < 0 or class_ids.max() >= len(SPECIES)):
        raise ValueError(f"class ids must lie in [0, {len(SPECIES)}), got {class_ids.tolist()}")
    b = class_ids.shape[0]
    g = generator

    def rn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def ru(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    def pick(key, plumage=False):
        return _species_table(key, plumage)[class_ids]

    size = torch.exp(0.05 * rn(b))  # overall size of the individual
    body = pick("body") * size[:, None] * torch.exp(0.04 * rn(b, 4))
    head = pick("head") * torch.exp(0.04 * rn(b, 3))
    head[:, 2] = head[:, 2] * size
    beak = pick("beak")
    beak[:, 0] *= torch.exp(0.08 * rn(b))
    beak[:, 1] += 1.5 * rn(b)
    beak[:, 3] += 3.0 * rn(b)
    tail = pick("tail")
    tail[:, 0] *= torch.exp(0.06 * rn(b))
    tail[:, 3] += 4.0 * rn(b)
    wing = pick("wing")
    wing[:, 0] *= torch.exp(0.05 * rn(b))
    wing[:, 4] += 6.0 * rn(b)
    pitch = pick("pitch") + 5.0 * rn(b)
    crest = pick("crest") * torch.exp(0.1 * rn(b))
    taper = pick("taper")

    # Articulation: folded, or anywhere in the ordinary range; extremes only in the hard split.
    lo, hi = config.wing_open_range
    folded = ru(b) < config.folded_fraction
    openness = torch.where(folded, lo + 0.12 * ru(b) * (hi - lo), lo + ru(b) * (hi - lo))
    t_lo, t_hi = config.tail_scale_range
    tail_scale = t_lo + ru(b) * (t_hi - t_lo)
    extreme = torch.zeros(b, dtype=torch.bool)
    if hard:
        extreme = ru(b) < config.hard_extreme_prob
        h_lo, h_hi = config.hard_wing_open_range
        open_hard = h_lo + ru(b) * (h_hi - h_lo)
        (s_lo, s_hi), (l_lo, l_hi) = config.hard_tail_scales
        short = ru(b) < 0.5
        tail_hard = torch.where(short, s_lo + ru(b) * (s_hi - s_lo), l_lo + ru(b) * (l_hi - l_lo))
        which = ru(b)  # extreme wings, extreme tail, or both
        wings_x = extreme & (which < 0.7)
        tail_x = extreme & (which > 0.4)
        openness = torch.where(wings_x, open_hard, openness)
        tail_scale = torch.where(tail_x, tail_hard, tail_scale)
    if config.symmetric:
        wing_open = openness[:, None].expand(b, 2).clone()
    else:
        other = (openness + 0.35 * rn(b)).clamp(0, 1)
        wing_open = torch.stack([openness, other], dim=1)

    colors = {}
    brightness = torch.exp(0.08 * rn(b))
    for key in _COLOR_KEYS:
        c = pick(key, True) * brightness[:, None] + 0.025 * rn(b, 3)
        colors[key] = c.clamp(0, 1).float()
    plumage = {key: pick(key, True).float() for key in _PLUMAGE_SCALARS}

    return BirdParams(
        class_id=class_ids,
        body=body.float(),
        taper=taper.float(),
        pitch=pitch.float(),
        head=head.float(),
        crest=crest.float(),
        beak=beak.float(),
        tail=tail.float(),
        wing=wing.float(),
        wing_open=wing_open.float(),
        tail_scale=tail_scale.float(),
        colors=colors,
        plumage=plumage,
        extreme=extreme,
    )


# --------------------------------------------------------------------------------------------------
# Geometry helpers (all in the template's direction space)
# --------------------------------------------------------------------------------------------------

_HEAD_K = 2.5  # a cap of angle g on the template covers angle K * g of the head sphere
_HEAD_G0 = math.radians(40.0)  # cap fully on the head
_HEAD_G1 = math.radians(62.0)  # neck ends here


def uv_directions(height: int, width: int, device=None) -> torch.Tensor:
    """Unit template directions ``(H * W, 3)`` at the texel centres of an ``H x W`` UV map.

    Texel ``(i, j)`` has ``u = (j + 0.5) / W``, ``v = (i + 0.5) / H`` (where :func:`sample_uv_map`
    reads it back exactly) and direction ``(sin v pi sin 2 pi u, cos v pi, sin v pi cos 2 pi u)``.
    """
    v = (torch.arange(height, dtype=torch.float64, device=device) + 0.5) / height
    u = (torch.arange(width, dtype=torch.float64, device=device) + 0.5) / width
    th, ph = torch.meshgrid(v * math.pi, u * 2 * math.pi, indexing="ij")
    d = torch.stack([th.sin() * ph.sin(), th.cos(), th.sin() * ph.cos()], dim=-1)
    return d.reshape(-1, 3).float()


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def _smoothstep(e0: float | torch.Tensor, e1: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _angle(d: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Angle (radians) between unit directions ``d`` ``(B, P, 3)`` and ``c`` ``(B, 3)``: ``(B, P)``."""
    c = c[:, None, :]
    cos = _dot(d, c)
    sin = torch.cross(d, c.expand_as(d), dim=-1).norm(dim=-1)
    return torch.atan2(sin, cos)


def _rotate_towards(a: torch.Tensor, b: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Unit ``a`` ``(B, 3)`` turned towards ``b`` by ``angle`` ``(B,)`` radians (in their plane)."""
    e = _normalize(b - _dot(a, b)[:, None] * a)
    return torch.cos(angle)[:, None] * a + torch.sin(angle)[:, None] * e


def _local_angles(d: torch.Tensor, center: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor):
    """Tangent-plane (gnomonic) coordinates of ``d`` ``(B, P, 3)`` around ``center`` along ``e1``, ``e2``.

    Returns ``tan`` of the angles towards ``e1`` and ``e2`` (``(B, P)`` each, close to the angles themselves
    near the centre) and the cosine to the centre; points in the far hemisphere get coordinates of 10.
    """
    c = _dot(d, center[:, None])
    inv = torch.where(c > 1e-3, 1 / c.clamp_min(1e-3), torch.full_like(c, 0.0))
    far = (c <= 1e-3).to(d.dtype) * 10.0
    return _dot(d, e1[:, None]) * inv + far, _dot(d, e2[:, None]) * inv + far, c


def _chord(d: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Chord length ``|d - c|`` ``(B, P)`` between unit directions ``d`` ``(B, P, 3)`` and ``c`` ``(B, 3)``:
    ``2 sin(angle / 2)``, within 1% of the angle (radians) up to 30 degrees and much cheaper."""
    return torch.sqrt((2 - 2 * _dot(d, c[:, None])).clamp_min(0))


@dataclass
class _Frames:
    """Derived directions of a batch of birds (template space), shared by shape and texture."""

    head_axis: torch.Tensor  # (B, 3)
    beak_dir: torch.Tensor  # (B, 3) head-space direction of the beak (and its extrusion axis)
    beak_root: torch.Tensor  # (B, 3) template direction under the beak
    crest_root: torch.Tensor  # (B, 3)
    eye_root: torch.Tensor  # (B, 2, 3) template directions of the +x / -x eyes


def _head_to_template(head_dir: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Template direction whose head remap lands on head-sphere direction ``head_dir`` ``(B, 3)``."""
    beta = torch.acos(_dot(head_dir, axis).clamp(-1, 1))
    return _rotate_towards(axis, head_dir, beta / _HEAD_K)


def _frames(p: BirdParams) -> _Frames:
    b = len(p)
    zeros = torch.zeros(b)
    c_h = torch.stack([zeros, p.head[:, 0], p.head[:, 1]], dim=-1)
    axis = _normalize(c_h)
    droop = torch.deg2rad(p.beak[:, 3])
    beak_dir = torch.stack([zeros, -torch.sin(droop), torch.cos(droop)], dim=-1)
    crest_dir = _normalize(torch.tensor([0.0, 0.85, -0.5]).expand(b, 3))
    eyes = []
    for s in (1.0, -1.0):
        eye = _normalize(torch.tensor([0.74 * s, 0.36, 0.56]).expand(b, 3))
        eyes.append(_head_to_template(eye, axis))
    return _Frames(
        head_axis=axis,
        beak_dir=beak_dir,
        beak_root=_head_to_template(beak_dir, axis),
        crest_root=_head_to_template(crest_dir, axis),
        eye_root=torch.stack(eyes, dim=1),
    )


def _wing_frame(p: BirdParams, side: int):
    """Root direction, chord and thickness axes ``(B, 3)`` each of the ``+x`` (side 0) or ``-x`` wing."""
    b = len(p)
    s = 1.0 if side == 0 else -1.0
    ew, bw = math.radians(14.0), math.radians(14.0)
    root = torch.tensor([s * math.cos(ew) * math.cos(bw), math.sin(ew), -math.cos(ew) * math.sin(bw)]).expand(b, 3)
    fwd = torch.tensor([0.0, 0.0, 1.0]).expand(b, 3)
    chord = _normalize(fwd - _dot(fwd, root)[:, None] * root)
    thick = _normalize(torch.cross(root, chord, dim=-1))
    return root, chord, thick


def _wing_fields(d: torch.Tensor, p: BirdParams, side: int):
    """Wing coordinates of directions ``d`` ``(B, P, 3)``: radius ``r`` (1 = outline), chord coordinate."""
    root, chord, thick = _wing_frame(p, side)
    a_c, a_t, _ = _local_angles(d, root, chord, thick)
    a_c = a_c / torch.tan(torch.deg2rad(p.wing[:, 1]))[:, None]
    a_t = a_t / torch.tan(torch.deg2rad(p.wing[:, 2]))[:, None]
    return torch.sqrt(a_c**2 + a_t**2), a_c, a_t


def _tail_fields(d: torch.Tensor, p: BirdParams):
    """Tail coordinates: radius ``r`` (1 = outline) and the signed side coordinate ``(B, P)``."""
    b = len(p)
    et = math.radians(8.0)
    root = torch.tensor([0.0, math.sin(et), -math.cos(et)]).expand(b, 3)
    ex = torch.tensor([1.0, 0.0, 0.0]).expand(b, 3)
    ey = torch.tensor([0.0, math.cos(et), math.sin(et)]).expand(b, 3)
    a_x, a_y, _ = _local_angles(d, root, ex, ey)
    a_x = a_x / torch.tan(torch.deg2rad(p.tail[:, 1]))[:, None]
    a_y = a_y / torch.tan(torch.deg2rad(p.tail[:, 2]))[:, None]
    return torch.sqrt(a_x**2 + a_y**2), a_x


def _head_fields(d: torch.Tensor, p: BirdParams, fr: _Frames):
    """Head blend weight ``(B, P)``, head-sphere points ``(B, P, 3)`` and head-space directions."""
    c_h = torch.stack([torch.zeros(len(p)), p.head[:, 0], p.head[:, 1]], dim=-1)
    axis = fr.head_axis
    g = _angle(d, axis)
    perp = d - _dot(d, axis[:, None])[..., None] * axis[:, None]
    kg = (_HEAD_K * g).clamp(max=math.pi)
    ratio = torch.where(g > 1e-4, torch.sin(kg) / torch.sin(g).clamp_min(1e-6), torch.full_like(g, _HEAD_K))
    hdir = torch.cos(kg)[..., None] * axis[:, None] + ratio[..., None] * perp
    hpts = c_h[:, None] + p.head[:, 2, None, None] * hdir
    w = 1 - _smoothstep(_HEAD_G0, _HEAD_G1, g)
    return w, hpts, hdir, g


def bird_surface(d: torch.Tensor, p: BirdParams) -> torch.Tensor:
    """Points ``(B, P, 3)`` of each bird's surface at template directions ``d`` ``(P, 3)`` (unit vectors).

    This is the analytic shape; :func:`deformation_map` samples ``bird_surface(d) - d`` on a texel grid.
    """
    b = len(p)
    d = d[None].expand(b, -1, -1)
    fr = _frames(p)
    dx, dy, dz = d.unbind(-1)
    bx, by_up, by_lo, bz = (p.body[:, k, None] for k in range(4))
    taper = 1 + p.taper[:, None] * dz
    y_scale = torch.where(dy > 0, by_up, by_lo)
    pts = torch.stack([bx * dx * taper, y_scale * dy * taper, bz * dz], dim=-1)

    # Head and neck.
    w_h, hpts, _, _ = _head_fields(d, p, fr)
    pts = pts + w_h[..., None] * (hpts - pts)

    # Beak: a cone (profile exponent > 1 thins it) extruded along the beak direction.
    psi = _angle(d, fr.beak_root)
    alpha = torch.deg2rad(p.beak[:, 1])[:, None]
    prof = (1 - psi / alpha).clamp_min(0) ** p.beak[:, 2, None]
    pts = pts + (p.beak[:, 0, None] * prof)[..., None] * fr.beak_dir[:, None]

    # Crest: up and back from the crown.
    psi_c = _angle(d, fr.crest_root)
    prof_c = (1 - psi_c / math.radians(20.0)).clamp_min(0) ** 1.5
    crest_axis = _normalize(torch.tensor([0.0, 0.75, -0.65])).expand(b, 3)
    pts = pts + (p.crest[:, None] * prof_c)[..., None] * crest_axis[:, None]

    # Tail: a flat plateau extruded backwards, fanning out sideways.
    r_t, side_t = _tail_fields(d, p)
    prof_t = 1 - _smoothstep(0.5, 1.0, r_t)
    length = (p.tail[:, 0] * p.tail_scale)[:, None]
    lift = torch.deg2rad(p.tail[:, 3])
    t_axis = torch.stack([torch.zeros(b), torch.sin(lift), -torch.cos(lift)], dim=-1)
    fan = torch.zeros_like(pts)
    fan[..., 0] = p.tail[:, 4, None] * length * prof_t * side_t
    pts = pts + (length * prof_t)[..., None] * t_axis[:, None] + fan

    # Wings: extruded from the flanks; the axis turns from folded (backwards) to open (sideways, raised).
    for side, s in ((0, 1.0), (1, -1.0)):
        r_w, chord_w, _ = _wing_fields(d, p, side)
        prof_w = 1 - _smoothstep(p.wing[:, 3, None], 1.0, r_w)
        a = p.wing_open[:, side]
        raise_ = torch.deg2rad(p.wing[:, 4])
        sweep = p.wing[:, 5]
        open_axis = torch.stack([s * torch.cos(raise_), torch.sin(raise_), -sweep], dim=-1)
        fold_axis = torch.tensor([s * 0.10, 0.12, -1.0]).expand(b, 3)
        axis = _normalize((1 - a)[:, None] * _normalize(fold_axis) + a[:, None] * _normalize(open_axis))
        length = (1 - a) * p.wing[:, 6] + a * p.wing[:, 0]
        bulge = torch.zeros_like(pts)
        bulge[..., 0] = s * 0.06 * (1 - _smoothstep(0.0, 1.0, r_w))
        pts = pts + (length[:, None] * prof_w)[..., None] * axis[:, None] + bulge

    # Posture: pitch head-up about the x axis.
    ang = torch.deg2rad(p.pitch)[:, None]
    y, z = pts[..., 1], pts[..., 2]
    return torch.stack([pts[..., 0], y * torch.cos(ang) + z * torch.sin(ang), -y * torch.sin(ang) + z * torch.cos(ang)], dim=-1)


def deformation_map(p: BirdParams, size: int) -> torch.Tensor:
    """Ground-truth deformation maps ``(B, 3, size, size)``: offsets ``bird_surface(d) - d`` per texel.

    ``deform_vertices(template, map)`` gives the ground-truth mesh. Symmetric birds give maps that are
    exactly mirror-symmetric (``x`` offsets negated), as :func:`~meshinv_lite.mesh.mirror_uv_map` expects.
    """
    d = uv_directions(size, size)
    off = bird_surface(d, p) - d[None]
    maps = off.reshape(len(p), size, size, 3).permute(0, 3, 1, 2).contiguous()
    return _mirror_half(maps, _is_symmetric(p), negate_x=True)


def _mirror_half(maps: torch.Tensor, sym: torch.Tensor, negate_x: bool) -> torch.Tensor:
    """Make the maps of symmetric birds (``sym`` ``(B,)`` bool) exactly mirror-symmetric in ``u``.

    The ``u < 0.5`` half (the ``x >= 0`` side) is kept and mirrored onto the other half, as
    :func:`~meshinv_lite.mesh.mirror_uv_map` does; other birds pass through.
    """
    if not bool(sym.any()):
        return maps
    half = maps[..., : maps.shape[-1] // 2]
    flipped = torch.flip(half, dims=[-1])
    if negate_x:
        flipped = flipped * torch.tensor([-1.0, 1.0, 1.0], dtype=maps.dtype)[None, :, None, None]
    return torch.where(sym[:, None, None, None], torch.cat([half, flipped], dim=-1), maps)


def _is_symmetric(p: BirdParams) -> torch.Tensor:
    """``(B,)`` bool: birds whose two wings share their articulation (and are therefore symmetric)."""
    return p.wing_open[:, 0] == p.wing_open[:, 1]
