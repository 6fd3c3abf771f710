"""Metrics against any ground truth: meshes of other topologies, vertex colours, renders with cameras."""
from __future__ import annotations


import pytest
import torch

from meshinv_lite.render import WeakPerspectiveCamera, quaternion_multiply, view_rotation
from meshinv_lite.config import RenderConfig
from meshinv_lite.evaluation import (GroundTruthMesh, aligned_camera, mesh_metrics, render_metrics, sample_surface, surface_centroid)
from meshinv_lite.render import make_uv_sphere

CFG = RenderConfig(image_size=48)
AZ = (0, 90, 200)


def _bird(b: int = 2, seed: int = 0):
    """A textured, non-symmetric ellipsoid on the template, and a camera for each item."""
    g = torch.Generator().manual_seed(seed)
    t = make_uv_sphere()
    verts = t.vertices[None] * torch.tensor([1.0, 0.6, 0.8]) + torch.tensor([0.2, 0.0, 0.0]) * t.vertices[None, :, :1] ** 2
    verts = verts.expand(b, -1, -1).clone()
    tex = torch.rand(b, 3, 16, 32, generator=g)
    cam = WeakPerspectiveCamera.from_view([30.0, 250.0][:b], [10.0, -20.0][:b], scale=0.6, translation=(0.05, -0.1))
    return t, verts, tex, cam


def _same(a: WeakPerspectiveCamera, b: WeakPerspectiveCamera) -> bool:
    sign = torch.sign((a.rotation * b.rotation).sum(-1, keepdim=True))  # q and -q are one rotation
    return (torch.allclose(a.scale, b.scale, atol=1e-6) and torch.allclose(a.translation, b.translation, atol=1e-6)
            and torch.allclose(a.rotation, sign * b.rotation, atol=1e-6))


def test_aligned_camera_of_the_input_view_is_the_reconstructions_camera():
    _, _, _, gt_cam = _bird()
    rec_cam = WeakPerspectiveCamera(gt_cam.scale * 1.1, gt_cam.translation + 0.03,
                                    quaternion_multiply(gt_cam.rotation, view_rotation(5.0, 3.0).expand(2, 4)))
    assert _same(aligned_camera(rec_cam, gt_cam, gt_cam), rec_cam)
    view = WeakPerspectiveCamera.from_view([120.0, 10.0], [40.0, 0.0], scale=0.5, translation=(-0.1, 0.2))
    assert not _same(aligned_camera(rec_cam, gt_cam, view), view)  # a real change of view, not a copy
    assert _same(aligned_camera(gt_cam, gt_cam, view), view)  # a reconstruction with the true camera: the view itself


def test_a_perfect_reconstruction_scores_perfectly():
    t, verts, tex, cam = _bird()
    gt = GroundTruthMesh(verts, t.faces, uvs=t.uvs, faces_uv=t.faces_uv, texture=tex)
    m = mesh_metrics(t, verts, tex, cam, gt, cam, CFG, azimuths=AZ)
    assert m["iou"].min() == 1 and m["ssim"].min() > 0.999 and m["psnr"].min() > 60
    assert m["chamfer_3d"].max() < 0.04 and m["f_score"].min() > 0.99  # two samplings of one surface


def test_the_same_object_in_another_frame_and_camera_scores_as_perfect():
    """The reconstruction's object frame is its own: turned, scaled and seen by a compensating camera it is
    the same reconstruction. The alignment must see through that (scale, rotation and translation)."""
    t, verts, tex, cam = _bird()
    gt = GroundTruthMesh(verts, t.faces, uvs=t.uvs, faces_uv=t.faces_uv, texture=tex)
    turn = view_rotation(70.0, 25.0).expand(2, 4)  # object -> its new frame
    k = 1.7
    from meshinv_lite.render import qrot
    d = torch.tensor([0.1, -0.2, 0.15])  # and moved: the camera's translation makes up for it
    rec_verts = k * qrot(turn, verts) + d
    inv = turn * torch.tensor([1.0, -1.0, -1.0, -1.0])
    rot = quaternion_multiply(cam.rotation, inv)
    s = cam.scale / k
    rec_cam = WeakPerspectiveCamera(s, cam.translation - qrot(rot, s[:, None, None] * d.expand(2, 1, 3))[:, 0, :2], rot)
    assert torch.allclose(rec_cam.project(rec_verts), cam.project(verts), atol=1e-5)  # one picture in the input view
    m = mesh_metrics(t, rec_verts, tex, rec_cam, gt, cam, CFG, azimuths=AZ)
    assert m["iou"].min() > 0.99 and m["psnr"].min() > 35
    assert m["chamfer_3d"].max() < 0.04 and m["f_score"].min() > 0.99
    # naive turning of the reconstruction about its own axis (what template-frame metrics do) would not
    from meshinv_lite.metrics import mask_iou
    from meshinv_lite.render import turn_cameras
    from meshinv_lite.render import render_mesh
    naive = render_mesh(t, rec_verts, turn_cameras(rec_cam, 90), tex, CFG, soft=False).mask
    assert float(mask_iou(naive, gt.render(turn_cameras(cam, 90), 48)[1]).min()) < 0.95


