
import pytest
import torch

from meshinv_lite.render import (WeakPerspectiveCamera, azimuth_elevation, matrix_to_quaternion, ndc_to_pixel, normalize_quaternion, orbit_azimuths, orbit_cameras, pixel_centers, pixel_to_ndc, qrot, quaternion_multiply, quaternion_to_matrix, view_rotation)


def test_pixel_ndc_round_trip_and_centres():
    ij = torch.tensor([[0.0, 0.0], [7.0, 3.0], [2.5, 1.25]])
    assert torch.allclose(ndc_to_pixel(pixel_to_ndc(ij, 4, 8), 4, 8), ij)
    c = pixel_centers(4, 8)
    assert c.shape == (4, 8, 2)
    assert torch.allclose(c[0, 0], torch.tensor([-1 + 1 / 8, 1 - 1 / 4]))  # top-left: x left, y up
    assert torch.allclose(c[-1, -1], torch.tensor([1 - 1 / 8, -1 + 1 / 4]))


def test_qrot_matches_matrix_and_round_trip():
    torch.manual_seed(0)
    q = normalize_quaternion(torch.randn(5, 4))
    v = torch.randn(5, 10, 3)
    r = quaternion_to_matrix(q)
    assert torch.allclose(qrot(q, v), v @ r.transpose(1, 2), atol=1e-5)
    q2 = matrix_to_quaternion(r)
    # same rotation (q and -q are equal rotations)
    assert torch.allclose(quaternion_to_matrix(q2), r, atol=1e-5)
    # composition
    a, b = q[:2], q[2:4]
    assert torch.allclose(qrot(quaternion_multiply(a, b), v[:2]), qrot(a, qrot(b, v[:2])), atol=1e-5)


@pytest.mark.parametrize("axis", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, -1), (1, -1, 0), (-1, 0, 1), (1, -2, 3),
                                  (-1, -1, 1), (3, 1, -2)])
def test_matrix_to_quaternion_half_turns(axis):
    # 180-degree rotations have w = 0: the naive sign-copy conversion got mixed-sign axes wrong
    a = torch.tensor(axis, dtype=torch.float64)
    q = torch.cat([torch.zeros(1, dtype=torch.float64), a / a.norm()])[None]
    m = quaternion_to_matrix(q)
    q2 = matrix_to_quaternion(m)
    assert torch.allclose(quaternion_to_matrix(q2), m, atol=1e-9)
    assert abs(float(q2[0, 0])) < 1e-9 and (q2 @ q.T).abs().item() == pytest.approx(1.0, abs=1e-9)  # q2 = +-q


def test_view_rotation_round_trips_on_the_grid():
    # the azimuths FID_12 and the CUB conversion use, including 90 / 270 at elevation != 0 (w = 0 there)
    az = torch.tensor([a for a in (0.0, 90.0, 180.0, 270.0) for _ in range(3)])
    el = torch.tensor([e for _ in range(4) for e in (-30.0, 0.0, 30.0)])
    q = view_rotation(az, el)
    m = quaternion_to_matrix(q)
    q2 = matrix_to_quaternion(m)
    assert torch.allclose(quaternion_to_matrix(q2), m, atol=1e-5)
    assert (q2[:, 0] >= 0).all()
    az2, el2 = azimuth_elevation(q2)
    assert torch.allclose(torch.remainder(az2 - az + 180, 360) - 180, torch.zeros_like(az), atol=1e-3)
    assert torch.allclose(el2, el, atol=1e-3)


def test_view_rotation_semantics():
    beak = torch.tensor([[[0.0, 0.0, 1.0]]])
    top = torch.tensor([[[0.0, 1.0, 0.0]]])
    right = torch.tensor([[[1.0, 0.0, 0.0]]])
    front = WeakPerspectiveCamera.from_view([90.0], 0.0, 1.0)
    assert front.apply(beak)[0, 0, 2] < -0.99  # beak towards the viewer: smallest z
    side = WeakPerspectiveCamera.from_view([0.0], 0.0, 1.0)
    assert side.apply(right)[0, 0, 2] < -0.99  # azimuth 0 looks at the +x side
    assert abs(side.apply(beak)[0, 0, 2]) < 1e-5  # beak in the image plane
    above = WeakPerspectiveCamera.from_view([0.0], 30.0, 1.0)
    p = above.apply(top)[0, 0]
    assert p[2] < 0 and p[1] > 0  # top is closer and still up in the image
    back = WeakPerspectiveCamera.from_view([270.0], 0.0, 1.0)
    assert back.apply(beak)[0, 0, 2] > 0.99


