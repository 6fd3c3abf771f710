"""In-domain feature networks: small CNNs trained on SynthBirds, for a loss and, separately, for metrics.

ImageNet VGG-19 weights cannot be downloaded here, and a *randomly initialised* VGG is not the feature
space the method's feature-level Chamfer loss assumes. SynthBirds gives dense supervision for free, so we
train our own features on its training images (DESIGN.md section 12):

* **where on the bird** a pixel lies: its template UV coordinate, as ``(cos 2 pi u, sin 2 pi u, 2 v - 1)``
  (``u`` wraps around the sphere);
* **which way the surface faces**: the camera-space normal;
* **what it looks like**: the mean colour and the colour spread of the bird in each feature cell;
* **which species** it is: a classifier on the mask-averaged features.

The network (:class:`DomainFeatureNet`) has the VGG-19 ``relu3_1`` contract: images ``(B, 3, H, W)`` in
``[0, 1]`` in, unit-length features ``(B, C, H / 4, W / 4)`` out, so it drops into the feature Chamfer
loss, and it costs about an eighth of VGG's forward pass. Two recipes ship (:data:`LOSS_NET`, :data:`METRIC_NET`):

* ``synthbirds_features``: the features inversion's loss uses, labelled
  ``"in-domain features (SynthBirds-trained)"``;
* ``synthbirds_eval``: another seed, other widths, more white backgrounds (the evaluation protocol renders
  on white), used **only** by metrics ("FD in-domain", perceptual distance): the loss never sees it.

Both live in ``meshinv_lite/priors/<name>.pt`` with a provenance ``<name>.json`` beside them and are rebuilt by::

    python -m meshinv_lite.cli build-features          # both networks, about 15 min on 2 CPU cores

Training is cached and resumable under ``<data_dir>/features_<name>/`` (atomic checkpoints). Loading checks
the format, the architecture config and a checksum of the weights, and names the rebuild command on a
mismatch (:class:`FeatureNetError`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..io import atomic_torch_save, read_checked_artifact, state_checksum
from .base import ExtractorKind, FeatureExtractor, check_feature_images
from .vgg import _build_vgg19, _resolve_vgg19, fallback_vgg19, vgg19_hub_path

FEATURES_FORMAT = "meshinv-lite-feature-net"


FEATURES_VERSION = 1


SHIPPED_DIR = Path(__file__).resolve().parent.parent / "priors"


REBUILD_COMMAND = "python -m meshinv_lite.cli build-features"


LOSS_LABEL = "in-domain features (SynthBirds-trained)"


METRIC_LABEL = "in-domain evaluation features (SynthBirds-trained, never used by a loss)"


#: Dense target channels: UV (3), normal (3), colour mean (3), colour spread (3).
TARGET_CHANNELS = {"uv": 3, "normal": 3, "colour": 3, "spread": 3}


class FeatureNetError(RuntimeError):
    """A feature-network file that cannot be used: missing, damaged, or made for another version of the code."""


@dataclass(frozen=True)
class DomainNetConfig:
    """Architecture: one 3x3 convolution at full resolution (``widths[0]``), a stride-2 convolution and
    ``depth`` more at 1/2 (``widths[1]``), a stride-2 convolution and ``depth`` more at 1/4 (``widths[2]``).
    ReLU after each, no normalisation layers. Receptive field 29 px with ``depth=1``-``2``."""

    widths: tuple[int, int, int] = (24, 48, 64)
    depth: int = 1
    num_classes: int = 12

    def to_dict(self) -> dict:
        return asdict(self)


class DomainFeatureNet(FeatureExtractor):
    """A SynthBirds-trained CNN with the feature-extractor contract.

    ``forward(images (B, 3, H, W) in [0, 1]) -> (B, C, ceil(H / 4), ceil(W / 4))`` unit-length features
    (``C = widths[2]``). The training heads (:attr:`dense_head`, :attr:`class_head`) are kept in the file
    but are not part of ``forward``.
    """

    def __init__(self, config: DomainNetConfig = DomainNetConfig(), name: str = "in-domain features (untrained)",
                 is_fallback: bool = False):
        super().__init__(name, is_fallback, out_channels=config.widths[2], stride=4)
        self.config = config
        w0, w1, w2 = config.widths
        layers: list[nn.Module] = [nn.Conv2d(3, w0, 3, padding=1), nn.ReLU()]
        for cin, cout in ((w0, w1), (w1, w2)):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
            for _ in range(config.depth):
                layers += [nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.dense_head = nn.Conv2d(w2, sum(TARGET_CHANNELS.values()), 1)
        self.class_head = nn.Linear(w2, config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_feature_images(images)
        return F.normalize(self.body(images * 2 - 1), dim=1, eps=1e-10)

    def heads(self, features: torch.Tensor, cell_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training heads: dense targets ``(B, 12, h, w)`` and species logits ``(B, K)`` from the
        mask-averaged features (``cell_mask`` ``(B, 1, h, w)`` in [0, 1])."""
        pooled = (features * cell_mask).sum((2, 3)) / cell_mask.sum((2, 3)).clamp_min(1.0)
        return self.dense_head(features), self.class_head(pooled)


