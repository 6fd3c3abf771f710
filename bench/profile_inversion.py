"""Where the time of one MeshInversion goes: a profile by stage, at a profile's schedule, with the shipped prior.

Wraps the functions :func:`meshinv_lite.inversion.invert` calls (the generator, the renderer, each loss, the
feature CNN, the nearest-neighbour searches, backward, the optimizer) with wall-clock timers, inverts
``--images`` test images in one batch, and prints inclusive milliseconds per image for each part, split
into the best-of-N initialisation and the optimisation. Last line: ``profile_invert_s_per_image_<profile>=<float>``.

    python bench/profile_inversion.py [--profile lite] [--images 8] [--threads 1] [--data-dir data] [--features vgg19]
"""
from __future__ import annotations

import argparse
import collections
import functools
import time

import torch

import meshinv_lite as mi
from meshinv_lite.paths import resolve
from meshinv_lite.inversion import search as inv
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data import build_synthbirds
from meshinv_lite.data.synthbirds import synthbirds_dir
from meshinv_lite.inversion import InversionConfig, invert_batch
from meshinv_lite.render import make_uv_sphere
from meshinv_lite.gan import load_shipped_prior

TIMES: dict[tuple[str, str], float] = collections.defaultdict(float)
CALLS: dict[tuple[str, str], int] = collections.defaultdict(int)
PHASE = ["init"]
DEPTH = [0]


def timed(name: str, fn):
    """``fn`` with its wall time added to TIMES[(phase, name)] (outermost timed call only, so parts don't overlap)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if DEPTH[0]:
            return fn(*args, **kwargs)
        DEPTH[0] += 1
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[(PHASE[0], name)] += time.perf_counter() - t0
            CALLS[(PHASE[0], name)] += 1
            DEPTH[0] -= 1
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--features", default="auto",
                        help="feature network of the loss: auto (VGG-19 weights, else in-domain), synthbirds_features, vgg19")
    args = parser.parse_args()
    mi.config.set_threads(args.threads)
    root = synthbirds_dir(resolve(args.data_dir), args.profile)
    build_synthbirds(root, profile=args.profile, seed=0, progress=False)
    batch = ReconstructionDataset(root, "test").batch(range(args.images))
    G, info = load_shipped_prior(args.device)
    cfg = InversionConfig.for_profile(args.profile, features=args.features)
    template = make_uv_sphere().to(args.device)
    invert_batch(G, {k: v[:1] for k, v in batch.items()}, replace_cfg(cfg), template=template)  # warm-up

    # the parts, as invert sees them (module-level names it imported) and on the objective instance
    for name in ("render_mesh", "deform_vertices", "project", "masked_features", "chamfer_on_maps",
                 "smoothness_loss", "latent_loss", "mask_iou"):
        setattr(inv, name, timed(name, getattr(inv, name)))
    G.forward = timed("generator", G.forward)
    init_objective = inv.InversionObjective.__init__

    def patched_init(self, *a, **k):
        init_objective(self, *a, **k)
        self.texture_fns = {n: timed(f"texture loss '{n}'", f) for n, f in self.texture_fns.items()}
        self.mask_fn = timed(f"mask loss '{self.config.mask_loss}'", self.mask_fn)
    inv.InversionObjective.__init__ = patched_init
    camera_params = inv._camera_params

    def start_optimisation(cam):
        PHASE[0] = "optimise"
        return camera_params(cam)
    inv._camera_params = start_optimisation
    torch.Tensor.backward = timed("backward", torch.Tensor.backward)
    torch.optim.Adam.step = timed("Adam step", torch.optim.Adam.step)

    t0 = time.perf_counter()
    rec = invert_batch(G, batch, cfg, template=template)
    total = time.perf_counter() - t0
    n = args.images
    print(f"profile={args.profile} images={n} steps={cfg.total_steps} init={cfg.init_candidates} points={cfg.num_points} "
          f"render={cfg.render.image_size}px threads={torch.get_num_threads()} prior={info.get('file')} "
          f"features={rec.feature_extractor.split(':')[0]}")
    print(f"{'phase':<9} {'part':<34} {'ms/image':>9} {'share':>6} {'calls':>6}")
    for phase in ("init", "optimise"):
        rows = sorted(((k[1], v) for k, v in TIMES.items() if k[0] == phase), key=lambda r: -r[1])
        for part, sec in rows:
            print(f"{phase:<9} {part:<34} {1e3 * sec / n:9.1f} {sec / total:6.1%} {CALLS[(phase, part)]:6d}")
    accounted = sum(TIMES.values())
    print(f"{'':<9} {'(other: Python, indexing, cameras)':<34} {1e3 * (total - accounted) / n:9.1f} {(total - accounted) / total:6.1%}")
    print(f"{'':<9} {'total':<34} {1e3 * total / n:9.1f}")
    print(f"profile_invert_s_per_image_{args.profile}={total / n:.3f}")


def replace_cfg(cfg: InversionConfig) -> InversionConfig:
    from dataclasses import replace
    return replace(cfg, init_candidates=2, stages=cfg.stages[:1])


if __name__ == "__main__":
    main()
