"""Training the encoder and the segmentation net: a pool of labelled renders, the losses, the one-command build.

The pool (:func:`make_pool`) has two sources:

* **the prior's own samples**: ``z ~ N(0, I)``, a uniform class, ``(texture, deformation) = G(z, class)``, framed by
  SynthBirds' camera distribution (:func:`~meshinv_lite.data.synthbirds.fit_cameras`) on its textured backgrounds.
  Every label is exact: ``z``, class, camera, mask and the texture flow (where each texel lands in the image);
* **the training images** with what a real dataset gives: class, mask and the *noisy* (SfM-like) camera; no
  latent and no flow (their rows weigh 0 in those losses). They close the gap between the GAN's birds and the
  photos the encoder will see.

Training is resumable (atomic checkpoints under ``<data_dir>/encoder_<name>/``), one torch thread per process is
enough, and :func:`build_encoder` writes the shipped file and its provenance (``python -m meshinv_lite.cli
build-encoder``).
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..io import atomic_torch_save, read_json, write_json
from ..render.camera import WeakPerspectiveCamera, azimuth_elevation
from .network import EncoderConfig, ImageEncoder, SegmentationNet, flow_targets


@dataclass(frozen=True)
class EncoderRecipe:
    """Everything that determines the shipped encoder (with the code and the shipped prior)."""

    name: str = "synthbirds_encoder"
    data_profile: str = "lite"
    seed: int = 0
    prior_samples: int = 8000
    train_images: Optional[int] = None    # training images of the data split (None: all)
    steps: int = 2400
    batch_size: int = 64
    lr: float = 1e-3
    seg_steps: int = 1200
    seg_batch_size: int = 32
    # backgrounds without a bird (empty masks) beside the pool for the segmenter: without them it found a bird, at
    # 0.96 mean confidence, in every photo, a plain grey one included (it had only ever seen images with one)
    seg_negatives: int = 1500
    checkpoint_every: int = 200
    w_z: float = 1.0
    w_class: float = 1.0
    w_azimuth: float = 1.0
    w_camera: float = 4.0
    w_flow: float = 4.0
    # An optional second phase: the latent head judged by what the prior makes of it (G(z_hat, c) against G(z, c)).
    # Off: measured, it changes nothing. The latent regressed alone stays at the mean (MSE 1.0 on N(0, I) latents),
    # and 600 steps of this phase left it there (map L1 0.061 -> 0.060; on 16 lite val images the initial loss of
    # its latent 2.2418, of the first phase's 2.2423, of z = 0 2.2428; the best of 32 random draws 2.2258): within a
    # species the shipped prior's birds differ too little for one image to tell their latents apart (z explains
    # 29 % of the maps' within-species variance, linearly). The encoder's use is the species and the camera.
    z_steps: int = 0
    z_batch_size: int = 32
    z_lr: float = 3e-4
    w_maps: float = 4.0
    # Third phase: the flow head alone (trunk frozen: latent, species and camera unchanged) on the prior's renders
    # and on training images whose flow labels come from their pseudo ground truth (the fitted shape seen by the
    # noisy camera: what a real dataset gives). Trained on the prior's renders alone, the flow missed SynthBirds'
    # birds by 0.22 (median, normalized units) against 0.034 on the renders: the prior's shapes are not the data's.
    flow_steps: int = 800
    flow_pseudo_gt_images: int = 1000

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EncoderPool:
    """Labelled training images: ``images`` ``(N, 3, S, S)`` and ``masks`` ``(N, 1, S, S)`` uint8; ``z`` ``(N, D)``;
    ``class_id`` ``(N,)``; ``camera`` ``(N, 7)``; ``flow`` ``(N, 2, F, F)`` float16; ``has_z`` ``(N,)`` bool (a prior
    sample: ``z`` and ``flow`` are labels)."""

    images: torch.Tensor
    masks: torch.Tensor
    z: torch.Tensor
    class_id: torch.Tensor
    camera: torch.Tensor
    flow: torch.Tensor
    has_z: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, idx: torch.Tensor) -> dict:
        return {"image": self.images[idx].float() / 255, "mask": self.masks[idx].float() / 255, "z": self.z[idx],
                "class_id": self.class_id[idx], "camera": self.camera[idx], "flow": self.flow[idx].float(),
                "has_z": self.has_z[idx]}

    def select(self, rows: torch.Tensor) -> "EncoderPool":
        """The pool's ``rows`` (every field indexed alike)."""
        return EncoderPool(*(getattr(self, f.name)[rows] for f in fields(self)))


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@torch.no_grad()
def prior_samples(generator, n: int, seed: int, image_size: int, flow_size: int, chunk: int = 64,
                  progress: bool = False) -> EncoderPool:
    """``n`` renders of the prior's samples with exact labels (module docstring)."""
    from ..config import RenderConfig
    from ..data.synthbirds import SynthBirdsConfig, backgrounds, default_template, fit_cameras
    from ..render import render_mesh
    from ..render.mesh import deform_vertices

    g = torch.Generator().manual_seed(seed)
    template = default_template()
    cfg = SynthBirdsConfig()
    c = generator.config
    parts: dict[str, list] = {k: [] for k in ("images", "masks", "z", "class_id", "camera", "flow")}
    bar = _bar(n, "prior renders", progress)
    for s in range(0, n, chunk):
        b = min(chunk, n - s)
        z = torch.randn(b, c.latent_dim, generator=g)
        cls = torch.randint(c.num_classes, (b,), generator=g)
        tex, deform = generator(z, cls)
        verts = deform_vertices(template, deform)
        cam = fit_cameras(verts, g, cfg)
        bg = backgrounds(b, image_size, g)
        out = render_mesh(template, verts, cam, tex, RenderConfig(image_size=image_size), background=bg, soft=False)
        parts["images"].append(_u8(out.image))
        parts["masks"].append(_u8(out.mask))
        parts["z"].append(z)
        parts["class_id"].append(cls)
        parts["camera"].append(cam.as_tensor())
        parts["flow"].append(flow_targets(deform, cam, template, flow_size).half())
        bar.update(b)
    bar.close()
    cat = {k: torch.cat(v) for k, v in parts.items()}
    return EncoderPool(**cat, has_z=torch.ones(n, dtype=torch.bool))