@dataclass(frozen=True)
class FeatureNetRecipe:
    """How one shipped feature network is made: data, architecture, objective, schedule, seed.

    ``backgrounds``: probabilities of showing the bird on black (masked, as the feature loss sees it), on
    white (as the evaluation protocol renders) and on the photo's own background.
    ``weights``: loss weights of the species, UV, normal, colour and colour-spread targets.
    """

    name: str
    role: str  # "loss" or "metric"
    seed: int
    net: DomainNetConfig = field(default_factory=DomainNetConfig)
    category: str = "birds"
    dataset_profile: str = "lite"
    dataset_seed: int = 0
    image_size: int = 64
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    backgrounds: tuple[float, float, float] = (0.5, 0.2, 0.3)
    weights: tuple[float, float, float, float, float] = (0.5, 1.0, 1.0, 2.0, 2.0)
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if self.role not in ("loss", "metric"):
            raise ValueError(f"role must be 'loss' or 'metric', got {self.role!r}")

    @property
    def label(self) -> str:
        from ..data.category import get_category

        label = LOSS_LABEL if self.role == "loss" else METRIC_LABEL
        return label.replace("SynthBirds", get_category(self.category).dataset_name)

    def to_dict(self) -> dict:
        return asdict(self)


LOSS_NET = FeatureNetRecipe(name="synthbirds_features", role="loss", seed=0)


METRIC_NET = FeatureNetRecipe(name="synthbirds_eval", role="metric", seed=1,
                              net=DomainNetConfig(widths=(32, 48, 64), depth=1), backgrounds=(0.3, 0.5, 0.2))


#: The cars' pair (SynthCars lite, 8 body types), made the same way: ``build-features --category cars``.
CAR_LOSS_NET = replace(LOSS_NET, name="synthcars_features", category="cars", net=replace(LOSS_NET.net, num_classes=8))


CAR_METRIC_NET = replace(METRIC_NET, name="synthcars_eval", category="cars", net=replace(METRIC_NET.net, num_classes=8))


RECIPES = {r.name: r for r in (LOSS_NET, METRIC_NET, CAR_LOSS_NET, CAR_METRIC_NET)}

#: The (loss, metric) feature networks of each category.
BY_CATEGORY: dict[str, tuple[FeatureNetRecipe, FeatureNetRecipe]] = {
    "birds": (LOSS_NET, METRIC_NET), "cars": (CAR_LOSS_NET, CAR_METRIC_NET)}


def shipped_paths(recipe: FeatureNetRecipe, directory: Optional[str | Path] = None) -> tuple[Path, Path]:
    """``(<dir>/<name>.pt, <dir>/<name>.json)`` (default dir: ``meshinv_lite/priors``)."""
    d = Path(directory) if directory is not None else SHIPPED_DIR
    return d / f"{recipe.name}.pt", d / f"{recipe.name}.json"


