"""SynthBirds: procedural, class-conditional birds with exact 3D ground truth.

Every bird is the package's UV-sphere template deformed by a **deformation map** and painted by a
**texture map**, both functions of the template direction ``d(u, v)`` evaluated on the maps' texel
centres (``u = (j + 0.5) / W``, ``v = (i + 0.5) / H``). The ground-truth vertices are
``deform_vertices(template, deform_map)``, so maps and mesh agree exactly, and re-rendering a sample's
maps with its stored camera reproduces its image and mask.

How a bird is built (object frame: ``y`` up, beak ``+z``, symmetry plane ``x = 0``):

1. body: an egg-shaped ellipsoid;
2. head: a cap of the sphere around the head direction is remapped onto a head sphere, blending
   into the body through a neck;
3. beak, crest, tail and two wings: smooth bumps of the surface *extruded* along an axis
   (a bump's profile sets the part's outline: pointed, rounded, fan-shaped);
4. articulation: each wing's axis and length interpolate between folded (along the body, tips past
   the back) and open (out to the side, raised); the tail length scales;
5. the whole bird is pitched head-up by the species' posture.

Textures are functions of the same direction (body, belly, head, crown, face mask, eye, beak, wing with
bars and dark tips, tail band, body bars, streaks, spots, feather noise) with a soft top-light shading
baked in. Left-right symmetric birds evaluate everything at ``(|x|, y, z)``.

Entry points: :func:`sample_bird_params`, :func:`deformation_map`, :func:`texture_map`,
:func:`fit_cameras`, :func:`perturb_cameras`, :func:`backgrounds`, :func:`generate_batch`,
:func:`render_ground_truth`; :func:`build_synthbirds` writes the splits to disk
(format: :mod:`meshinv_lite.data.dataset`).
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import torch
import torch.nn.functional as F

from ..camera import WeakPerspectiveCamera, normalize_quaternion, pixel_centers, quaternion_multiply, view_rotation
from ..config import RenderConfig, get_profile
from ..mesh import TemplateMesh, deform_vertices, make_uv_sphere, sample_uv_map
from ..render import render_mesh
from .species import SPECIES, SPECIES_NAMES, Species

GENERATOR_VERSION = "1.0"
SPLITS: tuple[str, ...] = ("train", "val", "test", "test_hard")

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------

_SPLIT_SIZES = {
    "quick": {"train": 48, "val": 16, "test": 16, "test_hard": 16},
    "lite": {"train": 2000, "val": 200, "test": 200, "test_hard": 200},
    "paper": {"train": 6000, "val": 500, "test": 1000, "test_hard": 500},
}


@dataclass(frozen=True)
class SynthBirdsConfig:
    """Everything that determines a SynthBirds dataset (with the seed).

    Attributes:
        profile: profile name the sizes come from.
        image_size: rendered image side, pixels.
        texture_size: ground-truth texture map side (``Ht = Wt``).
        deform_size: ground-truth deformation map side (``Hd = Wd``).
        sizes: images per split.
        symmetric: left-right symmetric birds (shape and texture); ``False`` gives each side its own
            wing articulation and texture noise.
        elevation_range: camera elevations, degrees (azimuth covers the full circle).
        fill_range: fraction of the frame spanned by the bird's larger projected extent.
        max_offset: largest image-plane shift of the bird's box centre (normalized units); kept
            within the free margin so the bird is never cut by the frame.
        wing_open_range: wing articulation of ordinary splits (0 folded, 1 fully open);
        folded_fraction: share of ordinary birds with (nearly) folded wings.
        tail_scale_range: tail length factor of ordinary splits.
        hard_wing_open_range / hard_tail_scales: articulation extremes held out for ``test_hard``.
        hard_extreme_prob / hard_occlusion_prob: chance that a ``test_hard`` image has extreme
            articulation / an occluding twig (each image has at least one of the two).
        noise_rot_deg, noise_scale, noise_trans: "SfM" camera noise: rotation angle std (degrees),
            log-scale std, translation std (normalized units).
        chunk: images rendered per batch (and written per resumable chunk).
    """

    profile: str = "lite"
    image_size: int = 128
    texture_size: int = 128
    deform_size: int = 32
    sizes: dict = field(default_factory=lambda: dict(_SPLIT_SIZES["lite"]))
    symmetric: bool = True
    elevation_range: tuple[float, float] = (-10.0, 40.0)
    fill_range: tuple[float, float] = (0.72, 0.92)
    max_offset: float = 0.05
    wing_open_range: tuple[float, float] = (0.0, 0.75)
    folded_fraction: float = 0.55
    tail_scale_range: tuple[float, float] = (0.85, 1.15)
    hard_wing_open_range: tuple[float, float] = (0.88, 1.0)
    hard_tail_scales: tuple[tuple[float, float], tuple[float, float]] = ((0.45, 0.6), (1.4, 1.6))
    hard_extreme_prob: float = 0.6
    hard_occlusion_prob: float = 0.6
    noise_rot_deg: float = 6.0
    noise_scale: float = 0.04
    noise_trans: float = 0.03
    chunk: int = 32

    @classmethod
    def for_profile(cls, name: str = "lite", **overrides) -> "SynthBirdsConfig":
        """The configuration of a profile (``quick``, ``lite``, ``paper``) with optional overrides.

        Image and deformation sizes follow the profile; the paper profile stores 256 px texture maps
        (its 512 px GAN textures would make the ground truth 3 GB).
        """
        prof = get_profile(name)
        tex = min(prof.texture_size, 256)
        base = cls(
            profile=prof.name,
            image_size=prof.render_size,
            texture_size=tex,
            deform_size=prof.deform_size,
            sizes=dict(_SPLIT_SIZES[prof.name]),
        )
        return replace(base, **overrides) if overrides else base

    @property
    def num_classes(self) -> int:
        return len(SPECIES)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SynthBirdsConfig":
        """Inverse of :meth:`to_dict` (lists turned back into tuples, unknown keys rejected)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown SynthBirdsConfig keys {sorted(unknown)}")
        kw = {}
        for k, v in d.items():
            if isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kw[k] = v
        return cls(**kw)