def dataset_images(root: str | Path, split: str, flow_size: int, latent_dim: int, limit: Optional[int] = None,
                   camera: str = "noisy") -> EncoderPool:
    """A split's images with the labels a real dataset gives (class, mask, the ``camera`` given to methods)."""
    from ..data.dataset import ReconstructionDataset, batch_cameras

    ds = ReconstructionDataset(root, split, load_gt=False, limit=limit)
    parts: dict[str, list] = {"images": [], "masks": [], "class_id": [], "camera": []}
    for s in range(0, len(ds), 256):
        b = ds.batch(range(s, min(s + 256, len(ds))))
        parts["images"].append(_u8(b["image"]))
        parts["masks"].append(_u8(b["mask"]))
        parts["class_id"].append(b["class_id"])
        parts["camera"].append(batch_cameras(b, camera).as_tensor())
    cat = {k: torch.cat(v) for k, v in parts.items()}
    n = cat["images"].shape[0]
    return EncoderPool(**cat, z=torch.zeros(n, latent_dim), flow=torch.zeros(n, 2, flow_size, flow_size, dtype=torch.half),
                       has_z=torch.zeros(n, dtype=torch.bool))


def pseudo_gt_flows(root: str | Path, split: str, flow_size: int, camera: str = "noisy",
                    limit: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow labels of a split's first images from their pseudo ground truth: ``(indices (M,) into the split,
    flows (M, 2, F, F))``: the fitted shape (``deformation``) seen by the camera the fit was given."""
    from ..data.synthbirds import default_template
    from ..pseudo_gt.dataset import PseudoGTDataset

    a = PseudoGTDataset(root, split, camera).arrays
    n = len(a["index"]) if limit is None else min(limit, len(a["index"]))
    flows = []
    for s in range(0, n, 256):
        sl = slice(s, min(s + 256, n))
        cams = WeakPerspectiveCamera.from_tensor(torch.as_tensor(a["camera"][sl]).float())
        flows.append(flow_targets(torch.as_tensor(a["deformation"][sl]).float(), cams, default_template(),
                                  flow_size).half())
    return torch.as_tensor(a["index"][:n]).long(), torch.cat(flows)


def background_pool(n: int, size: int, seed: int, latent_dim: int, flow_size: int) -> EncoderPool:
    """``n`` SynthBirds backgrounds without a bird (empty masks): the segmenter's negatives."""
    from ..data.synthbirds import backgrounds

    g = torch.Generator().manual_seed(seed)
    imgs = torch.cat([_u8(backgrounds(min(256, n - s), size, g)) for s in range(0, n, 256)])
    plain = torch.rand(n // 10, 3, 1, 1, generator=g).expand(-1, -1, size, size)   # a tenth: plain colours
    imgs[: n // 10] = _u8(plain)
    return EncoderPool(imgs, torch.zeros(n, 1, size, size, dtype=torch.uint8), torch.zeros(n, latent_dim),
                       torch.zeros(n, dtype=torch.long), WeakPerspectiveCamera.from_view([0.0] * n).as_tensor(),
                       torch.zeros(n, 2, flow_size, flow_size, dtype=torch.half), torch.zeros(n, dtype=torch.bool))


def concat_pools(*pools: EncoderPool) -> EncoderPool:
    return EncoderPool(*(torch.cat([getattr(p, f.name) for p in pools]) for f in fields(EncoderPool)))


# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------


def camera_labels(camera: torch.Tensor) -> dict:
    """Targets of the camera heads from ``(B, 7)`` cameras: azimuth / elevation (degrees), log scale, translation."""
    cam = WeakPerspectiveCamera.from_tensor(camera)
    az, el = azimuth_elevation(cam.rotation)
    return {"azimuth": az, "elevation": el, "log_scale": cam.scale.log(), "translation": cam.translation}


def encoder_losses(out, batch: dict, recipe: EncoderRecipe) -> dict:
    """Per-term losses of one batch (means over the rows where each label exists) and their weighted ``total``."""
    lab = camera_labels(batch["camera"])
    k = out.azimuth_logits.shape[1]
    width = 360.0 / k
    # soft azimuth labels: a Gaussian of one bin's width around the true angle, on the circle
    centres = torch.arange(k, dtype=lab["azimuth"].dtype) * width
    diff = (centres[None] - lab["azimuth"][:, None] + 180) % 360 - 180
    soft = torch.softmax(-(diff / width) ** 2 / 2, 1)
    nearest = diff.abs().argmin(1)
    offset_true = -diff[torch.arange(len(nearest)), nearest]
    offset_pred = out.azimuth_offset[torch.arange(len(nearest)), nearest]
    has_z = batch["has_z"].float()
    nz = has_z.sum().clamp_min(1)
    terms = {
        "class": F.cross_entropy(out.class_logits, batch["class_id"]),
        "azimuth": -(soft * F.log_softmax(out.azimuth_logits, 1)).sum(1).mean()
        + (offset_pred - offset_true).abs().mean() / width,
        "camera": ((out.elevation - lab["elevation"]).abs() / 45 + (out.log_scale - lab["log_scale"]).abs()
                   + (out.translation - lab["translation"]).abs().sum(1)).mean(),
        "z": ((out.z - batch["z"]) ** 2).mean(1).mul(has_z).sum() / nz,
        "flow": (out.flow - batch["flow"]).abs().mean((1, 2, 3)).mul(has_z).sum() / nz,
    }
    w = {"class": recipe.w_class, "azimuth": recipe.w_azimuth, "camera": recipe.w_camera, "z": recipe.w_z,
         "flow": recipe.w_flow}
    terms["total"] = sum(w[n] * terms[n] for n in w)
    return terms


def map_loss(generator, z_pred: torch.Tensor, z_true: torch.Tensor, class_id: torch.Tensor) -> torch.Tensor:
    """L1 between what the prior makes of the predicted and of the true latents: texture plus twice the deformation."""
    with torch.no_grad():
        tex_t, def_t = generator(z_true, class_id)
    tex_p, def_p = generator(z_pred, class_id)
    return (tex_p - tex_t).abs().mean() + 2 * (def_p - def_t).abs().mean()


def segmentation_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft-Dice of mask logits ``(B, 1, s, s)`` against masks ``(B, 1, S, S)`` in [0, 1]."""
    if mask.shape[-1] != logits.shape[-1]:
        mask = F.interpolate(mask, size=logits.shape[-2:], mode="area")
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * mask).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + mask.sum((1, 2, 3)) + 1)
    return F.binary_cross_entropy_with_logits(logits, mask) + dice.mean()


def _augment(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and per-channel gain jitter (photos are not lit like renders)."""
    b = image.shape[0]
    gain = 1 + 0.12 * (2 * torch.rand(b, 3, 1, 1, generator=g) - 1)
    bright = 1 + 0.2 * (2 * torch.rand(b, 1, 1, 1, generator=g) - 1)
    mean = image.mean((1, 2, 3), keepdim=True)
    contrast = 1 + 0.2 * (2 * torch.rand(b, 1, 1, 1, generator=g) - 1)
    return (((image - mean) * contrast + mean) * gain * bright).clamp(0, 1)


# --------------------------------------------------------------------------------------------------
# Training loops (resumable)
# --------------------------------------------------------------------------------------------------


def _bar(total: int, desc: str, on: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not on, mininterval=5.0)


def _lr(step: int, steps: int, base: float) -> float:
    warm = min(1.0, (step + 1) / 100)
    return base * warm * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))