def save_feature_net(path: str | Path, net: DomainFeatureNet, recipe: FeatureNetRecipe, step: int) -> Path:
    """Write a trained network (weights and heads, its recipe and a checksum) atomically."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    atomic_torch_save({"format": FEATURES_FORMAT, "version": FEATURES_VERSION, "recipe": recipe.to_dict(),
                       "net_config": recipe.net.to_dict(), "step": int(step), "state_dict": state,
                       "checksum": state_checksum(state)}, path)
    return Path(path)


def rebuild_command(recipe: FeatureNetRecipe) -> str:
    """The command that rebuilds ``recipe``'s network."""
    return REBUILD_COMMAND if recipe.category == "birds" else f"{REBUILD_COMMAND} --category {recipe.category}"


def _hint(recipe: FeatureNetRecipe) -> str:
    return f"rebuild it with `{rebuild_command(recipe)}` (about 15 min on 2 CPU cores)"


def load_feature_net(recipe: FeatureNetRecipe = LOSS_NET, path: Optional[str | Path] = None,
                     device: str | torch.device = "cpu") -> DomainFeatureNet:
    """A shipped (or given) feature network, frozen, on ``device``, named with its label and file.

    Raises :class:`FeatureNetError` naming the rebuild command for a missing or unreadable file, another
    format or version, an architecture config that differs from the recipe's, or a failed checksum.
    """
    pt = shipped_paths(recipe)[0] if path is None else Path(path)
    hint = _hint(recipe)
    state = read_checked_artifact(pt, fmt=FEATURES_FORMAT, version=FEATURES_VERSION, kind="feature network",
                                  config_key="net_config", want_config=recipe.net.to_dict(), config_noun="architecture",
                                  error=FeatureNetError, hint=hint)
    weights = state["state_dict"]
    net = DomainFeatureNet(recipe.net, name=f"{recipe.label}: {recipe.name}")
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise FeatureNetError(f"{pt} does not fit the network this code builds ({first}); {hint}") from None
    return net.freeze().to(device)


def _resolve_shipped(recipe: FeatureNetRecipe):
    def resolve(weights, allow_fallback: bool) -> Optional[Path]:
        path = Path(weights).expanduser() if weights is not None else shipped_paths(recipe)[0]
        if path.is_file():
            return path
        if weights is not None or not allow_fallback:
            raise FileNotFoundError(f"no {recipe.label} at {path}; {_hint(recipe)}")
        import warnings

        warnings.warn(f"no {recipe.label} at {path} ({_hint(recipe)}); using the OFFLINE FALLBACK "
                      "(fixed random VGG-shaped network)", stacklevel=5)
        return None
    return resolve


def _build_shipped(recipe: FeatureNetRecipe):
    def build(source: Optional[Path]) -> FeatureExtractor:
        if source is None:
            if recipe.role == "metric":  # a metric never silently changes its network
                raise FeatureNetError(f"no {recipe.label}; {_hint(recipe)}")
            return fallback_vgg19(reason=f"the in-domain network {shipped_paths(recipe)[0]} is missing")
        return load_feature_net(recipe, source)
    return build


def _resolve_auto(weights, allow_fallback: bool) -> Optional[Path]:
    """Real VGG-19 weights (an explicit file, else the hub cache) first, then the shipped in-domain network."""
    if weights is not None or vgg19_hub_path().is_file():
        return _resolve_vgg19(weights, allow_fallback)
    return _resolve_shipped(LOSS_NET)(None, allow_fallback)


def _build_auto(source: Optional[Path]) -> FeatureExtractor:
    if source is not None and source.resolve() == shipped_paths(LOSS_NET)[0].resolve():
        return _build_shipped(LOSS_NET)(source)
    return _build_vgg19(source) if source is not None else _build_shipped(LOSS_NET)(None)


#: The kinds this module adds to :data:`meshinv_lite.features.registry.EXTRACTORS`.
KINDS: dict[str, ExtractorKind] = {
    **{r.name: ExtractorKind(_resolve_shipped(r), _build_shipped(r)) for r in RECIPES.values()},
    "auto": ExtractorKind(_resolve_auto, _build_auto),
}
