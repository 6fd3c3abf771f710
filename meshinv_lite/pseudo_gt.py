"""Pseudo ground truth from single views: a fitted deformation map and a partial UV texture per image.

The GAN never sees 3D data. For every training image we make UV-space targets from that one view:

1. **Species mean shape**: one silhouette says nothing about depth, but many photos of one species,
   seen from many known viewpoints, do. A single mesh per species is fitted to the silhouettes of
   several of its training images at once (:func:`fit_species_means`): a visual hull of the species.
2. **Shape**: fit a deformation map to each image's silhouette under its camera
   (:func:`meshinv_lite.silhouette_fit.fit_deformation`, symmetric), starting from the species mean and
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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ._checks import check_unit_range
from .backproject import BackProjectionConfig, back_project, mirror_fill
from .backproject import uv_fragments  # noqa: F401  (re-exported: pseudo_gt.uv_fragments)
from .camera import WeakPerspectiveCamera
from .distributed import SINGLE, DistContext
from .mesh import TemplateMesh
from .silhouette_fit import SilhouetteFitConfig, fit_deformation


@dataclass
class PseudoGT:
    """Pseudo ground truth for a batch of images.

    Attributes:
        deformation: ``(B, 3, Hd, Wd)`` fitted deformation maps.
        texture: ``(B, 3, Ht, Wt)`` back-projected colours in ``[0, 1]`` (0 where invisible).
        visibility: ``(B, 1, Ht, Wt)`` in ``{0, 1}``.
        iou: ``(B,)`` silhouette IoU of the fitted meshes.
        vertices: ``(B, N, 3)`` fitted meshes.
    """

    deformation: torch.Tensor
    texture: torch.Tensor
    visibility: torch.Tensor
    iou: torch.Tensor
    vertices: torch.Tensor
    history: dict = field(default_factory=dict)


def make_pseudo_gt(
    template: TemplateMesh,
    images: torch.Tensor,
    masks: torch.Tensor,
    camera: WeakPerspectiveCamera,
    texture_size: int,
    fit: SilhouetteFitConfig = SilhouetteFitConfig(),
    back_projection: BackProjectionConfig = BackProjectionConfig(),
    generator: Optional[torch.Generator] = None,
    shape_anchor: Optional[torch.Tensor] = None,
) -> PseudoGT:
    """Fit shapes to masks, then back-project the images: the whole per-batch recipe.

    ``shape_anchor``: optional ``(B, 3, Hd, Wd)`` maps (each image's species mean shape) the fits start
    from and are anchored to (see :class:`~meshinv_lite.silhouette_fit.SilhouetteFitConfig`).
    """
    images = check_unit_range("images", images)
    masks = check_unit_range("masks", masks, "mask")
    fitted = fit_deformation(template, masks, camera, config=fit, generator=generator, init=shape_anchor,
                             anchor=shape_anchor)
    texture, vis = back_project(template, fitted.vertices, camera, images, masks, texture_size, back_projection)
    if back_projection.mirror_fill:
        texture, vis = mirror_fill(texture, vis)
    return PseudoGT(fitted.deformation, texture, vis, fitted.iou, fitted.vertices, fitted.history)


def fit_species_means(
    template: TemplateMesh,
    masks: torch.Tensor,
    cameras: WeakPerspectiveCamera,
    class_id: torch.Tensor,
    num_classes: int,
    config: SilhouetteFitConfig,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One deformation map per class fitted to the silhouettes of all its images at once.

    ``masks (B, 1, H, W)``, ``B`` cameras, ``class_id (B,)`` in ``[0, num_classes)``. Returns the maps
    ``(num_classes, 3, Hd, Wd)`` (zeros, the sphere, for a class without images) and the per-image
    silhouette IoU ``(B,)`` of its class's mean shape.
    """
    class_id = class_id.to(masks.device).long()
    present = torch.unique(class_id)
    slot = torch.full((num_classes,), -1, dtype=torch.long, device=masks.device)
    slot[present] = torch.arange(len(present), device=masks.device)
    fitted = fit_deformation(template, masks, cameras, view_to_mesh=slot[class_id], config=config, generator=generator)
    means = torch.zeros(num_classes, 3, config.deform_size, config.deform_size, device=masks.device)
    means[present] = fitted.deformation
    return means, fitted.iou


# --------------------------------------------------------------------------------------------------
# Whole splits on disk
# --------------------------------------------------------------------------------------------------

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
    camera      (n, 7)            float32 the camera used for fitting and back-projection
    deformation (n, 3, Hd, Wd)    float32 fitted deformation map
    texture     (n, 3, Ht, Wt)    uint8   back-projected texture, value / 255, 0 where invisible
    visibility  (n, 1, Ht, Wt)    bool    visible texels
    iou         (n,)              float32 silhouette IoU of the fitted mesh
  meta.json               written last: marks the split complete (num_images, shards, mean IoU, ...)
"""


@dataclass(frozen=True)
class PseudoGTConfig:
    """How a split's pseudo ground truth is made.

    ``shape_prior``: ``"species_mean"`` (default) fits each image from its species' mean shape and anchors
    its depth there (``fit.w_l2`` then pulls towards the mean, ``fit.w_anchor_depth`` holds the depth);
    ``"sphere"`` fits every image from the sphere alone. ``mean_views``: training images per class the
    mean shape is fitted to; ``mean_fit``: that fit's settings.
    """

    camera: str = "noisy"  # which annotation camera to fit with: "noisy" (realistic) or "exact"
    texture_size: int = 128
    batch_size: int = 16
    fit: SilhouetteFitConfig = field(default_factory=SilhouetteFitConfig)
    back_projection: BackProjectionConfig = field(default_factory=BackProjectionConfig)
    shape_prior: str = "species_mean"
    mean_views: int = 12
    mean_fit: SilhouetteFitConfig = field(default_factory=lambda: SilhouetteFitConfig(steps=150, lr=0.015, mask_points=256))

    def __post_init__(self) -> None:
        if self.shape_prior not in ("species_mean", "sphere"):
            raise ValueError(f"shape_prior must be 'species_mean' or 'sphere', got {self.shape_prior!r}")
        if self.mean_views < 1:
            raise ValueError(f"mean_views must be >= 1, got {self.mean_views}")

    @classmethod
    def for_profile(cls, name: str, fit_recipe: str = "fast", **overrides) -> "PseudoGTConfig":
        """Sizes and step counts for ``quick`` / ``lite`` / ``paper``.

        ``fit_recipe`` (quick and lite; paper has one recipe): ``"fast"`` (default) or ``"full"``, the earlier
        recipe, which the shipped prior's pseudo-GT was made with (:meth:`meshinv_lite.prior.PriorRecipe.pseudo_gt_config`).

        * lite, fast: the fits' silhouettes are rendered at 64 px instead of the masks' 128, and each image is fitted
          in 50 steps to 256 mask points instead of 80 to 512. Measured on the 200 lite test images (noisy cameras,
          1 thread): 3.4x faster per image (0.75 -> 0.22 s), 3D Chamfer to the true shapes 0.0671 -> 0.0676,
          silhouette IoU (at 128 px) 0.960 -> 0.955, texture error on visible texels 0.1037 -> 0.1034. The species
          means at 64 px: 2.2x faster, the pseudo-GT made from them as good (Chamfer 0.0664 vs 0.0675).
        * quick, fast: 40 steps to 256 points instead of 60 to 512 (its masks are 64 px already). On 160 quick test
          images: IoU 0.965 / 0.963, 3D Chamfer 0.0692 / 0.0686, texture error 0.1001 / 0.1007, 2.2x faster.
        """
        from dataclasses import replace

        from .config import get_profile

        if fit_recipe not in ("fast", "full"):
            raise ValueError(f"fit_recipe must be 'fast' or 'full', got {fit_recipe!r}")
        prof = get_profile(name)
        fast = fit_recipe == "fast" and prof.name in ("quick", "lite")
        steps = {"quick": 40 if fast else 60, "lite": 50 if fast else 80}.get(prof.name, 150)
        points = 256 if fast else 512
        render_size = 64 if fast and prof.name == "lite" else None  # quick's masks are 64 px already
        shape_prior = overrides.get("shape_prior", "species_mean")
        # anchored to the species mean: stay near its depth (the weights measured in the module docstring)
        anchor = dict(w_l2=0.1, w_anchor_depth=10.0) if shape_prior == "species_mean" else {}
        base = cls(texture_size=min(prof.texture_size, 256),
                   fit=SilhouetteFitConfig(steps=steps, deform_size=prof.deform_size, lr=0.015, mask_points=points,
                                           render_size=render_size, **anchor),
                   mean_fit=SilhouetteFitConfig(steps={"quick": 60}.get(prof.name, 150), deform_size=prof.deform_size,
                                                lr=0.015, mask_points=256, render_size=render_size))
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "fit": self.fit.to_dict(), "mean_fit": self.mean_fit.to_dict()}


#: Training images that get pseudo ground truth (and so train the GAN), per profile; absent: the whole split.
TRAIN_IMAGES = {"lite": 1000}


def train_image_limit(profile: str) -> Optional[int]:
    """How many training images a profile fits pseudo ground truth for (``None``: all of them)."""
    from .config import get_profile

    return TRAIN_IMAGES.get(get_profile(profile).name)


def pseudo_gt_dir(dataset_root, split: str, camera: str = "noisy"):
    """``<dataset_root>/pseudo_gt_<camera>/<split>``."""

    return Path(dataset_root) / f"pseudo_gt_{camera}" / split


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

    A finished split with the same settings is kept (``status="exists"``); ``force=True`` rebuilds.
    ``dist``: a :class:`~meshinv_lite.distributed.DistContext`; under ``torchrun`` the shards are dealt to
    the ranks (each shard has its own seed, so the result does not depend on the number of ranks).
    Returns ``{"path", "num_images", "status" ("built" | "resumed" | "exists"), "mean_iou", "seconds"}``.
    """
    import shutil
    import time

    import numpy as np
    from tqdm.auto import tqdm

    from .data.dataset import ReconstructionDataset
    from .io import read_json, write_json
    from .mesh import make_uv_sphere

    ctx = dist or SINGLE
    if config.camera not in ("noisy", "exact"):
        raise ValueError(f"config.camera must be 'noisy' or 'exact', got {config.camera!r}")
    if workers is not None and int(workers) < 0:
        raise ValueError(f"workers must be >= 0 (0: fit in this process), got {workers}")
    if workers and torch.device(device).type != "cpu":
        raise ValueError(f"workers={workers} fit on the CPU, but device={device!r}; pass workers=0 (or None) on a GPU")
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
        ious = np.concatenate([np.load(out / f"shard_{i:05d}.npz")["iou"] for i, _ in shards])
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
    from .config import default_workers

    return default_workers()


def _fit_shard(data, template, config: "PseudoGTConfig", seed: int, i: int, idx: list, path: Path, means, device) -> None:
    """Fit shard ``i`` (images ``idx`` of ``data``) and write it to ``path`` atomically."""
    import numpy as np

    from .io import atomic_savez

    batch = data.batch(idx)
    cam = WeakPerspectiveCamera.from_tensor(batch["noisy_camera" if config.camera == "noisy" else "camera"]).to(device)
    gen = torch.Generator().manual_seed(seed * 100003 + i)
    anchor = means.to(device)[batch["class_id"].to(device)] if means is not None else None
    pgt = make_pseudo_gt(template, batch["image"].to(device), batch["mask"].to(device), cam, config.texture_size,
                         config.fit, config.back_projection, generator=gen, shape_anchor=anchor)
    atomic_savez(
        path,
        index=np.asarray(idx, dtype=np.int64),
        class_id=batch["class_id"].numpy().astype(np.int64),
        camera=cam.as_tensor().cpu().numpy().astype(np.float32),
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
    from .data.dataset import ReconstructionDataset
    from .mesh import make_uv_sphere

    _WORKER.update(data=ReconstructionDataset(root, split, load_gt=False, limit=limit), template=make_uv_sphere(),
                   config=config, seed=seed, out=Path(out), means=means)


def _shard_worker(job: tuple[int, list]) -> int:
    """Fit shard ``i`` (images ``idx``) in a worker process set up by :func:`_start_worker`."""
    i, idx = job
    w = _WORKER
    _fit_shard(w["data"], w["template"], w["config"], w["seed"], i, idx, w["out"] / f"shard_{i:05d}.npz", w["means"], "cpu")
    return i


def species_means_path(dataset_root, camera: str = "noisy"):
    """``<dataset_root>/pseudo_gt_<camera>/species_means.npz``."""
    return pseudo_gt_dir(dataset_root, "train", camera).parent / "species_means.npz"


def species_means(
    dataset_root,
    config: PseudoGTConfig = PseudoGTConfig(),
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    dist: Optional[DistContext] = None,
    split: str = "train",
) -> torch.Tensor:
    """The species mean shapes ``(C, 3, Hd, Wd)`` of a dataset, fitted once and kept on disk.

    Fitted (:func:`fit_species_means`) to the first ``config.mean_views`` images of every class in
    ``split`` (the train split; another only for a dataset without one), with the cameras
    ``config.camera`` names; every split's pseudo-GT uses the same means. A file made with other settings
    is refitted. Under ``torchrun`` rank 0 fits, the others read.
    """
    import json
    import time

    import numpy as np

    from .data.dataset import ReconstructionDataset
    from .io import atomic_savez
    from .mesh import make_uv_sphere

    ctx = dist or SINGLE
    path = species_means_path(dataset_root, config.camera)
    data = ReconstructionDataset(dataset_root, split, load_gt=False)
    recipe = {"camera": config.camera, "mean_views": config.mean_views, "mean_fit": config.mean_fit.to_dict(), "seed": seed,
              "dataset": {k: data.meta.get(k) for k in ("generator", "seed", "profile", "num_images")}}
    if split != "train":
        recipe["split"] = split
    signature = json.dumps(read_json_roundtrip(recipe), sort_keys=True)

    def load():
        try:
            with np.load(path) as z:
                if str(z["signature"]) == signature:
                    return torch.from_numpy(z["means"]).to(device)
        except (OSError, ValueError, KeyError):
            pass  # absent, damaged or from other settings: fit again
        return None

    means = load() if path.exists() else None
    if means is None and ctx.is_main:
        classes = data.class_ids
        views = torch.cat([torch.nonzero(classes == c).squeeze(1)[: config.mean_views] for c in range(data.num_classes)])
        batch = data.batch(views.tolist())
        cams = WeakPerspectiveCamera.from_tensor(batch["noisy_camera" if config.camera == "noisy" else "camera"]).to(device)
        t0 = time.perf_counter()
        if progress:
            print(f"species mean shapes: {data.num_classes} classes x {config.mean_views} views ...", flush=True)
        means, iou = fit_species_means(make_uv_sphere().to(device), batch["mask"].to(device), cams, batch["class_id"],
                                       data.num_classes, config.mean_fit, generator=torch.Generator().manual_seed(seed))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_savez(path, means=means.cpu().numpy().astype(np.float32), views=views.numpy().astype(np.int64),
                     iou=iou.cpu().numpy().astype(np.float32), signature=np.asarray(signature))
        if progress:
            print(f"species mean shapes: silhouette IoU {float(iou.mean()):.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    ctx.barrier()
    return means if means is not None else load()


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


def read_json_roundtrip(obj):
    """``obj`` as it reads back from JSON (tuples become lists), for comparing saved settings."""
    import json

    from .io import _jsonable

    return json.loads(json.dumps(_jsonable(obj)))


class PseudoGTDataset(torch.utils.data.Dataset):
    """A finished pseudo-GT split as a torch ``Dataset``.

    Items: ``deformation (3, Hd, Wd)``, ``texture (3, Ht, Wt)`` in ``[0, 1]`` (0 where invisible),
    ``visibility (1, Ht, Wt)`` in ``{0, 1}``, ``class_id`` (long), ``index`` (row in the image split),
    ``camera (7,)``, ``iou`` (float). All shards are held in memory (uint8 textures: ~50 KB per image
    at 128 px).
    """

    def __init__(self, dataset_root, split: str = "train", camera: str = "noisy"):
        import numpy as np

        from .io import read_json

        self.path = pseudo_gt_dir(dataset_root, split, camera)
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(
                f"no finished pseudo ground truth at {self.path} (meta.json missing); "
                f"run meshinv_lite.pseudo_gt.build_pseudo_gt({str(dataset_root)!r}, {split!r}) or notebook 02 first"
            )
        self.meta = read_json(meta_path)
        arrays: dict[str, list] = {}
        for i in range(self.meta["num_shards"]):
            shard = self.path / f"shard_{i:05d}.npz"
            try:
                with np.load(shard) as z:
                    for k in z.files:
                        arrays.setdefault(k, []).append(z[k])
            except (OSError, ValueError) as e:
                raise ValueError(f"pseudo-GT shard {shard} is missing or corrupt ({e}); rebuild with force=True") from None
        self.arrays = {k: np.concatenate(v) for k, v in arrays.items()}
        if len(self.arrays["index"]) != self.meta["num_images"]:
            raise ValueError(f"{self.path}: shards hold {len(self.arrays['index'])} images, meta.json says {self.meta['num_images']}")

    def __len__(self) -> int:
        return len(self.arrays["index"])

    def __getitem__(self, i: int) -> dict:
        a = self.arrays
        return {
            "deformation": torch.from_numpy(a["deformation"][i]),
            "texture": torch.from_numpy(a["texture"][i]).float() / 255,
            "visibility": torch.from_numpy(a["visibility"][i]).float(),
            "class_id": torch.tensor(int(a["class_id"][i])),
            "index": int(a["index"][i]),
            "camera": torch.from_numpy(a["camera"][i]),
            "iou": float(a["iou"][i]),
        }

    def tensors(self) -> dict:
        """Every array as one tensor (textures as float ``[0, 1]``): handy for fast in-memory training."""
        a = self.arrays
        return {
            "deformation": torch.from_numpy(a["deformation"]),
            "texture": torch.from_numpy(a["texture"]).float() / 255,
            "visibility": torch.from_numpy(a["visibility"]).float(),
            "class_id": torch.from_numpy(a["class_id"]).long(),
            "index": torch.from_numpy(a["index"]).long(),
        }


def evaluate_pseudo_gt(dataset_root, split: str = "test", camera: str = "noisy", limit: Optional[int] = None) -> dict:
    """Compare a finished pseudo-GT split with SynthBirds' ground truth.

    Returns means over the split of: ``iou`` (fitted silhouette vs mask), ``vertex_error`` (mean
    distance between fitted and true vertices, same topology, object frame of the camera used),
    ``chamfer_3d`` (symmetric mean nearest-vertex distance, shape only), ``texture_mae_visible``
    (mean absolute colour error on visible texels, in [0, 1]) and ``visible_fraction`` of texels.
    ``limit``: only the first ``limit`` images (the comparison holds all of them in memory at once).
    """
    from .data.dataset import ReconstructionDataset

    pgt = PseudoGTDataset(dataset_root, split, camera)
    data = ReconstructionDataset(dataset_root, split, load_gt=True)
    if not data.has_gt:
        raise ValueError(f"{dataset_root}/{split} has no ground-truth maps (real data?): nothing to compare with")
    t = {k: v[:limit] for k, v in pgt.tensors().items()}
    idx = t["index"].numpy()
    gt_deform = torch.from_numpy(data.annotation("deform_map")[idx]).float()
    gt_tex = torch.from_numpy(data.annotation("texture_map")[idx]).float() / 255
    ious = torch.from_numpy(pgt.arrays["iou"][:limit])
    return {**pseudo_gt_errors(t["deformation"], t["texture"], t["visibility"], ious, gt_deform, gt_tex),
            "camera": camera}


def pseudo_gt_errors(deformation: torch.Tensor, texture: torch.Tensor, visibility: torch.Tensor, iou: torch.Tensor,
                     gt_deformation: torch.Tensor, gt_texture: torch.Tensor) -> dict:
    """Pseudo-GT maps against true ones (all ``(B, ...)``, textures in ``[0, 1]``): the figures of
    :func:`evaluate_pseudo_gt` (means over the batch), for pseudo-GT held in memory."""
    from .mesh import deform_vertices, make_uv_sphere

    template = make_uv_sphere().to(deformation.device)
    v_fit = deform_vertices(template, deformation)
    v_gt = deform_vertices(template, gt_deformation.to(deformation))
    vertex_error = (v_fit - v_gt).norm(dim=-1).mean(1)
    d = torch.cdist(v_fit, v_gt)
    chamfer = 0.5 * (d.min(2).values.mean(1) + d.min(1).values.mean(1))
    gt_tex = gt_texture.to(texture)
    if gt_tex.shape[-2:] != texture.shape[-2:]:
        gt_tex = F.interpolate(gt_tex, size=texture.shape[-2:], mode="bilinear", align_corners=False)
    err = ((texture - gt_tex).abs() * visibility).sum((1, 2, 3)) / (3 * visibility.sum((1, 2, 3))).clamp_min(1)
    return {
        "iou": float(iou.float().mean()),
        "iou_min": float(iou.float().min()),
        "vertex_error": float(vertex_error.mean()),
        "chamfer_3d": float(chamfer.mean()),
        "texture_mae_visible": float(err.mean()),
        "visible_fraction": float(visibility.float().mean()),
        "num_images": len(deformation),
    }
