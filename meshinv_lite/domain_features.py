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

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .features import FeatureExtractor, check_feature_images
from .io import atomic_torch_save, read_checked_artifact, read_json, state_checksum, write_json

FEATURES_FORMAT = "meshinv-lite-feature-net"
FEATURES_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parent / "priors"
REBUILD_COMMAND = "python -m meshinv_lite.cli build-features"
LOSS_LABEL = "in-domain features (SynthBirds-trained)"
METRIC_LABEL = "in-domain evaluation features (SynthBirds-trained, never used by a loss)"
#: Dense target channels: UV (3), normal (3), colour mean (3), colour spread (3).
TARGET_CHANNELS = {"uv": 3, "normal": 3, "colour": 3, "spread": 3}


class FeatureNetError(RuntimeError):
    """A feature-network file that cannot be used: missing, damaged, or made for another version of the code."""


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------------


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
        return LOSS_LABEL if self.role == "loss" else METRIC_LABEL

    def to_dict(self) -> dict:
        return asdict(self)


LOSS_NET = FeatureNetRecipe(name="synthbirds_features", role="loss", seed=0)
METRIC_NET = FeatureNetRecipe(name="synthbirds_eval", role="metric", seed=1,
                              net=DomainNetConfig(widths=(32, 48, 64), depth=1), backgrounds=(0.3, 0.5, 0.2))
RECIPES = {r.name: r for r in (LOSS_NET, METRIC_NET)}


def shipped_paths(recipe: FeatureNetRecipe, directory: Optional[str | Path] = None) -> tuple[Path, Path]:
    """``(<dir>/<name>.pt, <dir>/<name>.json)`` (default dir: ``meshinv_lite/priors``)."""
    d = Path(directory) if directory is not None else SHIPPED_DIR
    return d / f"{recipe.name}.pt", d / f"{recipe.name}.json"


# --------------------------------------------------------------------------------------------------
# Training data: images and the dense targets SynthBirds gives for free
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def dense_targets(template, deform_map: torch.Tensor, camera, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel targets of ground-truth birds rendered at ``size`` px.

    Args:
        deform_map: ``(B, 3, Hd, Wd)`` ground-truth deformation maps; camera: their exact cameras.
    Returns:
        mask ``(B, 1, S, S)`` in {0, 1} and targets ``(B, 6, S, S)``: ``(cos 2 pi u, sin 2 pi u, 2 v - 1)``
        and the camera-space unit normal (zero on the background).
    """
    from .camera import qrot
    from .mesh import deform_vertices, vertex_normals
    from .render import interpolate, rasterize

    verts = deform_vertices(template, deform_map)
    frags = rasterize(camera.apply(verts), template.faces, (size, size))
    uv = interpolate(template.uvs.to(verts), template.faces_uv, frags)  # (B, S, S, 2)
    normals = qrot(camera.rotation, vertex_normals(verts, template.faces))  # rotation only: unit normals
    n = F.normalize(interpolate(normals, template.faces, frags), dim=-1, eps=1e-8)
    mask = frags.mask.to(verts.dtype)
    ang = 2 * math.pi * uv[..., 0]
    t = torch.cat([torch.stack([ang.cos(), ang.sin(), 2 * uv[..., 1] - 1], -1), n], -1).permute(0, 3, 1, 2)
    return mask, t * mask


@dataclass
class FeatureTrainingData:
    """Training tensors at the recipe's image size: ``images`` ``(N, 3, S, S)`` and ``backgrounds`` (the
    photos) in [0, 1], ``masks`` ``(N, 1, S, S)``, ``targets`` ``(N, 6, S, S)``, ``classes`` ``(N,)``."""

    images: torch.Tensor
    masks: torch.Tensor
    targets: torch.Tensor
    classes: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]


def load_training_data(dataset_root: str | Path, split: str, size: int, limit: Optional[int] = None,
                       chunk: int = 64) -> FeatureTrainingData:
    """A SynthBirds split's images resized to ``size`` with their dense targets (see :func:`dense_targets`).

    The mask is the rendered silhouette at ``size`` (the ground truth the targets were rendered with).
    """
    from .data.dataset import ReconstructionDataset
    from .camera import WeakPerspectiveCamera
    from .mesh import make_uv_sphere

    ds = ReconstructionDataset(dataset_root, split, load_gt=True, limit=limit)
    if not ds.has_gt:
        raise ValueError(f"{dataset_root}/{split} has no ground-truth maps: feature networks train on SynthBirds")
    template = make_uv_sphere()
    imgs, masks, tgts, cls = [], [], [], []
    for s in range(0, len(ds), chunk):
        b = ds.batch(range(s, min(s + chunk, len(ds))))
        img = F.interpolate(b["image"], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        m, t = dense_targets(template, b["deform_map"], WeakPerspectiveCamera.from_tensor(b["camera"]), size)
        imgs.append(img.clamp(0, 1))
        masks.append(m)
        tgts.append(t)
        cls.append(b["class_id"])
    return FeatureTrainingData(torch.cat(imgs), torch.cat(masks), torch.cat(tgts), torch.cat(cls))


def _cell_targets(images: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor, stride: int):
    """Targets at the feature resolution: mask-weighted means of UV/normal, mean colour and colour spread
    per cell; ``valid`` cells are more than half covered. Returns ``(targets (B, 12, h, w), valid (B, 1, h, w))``."""
    def pool(x):
        return F.avg_pool2d(x, stride, stride, ceil_mode=True)

    cover = pool(masks)
    denom = cover.clamp_min(1e-6)
    mean_t = pool(targets * masks) / denom
    uv = torch.cat([F.normalize(mean_t[:, :2], dim=1, eps=1e-6), mean_t[:, 2:3].clamp(-1, 1)], 1)
    normal = F.normalize(mean_t[:, 3:6], dim=1, eps=1e-6)
    colour = pool(images * masks) / denom
    spread = (pool(images.square() * masks) / denom - colour.square()).clamp_min(0).sqrt()
    return torch.cat([uv, normal, colour * 2 - 1, spread * 4 - 1], 1), (cover > 0.5).to(images.dtype)


def _compose(images: torch.Tensor, masks: torch.Tensor, backgrounds: tuple[float, float, float],
             generator: torch.Generator) -> torch.Tensor:
    """Each image on black (masked), white, or its own background, drawn with the recipe's probabilities."""
    r = torch.rand(images.shape[0], generator=generator)
    black = (r < backgrounds[0]).to(images)[:, None, None, None]
    white = ((r >= backgrounds[0]) & (r < backgrounds[0] + backgrounds[1])).to(images)[:, None, None, None]
    bg = images * (1 - black - white) + white
    return images * masks + bg * (1 - masks)


