"""Minutes to pretrain the GAN prior at a profile on this machine.

Times ``--iterations`` training iterations (D step(s) + G step with renders, the profile's batch
size and networks) on random data of the profile's sizes (speed does not depend on the data), and
extrapolates to the profile's schedule. Last line: ``pretrain_<profile>_minutes=<float>``.

    python bench/pretrain.py [--profile lite] [--iterations 200] [--threads N]
"""
from __future__ import annotations

import argparse
import time

import torch

from meshinv_lite.render import random_cameras
from meshinv_lite.config import get_profile
from meshinv_lite.gan import count_parameters
from meshinv_lite.gan import GANTrainer, PretrainConfig, TrainingData


def random_data(profile: str, n: int = 64) -> TrainingData:
    p = get_profile(profile)
    g = torch.Generator().manual_seed(0)
    vis = (torch.rand(n, 1, p.texture_size, p.texture_size, generator=g) > 0.5).float()
    return TrainingData(
        texture=torch.rand(n, 3, p.texture_size, p.texture_size, generator=g) * vis, visibility=vis,
        deformation=0.2 * torch.randn(n, 3, p.deform_size, p.deform_size, generator=g),
        class_id=torch.randint(0, 12, (n,), generator=g),
        images=torch.randint(0, 256, (n, 3, p.render_size, p.render_size), generator=g, dtype=torch.uint8),
        masks=(torch.rand(n, 1, p.render_size, p.render_size, generator=g) > 0.5).to(torch.uint8) * 255,
        cameras=random_cameras(n, generator=g, scale_range=(0.5, 0.7)).as_tensor(),
        image_class_id=torch.randint(0, 12, (n,), generator=g),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PretrainConfig.for_profile(args.profile)
    trainer = GANTrainer(cfg, random_data(args.profile), device=args.device)
    for _ in range(3):  # warm-up
        trainer.step()
    t0 = time.perf_counter()
    for _ in range(args.iterations):
        trainer.step()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    per_it = (time.perf_counter() - t0) / args.iterations
    minutes = per_it * cfg.iterations / 60
    print(f"profile={args.profile} batch={cfg.batch_size} d_steps={cfg.d_steps} image_D={cfg.image_discriminator} "
          f"threads={torch.get_num_threads()} G={count_parameters(trainer.G):,} params")
    print(f"{'s per iteration':>18} {per_it:.3f}")
    print(f"{'schedule':>18} {cfg.iterations} iterations")
    print(f"pretrain_{args.profile}_minutes={minutes:.2f}")


if __name__ == "__main__":
    main()
