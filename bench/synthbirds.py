"""Time SynthBirds generation at 128 px (the lite profile), end to end: shapes, textures, cameras,
rendering and PNG + annotation writing.

    python bench/synthbirds.py [--images 256] [--workers 2]

Prints a table (in-process batches by stage, then a full split build with worker processes) and,
last, ``synthbirds_images_per_s_128px=<float>`` (the full build). Target: >= 17 images/s on 2 CPU
cores, i.e. the lite train split of 2,000 images in under 2 minutes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from meshinv_lite.data import SynthBirdsConfig, build_synthbirds, generate_batch
from meshinv_lite.data.synthbirds import backgrounds, chunk_generator, default_template, fit_cameras, torch_threads
from meshinv_lite.data.bird_shape import deformation_map, sample_bird_params
from meshinv_lite.data.bird_texture import texture_map
from meshinv_lite.render import deform_vertices


def stage_times(cfg: SynthBirdsConfig, batch: int, repeats: int) -> dict:
    """Median milliseconds per image of each generation stage, in this process."""
    template = default_template()
    rows: dict[str, list[float]] = {}
    for r in range(repeats):
        g = chunk_generator(0, "bench", r)
        ids = torch.arange(batch) % cfg.num_classes
        t = [time.perf_counter()]
        p = sample_bird_params(ids, g, cfg)
        deform = deformation_map(p, cfg.deform_size)
        t.append(time.perf_counter())
        texture_map(p, cfg.texture_size, g, deform_map=deform)
        t.append(time.perf_counter())
        fit_cameras(deform_vertices(template, deform), g, cfg)
        backgrounds(batch, cfg.image_size, g)
        t.append(time.perf_counter())
        generate_batch(ids, g, cfg)
        t.append(time.perf_counter())
        for name, a, b in (("shape", 0, 1), ("texture", 1, 2), ("cameras+backgrounds", 2, 3), ("whole batch (no I/O)", 3, 4)):
            rows.setdefault(name, []).append((t[b] - t[a]) * 1000 / batch)
    return {k: statistics.median(v) for k, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=600, help="size of the split built end to end")
    parser.add_argument("--workers", type=int, default=None, help="default: what build_synthbirds picks")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = SynthBirdsConfig.for_profile("lite")
    print(f"torch={torch.__version__} threads={torch.get_num_threads()} cpus={os.cpu_count()} "
          f"image={cfg.image_size}px texture={cfg.texture_size}px deform={cfg.deform_size}px")
    print(f"{'stage (1 thread, batch 32)':<32} {'ms/image':>9}")
    with torch_threads(1):
        times = stage_times(cfg, cfg.chunk, args.repeats)
    for name, ms in times.items():
        print(f"{name:<32} {ms:>9.2f}")
    cfg = SynthBirdsConfig.for_profile("lite", sizes={"train": args.images})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_synthbirds(tmp, cfg, seed=0, splits=["train"], workers=args.workers, progress=False)
        seconds = time.perf_counter() - t0
    rate = args.images / seconds
    print(f"{'full build with PNGs (workers=' + str(args.workers) + ')':<32} {1000 / rate:>9.2f}")
    print(f"{args.images} images in {seconds:.1f} s; a 2,000-image train split would take {2000 / rate:.0f} s")
    print(f"synthbirds_images_per_s_128px={rate:.2f}")


if __name__ == "__main__":
    main()
