"""Procedural car paint: ground-truth texture maps of SynthCars, painted where the renderer shows each texel.

Texture maps share the template's UV layout with the deformation maps of
:mod:`meshinv_lite.data.car_shape`. Each texel is painted by what lies at its point *on the mesh* (the
texel's UV located in its template face, the face's deformed corners blended), in car-local coordinates:
which face of the body that point is nearest to (side, top, front, rear, underbody), how far it is from the
belt line, the roof line, the pillars, the axles. Painting the mesh the renderer draws, rather than the
analytic surface, keeps every painted edge straight and in place on the coarse mesh (962 vertices), which
is far too coarse for a car's small parts; those are therefore only painted:

* body paint (per instance, from the type's palette), a box truck's cargo box in its own colour;
* dark glass on the windscreen, the side windows (split by pillars into the type's number of panes, cut at
  the belt line, the roof rail and the A and C pillars; a panel van's stop behind the cab) and the rear
  window, with a lighter reflection towards the top;
* tyres (black) and wheels (grey rims, dark hub) on the flanks and the tyres' treads, a dark arch around them;
* headlights, a dark grille and a white number plate in front; red rear lights and a yellow plate behind
  (lamps and plates left out of the shading, so they read from every side);
* dark bumpers, sills and underbody; a dark liner in a pickup's bed, the interior in a roadster's cockpit;
* a soft top light baked in from the shape (:func:`~meshinv_lite.data.bird_texture.shading_map`) and faint
  paint noise.

Maps are painted on the ``x >= 0`` half (``u < 0.5``) and mirrored, so they are exactly left-right symmetric.
Lengths are in object units (see :mod:`meshinv_lite.data.car_types`).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..render.mesh import TemplateMesh, deform_vertices, make_uv_sphere, sample_uv_map
from .bird_texture import _solid_noise, _texel_uvs, shading_map
from .car_shape import (
    EDGE_RADIUS,
    CarParams,
    _rounded_max,
    body_fields,
    deformation_map,
    half_directions,
    mirror_columns,
    object_to_local,
    tyre_field,
)

GLASS_FRAME = 0.035  # height of the window frame under the roof line and above the belt
A_PILLAR = 0.03  # extra frame along the windscreen's sides (on top of the rounded edge)
C_PILLAR = 0.10  # rear pillar, measured along the car from the rear window / rear face
B_PILLAR = 0.05  # pillars between side panes
FACE_SOFTNESS = 0.015  # how sharply a point is assigned to the nearest face of the body
SMALL = 0.01  # edge softness of small parts (lamps, plates); larger parts use 0.02, about a texel at 128


def _gt(a: torch.Tensor, b, soft: float = 0.02) -> torch.Tensor:
    """Soft ``a > b`` in ``[0, 1]`` (edges anti-aliased over about ``soft``)."""
    return torch.sigmoid((a - b) / soft)


def _lt(a: torch.Tensor, b, soft: float = 0.02) -> torch.Tensor:
    """Soft ``a < b`` in ``[0, 1]``."""
    return torch.sigmoid((b - a) / soft)


def _band(a: torch.Tensor, lo, hi, soft: float = 0.02) -> torch.Tensor:
    """Soft ``lo < a < hi`` in ``[0, 1]``."""
    return _gt(a, lo, soft) * _lt(a, hi, soft)


def _mix(color: torch.Tensor, other, w: torch.Tensor) -> torch.Tensor:
    """Blend ``(B, P, 3)`` towards ``other`` (``(3,)``, ``(B, 3)`` or ``(B, P, 3)``) by weight ``w`` ``(B, P)``."""
    other = torch.as_tensor(other, dtype=color.dtype)
    if other.dim() == 1:
        other = other[None, None]
    elif other.dim() == 2:
        other = other[:, None]
    return color + w[..., None] * (other - color)


_TEMPLATE: dict = {}


def _default_template() -> TemplateMesh:
    """The 31 x 32 UV sphere SynthCars meshes are built on (cached)."""
    if "t" not in _TEMPLATE:
        _TEMPLATE["t"] = make_uv_sphere(31, 32)
    return _TEMPLATE["t"]


def texel_faces(template: TemplateMesh, size: int, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The face ``(Q,)`` showing each texel centre of the first ``columns`` columns of a ``size x size`` map,
    and the texel's barycentric coordinates ``(Q, 3)`` in it (``Q = size * columns``, row-major).

    Texels are located in the UV-sphere layout of :func:`~meshinv_lite.render.make_uv_sphere` (pole fans, then
    two faces per quad split along the ``(i, j) - (i + 1, j + 1)`` diagonal). The pole fans leave gaps in UV that
    are never rendered; their texels get the nearest point of the fan.
    """
    rings, segs = template.rings, template.segments
    uv = _texel_uvs(size, size, columns).double()  # (Q, 2)
    u, v = uv[:, 0], uv[:, 1]
    j = (u * segs).floor().long().clamp(0, segs - 1)
    r = v * rings
    i = (r - 1).floor().long().clamp(0, rings - 3)
    fu, fv = u * segs - j, r - 1 - i
    quad = segs + 2 * (i * segs + j) + (fv < fu).long()
    face = torch.where(r < 1, j, torch.where(r > rings - 1, segs + 2 * segs * (rings - 2) + j, quad))
    tri = template.uvs[template.faces_uv[face]].double()  # (Q, 3, 2)
    e1, e2, q = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], uv - tri[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    w1 = (q[:, 0] * e2[:, 1] - q[:, 1] * e2[:, 0]) / det
    w2 = (e1[:, 0] * q[:, 1] - e1[:, 1] * q[:, 0]) / det
    bary = torch.stack([1 - w1 - w2, w1, w2], -1)
    fan = (r < 1) | (r > rings - 1)
    if bool(((bary < -1e-6).any(-1) & ~fan).any()):
        raise ValueError("texel outside its face: the template is not a make_uv_sphere layout")
    bary = bary.clamp_min(0)
    return face, (bary / bary.sum(-1, keepdim=True)).float()


def at_texels(values: torch.Tensor, template: TemplateMesh, face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Per-vertex ``values`` ``(B, N, C)`` blended at texels (:func:`texel_faces`): ``(B, Q, C)``, what the
    renderer interpolates there."""
    corners = values[:, template.faces[face]]  # (B, Q, 3, C)
    return (corners * bary.to(values.dtype)[None, :, :, None]).sum(2)


def texture_map(
    p: CarParams,
    size: int,
    generator: torch.Generator,
    deform_map: Optional[torch.Tensor] = None,
    template: Optional[TemplateMesh] = None,
) -> torch.Tensor:
    """Ground-truth texture maps ``(B, 3, size, size)`` in ``[0, 1]`` (``size`` even).

    Each texel is painted by what lies where the renderer shows it: the point of the mesh
    ``deform_vertices(template, deform_map)`` at the texel's UV (:func:`texel_faces`, :func:`at_texels`), so
    the painted parts keep straight, consistent edges on the coarse mesh.

    Args:
        p: the cars (:func:`~meshinv_lite.data.car_shape.sample_car_params`).
        size: map side ``Ht = Wt`` (even).
        generator: drives the faint paint noise only.
        deform_map: ``(B, 3, Hd, Wd)`` the cars' deformation maps; their soft top light
            (:func:`~meshinv_lite.data.bird_texture.shading_map`) is also baked in (the renderer itself is
            unlit). ``None``: ``deformation_map(p, 32)`` places the paint and nothing is shaded.
        template: the UV sphere the maps are for (default the 31 x 32 one).
    Returns:
        ``(B, 3, size, size)`` in ``[0, 1]``, painted on the ``x >= 0`` half and mirrored (``u -> 1 - u``), so
        exactly symmetric.
    """
    b = len(p)
    if size % 2:
        raise ValueError(f"car maps are mirror-symmetric and need an even size, got {size}")
    cols = size // 2
    template = template or _default_template()
    shaded = deform_map is not None
    if deform_map is None:
        deform_map = deformation_map(p, 32)
    verts = deform_vertices(template, deform_map)
    face, bary = texel_faces(template, size, cols)
    pts = object_to_local(at_texels(verts, template, face, bary), p)  # (B, Q, 3) car-local
    x, y, s = pts[..., 0].abs(), pts[..., 1], pts[..., 2]
    f = body_fields(x, y, s, p)
    # which face of the body a point is on: the half-space field nearest to zero (a soft argmax), so that the
    # paint follows positions only (the coarse mesh's normals flicker from vertex to vertex)
    names = ("side", "top", "bottom", "front", "rear")
    w = torch.softmax(torch.stack([f[k] for k in names], 0) / FACE_SOFTNESS, 0)
    on = dict(zip(names, w.unbind(0)))
    body = _rounded_max([f[k] for k in names], EDGE_RADIUS)
    tyre_f = tyre_field(x, y, s, p)
    on_tyre = _lt(tyre_f, body, 0.01) * _lt(tyre_f, 0.03)

    def col(t):
        return t[:, None]

    length, width, height, clearance = (col(p.body[:, k]) for k in range(4))
    belt, nose, tail = col(p.belt), col(p.nose), col(p.tail)
    bonnet_len, bonnet_h = col(p.bonnet[:, 0]), col(p.bonnet[:, 1])
    roof0, roof1 = col(p.roof[:, 0]), col(p.roof[:, 1])
    boot_len, boot_h = col(p.boot[:, 0]), col(p.boot[:, 1])
    radius = col(p.wheels[:, 0])
    long_boot = boot_len > 0.3
    c = p.colors

    def hard(mask: torch.Tensor) -> torch.Tensor:
        return mask.to(pts.dtype)

    def rgb(*v: float) -> torch.Tensor:
        return torch.tensor(v)

    # Paint; a box truck's cargo box in its own colour.
    color = c["paint"][:, None].expand(b, pts.shape[1], 3).clone()
    color = _mix(color, c["cargo"], hard(long_boot) * _gt(s, length - boot_len + 0.02) * _gt(y, clearance + 0.1))

    # Glass. The greenhouse is where the side steps in above the belt; a rear window exists unless the top
    # line climbs behind the roof (a box truck's box). Pillars and frames are bands of paint left between
    # the panes, measured on the solid's fields (distance in from the side, down from the top line).
    cabin = hard(f["cabin"] > 0.5) * _lt(f["well"], 0.5, 0.1)
    mid_roof = 0.5 * (roof0 + roof1)
    front_half, rear_half = hard(s < mid_roof), hard(s >= mid_roof)
    inner = _lt(f["side"], -A_PILLAR)
    windscreen = cabin * front_half * inner * _gt(y, bonnet_h + 0.02) * _lt(s, roof0 - 0.01)
    rear_edge = torch.where(long_boot, length - boot_len, length)
    has_rear = hard(boot_h < height + 0.02)
    sill_rear = torch.where(long_boot, torch.maximum(belt, boot_h), belt)
    rear_glass = cabin * rear_half * has_rear * inner * _gt(s, roof1 + 0.01)
    rear_glass = rear_glass * _band(y, sill_rear + GLASS_FRAME, height - GLASS_FRAME) * _lt(s, rear_edge + 0.02)
    rear_glass = rear_glass * (1 - hard(tail > 0.8) * _lt(x, 0.025, 0.01))  # a van's two rear doors
    # side panes: on the side, above the belt, under the roof rail, behind the A pillar, ahead of the C pillar
    n_panes = col(p.windows[:, 0])
    glass_end = col(p.windows[:, 1])
    frame = GLASS_FRAME + torch.where(s > mid_roof, 0.6 * C_PILLAR, 0.0)
    side = cabin * hard(n_panes > 0) * on["side"] * _gt(y, belt + GLASS_FRAME) * _lt(f["top"], -frame)
    side = side * _lt(s, glass_end) * _lt(f["rear"], -C_PILLAR) * _lt(s, rear_edge - C_PILLAR)
    # B pillars: split the side glass at mid-window height into equal panes
    y_mid = 0.5 * (belt + height)
    s_lo = bonnet_len + (y_mid - bonnet_h) / (height - bonnet_h).clamp_min(1e-3) * (roof0 - bonnet_len)
    s_rear_line = roof1 + (height - y_mid) / (height - boot_h).clamp_min(1e-3) * (length - boot_len - roof1)
    s_hi = torch.minimum(torch.where(boot_h < height - 0.08, s_rear_line, rear_edge) - C_PILLAR, glass_end)
    pane_w = (s_hi - s_lo).clamp_min(1e-3) / n_panes.clamp_min(1)
    for k in range(1, int(p.windows[:, 0].max().item()) if b else 1):
        at = s_lo + k * pane_w
        side = side * (1 - hard(n_panes > k) * _band(s, at - 0.5 * B_PILLAR, at + 0.5 * B_PILLAR, 0.01))
    glass = (windscreen * (1 - side) + rear_glass * (1 - side) + side).clamp(0, 1)
    reflect = ((y - belt) / (height - belt).clamp_min(1e-3)).clamp(0, 1)
    glass_col = c["glass"][:, None] * (1 + 0.9 * reflect[..., None] ** 2)
    color = _mix(color, glass_col, glass)

    # Open wells: a pickup's bed liner, a roadster's cockpit.
    color = _mix(color, c["interior"], _gt(f["well"], 0.5, 0.1))

    # Lamps and plates (``lit``) are painted over the shading: they should read from every angle.
    lit: list[tuple[torch.Tensor, torch.Tensor]] = []

    # Front: bumper, grille, headlights, plate (on the front face, the lights wrapping round the corners).
    nose_zone = hard(s < 0.35)
    front = on["front"] * nose_zone
    color = _mix(color, c["trim"], nose_zone * _lt(y, 0.42 * nose) * (1 - on["bottom"]))
    slats = 0.5 + 0.5 * torch.cos(2 * torch.pi * (y - 0.5 * nose) / 0.035)
    grille = front * _band(y, 0.5 * nose, nose - 0.05) * _lt(x, width / 2 - 0.22)
    color = _mix(color, rgb(0.06, 0.06, 0.07), grille * (0.75 + 0.25 * slats))
    lamp_zone = _lt(s, 0.13) * (1 - on["bottom"])
    head = lamp_zone * _band(y, nose - 0.12, nose - 0.03, SMALL) * _band(x, width / 2 - 0.23, width / 2 + 0.1, SMALL)
    lit.append((head, rgb(1.0, 0.98, 0.88)))
    y_plate = torch.maximum(0.4 * nose, clearance + 0.1)
    plate = front * _lt(x, 0.125, SMALL) * _band(y, y_plate - 0.032, y_plate + 0.032, SMALL)
    lit.append((plate, rgb(0.96, 0.96, 0.94)))
    letters = hard(torch.cos(2 * torch.pi * x / 0.045) > 0.2)  # dark characters across a plate
    chars = plate * _lt(x, 0.1) * _band(y, y_plate - 0.015, y_plate + 0.015) * letters
    lit.append((chars, rgb(0.1, 0.1, 0.12)))

    # Rear: bumper, lights (a band under the boot lid, or upright strips), plate.
    tail_zone = hard(s > length - 0.35)
    back = on["rear"] * tail_zone
    color = _mix(color, c["trim"], tail_zone * _lt(y, clearance + 0.12) * (1 - on["bottom"]))
    y_light = torch.minimum(tail, belt) - 0.08
    lamp_band = _band(y, y_light - 0.05, y_light + 0.04, SMALL) * _gt(x, width / 2 - 0.22, SMALL)
    lamp_tall = _band(y, clearance + 0.14, belt, SMALL) * _gt(x, width / 2 - 0.15, SMALL)
    lamp_zone = _gt(s, length - 0.13) * (1 - on["bottom"])
    # upright lamps on tall rear faces and at the corners of a pickup's bed (a well reaching the tail)
    bed = (col(p.open_top[:, 2]) > 0) & (col(p.open_top[:, 1]) > length - 0.2)
    lamps = lamp_zone * torch.where((tail > 0.8) | bed, lamp_tall, lamp_band)
    lit.append((lamps, rgb(0.86, 0.05, 0.04)))
    y_rplate = clearance + 0.16
    plate = back * _lt(x, 0.125, SMALL) * _band(y, y_rplate - 0.032, y_rplate + 0.032, SMALL)
    lit.append((plate, rgb(0.97, 0.80, 0.10)))
    chars = plate * _lt(x, 0.1) * _band(y, y_rplate - 0.015, y_rplate + 0.015) * letters
    lit.append((chars, rgb(0.1, 0.1, 0.12)))

    # Sills and underbody.
    color = _mix(color, c["trim"], on["side"] * _lt(y, clearance + 0.045))
    color = _mix(color, rgb(0.05, 0.05, 0.05), on["bottom"] * (1 - on_tyre))

    # Wheels: a dark arch, the tyre, a grey rim with spokes and a dark hub.
    r_w, ang = None, None
    for k in (2, 3):
        axle = col(p.wheels[:, k])
        r = torch.sqrt((s - axle) ** 2 + (y - radius) ** 2)
        a = torch.atan2(y - radius, s - axle)
        ang = a if r_w is None else torch.where(r < r_w, a, ang)
        r_w = r if r_w is None else torch.minimum(r_w, r)
    flank = torch.maximum(on["side"], on_tyre * _gt(x, width / 2 - 0.02))
    color = _mix(color, rgb(0.04, 0.04, 0.045), flank * _lt(r_w, radius + 0.035) * _gt(y, clearance - 0.01))
    tyre = torch.maximum(flank * _lt(r_w, radius), on_tyre)
    color = _mix(color, rgb(0.06, 0.06, 0.065), tyre)
    spokes = _gt(torch.cos(5 * ang), -0.3, 0.15).maximum(_lt(r_w, 0.3 * radius))
    rim_col = 0.2 + 0.42 * spokes[..., None]
    color = _mix(color, rim_col.expand_as(color), flank * _lt(r_w, 0.62 * radius))
    color = _mix(color, rgb(0.25, 0.25, 0.27), flank * _lt(r_w, 0.14 * radius))

    # Faint paint noise, then the top light.
    dirs = half_directions(size).reshape(1, -1, 3).expand(b, -1, -1)
    noise = _solid_noise(dirs, (8, 8, 8), 1, generator).permute(0, 2, 1)
    color = color * (1 + 0.025 * noise)
    if shaded:
        shade = sample_uv_map(shading_map(deform_map), _texel_uvs(size, size, cols))  # (B, 1, Q)
        color = color * shade.permute(0, 2, 1)
    for weight, paint in lit:
        color = _mix(color, paint, weight)
    tex = color.clamp(0, 1).reshape(b, size, cols, 3).permute(0, 3, 1, 2)
    return mirror_columns(tex, negate_x=False)

