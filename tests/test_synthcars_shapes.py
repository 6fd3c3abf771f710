"""SynthCars shapes and paint: bounded symmetric maps, body types that differ, wheels on the ground, glass, lights."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from meshinv_lite.config import RenderConfig
from meshinv_lite.data import car_shape as cs
from meshinv_lite.data.bird_geometry import uv_directions
from meshinv_lite.data.car_texture import at_texels, texel_faces, texture_map
from meshinv_lite.data.car_types import CAR_TYPE_NAMES, CAR_TYPES, UNSEEN_CAR_TYPE_NAMES, UNSEEN_CAR_TYPES
from meshinv_lite.render import WeakPerspectiveCamera, deform_vertices, make_uv_sphere, render_mesh

ALL_TYPES = CAR_TYPES + UNSEEN_CAR_TYPES
NAMES = [t.name for t in ALL_TYPES]
TEMPLATE = make_uv_sphere(31, 32)


@pytest.fixture(scope="module")
def cars():
    """One car of every type (seen and unseen), its maps and mesh."""
    torch.set_num_threads(1)
    p = cs.sample_car_params(torch.arange(len(ALL_TYPES)), torch.Generator().manual_seed(0), types=ALL_TYPES)
    deform = cs.deformation_map(p, 32)
    verts = deform_vertices(TEMPLATE, deform)
    return p, deform, verts


def painted(p: cs.CarParams, deform: torch.Tensor, paint) -> torch.Tensor:
    """Textures with every car (and cargo box) painted ``paint``, so glass and lights stand out."""
    colors = {**p.colors, **{key: torch.tensor(paint).expand(len(p), 3).clone() for key in ("paint", "cargo")}}
    return texture_map(replace(p, colors=colors), 128, torch.Generator().manual_seed(1), deform_map=deform)


def render(verts, tex, azimuth: float, size: int = 128) -> tuple[torch.Tensor, WeakPerspectiveCamera]:
    cam = WeakPerspectiveCamera.from_view([azimuth] * verts.shape[0], 0.0, scale=0.72)
    out = render_mesh(TEMPLATE, verts, cam, tex, RenderConfig(image_size=size), soft=False)
    return out.image, cam


def pixel(img: torch.Tensor, cam: WeakPerspectiveCamera, k: int, point) -> torch.Tensor:
    """Colour ``(3,)`` of car ``k``'s image where the object-frame ``point`` projects."""
    xy = cam[k].project(torch.tensor([[point]], dtype=torch.float32))[0, 0]
    size = img.shape[-1]
    col = int(((xy[0] + 1) / 2 * size).clamp(0, size - 1))
    row = int(((1 - xy[1]) / 2 * size).clamp(0, size - 1))
    return img[k, :, row, col]


def test_table_names_and_units():
    assert len(CAR_TYPES) >= 8 and len(set(CAR_TYPE_NAMES)) == len(CAR_TYPES)
    assert set(CAR_TYPE_NAMES).isdisjoint(UNSEEN_CAR_TYPE_NAMES) and len(UNSEEN_CAR_TYPES) == 2
    for t in ALL_TYPES:
        assert 2.0 <= t.length <= 2.7, t.name
        assert 0 < t.bonnet[0] < t.roof[0] <= t.roof[1] < t.length - t.boot[0] <= t.length, t.name
        assert t.clearance < 2 * t.wheel_radius < t.belt < t.top, t.name
        assert 0 < t.axles[0] < t.axles[1] < t.length and t.palette, t.name
    # the unseen types leave the seen range: lower than any seen car, and higher
    assert UNSEEN_CAR_TYPES[0].top < min(t.top for t in CAR_TYPES)
    assert UNSEEN_CAR_TYPES[1].top > max(t.top for t in CAR_TYPES)


def test_offsets_bounded_and_finite_for_every_type_and_extreme():
    for types in (CAR_TYPES, UNSEEN_CAR_TYPES):
        for hard in (False, True):
            ids = torch.arange(len(types)).repeat(6)
            p = cs.sample_car_params(ids, torch.Generator().manual_seed(7), hard=hard, types=types)
            if hard:
                assert p.extreme.any() and not p.extreme.all()
            deform = cs.deformation_map(p, 32)
            assert deform.shape == (len(ids), 3, 32, 32)
            assert torch.isfinite(deform).all()
            assert deform.abs().max() <= 1.5
            verts = deform_vertices(TEMPLATE, deform)
            extent = verts.amax(1) - verts.amin(1)  # (B, 3)
            assert ((extent[:, 2] > 1.9) & (extent[:, 2] < 2.9)).all()  # as long as a bird
            assert (extent[:, 2] > 2 * extent[:, 0]).all() and (extent[:, 2] > 1.8 * extent[:, 1]).all()


