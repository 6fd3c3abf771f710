"""The one-command rebuild of the shipped prior: data -> pseudo-GT -> GAN -> quality figures -> files.

``python -m meshinv_lite.cli build-prior`` runs :func:`build_prior` with :data:`meshinv_lite.gan.prior.SHIPPED`.
It sits above the stages because its quality check inverts images (:mod:`meshinv_lite.evaluation.probe`).
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Optional

import torch

from .evaluation.probe import inversion_probe
from .gan.inputs import TrainingData, gan_dir
from .gan.prior import SHIPPED, PriorRecipe, build_dir, load_shipped_prior, save_prior, shipped_paths
from .gan.quality import sample_quality, shape_plausibility
from .gan.trainer import GANTrainer
from .io import read_json, write_json
from .provenance import code_version


def build_prior(
    data_dir: str | Path = "data",
    recipe: PriorRecipe = SHIPPED,
    device: str | torch.device = "cpu",
    out_dir: Optional[str | Path] = None,
    progress: bool = True,
    iterations: Optional[int] = None,
) -> dict:
    """Make the shipped prior from scratch (or continue an interrupted build): data, pseudo-GT, GAN, files.

    Writes ``<out_dir>/<name>.pt`` and ``.json`` (``out_dir`` defaults to ``meshinv_lite/priors``) and
    returns the provenance. ``iterations`` stops the GAN early (a test or a dry run; the provenance
    records it and the file is then not the recipe's).
    """
    from .config import check_device
    from .data.category import get_category
    from .data.synthbirds import build_dataset, synthbirds_dir
    from .pseudo_gt.build import build_pseudo_gt
    from .pseudo_gt.quality import evaluate_pseudo_gt

    device = check_device(device)
    work = build_dir(data_dir, recipe)
    category = get_category(recipe.category)
    root = synthbirds_dir(work, recipe.data_profile, category)
    times: dict[str, float] = {}
    say = print if progress else (lambda *a, **k: None)

    t0 = time.perf_counter()
    build_dataset(root, category, profile=recipe.data_profile, seed=recipe.seed, progress=progress)
    times["data_seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pgt_cfg = recipe.pseudo_gt_config()
    pgt = build_pseudo_gt(root, "train", pgt_cfg, device=device, limit=recipe.train_images, seed=recipe.seed,
                          progress=progress)
    times["pseudo_gt_seconds"] = time.perf_counter() - t0

    cfg = recipe.pretrain_config()
    ckpt_dir = gan_dir(root, recipe.camera)
    snapshots = ckpt_dir / "snapshots"
    trainer = GANTrainer(cfg, TrainingData.from_dataset(root, "train", recipe.camera), device=device,
                         checkpoint_dir=ckpt_dir)

    def keep_snapshot(it: int, terms: dict) -> None:
        if recipe.snapshot_every and it % recipe.snapshot_every == 0:
            save_prior(snapshots / f"G_ema_{it:06d}.pt", trainer.G_ema, recipe, it)

    trainer.train(iterations=iterations, callback=keep_snapshot, progress=progress)
    G = trainer.G_ema.eval()
    shipped_iteration = trainer.iteration
    if recipe.ship_iteration is not None and trainer.iteration >= recipe.ship_iteration:
        G, _ = load_shipped_prior(device=device, path=snapshots / f"G_ema_{recipe.ship_iteration:06d}.pt", recipe=recipe)
        shipped_iteration = recipe.ship_iteration
        say(f"shipping the EMA snapshot of iteration {shipped_iteration} (recipe.ship_iteration)", flush=True)

    say("quality figures ...", flush=True)
    t0 = time.perf_counter()
    data = TrainingData.from_dataset(root, "train", recipe.camera)
    quality = {
        "samples_vs_data": sample_quality(G, data, cfg.render, num_samples=64, seed=recipe.seed),
        "shapes": shape_plausibility(G, root, "train", seed=recipe.seed),
        "inversion_probe_val": inversion_probe(G, root, "val", recipe.probe_images, recipe.data_profile,
                                               seed=recipe.seed, camera=recipe.camera, progress=progress),
        "pseudo_gt_train_first_200": evaluate_pseudo_gt(root, "train", recipe.camera, limit=200),
    }
    times["quality_seconds"] = time.perf_counter() - t0

    pt, js = shipped_paths(recipe, out_dir)
    save_prior(pt, G, recipe, shipped_iteration)
    times["pseudo_gt_seconds"] = read_json(Path(pgt["path"]) / "meta.json").get("seconds", times["pseudo_gt_seconds"])
    times["gan_seconds"] = trainer.train_seconds
    provenance = {
        "name": recipe.name,
        "file": pt.name,
        "rebuild_command": recipe.rebuild_command,
        "recipe": recipe.to_dict(),
        "complete": trainer.iteration >= recipe.iterations,
        "iterations": trainer.iteration,
        "shipped_iteration": shipped_iteration,
        "seed": recipe.seed,
        "data_recipe": {"generator": category.generator, "profile": recipe.data_profile, "seed": recipe.seed,
                        "train_images_used": pgt["num_images"], "camera": recipe.camera,
                        "dataset_meta": read_json(root / "meta.json")},
        "pseudo_gt_config": pgt_cfg.to_dict(),
        "pretrain_config": cfg.to_dict(),
        "generator_parameters": sum(p.numel() for p in G.parameters()),
        "file_bytes": pt.stat().st_size,
        "code_version": code_version(),
        "machine": {"device": str(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "platform": platform.platform()},
        "wall_time": {**times, "gan_seconds_per_iteration": trainer.train_seconds / max(trainer.iteration, 1),
                      "total_hours": (times["data_seconds"] + times["pseudo_gt_seconds"] + trainer.train_seconds
                                      + times["quality_seconds"]) / 3600},
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quality": quality,
        "loss_history_tail": {k: v[-1] for k, v in trainer.history.items() if v},
    }
    write_json(js, provenance)
    say(f"shipped prior: {pt} ({provenance['file_bytes'] / 1e6:.2f} MB), provenance: {js}", flush=True)
    return provenance
