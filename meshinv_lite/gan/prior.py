"""The shipped prior: the GAN generator this package trains with its own command, kept in the repository.

A first run should invert a *good* prior without waiting an hour for one, so the EMA generator of one
long pretraining run ships with the package (``meshinv_lite/priors/``, a little over 1 MB) beside a
provenance file that says how it was made and how good it is::

    python -m meshinv_lite.cli build-prior             # rebuild it from scratch (about 2.5 h on 2 CPU cores)
    python -m meshinv_lite.cli build-prior --device cuda

The recipe (:class:`PriorRecipe`) is data -> pseudo ground truth -> pretraining, the same functions the
notebooks teach, at the lite sizes (128 px texture maps, 32 px deformation maps): SynthBirds lite
(seed 0, 2,000 training images), species-mean-anchored pseudo-GT of every training image, then a GAN
schedule of 6,000 iterations of batch 16 (48 epochs; notebook 03 trains 40 iterations at quick, 600 of
batch 8 at lite) with a penalty on folded faces. Each stage is cached and resumable under
``<data_dir>/prior_<name>/``, so an interrupted rebuild continues where it stopped.

Files (``meshinv_lite/priors/<name>.pt`` and ``<name>.json``):

* the ``.pt`` holds the format tag, the recipe, the generator's config, its weights and a checksum of
  them; :func:`load_shipped_prior` refuses a file whose config or architecture no longer matches the code
  (the message names the rebuild command) or whose weights fail the checksum;
* the ``.json`` is the provenance: recipe, every stage's config, seed, data recipe, code version, wall
  time per stage, machine, and quality figures (sample statistics against the data, an inversion probe
  on validation images).

Both quick and lite use this one prior (quick renders it at 64 px); the paper profile (512 px textures)
trains its own. ``prepare_prior(..., prior="train")`` or ``pipeline --rebuild gan`` trains instead.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch

from ..io import atomic_torch_save, read_checked_artifact, read_json, state_checksum
from .checkpoint import checkpoint_config, load_generator, read_checkpoint
from .config import PretrainConfig
from .inputs import TrainingData, build_training_inputs, gan_dir
from .networks import Generator, GeneratorConfig
from .trainer import GANTrainer

PRIOR_FORMAT = "meshinv-lite-prior"


PRIOR_VERSION = 1


SHIPPED_DIR = Path(__file__).resolve().parent.parent / "priors"


REBUILD_COMMAND = "python -m meshinv_lite.cli build-prior"


class PriorError(RuntimeError):
    """A shipped prior that cannot be used: missing, damaged, or made for another version of the code."""


#: The snapshot of the shipped recipe's run that ships (see :class:`PriorRecipe`).
SHIP_ITERATION = 4000


@dataclass(frozen=True)
class PriorRecipe:
    """Everything that determines the shipped prior (with the code).

    ``category``: the procedural category it is trained on (``"birds"``, ``"cars"``; its class table sets
    the generator's number of classes);
    ``data_profile``: the SynthBirds profile whose dataset, pseudo-GT settings and network sizes are used;
    ``train_images``: training images that get pseudo ground truth (``None``: all of the split);
    ``iterations``, ``batch_size``, ``ema_decay``, ``w_smooth`` (the generator's normal-consistency weight),
    ``w_crease`` (its :func:`~meshinv_lite.losses.crease_loss` weight): the GAN schedule (other settings: the
    profile's). Without the crease term the generator learned to fold its surface (15% of neighbouring face
    pairs folded at 2,600 iterations, 0.5% for true birds); with it, 1.6% at 1,000 iterations and its EMA
    below the true birds' rate.
    ``refine_cameras``: whether the pseudo-GT corrects the annotated cameras while fitting
    (:meth:`~meshinv_lite.pseudo_gt.PseudoGTConfig.for_profile`). The bird prior was made without it, the car prior
    with it (pseudo-GT 3D Chamfer 0.080 -> 0.065 on its 1,000 training images). With the first car recipe's 4,000
    iterations alone it reconstructed no better (40 lite test cars: IoU +0.003 [-0.001, +0.007], novel PSNR -0.08
    [-0.38, +0.21] dB, 3D Chamfer +0.0007 [-0.0016, +0.0030], ``bench/prior_shapes.py``): that GAN had not finished
    leaving the sphere; see :data:`SHIPPED_CARS`.
    ``snapshot_every``: EMA generators kept along the way (for the quality-vs-iterations figure).
    ``ship_iteration``: the snapshot that ships (``None``: the last). Chosen on *val* images by
    ``bench/prior_schedule.py``: the best inversion IoU among snapshots whose samples fold at most 2.5 times
    as often as true birds. Folding creeps back late in training (samples: 0.2 % folded at 3,000
    iterations, 0.7 % at 4,000, 1.8 % at 6,000; true birds 0.34 %) while IoU peaks at 4,000 (val, quick
    schedule: 0.844, 0.876, 0.875, 0.864 at 3,000-6,000). 3,000 would pass a strict 2x but reconstructs
    visibly worse.
    """

    name: str = "synthbirds_lite"
    category: str = "birds"
    data_profile: str = "lite"
    seed: int = 0
    camera: str = "noisy"
    train_images: Optional[int] = None
    iterations: int = 6000
    batch_size: int = 16
    ema_decay: float = 0.999
    w_smooth: float = 1e-4
    w_crease: float = 1.0
    checkpoint_every: int = 200
    snapshot_every: int = 1000
    ship_iteration: Optional[int] = SHIP_ITERATION
    probe_images: int = 16
    refine_cameras: bool = False

    def __post_init__(self) -> None:
        if self.ship_iteration is not None and not (
                0 < self.ship_iteration <= self.iterations and self.snapshot_every
                and self.ship_iteration % self.snapshot_every == 0):
            raise ValueError(f"ship_iteration {self.ship_iteration} must be a snapshot: a multiple of snapshot_every "
                             f"({self.snapshot_every}) no larger than iterations ({self.iterations})")

    def pretrain_config(self):
        """The :class:`~meshinv_lite.gan.PretrainConfig` of the GAN run."""
        return PretrainConfig.for_profile(self.data_profile, num_classes=self.num_classes, iterations=self.iterations, batch_size=self.batch_size,
                                          ema_decay=self.ema_decay, w_smooth=self.w_smooth, w_crease=self.w_crease,
                                          checkpoint_every=self.checkpoint_every, seed=self.seed)

    @property
    def num_classes(self) -> int:
        from ..data.category import get_category

        return len(get_category(self.category).classes)

    def pseudo_gt_config(self):
        from ..pseudo_gt.config import PseudoGTConfig

        # the recipe the shipped prior's pseudo-GT was made with (its provenance), so that a rebuild remakes it
        return PseudoGTConfig.for_profile(self.data_profile, camera=self.camera, fit_recipe="full",
                                          refine_cameras=self.refine_cameras)

    def generator_config(self) -> GeneratorConfig:
        return self.pretrain_config().generator

    @property
    def rebuild_command(self) -> str:
        """The command that rebuilds this prior from scratch."""
        return REBUILD_COMMAND if self.category == "birds" else f"{REBUILD_COMMAND} --category {self.category}"

    def to_dict(self) -> dict:
        """The recipe as a plain dict (``refine_cameras`` left out when off: the records of priors made before it
        existed still match)."""
        d = asdict(self)
        if not d["refine_cameras"]:
            del d["refine_cameras"]
        return d


#: The recipe of the prior that ships with the package.
SHIPPED = PriorRecipe()

#: The car prior's recipe: SynthCars lite, pseudo ground truth of its first 1,000 training images (125 per body
#: type) with the cameras refined while fitting, crease weight 4, 8,000 GAN iterations, the EMA snapshot of 5,000
#: shipped (chosen on 32 val cars by the birds' rule, ``bench/prior_schedule.py --category cars``), the birds' settings
#: otherwise. Cars leave the sphere more slowly than birds (sample width 1.34 at 4,000 iterations, 1.27 at 5,000,
#: pseudo-GT 1.17), and with the birds' crease weight 1 the longer run folded (2.1 % of its samples' face pairs at
#: 6,000); weight 4 holds the folds to 0.34 % at 5,000 with the same shapes. Against the first car prior (4,000
#: iterations, weight 1, unrefined cameras), paired on 40 lite test cars: IoU +0.009 [+0.005, +0.014], novel PSNR
#: +1.28 [+0.97, +1.62] dB, 3D Chamfer -0.0067 [-0.0092, -0.0042] (``bench/prior_shapes.py``).
SHIPPED_CARS = PriorRecipe(name="synthcars_lite", category="cars", train_images=1000, iterations=8000,
                           ship_iteration=5000, w_crease=4.0, refine_cameras=True)

#: The shipped prior of each category.
SHIPPED_BY_CATEGORY: dict[str, PriorRecipe] = {"birds": SHIPPED, "cars": SHIPPED_CARS}


def shipped_recipe(category: str = "birds") -> PriorRecipe:
    """The recipe of the prior shipped for ``category`` (``"birds"`` or ``"cars"``)."""
    from ..data.category import get_category

    return SHIPPED_BY_CATEGORY[get_category(category).name]


def shipped_paths(recipe: PriorRecipe = SHIPPED, directory: Optional[str | Path] = None) -> tuple[Path, Path]:
    """``(<dir>/<name>.pt, <dir>/<name>.json)``; ``directory`` defaults to ``meshinv_lite/priors``."""
    d = Path(directory) if directory is not None else SHIPPED_DIR
    return d / f"{recipe.name}.pt", d / f"{recipe.name}.json"


def build_dir(data_dir: str | Path, recipe: PriorRecipe = SHIPPED) -> Path:
    """Where a rebuild keeps its dataset, pseudo-GT and checkpoints: ``<data_dir>/prior_<name>``."""
    return Path(data_dir) / f"prior_{recipe.name}"


def save_prior(path: str | Path, generator: Generator, recipe: PriorRecipe, iteration: int) -> Path:
    """Write a generator as a shipped-prior file (atomically)."""
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    atomic_torch_save({
        "format": PRIOR_FORMAT, "version": PRIOR_VERSION, "recipe": recipe.to_dict(),
        "generator_config": generator.config.to_dict(), "iteration": int(iteration),
        "state_dict": state, "checksum": state_checksum(state),
    }, path)
    return Path(path)


def _rebuild_hint(recipe: PriorRecipe) -> str:
    return (f"rebuild it with `{recipe.rebuild_command}` (see meshinv_lite/gan/prior.py; about 2.5 h on 2 CPU cores), "
            "or train a prior of your own with prior='train'")


def load_shipped_prior(device: str | torch.device = "cpu", path: Optional[str | Path] = None,
                       recipe: PriorRecipe = SHIPPED) -> tuple[Generator, dict]:
    """The shipped EMA generator (eval mode, on ``device``) and its provenance (``{}`` if the JSON is absent).

    The file is read with ``weights_only=True``: nothing in it runs (a crafted ``path`` is refused). Refuses,
    with :class:`PriorError` naming the rebuild command: a missing or unreadable file, another format or version, a generator config that differs from what the code's recipe builds, weights that
    do not fit the code's architecture, and weights whose checksum does not match.
    """
    pt, js = shipped_paths(recipe) if path is None else (Path(path), Path(path).with_suffix(".json"))
    hint = _rebuild_hint(recipe)
    state = read_checked_artifact(pt, fmt=PRIOR_FORMAT, version=PRIOR_VERSION, kind="prior",
                                  config_key="generator_config", want_config=recipe.generator_config().to_dict(),
                                  config_noun="generator configuration", error=PriorError, hint=hint,
                                  name="shipped prior")
    have, weights = state["generator_config"], state["state_dict"]
    G = Generator(GeneratorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in have.items()}))
    try:
        G.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise PriorError(f"{pt} does not fit the generator this code builds ({first}): the architecture changed "
                         f"since it was built; {hint}") from None
    info = read_json(js) if js.exists() else {}
    info.setdefault("file", str(pt))
    info.setdefault("iteration", state.get("iteration"))
    return G.to(device).eval(), info


PRIOR_CHOICES = ("shipped", "train")


def default_prior(profile: str) -> str:
    """``"shipped"`` where the shipped prior's sizes serve the profile (quick, lite), else ``"train"``."""
    from ..config import get_profile

    return "shipped" if get_profile(profile).name in ("quick", "lite") else "train"


def prepare_prior(
    data_dir,
    profile: str = "quick",
    camera: str = "noisy",
    device: str | torch.device = "cpu",
    seed: int = 0,
    image_discriminator: bool = True,
    progress: bool = True,
    prior: Optional[str] = None,
    train_images: Optional[int] = None,
    category: str = "birds",
) -> tuple[Generator, PretrainConfig, Path]:
    """The generator notebooks 04-06 invert, in eval mode: ``(generator, its config, file it came from)``.

    ``category``: ``"birds"`` (SynthBirds) or ``"cars"`` (SynthCars): which shipped prior
    (:func:`shipped_recipe`), or which dataset a trained one learns from (its number of classes is the
    category's).

    ``prior="shipped"`` (the default at quick and lite): the prior that ships with the package
    (:mod:`meshinv_lite.gan.prior`), trained by ``python -m meshinv_lite.cli build-prior`` with a schedule far
    longer than a notebook can afford; nothing is built. ``prior="train"`` (the default at paper, and
    what ``image_discriminator=False`` implies): the profile's own GAN of notebook 03, trained here if its
    checkpoint is missing or unfinished; SynthBirds and the training pseudo ground truth are built first
    when absent, so notebooks after 03 run standalone (``train_images`` of them get pseudo ground truth,
    ``None``: the profile's default).
    """
    from ..config import check_device, get_profile
    from ..data.category import get_category
    from ..data.synthbirds import synthbirds_dir

    device = check_device(device)
    prof = get_profile(profile)
    cat = get_category(category)
    prior = prior or (default_prior(prof.name) if image_discriminator else "train")
    if prior not in PRIOR_CHOICES:
        raise ValueError(f"prior must be one of {PRIOR_CHOICES}, got {prior!r}")
    if prior == "shipped":
        recipe = shipped_recipe(cat.name)
        G, _ = load_shipped_prior(device=device, recipe=recipe)
        return G, recipe.pretrain_config(), shipped_paths(recipe)[0]
    root = synthbirds_dir(data_dir, prof.name, cat)
    ckpt = gan_dir(root, camera, image_discriminator) / "latest.pt"
    cfg = PretrainConfig.for_profile(prof.name, num_classes=len(cat.classes), image_discriminator=image_discriminator,
                                     seed=seed)
    done = False
    if ckpt.exists():
        state = read_checkpoint(ckpt)
        done = int(state["iteration"]) >= checkpoint_config(state, ckpt).iterations
    if not done:
        build_training_inputs(root, prof.name, camera, device=device, seed=seed, progress=progress,
                              train_images=train_images, category=cat.name)
        trainer = GANTrainer(cfg, TrainingData.from_dataset(root, "train", camera), device=device, checkpoint_dir=ckpt.parent)
        trainer.train(progress=progress)
    G, cfg = load_generator(ckpt, device=device)
    return G, cfg, ckpt