def train_loop(model, pool: EncoderPool, steps: int, batch_size: int, lr: float, loss_fn, checkpoint: Path,
               seed: int, checkpoint_every: int, progress: bool, desc: str) -> tuple[dict, float]:
    """Adam with warm-up and cosine decay; resumes from ``checkpoint`` (written atomically every
    ``checkpoint_every`` steps and at the end). Returns the loss history ``{term: [per-step values]}`` and the
    training seconds summed over every run that wrote the checkpoint."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start, history, seconds = 0, {}, 0.0
    if checkpoint.exists():
        st = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start, history, seconds = int(st["step"]), st["history"], float(st.get("seconds", 0.0))
    t0 = time.perf_counter() - seconds
    g = torch.Generator()
    bar = _bar(steps, desc, progress)
    bar.update(start)
    model.train()
    for step in range(start, steps):
        g.manual_seed(seed * 1_000_003 + step)   # each step's batch depends on the step alone: resumes exactly
        idx = torch.randint(len(pool), (batch_size,), generator=g)
        batch = pool.batch(idx)
        batch["image"] = _augment(batch["image"], g)
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, lr)
        terms = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        for k, v in terms.items():
            history.setdefault(k, []).append(float(v.detach()))
        bar.update(1)
        if progress and step % 50 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in ((k, history[k][-1]) for k in terms)})
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                               "history": history, "seconds": time.perf_counter() - t0}, checkpoint)
    bar.close()
    model.eval()
    return history, (time.perf_counter() - t0 if start < steps else seconds)


@torch.no_grad()
def validation_figures(encoder: ImageEncoder, segmenter: SegmentationNet, root: Path, split: str,
                       limit: Optional[int] = None) -> dict:
    """On a split the encoder never trained on: species accuracy, azimuth error (median, within 20 / 45 degrees,
    beyond 135), elevation error, and the segmentation's mask IoU (mean, worst)."""
    from ..data.dataset import ReconstructionDataset
    from ..metrics import mask_iou

    ds = ReconstructionDataset(root, split, load_gt=False, limit=limit)
    b = ds.batch(range(len(ds)))
    out = encoder(b["image"], b["mask"])
    lab = camera_labels(b["camera"])
    az_err = ((out.azimuths(1)[:, 0] - lab["azimuth"] + 180) % 360 - 180).abs()
    seg = (segmenter(b["image"]) > 0).float()
    iou = mask_iou(seg, b["mask"])
    seen = b["class_id"] >= 0
    return {
        "split": split, "images": len(ds),
        "species_accuracy": float((out.class_id[seen] == b["class_id"][seen]).float().mean()) if seen.any() else None,
        "azimuth_error_median_deg": float(az_err.median()),
        "azimuth_within_20": float((az_err <= 20).float().mean()),
        "azimuth_within_45": float((az_err <= 45).float().mean()),
        "azimuth_flips_beyond_135": float((az_err > 135).float().mean()),
        "elevation_error_median_deg": float((out.elevation - lab["elevation"]).abs().median()),
        "mask_iou_mean": float(iou.mean()), "mask_iou_min": float(iou.min()),
    }


