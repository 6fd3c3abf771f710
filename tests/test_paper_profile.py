"""The paper profile at the paper's sizes (256 px renders, 512 px textures), run for a step on the CPU.

No GPU here: these check that the sizes fit together end to end (generator -> discriminators -> renderer
-> losses -> inversion), so ``--profile paper --device cuda`` fails only for GPU reasons. The CUDA run
itself is ``bench/pretrain.py --profile paper --device cuda`` and ``bench/invert.py --profile paper
--device cuda`` (see README, "Scale out").
"""
from __future__ import annotations

import pytest
import torch

from meshinv_lite.render import WeakPerspectiveCamera
from meshinv_lite.config import get_profile
from meshinv_lite.inversion import InversionConfig, InversionStage, invert
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.gan import Generator
from meshinv_lite.gan import GANTrainer, PretrainConfig, TrainingData

pytestmark = pytest.mark.slow


def _fabricated_data(cfg: PretrainConfig, n: int = 4) -> TrainingData:
    """Pseudo-GT-shaped tensors at the config's sizes (what pretraining reads)."""
    g = torch.Generator().manual_seed(0)
    t, d, r = cfg.generator.texture_size, cfg.generator.deform_size, cfg.render.image_size
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, r), torch.linspace(-1, 1, r), indexing="ij")
    disc = ((xx ** 2 + yy ** 2) < 0.5).to(torch.uint8)[None, None].expand(n, 1, r, r) * 255
    cams = WeakPerspectiveCamera.from_view(torch.linspace(0, 270, n).tolist(), 20.0, 0.8).as_tensor()
    return TrainingData(
        texture=torch.rand(n, 3, t, t, generator=g), visibility=(torch.rand(n, 1, t, t, generator=g) > 0.5).float(),
        deformation=0.05 * torch.randn(n, 3, d, d, generator=g), class_id=torch.arange(n) % cfg.num_classes,
        images=(torch.rand(n, 3, r, r, generator=g) * 255).to(torch.uint8), masks=disc.contiguous(),
        cameras=cams, image_class_id=torch.arange(n) % cfg.num_classes)


def test_paper_pretraining_step_at_paper_sizes():
    torch.manual_seed(0)
    cfg = PretrainConfig.for_profile("paper", batch_size=2)
    assert (cfg.generator.texture_size, cfg.render.image_size) == (512, 256)
    trainer = GANTrainer(cfg, _fabricated_data(cfg))
    terms = trainer.step()
    assert set(terms) >= {"d_uv", "d_img", "g_uv", "g_img"}
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    with torch.no_grad():
        tex, deform = trainer.G_ema(*trainer.sample_latents(1))
    assert tex.shape == (1, 3, 512, 512) and deform.shape == (1, 3, 32, 32)


@pytest.mark.filterwarnings("ignore:no VGG-19 weights")
def test_paper_inversion_steps_at_paper_sizes():
    torch.manual_seed(0)
    prof = get_profile("paper")
    G = Generator(PretrainConfig.for_profile("paper").generator).eval()
    template = make_uv_sphere()
    cam = WeakPerspectiveCamera.from_view([30.0], 20.0, 0.8)
    with torch.no_grad():
        from meshinv_lite.render import deform_vertices
        from meshinv_lite.render import render_mesh

        target = render_mesh(template, deform_vertices(template, torch.zeros(1, 3, 32, 32)), cam,
                             torch.rand(1, 3, 64, 64), prof.render, soft=False)
    cfg = InversionConfig.for_profile("paper", init_candidates=4, init_batch=4, num_points=1024,
                                      stages=(InversionStage(2, 0.1, 1e-2),))
    assert cfg.render.image_size == 256 and target.image.shape[-1] == 256
    rec = invert(G, target.image, target.mask, cam, torch.tensor([3]), cfg, template=template)
    assert rec.texture.shape == (1, 3, 512, 512) and rec.vertices.shape == (1, template.num_vertices, 3)
    assert len(rec.history["total"]) == 2 and torch.isfinite(rec.iou).all() and float(rec.iou[0]) > 0.05
