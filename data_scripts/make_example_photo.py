#!/usr/bin/env python
"""Write the bundled "your own photo" example: one SynthBirds bird as a plain 500 x 375 photo and its mask.

    python data_scripts/make_example_photo.py                    # -> notebooks/examples/bird.png, bird_mask.png
    python data_scripts/make_example_photo.py --category cars    # -> notebooks/examples/car.png, car_mask.png

The photo is what a learner would bring: an RGB PNG of CUB-200's usual size and aspect with the bird off
centre and no camera. ``bird_truth.json`` beside it keeps the species and viewpoint it was rendered with,
for checking the estimate; the method never reads it. Deterministic for ``--seed`` and ``--species``.
The car example is made the same way from SynthCars (a sedan by default: ``car.png``, ``car_mask.png``,
``car_truth.json``); notebook 07 picks the example of its ``category``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from meshinv_lite.config import CATEGORY_NAMES
from meshinv_lite.data import SPECIES_NAMES
from meshinv_lite.data import SynthBirdsConfig, generate_batch, get_category

WIDTH, HEIGHT = 500, 375


#: The default (class, seed) of each category's example (the bird: a robin).
DEFAULTS = {"birds": (4, 3), "cars": (0, 1)}


def make_example(out_dir: Path, species: int | None = None, seed: int | None = None, category: str = "birds") -> dict:
    """Render the example of ``category`` into ``out_dir`` (``<example>.png``, ``_mask.png``, ``_truth.json``)."""
    cat = get_category(category)
    species = DEFAULTS[cat.name][0] if species is None else species
    seed = DEFAULTS[cat.name][1] if seed is None else seed
    if cat.name == "birds":   # (the original recipe: birds' files stay byte-identical)
        cfg = SynthBirdsConfig.for_profile("lite", image_size=WIDTH, texture_size=256, fill_range=(0.52, 0.56),
                                           max_offset=0.08)
    else:
        cfg = cat.config("lite", image_size=WIDTH, texture_size=256, fill_range=(0.52, 0.56), max_offset=0.08)
    g = torch.Generator().manual_seed(seed)
    b = generate_batch(torch.tensor([species]), g, cfg, category=cat)
    top = (WIDTH - HEIGHT) // 2
    img = b.images[0, :, top:top + HEIGHT]
    mask = b.masks[0, 0, top:top + HEIGHT]
    if mask[0].any() or mask[-1].any():
        raise RuntimeError(f"the {cat.word} leaves the 375-row frame; try another seed")
    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(out_dir / f"{cat.example}.png")
    Image.fromarray((mask.numpy() > 0.5).astype(np.uint8) * 255).save(out_dir / f"{cat.example}_mask.png")
    names = SPECIES_NAMES if cat.name == "birds" else cat.class_names
    truth = {"species": names[species], "class_id": species, "azimuth": float(b.azimuth[0]),
             "elevation": float(b.elevation[0]), "seed": seed, "size": [WIDTH, HEIGHT],
             "made_by": "python data_scripts/make_example_photo.py"
                        + ("" if cat.name == "birds" else f" --category {cat.name}")}
    (out_dir / f"{cat.example}_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="notebooks/examples")
    p.add_argument("--category", default="birds", choices=CATEGORY_NAMES)
    p.add_argument("--species", type=int, default=None, help="class index (default: birds 4, the robin; cars 0, a sedan)")
    p.add_argument("--seed", type=int, default=None, help="default: birds 3, cars 1")
    a = p.parse_args(argv)
    print(make_example(Path(a.out), a.species, a.seed, a.category))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
