"""Pseudo ground truth from single views: a fitted deformation map and a partial UV texture per image.

The GAN never sees 3D data. For every training image we make UV-space targets from that one view:

1. **Species mean shape**: one silhouette says nothing about depth, but many photos of one species,
   seen from many known viewpoints, do. A single mesh per species is fitted to the silhouettes of
   several of its training images at once (:func:`fit_species_means`): a visual hull of the species.
2. **Shape**: fit a deformation map to each image's silhouette under its camera
   (:func:`meshinv_lite.pseudo_gt.fit_deformation`, symmetric), starting from the species mean and
   anchored to it: offsets along the line of sight (depth, which the silhouette cannot see) are held
   close to the mean's, in-plane offsets follow the silhouette. Without the anchor (``shape_prior=
   "sphere"``) every image is fitted from the sphere alone: silhouettes match as well, but depth is
   guessed, and the surface slides differently in every image (measured on 96 quick-profile training
   images: 3D Chamfer to the true shapes 0.105 from the sphere, 0.056 anchored to the species mean, at
   the same silhouette IoU 0.97).
3. **Texture**: back-project the image into UV space. Rasterize the mesh *laid out in UV space*
   (vertex positions = UVs) to find, for every texel, the 3D surface point it colours; project that
   point with the camera and read the image there.
4. **Visibility**: a texel is visible when its surface point faces the camera, is not hidden by
   another part of the mesh (its depth matches the image z-buffer, as in shadow mapping) and falls
   inside the image's mask (so occluders excluded from the mask stay invisible). The texture is
   multiplied by this mask; the GAN's UV discriminator ignores invisible texels.
5. **Mirror fill** (birds are left-right symmetric, and so is the generator): a texel hidden on one
   side takes the colour of its mirror texel on the other side when that one was seen, which roughly
   doubles the texture a side view gives.

ConvMesh finds visible texels from the gradient of the render with respect to the texture; the depth
test used here gives the same answer for texels that reach a pixel centre, is exact about
self-occlusion, and needs no backward pass.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..data.dataset import batch_cameras
from ..distributed import SINGLE, DistContext
from .config import PseudoGTConfig, pseudo_gt_dir, read_json_roundtrip
from .fit import make_pseudo_gt
from .species_means import species_means

PSEUDO_GT_FORMAT = """\
pseudo ground truth of one dataset split, written by meshinv_lite.pseudo_gt.build_pseudo_gt

<dataset root>/pseudo_gt_<camera>/species_means.npz   shape_prior="species_mean": one deformation map per
                          class fitted to the first `mean_views` training images of that class (made once,
                          from the train split, and shared by every split): means (C, 3, Hd, Wd) float32,
                          views (V,) int64 rows of the train split, iou (V,) float32, signature (json str)
<dataset root>/pseudo_gt_<camera>/<split>/      camera = "noisy" (default) or "exact"
  signature.json          settings the shards were made with (a re-run with others needs force=True)
  shard_00000.npz ...     one per batch of images, written atomically:
    index       (n,)              int64   row in the split's annotations.npz
    class_id    (n,)              int64
    camera      (n, 7)            float32 the camera the texture was back-projected with (the annotation's, or
                                          its refinement when the fit refines cameras: fit.lr_camera > 0)
    deformation (n, 3, Hd, Wd)    float32 fitted deformation map
    texture     (n, 3, Ht, Wt)    uint8   back-projected texture, value / 255, 0 where invisible
    visibility  (n, 1, Ht, Wt)    bool    visible texels
    iou         (n,)              float32 silhouette IoU of the fitted mesh
  meta.json               written last: marks the split complete (num_images, shards, mean IoU, ...)