def test_azimuth_elevation_inverse():
    az = torch.tensor([0.0, 30.0, 135.0, 250.0, 359.0])
    el = torch.tensor([0.0, 10.0, -20.0, 45.0, 80.0])
    a, e = azimuth_elevation(view_rotation(az, el))
    assert (a >= 0).all() and (a < 360).all()
    diff = (a - az + 180) % 360 - 180
    assert diff.abs().max() < 1e-3
    assert torch.allclose(e, el, atol=1e-3)


def test_apply_scale_translation():
    cam = WeakPerspectiveCamera(torch.tensor([2.0]), torch.tensor([[0.1, -0.2]]), torch.tensor([[1.0, 0, 0, 0]]))
    v = torch.tensor([[[0.5, 0.25, 1.0]]])
    assert torch.allclose(cam.apply(v), torch.tensor([[[1.1, 0.3, 2.0]]]))
    assert torch.allclose(cam.project(v), torch.tensor([[[1.1, 0.3]]]))


def test_tensor_round_trip_and_indexing():
    cams = orbit_cameras(4, elevation_deg=15, scale=0.7)
    back = WeakPerspectiveCamera.from_tensor(cams.as_tensor())
    assert torch.equal(back.as_tensor(), cams.as_tensor())
    assert len(cams[1:3]) == 2 and len(cams[0]) == 1
    assert len(WeakPerspectiveCamera.cat([cams, cams[0]])) == 5


def test_orbit_azimuths():
    assert orbit_azimuths(12, 30) == [30.0 * i for i in range(12)]
    assert orbit_azimuths(4) == [0.0, 90.0, 180.0, 270.0]
    with pytest.raises(ValueError):
        orbit_azimuths(0)


def test_bad_cameras_rejected():
    s, t = torch.ones(2), torch.zeros(2, 2)
    with pytest.raises(ValueError, match="zero quaternion"):
        WeakPerspectiveCamera(s, t, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="unit norm"):
        WeakPerspectiveCamera(s, t, torch.tensor([[2.0, 0, 0, 0]] * 2))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        WeakPerspectiveCamera(s, t, torch.tensor([[1.0, 0, 0]] * 2))
    with pytest.raises(ValueError, match="NaN"):
        WeakPerspectiveCamera(torch.tensor([float("nan"), 1.0]), t, torch.tensor([[1.0, 0, 0, 0]] * 2))
    with pytest.raises(ValueError, match="positive"):
        WeakPerspectiveCamera(-s, t, torch.tensor([[1.0, 0, 0, 0]] * 2))
    cam = WeakPerspectiveCamera(s, t, torch.tensor([[1.0, 0, 0, 0]] * 2))
    with pytest.raises(ValueError, match="batch"):
        cam.apply(torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="dimensions"):
        cam.apply(torch.zeros(2, 5, 3, 1))
    # from_raw normalizes differentiably
    raw = torch.tensor([[2.0, 0, 0, 0]], requires_grad=True)
    c = WeakPerspectiveCamera.from_raw(torch.ones(1), torch.zeros(1, 2), raw)
    c.apply(torch.ones(1, 1, 3)).sum().backward()
    assert raw.grad is not None


def test_rotation_angle_between_quaternions():
    from meshinv_lite.render import rotation_angle_deg

    half = torch.deg2rad(torch.tensor([0.0, 30.0, 90.0, 170.0])) / 2
    q = torch.stack([half.cos(), torch.zeros(4), half.sin(), torch.zeros(4)], dim=1)  # about y
    ident = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert torch.allclose(rotation_angle_deg(q, ident), torch.tensor([0.0, 30.0, 90.0, 170.0]), atol=1e-3)
    assert torch.allclose(rotation_angle_deg(-q, ident), rotation_angle_deg(q, ident))  # q and -q: one rotation
    cams = WeakPerspectiveCamera.from_view([10.0, 200.0], [0.0, 20.0])
    assert torch.allclose(rotation_angle_deg(cams.rotation, cams.rotation), torch.zeros(2), atol=0.05)
