"""The first cell of every notebook, as one call: check the parameters, set threads and seed, make the output folder.

Each notebook starts with a papermill ``parameters`` cell, then::

    from meshinv_lite.notebook import start
    run = start(globals())          # names a wrong parameter here, not in a later cell
    prof, out, metrics = run.profile, run.out, run.metrics

and ends with ``run.save_metrics()``, which writes ``metrics.json`` (the figures the pipeline summarizes and the
notebook tests read). Relative ``data_dir`` / ``output_dir`` mean the project root's folders wherever the
notebook runs (JupyterLab starts kernels in ``notebooks/``; see :mod:`meshinv_lite.paths`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from .config import Profile, get_profile, set_threads
from .data.category import BIRDS, Category, get_category
from .io import write_metrics
from .params import check_parameters


@dataclass
class NotebookRun:
    """What a notebook's setup cell gives the cells after it."""

    params: dict                 # the checked parameters (path parameters absolute)
    profile: Profile
    device: str
    seed: int
    threads: int                 # torch CPU threads in effect
    out: Path                    # this notebook's output folder (made)
    data_dir: Optional[Path]     # the data root (None for a notebook without one)
    metrics: dict = field(default_factory=dict)   # key figures, written by :meth:`save_metrics`
    category: Category = BIRDS   # the procedural category (parameter ``category``; birds without one)

    def save_metrics(self) -> Path:
        """Write :attr:`metrics` to ``out/metrics.json`` (merged with what is there); returns the path."""
        return write_metrics(self.out, self.metrics)


def start(values: Mapping[str, Any], seed_torch: bool = True) -> NotebookRun:
    """Set a notebook up from its parameters (its ``globals()``).

    Validates every known parameter (:func:`meshinv_lite.params.check_parameters`), sets torch's threads
    (``threads``; ``None``: the measured default of :func:`meshinv_lite.config.set_threads`) and, with
    ``seed_torch``, torch's global seed; makes ``output_dir``. ``metrics`` starts with the profile, device
    and seed, and the category (``category``: ``"birds"`` or ``"cars"``) for a notebook that has that
    parameter. Prints one line saying what runs where.
    """
    p = check_parameters(values, verbose=False)
    prof = get_profile(p.get("profile", "quick"))
    device = p.get("device", "cpu")
    seed = int(p.get("seed", 0))
    threads = set_threads(p.get("threads"))
    if seed_torch:
        import torch

        torch.manual_seed(seed)
    if "output_dir" not in p:
        raise ValueError("a notebook's parameters cell must define output_dir")
    out = Path(p["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(p["data_dir"]) if p.get("data_dir") is not None else None
    category = get_category(p.get("category", BIRDS.name))
    metrics = {"profile": prof.name, "device": device, "seed": seed}
    if "category" in p:
        metrics["category"] = category.name
    print(f"profile {prof.name} ({prof.render_size} px renders) · {device} · {threads} torch thread(s) · seed {seed}"
          + (f" · {category.dataset_name} ({category.plural})" if "category" in p else ""))
    print(f"outputs: {out}" + (f"  |  data: {data_dir}" if data_dir is not None else ""))
    return NotebookRun(params=p, profile=prof, device=device, seed=seed, threads=threads, out=out, data_dir=data_dir,
                       metrics=metrics, category=category)
