"""Seconds per image for MeshInversion at a profile, and peak memory.

Inverts ``--images`` SynthBirds test images (built in a temporary folder) in one batch with the
profile's full schedule (best-of-N initialisation, staged Adam, both Chamfer texture losses and the
Chamfer mask loss, camera refinement), by default with a randomly initialised generator of the profile's
size (comparable across commits); ``--prior shipped`` inverts with the shipped prior instead, where early
stopping (lite) ends stages as the real loss flattens. The shipped weights are read with only ``Generator`` and
``GeneratorConfig``, so an older package inverts the same prior (``bench/compare_commits.py --script-from new``).
Last lines: ``invert_peak_rss_mb_<profile>=<float>``, ``invert_s_per_image_<profile>=<float>``.

    python bench/invert.py [--profile lite] [--images 8] [--threads N] [--prior random|shipped]
    python bench/compare_commits.py --old 32520ad --script-from new --bench "bench/invert.py --prior shipped"
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data import SynthBirdsConfig, build_synthbirds
from meshinv_lite.inversion import InversionConfig, invert_batch
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.gan import Generator, GeneratorConfig


SHIPPED_PRIOR = Path(__file__).resolve().parent.parent / "meshinv_lite" / "priors" / "synthbirds_lite.pt"


def shipped_generator(device: str) -> Generator:
    """The shipped prior's EMA generator, read from its file with the package's ``Generator`` alone."""
    state = torch.load(SHIPPED_PRIOR, map_location="cpu", weights_only=False)
    cfg = GeneratorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["generator_config"].items()})
    G = Generator(cfg)
    G.load_state_dict(state["state_dict"])
    return G.to(device).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--prior", default="random", choices=["random", "shipped"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as root:
        sizes = {"train": 1, "val": 1, "test": args.images, "test_hard": 1}
        build_synthbirds(root, SynthBirdsConfig.for_profile(args.profile, sizes=sizes), splits=["test"], progress=False)
        batch = ReconstructionDataset(root, "test").batch(range(args.images))
    if args.prior == "shipped":
        G = shipped_generator(args.device)
    else:
        G = Generator(GeneratorConfig.for_profile(args.profile)).to(args.device).eval()
    cfg = InversionConfig.for_profile(args.profile)
    template = make_uv_sphere().to(args.device)
    invert_batch(G, {k: v[:1] if hasattr(v, "shape") else v[:1] for k, v in batch.items()},
                 InversionConfig.for_profile(args.profile, init_candidates=2, stages=cfg.stages[:1]), template=template)  # warm-up
    t0 = time.perf_counter()
    rec = invert_batch(G, batch, cfg, template=template)
    seconds = (time.perf_counter() - t0) / args.images
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"profile={args.profile} prior={args.prior} images={args.images} steps={len(rec.history['total'])}/{cfg.total_steps} "
          f"init={cfg.init_candidates} "
          f"points={cfg.num_points} render={cfg.render.image_size}px threads={torch.get_num_threads()} "
          f"features={rec.feature_extractor.split(':')[0]}")
    print(f"{'s per image':>16} {seconds:.2f}")
    print(f"{'peak RSS MB':>16} {peak_mb:.0f}")
    print(f"invert_peak_rss_mb_{args.profile}={peak_mb:.0f}")
    print(f"invert_s_per_image_{args.profile}={seconds:.3f}")


if __name__ == "__main__":
    main()
