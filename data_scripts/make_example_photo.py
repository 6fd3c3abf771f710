#!/usr/bin/env python
"""Write the bundled "your own photo" example: one SynthBirds bird as a plain 500 x 375 photo and its mask.

    python data_scripts/make_example_photo.py            # -> notebooks/examples/bird.png, bird_mask.png

The photo is what a learner would bring: an RGB PNG of CUB-200's usual size and aspect with the bird off
centre and no camera. ``bird_truth.json`` beside it keeps the species and viewpoint it was rendered with,
for checking the estimate; the method never reads it. Deterministic for ``--seed`` and ``--species``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from meshinv_lite.data import SPECIES_NAMES
from meshinv_lite.data import SynthBirdsConfig, generate_batch

WIDTH, HEIGHT = 500, 375


def make_example(out_dir: Path, species: int = 4, seed: int = 3) -> dict:
    cfg = SynthBirdsConfig.for_profile("lite", image_size=WIDTH, texture_size=256, fill_range=(0.52, 0.56),
                                       max_offset=0.08)
    g = torch.Generator().manual_seed(seed)
    b = generate_batch(torch.tensor([species]), g, cfg)
    top = (WIDTH - HEIGHT) // 2
    img = b.images[0, :, top:top + HEIGHT]
    mask = b.masks[0, 0, top:top + HEIGHT]
    if mask[0].any() or mask[-1].any():
        raise RuntimeError("the bird leaves the 375-row frame; try another seed")
    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(out_dir / "bird.png")
    Image.fromarray((mask.numpy() > 0.5).astype(np.uint8) * 255).save(out_dir / "bird_mask.png")
    truth = {"species": SPECIES_NAMES[species], "class_id": species, "azimuth": float(b.azimuth[0]),
             "elevation": float(b.elevation[0]), "seed": seed, "size": [WIDTH, HEIGHT],
             "made_by": "python data_scripts/make_example_photo.py"}
    (out_dir / "bird_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="notebooks/examples")
    p.add_argument("--species", type=int, default=4)
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args(argv)
    print(make_example(Path(a.out), a.species, a.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
