"""Procedural plumage: ground-truth texture maps of SynthBirds, painted in the template's direction space.

Textures are functions of the template direction at each texel centre, like the shapes of
:mod:`meshinv_lite.data.bird_shape` (so colour regions follow the geometry): body and belly, head (hood or
crown), face mask, eye ring, eye, beak, wings with bars and dark primaries, tail band, body bars, breast
streaks, spots and feather-like noise, with a soft top light baked in. Left-right symmetric birds are
painted on the ``x >= 0`` half and mirrored.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from ..render.mesh import sample_uv_map
from .bird_geometry import (
    HEAD_G0,
    HEAD_K,
    BirdParams,
    bird_frames,
    chord_distance,
    dot,
    is_symmetric,
    mirror_half,
    normalize,
    rotate_towards,
    smoothstep,
    tail_fields,
    uv_directions,
    wing_fields,
)


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
    light = normalize(torch.tensor([0.0, 1.0, 0.45]))
    return 0.7 + 0.3 * (n * light[None, :, None, None]).sum(1, keepdim=True)


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
    sym = is_symmetric(p)
    all_sym = bool(sym.all())
    cols = size // 2 if all_sym else size
    d = uv_directions(size, size).reshape(size, size, 3)[:, :cols].reshape(1, -1, 3).expand(b, -1, -1)
    if not all_sym and bool(sym.any()):  # mixed batch: symmetric birds painted at (|x|, y, z)
        d = torch.where(sym[:, None, None], torch.cat([d[..., :1].abs(), d[..., 1:]], dim=-1), d)
    sides = (0,) if all_sym else (0, 1)
    dx, dy, dz = d.unbind(-1)
    fr = bird_frames(p)
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
        col = _mix(col, c["accent"], pl["bar_contrast"][:, None] * smoothstep(0.55, 0.8, bar) * (1 - 0.6 * belly))
    if bool((pl["streaks"] > 0).any()):
        around = torch.atan2(dx.abs(), dz)  # 0 at the front, pi at the back
        streak = smoothstep(0.6, 0.9, 0.5 + 0.5 * torch.sin(18 * around + 3 * dy))
        front = smoothstep(-0.1, 0.4, dz) * smoothstep(0.35, -0.2, dy)
        col = _mix(col, c["accent"], 0.7 * pl["streaks"][:, None] * streak * front)

    # Spots on the upper body and flanks (on the +x side for symmetric birds, mirrored later).
    k_max = int(pl["spots"].max()) if b else 0
    if k_max > 0:
        sd = torch.randn(b, k_max, 3, generator=generator)
        side_sign = torch.where(sym[:, None], torch.ones(b, k_max), torch.sign(sd[..., 0]))
        sd = normalize(torch.stack([sd[..., 0].abs() * side_sign, sd[..., 1].abs() * 0.8 + 0.1, sd[..., 2]], -1))
        active = (torch.arange(k_max)[None] < pl["spots"][:, None]).float()
        chord2 = (2 - 2 * torch.einsum("bpk,bsk->bps", d, sd)).clamp_min(0)
        rad2 = torch.deg2rad(pl["spot_radius"])[:, None, None] ** 2
        spot = torch.exp(-((chord2 / rad2) ** 2)) * active[:, None]
        col = _mix(col, c["accent"], 0.85 * spot.amax(-1))

    # Wings: colour patch (a folded wing covers more of the flank), light bars, dark primaries.
    for side in sides:
        r_w, chord_w, thick_w = wing_fields(d, p, side)
        a = p.wing_open[:, side, None]
        r_tex = torch.sqrt((chord_w / (1 + 0.5 * (1 - a))) ** 2 + (thick_w / (1 + 1.8 * (1 - a))) ** 2) * 1.1
        on = 1 - smoothstep(0.9, 1.0, r_tex)
        col = _mix(col, c["wing"], on)
        n_bars = pl["wing_bars"][:, None]
        bars = smoothstep(0.75, 0.9, 0.5 + 0.5 * torch.cos(2 * math.pi * n_bars * (0.25 + 0.45 * r_tex)))
        col = _mix(col, c["accent"], 0.8 * on * bars * (n_bars > 0) * smoothstep(0.25, 0.4, r_tex))
        r0 = p.wing[:, 3, None]
        tip = (1 - smoothstep(r0 + 0.05, r0 + 0.25, r_w)) * a + (1 - a) * smoothstep(0.1, -0.6, chord_w)
        col = _mix(col, c["wing_tip"], tip.clamp(0, 1) * on)

    # Tail, with an optional dark band at the tip.
    r_t, _ = tail_fields(d, p)
    tail_on = 1 - smoothstep(0.95, 1.15, r_t)
    col = _mix(col, c["tail"], tail_on)
    col = _mix(col, c["wing_tip"], pl["tail_band"][:, None] * tail_on * (1 - smoothstep(0.35, 0.5, r_t)))

    # Head (hood or crown), face mask, eye ring, eye with a glint; then the beak.
    axis = fr.head_axis
    cos_g = dot(d, axis[:, None]).clamp(-1, 1)
    g = torch.acos(cos_g)
    kg = (HEAD_K * g).clamp(max=math.pi)
    ratio = torch.sin(kg) / torch.sin(g).clamp_min(1e-4)
    head_up = torch.cos(kg) * axis[:, None, 1] + ratio * (dy - cos_g * axis[:, None, 1])  # y of the head-sphere direction
    head_on = 1 - smoothstep(HEAD_G0 - 0.08, HEAD_G0 + 0.06, g)
    cover = pl["head_cover"][:, None]
    col = _mix(col, c["head"], head_on * (cover + (1 - cover) * smoothstep(0.2, 0.45, head_up)))
    eye_r = math.radians(4.5)
    for side in sides:
        er = fr.eye_root[:, side]
        ang = chord_distance(d, er)
        col = _mix(col, const((0.08, 0.07, 0.07)), pl["mask"][:, None] * (1 - smoothstep(2.0 * eye_r, 3.2 * eye_r, ang)))
        col = _mix(col, const((0.95, 0.95, 0.92)), pl["eye_ring"][:, None] * (1 - smoothstep(1.5 * eye_r, 1.9 * eye_r, ang)))
        col = _mix(col, const((0.03, 0.03, 0.03)), 1 - smoothstep(0.8 * eye_r, 1.05 * eye_r, ang))
        glint = chord_distance(d, rotate_towards(er, axis, torch.full((b,), 0.35 * eye_r)))
        col = _mix(col, const((0.92, 0.92, 0.92)), 1 - smoothstep(0.2 * eye_r, 0.35 * eye_r, glint))
    psi = chord_distance(d, fr.beak_root) / (2 * torch.sin(torch.deg2rad(p.beak[:, 1]) / 2))[:, None]
    col = _mix(col, c["beak"], 1 - smoothstep(0.5, 0.62, psi))

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
    return mirror_half(tex.contiguous(), sym, negate_x=False)
