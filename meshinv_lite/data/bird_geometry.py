"""Geometry shared by the shape and the texture of SynthBirds birds (one home below both).

:class:`BirdParams` (one batch of birds' shape, articulation and plumage), directions on the template
sphere for UV texels (:func:`uv_directions`), the frames of body, head, beak, wings and tail
(:func:`bird_frames`), the fields that say how strongly a direction belongs to a wing, the tail or the head,
small angular helpers, and the left-right mirror of symmetric birds' maps. Lengths are in object units,
angles in degrees unless a name says radians (see :mod:`meshinv_lite.data.species`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


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


HEAD_K = 2.5  # a cap of angle g on the template covers angle K * g of the head sphere
HEAD_G0 = math.radians(40.0)  # cap fully on the head
HEAD_G1 = math.radians(62.0)  # neck ends here


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


def normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def smoothstep(e0: float | torch.Tensor, e1: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def angle_between(d: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Angle (radians) between unit directions ``d`` ``(B, P, 3)`` and ``c`` ``(B, 3)``: ``(B, P)``."""
    c = c[:, None, :]
    cos = dot(d, c)
    sin = torch.cross(d, c.expand_as(d), dim=-1).norm(dim=-1)
    return torch.atan2(sin, cos)


def rotate_towards(a: torch.Tensor, b: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Unit ``a`` ``(B, 3)`` turned towards ``b`` by ``angle`` ``(B,)`` radians (in their plane)."""
    e = normalize(b - dot(a, b)[:, None] * a)
    return torch.cos(angle)[:, None] * a + torch.sin(angle)[:, None] * e


def local_angles(d: torch.Tensor, center: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor):
    """Tangent-plane (gnomonic) coordinates of ``d`` ``(B, P, 3)`` around ``center`` along ``e1``, ``e2``.

    Returns ``tan`` of the angles towards ``e1`` and ``e2`` (``(B, P)`` each, close to the angles themselves
    near the centre) and the cosine to the centre; points in the far hemisphere get coordinates of 10.
    """
    c = dot(d, center[:, None])
    inv = torch.where(c > 1e-3, 1 / c.clamp_min(1e-3), torch.full_like(c, 0.0))
    far = (c <= 1e-3).to(d.dtype) * 10.0
    return dot(d, e1[:, None]) * inv + far, dot(d, e2[:, None]) * inv + far, c


def chord_distance(d: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Chord length ``|d - c|`` ``(B, P)`` between unit directions ``d`` ``(B, P, 3)`` and ``c`` ``(B, 3)``:
    ``2 sin(angle / 2)``, within 1% of the angle (radians) up to 30 degrees and much cheaper."""
    return torch.sqrt((2 - 2 * dot(d, c[:, None])).clamp_min(0))


@dataclass
class Frames:
    """Derived directions of a batch of birds (template space), shared by shape and texture."""

    head_axis: torch.Tensor  # (B, 3)
    beak_dir: torch.Tensor  # (B, 3) head-space direction of the beak (and its extrusion axis)
    beak_root: torch.Tensor  # (B, 3) template direction under the beak
    crest_root: torch.Tensor  # (B, 3)
    eye_root: torch.Tensor  # (B, 2, 3) template directions of the +x / -x eyes


def head_to_template(head_dir: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Template direction whose head remap lands on head-sphere direction ``head_dir`` ``(B, 3)``."""
    beta = torch.acos(dot(head_dir, axis).clamp(-1, 1))
    return rotate_towards(axis, head_dir, beta / HEAD_K)


def bird_frames(p: BirdParams) -> Frames:
    b = len(p)
    zeros = torch.zeros(b)
    c_h = torch.stack([zeros, p.head[:, 0], p.head[:, 1]], dim=-1)
    axis = normalize(c_h)
    droop = torch.deg2rad(p.beak[:, 3])
    beak_dir = torch.stack([zeros, -torch.sin(droop), torch.cos(droop)], dim=-1)
    crest_dir = normalize(torch.tensor([0.0, 0.85, -0.5]).expand(b, 3))
    eyes = []
    for s in (1.0, -1.0):
        eye = normalize(torch.tensor([0.74 * s, 0.36, 0.56]).expand(b, 3))
        eyes.append(head_to_template(eye, axis))
    return Frames(
        head_axis=axis,
        beak_dir=beak_dir,
        beak_root=head_to_template(beak_dir, axis),
        crest_root=head_to_template(crest_dir, axis),
        eye_root=torch.stack(eyes, dim=1),
    )


def wing_frame(p: BirdParams, side: int):
    """Root direction, chord and thickness axes ``(B, 3)`` each of the ``+x`` (side 0) or ``-x`` wing."""
    b = len(p)
    s = 1.0 if side == 0 else -1.0
    ew, bw = math.radians(14.0), math.radians(14.0)
    root = torch.tensor([s * math.cos(ew) * math.cos(bw), math.sin(ew), -math.cos(ew) * math.sin(bw)]).expand(b, 3)
    fwd = torch.tensor([0.0, 0.0, 1.0]).expand(b, 3)
    chord = normalize(fwd - dot(fwd, root)[:, None] * root)
    thick = normalize(torch.cross(root, chord, dim=-1))
    return root, chord, thick


def wing_fields(d: torch.Tensor, p: BirdParams, side: int):
    """Wing coordinates of directions ``d`` ``(B, P, 3)``: radius ``r`` (1 = outline), chord coordinate."""
    root, chord, thick = wing_frame(p, side)
    a_c, a_t, _ = local_angles(d, root, chord, thick)
    a_c = a_c / torch.tan(torch.deg2rad(p.wing[:, 1]))[:, None]
    a_t = a_t / torch.tan(torch.deg2rad(p.wing[:, 2]))[:, None]
    return torch.sqrt(a_c**2 + a_t**2), a_c, a_t


def tail_fields(d: torch.Tensor, p: BirdParams):
    """Tail coordinates: radius ``r`` (1 = outline) and the signed side coordinate ``(B, P)``."""
    b = len(p)
    et = math.radians(8.0)
    root = torch.tensor([0.0, math.sin(et), -math.cos(et)]).expand(b, 3)
    ex = torch.tensor([1.0, 0.0, 0.0]).expand(b, 3)
    ey = torch.tensor([0.0, math.cos(et), math.sin(et)]).expand(b, 3)
    a_x, a_y, _ = local_angles(d, root, ex, ey)
    a_x = a_x / torch.tan(torch.deg2rad(p.tail[:, 1]))[:, None]
    a_y = a_y / torch.tan(torch.deg2rad(p.tail[:, 2]))[:, None]
    return torch.sqrt(a_x**2 + a_y**2), a_x


def head_fields(d: torch.Tensor, p: BirdParams, fr: Frames):
    """Head blend weight ``(B, P)``, head-sphere points ``(B, P, 3)`` and head-space directions."""
    c_h = torch.stack([torch.zeros(len(p)), p.head[:, 0], p.head[:, 1]], dim=-1)
    axis = fr.head_axis
    g = angle_between(d, axis)
    perp = d - dot(d, axis[:, None])[..., None] * axis[:, None]
    kg = (HEAD_K * g).clamp(max=math.pi)
    ratio = torch.where(g > 1e-4, torch.sin(kg) / torch.sin(g).clamp_min(1e-6), torch.full_like(g, HEAD_K))
    hdir = torch.cos(kg)[..., None] * axis[:, None] + ratio[..., None] * perp
    hpts = c_h[:, None] + p.head[:, 2, None, None] * hdir
    w = 1 - smoothstep(HEAD_G0, HEAD_G1, g)
    return w, hpts, hdir, g


def mirror_half(maps: torch.Tensor, sym: torch.Tensor, negate_x: bool) -> torch.Tensor:
    """Make the maps of symmetric birds (``sym`` ``(B,)`` bool) exactly mirror-symmetric in ``u``.

    The ``u < 0.5`` half (the ``x >= 0`` side) is kept and mirrored onto the other half, as
    :func:`~meshinv_lite.render.mirror_uv_map` does; other birds pass through.
    """
    if not bool(sym.any()):
        return maps
    half = maps[..., : maps.shape[-1] // 2]
    flipped = torch.flip(half, dims=[-1])
    if negate_x:
        flipped = flipped * torch.tensor([-1.0, 1.0, 1.0], dtype=maps.dtype)[None, :, None, None]
    return torch.where(sym[:, None, None, None], torch.cat([half, flipped], dim=-1), maps)


def is_symmetric(p: BirdParams) -> torch.Tensor:
    """``(B,)`` bool: birds whose two wings share their articulation (and are therefore symmetric)."""
    return p.wing_open[:, 0] == p.wing_open[:, 1]