def test_bad_class_ids_and_odd_sizes_are_refused():
    with pytest.raises(ValueError):
        cs.sample_car_params(torch.tensor([len(CAR_TYPES)]), torch.Generator().manual_seed(0))
    p = cs.sample_car_params(torch.tensor([0]), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError):
        cs.deformation_map(p, 31)


def test_surface_shapes_and_the_map_is_the_surface(cars):
    p, deform, _ = cars
    d = uv_directions(8, 8).reshape(8, 8, 3)
    pts = cs.car_surface(d, p)
    assert pts.shape == (len(p), 8, 8, 3)
    assert cs.car_surface(d.reshape(-1, 3), p).shape == (len(p), 64, 3)
    # every texel of the map is its direction's surface point minus the direction
    full = uv_directions(32, 32).reshape(32, 32, 3)
    off = (cs.car_surface(full, p) - full).permute(0, 3, 1, 2)
    assert torch.allclose(off, deform, atol=1e-4)


def test_shape_is_left_right_symmetric(cars):
    p, deform, verts = cars
    # the maps: x offsets negated, y and z kept under u -> 1 - u (exactly)
    flipped = torch.flip(deform, dims=[-1])
    assert torch.equal(deform[:, 0], -flipped[:, 0]) and torch.equal(deform[:, 1:], flipped[:, 1:])
    # and the analytic surface itself, computed on the whole sphere without mirroring
    full = uv_directions(32, 32).reshape(32, 32, 3)
    pts = cs.car_surface(full, p)
    mirror = torch.flip(pts, dims=[2]) * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(pts, mirror, atol=2e-4)
    # the mesh: the vertex of the mirrored template direction sits at the mirror image
    sign = torch.tensor([-1.0, 1.0, 1.0])
    tv = TEMPLATE.vertices
    partner = ((tv[:, None] * sign - tv[None]) ** 2).sum(-1).argmin(1)
    assert torch.allclose(verts[:, partner] * sign, verts, atol=1e-5)


def test_texture_is_symmetric_in_range_and_deterministic(cars):
    p, deform, _ = cars
    a = texture_map(p, 64, torch.Generator().manual_seed(3), deform_map=deform)
    b = texture_map(p, 64, torch.Generator().manual_seed(3), deform_map=deform)
    assert a.shape == (len(p), 3, 64, 64) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, torch.flip(a, dims=[-1]))
    # without a deformation map the paint is placed on the car's own 32 x 32 map, unshaded
    plain = texture_map(p, 64, torch.Generator().manual_seed(3))
    assert plain.shape == a.shape and not torch.equal(plain, a)


def test_sampling_is_deterministic_for_a_seed():
    ids = torch.arange(len(CAR_TYPES))

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        p = cs.sample_car_params(ids, g, hard=True)
        deform = cs.deformation_map(p, 16)
        return p, deform, texture_map(p, 32, g, deform_map=deform)

    (p1, d1, t1), (p2, d2, t2), (p3, d3, _) = draw(5), draw(5), draw(6)
    assert torch.equal(p1.body, p2.body) and torch.equal(p1.colors["paint"], p2.colors["paint"])
    assert torch.equal(d1, d2) and torch.equal(t1, t2)
    assert not torch.equal(d1, d3) and not torch.equal(p1.colors["paint"], p3.colors["paint"])


def test_body_types_differ_measurably(cars):
    _, _, verts = cars
    extent = verts.amax(1) - verts.amin(1)
    ratio = {n: float(extent[k, 1] / extent[k, 2]) for k, n in enumerate(NAMES)}  # height / length
    height = {n: float(extent[k, 1]) for k, n in enumerate(NAMES)}
    for tall in ("van", "minibus", "suv"):
        assert ratio[tall] > 1.25 * ratio["coupe"] and ratio[tall] > ratio["sedan"] + 0.07, tall
    assert height["coupe"] < height["sedan"] - 0.05 and height["roadster"] < height["coupe"]
    assert height["box_truck"] > height["minibus"] > height["van"] > height["suv"] > height["sedan"]

    def rear_top(k):  # highest point over the rear quarter, relative to the whole car's height
        v = verts[k]
        z0, z1 = v[:, 2].min(), v[:, 2].max()
        rear = v[v[:, 2] < z0 + 0.25 * (z1 - z0)]
        return float((rear[:, 1].max() - v[:, 1].min()) / (v[:, 1].max() - v[:, 1].min()))

    rear = {n: rear_top(k) for k, n in enumerate(NAMES)}
    assert rear["pickup"] < 0.75  # the cab's roof ends; behind it the bed
    for boxy in ("van", "minibus", "suv", "wagon", "box_truck"):
        assert rear[boxy] > 0.95, boxy  # the roof runs to the tail
    assert rear["sedan"] < 0.85 and rear["coupe"] < 0.9  # a boot behind a sloping rear window


