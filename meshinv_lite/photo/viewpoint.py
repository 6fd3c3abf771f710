"""Where was the camera, and which species is it? Viewpoint and class hypotheses for a photo without either.

A photo brings no camera and no class. Both are searched for with the prior itself, coarse to fine:

1. **Silhouettes** (cheap, no rendering): for every class and a few latents, the prior's shape is seen
   from a grid of azimuths x elevations; for each view the scale and translation that put the projected
   box on the mask's box are computed in closed form, and the Chamfer mask loss between the projected
   vertices and the mask scores the view. Silhouettes are ambiguous: an orthographic view from azimuth
   ``a`` and from ``180 - a`` outline a left-right symmetric bird identically, and front and back views
   (near-symmetric outlines, mirrored) almost so; the best few *distinct* views per class are kept, not one.
2. **Appearance**: those hypotheses are scored by the full inversion objective (Chamfer texture on pixels
   and features, the Chamfer mask term, latent prior), which sees where the beak and the breast's colours are.
3. The best ``keep`` hypotheses go through the normal inversion with camera refinement
   (:func:`meshinv_lite.photo.reconstruct.reconstruct`), and the lowest final loss wins.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import torch

from ..inversion.config import InversionConfig
from ..inversion.objective import InversionObjective, _frozen
from ..render.camera import WeakPerspectiveCamera, azimuth_elevation, view_rotation
from ..render.mesh import TemplateMesh, deform_vertices

#: Weight of the Chamfer mask term when the hypotheses are scored for an inversion whose own silhouette term is
#: another one (lite's soft IoU at 0.5, a weight on another scale): lite's measured Chamfer weight (README, "How
#: strongly to weigh the Chamfer mask"). An inversion with the Chamfer mask is scored with its own weight.
SCORING_CHAMFER_WEIGHT = 60.0


@dataclass(frozen=True)
class ViewSearchConfig:
    """The hypothesis grid. ``azimuths``: steps around the full circle; ``elevations``: degrees;
    ``latents``: prior shapes per class (the first is ``z = 0``, the class's "mean" bird); ``per_class``:
    distinct views per class kept after the silhouette stage; ``keep``: hypotheses inverted in full;
    ``min_separation``: degrees between the viewing directions of two kept views of one class."""

    azimuths: int = 12
    elevations: tuple[float, ...] = (-5.0, 15.0, 35.0)
    latents: int = 4
    per_class: int = 4
    keep: int = 4
    min_separation: float = 40.0
    mask_points: int = 512

    @classmethod
    def for_profile(cls, name: str) -> "ViewSearchConfig":
        from ..config import get_profile

        prof = get_profile(name).name
        if prof == "quick":
            return cls(latents=3, per_class=3, keep=3)
        if prof == "lite":
            return cls(azimuths=16, latents=4, per_class=4, keep=4)
        return cls(azimuths=24, elevations=(-5.0, 10.0, 25.0, 40.0), latents=8, per_class=4, keep=6)


@dataclass
class ViewHypotheses:
    """Ranked (best first) camera + class hypotheses for one image.

    cameras: ``K`` cameras; class_id ``(K,)``; score ``(K,)`` appearance-stage loss (lower is better);
    mask_score ``(K,)`` silhouette-stage Chamfer; class_scores ``(C,)`` best appearance loss per class
    (``inf`` where no view of the class was kept); azimuth, elevation ``(K,)`` degrees.
    """

    cameras: WeakPerspectiveCamera
    class_id: torch.Tensor
    score: torch.Tensor
    mask_score: torch.Tensor
    class_scores: torch.Tensor
    source: str = "grid"   # "grid": :func:`search_views` (losses); "encoder": :func:`encoder_hypotheses` (-log p)

    @property
    def azimuth(self) -> torch.Tensor:
        return azimuth_elevation(self.cameras.rotation)[0]

    @property
    def elevation(self) -> torch.Tensor:
        return azimuth_elevation(self.cameras.rotation)[1]

    def __len__(self) -> int:
        return len(self.cameras)


def fit_box(projected: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale ``(B,)`` and translation ``(B, 2)`` that put the box of unit-scale projections ``(B, N, 2)``
    on the box of ``mask`` ``(1, H, W)`` (normalized coordinates; geometric mean of the two side ratios)."""
    from ..render.camera import pixel_centers

    h, w = mask.shape[-2:]
    pts = pixel_centers(h, w, device=mask.device).reshape(-1, 2)[mask.reshape(-1) > 0.5]
    m_lo, m_hi = pts.min(0).values, pts.max(0).values
    p_lo, p_hi = projected.min(1).values, projected.max(1).values
    ratio = (m_hi - m_lo + 2 / w) / (p_hi - p_lo).clamp_min(1e-4)
    scale = ratio.prod(-1).sqrt()
    trans = (m_lo + m_hi) / 2 - scale[:, None] * (p_lo + p_hi) / 2
    return scale, trans


def _directions(az: torch.Tensor, el: torch.Tensor) -> torch.Tensor:
    a, e = torch.deg2rad(az), torch.deg2rad(el)
    return torch.stack([torch.cos(e) * torch.cos(a), torch.sin(e), torch.cos(e) * torch.sin(a)], -1)


def _distinct(order: Sequence[int], dirs: torch.Tensor, groups: torch.Tensor, k: int, min_sep: float) -> list[int]:
    """Greedy non-maximum suppression: the first ``k`` of ``order`` whose viewing direction is at least
    ``min_sep`` degrees from every kept one of the same group."""
    cos_max = float(torch.cos(torch.deg2rad(torch.tensor(min_sep))))
    kept: list[int] = []
    for i in order:
        if all(groups[j] != groups[i] or float(dirs[i] @ dirs[j]) < cos_max for j in kept):
            kept.append(int(i))
            if len(kept) == k:
                break
    return kept


@torch.no_grad()
def search_views(
    generator,
    image: torch.Tensor,
    mask: torch.Tensor,
    template: TemplateMesh,
    inversion: InversionConfig,
    config: ViewSearchConfig = ViewSearchConfig(),
    classes: Optional[Sequence[int]] = None,
    extractor=None,
    seed: int = 0,
    view: Optional[tuple[float, float]] = None,
) -> ViewHypotheses:
    """Camera and class hypotheses for one image (module docstring).

    Args:
        image: ``(1, 3, S, S)`` in [0, 1] and mask ``(1, 1, S, S)`` in {0, 1}, at ``inversion.render`` size.
        classes: the classes to consider (default: all of the generator's).
        extractor: the feature network of ``inversion``'s feature loss (loaded when needed and not given).
        view: ``(azimuth, elevation)`` degrees when the viewpoint is known: only the class is searched.
    """
    from ..features.registry import load_feature_extractor
    from ..losses.registry import NEEDS_EXTRACTOR
    from ..render.camera import pixel_centers

    device = image.device
    G = generator
    cfg = config
    classes = list(range(G.config.num_classes)) if classes is None else [int(c) for c in classes]
    if not classes:
        raise ValueError("classes is empty: give at least one class to consider")
    bad = [c for c in classes if not 0 <= c < G.config.num_classes]
    if bad:
        raise ValueError(f"classes {bad} are out of range: the prior knows classes 0..{G.config.num_classes - 1}")
    rng = torch.Generator().manual_seed(seed)
    template = template.to(device)
    with _frozen(G):
        # 1. silhouettes -----------------------------------------------------------------------------
        z = torch.randn(cfg.latents, G.config.latent_dim, generator=rng) * 0.7
        z[0] = 0
        z = z.to(device)
        cls = torch.tensor(classes, device=device)
        zz = z.repeat(len(classes), 1)                                   # (C*L, D)
        cc = cls.repeat_interleave(cfg.latents)                         # (C*L,)
        verts = deform_vertices(template, G(zz, cc)[1])                 # (C*L, N, 3)
        az = torch.arange(cfg.azimuths, dtype=torch.float32) * (360.0 / cfg.azimuths)
        el = torch.tensor(cfg.elevations, dtype=torch.float32)
        az_g, el_g = [t.reshape(-1) for t in torch.meshgrid(az, el, indexing="ij")]
        if view is not None:
            az_g, el_g = torch.tensor([float(view[0])]), torch.tensor([float(view[1])])
        rots = view_rotation(az_g, el_g).to(device)                      # (V, 4)
        n_shape, n_view = verts.shape[0], rots.shape[0]
        h, w = mask.shape[-2:]
        pts = pixel_centers(h, w, device=device).reshape(-1, 2)[mask.reshape(-1) > 0.5]
        if pts.shape[0] > cfg.mask_points:
            pts = pts[torch.randperm(pts.shape[0], generator=rng)[:cfg.mask_points].to(device)]
        scores = torch.empty(n_shape, n_view, device=device)
        for v in range(n_view):
            unit = WeakPerspectiveCamera(torch.ones(n_shape, device=device), torch.zeros(n_shape, 2, device=device),
                                         rots[v:v + 1].expand(n_shape, 4))
            proj = unit.project(verts)
            s, t = fit_box(proj, mask[0])
            proj = proj * s[:, None, None] + t[:, None, :]
            d = torch.cdist(proj, pts[None].expand(n_shape, -1, -1)) ** 2
            scores[:, v] = d.min(2).values.mean(1) + d.min(1).values.mean(1)
        # the best latent per (class, view)
        per = scores.reshape(len(classes), cfg.latents, n_view)
        best_val, best_lat = per.min(1)                                  # (C, V)
        dirs = _directions(az_g, el_g)
        cand_c, cand_v = [], []
        for ci in range(len(classes)):
            order = torch.argsort(best_val[ci]).tolist()
            for v in _distinct(order, dirs, torch.zeros(n_view), cfg.per_class, cfg.min_separation):
                cand_c.append(ci)
                cand_v.append(v)
        cand_c_t, cand_v_t = torch.tensor(cand_c), torch.tensor(cand_v)
        cand_z = z[best_lat[cand_c_t, cand_v_t]]
        cand_cls = cls[cand_c_t.to(device)]
        n_cand = len(cand_c)
        unit = WeakPerspectiveCamera(torch.ones(n_cand, device=device), torch.zeros(n_cand, 2, device=device),
                                     rots[cand_v_t.to(device)])
        cand_verts = verts.reshape(len(classes), cfg.latents, -1, 3)[cand_c_t, best_lat[cand_c_t, cand_v_t]]
        s, t = fit_box(unit.project(cand_verts), mask[0])
        cams = WeakPerspectiveCamera(s, t, rots[cand_v_t.to(device)])
        mask_score = best_val[cand_c_t, cand_v_t]

        # 2. appearance --------------------------------------------------------------------------------
        if any(name in NEEDS_EXTRACTOR for name, _ in inversion.texture_losses) and extractor is None:
            extractor = load_feature_extractor(inversion.features, device=device)
        # one target row per hypothesis (views of the same image), so each carries its own class. The
        # silhouette is scored by the Chamfer mask term here, whatever the inversion uses: a pixel-exact term
        # (soft IoU, weight 10) would drown the appearance differences between hypotheses whose outlines
        # already agree (measured: the species test picks the wrong class with it)
        scoring = inversion if inversion.mask_loss == "chamfer" else replace(
            inversion, mask_loss="chamfer", w_mask=SCORING_CHAMFER_WEIGHT)
        objective = InversionObjective(G, template, image.expand(n_cand, -1, -1, -1), mask.expand(n_cand, -1, -1, -1),
                                       cand_cls, scoring, extractor, seed)
        total = torch.empty(n_cand, device=device)
        for s0 in range(0, n_cand, inversion.init_batch):
            rows = torch.arange(s0, min(s0 + inversion.init_batch, n_cand), device=device)
            total[rows] = objective(cand_z[rows], cams[rows], rows)[0]
        order = torch.argsort(total).tolist()
        keep = _distinct(order, dirs[cand_v_t], cand_c_t, cfg.keep, cfg.min_separation)
        class_scores = torch.full((G.config.num_classes,), float("inf"))
        for i in range(n_cand):
            c = int(cand_cls[i])
            class_scores[c] = min(float(class_scores[c]), float(total[i]))
    k = torch.tensor(keep, device=device)
    return ViewHypotheses(cams[k], cand_cls[k], total[k].cpu(), mask_score[k].cpu(), class_scores)


@torch.no_grad()
def encoder_hypotheses(
    encoder,
    generator,
    image: torch.Tensor,
    mask: torch.Tensor,
    template: TemplateMesh,
    classes: Optional[Sequence[int]] = None,
    views: int = 2,
    class_count: int = 2,
    min_separation: float = 40.0,
    view: Optional[tuple[float, float]] = None,
) -> ViewHypotheses:
    """Camera and class hypotheses for one image from the encoder's one forward pass (instead of the grid search).

    The ``class_count`` most likely classes (among ``classes`` when given) times the ``views`` most likely azimuth
    bins at least ``min_separation`` degrees apart, at the predicted elevation (``view`` fixes both angles); each
    camera's scale and translation put the box of the encoder's shape for that class on the mask's box. Ranked by
    ``-log p(class) - log p(azimuth bin)`` (``score``, lower is better); ``class_scores``: ``-log p(class)``.

    Args:
        image: ``(1, 3, S, S)`` in [0, 1] and mask ``(1, 1, S, S)`` in {0, 1}.
    """
    device = image.device
    out = encoder(image, mask)
    n_cls = out.class_logits.shape[1]
    logp_cls = torch.log_softmax(out.class_logits[0].float(), 0).cpu()
    allowed = list(range(n_cls)) if classes is None else [int(c) for c in classes]
    order = sorted(allowed, key=lambda c: -float(logp_cls[c]))[:max(1, class_count)]
    k = out.azimuth_logits.shape[1]
    logp_az = torch.log_softmax(out.azimuth_logits[0].float(), 0).cpu()
    if view is None:
        bins = torch.argsort(logp_az, descending=True).tolist()
        az_all = (torch.arange(k) * (360.0 / k) + out.azimuth_offset[0].cpu()) % 360
        el_all = torch.full((k,), float(out.elevation[0]))
        kept = _distinct(bins, _directions(az_all, el_all), torch.zeros(k), max(1, views), min_separation)
        angles = [(float(az_all[b]), float(el_all[b]), float(logp_az[b])) for b in kept]
    else:
        angles = [(float(view[0]), float(view[1]), 0.0)]
    cls_t = torch.tensor(order, device=device)
    z = out.z.expand(len(order), -1)
    verts = deform_vertices(template.to(device), generator(z, cls_t)[1])       # one shape per class
    rows_c, rows_a, scores = [], [], []
    for ci, c in enumerate(order):
        for a, e, lp in angles:
            rows_c.append(ci)
            rows_a.append((a, e))
            scores.append(-float(logp_cls[c]) - lp)
    rots = view_rotation([a for a, _ in rows_a], [e for _, e in rows_a]).to(device)
    n = len(rows_c)
    unit = WeakPerspectiveCamera(torch.ones(n, device=device), torch.zeros(n, 2, device=device), rots)
    s, t = fit_box(unit.project(verts[torch.tensor(rows_c, device=device)]), mask[0])
    cams = WeakPerspectiveCamera(s, t, rots)
    rank = torch.argsort(torch.tensor(scores)).tolist()
    class_scores = torch.full((generator.config.num_classes,), float("inf"))
    for c in order:
        class_scores[c] = -float(logp_cls[c])
    idx = torch.tensor(rank, device=device)
    return ViewHypotheses(cams[idx], cls_t[torch.tensor(rows_c, device=device)][idx],
                          torch.tensor(scores)[torch.tensor(rank)], torch.full((n,), float("nan")), class_scores,
                          source="encoder")
