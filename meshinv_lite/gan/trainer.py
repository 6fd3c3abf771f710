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
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

import torch

from ..distributed import SINGLE, DistContext, wrap_ddp
from ..io import atomic_torch_save, state_checksum
from ..losses.regularizers import crease_loss, normal_consistency
from ..render.camera import WeakPerspectiveCamera
from ..render.dibr import render_mesh
from ..render.mesh import TemplateMesh, deform_vertices, face_adjacency, make_uv_sphere
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CHECKSUMMED,
    RETRAIN_HINT,
    CheckpointError,
    _comparable,
    read_checkpoint,
)
from .config import PretrainConfig
from .inputs import TrainingData
from .losses import discriminator_loss, generator_loss
from .networks import Generator, PatchDiscriminator, UVDiscriminator, ema_update


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