def test_the_lowest_vertices_are_the_tyres(cars):
    p, _, verts = cars
    for k, name in enumerate(NAMES):
        v = verts[k]
        ground = v[:, 1].min()
        low = v[v[:, 1] < ground + 0.02]
        axles = p.body[k, 0] / 2 - p.wheels[k, 2:4]  # object z of the front and rear axle
        radius, width, tyre = p.wheels[k, 0], p.body[k, 1], p.wheels[k, 1]
        near = (low[:, 2:3] - axles[None]).abs().min(1).values
        assert (near < 0.5 * radius).all(), name
        assert (low[:, 0].abs() > width / 2 - tyre - 0.06).all(), name  # under the flanks, not the middle
        for axle in axles:  # both axles, both sides
            here = (low[:, 2] - axle).abs() < 0.5 * radius
            assert (here & (low[:, 0] > 0)).any() and (here & (low[:, 0] < 0)).any(), name
        # between the wheels the underbody stands clear of the ground
        middle = v[(v[:, 2] - axles.mean()).abs() < 0.25]
        assert middle[:, 1].min() > ground + 0.04, name


def test_glass_plates_and_lights_where_they_belong(cars):
    p, deform, verts = cars
    tex = painted(p, deform, (0.85, 0.85, 0.85))
    side, cam_side = render(verts, tex, 0.0)  # the +x flank
    back, cam_back = render(verts, tex, 270.0)
    top = p.top
    for k, name in enumerate(NAMES):
        length, width, height, clearance = p.body[k]
        belt = p.belt[k]

        def obj(x, y, s):  # car-local (x, y from the ground, s from the nose) -> object frame
            return [float(x), float(y - top[k] / 2), float(length / 2 - s)]

        # dark glass above the belt just behind the windscreen; light paint below the belt between the wheels
        s_glass = p.roof[k, 0] + 0.03  # in the first pane, behind the A pillar
        glass = pixel(side, cam_side, k, obj(width / 2, 0.5 * (belt + height), s_glass))
        paint = pixel(side, cam_side, k, obj(width / 2, belt - 0.08, p.wheels[k, 2:4].mean()))
        if p.windows[k, 0] > 0:
            assert glass.mean() < 0.35, name
        assert paint.mean() > 0.5, name  # 0.85 paint under the top light (0.7 on a flank)
        # red lights at both rear corners, a yellow plate in between
        img = back[k]
        red = (img[0] > 0.5) & (img[0] > 2.5 * img[1]) & (img[0] > 2.5 * img[2])
        cols = torch.nonzero(red)[:, 1]
        assert (cols < 60).sum() >= 3 and (cols > 67).sum() >= 3, name
        yellow = (img[0] > 0.6) & (img[1] > 0.45) & (img[2] < 0.35)
        assert yellow.sum() >= 8 and (torch.nonzero(yellow)[:, 1].float().mean() - 63.5).abs() < 3, name
        # seen from the side, red only at the tail end (where the lights wrap round the corners)
        red_side = torch.nonzero((side[k][0] > 0.5) & (side[k][0] > 2.5 * side[k][1]))[:, 1].float()
        ends = cam_side[k].project(torch.tensor([[[0.0, 0.0, float(length / 2)], [0.0, 0.0, float(-length / 2)]]]))
        nose_col, tail_col = ((ends[0, :, 0] + 1) / 2 * 128).tolist()
        assert ((red_side - tail_col).abs() < 0.15 * abs(nose_col - tail_col)).all(), name


def test_headlights_and_front_plate_face_forwards(cars):
    p, deform, verts = cars
    tex = painted(p, deform, (0.15, 0.2, 0.45))  # dark blue: the lights and the plate are the bright pixels
    front, _ = render(verts, tex, 90.0)
    back, _ = render(verts, tex, 270.0)
    for k, name in enumerate(NAMES):
        bright_f = (front[k] > 0.7).all(0)
        bright_b = (back[k] > 0.7).all(0)
        assert bright_f.sum() >= 8 and bright_f.sum() > 3 * bright_b.sum(), name
        where = torch.nonzero(bright_f)
        assert (where[:, 1] < 56).sum() >= 2 and (where[:, 1] > 71).sum() >= 2, name  # a headlight on each side
        plate = where[(where[:, 1] - 63.5).abs() < 6]  # the white plate, low in the middle
        assert len(plate) >= 2 and plate[:, 0].float().mean() > where[(where[:, 1] - 63.5).abs() > 8, 0].float().mean()


def test_paint_is_placed_on_the_rendered_mesh():
    # texels of the undeformed sphere land on the sphere (within the facets' chord), at their own direction
    face, bary = texel_faces(TEMPLATE, 64, 32)
    pts = at_texels(TEMPLATE.vertices[None], TEMPLATE, face, bary)[0]
    d = uv_directions(64, 64).reshape(64, 64, 3)[:, :32].reshape(-1, 3)
    assert ((pts.norm(dim=-1) - 1).abs() < 0.01).all()
    assert (torch.nn.functional.normalize(pts, dim=-1) - d).norm(dim=-1).max() < 0.03