def build_encoder(data_dir: str | Path = "data", recipe: EncoderRecipe = EncoderRecipe(), device: str = "cpu",
                  out_dir: Optional[str | Path] = None, progress: bool = True,
                  steps: Optional[int] = None, seg_steps: Optional[int] = None) -> dict:
    """Make the shipped encoder and segmentation net from the shipped prior and the SynthBirds training split.

    Writes ``<out_dir>/<name>.pt`` and ``.json`` (default ``meshinv_lite/priors``) and returns the provenance.
    ``steps`` / ``seg_steps`` shorten training (a test or a dry run; the provenance records them).
    """
    from ..data.synthbirds import build_synthbirds, synthbirds_dir
    from ..gan.prior import load_shipped_prior
    from ..provenance import code_version
    from .shipped import REBUILD_COMMAND, save_encoder, shipped_paths

    t_start = time.perf_counter()
    root = synthbirds_dir(data_dir, recipe.data_profile)
    build_synthbirds(root, profile=recipe.data_profile, seed=recipe.seed, progress=progress,
                     splits=("train", "val"))
    work = Path(data_dir) / f"encoder_{recipe.name}"
    work.mkdir(parents=True, exist_ok=True)
    G, prior_info = load_shipped_prior()
    cfg = EncoderConfig(latent_dim=G.config.latent_dim, num_classes=G.config.num_classes)
    pool_file = work / "pool.pt"
    size = int(read_json(root / "meta.json")["config"]["image_size"])
    if pool_file.exists():
        pool = EncoderPool(**torch.load(pool_file, map_location="cpu", weights_only=True))
    else:
        t0 = time.perf_counter()
        prior_pool = prior_samples(G, recipe.prior_samples, recipe.seed, size, cfg.flow_size, progress=progress)
        data_pool = dataset_images(root, "train", cfg.flow_size, cfg.latent_dim, recipe.train_images)
        pool = concat_pools(prior_pool, data_pool)
        atomic_torch_save(asdict(pool), pool_file)
        if progress:
            print(f"pool: {len(prior_pool)} prior renders + {len(data_pool)} training images "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    torch.manual_seed(recipe.seed)
    encoder, segmenter = ImageEncoder(cfg), SegmentationNet(cfg)
    steps = recipe.steps if steps is None else steps
    seg_steps = recipe.seg_steps if seg_steps is None else seg_steps
    enc_hist, t_enc = train_loop(encoder, pool, steps, recipe.batch_size, recipe.lr,
                                 lambda m, b: encoder_losses(m(b["image"], b["mask"]), b, recipe),
                                 work / "encoder_ckpt.pt", recipe.seed, recipe.checkpoint_every, progress, "encoder")
    flow_steps = recipe.flow_steps if steps >= recipe.steps else 0
    if flow_steps:
        from ..gan.prior import SHIPPED
        from ..pseudo_gt.build import build_pseudo_gt

        build_pseudo_gt(root, "train", SHIPPED.pseudo_gt_config(), limit=recipe.flow_pseudo_gt_images,
                        seed=recipe.seed, progress=progress)
        idx, flows = pseudo_gt_flows(root, "train", cfg.flow_size, limit=recipe.flow_pseudo_gt_images)
        labelled_rows = torch.nonzero(~pool.has_z).squeeze(1)[idx]   # the training images, in split order
        flow = pool.flow.clone()
        flow[labelled_rows] = flows
        labelled = pool.has_z.clone()                                 # the prior's renders and those images
        labelled[labelled_rows] = True
        flow_pool = replace(pool, flow=flow).select(torch.nonzero(labelled).squeeze(1))
        for name, p in encoder.named_parameters():
            p.requires_grad_(name.startswith(("head_flow", "flow_decoder")))

        def flow_only(m, b):
            err = (m(b["image"], b["mask"]).flow - b["flow"]).abs().mean()
            return {"flow": err, "total": err}

        f_hist, f_seconds = train_loop(encoder, flow_pool, flow_steps, recipe.batch_size, recipe.lr, flow_only,
                                       work / "encoder_flow_ckpt.pt", recipe.seed + 3, recipe.checkpoint_every,
                                       progress, "encoder (flow head on pseudo-GT)")
        encoder.requires_grad_(True)
        enc_hist = {**enc_hist, **{f"flow_phase_{k}": v for k, v in f_hist.items()}}
        t_enc += f_seconds
    z_steps = recipe.z_steps if steps >= recipe.steps else 0
    if z_steps:
        G.requires_grad_(False)
        z_pool = pool.select(torch.nonzero(pool.has_z).squeeze(1))

        def with_maps(m, b):
            out = m(b["image"], b["mask"])
            terms = encoder_losses(out, b, recipe)
            terms["maps"] = map_loss(G, out.z, b["z"], b["class_id"])
            terms["total"] = terms["total"] + recipe.w_maps * terms["maps"]
            return terms

        z_hist, z_seconds = train_loop(encoder, z_pool, z_steps, recipe.z_batch_size, recipe.z_lr, with_maps,
                                       work / "encoder_maps_ckpt.pt", recipe.seed + 2, recipe.checkpoint_every,
                                       progress, "encoder (latent by maps)")
        enc_hist = {**enc_hist, **{f"maps_phase_{k}": v for k, v in z_hist.items()}}
        t_enc += z_seconds
    seg_pool = concat_pools(pool, background_pool(recipe.seg_negatives, size, recipe.seed + 4, cfg.latent_dim,
                                                  cfg.flow_size)) if recipe.seg_negatives else pool
    seg_hist, t_seg = train_loop(segmenter, seg_pool, seg_steps, recipe.seg_batch_size, recipe.lr,
                                 lambda m, b: {"total": segmentation_loss(m(b["image"]), b["mask"])},
                                 work / "segmenter_ckpt.pt", recipe.seed + 1, recipe.checkpoint_every, progress,
                                 "segmenter")
    val = validation_figures(encoder, segmenter, root, "val")
    pt, js = shipped_paths(recipe, out_dir)
    save_encoder(pt, encoder, segmenter, recipe)
    provenance = {
        "name": recipe.name, "file": pt.name, "rebuild_command": REBUILD_COMMAND, "recipe": recipe.to_dict(),
        "encoder_config": cfg.to_dict(), "complete": steps >= recipe.steps and seg_steps >= recipe.seg_steps,
        "steps": steps, "flow_steps": flow_steps, "z_steps": z_steps, "seg_steps": seg_steps,
        "prior": {"file": prior_info.get("file"), "iteration": prior_info.get("iteration")},
        "data_recipe": {"generator": "synthbirds", "profile": recipe.data_profile, "seed": recipe.seed,
                        "prior_samples": recipe.prior_samples, "train_images": int((~pool.has_z).sum()),
                        "camera_labels_of_training_images": "noisy (SfM-like)"},
        "parameters": {"encoder": sum(p.numel() for p in encoder.parameters()),
                       "segmenter": sum(p.numel() for p in segmenter.parameters())},
        "file_bytes": pt.stat().st_size, "code_version": code_version(),
        "machine": {"device": str(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "platform": platform.platform()},
        "wall_time": {"encoder_seconds": t_enc, "segmenter_seconds": t_seg,
                      "this_run_seconds": time.perf_counter() - t_start,
                      "note": "training seconds summed over resumed runs (stored in the checkpoints)"},
        "validation": val,
        "loss_tail": {"encoder": {k: sum(v[-50:]) / len(v[-50:]) for k, v in enc_hist.items()},
                      "segmenter": sum(seg_hist["total"][-50:]) / len(seg_hist["total"][-50:])},
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    write_json(js, provenance)
    return provenance
