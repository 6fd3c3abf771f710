"""GAN pretraining: a class-conditional generator of UV maps, judged in UV space and in image space.

The paper's objective (MeshInversion eqs. 1-3, ConvMesh's recipe), least squares by default:

* UV discriminator on pseudo-GT maps, real ``(T * V, S, V)`` vs fake ``(G_T(z, c) * V', G_S(z, c), V')``
  where ``V'`` is the visibility mask of a random real sample (so masks cannot give fakes away);
* image discriminator (PatchGAN) on renders of fakes through real cameras vs real masked images;
* ``L_G = lambda_uv * L_G^uv + lambda_I * L_G^I + w_smooth * L_smooth``; 2 discriminator steps per
  generator step; an exponential moving average (EMA) of the generator is what inversion uses.

Training is resumable and repeatable: checkpoints (written atomically) hold the networks, the
optimizers, the EMA generator, the loss history, the config and every random-number state, so a run
resumed from a checkpoint continues exactly as if it had never stopped (on the CPU).

Under ``torchrun`` (see :mod:`meshinv_lite.distributed` and ``python -m meshinv_lite.cli pretrain``) every
rank trains on ``batch_size / world_size`` samples of its own and DistributedDataParallel averages the
gradients, so the global batch and the schedule stay those of the config; only rank 0 writes checkpoints.
Batch-norm statistics are per rank on CPUs (SyncBatchNorm needs GPUs) and synchronized on GPUs.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .camera import WeakPerspectiveCamera
from .config import RenderConfig, get_profile
from .distributed import SINGLE, DistContext, wrap_ddp
from .io import atomic_torch_save, state_checksum
from .mesh import TemplateMesh, deform_vertices, face_adjacency, make_uv_sphere
from .models import DiscriminatorConfig, Generator, GeneratorConfig, PatchDiscriminator, UVDiscriminator, ema_update
from .render import render_mesh
from .losses import crease_loss
from .silhouette_fit import normal_consistency

CHECKPOINT_FORMAT = "meshinv-lite-gan"
CHECKPOINT_VERSION = 1
#: Entries of a checkpoint whose tensors are covered by its ``checksum``.
CHECKSUMMED = ("G", "G_ema", "D_uv", "D_img")


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pretraining run (with the data)."""

    profile: str = "lite"
    num_classes: int = 12
    iterations: int = 1500
    batch_size: int = 16
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.99)
    d_steps: int = 2
    lambda_uv: float = 1.0
    lambda_image: float = 0.2
    image_discriminator: bool = True
    uv_loss: str = "lsgan"  # "lsgan" (the paper's equations) or "hinge" (the authors' code)
    w_smooth: float = 1e-4
    w_crease: float = 0.0  # weight of losses.crease_loss on generated meshes (folds only)
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    seed: int = 0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    @classmethod
    def for_profile(cls, name: str, num_classes: int = 12, **overrides) -> "PretrainConfig":
        prof = get_profile(name)
        schedule = {
            "quick": dict(iterations=40, batch_size=8, d_steps=1, ema_decay=0.9, checkpoint_every=20),
            # lite: 600 iterations (0.28 s each on 2 idle cores): the mechanics, not a prior (the shipped one is that)
            "lite": dict(iterations=600, batch_size=8, d_steps=1, ema_decay=0.995, checkpoint_every=100),
            "paper": dict(iterations=60000, batch_size=32, ema_decay=0.999, checkpoint_every=1000),
        }[prof.name]
        base = cls(profile=prof.name, num_classes=num_classes,
                   generator=GeneratorConfig.for_profile(prof.name, num_classes=num_classes),
                   discriminator=DiscriminatorConfig.for_profile(prof.name, num_classes=num_classes), **schedule)
        return replace(base, **overrides)

    @property
    def render(self) -> RenderConfig:
        return get_profile(self.profile).render

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingData:
    """What pretraining reads, held in memory.

    Attributes:
        texture: ``(N, 3, Ht, Wt)`` pseudo-GT textures in ``[0, 1]`` (0 where invisible).
        visibility: ``(N, 1, Ht, Wt)`` in ``{0, 1}``.
        deformation: ``(N, 3, Hd, Wd)`` pseudo-GT deformation maps.
        class_id: ``(N,)`` long.
        images: ``(M, 3, H, W)`` uint8 real images; masks ``(M, 1, H, W)`` uint8; cameras ``(M, 7)``.
    """

    texture: torch.Tensor
    visibility: torch.Tensor
    deformation: torch.Tensor
    class_id: torch.Tensor
    images: torch.Tensor
    masks: torch.Tensor
    cameras: torch.Tensor
    image_class_id: torch.Tensor

    @classmethod
    def from_dataset(cls, dataset_root, split: str = "train", camera: str = "noisy") -> "TrainingData":
        """Pseudo-GT of ``split`` (see :mod:`meshinv_lite.pseudo_gt`) plus the split's images."""
        from .data.dataset import ReconstructionDataset
        from .pseudo_gt import PseudoGTDataset

        pgt = PseudoGTDataset(dataset_root, split, camera).tensors()
        data = ReconstructionDataset(dataset_root, split, load_gt=False)
        items = data.batch(range(len(data)))
        return cls(
            texture=pgt["texture"], visibility=pgt["visibility"], deformation=pgt["deformation"],
            class_id=pgt["class_id"],
            images=(items["image"] * 255).round().byte(), masks=(items["mask"] * 255).round().byte(),
            cameras=items["noisy_camera" if camera == "noisy" else "camera"], image_class_id=items["class_id"],
        )

    def __post_init__(self) -> None:
        n = self.texture.shape[0]
        if n == 0:
            raise ValueError("no pseudo-GT samples to train on")
        for name in ("visibility", "deformation", "class_id"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"pseudo-GT {name} has {getattr(self, name).shape[0]} rows, texture has {n}")
        m = self.images.shape[0]
        for name in ("masks", "cameras", "image_class_id"):
            if getattr(self, name).shape[0] != m:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} rows, images has {m}")


