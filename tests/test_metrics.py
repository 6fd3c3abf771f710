"""Ground-truth metrics: perfect reconstructions score perfectly, known errors score what they should."""

import pytest
import torch

from meshinv_lite.render import WeakPerspectiveCamera
from meshinv_lite.config import RenderConfig
from meshinv_lite.render import deform_vertices, face_adjacency, make_uv_sphere
from meshinv_lite.metrics import chamfer_3d, f_score, folded_fraction, psnr, ssim
from meshinv_lite.evaluation import ground_truth_metrics
from meshinv_lite.render import turn_cameras


def test_psnr_and_ssim_of_identical_and_known_images():
    a = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(psnr(a, a), torch.full((2,), 100.0))  # the cap
    assert torch.allclose(ssim(a, a), torch.ones(2), atol=1e-5)
    b = (a + 0.1).clamp(0, 1)
    mse = (a - b).pow(2).flatten(1).mean(1)
    assert torch.allclose(psnr(a, b), 10 * torch.log10(1 / mse), atol=1e-4)
    assert (ssim(a, torch.rand_like(a)) < 0.2).all()


def test_chamfer_and_f_score_of_a_known_shift():
    t = make_uv_sphere()
    v = t.vertices[None]
    assert float(chamfer_3d(v, v)) == 0 and float(f_score(v, v, 0.01)) == 1
    blob = v * 1e-4  # a point cloud much smaller than the shift: every distance is the shift
    assert float(chamfer_3d(blob, blob + torch.tensor([0.0, 0.3, 0.4]))) == pytest.approx(0.5, abs=1e-3)
    assert float(f_score(v, v + torch.tensor([5.0, 0, 0]), 0.1)) == 0
    # a small shift: distances fall under the threshold once it exceeds the shift
    near = v + torch.tensor([0.02, 0, 0])
    assert float(f_score(v, near, 0.05)) == 1 and float(chamfer_3d(v, near)) <= 0.02 + 1e-6


def test_turn_cameras_equals_the_camera_at_the_turned_azimuth():
    for az, el in ((0.0, 0.0), (30.0, 20.0), (200.0, -10.0)):
        cam = WeakPerspectiveCamera.from_view([az], el, 0.7)
        for turn in (30.0, 90.0, 180.0, 270.0):
            turned = turn_cameras(cam, turn)
            want = WeakPerspectiveCamera.from_view([az + turn], el, 0.7)
            p = torch.randn(1, 50, 3, generator=torch.Generator().manual_seed(1))
            assert torch.allclose(turned.apply(p), want.apply(p), atol=1e-5), (az, el, turn)


def test_ground_truth_metrics_of_a_perfect_reconstruction():
    t = make_uv_sphere()
    d = 0.1 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    v = deform_vertices(t, d)
    tex = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    cam = WeakPerspectiveCamera.from_view([10.0, 250.0], 15.0, 0.7)
    m = ground_truth_metrics(t, v, tex, cam, v, tex, cam, RenderConfig(image_size=48), azimuths=(0, 90, 180))
    assert torch.allclose(m["psnr"], torch.full((2, 3), 100.0))
    assert torch.allclose(m["ssim"], torch.ones(2, 3), atol=1e-5)
    assert torch.allclose(m["chamfer_3d"], torch.zeros(2), atol=1e-6) and torch.allclose(m["f_score"], torch.ones(2))
    # the wrong texture on the far side only: texels u in [1/8, 3/8], v in [1/4, 3/4] (the middle of the +x flank),
    # which cameras looking at the -x flank never see. The input view (azimuth 0) stays perfect, every turned view
    # shows some of the flank, the back (180) most (guards against views scored in the wrong order or through
    # the wrong camera, which "some view is wrong" lets through)
    back = WeakPerspectiveCamera.from_view([180.0, 200.0], [0.0, 15.0], 0.7)
    other = tex.clone()
    other[..., 8:24, 4:12] = 1 - other[..., 8:24, 4:12]
    m2 = ground_truth_metrics(t, v, other, back, v, tex, back, RenderConfig(image_size=48), azimuths=(0, 90, 180, 270))
    assert torch.equal(m2["psnr"][:, 0], torch.full((2,), 100.0)), m2["psnr"]
    assert torch.allclose(m2["ssim"][:, 0], torch.ones(2), atol=1e-5)
    assert (m2["psnr"][:, 1:] < 40).all() and (m2["psnr"][:, 2] < m2["psnr"][:, 1:].max(1).values).all(), m2["psnr"]


def test_folded_fraction_counts_creases():
    t = make_uv_sphere()
    pairs = face_adjacency(t.faces)
    assert float(folded_fraction(t.vertices[None], t.faces, pairs)) == 0  # a sphere has no crease
    crumpled = t.vertices[None] * (1 + 0.6 * torch.randn(1, t.num_vertices, 1, generator=torch.Generator().manual_seed(4)))
    assert float(folded_fraction(crumpled, t.faces, pairs)) > 0.02
