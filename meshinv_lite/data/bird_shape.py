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
from typing import Sequence

import torch

from ._sampling import class_draws
from .bird_geometry import (
    BirdParams,
    angle_between,
    bird_frames,
    head_fields,
    is_symmetric,
    mirror_half,
    normalize,
    smoothstep,
    tail_fields,
    uv_directions,
    wing_fields,
)
from .config import SynthBirdsConfig
from .species import SPECIES, Species

_COLOR_KEYS = ("base", "belly", "wing", "head", "beak", "tail", "wing_tip", "accent")
_PLUMAGE_SCALARS = (
    "head_cover", "mask", "eye_ring", "belly_line", "wing_bars", "tail_band", "bars", "bar_contrast",
    "streaks", "spots", "spot_radius", "noise",
)


def _species_table(key: str, plumage: bool = False, species: Sequence[Species] = SPECIES) -> torch.Tensor:
    """Per-species values of one shape (or, with ``plumage``, plumage) attribute, ``(S, ...)`` float64."""
    rows = [getattr(sp.plumage if plumage else sp, key) for sp in species]
    return torch.tensor(rows, dtype=torch.float64)


def sample_bird_params(
    class_ids: torch.Tensor,
    generator: torch.Generator,
    config: SynthBirdsConfig,
    hard: bool = False,
    species: Sequence[Species] = SPECIES,
) -> BirdParams:
    """Draw instances of the given species.

    Args:
        class_ids: ``(B,)`` species indices into ``species``.
        generator: the only source of randomness.
        config: articulation ranges and symmetry.
        hard: draw articulation extremes with probability ``config.hard_extreme_prob``.
        species: the species table (default :data:`~meshinv_lite.data.species.SPECIES`, the GAN's classes;
            :data:`~meshinv_lite.data.species.UNSEEN_SPECIES` for the held-out-species split). The random
            draws do not depend on the table, only the species means do.
    Returns:
        :class:`BirdParams` (float32 tensors); ``class_id`` holds the indices into ``species``.
    """
    class_ids, rn, ru = class_draws(class_ids, len(species), generator)
    b = class_ids.shape[0]

    def pick(key, plumage=False):
        return _species_table(key, plumage, species)[class_ids]

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

def bird_surface(d: torch.Tensor, p: BirdParams) -> torch.Tensor:
    """Points ``(B, P, 3)`` of each bird's surface at template directions ``d`` ``(P, 3)`` (unit vectors).

    This is the analytic shape; :func:`deformation_map` samples ``bird_surface(d) - d`` on a texel grid.
    """
    b = len(p)
    d = d[None].expand(b, -1, -1)
    fr = bird_frames(p)
    dx, dy, dz = d.unbind(-1)
    bx, by_up, by_lo, bz = (p.body[:, k, None] for k in range(4))
    taper = 1 + p.taper[:, None] * dz
    y_scale = torch.where(dy > 0, by_up, by_lo)
    pts = torch.stack([bx * dx * taper, y_scale * dy * taper, bz * dz], dim=-1)

    # Head and neck.
    w_h, hpts, _, _ = head_fields(d, p, fr)
    pts = pts + w_h[..., None] * (hpts - pts)

    # Beak: a cone (profile exponent > 1 thins it) extruded along the beak direction.
    psi = angle_between(d, fr.beak_root)
    alpha = torch.deg2rad(p.beak[:, 1])[:, None]
    prof = (1 - psi / alpha).clamp_min(0) ** p.beak[:, 2, None]
    pts = pts + (p.beak[:, 0, None] * prof)[..., None] * fr.beak_dir[:, None]

    # Crest: up and back from the crown.
    psi_c = angle_between(d, fr.crest_root)
    prof_c = (1 - psi_c / math.radians(20.0)).clamp_min(0) ** 1.5
    crest_axis = normalize(torch.tensor([0.0, 0.75, -0.65])).expand(b, 3)
    pts = pts + (p.crest[:, None] * prof_c)[..., None] * crest_axis[:, None]

    # Tail: a flat plateau extruded backwards, fanning out sideways.
    r_t, side_t = tail_fields(d, p)
    prof_t = 1 - smoothstep(0.5, 1.0, r_t)
    length = (p.tail[:, 0] * p.tail_scale)[:, None]
    lift = torch.deg2rad(p.tail[:, 3])
    t_axis = torch.stack([torch.zeros(b), torch.sin(lift), -torch.cos(lift)], dim=-1)
    fan = torch.zeros_like(pts)
    fan[..., 0] = p.tail[:, 4, None] * length * prof_t * side_t
    pts = pts + (length * prof_t)[..., None] * t_axis[:, None] + fan

    # Wings: extruded from the flanks; the axis turns from folded (backwards) to open (sideways, raised).
    for side, s in ((0, 1.0), (1, -1.0)):
        r_w, chord_w, _ = wing_fields(d, p, side)
        prof_w = 1 - smoothstep(p.wing[:, 3, None], 1.0, r_w)
        a = p.wing_open[:, side]
        raise_ = torch.deg2rad(p.wing[:, 4])
        sweep = p.wing[:, 5]
        open_axis = torch.stack([s * torch.cos(raise_), torch.sin(raise_), -sweep], dim=-1)
        fold_axis = torch.tensor([s * 0.10, 0.12, -1.0]).expand(b, 3)
        axis = normalize((1 - a)[:, None] * normalize(fold_axis) + a[:, None] * normalize(open_axis))
        length = (1 - a) * p.wing[:, 6] + a * p.wing[:, 0]
        bulge = torch.zeros_like(pts)
        bulge[..., 0] = s * 0.06 * (1 - smoothstep(0.0, 1.0, r_w))
        pts = pts + (length[:, None] * prof_w)[..., None] * axis[:, None] + bulge

    # Posture: pitch head-up about the x axis.
    ang = torch.deg2rad(p.pitch)[:, None]
    y, z = pts[..., 1], pts[..., 2]
    return torch.stack([pts[..., 0], y * torch.cos(ang) + z * torch.sin(ang), -y * torch.sin(ang) + z * torch.cos(ang)], dim=-1)


def deformation_map(p: BirdParams, size: int) -> torch.Tensor:
    """Ground-truth deformation maps ``(B, 3, size, size)``: offsets ``bird_surface(d) - d`` per texel.

    ``deform_vertices(template, map)`` gives the ground-truth mesh. Symmetric birds give maps that are
    exactly mirror-symmetric (``x`` offsets negated), as :func:`~meshinv_lite.render.mirror_uv_map` expects.
    """
    d = uv_directions(size, size)
    off = bird_surface(d, p) - d[None]
    maps = off.reshape(len(p), size, size, 3).permute(0, 3, 1, 2).contiguous()
    return mirror_half(maps, is_symmetric(p), negate_x=True)