# --------------------------------------------------------------------------------------------------
# Per-instance parameters
# --------------------------------------------------------------------------------------------------

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
    config: SynthBirdsConfig = SynthBirdsConfig(),
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


# --------------------------------------------------------------------------------------------------
# Texture
# --------------------------------------------------------------------------------------------------


def _solid_noise(d: torch.Tensor, cells: tuple[int, int, int], channels: int, generator: torch.Generator) -> torch.Tensor:
    """Smooth random fields ``(B, C, P)`` of 3D directions ``d`` ``(B, P, 3)`` (trilinear lattice noise).

    ``cells`` is the lattice resolution along ``(x, y, z)``; anisotropic lattices give streaky noise.
    Being a function of the 3D point, the noise has no seam and no pole artifacts.
    """
    b = d.shape[0]
    nx, ny, nz = cells
    lattice = torch.randn(b, channels, nz, ny, nx, generator=generator)
    grid = d[:, None, None]  # (B, 1, 1, P, 3) as (x, y, z)
    out = F.grid_sample(lattice, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0, 0]


def _mix(color: torch.Tensor, other: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Blend ``(B, P, 3)`` towards ``other`` (``(B, 3)`` or ``(B, P, 3)``) by weight ``w`` ``(B, P)``."""
    if other.dim() == 2:
        other = other[:, None]
    return color + w[..., None] * (other - color)


def shading_map(deform_map: torch.Tensor) -> torch.Tensor:
    """Soft top-light shading ``(B, 1, Hd, Wd)`` (about 0.4 to 1) of the surface a deformation map describes.

    Normals come from central differences of the surface points on the map's own texel grid
    (circular in ``u``); ``cross(dX/dv, dX/du)`` points outwards for the undeformed sphere.
    """
    b, _, hd, wd = deform_map.shape
    d = uv_directions(hd, wd).reshape(hd, wd, 3).permute(2, 0, 1)[None]
    x = d + deform_map
    du = torch.roll(x, -1, dims=-1) - torch.roll(x, 1, dims=-1)
    xp = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    dv = xp[:, :, 2:] - xp[:, :, :-2]
    n = torch.cross(dv, du, dim=1)
    n = torch.where(n.norm(dim=1, keepdim=True) > 1e-8, n, d.expand_as(n))
    n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-9)
    light = _normalize(torch.tensor([0.0, 1.0, 0.45]))
    return 0.7 + 0.3 * (n * light[None, :, None, None]).sum(1, keepdim=True)


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


def _texel_uvs(height: int, width: int, columns: int) -> torch.Tensor:
    """UVs ``(height * columns, 2)`` of the first ``columns`` texel columns of a ``height x width`` map."""
    v = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    u = (torch.arange(columns, dtype=torch.float32) + 0.5) / width
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1).reshape(-1, 2)


def texture_map(
    p: BirdParams,
    size: int,
    generator: torch.Generator,
    deform_map: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Ground-truth texture maps ``(B, 3, size, size)`` in ``[0, 1]``.

    Symmetric birds are painted on the ``x >= 0`` half and mirrored (``u -> 1 - u``), so their maps are
    exactly symmetric. With ``deform_map`` ``(B, 3, Hd, Wd)`` a soft top light computed from that shape
    (:func:`shading_map`) is baked in (the renderer itself is unlit).
    """
    b = len(p)
    sym = _is_symmetric(p)
    all_sym = bool(sym.all())
    cols = size // 2 if all_sym else size
    d = uv_directions(size, size).reshape(size, size, 3)[:, :cols].reshape(1, -1, 3).expand(b, -1, -1)
    if not all_sym and bool(sym.any()):  # mixed batch: symmetric birds painted at (|x|, y, z)
        d = torch.where(sym[:, None, None], torch.cat([d[..., :1].abs(), d[..., 1:]], dim=-1), d)
    sides = (0,) if all_sym else (0, 1)
    dx, dy, dz = d.unbind(-1)
    fr = _frames(p)
    c = p.colors
    pl = p.plumage

    def const(rgb) -> torch.Tensor:
        return torch.tensor(rgb, dtype=torch.float32).expand(b, 3)

    # Body and belly.
    col = c["base"][:, None].expand(b, d.shape[1], 3).clone()
    belly = torch.sigmoid((pl["belly_line"][:, None] - dy) / 0.07)
    col = _mix(col, c["belly"], belly)

    # Bars across the back, streaks on the breast.
    if bool((pl["bar_contrast"] > 0).any()):
        bar = 0.5 + 0.5 * torch.sin(pl["bars"][:, None] * math.pi * dz)
        col = _mix(col, c["accent"], pl["bar_contrast"][:, None] * _smoothstep(0.55, 0.8, bar) * (1 - 0.6 * belly))
    if bool((pl["streaks"] > 0).any()):
        around = torch.atan2(dx.abs(), dz)  # 0 at the front, pi at the back
        streak = _smoothstep(0.6, 0.9, 0.5 + 0.5 * torch.sin(18 * around + 3 * dy))
        front = _smoothstep(-0.1, 0.4, dz) * _smoothstep(0.35, -0.2, dy)
        col = _mix(col, c["accent"], 0.7 * pl["streaks"][:, None] * streak * front)

    # Spots on the upper body and flanks (on the +x side for symmetric birds, mirrored later).
    k_max = int(pl["spots"].max()) if b else 0
    if k_max > 0:
        sd = torch.randn(b, k_max, 3, generator=generator)
        side_sign = torch.where(sym[:, None], torch.ones(b, k_max), torch.sign(sd[..., 0]))
        sd = _normalize(torch.stack([sd[..., 0].abs() * side_sign, sd[..., 1].abs() * 0.8 + 0.1, sd[..., 2]], -1))
        active = (torch.arange(k_max)[None] < pl["spots"][:, None]).float()
        chord2 = (2 - 2 * torch.einsum("bpk,bsk->bps", d, sd)).clamp_min(0)
        rad2 = torch.deg2rad(pl["spot_radius"])[:, None, None] ** 2
        spot = torch.exp(-((chord2 / rad2) ** 2)) * active[:, None]
        col = _mix(col, c["accent"], 0.85 * spot.amax(-1))

    # Wings: colour patch (a folded wing covers more of the flank), light bars, dark primaries.
    for side in sides:
        r_w, chord_w, thick_w = _wing_fields(d, p, side)
        a = p.wing_open[:, side, None]
        r_tex = torch.sqrt((chord_w / (1 + 0.5 * (1 - a))) ** 2 + (thick_w / (1 + 1.8 * (1 - a))) ** 2) * 1.1
        on = 1 - _smoothstep(0.9, 1.0, r_tex)
        col = _mix(col, c["wing"], on)
        n_bars = pl["wing_bars"][:, None]
        bars = _smoothstep(0.75, 0.9, 0.5 + 0.5 * torch.cos(2 * math.pi * n_bars * (0.25 + 0.45 * r_tex)))
        col = _mix(col, c["accent"], 0.8 * on * bars * (n_bars > 0) * _smoothstep(0.25, 0.4, r_tex))
        r0 = p.wing[:, 3, None]
        tip = (1 - _smoothstep(r0 + 0.05, r0 + 0.25, r_w)) * a + (1 - a) * _smoothstep(0.1, -0.6, chord_w)
        col = _mix(col, c["wing_tip"], tip.clamp(0, 1) * on)

    # Tail, with an optional dark band at the tip.
    r_t, _ = _tail_fields(d, p)
    tail_on = 1 - _smoothstep(0.95, 1.15, r_t)
    col = _mix(col, c["tail"], tail_on)
    col = _mix(col, c["wing_tip"], pl["tail_band"][:, None] * tail_on * (1 - _smoothstep(0.35, 0.5, r_t)))

    # Head (hood or crown), face mask, eye ring, eye with a glint; then the beak.
    axis = fr.head_axis
    cos_g = _dot(d, axis[:, None]).clamp(-1, 1)
    g = torch.acos(cos_g)
    kg = (_HEAD_K * g).clamp(max=math.pi)
    ratio = torch.sin(kg) / torch.sin(g).clamp_min(1e-4)
    head_up = torch.cos(kg) * axis[:, None, 1] + ratio * (dy - cos_g * axis[:, None, 1])  # y of the head-sphere direction
    head_on = 1 - _smoothstep(_HEAD_G0 - 0.08, _HEAD_G0 + 0.06, g)
    cover = pl["head_cover"][:, None]
    col = _mix(col, c["head"], head_on * (cover + (1 - cover) * _smoothstep(0.2, 0.45, head_up)))
    eye_r = math.radians(4.5)
    for side in sides:
        er = fr.eye_root[:, side]
        ang = _chord(d, er)
        col = _mix(col, const((0.08, 0.07, 0.07)), pl["mask"][:, None] * (1 - _smoothstep(2.0 * eye_r, 3.2 * eye_r, ang)))
        col = _mix(col, const((0.95, 0.95, 0.92)), pl["eye_ring"][:, None] * (1 - _smoothstep(1.5 * eye_r, 1.9 * eye_r, ang)))
        col = _mix(col, const((0.03, 0.03, 0.03)), 1 - _smoothstep(0.8 * eye_r, 1.05 * eye_r, ang))
        glint = _chord(d, _rotate_towards(er, axis, torch.full((b,), 0.35 * eye_r)))
        col = _mix(col, const((0.92, 0.92, 0.92)), 1 - _smoothstep(0.2 * eye_r, 0.35 * eye_r, glint))
    psi = _chord(d, fr.beak_root) / (2 * torch.sin(torch.deg2rad(p.beak[:, 1]) / 2))[:, None]
    col = _mix(col, c["beak"], 1 - _smoothstep(0.5, 0.62, psi))

    # Feather-like noise: coarse blotches and fine streaks running along the body.
    amp = pl["noise"][:, None, None]
    coarse = _solid_noise(d, (6, 6, 6), 3, generator).permute(0, 2, 1)
    fine = _solid_noise(d, (10, 48, 16), 1, generator).permute(0, 2, 1)
    col = col * (1 + amp * (0.6 * coarse + fine))

    if deform_map is not None:
        shade = sample_uv_map(shading_map(deform_map), _texel_uvs(size, size, cols))  # (B, 1, P)
        col = col * shade.permute(0, 2, 1)
    tex = col.clamp(0, 1).reshape(b, size, cols, 3).permute(0, 3, 1, 2)
    if all_sym:
        return torch.cat([tex, torch.flip(tex, dims=[-1])], dim=-1).contiguous()
    return _mirror_half(tex.contiguous(), sym, negate_x=False)


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
    axis = _normalize(torch.randn(b, 3, generator=generator, dtype=torch.float64))
    angle = torch.deg2rad(torch.randn(b, generator=generator, dtype=torch.float64).abs() * rot_deg)
    dq = torch.cat([torch.cos(angle / 2)[:, None], torch.sin(angle / 2)[:, None] * axis], dim=1)
    rot = normalize_quaternion(quaternion_multiply(dq, camera.rotation.double())).float()
    scale = camera.scale * torch.exp(scale_std * torch.randn(b, generator=generator, dtype=torch.float64)).float()
    trans = camera.translation + trans_std * torch.randn(b, 2, generator=generator, dtype=torch.float64).float()
    return WeakPerspectiveCamera(scale, trans, rot)


_BG_PALETTES = (  # pairs of colours a background blends between
    ((0.22, 0.38, 0.16), (0.55, 0.68, 0.32)),  # foliage
    ((0.50, 0.70, 0.92), (0.85, 0.90, 0.96)),  # sky
    ((0.34, 0.26, 0.18), (0.62, 0.52, 0.40)),  # bark, soil
    ((0.45, 0.46, 0.47), (0.75, 0.75, 0.72)),  # stone, haze
    ((0.72, 0.64, 0.46), (0.90, 0.84, 0.66)),  # sand, straw
    ((0.10, 0.22, 0.20), (0.30, 0.50, 0.45)),  # water, shade
)


def _upsampled_noise(b: int, c: int, cells: int, size: int, generator: torch.Generator) -> torch.Tensor:
    low = torch.randn(b, c, cells, cells, generator=generator)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)