def training_losses(net: DomainFeatureNet, images: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor,
                    classes: torch.Tensor, weights: tuple[float, ...]) -> dict[str, torch.Tensor]:
    """The objective's terms for one batch of composed images: species cross-entropy, and the mean squared
    errors of the UV, normal, colour and colour-spread targets over the covered cells."""
    feats = net(images)
    cell_t, valid = _cell_targets(images, masks, targets, net.stride)
    cell_t, valid = cell_t[..., : feats.shape[-2], : feats.shape[-1]], valid[..., : feats.shape[-2], : feats.shape[-1]]
    dense, logits = net.heads(feats, valid)
    count = valid.sum().clamp_min(1.0)
    terms = {"species": F.cross_entropy(logits, classes)}
    start = 0
    for key, c in TARGET_CHANNELS.items():
        err = (dense[:, start:start + c] - cell_t[:, start:start + c]).square().sum(1, keepdim=True)
        terms[key] = (err * valid).sum() / count
        start += c
    terms["total"] = sum(w * terms[k] for w, k in zip(weights, ("species", *TARGET_CHANNELS)))
    return terms


@torch.no_grad()
def held_out_quality(net: DomainFeatureNet, data: FeatureTrainingData, batch_size: int = 64) -> dict:
    """Figures on held-out images (masked on black): species accuracy, UV error (degrees of ``u`` and of
    ``v`` x 180), normal angle error (degrees), colour error (RGB mean absolute, in [0, 1])."""
    correct, n_cells = 0, 0.0
    sums = {"u_deg": 0.0, "v_deg": 0.0, "normal_deg": 0.0, "colour_mae": 0.0}
    for s in range(0, len(data), batch_size):
        img, m = data.images[s:s + batch_size], data.masks[s:s + batch_size]
        x = img * m
        feats = net(x)
        cell_t, valid = _cell_targets(x, m, data.targets[s:s + batch_size], net.stride)
        dense, logits = net.heads(feats, valid)
        correct += int((logits.argmax(1) == data.classes[s:s + batch_size]).sum())
        v = valid[:, 0] > 0
        pu = torch.atan2(dense[:, 1], dense[:, 0])
        tu = torch.atan2(cell_t[:, 1], cell_t[:, 0])
        du = torch.remainder(pu - tu + math.pi, 2 * math.pi) - math.pi
        sums["u_deg"] += float(du.abs()[v].sum()) * 180 / math.pi
        sums["v_deg"] += float((dense[:, 2] - cell_t[:, 2]).abs()[v].sum()) * 90
        cosn = (F.normalize(dense[:, 3:6], dim=1) * cell_t[:, 3:6]).sum(1).clamp(-1, 1)
        sums["normal_deg"] += float(torch.rad2deg(torch.acos(cosn))[v].sum())
        sums["colour_mae"] += float(((dense[:, 6:9] - cell_t[:, 6:9]).abs().mean(1) / 2)[v].sum())
        n_cells += float(v.sum())
    out = {k: v / max(n_cells, 1.0) for k, v in sums.items()}
    out["species_accuracy"] = correct / max(len(data), 1)
    out["num_images"] = len(data)
    return out


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def save_feature_net(path: str | Path, net: DomainFeatureNet, recipe: FeatureNetRecipe, step: int) -> Path:
    """Write a trained network (weights and heads, its recipe and a checksum) atomically."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    atomic_torch_save({"format": FEATURES_FORMAT, "version": FEATURES_VERSION, "recipe": recipe.to_dict(),
                       "net_config": recipe.net.to_dict(), "step": int(step), "state_dict": state,
                       "checksum": state_checksum(state)}, path)
    return Path(path)


def _hint(recipe: FeatureNetRecipe) -> str:
    return f"rebuild it with `{REBUILD_COMMAND}` (about 15 min on 2 CPU cores)"


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


# --------------------------------------------------------------------------------------------------
# Training (cached, resumable)
# --------------------------------------------------------------------------------------------------


def train_feature_net(recipe: FeatureNetRecipe, dataset_root: str | Path, work_dir: str | Path,
                      device: str | torch.device = "cpu", progress: bool = True,
                      train_limit: Optional[int] = None, val_limit: int = 200) -> tuple[DomainFeatureNet, dict]:
    """Train ``recipe``'s network on ``dataset_root``'s train split; checkpoints in ``work_dir`` (atomic,
    every ``recipe.checkpoint_every`` steps) let an interrupted run resume where it stopped.

    Returns the trained network (frozen) and a report: steps, wall time, the last terms and the held-out
    quality on the val split (:func:`held_out_quality`).
    """
    from tqdm.auto import tqdm

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "checkpoint.pt"
    g = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    net = DomainFeatureNet(recipe.net, name=f"{recipe.label}: {recipe.name}")
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    start, seconds = 0, 0.0
    if ckpt.exists():
        try:
            saved = torch.load(ckpt, map_location="cpu", weights_only=False)
            if saved.get("recipe") != json.loads(json.dumps(recipe.to_dict())):
                raise ValueError("the checkpoint was made with another recipe")
            net.load_state_dict(saved["net"])
            opt.load_state_dict(saved["opt"])
            g.set_state(saved["rng"])
            start, seconds = int(saved["step"]), float(saved["seconds"])
        except Exception as e:  # a damaged or foreign checkpoint: start over, say so
            print(f"ignoring {ckpt} ({type(e).__name__}: {e}); training from the start")
            start, seconds = 0, 0.0
    data = load_training_data(dataset_root, "train", recipe.image_size, limit=train_limit)
    net.to(device)
    net.train()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.steps, last_epoch=-1)
    for _ in range(start):
        sched.step()
    terms: dict = {}
    t0 = time.perf_counter()
    bar = tqdm(total=recipe.steps, initial=start, desc=f"train {recipe.name}", unit="step", disable=not progress)
    for step in range(start, recipe.steps):
        idx = torch.randint(len(data), (recipe.batch_size,), generator=g)
        img, m = data.images[idx], data.masks[idx]
        x = _compose(img, m, recipe.backgrounds, g)
        out = training_losses(net, x.to(device), m.to(device), data.targets[idx].to(device),
                              data.classes[idx].to(device), recipe.weights)
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        opt.step()
        sched.step()
        terms = {k: float(v.detach()) for k, v in out.items()}
        bar.update(1)
        if (step + 1) % recipe.checkpoint_every == 0 or step + 1 == recipe.steps:
            bar.set_postfix(loss=f"{terms['total']:.3f}")
            atomic_torch_save({"recipe": recipe.to_dict(), "net": net.state_dict(), "opt": opt.state_dict(),
                               "rng": g.get_state(), "step": step + 1,
                               "seconds": seconds + time.perf_counter() - t0}, ckpt)
    bar.close()
    seconds += time.perf_counter() - t0
    net.freeze()
    val = load_training_data(dataset_root, "val", recipe.image_size, limit=val_limit)
    report = {"steps": recipe.steps, "train_images": len(data), "seconds_training": seconds,
              "last_terms": terms, "val_quality": held_out_quality(net.cpu(), val)}
    return net.to(device), report


def build_feature_net(recipe: FeatureNetRecipe, data_dir: str | Path = "data", device: str | torch.device = "cpu",
                      out_dir: Optional[str | Path] = None, progress: bool = True) -> dict:
    """Rebuild one shipped network from scratch: SynthBirds (made if absent) -> training -> ``<name>.pt`` and
    the provenance ``<name>.json`` in ``out_dir`` (default: the package's ``priors/``). Returns the provenance."""
    from .data.synthbirds import build_synthbirds, synthbirds_dir
    from .data.config import SynthBirdsConfig
    from .prior import code_version

    t0 = time.perf_counter()
    root = synthbirds_dir(data_dir, recipe.dataset_profile)
    build_synthbirds(root, SynthBirdsConfig.for_profile(recipe.dataset_profile), seed=recipe.dataset_seed,
                     splits=("train", "val"), progress=progress)
    net, report = train_feature_net(recipe, root, Path(data_dir) / f"features_{recipe.name}", device=device,
                                    progress=progress)
    pt, js = shipped_paths(recipe, out_dir)
    pt.parent.mkdir(parents=True, exist_ok=True)
    save_feature_net(pt, net, recipe, report["steps"])
    info = {"name": recipe.name, "label": recipe.label, "role": recipe.role, "recipe": recipe.to_dict(),
            "rebuild_command": REBUILD_COMMAND, "code_version": code_version(),
            "data_recipe": {"dataset": "SynthBirds", "profile": recipe.dataset_profile, "seed": recipe.dataset_seed,
                            "split": "train", "dataset_meta": read_json(root / "meta.json")},
            "machine": {"platform": platform.platform(), "device": str(device), "threads": torch.get_num_threads()},
            "wall_seconds": time.perf_counter() - t0, **report,
            "file_bytes": pt.stat().st_size}
    write_json(js, info)
    return info


# --------------------------------------------------------------------------------------------------
# Registration with meshinv_lite.features
# --------------------------------------------------------------------------------------------------


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
            from .features import fallback_vgg19

            return fallback_vgg19(reason=f"the in-domain network {shipped_paths(recipe)[0]} is missing")
        return load_feature_net(recipe, source)
    return build


def _resolve_auto(weights, allow_fallback: bool) -> Optional[Path]:
    """Real VGG-19 weights (an explicit file, else the hub cache) first, then the shipped in-domain network."""
    from .features import _resolve_vgg19, vgg19_hub_path

    if weights is not None or vgg19_hub_path().is_file():
        return _resolve_vgg19(weights, allow_fallback)
    return _resolve_shipped(LOSS_NET)(None, allow_fallback)


def _build_auto(source: Optional[Path]) -> FeatureExtractor:
    from .features import _build_vgg19

    if source is not None and source.resolve() == shipped_paths(LOSS_NET)[0].resolve():
        return _build_shipped(LOSS_NET)(source)
    return _build_vgg19(source) if source is not None else _build_shipped(LOSS_NET)(None)


def _register() -> None:
    from .features import EXTRACTORS, ExtractorKind

    for recipe in (LOSS_NET, METRIC_NET):
        EXTRACTORS.setdefault(recipe.name, ExtractorKind(_resolve_shipped(recipe), _build_shipped(recipe)))
    EXTRACTORS.setdefault("auto", ExtractorKind(_resolve_auto, _build_auto))


_register()
