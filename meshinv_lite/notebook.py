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


@dataclass
class InversionInputs:
    """What notebooks 04-06 invert, and which images (see :func:`inversion_inputs`).

    ``generator``: the prior in eval mode (this package's :class:`~meshinv_lite.gan.Generator`, or an imported
    authors' :class:`~meshinv_lite.gan.ConvMeshGenerator`); ``template``: the mesh its maps belong to
    (``generator.template()``: the 31 x 32 UV sphere, or the authors' own); ``file``: where the generator came from;
    ``pretrain_config``: its :class:`~meshinv_lite.gan.PretrainConfig` (``None`` for imported weights);
    ``root``: the dataset folder; ``splits``: the splits it holds; ``has_ground_truth``: whether its ``test``
    split carries 3D ground truth (SynthBirds / SynthCars: yes; a converted CUB: no); ``source`` / ``dataset_name``:
    both in words, for titles and tables; ``objects``: what the images show, in words (``"synthetic birds"``,
    ``"real photos"``), for the results table's note; ``has_encoder``: whether the shipped image encoder (the
    regression baselines) fits this generator and data (SynthBirds with this package's bird prior only);
    ``trained_on``: the dataset this package's prior was trained on (the category's), for :meth:`describe_prior`.
    """

    generator: Any
    template: Any
    file: Path
    pretrain_config: Any
    root: Path
    splits: tuple
    has_ground_truth: bool
    source: str
    dataset_name: str
    objects: str = "synthetic birds"
    has_encoder: bool = False
    trained_on: str = "SynthBirds"

    def skip(self, what: str, needs: str = "ground truth") -> bool:
        """``True`` (after printing what is skipped and why) when the run lacks ``needs``: ``"ground truth"``,
        ``"encoder"`` (the shipped SynthBirds encoder, see :attr:`has_encoder`) or a split name; ``False`` when the
        cell can run."""
        if needs == "ground truth":
            missing, why = not self.has_ground_truth, "no 3D ground truth (true shapes, textures and cameras)"
            print_needs = needs
        elif needs == "encoder":
            missing = not self.has_encoder
            why = ("no encoder for it: the shipped encoder was trained on SynthBirds to predict the codes of this "
                   "package's bird prior, and this run inverts " + self.source)
            print_needs = "the shipped image encoder"
        else:
            missing, why = needs not in self.splits, f"no '{needs}' split (only {', '.join(self.splits)})"
            print_needs = needs
        if missing:
            print(f"skipped: {what}: it needs {print_needs}, and {self.dataset_name} ({self.root}) has {why}")
        return missing

    def available(self, splits, what: str = "the evaluation") -> tuple:
        """The names among ``splits`` that the dataset holds, in order; each missing one is reported by
        :meth:`skip` (``"skipped: <what> of <split>: ..."``)."""
        return tuple(s for s in splits if not self.skip(f"{what} of {s}", needs=s))

    def describe_prior(self) -> str:
        """The generator in words for a notebook's text: a shipped prior with its recipe (iterations, batch, data,
        the snapshot that ships) from the provenance file beside it, else :attr:`source`."""
        from .io import read_json

        name = Path(self.file).name
        if self.pretrain_config is None:          # imported weights: their own provenance says other things
            return self.source
        provenance = Path(self.file).with_suffix(".json")
        recipe = read_json(provenance).get("recipe", {}) if provenance.exists() else {}
        it, ship = recipe.get("iterations"), recipe.get("ship_iteration")
        if not isinstance(it, int) or not isinstance(ship, int):
            return f"the prior `{name}` (no provenance file)"
        return (f"the shipped prior `{name}`: {it:,} iterations of batch {recipe.get('batch_size', '?')} on "
                f"{self.trained_on} {recipe.get('data_profile', '?')}, the snapshot at {ship:,} ships")


def inversion_inputs(run: NotebookRun, camera: str = "noisy", prior: Optional[str] = None,
                     weights: Optional[str | Path] = None, dataset: Optional[str | Path] = None,
                     progress: bool = True) -> InversionInputs:
    """The generator and dataset of notebooks 04-06, from their parameters.

    ``weights``: an imported authors' generator (the ``.pt`` of ``python -m meshinv_lite.cli import-weights``, read by
    :func:`~meshinv_lite.gan.load_imported_generator`) instead of ``prior``; ``None``: :func:`~meshinv_lite.gan.prepare_prior`
    for the run's category (``prior``: ``"shipped"``/``"train"``/``None``). ``dataset``: a converted dataset folder (e.g.
    CUB from ``data_scripts/prepare_cub.py``, read as ``cli evaluate --dataset`` reads it) instead of the category's
    SynthBirds / SynthCars under ``run.data_dir`` (built when missing). A dataset without a ``test`` split is refused
    (``FileNotFoundError`` naming what it has).
    """
    from .data.dataset import list_splits, read_split
    from .data.synthbirds import build_dataset, synthbirds_dir

    cat, prof = run.category, run.profile
    if weights is not None:
        from .gan.imported import load_imported_generator

        G, info = load_imported_generator(weights, device=run.device)
        file, pcfg = Path(weights), None
        source = f"the authors' generator imported from {info.get('source', {}).get('entry', Path(weights).name)}"
    else:
        from .gan.prior import prepare_prior

        G, pcfg, file = prepare_prior(run.data_dir, prof.name, camera, device=run.device, seed=run.seed, prior=prior,
                                      category=cat.name, progress=progress)
        source = f"the prior {file.name}"
    if dataset is not None:
        root = Path(dataset)
        name = "the dataset"
    else:
        root = synthbirds_dir(run.data_dir, prof.name, cat)
        build_dataset(root, cat, profile=prof.name, seed=run.seed, progress=False)   # a no-op when built
        name = cat.dataset_name
    splits = tuple(list_splits(root))
    if "test" not in splits:
        raise FileNotFoundError(f"{root} has no 'test' split (it has {', '.join(splits) or 'none'}): pass a dataset "
                                "folder made by data_scripts/prepare_cub.py or make_synthbirds.py")
    meta = read_split(root, "test", check_files=False).meta
    has_gt = bool(meta.get("has_ground_truth", True))
    if weights is not None:  # imported weights deform their own mesh: not comparable with our 3D ground truth
        from .evaluation.evaluate import check_template_fits_ground_truth

        check_template_fits_ground_truth(G.template(), has_gt, root)
    if dataset is not None:
        gen = str(meta.get("generator") or root.name)
        name = {"cub": "CUB (converted)"}.get(gen, gen)
    if weights is not None:
        run.metrics["weights"] = str(file)
    if dataset is not None:
        run.metrics.update(dataset=str(root), dataset_name=name, has_ground_truth=has_gt)
    objects = f"synthetic {cat.plural}" if has_gt else "real photos"
    # the encoder predicts the codes of this package's bird prior from SynthBirds-like images
    from .data.category import category_of

    encoder = cat.has_encoder and weights is None and has_gt and category_of(root).name == cat.name
    return InversionInputs(G, G.template(run.device), file, pcfg, root, splits, has_gt, source, name, objects, encoder,
                           cat.dataset_name)