def backgrounds(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Textured backgrounds ``(B, 3, size, size)`` in ``[0, 1]``: a random palette blended by smooth
    noise, a vertical light gradient, blotches and fine grain."""
    pal = torch.tensor(_BG_PALETTES, dtype=torch.float32)  # (K, 2, 3)
    which = torch.randint(len(_BG_PALETTES), (batch,), generator=generator)
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
        extreme: ``(B,)`` bool, articulation from the held-out extremes.
        wing_open: ``(B, 2)``; tail_scale: ``(B,)``; azimuth, elevation: ``(B,)`` degrees.
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
    wing_open: torch.Tensor
    tail_scale: torch.Tensor
    azimuth: torch.Tensor
    elevation: torch.Tensor

    def __len__(self) -> int:
        return self.class_id.shape[0]


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
) -> SynthBatch:
    """Generate and render one batch of birds of the given species ``(B,)``.

    ``hard`` draws the ``test_hard`` variety: articulation extremes and/or an occluding twig.
    Runs with one torch thread (see :func:`torch_threads`); the caller's setting is restored.
    """
    with torch_threads(1):
        return _generate_batch(class_ids, generator, config, hard, template or default_template())


def _generate_batch(class_ids, generator, config, hard, template) -> SynthBatch:
    p = sample_bird_params(class_ids, generator, config, hard=hard)
    deform = deformation_map(p, config.deform_size)
    tex = texture_map(p, config.texture_size, generator, deform_map=deform)
    tex = torch.round(tex * 255) / 255
    verts = deform_vertices(template, deform)
    cam = fit_cameras(verts, generator, config)
    noisy = perturb_cameras(cam, generator, config.noise_rot_deg, config.noise_scale, config.noise_trans)
    bg = backgrounds(len(p), config.image_size, generator)
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
        class_id=p.class_id,
        deform_map=deform,
        texture_map=tex,
        occluded=occluded,
        occluder=occluder,
        extreme=p.extreme,
        wing_open=p.wing_open,
        tail_scale=p.tail_scale,
        azimuth=az,
        elevation=el,
    )


# --------------------------------------------------------------------------------------------------
# Building the dataset on disk
# --------------------------------------------------------------------------------------------------


def synthbirds_dir(data_dir: str | Path, profile: str) -> Path:
    """Where the SynthBirds dataset of a profile lives.

    A path whose last component starts with ``synthbirds`` (``data/synthbirds_quick``) or that already
    holds a dataset ``meta.json`` is used as is; any other folder (``data``) is a root holding datasets,
    and the answer is ``<data_dir>/synthbirds_<profile>``.
    """
    data_dir = Path(data_dir)
    if data_dir.name.startswith("synthbirds") or (data_dir / "meta.json").exists():
        return data_dir
    return data_dir / f"synthbirds_{get_profile(profile).name}"


def chunk_generator(seed: int, split: str, chunk: int) -> torch.Generator:
    """The random generator of one chunk: a hash of ``(seed, split, chunk)``, so chunks can be made in
    any order, in parallel or after an interruption, and still give the same dataset."""
    digest = hashlib.sha256(f"synthbirds/{GENERATOR_VERSION}/{seed}/{split}/{chunk}".encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def _split_class_ids(split: str, start: int, stop: int, num_classes: int) -> torch.Tensor:
    """Balanced species: image ``i`` of a split shows species ``(i + offset) % num_classes``."""
    offset = SPLITS.index(split) * 5 if split in SPLITS else 0
    return (torch.arange(start, stop) + offset) % num_classes


def make_chunk(config: SynthBirdsConfig, seed: int, split: str, chunk: int) -> tuple[list[str], SynthBatch]:
    """Generate chunk ``chunk`` of a split (deterministic for ``(config, seed, split, chunk)``)."""
    n = config.sizes[split]
    start, stop = chunk * config.chunk, min(n, (chunk + 1) * config.chunk)
    ids = _split_class_ids(split, start, stop, config.num_classes)
    batch = generate_batch(ids, chunk_generator(seed, split, chunk), config, hard=(split == "test_hard"))
    return [f"{i:06d}" for i in range(start, stop)], batch


def batch_annotations(batch: SynthBatch) -> dict:
    """The annotation arrays of a batch, as stored in ``annotations.npz`` (see ``dataset.FORMAT``)."""
    return {
        "camera": batch.camera.as_tensor().float(),
        "noisy_camera": batch.noisy_camera.as_tensor().float(),
        "class_id": batch.class_id.long(),
        "occluded": batch.occluded,
        "deform_map": batch.deform_map.float(),
        "texture_map": (batch.texture_map * 255).round().to(torch.uint8),
        "occluder": batch.occluder.float(),
        "extreme": batch.extreme,
        "wing_open": batch.wing_open.float(),
        "tail_scale": batch.tail_scale.float(),
        "azimuth": batch.azimuth.float(),
        "elevation": batch.elevation.float(),
    }


def _split_signature(config: SynthBirdsConfig, seed: int, split: str) -> dict:
    return {"generator": "synthbirds", "generator_version": GENERATOR_VERSION, "seed": int(seed), "split": split, "config": config.to_dict()}


def _worker_chunk(args) -> int:
    """Process-pool task: make and write one chunk (one torch thread per worker)."""
    from .dataset import SplitWriter

    config_dict, seed, split, chunk, root = args
    torch.set_num_threads(1)
    config = SynthBirdsConfig.from_dict(config_dict)
    writer = SplitWriter(root, split, _split_signature(config, seed, split))
    names, batch = make_chunk(config, seed, split, chunk)
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
    """Generate SynthBirds splits into ``out_dir`` (format: :data:`meshinv_lite.data.dataset.FORMAT`).

    A finished split with the same settings is kept (``status="exists"``); one with other settings is
    an error unless ``force``. An interrupted build resumes at its first missing chunk. Chunks are
    generated with one torch thread, in this process for small splits and by 2 worker processes for
    splits of 16 chunks or more (``workers`` overrides: 0 = in this process).

    Returns ``{split: {"num_images", "seconds", "status"}}`` (status: built, resumed or exists).
    """
    from tqdm.auto import tqdm

    from .dataset import SplitWriter, read_split, update_root_meta

    config = config or SynthBirdsConfig.for_profile(profile)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [s for s in splits if s not in config.sizes]
    if unknown:
        raise ValueError(f"unknown splits {unknown}; SynthBirds has {list(config.sizes)}")
    info = {"generator": "synthbirds", "generator_version": GENERATOR_VERSION, "seed": int(seed), "profile": config.profile,
            "config": config.to_dict(), "class_names": list(SPECIES_NAMES), "image_size": config.image_size}
    report = {}
    for split in splits:
        t0 = time.perf_counter()
        signature = _split_signature(config, seed, split)
        final = out / split
        if final.exists():
            meta_path = final / "meta.json"
            if meta_path.exists() and not force:
                from ..io import read_json

                meta = read_json(meta_path)
                same = {k: meta.get(k) for k in ("generator_version", "seed", "config")} == {
                    "generator_version": GENERATOR_VERSION, "seed": int(seed), "config": __import__("json").loads(__import__("json").dumps(config.to_dict()))}
                if not same:
                    raise FileExistsError(
                        f"{final} was built with other settings (seed {meta.get('seed')}, profile {meta.get('profile')}); "
                        "pass force=True (--force) to rebuild it, or choose another output folder"
                    )
                read_split(out, split)  # still valid?
                update_root_meta(out, info, split, meta["num_images"])
                report[split] = {"num_images": meta["num_images"], "seconds": 0.0, "status": "exists"}
                continue
            import shutil

            shutil.rmtree(final)
        if force and (out / f".partial-{split}").exists():
            import shutil

            shutil.rmtree(out / f".partial-{split}")
        writer = SplitWriter(out, split, signature)
        n = config.sizes[split]
        n_chunks = max(1, math.ceil(n / config.chunk))
        done = writer.done_chunks()
        todo = [c for c in range(n_chunks) if c not in done]
        status = "resumed" if done else "built"
        n_workers = workers if workers is not None else (2 if len(todo) >= 16 and (os.cpu_count() or 1) >= 2 else 0)
        bar = tqdm(total=n, initial=n - sum(min(config.chunk, n - c * config.chunk) for c in todo),
                   desc=f"synthbirds {split}", unit="img", disable=not progress)
        if n_workers > 0 and len(todo) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            jobs = [(config.to_dict(), seed, split, c, str(out)) for c in todo]
            with ctx.Pool(n_workers) as pool:
                for k in pool.imap_unordered(_worker_chunk, jobs):
                    bar.update(k)
        else:
            for c in todo:
                names, batch = make_chunk(config, seed, split, c)
                writer.write_chunk(c, names, batch.images, batch.masks, batch_annotations(batch))
                bar.update(len(names))
        bar.close()
        meta = {**info, "split": split, "has_ground_truth": True}
        writer.finalize(n_chunks, meta)
        update_root_meta(out, info, split, n)
        report[split] = {"num_images": n, "seconds": time.perf_counter() - t0, "status": status}
    return report
