"""Evaluating MeshInversion over a whole split: IoU, FID_1/10/12 (or their labelled fallback) and, on
SynthBirds, ground-truth metrics (DESIGN.md section 9).

:func:`evaluate_split` inverts the split's images in batches and keeps, in ``out_dir``:

* ``per_image.csv``: one row per image (IoU, on SynthBirds also ``iou_occluder_ignored``: the same with the pixels of
  the twig that was cut out of the mask left out of both masks, so that a bird completed behind the twig is not
  scored as an error; losses; the class inverted with: ``class_chosen`` and its name,
  chosen in the initialisation where ``class_id`` is -1 as in ``test_unseen``, whose held-out ``species`` is
  kept beside it; with ground truth: PSNR per view, SSIM, 3D Chamfer, F-score, texture error on the
  seen / unseen texels), rewritten atomically after every batch. A re-run
  skips every image already in it, so an interrupted evaluation resumes where it stopped;
* ``reconstructions/batch_<first name>.npz``: what FID renders need (``names``, ``z``, ``class_id``,
  ``texture`` as uint8, ``deformation``, ``camera`` and ``init_camera`` as ``(B, 7)``);
* ``evaluation.json``: what the rows were made with (config, generator fingerprint, camera); a re-run with
  other settings refuses to mix results (``force=True`` starts over);
* ``metrics.json``: means over the rows, mean PSNR per view, and the FID figures.

Under ``torchrun`` (``python -m meshinv_lite.cli evaluate``) the batches are dealt round-robin to the ranks;
each rank keeps its rows in ``per_image.part<rank>.csv`` while it works, and rank 0 merges them into
``per_image.csv`` and computes the split-level figures. Batch ``k`` is the same batch, with the same seed,
whatever the number of ranks, so a sharded evaluation reproduces a single-process one.

FID protocol (the authors'): **FID_1** compares renders at the (refined) input camera with the input
images, both masked on black. **FID_10 / FID_12** render every reconstruction re-centred and scaled
(:func:`~meshinv_lite.metrics.normalize_for_protocol`), in the canonical pose at 30 degrees elevation, turned
in 30 degree steps (:func:`~meshinv_lite.metrics.protocol_azimuths`), on white, and compare them with the
real images of ``reference_splits`` (test + val) masked on white. With Inception-v3 weights on disk the keys
are ``fid_1``, ``fid_10``, ``fid_12``; otherwise the figures are Frechet distances of a fallback extractor,
stored as ``fd_fallback_1`` ... with ``fd_feature_extractor`` naming it: never call them FID.

In-domain realism (SynthBirds, :func:`realism_figures`): the same 1/10/12 views of every reconstruction against
the renders of *its own ground truth* (not the test photos), in the features of the SynthBirds-trained evaluation
network that no loss uses: ``fd_in_domain_1/10/12``, ``perceptual_novel`` and ``sharpness_novel``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .camera import WeakPerspectiveCamera
from .distributed import SINGLE, DistContext
from .io import _jsonable, atomic_savez, atomic_write_bytes, read_json, write_json
from .mesh import TemplateMesh, deform_vertices, make_uv_sphere
from .metrics import (
    frechet_distance_features,
    normalize_for_protocol,
    protocol_azimuths,
    protocol_cameras,
    texture_error_by_visibility,
)
from .render import render_mesh

CSV_NAME = "per_image.csv"
PART_NAME = "per_image.part{rank}.csv"  # a rank's rows while a sharded evaluation runs
PART_GLOB = "per_image.part*.csv"
RECON_DIR = "reconstructions"
SIGNATURE_NAME = "evaluation.json"
GT_AZIMUTHS = tuple(range(0, 360, 30))  # ground-truth views: turns from the input view
WHITE = (1.0, 1.0, 1.0)
TEXT_COLUMNS = ("name", "species", "class_chosen_name")  # kept as strings when a CSV is read back ("000012" is a name)

#: The paper's Table 1 (CUB, MeshInversion): reference figures printed beside ours.
PAPER_CUB = {"iou": 0.708, "fid_1": 38.6, "fid_10": 38.6, "fid_12": 56.6}


# --------------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------------


def generator_fingerprint(generator: torch.nn.Module) -> str:
    """SHA-1 of a network's parameters and buffers: which prior made these reconstructions (also used to
    check that every rank of a distributed run holds the same networks)."""
    h = hashlib.sha1()
    for k, v in sorted(generator.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a per-image CSV (numbers as floats where they parse)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append({k: (v if k in TEXT_COLUMNS else _parse(v)) for k, v in r.items()})
    return rows


def _parse(v: str):
    if v in ("", "nan"):
        return float("nan")
    if v in ("True", "False"):
        return v == "True"
    try:
        return float(v) if any(c in v for c in ".eE") or v.lstrip("-").isdigit() else v
    except ValueError:
        return v


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write rows atomically (columns: the union, first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, restval="", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_bytes(path, buf.getvalue().encode())


def _merge_parts(out: Path) -> None:
    """Fold the per-rank CSVs an interrupted sharded run left behind into ``per_image.csv``."""
    parts = sorted(out.glob(PART_GLOB))
    if not parts:
        return
    by_name = {str(r["name"]): r for r in read_rows(out / CSV_NAME)}
    for p in parts:
        by_name.update({str(r["name"]): r for r in read_rows(p)})
    write_rows(out / CSV_NAME, sorted(by_name.values(), key=lambda r: int(r["index"])))
    for p in parts:
        p.unlink()


def save_reconstructions(path: str | Path, names: Sequence[str], rec) -> Path:
    """The parts of a :class:`~meshinv_lite.invert.Reconstruction` that renders need, atomically."""
    atomic_savez(
        path, names=np.asarray(list(names)), z=rec.z.cpu().numpy(), class_id=rec.class_id.cpu().numpy(),
        texture=(rec.texture.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy(),
        deformation=rec.deformation.float().cpu().numpy(), camera=rec.camera.as_tensor().cpu().numpy(),
        init_camera=rec.init_camera.as_tensor().cpu().numpy(),
    )
    return Path(path)


def load_reconstructions(out_dir: str | Path, names: Sequence[str]) -> dict:
    """Stacked arrays of the saved reconstructions of ``names`` (in that order), as tensors:
    ``texture`` ``(B, 3, Ht, Wt)`` float in [0, 1], ``deformation``, ``camera`` ``(B, 7)``, ``z``, ``class_id``.
    A name saved twice (a batch re-run after an interruption) comes from the newest file."""
    files = sorted(Path(out_dir, RECON_DIR).glob("batch_*.npz"), key=lambda p: p.stat().st_mtime_ns)
    where: dict[str, tuple[Path, int]] = {}
    for f in files:
        with np.load(f) as d:
            for i, n in enumerate(d["names"].tolist()):
                where[str(n)] = (f, i)
    missing = [n for n in names if n not in where]
    if missing:
        raise FileNotFoundError(f"no saved reconstruction for {missing[:5]}{' ...' if len(missing) > 5 else ''} in "
                                f"{Path(out_dir, RECON_DIR)}; re-run evaluate_split (or delete {CSV_NAME} to start over)")
    cache: dict[Path, dict] = {}
    parts: dict[str, list] = {k: [] for k in ("z", "class_id", "texture", "deformation", "camera")}
    for n in names:
        f, i = where[n]
        if f not in cache:
            with np.load(f) as d:
                cache[f] = {k: d[k] for k in parts}
        for k in parts:
            parts[k].append(cache[f][k][i])
    out = {k: torch.from_numpy(np.stack(v)) for k, v in parts.items()}
    out["texture"] = out["texture"].float() / 255
    out["names"] = list(names)
    return out


@torch.no_grad()
def render_protocol_views(template: TemplateMesh, vertices: torch.Tensor, textures: torch.Tensor,
                          azimuths: Sequence[float], render_config) -> torch.Tensor:
    """Renders ``(B, K, 3, H, W)`` on white of meshes re-centred, scaled and in the canonical pose."""
    verts = normalize_for_protocol(vertices)
    cams = protocol_cameras(azimuths, device=vertices.device)
    k = len(cams)
    bg = torch.tensor(WHITE, device=vertices.device)
    out = []
    for i in range(verts.shape[0]):
        img = render_mesh(template, verts[i:i + 1].expand(k, -1, -1), cams, textures[i:i + 1].expand(k, -1, -1, -1),
                          render_config, background=bg, soft=False).image
        out.append(img)
    return torch.stack(out)


@torch.no_grad()
def extract_features(extractor, images: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """``(N, D)`` float64 features of images ``(N, 3, H, W)`` in [0, 1] (vectors, or feature maps mean-pooled)."""
    device = next(extractor.parameters()).device
    feats = []
    for s in range(0, images.shape[0], batch_size):
        f = extractor(images[s:s + batch_size].to(device))
        feats.append((f.mean((2, 3)) if f.dim() == 4 else f).double().cpu())
    return torch.cat(feats).numpy()


def fid_key(k: int, is_fallback: bool) -> str:
    """``fid_k`` with Inception-v3, ``fd_fallback_k`` otherwise (a fallback figure is never called FID)."""
    return f"{'fd_fallback' if is_fallback else 'fid'}_{k}"


def reference_images(dataset_root, splits: Sequence[str], size: int, background=WHITE) -> torch.Tensor:
    """All images of ``splits`` (those that exist) masked onto ``background`` at ``size`` px."""
    import torch.nn.functional as F

    from .data.dataset import ReconstructionDataset

    imgs = []
    for split in splits:
        if not (Path(dataset_root) / split / "meta.json").exists():
            continue
        ds = ReconstructionDataset(dataset_root, split, load_gt=False)
        b = ds.batch(range(len(ds)))
        im, m = b["image"], b["mask"]
        if im.shape[-1] != size:
            im = F.interpolate(im, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            m = (F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False) > 0.5).float()
        bg = torch.tensor(background).view(1, 3, 1, 1) if background is not None else 0
        imgs.append(im * m + bg * (1 - m))
    if not imgs:
        raise FileNotFoundError(f"none of the reference splits {list(splits)} exists under {dataset_root}")
    return torch.cat(imgs)


@torch.no_grad()
def fid_figures(template: TemplateMesh, recs: dict, inputs: torch.Tensor, input_masks: torch.Tensor,
                reference: torch.Tensor, render_config, extractor, views: Sequence[int] = (1, 10, 12),
                batch_size: int = 16) -> dict:
    """FID_k (or the labelled fallback) of saved reconstructions (see :func:`load_reconstructions`).

    ``inputs``/``input_masks``: the input images at the render size (FID_1's real set, masked on black);
    ``reference``: real images masked on white (FID_10/12's real set). Returns the figures under
    :func:`fid_key` names plus ``fd_feature_extractor``, ``fd_is_fallback`` and the set sizes (no other key starts with ``fid``).
    """
    device = next(extractor.parameters()).device
    template = template.to(device)
    fb = bool(extractor.is_fallback)
    out = {"fd_feature_extractor": extractor.name, "fd_is_fallback": fb}
    n = recs["texture"].shape[0]
    multi = [k for k in views if k != 1]
    azimuths = protocol_azimuths(12) if multi else ()
    feats_1, feats_views = [], []
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        tex = recs["texture"][sl].to(device)
        verts = deform_vertices(template, recs["deformation"][sl].to(device))
        if 1 in views:
            cam = WeakPerspectiveCamera.from_tensor(recs["camera"][sl].to(device))
            r = render_mesh(template, verts, cam, tex, render_config, soft=False)
            feats_1.append(extract_features(extractor, r.image * r.mask))
        if multi:
            imgs = render_protocol_views(template, verts, tex, azimuths, render_config)  # (b, 12, 3, H, W)
            f = extract_features(extractor, imgs.flatten(0, 1))
            feats_views.append(f.reshape(imgs.shape[0], len(azimuths), -1))
    if 1 in views:
        real_1 = extract_features(extractor, inputs * input_masks)
        out[fid_key(1, fb)] = frechet_distance_features(np.concatenate(feats_1), real_1)
        out["fd_1_num_images"] = n
    if multi:
        fv = np.concatenate(feats_views)  # (N, 12, D)
        ref = extract_features(extractor, reference)
        out["fd_reference_images"] = int(reference.shape[0])
        for k in multi:
            keep = [azimuths.index(a) for a in protocol_azimuths(k)]
            out[fid_key(k, fb)] = frechet_distance_features(fv[:, keep].reshape(-1, fv.shape[-1]), ref)
            out[f"fd_{k}_num_renders"] = n * len(keep)
    return out


# --------------------------------------------------------------------------------------------------
# The whole split
# --------------------------------------------------------------------------------------------------


def _per_image_rows(rec, batch: dict, names: Sequence[str], template: TemplateMesh, render_config, ds) -> list[dict]:
    from .invert import reconstruction_metrics

    b = len(names)
    cols: dict[str, list] = {
        "name": list(names), "index": [int(i) for i in batch["index"]], "class_id": batch["class_id"].tolist(),
        "occluded": [bool(x) for x in batch["occluded"]], "iou": rec.iou.tolist(),
        "loss_total": rec.terms["total"].tolist(),
    }
    cols.update(_class_columns(rec, cols["index"], ds))
    for key in ("extreme", "tail_scale"):
        if key in ds.data.annotations:
            vals = ds.data.annotations[key][np.asarray(cols["index"])]
            cols[key] = [bool(v) if vals.dtype == bool else float(v) for v in vals]
    if "wing_open" in ds.data.annotations:
        cols["wing_open"] = ds.data.annotations["wing_open"][np.asarray(cols["index"])].max(-1).astype(float).tolist()
    if "occluder" in ds.data.annotations:
        twig = torch.as_tensor(ds.data.annotations["occluder"][np.asarray(cols["index"])])
        cols["iou_occluder_ignored"] = iou_occluder_ignored(rec, batch["mask"], twig, template, render_config).tolist()
    if "deform_map" in batch:
        device = rec.vertices.device
        m = reconstruction_metrics(rec, batch, template, render_config, GT_AZIMUTHS)
        for k in ("psnr_input_view", "psnr_novel", "ssim_novel", "chamfer_3d", "f_score", "folded", "folded_gt"):
            cols[k] = m[k].tolist()
        for j, az in enumerate(GT_AZIMUTHS):
            cols[f"psnr_az{az:03d}"] = m["psnr_per_view"][:, j].tolist()
        gt_verts = deform_vertices(template, batch["deform_map"].to(device))
        gt_cam = WeakPerspectiveCamera.from_tensor(batch["camera"]).to(device)
        t = texture_error_by_visibility(template, gt_verts, gt_cam, batch["mask"].to(device), rec.texture,
                                        batch["texture_map"].to(device))
        cols["tex_err_seen"], cols["tex_err_unseen"] = t["seen"].tolist(), t["unseen"].tolist()
        cols["seen_fraction"] = t["seen_fraction"].tolist()
    return [{k: v[i] for k, v in cols.items()} for i in range(b)]


@torch.no_grad()
def iou_occluder_ignored(rec, masks: torch.Tensor, occluder: torch.Tensor, template: TemplateMesh, render_config) -> torch.Tensor:
    """IoU ``(B,)`` of the reconstructions' silhouettes (at their refined cameras) with ``masks`` ``(B, 1, S, S)``,
    leaving out of both the pixels of the twig ``occluder`` ``(B, 5)`` (SynthBirds' ``(x0, y0, x1, y1,
    half_width)``, NaN rows: no twig, where it equals the plain IoU). The input mask has the twig cut out, so a
    reconstruction that completes the bird behind it, as it should, loses plain IoU there; even the true bird does."""
    from .data.synthbirds import occluder_mask
    from .metrics import mask_iou

    device = rec.vertices.device
    size = masks.shape[-1]
    pred = render_mesh(template.to(device), rec.vertices, rec.camera, rec.texture, render_config, soft=False).mask.cpu()
    if pred.shape[-1] != size:
        pred = torch.nn.functional.interpolate(pred, size=(size, size), mode="area")
    return mask_iou(pred, masks.cpu(), ignore=occluder_mask(occluder, size))


def _class_columns(rec, index: list[int], ds) -> dict[str, list]:
    """The class each image was inverted with (``class_chosen``: given, or chosen in the initialisation where
    ``class_id`` is -1) and its name; the held-out ``species`` of ``test_unseen`` rows."""
    names = ds.class_names
    chosen = rec.class_id.tolist()
    cols = {"class_chosen": chosen, "class_chosen_name": [names[c] if c < len(names) else "" for c in chosen]}
    if "species" in ds.data.annotations:
        cols["species"] = [str(s) for s in ds.data.annotations["species"][np.asarray(index)]]
    return cols


def _class_choice(rows: list[dict]) -> dict:
    """``{species: {chosen class name: images}}`` over the rows of held-out species (``species`` column)."""
    out: dict = {}
    for r in rows:
        if r.get("species"):
            per = out.setdefault(str(r["species"]), {})
            per[str(r["class_chosen_name"])] = per.get(str(r["class_chosen_name"]), 0) + 1
    return out


def _nanmean(values) -> float:
    a = np.asarray([v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)], dtype=float)
    return float(np.nanmean(a)) if a.size and np.isfinite(a).any() else float("nan")


def summarize_rows(rows: list[dict]) -> dict:
    """Means of every numeric column, mean PSNR per view, means by ``occluded`` / ``extreme`` and, for held-out
    species, by ``species`` with the classes chosen for them (``class_choice``)."""
    out: dict = {"num_images": len(rows)}
    if not rows:
        return out
    skip = {"name", "index", "class_id", "class_chosen", "occluded", "extreme"}
    numeric = [k for k in rows[0] if k not in skip and not k.startswith("psnr_az")
               and isinstance(rows[0][k], (int, float)) and not isinstance(rows[0][k], bool)]
    for k in numeric:
        out[k] = _nanmean(r[k] for r in rows)
    views = sorted(k for k in rows[0] if k.startswith("psnr_az"))
    if views:
        out["psnr_per_view"] = {str(int(k[7:])): _nanmean(r[k] for r in rows) for k in views}
    groups = {}
    for flag in ("occluded", "extreme"):
        if flag in rows[0]:
            for val in (True, False):
                sel = [r for r in rows if bool(r[flag]) == val]
                if sel:
                    groups[f"{flag}={val}"] = {"num_images": len(sel), **{k: _nanmean(r[k] for r in sel)
                                               for k in ("iou", "iou_occluder_ignored", "psnr_novel", "chamfer_3d")
                                               if k in sel[0]}}
    choice = _class_choice(rows)
    for species in choice:
        sel = [r for r in rows if r.get("species") == species]
        groups[f"species={species}"] = {"num_images": len(sel), **{k: _nanmean(r[k] for r in sel)
                                        for k in ("iou", "psnr_novel", "chamfer_3d") if k in sel[0]}}
    if groups:
        out["by_group"] = groups
    if choice:
        out["class_choice"] = choice
    return out


def evaluate_split(
    generator,
    dataset_root,
    split: str,
    config,
    out_dir,
    camera: str = "noisy",
    limit: Optional[int] = None,
    batch_size: int = 8,
    progress: bool = True,
    seed: int = 0,
    template: Optional[TemplateMesh] = None,
    extractor=None,
    fid_extractor=None,
    fid_weights=None,
    views: Sequence[int] = (1, 10, 12),
    reference_splits: Sequence[str] = ("test", "val"),
    force: bool = False,
    dist: Optional[DistContext] = None,
    choose_class: bool = False,
    realism: bool = True,
    eval_net=None,
) -> dict:
    """Invert ``split`` (first ``limit`` images) in batches, score every image, then the split as a whole.

    Args:
        generator: the pretrained (EMA) generator; config: an :class:`~meshinv_lite.invert.InversionConfig`.
        out_dir: where ``per_image.csv``, ``reconstructions/``, ``evaluation.json`` and ``metrics.json`` go.
        camera: the cameras inversion is given, ``"noisy"`` or ``"exact"``.
        batch_size: images per inversion batch (and per CSV update). Batch ``k`` is inverted with seed
            ``seed + index of its first image``, so a resumed run matches an uninterrupted one with the
            same ``batch_size``.
        extractor: CNN for the feature losses of inversion (default: the package's VGG-19 or its fallback).
        fid_extractor: the FID network (default: :func:`meshinv_lite.inception.load_fid_extractor` with
            ``fid_weights``: Inception-v3 when the weights are found, else the labelled fallback).
        views: which of FID_1/10/12 to compute (empty: none).
        force: discard earlier results in ``out_dir`` made with other settings instead of refusing.
        choose_class: invert every image as if its class were unknown (chosen in the initialisation, as
            ``test_unseen``'s class -1 always is). On a split with classes this measures what not knowing the
            class costs, and ``class_accuracy`` how often the chosen class is the true one.
        dist: the :class:`~meshinv_lite.distributed.DistContext` of a ``torchrun`` launch; every rank calls
            this function with the same arguments and gets the same result back.
        realism: with ground truth, also the in-domain realism figures (:func:`realism_figures`: FD in-domain
            1/10/12, perceptual distance, sharpness) with ``eval_net`` (default: the shipped evaluation network).
    Returns:
        the aggregate written to ``metrics.json`` (plus ``"newly_inverted"``: images inverted by this call).
    """
    from tqdm.auto import tqdm

    from .data.dataset import ReconstructionDataset
    from .invert import UNKNOWN_CLASS, invert_batch

    ctx = dist or SINGLE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = next(generator.parameters()).device
    template = (template or make_uv_sphere()).to(device)
    ds = ReconstructionDataset(dataset_root, split, limit=limit)
    names = [str(n) for n in ds.data.names[: len(ds)]]

    signature = {"split": split, "camera": camera, "generator": generator_fingerprint(generator),
                 "config": config.to_dict(), "dataset_seed": ds.meta.get("seed"), "dataset_profile": ds.meta.get("profile"),
                 "seed": int(seed)}
    if choose_class:  # (absent otherwise: results made before the option existed stay valid)
        signature["choose_class"] = True
    sig_path, csv_path = out / SIGNATURE_NAME, out / CSV_NAME
    signature = json.loads(json.dumps(_jsonable(signature)))  # as it reads back from disk
    if sig_path.exists():
        old = read_json(sig_path)
        if old != signature:
            changed = sorted(k for k in set(old) | set(signature) if old.get(k) != signature.get(k))
            if not force:
                raise ValueError(f"{out} holds results made with other settings (differences: {changed}); "
                                 "use another out_dir or pass force=True to start over")
            ctx.barrier()  # every rank has read the old signature before rank 0 deletes anything
            if ctx.is_main:
                csv_path.unlink(missing_ok=True)
                for f in [*out.glob(PART_GLOB), *(out / RECON_DIR).glob("batch_*.npz")]:
                    f.unlink()
    if ctx.is_main:
        write_json(sig_path, signature)
        _merge_parts(out)  # rows an interrupted sharded run left in per-rank files
    ctx.barrier()

    rows = read_rows(csv_path)
    done = {str(r["name"]) for r in rows}
    todo = [i for i, n in enumerate(names) if n not in done]
    batches = ctx.shard([todo[s:s + batch_size] for s in range(0, len(todo), batch_size)])
    mine_path = out / PART_NAME.format(rank=ctx.rank) if ctx.enabled else csv_path
    mine: list[dict] = []
    t0 = time.perf_counter()
    n_mine = sum(len(b) for b in batches)
    bar = tqdm(total=len(names) if not ctx.enabled else n_mine, initial=len(names) - len(todo) if not ctx.enabled else 0,
               desc=f"evaluate {split}" + (f" (rank 0 of {ctx.world_size})" if ctx.enabled else ""), unit="img",
               disable=not progress or not ctx.is_main)
    for idx in batches:
        batch = ds.batch(idx)
        given = {**batch, "class_id": torch.full_like(batch["class_id"], UNKNOWN_CLASS)} if choose_class else batch
        rec = invert_batch(generator, given, config, camera=camera, template=template, extractor=extractor, seed=seed + idx[0])
        bnames = [names[i] for i in idx]
        save_reconstructions(out / RECON_DIR / f"batch_{bnames[0]}.npz", bnames, rec)
        mine += _per_image_rows(rec, batch, bnames, template, config.render, ds)
        mine.sort(key=lambda r: int(r["index"]))
        # the record of completion, written after the reconstructions
        write_rows(mine_path, mine if ctx.enabled else sorted(rows + mine, key=lambda r: int(r["index"])))
        if extractor is None and rec.feature_extractor:
            write_json(out / "inversion_extractor.json", {"feature_extractor": rec.feature_extractor})
        bar.update(len(idx))
    bar.close()
    rows += [r for part in ctx.all_gather_object(mine) for r in part]  # one process: [mine]
    rows.sort(key=lambda r: int(r["index"]))
    if ctx.enabled:
        if ctx.is_main:
            write_rows(csv_path, rows)
            for f in out.glob(PART_GLOB):
                f.unlink()
        ctx.barrier()
    seconds = time.perf_counter() - t0

    keep = [r for r in rows if str(r["name"]) in set(names)]
    metrics = {"split": split, "camera": camera, "limit": limit, **summarize_rows(keep),
               "newly_inverted": len(todo), "seconds_inverting": seconds,
               "seconds_per_image": seconds / len(todo) if todo else None}
    if choose_class:
        known = [r for r in keep if r["class_id"] >= 0]
        metrics["choose_class"] = True
        metrics["class_accuracy"] = float(np.mean([r["class_chosen"] == r["class_id"] for r in known])) if known else None
    ext_path = out / "inversion_extractor.json"
    metrics["inversion_feature_extractor"] = (getattr(extractor, "name", None) if extractor is not None
                                              else read_json(ext_path)["feature_extractor"] if ext_path.exists() else "")
    if ctx.enabled:
        metrics["num_processes"] = ctx.world_size
        if not ctx.is_main:  # rank 0 alone computes the split-level figures and writes metrics.json
            return ctx.broadcast_object(None)
    recs = load_reconstructions(out, [str(r["name"]) for r in keep]) if keep and (views or (ds.has_gt and realism)) else None
    if views and keep:
        if fid_extractor is None:
            from .inception import load_fid_extractor

            fid_extractor = load_fid_extractor(fid_weights, device=device)
        size = config.render.image_size
        items = ds.batch([int(r["index"]) for r in keep])
        inputs, masks = _resize(items["image"], items["mask"], size)
        reference = reference_images(dataset_root, reference_splits, size)
        t1 = time.perf_counter()
        metrics.update(fid_figures(template, recs, inputs.to(device), masks.to(device), reference, config.render,
                                   fid_extractor, views))
        metrics["seconds_fid"] = time.perf_counter() - t1
    if keep and ds.has_gt and realism:
        t2 = time.perf_counter()
        metrics.update(realism_figures(template, recs, ds.batch([int(r["index"]) for r in keep]), config.render,
                                       eval_net=eval_net, device=device))
        metrics["seconds_realism"] = time.perf_counter() - t2
    write_json(out / "metrics.json", metrics)
    return ctx.broadcast_object(metrics)


@torch.no_grad()
def realism_figures(template: TemplateMesh, recs: dict, gt_batch: dict, render_config, eval_net=None,
                    device="cpu", batch_size: int = 16) -> dict:
    """Novel-view realism of saved reconstructions against SynthBirds ground truth, with the in-domain
    evaluation network (:mod:`meshinv_lite.realism`; never the network of a loss): ``fd_in_domain_1/10/12``,
    the mean ``perceptual_novel`` distance and ``sharpness_novel`` ratio, and ``realism_network`` naming it."""
    from .features import load_feature_extractor
    from .realism import fd_from_embeddings, realism_per_image

    net = eval_net if eval_net is not None else load_feature_extractor("synthbirds_eval", device=device)
    template = template.to(device)
    per, sharp, ep, et = [], [], [], []
    for s in range(0, recs["texture"].shape[0], batch_size):
        sl = slice(s, s + batch_size)
        verts = deform_vertices(template, recs["deformation"][sl].to(device))
        gt_verts = deform_vertices(template, gt_batch["deform_map"][sl].to(device))
        r = realism_per_image(net, template, verts, recs["texture"][sl].to(device),
                              WeakPerspectiveCamera.from_tensor(recs["camera"][sl].to(device)), gt_verts,
                              gt_batch["texture_map"][sl].to(device),
                              WeakPerspectiveCamera.from_tensor(gt_batch["camera"][sl].to(device)), render_config)
        per.append(r["perceptual"].mean(1).cpu())
        sharp.append(r["sharpness_ratio"].mean(1).cpu())
        ep.append(r["embed_pred"])
        et.append(r["embed_true"])
    out = {"realism_network": net.name, "perceptual_novel": float(torch.cat(per).mean()),
           "sharpness_novel": float(torch.cat(sharp).mean())}
    if sum(e.shape[0] for e in ep) >= 2:
        out.update(fd_from_embeddings(np.concatenate(ep), np.concatenate(et)))
    return out


def _resize(images: torch.Tensor, masks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch.nn.functional as F

    if images.shape[-1] == size:
        return images, masks
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    masks = (F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False) > 0.5).to(images.dtype)
    return images, masks


# --------------------------------------------------------------------------------------------------
# The paper's Table 1
# --------------------------------------------------------------------------------------------------


def _fmt(v, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _fmt_sig(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def results_table(metrics: dict, label: str = "ours (SynthBirds)", extra_rows: Sequence[tuple[str, dict]] = ()) -> str:
    """The paper's Table 1 layout (IoU, FID_1, FID_10, FID_12) in Markdown, the paper's CUB figures
    beside ours, with the differences spelled out (data; and the feature extractor when the fallback ran).
    ``extra_rows``: more ``(label, metrics)`` rows (e.g. the hard split; missing figures print as n/a)."""
    fb = bool(metrics.get("fd_is_fallback", True))
    name = "FD (fallback)" if fb else "FID"
    head = f"| method | data | IoU ↑ | {name}_1 ↓ | {name}_10 ↓ | {name}_12 ↓ |"
    lines = [head, "|---|---|---|---|---|---|",
             f"| MeshInversion (paper, Table 1) | CUB-200-2011 | {PAPER_CUB['iou']:.3f} | {PAPER_CUB['fid_1']:.1f} | "
             f"{PAPER_CUB['fid_10']:.1f} | {PAPER_CUB['fid_12']:.1f} |"]
    for lab, m in [(label, metrics), *extra_rows]:
        figs = [m.get(fid_key(k, fb)) for k in (1, 10, 12)]
        lines.append(f"| {lab} | SynthBirds {m.get('split', '')}, {m.get('num_images', 0)} images, "
                     f"{m.get('camera', '')} cameras | {_fmt(m.get('iou'), 3)} | "
                     + " | ".join(_fmt_sig(f) if fb else _fmt(f, 1) for f in figs) + " |")
    notes = ["", "The paper's row is on CUB (real photos, thousands of test images); ours is on synthetic birds with far fewer "
             "images: the numbers show the protocol running, not a reproduction of the paper's figures."]
    if fb:
        notes.append(f"**Our distance columns are NOT FID**: no Inception-v3 FID weights were found, so they are Frechet "
                     f"distances of a fallback extractor ({metrics.get('fd_feature_extractor', '?')}), on another "
                     f"scale and not comparable to the paper's FID.")
    else:
        notes.append(f"FID with {metrics.get('fd_feature_extractor', 'Inception-v3')}; with so few images FID is "
                     "biased upwards and not comparable to figures over thousands of images.")
    return "\n".join(lines + notes) + "\n"


GT_COLUMNS = (("psnr_input_view", "PSNR input view ↑", 2), ("psnr_novel", "PSNR novel views ↑", 2),
              ("ssim_novel", "SSIM novel ↑", 3), ("chamfer_3d", "3D Chamfer ↓", 4), ("f_score", "F-score ↑", 3),
              ("tex_err_seen", "texture error, seen ↓", 3), ("tex_err_unseen", "texture error, unseen ↓", 3),
              ("folded", "folded faces ↓", 4), ("folded_gt", "folded faces, true birds", 4))
#: In-domain realism (:func:`realism_figures`): the evaluation network's figures, never called FID.
REALISM_COLUMNS = (("fd_in_domain_1", "FD in-domain_1 ↓", 3), ("fd_in_domain_10", "FD in-domain_10 ↓", 3),
                   ("fd_in_domain_12", "FD in-domain_12 ↓", 3), ("perceptual_novel", "perceptual distance, novel ↓", 4),
                   ("sharpness_novel", "sharpness ratio, novel (1 = true detail)", 3))


def ground_truth_table(rows: Sequence[tuple[str, dict]]) -> str:
    """Markdown table of the SynthBirds ground-truth figures (not in the paper: CUB has no 3D ground truth)."""
    lines = ["| split | " + " | ".join(h for _, h, _ in GT_COLUMNS) + " |", "|---|" + "---|" * len(GT_COLUMNS)]
    for lab, m in rows:
        lines.append(f"| {lab} | " + " | ".join(_fmt(m.get(k), d) for k, _, d in GT_COLUMNS) + " |")
    if any("fd_in_domain_12" in m for _, m in rows):
        lines += ["", "| split | " + " | ".join(h for _, h, _ in REALISM_COLUMNS) + " |",
                  "|---|" + "---|" * len(REALISM_COLUMNS)]
        for lab, m in rows:
            lines.append(f"| {lab} | " + " | ".join(_fmt(m.get(k), d) for k, _, d in REALISM_COLUMNS) + " |")
        net = next((m.get("realism_network") for _, m in rows if m.get("realism_network")), "?")
        lines += ["", f"FD in-domain: Frechet distance of novel views to the true birds' renders (the paper's 1/10/12-view "
                  f"protocol) in the features of {net}; not FID, and on its own scale."]
    return "\n".join(lines) + "\n"
