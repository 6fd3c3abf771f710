"""Training the in-domain feature networks on SynthBirds renders: targets the data gives for free, losses, the rebuild."""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..io import atomic_torch_save, read_json, write_json
from .in_domain import (
    TARGET_CHANNELS,
    DomainFeatureNet,
    FeatureNetRecipe,
    save_feature_net,
    shipped_paths,
)


@torch.no_grad()
def dense_targets(template, deform_map: torch.Tensor, camera, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel targets of ground-truth birds rendered at ``size`` px.

    Args:
        deform_map: ``(B, 3, Hd, Wd)`` ground-truth deformation maps; camera: their exact cameras.
    Returns:
        mask ``(B, 1, S, S)`` in {0, 1} and targets ``(B, 6, S, S)``: ``(cos 2 pi u, sin 2 pi u, 2 v - 1)``
        and the camera-space unit normal (zero on the background).
    """
    from ..render.camera import qrot
    from ..render.dibr import interpolate, rasterize
    from ..render.mesh import deform_vertices, vertex_normals

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
    from ..data.dataset import ReconstructionDataset
    from ..render.camera import WeakPerspectiveCamera
    from ..render.mesh import make_uv_sphere

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
            saved = torch.load(ckpt, map_location="cpu", weights_only=True)
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
    from ..data.category import get_category
    from ..data.synthbirds import build_dataset, synthbirds_dir
    from ..provenance import code_version
    from .in_domain import rebuild_command

    t0 = time.perf_counter()
    category = get_category(recipe.category)
    root = synthbirds_dir(data_dir, recipe.dataset_profile, category)
    build_dataset(root, category, category.config(recipe.dataset_profile), seed=recipe.dataset_seed,
                  splits=("train", "val"), progress=progress)
    net, report = train_feature_net(recipe, root, Path(data_dir) / f"features_{recipe.name}", device=device,
                                    progress=progress)
    pt, js = shipped_paths(recipe, out_dir)
    pt.parent.mkdir(parents=True, exist_ok=True)
    save_feature_net(pt, net, recipe, report["steps"])
    info = {"name": recipe.name, "label": recipe.label, "role": recipe.role, "recipe": recipe.to_dict(),
            "rebuild_command": rebuild_command(recipe), "code_version": code_version(),
            "data_recipe": {"dataset": category.dataset_name, "profile": recipe.dataset_profile, "seed": recipe.dataset_seed,
                            "split": "train", "dataset_meta": read_json(root / "meta.json")},
            "machine": {"platform": platform.platform(), "device": str(device), "threads": torch.get_num_threads()},
            "wall_seconds": time.perf_counter() - t0, **report,
            "file_bytes": pt.stat().st_size}
    write_json(js, info)
    return info
