"""How far the shipped prior reaches: the best input-view IoU any inversion that stays on the prior could get.

Inversion searches the prior's latent space, so its IoU is bounded by the best silhouette the prior can make
at all. This script measures that bound with oracles that see what inversion never sees, on the first
``--images`` images of each split (true cameras, the image's own class, seed 0):

* **oracle 3D**: ``z`` fitted to the TRUE shape (vertex-wise squared distance; best of 256 draws, then Adam),
  rendered with the true camera;
* **oracle silhouette**: from there, ``z`` fitted to the input mask itself (soft IoU, true camera, Adam with a
  cosine-decayed learning rate), with ``|z| / sqrt(D)`` held inside the prior's shell (<= ``--shell``, default
  1.27: its samples lie at 1 +- 0.09, so 1.27 is 3 standard deviations out) -- about the most IoU the prior
  gives without leaving it (a local search: a bound in practice, not a proof);
* **truth**: the true mesh rendered with the true camera: what a perfect reconstruction scores against a mask
  from which an occluding twig was cut (test_hard).

Each row is reported for all images, and on test_hard apart for images with extreme articulation (wings and
tails from the held-out range) and for occluded ones; ``IoU, occluder ignored`` leaves the twig's pixels out
of both masks. Last line: ``prior_reach_iou_<split>=<oracle silhouette IoU>`` for the last split.

    python bench/prior_reach.py [--splits test test_hard] [--images 24 20] [--threads 2]
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import meshinv_lite as mi
from meshinv_lite.losses import mask_iou_loss
from meshinv_lite.render import WeakPerspectiveCamera
from meshinv_lite.config import get_profile
from meshinv_lite.data import ReconstructionDataset
from meshinv_lite.data.synthbirds import occluder_mask, synthbirds_dir
from meshinv_lite.inversion import project_to_shell
from meshinv_lite.io import write_json
from meshinv_lite.render import deform_vertices, face_adjacency, make_uv_sphere
from meshinv_lite.metrics import chamfer_3d, folded_fraction, mask_iou
from meshinv_lite.paths import resolve
from meshinv_lite.gan import load_shipped_prior
from meshinv_lite.render import render_mesh


def _adam_in_shell(z0: torch.Tensor, loss_fn, steps: int, shell: float, cosine: bool = False) -> torch.Tensor:
    """Adam (lr 0.05, optionally cosine-decayed) on ``z`` from ``z0`` minimizing the scalar ``loss_fn(z)``, ``z``
    scaled back into the shell after every step."""
    z = z0.clone().requires_grad_()
    opt = torch.optim.Adam([z], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
    for _ in range(steps):
        loss = loss_fn(z)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        with torch.no_grad():
            z.copy_(project_to_shell(z, shell))
    return z.detach()


def oracle_3d(G, template, cls, gt_verts, shell: float, steps: int, draws: int = 256, seed: int = 0) -> torch.Tensor:
    """``z`` ``(B, D)`` whose mesh is closest to ``gt_verts`` ``(B, N, 3)`` (same topology: vertex-wise)."""
    b, d = cls.shape[0], G.config.latent_dim

    def vertex_error(z: torch.Tensor, c: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (deform_vertices(template, G(z, c)[1]) - target).pow(2).sum(-1).mean(1)

    rng = torch.Generator().manual_seed(seed)
    best = torch.empty(b, d)
    with torch.no_grad():
        for i in range(b):
            cand = torch.randn(draws, d, generator=rng)
            best[i] = cand[vertex_error(cand, cls[i].repeat(draws), gt_verts[i]).argmin()]
    return _adam_in_shell(best, lambda z: vertex_error(z, cls, gt_verts).sum(), steps, shell)


def oracle_silhouette(G, template, cls, z0, camera, masks, render_cfg, shell: float, steps: int) -> torch.Tensor:
    """``z`` from ``z0`` minimizing 1 - soft IoU against ``masks`` under the true ``camera``, inside the shell."""

    def loss(z: torch.Tensor) -> torch.Tensor:
        texture, deform = G(z, cls)
        out = render_mesh(template, deform_vertices(template, deform), camera, texture, render_cfg, soft=True)
        return mask_iou_loss(out.soft_mask, masks, reduction="none").sum()

    return _adam_in_shell(z0, loss, steps, shell, cosine=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--splits", nargs="+", default=["test", "test_hard"])
    parser.add_argument("--images", type=int, nargs="+", default=[24, 20])
    parser.add_argument("--shell", type=float, default=1.27)
    parser.add_argument("--steps", type=int, default=400, help="Adam steps of each oracle")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the per-image figures here (JSON)")
    args = parser.parse_args()
    print("torch threads:", mi.config.set_threads(args.threads))
    torch.manual_seed(0)
    root = synthbirds_dir(resolve(args.data_dir), args.profile)
    G, info = load_shipped_prior()
    G.requires_grad_(False)
    template = make_uv_sphere()
    pairs = face_adjacency(template.faces)
    render_cfg = get_profile(args.profile).render
    report = {}
    for split, n in zip(args.splits, args.images + [args.images[-1]] * len(args.splits)):
        ds = ReconstructionDataset(root, split)
        n = min(n, len(ds))
        batch = ds.batch(list(range(n)))
        size = batch["mask"].shape[-1]
        cam = WeakPerspectiveCamera.from_tensor(batch["camera"])
        cls, masks = batch["class_id"], batch["mask"]
        gt_verts = deform_vertices(template, batch["deform_map"])
        extreme = np.asarray(ds.data.annotations.get("extreme", np.zeros(len(ds), bool)))[:n].astype(bool)
        occl = np.asarray(ds.data.annotations.get("occluded", np.zeros(len(ds), bool)))[:n].astype(bool)
        twig = (occluder_mask(torch.as_tensor(ds.data.annotations["occluder"][:n]), size) if "occluder" in ds.data.annotations
                else torch.zeros_like(masks, dtype=torch.bool))
        gt_cam_space = cam.apply(gt_verts) / cam.scale[:, None, None]  # 3D figures: in the true camera's frame

        def figures(verts: torch.Tensor, z: torch.Tensor | None, texture: torch.Tensor) -> dict:
            with torch.no_grad():
                out = render_mesh(template, verts, cam, texture, render_cfg, soft=False)
                pred = out.mask
                if pred.shape[-1] != size:
                    pred = torch.nn.functional.interpolate(pred, size=(size, size), mode="area")
                pred_cam_space = cam.apply(verts) / cam.scale[:, None, None]
                row = {"iou": mask_iou(pred, masks).numpy(),
                       "iou_occluder_ignored": mask_iou(pred, masks, ignore=twig).numpy(),
                       "chamfer_3d": chamfer_3d(pred_cam_space, gt_cam_space).numpy(), "folded": folded_fraction(verts, template.faces, pairs).numpy()}
                if z is not None:
                    row["z_norm"] = (z.norm(dim=1) / math.sqrt(z.shape[1])).numpy()
                return row

        gt_tex = batch["texture_map"]
        rows = {"truth": figures(gt_verts, None, gt_tex)}
        z3 = oracle_3d(G, template, cls, gt_verts, args.shell, args.steps)
        with torch.no_grad():
            tex3, def3 = G(z3, cls)
        rows["oracle 3D"] = figures(deform_vertices(template, def3), z3, tex3)
        zs = oracle_silhouette(G, template, cls, z3, cam, masks, render_cfg, args.shell, args.steps)
        with torch.no_grad():
            texs, defs = G(zs, cls)
        rows["oracle silhouette"] = figures(deform_vertices(template, defs), zs, texs)
        groups = {"all": np.ones(n, bool)}
        if extreme.any():
            groups["extreme articulation"] = extreme
        if occl.any():
            groups["occluded"] = occl
        print(f"\n== {split}: {n} images (true cameras; shell |z|/sqrt(D) <= {args.shell})")
        for gname, sel in groups.items():
            print(f"  {gname} ({int(sel.sum())} images)")
            for rname, row in rows.items():
                cells = "  ".join(f"{k} {float(np.mean(v[sel])):.4f}" for k, v in row.items())
                print(f"    {rname:<18} {cells}")
        report[split] = {"images": n, "extreme": extreme.tolist(), "occluded": occl.tolist(),
                         "rows": {r: {k: v.tolist() for k, v in row.items()} for r, row in rows.items()}}
        print(f"prior_reach_iou_{split}={float(np.mean(rows['oracle silhouette']['iou'])):.4f}", flush=True)
    if args.out:
        write_json(args.out, {"prior": info.get("file"), "shell": args.shell, "steps": args.steps, "splits": report})


if __name__ == "__main__":
    main()
