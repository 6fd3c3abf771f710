"""Time the renderer: forward + backward of a textured render plus the DIB-R soft mask.

Template: the default 31 x 32 UV sphere (1,920 faces), deformed by a random deformation map,
random views. Prints a table and, last, ``render_ms_per_image_128px_b8=<float>``.

    python bench/render.py [--repeats 10] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from meshinv_lite.render import random_cameras
from meshinv_lite.config import RenderConfig
from meshinv_lite.render import deform_vertices, make_uv_sphere
from meshinv_lite.render import render_mesh


def time_render(size: int, batch: int, repeats: int, device: str) -> dict:
    """Median and best milliseconds per image over ``repeats`` forward+backward passes."""
    gen = torch.Generator().manual_seed(0)
    template = make_uv_sphere().to(device)
    cam = random_cameras(batch, generator=gen).to(device)
    deform = (0.05 * torch.randn(batch, 3, 32, 32, generator=gen)).to(device).requires_grad_()
    tex = torch.rand(batch, 3, 128, 128, generator=gen).to(device).requires_grad_()
    cfg = RenderConfig(image_size=size)

    def step() -> None:
        out = render_mesh(template, deform_vertices(template, deform), cam, tex, cfg)
        (out.image.mean() + out.soft_mask.mean()).backward()

    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000 / batch)
    return {"median": statistics.median(times), "best": min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'px':>5} {'batch':>5} {'median ms/img':>14} {'best ms/img':>12}")
    key = None
    for size in (64, 128, 256):
        for batch in (1, 8):
            r = time_render(size, batch, args.repeats, args.device)
            print(f"{size:>5} {batch:>5} {r['median']:>14.2f} {r['best']:>12.2f}")
            if size == 128 and batch == 8:
                key = r["median"]
    print(f"render_ms_per_image_128px_b8={key:.3f}")


if __name__ == "__main__":
    main()