"""


def build_pseudo_gt(
    dataset_root,
    split: str = "train",
    config: PseudoGTConfig = PseudoGTConfig(),
    device: str | torch.device = "cpu",
    limit: Optional[int] = None,
    force: bool = False,
    seed: int = 0,
    progress: bool = True,
    dist: Optional[DistContext] = None,
    workers: Optional[int] = None,
) -> dict:
    """Make pseudo ground truth for a split, shard by shard (resumable; see :data:`PSEUDO_GT_FORMAT`).

    ``workers``: processes fitting shards side by side, one torch thread each; 0: in this process; ``None``
    (default): :func:`~meshinv_lite.config.default_workers` on a CPU (one per idle core when 2 or more are idle,
    measured on 2 idle cores: 0.42 s/image on 96 lite images against 0.57 with 2 threads and 0.84 with 1), 0 on a GPU or under
    ``torchrun``. Shard ``i`` is fitted with its own seed wherever it runs, so the shards are the same either
    way (tested).

    A finished split with the same settings is kept (``status="exists"``); ``force=True`` rebuilds. A second
    process building the same split at the same time waits for the first (a lock beside the split's folder,
    :func:`meshinv_lite.io.file_lock`) and then finds it finished.
    ``dist``: a :class:`~meshinv_lite.distributed.DistContext`; under ``torchrun`` the shards are dealt to
    the ranks (each shard has its own seed, so the result does not depend on the number of ranks).
    Returns ``{"path", "num_images", "status" ("built" | "resumed" | "exists"), "mean_iou", "seconds"}``.
    """
    from contextlib import nullcontext

    from ..io import file_lock

    ctx = dist or SINGLE
    if config.camera not in ("noisy", "exact"):
        raise ValueError(f"config.camera must be 'noisy' or 'exact', got {config.camera!r}")
    if workers is not None and int(workers) < 0:
        raise ValueError(f"workers must be >= 0 (0: fit in this process), got {workers}")
    if workers and torch.device(device).type != "cpu":
        raise ValueError(f"workers={workers} fit on the CPU, but device={device!r}; pass workers=0 (or None) on a GPU")
    # one builder per split at a time: a second process waits, then finds the shards finished (rank 0 holds it
    # for a torchrun job; the other ranks wait for rank 0 at its barriers)
    lock = pseudo_gt_dir(dataset_root, split, config.camera).parent / f".lock-{split}"
    locked = ctx.is_main and Path(dataset_root).is_dir()  # (a missing dataset fails below, naming it)
    with file_lock(lock, f"the pseudo ground truth of {split!r}") if locked else nullcontext():
        return _build(dataset_root, split, config, device, limit, force, seed, progress, ctx, workers)


def _build(dataset_root, split: str, config: PseudoGTConfig, device, limit: Optional[int], force: bool, seed: int,
           progress: bool, ctx: DistContext, workers: Optional[int]) -> dict:
    """:func:`build_pseudo_gt` once its arguments are checked and its lock is held."""
    import shutil
    import time

    import numpy as np
    from tqdm.auto import tqdm

    from ..data.dataset import ReconstructionDataset
    from ..io import read_json, write_json
    from ..render.mesh import make_uv_sphere

    data = ReconstructionDataset(dataset_root, split, load_gt=False, limit=limit)
    out = pseudo_gt_dir(dataset_root, split, config.camera)
    signature = {"config": config.to_dict(), "num_images": len(data), "seed": seed,
                 "dataset_meta": {k: data.meta.get(k) for k in ("generator", "seed", "profile", "num_images")}}
    means_split = "train" if (Path(dataset_root) / "train" / "meta.json").exists() else split
    if config.shape_prior == "species_mean" and means_split != "train":
        signature["species_means_from"] = means_split  # no train split: the means come from this split
    meta_path = out / "meta.json"
    n, bs = len(data), config.batch_size
    shards = [(i, list(range(s, min(s + bs, n)))) for i, s in enumerate(range(0, n, bs))]
    if out.exists():
        old = read_json(out / "signature.json") if (out / "signature.json").exists() else None
        new_sig = read_json_roundtrip(signature)
        if old is None and not any(out.glob("shard_*.npz")):
            old = new_sig  # an empty folder without a signature (a start cut short): nothing to keep or refuse
        if force:
            ctx.barrier()  # every rank has looked before rank 0 deletes
            if ctx.is_main:
                shutil.rmtree(out)
        elif old is not None and old != new_sig and _same_but_count(old, new_sig):
            # Another number of images (``limit``), same settings: shard i holds the same images and was made
            # with the same seed, so every shard that still covers exactly its images is kept.
            ctx.barrier()
            if ctx.is_main:
                kept = _reconcile_shards(out, shards)
                meta_path.unlink(missing_ok=True)
                write_json(out / "signature.json", signature)
                if progress:
                    print(f"pseudo-GT {split}: {old.get('num_images')} -> {n} images; {kept} finished shards reused")
        elif old != new_sig:
            changed = _changed_keys(old or {}, new_sig)
            raise ValueError(f"{out} was made with other settings (differs in: {', '.join(changed)}); "
                             "pass force=True to rebuild it")
        elif meta_path.exists():
            meta = read_json(meta_path)
            return {"path": str(out), "num_images": meta["num_images"], "status": "exists",
                    "mean_iou": meta["mean_iou"], "seconds": 0.0}
    ctx.barrier()  # every rank has compared the signature on disk with its own before rank 0 writes one
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "signature.json", signature)
    ctx.barrier()

    template = make_uv_sphere().to(device)
    means = (species_means(dataset_root, config, device=device, seed=seed, progress=progress, dist=ctx, split=means_split)
             if config.shape_prior == "species_mean" else None)
    resumed = any((out / f"shard_{i:05d}.npz").exists() for i, _ in shards)
    t0 = time.perf_counter()
    todo = [(i, idx) for i, idx in ctx.shard(shards) if not (out / f"shard_{i:05d}.npz").exists()]
    n_workers = _worker_count(workers, device, ctx) if len(todo) > 1 else 0
    bar = tqdm(total=len(todo), desc=f"pseudo-GT {split}", unit="shard", disable=not progress or not ctx.is_main)
    if n_workers > 0:
        import multiprocessing as mp

        setup = (str(dataset_root), split, limit, config, seed, str(out), means.cpu() if means is not None else None)
        # fork where there is one (Linux, macOS): no re-import of the caller's script, which a script without an
        # ``if __name__ == "__main__"`` guard would need; the children set 1 thread, as DataLoader workers do.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(min(n_workers, len(todo)), initializer=_start_worker, initargs=setup) as pool:
            for _ in pool.imap_unordered(_shard_worker, todo):
                bar.update(1)
    else:
        for i, idx in todo:
            _fit_shard(data, template, config, seed, i, idx, out / f"shard_{i:05d}.npz", means, device)
            bar.update(1)
    bar.close()
    ctx.barrier()  # every shard is on disk
    seconds = time.perf_counter() - t0
    result = None
    if ctx.is_main:
        from .dataset import _read_shard

        hint = f"delete it and re-run build_pseudo_gt({str(dataset_root)!r}, {split!r}) to make it again"
        ious = np.concatenate([_read_shard(out / f"shard_{i:05d}.npz", hint)["iou"] for i, _ in shards])
        meta = {"num_images": n, "num_shards": len(shards), "mean_iou": float(ious.mean()), "split": split,
                "camera": config.camera, "texture_size": config.texture_size, "deform_size": config.fit.deform_size,
                "seconds": seconds, "format": PSEUDO_GT_FORMAT.splitlines()[0]}
        write_json(meta_path, meta)
        result = {"path": str(out), "num_images": n, "status": "resumed" if resumed else "built",
                  "mean_iou": meta["mean_iou"], "seconds": seconds}
    return ctx.broadcast_object(result)


def _worker_count(workers: Optional[int], device, ctx: DistContext) -> int:
    """Worker processes for :func:`build_pseudo_gt`: ``workers`` as given, else the CPU default (0 on a GPU,
    under torchrun, or inside a worker process already)."""
    import multiprocessing as mp

    if workers is not None:
        return int(workers)
    if torch.device(device).type != "cpu" or ctx.world_size > 1 or mp.parent_process() is not None:
        return 0
    from ..config import default_workers

    return default_workers()


def _fit_shard(data, template, config: "PseudoGTConfig", seed: int, i: int, idx: list, path: Path, means, device) -> None:
    """Fit shard ``i`` (images ``idx`` of ``data``) and write it to ``path`` atomically."""
    import numpy as np

    from ..io import atomic_savez

    batch = data.batch(idx)
    cam = batch_cameras(batch, config.camera).to(device)
    gen = torch.Generator().manual_seed(seed * 100003 + i)
    anchor = means.to(device)[batch["class_id"].to(device)] if means is not None else None
    pgt = make_pseudo_gt(template, batch["image"].to(device), batch["mask"].to(device), cam, config.texture_size,
                         config.fit, config.back_projection, generator=gen, shape_anchor=anchor)
    atomic_savez(
        path,
        index=np.asarray(idx, dtype=np.int64),
        class_id=batch["class_id"].numpy().astype(np.int64),
        camera=(pgt.cameras if pgt.cameras is not None else cam).as_tensor().detach().cpu().numpy().astype(np.float32),
        deformation=pgt.deformation.cpu().numpy().astype(np.float32),
        texture=(pgt.texture.clamp(0, 1) * 255).round().byte().cpu().numpy(),
        visibility=(pgt.visibility > 0.5).cpu().numpy(),
        iou=pgt.iou.cpu().numpy().astype(np.float32),
    )


#: What a worker process of :func:`build_pseudo_gt` fits with, set once per process by :func:`_start_worker`.
_WORKER: dict = {}


def _start_worker(root: str, split: str, limit, config: "PseudoGTConfig", seed: int, out: str, means) -> None:
    """Set up a worker process once (one torch thread, the split's dataset, the template), not once per shard."""
    torch.set_num_threads(1)
    from ..data.dataset import ReconstructionDataset
    from ..render.mesh import make_uv_sphere

    _WORKER.update(data=ReconstructionDataset(root, split, load_gt=False, limit=limit), template=make_uv_sphere(),
                   config=config, seed=seed, out=Path(out), means=means)


def _shard_worker(job: tuple[int, list]) -> int:
    """Fit shard ``i`` (images ``idx``) in a worker process set up by :func:`_start_worker`."""
    i, idx = job
    w = _WORKER
    _fit_shard(w["data"], w["template"], w["config"], w["seed"], i, idx, w["out"] / f"shard_{i:05d}.npz", w["means"], "cpu")
    return i


def _same_but_count(a: dict, b: dict) -> bool:
    """Two pseudo-GT signatures that differ at most in ``num_images``."""
    return {k: v for k, v in a.items() if k != "num_images"} == {k: v for k, v in b.items() if k != "num_images"}


def _reconcile_shards(out: Path, shards: list[tuple[int, list[int]]]) -> int:
    """Delete the shards in ``out`` that do not hold exactly the images ``shards`` assigns them
    (a last, partial shard; shards past a smaller limit). Returns how many finished shards remain."""
    import numpy as np

    expected = {i: idx for i, idx in shards}
    kept = 0
    for path in sorted(out.glob("shard_*.npz")):
        i = int(path.stem.split("_")[1])
        try:
            with np.load(path) as z:
                ok = i in expected and z["index"].tolist() == expected[i]
        except Exception:  # unreadable: made again
            ok = False
        if ok:
            kept += 1
        else:
            path.unlink()
    return kept


def _changed_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the entries that differ between two nested dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _changed_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out

