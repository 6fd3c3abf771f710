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
(:func:`~meshinv_lite.render.normalize_for_protocol`), in the canonical pose at 30 degrees elevation, turned
in 30 degree steps (:func:`~meshinv_lite.render.protocol_azimuths`), on white, and compare them with the
real images of ``reference_splits`` (test + val) masked on white. With Inception-v3 weights on disk the keys
are ``fid_1``, ``fid_10``, ``fid_12``; otherwise the figures are Frechet distances of a fallback extractor,
stored as ``fd_fallback_1`` ... with ``fd_feature_extractor`` naming it: never call them FID.

In-domain realism (SynthBirds, :func:`realism_figures`): the same 1/10/12 views of every reconstruction against
the renders of *its own ground truth* (not the test photos), in the features of the SynthBirds-trained evaluation
network that no loss uses: ``fd_in_domain_1/10/12``, ``perceptual_novel`` and ``sharpness_novel``.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..distributed import SINGLE, DistContext
from ..io import _jsonable, read_json, write_json
from ..render.camera import WeakPerspectiveCamera
from ..render.dibr import render_mesh
from ..render.mesh import TemplateMesh, deform_vertices
from .fid import _resize, fid_figures, reference_images
from .ground_truth import texture_error_by_visibility
from .store import (
    CSV_NAME,
    PART_GLOB,
    PART_NAME,
    RECON_DIR,
    _merge_parts,
    generator_fingerprint,
    load_reconstructions,
    read_rows,
    save_reconstructions,
    write_rows,
)

SIGNATURE_NAME = "evaluation.json"


GT_AZIMUTHS = tuple(range(0, 360, 30))  # ground-truth views: turns from the input view


def _per_image_rows(rec, batch: dict, names: Sequence[str], template: TemplateMesh, render_config, ds) -> list[dict]:
    from .ground_truth import reconstruction_metrics

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
    from ..data.synthbirds import occluder_mask
    from ..metrics import mask_iou

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


#: What :func:`evaluate_split` can score: the inversion, or a regression baseline with its texture variant.
EVALUATION_METHODS = {"inversion": None, "encoder_only": "generator", "texture_flow": "flow"}