def _lsgan(pred: torch.Tensor, target: float) -> torch.Tensor:
    return (pred - target).pow(2).mean()


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """``lsgan``: ``(D(x) - 1)^2 + D(G(z))^2``; ``hinge``: ``relu(1 - D(x)) + relu(1 + D(G(z)))`` (means)."""
    if kind == "lsgan":
        return _lsgan(real, 1.0) + _lsgan(fake, 0.0)
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use 'lsgan' or 'hinge'")


def generator_loss(fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """``lsgan``: ``(D(G(z)) - 1)^2``; ``hinge``: ``-D(G(z))``."""
    if kind == "lsgan":
        return _lsgan(fake, 1.0)
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use 'lsgan' or 'hinge'")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, or from another configuration."""


class GANTrainer:
    """Holds the networks, optimizers and state of one pretraining run.

    Use :meth:`train` (resumes from ``checkpoint_dir/latest.pt`` when it exists), or :meth:`step`
    for a single iteration. ``G_ema`` is the network to sample and invert with.

    ``dist``: the :class:`~meshinv_lite.distributed.DistContext` of a ``torchrun`` launch (default: one
    process). Every rank must construct the trainer and call :meth:`train` / :meth:`save_checkpoint`.
    """

    def __init__(self, config: PretrainConfig, data: TrainingData, device: str | torch.device = "cpu",
                 checkpoint_dir: Optional[str | Path] = None, template: Optional[TemplateMesh] = None,
                 dist: Optional[DistContext] = None):
        self.config = config
        self.dist = dist or SINGLE
        if config.batch_size % self.dist.world_size:
            raise ValueError(f"batch_size {config.batch_size} does not split over {self.dist.world_size} processes; "
                             "use a batch size divisible by the number of processes")
        self.local_batch = config.batch_size // self.dist.world_size
        self.device = torch.device(device)
        self.data = data
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        torch.manual_seed(config.seed)
        self.template = (template or make_uv_sphere()).to(self.device)
        self.face_pairs = face_adjacency(self.template.faces)
        self.G = Generator(config.generator).to(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
        self.G_ema = Generator(config.generator).to(self.device)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.eval().requires_grad_(False)
        self.D_uv = UVDiscriminator(config.discriminator).to(self.device)
        self.D_img = PatchDiscriminator(config.discriminator).to(self.device) if config.image_discriminator else None
        d_params = list(self.D_uv.parameters()) + (list(self.D_img.parameters()) if self.D_img is not None else [])
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=config.betas)
        self.opt_D = torch.optim.Adam(d_params, lr=config.lr_d, betas=config.betas)
        # The DDP views of the networks: gradients through them are averaged over ranks.
        self._G = wrap_ddp(self.G, self.dist)
        self._D_uv = wrap_ddp(self.D_uv, self.dist)
        self._D_img = wrap_ddp(self.D_img, self.dist) if self.D_img is not None else None
        self.rng = torch.Generator().manual_seed(self._rank_seed())
        self.iteration = 0
        self.train_seconds = 0.0  # wall time spent in train(), summed over resumed runs
        self.history: dict[str, list[float]] = {}

    def _rank_seed(self) -> int:
        """Rank 0 draws exactly what a single process draws; other ranks draw their own samples."""
        return self.config.seed + 1 + 7919 * self.dist.rank

    # data ------------------------------------------------------------------------------------
    def _real_uv(self, n: int):
        d = self.data
        idx = torch.randint(0, d.texture.shape[0], (n,), generator=self.rng)
        to = lambda t: t[idx].to(self.device)  # noqa: E731
        return to(d.texture), to(d.deformation), to(d.visibility), to(d.class_id)

    def _real_images(self, n: int):
        d = self.data
        idx = torch.randint(0, d.images.shape[0], (n,), generator=self.rng)
        img = d.images[idx].to(self.device).float() / 255
        mask = d.masks[idx].to(self.device).float() / 255
        return img * mask, mask, d.cameras[idx].to(self.device), d.image_class_id[idx].to(self.device)

    def sample_latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` ``(n, latent)`` and class ids drawn from the training classes."""
        z = torch.randn(n, self.config.generator.latent_dim, generator=self.rng).to(self.device)
        c = self.data.class_id[torch.randint(0, self.data.class_id.shape[0], (n,), generator=self.rng)].to(self.device)
        return z, c

    def render(self, texture: torch.Tensor, deformation: torch.Tensor, cameras: torch.Tensor):
        """Masked renders ``(B, 3, H, W)`` and hard masks ``(B, 1, H, W)`` of generated maps."""
        verts = deform_vertices(self.template, deformation)
        out = render_mesh(self.template, verts, WeakPerspectiveCamera.from_tensor(cameras), texture,
                          self.config.render, soft=False)
        return out.image, out.mask, verts

    def _fakes(self, bs: int) -> dict:
        """A batch of generated maps, the visibility masks they are judged through and (with an image
        discriminator) their renders at real cameras. Differentiable in G when called with grad enabled."""
        z, c = self.sample_latents(bs)
        tex, deform = self._G(z, c) if torch.is_grad_enabled() else self.G(z, c)
        fake = {"texture": tex, "deformation": deform, "visibility": self._real_uv(bs)[2], "class_id": c}
        if self.D_img is not None:
            cams = self._real_images(bs)[2]
            fake["image"], fake["mask"], fake["vertices"] = self.render(tex, deform, cams)
        else:
            fake["vertices"] = deform_vertices(self.template, deform)
        return fake

    def _d_step(self, fake: dict, terms: dict) -> None:
        """One discriminator update: real and (detached) fake batches go through each discriminator together."""
        cfg = self.config
        bs = fake["texture"].shape[0]
        tex_r, def_r, vis_r, cls_r = self._real_uv(bs)
        vis_f = fake["visibility"]
        scores = self._D_uv(torch.cat([tex_r * vis_r, fake["texture"].detach() * vis_f]),
                            torch.cat([def_r, fake["deformation"].detach()]), torch.cat([vis_r, vis_f]),
                            torch.cat([cls_r, fake["class_id"]]))
        loss_d = cfg.lambda_uv * discriminator_loss(scores[:bs], scores[bs:], cfg.uv_loss)
        terms["d_uv"] = float(loss_d.detach())
        if self.D_img is not None:
            img_r, mask_r = self._real_images(bs)[:2]
            out = self._D_img(torch.cat([img_r, fake["image"].detach()]), torch.cat([mask_r, fake["mask"].detach()]))
            loss_di = cfg.lambda_image * discriminator_loss(out[:bs], out[bs:])
            terms["d_img"] = float(loss_di.detach())
            loss_d = loss_d + loss_di
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()

    # one iteration ---------------------------------------------------------------------------
    def step(self) -> dict:
        """One iteration: ``d_steps`` discriminator updates, then one generator update.

        The fakes of the first discriminator update are the ones the generator update then improves
        (generated and rendered once, with gradients kept for the G step); extra discriminator updates
        draw fresh fakes. During the G step the discriminators are frozen: no weight gradients.
        """
        cfg = self.config
        bs = self.local_batch
        terms: dict[str, float] = {}
        fake = self._fakes(bs)
        for k in range(cfg.d_steps):
            if k:
                with torch.no_grad():
                    extra = self._fakes(bs)
            self._d_step(fake if k == 0 else extra, terms)

        discriminators = [d for d in (self.D_uv, self.D_img) if d is not None]
        for d in discriminators:
            d.requires_grad_(False)
        try:
            vis_f = fake["visibility"]
            loss_g = cfg.lambda_uv * generator_loss(
                self.D_uv(fake["texture"] * vis_f, fake["deformation"], vis_f, fake["class_id"]), cfg.uv_loss)
            terms["g_uv"] = float(loss_g.detach())
            if self.D_img is not None:
                loss_gi = cfg.lambda_image * generator_loss(self.D_img(fake["image"], fake["mask"]))
                terms["g_img"] = float(loss_gi.detach())
                loss_g = loss_g + loss_gi
            smooth = normal_consistency(fake["vertices"], self.template.faces, self.face_pairs).mean()
            terms["smooth"] = float(smooth.detach())
            loss_g = loss_g + cfg.w_smooth * smooth
            if cfg.w_crease:
                crease = crease_loss(fake["vertices"], self.template.faces, self.face_pairs)
                terms["crease"] = float(crease.detach())
                loss_g = loss_g + cfg.w_crease * crease
            self.opt_G.zero_grad(set_to_none=True)
            loss_g.backward()
        finally:
            for d in discriminators:
                d.requires_grad_(True)
        self.opt_G.step()
        self.dist.broadcast_buffers(self.G)  # per-rank batch-norm statistics -> rank 0's, so G_ema agrees too
        ema_update(self.G_ema, self.G, cfg.ema_decay)
        self.iteration += 1
        terms = self.dist.mean_of(terms)
        for k, v in terms.items():
            self.history.setdefault(k, []).append(v)
        return terms

    def train(self, iterations: Optional[int] = None, callback: Optional[Callable[[int, dict], None]] = None,
              progress: bool = True, resume: bool = True) -> dict:
        """Train up to ``iterations`` (default: the config's), resuming from ``latest.pt`` if present.

        Returns ``{"iterations", "seconds", "seconds_per_iteration", "resumed_from", "checkpoints_written"}``
        (``checkpoints_written`` counts this process's writes: zero except on rank 0).
        """
        from tqdm.auto import tqdm

        total = self.config.iterations if iterations is None else iterations
        resumed_from = None
        latest = self.checkpoint_dir / "latest.pt" if self.checkpoint_dir is not None else None
        if resume and latest is not None and latest.exists():
            self.load_checkpoint(latest)
            resumed_from = self.iteration
        t0 = time.perf_counter()
        start = self.iteration
        written = 0
        bar = tqdm(total=total, initial=start, desc="GAN pretraining", disable=not progress or not self.dist.is_main)
        tick = time.perf_counter()
        while self.iteration < total:
            terms = self.step()
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()}, refresh=False)
            if callback is not None:
                callback(self.iteration, terms)
            self.train_seconds += time.perf_counter() - tick
            tick = time.perf_counter()
            if latest is not None and (self.iteration % self.config.checkpoint_every == 0 or self.iteration == total):
                written += self.save_checkpoint(latest) is not None
        bar.close()
        seconds = time.perf_counter() - t0
        done = self.iteration - start
        return {"iterations": self.iteration, "seconds": seconds,
                "seconds_per_iteration": seconds / done if done else None, "resumed_from": resumed_from,
                "checkpoints_written": written}

    # checkpoints -----------------------------------------------------------------------------
    def state_dict(self, rank_rng: Optional[list] = None) -> dict:
        """Everything to resume; ``rank_rng``: every rank's ``(sampling, torch)`` RNG states (distributed runs).
        ``checksum`` covers the networks' tensors (:func:`~meshinv_lite.io.state_checksum`)."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": self.config.to_dict(),
            "iteration": self.iteration,
            "history": self.history,
            "G": self.G.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "D_uv": self.D_uv.state_dict(),
            "D_img": self.D_img.state_dict() if self.D_img is not None else None,
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "world_size": self.dist.world_size,
            "rank_rng": rank_rng,
            "train_seconds": self.train_seconds,
        }
        state["checksum"] = state_checksum({k: state[k] for k in CHECKSUMMED if state[k] is not None})
        return state

    def save_checkpoint(self, path: str | Path) -> Optional[Path]:
        """Write everything needed to resume, atomically. Distributed: every rank must call this; rank 0
        writes (with every rank's RNG states) and returns the path, the others return ``None``."""
        path = Path(path)
        rank_rng = None
        if self.dist.enabled:
            rank_rng = self.dist.all_gather_object((self.rng.get_state(), torch.get_rng_state()))
        if self.dist.is_main:
            atomic_torch_save(self.state_dict(rank_rng), path)
        self.dist.barrier()  # nobody reads or overwrites it half-written
        return path if self.dist.is_main else None

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a run; refuses checkpoints of another configuration or a damaged file."""
        state = read_checkpoint(path)
        mine = _comparable(self.config.to_dict())
        # settings added to the code after the checkpoint was written count as their defaults
        theirs = _comparable({**asdict(PretrainConfig()), **state["config"]})
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise CheckpointError(f"{path} was trained with another configuration (differs in: {', '.join(diff)}); "
                                  f"use a new checkpoint folder or the same settings, or {RETRAIN_HINT}")
        try:
            self.G.load_state_dict(state["G"])
            self.G_ema.load_state_dict(state["G_ema"])
            self.D_uv.load_state_dict(state["D_uv"])
            if self.D_img is not None:
                self.D_img.load_state_dict(state["D_img"])
            self.opt_G.load_state_dict(state["opt_G"])
            self.opt_D.load_state_dict(state["opt_D"])
        except (RuntimeError, KeyError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{path} does not fit these networks ({first}); {RETRAIN_HINT}") from None
        self.iteration = int(state["iteration"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        rank_rng = state.get("rank_rng")
        if rank_rng is not None and len(rank_rng) == self.dist.world_size:
            self.rng.set_state(rank_rng[self.dist.rank][0])
            torch.set_rng_state(rank_rng[self.dist.rank][1])
        elif self.dist.is_main:
            self.rng.set_state(state["rng"])
            torch.set_rng_state(state["torch_rng"])
        else:  # resumed with another number of processes: a fresh stream per rank and iteration
            self.rng.manual_seed(self._rank_seed() + 104729 * self.iteration)
        self.history = {k: list(v) for k, v in state["history"].items()}


def _comparable(cfg: dict) -> dict:
    """Config entries that must match to resume (the schedule's length and checkpoint cadence may differ)."""
    import json

    from .io import _jsonable

    flat = json.loads(json.dumps(_jsonable(cfg)))
    for k in ("iterations", "checkpoint_every"):
        flat.pop(k, None)
    return flat


def read_checkpoint(path: str | Path) -> dict:
    """Load a pretraining checkpoint and check its format; clear errors for missing or damaged files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train first (notebook 03 or meshinv_lite.pretrain)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, pickling errors, ...
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}: {e}); delete it and retrain") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a meshinv-lite GAN checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}, this package reads {CHECKPOINT_VERSION}")
    missing = [k for k in ("config", "G", "G_ema", "iteration") if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}: incomplete checkpoint")
    if "checksum" in state:  # checkpoints from before checksums load unchecked
        nets = {k: state[k] for k in CHECKSUMMED if state.get(k) is not None}
        if state_checksum(nets) != state["checksum"]:
            raise CheckpointError(f"{path} is damaged: its network weights do not match their checksum; delete it and "
                                  "retrain (or restore it from a copy)")
    return state


RETRAIN_HINT = ("retrain it: delete the checkpoint folder, or run `python -m meshinv_lite.pipeline --rebuild gan`, "
                "or `python -m meshinv_lite.cli pretrain --no-resume`")


def checkpoint_config(state: dict, path: str | Path = "checkpoint") -> PretrainConfig:
    """The :class:`PretrainConfig` a checkpoint was trained with; :class:`CheckpointError` when this code's
    config no longer has the same fields (the package changed since the checkpoint was written)."""
    try:
        return config_from_dict(state["config"])
    except (TypeError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path} was written by another version of meshinv-lite (its config does not fit "
                              f"this code: {e}); {RETRAIN_HINT}") from None


def load_generator(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> tuple[Generator, PretrainConfig]:
    """The (EMA) generator of a checkpoint, in eval mode, and the run's config.

    A checkpoint whose config or weights no longer fit this code's generator is refused with a
    :class:`CheckpointError` that says how to retrain, never a shape-mismatch traceback."""
    state = read_checkpoint(path)
    cfg = checkpoint_config(state, path)
    G = Generator(cfg.generator)
    try:
        G.load_state_dict(state["G_ema" if ema else "G"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit the generator this code builds ({first}): the architecture "
                              f"changed since it was trained; {RETRAIN_HINT}") from None
    return G.to(device).eval(), cfg


def config_from_dict(d: dict) -> PretrainConfig:
    """Rebuild a :class:`PretrainConfig` from its ``to_dict`` form."""
    d = dict(d)
    d["generator"] = GeneratorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["generator"].items()})
    d["discriminator"] = DiscriminatorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["discriminator"].items()})
    d["betas"] = tuple(d["betas"])
    return PretrainConfig(**d)


def gan_dir(dataset_root, camera: str = "noisy", image_discriminator: bool = True) -> Path:
    """Where a dataset's GAN checkpoints live: ``<root>/gan_<camera>[_no_image_d]/``."""
    return Path(dataset_root) / f"gan_{camera}{'' if image_discriminator else '_no_image_d'}"


@torch.no_grad()
def sample_quality(
    generator: Generator,
    data: TrainingData,
    render_config: RenderConfig,
    extractor=None,
    num_samples: int = 64,
    seed: int = 0,
    template: Optional[TemplateMesh] = None,
    batch_size: int = 16,
) -> dict:
    """How close generated birds look to the data, rendered through the data's cameras.

    Samples ``num_samples`` latents (classes drawn like the data's), renders them at real cameras on a
    black background, and compares with as many real masked images:

    * ``feature_frechet_distance``: Frechet distance between mean-pooled features of the two sets,
      computed with ``extractor`` (default: :func:`meshinv_lite.features.load_feature_extractor`),
      whose name is returned as ``feature_extractor``; with the offline fallback it is *not* FID;
    * ``mask_area_samples`` / ``mask_area_data``: mean silhouette area (fraction of the image), and
      ``mask_area_gap`` their absolute difference.
    """
    from .features import load_feature_extractor
    from .metrics import frechet_distance_of

    device = next(generator.parameters()).device
    extractor = extractor or load_feature_extractor(device=device)
    template = (template or make_uv_sphere()).to(device)
    g = torch.Generator().manual_seed(seed)
    n = num_samples
    cams = data.cameras[torch.randint(0, data.cameras.shape[0], (n,), generator=g)]
    classes = data.class_id[torch.randint(0, data.class_id.shape[0], (n,), generator=g)]
    z = torch.randn(n, generator.config.latent_dim, generator=g)
    real_idx = torch.randint(0, data.images.shape[0], (n,), generator=g)
    was_training = generator.training
    generator.eval()
    feats_f, feats_r, area_f, area_r = [], [], [], []
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        tex, deform = generator(z[sl].to(device), classes[sl].to(device))
        verts = deform_vertices(template, deform)
        out = render_mesh(template, verts, WeakPerspectiveCamera.from_tensor(cams[sl].to(device)), tex, render_config, soft=False)
        img_r = data.images[real_idx[sl]].to(device).float() / 255
        mask_r = data.masks[real_idx[sl]].to(device).float() / 255
        feats_f.append(extractor(out.image).mean((2, 3)).cpu())
        feats_r.append(extractor(img_r * mask_r).mean((2, 3)).cpu())
        area_f.append(out.mask.mean((1, 2, 3)).cpu())
        area_r.append(mask_r.mean((1, 2, 3)).cpu())
    generator.train(was_training)
    a_f, a_r = torch.cat(area_f), torch.cat(area_r)
    return {
        "feature_frechet_distance": frechet_distance_of(torch.cat(feats_f), torch.cat(feats_r)),
        "feature_extractor": extractor.name,
        "feature_extractor_is_fallback": bool(extractor.is_fallback),
        "mask_area_samples": float(a_f.mean()),
        "mask_area_data": float(a_r.mean()),
        "mask_area_gap": float((a_f.mean() - a_r.mean()).abs()),
        "num_samples": n,
    }


def build_training_inputs(
    data_dir,
    profile: str = "quick",
    camera: str = "noisy",
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    dist: Optional[DistContext] = None,
    train_images: Optional[int] = None,
) -> Path:
    """SynthBirds of a profile and its training pseudo ground truth, each built only when absent.

    ``train_images``: how many training images get pseudo ground truth (``None``: the profile's
    :func:`~meshinv_lite.pseudo_gt.train_image_limit`); changing it reuses the shards already made.

    Under ``torchrun`` rank 0 builds the dataset while the others wait, and the pseudo-GT shards are
    dealt to the ranks. Returns the dataset root.
    """
    from .data.synthbirds import build_synthbirds, synthbirds_dir
    from .pseudo_gt import PseudoGTConfig, build_pseudo_gt, train_image_limit

    ctx = dist or SINGLE
    prof = get_profile(profile)
    root = synthbirds_dir(data_dir, prof.name)
    if ctx.is_main:
        build_synthbirds(root, profile=prof.name, seed=seed, progress=progress)
    ctx.barrier()
    build_pseudo_gt(root, "train", PseudoGTConfig.for_profile(prof.name, camera=camera), device=device,
                    limit=train_images if train_images is not None else train_image_limit(prof.name), seed=seed,
                    progress=progress, dist=ctx)
    return root
