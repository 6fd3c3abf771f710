"""The silhouette fit's building blocks against brute force: chamfer_2d, mask_points, soft_iou."""
import torch

from meshinv_lite.render import pixel_centers
from meshinv_lite.losses import chamfer_2d, mask_points, soft_iou


def test_chamfer_2d_matches_brute_force_and_its_gradient():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 7, 2, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 5, 2, generator=g, dtype=torch.float64)
    got = chamfer_2d(a, b)
    want = torch.stack([
        min_sq(a[i], b[i]).mean() + min_sq(b[i], a[i]).mean() for i in range(2)])
    assert torch.allclose(got, want)
    assert torch.autograd.gradcheck(lambda x: chamfer_2d(x, b), (a,), eps=1e-6, atol=1e-6)


def min_sq(p, q):
    """For every point of p, the squared distance to its nearest point of q (plain loops)."""
    return torch.stack([min(((x - y) ** 2).sum() for y in q) for x in p])


def test_mask_points_are_foreground_pixel_centres():
    masks = torch.zeros(2, 1, 6, 8)
    masks[0, 0, 1:3, 2:5] = 1  # 6 pixels
    masks[1, 0, 4, 7] = 1  # 1 pixel: sampled with replacement
    pts = mask_points(masks, 4, torch.Generator().manual_seed(0))
    assert pts.shape == (2, 4, 2)
    centres = pixel_centers(6, 8).reshape(-1, 2)
    fg = [{tuple(c.tolist()) for c in centres[masks[i].reshape(-1) > 0.5]} for i in range(2)]
    for i in range(2):
        assert {tuple(p.tolist()) for p in pts[i]} <= fg[i]
    assert len({tuple(p.tolist()) for p in pts[0]}) == 4  # without replacement where there are enough
    assert all(tuple(p.tolist()) == next(iter(fg[1])) for p in pts[1])


def test_soft_iou_matches_the_formula_and_hard_iou_on_binary_masks():
    g = torch.Generator().manual_seed(1)
    p, t = torch.rand(3, 1, 5, 5, generator=g), torch.rand(3, 1, 5, 5, generator=g)
    want = torch.stack([(p[i] * t[i]).sum() / (p[i] + t[i] - p[i] * t[i]).sum() for i in range(3)])
    assert torch.allclose(soft_iou(p, t), want, atol=1e-5)
    a, b = (p > 0.5).float(), (t > 0.5).float()
    hard = torch.stack([((a[i] * b[i]).sum() / ((a[i] + b[i]) > 0).float().sum()) for i in range(3)])
    assert torch.allclose(soft_iou(a, b), hard, atol=1e-5)