def _check_arguments(limit, batch_size, views, camera: str) -> tuple[int, ...]:
    """Refuse, naming the argument, what would fail after inverting (or write a ``metrics.json`` of 0 images);
    returns ``views`` as a tuple of ints."""
    from .._checks import check_fid_views
    from ..data.dataset import camera_key

    for name, v, optional in (("limit", limit, True), ("batch_size", batch_size, False)):
        if v is None and optional:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1{' (or None: all images)' if optional else ''}, got {v!r}")
    camera_key(camera)  # ValueError naming the camera kinds
    return check_fid_views(views)


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
    method: str = "inversion",
    encoder=None,
    fid_reference_stats=None,
) -> dict:
    """Invert ``split`` (first ``limit`` images) in batches, score every image, then the split as a whole.

    Args:
        generator: the pretrained (EMA) generator; config: an :class:`~meshinv_lite.inversion.InversionConfig`.
        out_dir: where ``per_image.csv``, ``reconstructions/``, ``evaluation.json`` and ``metrics.json`` go.
        camera: the cameras inversion is given, ``"noisy"`` or ``"exact"``.
        batch_size: images per inversion batch (and per CSV update). Batch ``k`` is inverted with seed
            ``seed + index of its first image``, so a resumed run matches an uninterrupted one with the
            same ``batch_size``.
        extractor: CNN for the feature losses of inversion (default: ``config.features``; ``"auto"`` on a dataset
            of another category than birds means that category's in-domain loss network, ``synthcars_features``).
        fid_extractor: the FID network (default: :func:`meshinv_lite.features.load_fid_extractor` with
            ``fid_weights``: Inception-v3 when the weights are found, else the labelled fallback).
        views: which of FID_1/10/12 to compute (empty: none).
        fid_reference_stats: ``(mu, sigma)`` of the real images for FID_10/12 (MeshInversion's precomputed CUB
            statistics, :func:`meshinv_lite.data.cub_meshinversion.read_fid_stats`); used with Inception-v3 only,
            else the images of ``reference_splits`` are the reference.
        force: discard earlier results in ``out_dir`` made with other settings instead of refusing.
        choose_class: invert every image as if its class were unknown (chosen in the initialisation, as
            ``test_unseen``'s class -1 always is). On a split with classes this measures what not knowing the
            class costs, and ``class_accuracy`` how often the chosen class is the true one.
        dist: the :class:`~meshinv_lite.distributed.DistContext` of a ``torchrun`` launch; every rank calls
            this function with the same arguments and gets the same result back.
        realism: with ground truth, also the in-domain realism figures (:func:`realism_figures`: FD in-domain
            1/10/12, perceptual distance, sharpness) with ``eval_net`` (default: the shipped evaluation network of the dataset's category:
            ``synthbirds_eval``, ``synthcars_eval``).
        method: ``"inversion"`` (``config``'s search), or a regression baseline: ``"encoder_only"`` or
            ``"texture_flow"`` (:func:`~meshinv_lite.inversion.regress` with ``encoder``, default the shipped one;
            the encoder predicts the camera, so ``camera`` is not used, and ``config`` gives only the render size).
            ``encoder`` is also the start of a ``config`` with ``init="encoder"``.
    Returns:
        the aggregate written to ``metrics.json`` (plus ``"newly_inverted"``: images inverted by this call).
    """
    from tqdm.auto import tqdm

    from ..data.category import category_of
    from ..data.dataset import ReconstructionDataset
    from ..inversion.config import UNKNOWN_CLASS
    from ..inversion.search import invert_batch

    if method not in EVALUATION_METHODS:
        raise ValueError(f"method must be one of {EVALUATION_METHODS}, got {method!r}")
    views = _check_arguments(limit, batch_size, views, camera)  # before anything is read, inverted or written
    category = category_of(dataset_root)
    if config.features == "auto" and category.name != "birds":
        config = replace(config, features=category.loss_features)  # its own in-domain loss network
    ctx = dist or SINGLE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = next(generator.parameters()).device
    template = (template or generator.template()).to(device)  # the generator's own (the authors' differ)
    ds = ReconstructionDataset(dataset_root, split, limit=limit)
    check_template_fits_ground_truth(template, ds.has_gt, dataset_root)
    names = [str(n) for n in ds.data.names[: len(ds)]]

    signature = {"split": split, "camera": camera, "generator": generator_fingerprint(generator),
                 "config": config.to_dict(), "dataset_seed": ds.meta.get("seed"), "dataset_profile": ds.meta.get("profile"),
                 "seed": int(seed)}
    if choose_class:  # (absent otherwise: results made before the option existed stay valid)
        signature["choose_class"] = True
    if method != "inversion":
        signature["method"] = method
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

    if encoder is None and (method != "inversion" or config.init == "encoder"):   # once, not per batch
        from ..encoder import load_shipped_encoder

        encoder = load_shipped_encoder(device=device)[0]
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
        if method == "inversion":
            rec = invert_batch(generator, given, config, camera=camera, template=template, extractor=extractor,
                               seed=seed + idx[0], encoder=encoder)
        else:
            from ..inversion.regression import regress_batch

            rec = regress_batch(generator, given, EVALUATION_METHODS[method], config.render, encoder=encoder,
                                template=template)
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
    sources = ds.data.annotations.get("mask_source")
    if sources is not None:  # real data: say which mask the IoU was measured against (MeshInversion: PointRend's)
        metrics["iou_mask_source"] = sorted({str(x) for x in np.asarray(sources)[: len(names)]})
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
            from ..features.registry import load_fid_extractor

            fid_extractor = load_fid_extractor(fid_weights, device=device)
        size = config.render.image_size
        items = ds.batch([int(r["index"]) for r in keep])
        inputs, masks = _resize(items["image"], items["mask"], size)
        stats = fid_reference_stats if not fid_extractor.is_fallback else None
        reference = reference_images(dataset_root, reference_splits, size) if stats is None else None
        t1 = time.perf_counter()
        metrics.update(fid_figures(template, recs, inputs.to(device), masks.to(device), reference, config.render,
                                   fid_extractor, views, reference_stats=stats))
        metrics["seconds_fid"] = time.perf_counter() - t1
    if keep and ds.has_gt and realism:
        t2 = time.perf_counter()
        if eval_net is None:
            from ..features.registry import load_feature_extractor

            eval_net = load_feature_extractor(category.eval_features, device=device)
        metrics.update(realism_figures(template, recs, ds.batch([int(r["index"]) for r in keep]), config.render,
                                       eval_net=eval_net, device=device))
        metrics["seconds_realism"] = time.perf_counter() - t2
    write_json(out / "metrics.json", metrics)
    return ctx.broadcast_object(metrics)


def check_template_fits_ground_truth(template: TemplateMesh, has_ground_truth: bool, dataset_root) -> None:
    """Refuse to score a generator whose mesh is not the dataset's against that dataset's 3D ground truth.

    SynthBirds' and SynthCars' true deformation maps offset this package's UV sphere (:func:`make_uv_sphere`); an
    imported authors' generator deforms its own template, so its 3D Chamfer, novel views and realism against those
    maps would compare different meshes (and at lite the map sizes even agree, so nothing else would fail).
    """
    if not has_ground_truth:
        return
    from ..render.mesh import make_uv_sphere

    sphere = make_uv_sphere()
    same = (template.vertices.shape == sphere.vertices.shape and template.faces.shape == sphere.faces.shape
            and torch.equal(template.faces.cpu(), sphere.faces))
    if not same:
        raise ValueError(f"{dataset_root} has 3D ground truth on this package's UV sphere, but the generator deforms "
                         f"another mesh ({template.vertices.shape[0]} vertices; an imported authors' generator): its "
                         "ground-truth figures would compare different meshes. Evaluate imported weights on a dataset "
                         "without 3D ground truth (CUB from data_scripts/prepare_cub.py), or use this package's prior.")


@torch.no_grad()
def realism_figures(template: TemplateMesh, recs: dict, gt_batch: dict, render_config, eval_net=None,
                    device="cpu", batch_size: int = 16) -> dict:
    """Novel-view realism of saved reconstructions against SynthBirds ground truth, with the in-domain
    evaluation network (:mod:`meshinv_lite.evaluation.realism`; never the network of a loss): ``fd_in_domain_1/10/12``,
    the mean ``perceptual_novel`` distance and ``sharpness_novel`` ratio, and ``realism_network`` naming it."""
    from ..features.registry import load_feature_extractor
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
