"""render_turned: each mesh from its own camera turned about its vertical axis, laid out (mesh, view)."""
import pytest
import torch

from meshinv_lite.config import RenderConfig
from meshinv_lite.render import WeakPerspectiveCamera, deform_vertices, make_uv_sphere, render_mesh, render_turned


def _two_birds():
    g = torch.Generator().manual_seed(0)
    tm = make_uv_sphere()
    deform = 0.3 * torch.randn(2, 3, 8, 8, generator=g)
    verts = deform_vertices(tm, deform)
    tex = torch.rand(2, 3, 16, 16, generator=g)
    cams = WeakPerspectiveCamera(torch.tensor([0.8, 0.7]), torch.tensor([[0.05, 0.0], [-0.1, 0.05]]),
                                 torch.nn.functional.normalize(torch.randn(2, 4, generator=g), dim=-1))
    return tm, verts, tex, cams


def test_azimuth_zero_is_the_camera_itself_and_a_full_turn_comes_back():
    tm, verts, tex, cams = _two_birds()
    cfg = RenderConfig(image_size=32)
    imgs, masks = render_turned(tm, verts, tex, cams, azimuths=(0, 90, 360), config=cfg)
    assert imgs.shape == (2, 3, 3, 32, 32) and masks.shape == (2, 3, 1, 32, 32)
    direct = render_mesh(tm, verts, cams, tex, cfg, background=torch.ones(3), soft=False)
    assert torch.allclose(imgs[:, 0], direct.image, atol=1e-5) and torch.equal(masks[:, 0], direct.mask)
    assert torch.allclose(imgs[:, 2], imgs[:, 0], atol=1e-4)          # 360 degrees: the same view
    assert (imgs[:, 1] - imgs[:, 0]).abs().mean() > 0.01                 # a quarter turn: another view


def test_rows_follow_the_meshes():
    tm, verts, tex, cams = _two_birds()
    cfg = RenderConfig(image_size=24)
    a, _ = render_turned(tm, verts, tex, cams, azimuths=(0, 120), config=cfg)
    swap = torch.tensor([1, 0])
    b, _ = render_turned(tm, verts[swap], tex[swap], WeakPerspectiveCamera(cams.scale[swap], cams.translation[swap],
                                                                           cams.rotation[swap]), azimuths=(0, 120), config=cfg)
    assert torch.allclose(a[swap], b, atol=1e-5)


def test_refuses_nothing_to_render():
    tm, verts, tex, cams = _two_birds()
    with pytest.raises(ValueError, match="at least one"):
        render_turned(tm, verts, tex, cams, azimuths=())