def test_a_ground_truth_of_another_topology_with_vertex_colours():
    t = make_uv_sphere()
    fine = make_uv_sphere(47, 64)  # 2,946 vertices vs the template's 962
    cam = WeakPerspectiveCamera.from_view([0.0], [20.0], scale=0.6)
    red = torch.zeros(1, fine.num_vertices, 3)
    red[..., 0] = 1.0
    gt = GroundTruthMesh(fine.vertices[None], fine.faces, vertex_colors=red)
    image, mask = gt.render(cam, 48)
    assert torch.allclose(image[:, 0][mask[:, 0] > 0], torch.ones(1)) and float(image[:, 1:].abs().max()) == 0
    tex = torch.zeros(1, 3, 8, 16)
    tex[:, 0] = 1.0
    m = mesh_metrics(t, t.vertices[None], tex, cam, gt, cam, CFG, azimuths=AZ)
    assert m["iou"].min() > 0.97 and m["psnr"].min() > 20  # one sphere, two tessellations
    assert m["chamfer_3d"].item() < 0.04 and m["f_score"].item() > 0.99
    # a reconstruction shifted by 0.3 along the depth axis: Chamfer grows, F-score at 0.1 falls
    shifted = mesh_metrics(t, t.vertices[None] + torch.tensor([0.0, 0.0, 0.3]), tex, cam, gt, cam, CFG, azimuths=(0,))
    assert shifted["chamfer_3d"].item() > 0.1 and shifted["f_score"].item() < 0.9


def test_render_metrics_agree_with_mesh_metrics_on_the_same_views():
    t, verts, tex, cam = _bird(seed=1)
    verts = verts - surface_centroid(verts, t.faces)[:, None]  # renders alone place the centre at the origin
    gt = GroundTruthMesh(verts * 1.05, t.faces, uvs=t.uvs, faces_uv=t.faces_uv, texture=tex.flip(-1))
    from meshinv_lite.render import turn_cameras
    views = [(turn_cameras(cam, a), *gt.render(turn_cameras(cam, a), 48)) for a in AZ]
    r = render_metrics(t, verts, tex, cam, cam, views, CFG)
    m = mesh_metrics(t, verts, tex, cam, gt, cam, CFG, azimuths=AZ)
    for key in ("psnr", "ssim", "iou"):
        assert torch.allclose(r[key], m[key], atol=1e-4), key
    assert r["psnr"].max() < 30  # not a perfect match: the test can tell them apart


def test_sample_surface_is_uniform_by_area():
    t = make_uv_sphere()
    verts = t.vertices[None] * torch.tensor([3.0, 1.0, 1.0])  # stretched: faces far from uniform in area
    pts = sample_surface(verts, t.faces, 20000, torch.Generator().manual_seed(0))
    assert pts.shape == (1, 20000, 3)
    on = (pts / torch.tensor([3.0, 1.0, 1.0])).norm(dim=-1)
    assert float(on.min()) > 0.98 and float(on.max()) <= 1.0 + 1e-5  # on (the inside of) the faces
    # the two halves x > 0 and x < 0 have equal area
    assert abs(float((pts[..., 0] > 0).float().mean()) - 0.5) < 0.02


def test_bad_ground_truth_is_refused_with_what_to_give():
    t = make_uv_sphere()
    v = t.vertices[None]
    with pytest.raises(ValueError, match="uvs .*faces_uv .*texture"):
        GroundTruthMesh(v, t.faces, uvs=t.uvs)
    with pytest.raises(ValueError, match="outside 0..961"):
        GroundTruthMesh(v, t.faces + 5)
    with pytest.raises(TypeError, match="float"):
        GroundTruthMesh(v, t.faces, vertex_colors=torch.zeros(1, 962, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        GroundTruthMesh(v, t.faces, vertex_colors=torch.full((1, 962, 3), 255.0))
    with pytest.raises(ValueError, match="not both"):
        GroundTruthMesh(v, t.faces, vertex_colors=torch.zeros(1, 962, 3), uvs=t.uvs, faces_uv=t.faces_uv,
                        texture=torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="empty"):
        render_metrics(t, v, torch.zeros(1, 3, 4, 4), WeakPerspectiveCamera.from_view([0.0]),
                       WeakPerspectiveCamera.from_view([0.0]), [], CFG)


def test_perceptual_and_sharpness_accept_any_ground_truth():
    """With the evaluation network, mesh and render metrics add per-view perceptual distance and sharpness:
    zero and one for a perfect reconstruction, worse for a blurred texture, and the same from either kind of truth."""
    from meshinv_lite.features import load_feature_extractor
    from meshinv_lite.render import turn_cameras
    import torch.nn.functional as F

    net = load_feature_extractor("synthbirds_eval")
    t, verts, tex, cam = _bird(seed=2)
    verts = verts - surface_centroid(verts, t.faces)[:, None]
    gt = GroundTruthMesh(verts, t.faces, uvs=t.uvs, faces_uv=t.faces_uv, texture=tex)
    m = mesh_metrics(t, verts, tex, cam, gt, cam, CFG, azimuths=AZ, eval_net=net)
    assert m["perceptual"].shape == m["psnr"].shape and m["perceptual"].abs().max() < 1e-4
    assert torch.allclose(m["sharpness_ratio"], torch.ones_like(m["sharpness_ratio"]), atol=1e-3)
    blurred = F.avg_pool2d(tex, 9, 1, 4, count_include_pad=False)
    b = mesh_metrics(t, verts, blurred, cam, gt, cam, CFG, azimuths=AZ, eval_net=net)
    assert (b["perceptual"] > 1e-3).all() and (b["sharpness_ratio"] < 0.9).all()
    views = [(turn_cameras(cam, a), *gt.render(turn_cameras(cam, a), 48)) for a in AZ]
    r = render_metrics(t, verts, blurred, cam, cam, views, CFG, eval_net=net)
    assert torch.allclose(r["perceptual"], b["perceptual"], atol=1e-4)
    assert torch.allclose(r["sharpness_ratio"], b["sharpness_ratio"], atol=1e-3)
