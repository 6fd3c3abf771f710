"""Nearest-neighbour search for Chamfer distances: the machinery under the Chamfer losses.

:mod:`meshinv_lite.losses` states the losses; this module finds, for every point of one set, its cheapest
point in the other, fast and without running out of memory:

* :func:`foreground_points`: an image's (or feature map's) foreground as points, ``xy`` in ``[-1, 1]`` and values;
* :func:`chamfer_point_sets`: the Chamfer distance ``D_ij = max((Ds_ij + eps_s)^alpha, 1) * (Da_ij + eps_a)``
  between two point sets (``Ds``: squared ``xy`` distance, a weight only; ``Da``: squared value distance);
* :func:`chamfer_on_maps`: the same for a batch of masked maps, dense when small, chunked when large;
* :func:`nearest_2d`: plain nearest neighbours both ways between 2D point sets (the Chamfer mask loss).

Speed and memory: nearest neighbours are searched without autograd, in chunks of rows (the
8,192 x 8,192 cost matrix of one image would take 256 MB), with the squared distances as matrix
products of augmented coordinates (``[a, |a|^2 + eps, 1] . [-2 b, 1, |b|^2] = |a - b|^2 + eps``). The loss
is then recomputed with gradients on the matched pairs only: the same value and gradient as
differentiating the minimum directly, at a fraction of the memory. For large sets the texture search
is also pruned spatially, exactly: ``D >= eps_a * max((Ds + eps_s)^alpha, 1)``, so once a point has a
match of cost ``c``, points farther than the radius where that bound reaches ``c`` cannot beat it;
each tile of points is compared only with the points within the weight-1 radius (0.32) of it, and
then with the few farther ones the bound cannot exclude (see :func:`_pruned_nearest_both_ways`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .._checks import check_shape
from ..render.camera import pixel_centers

#: Chamfer texture constants of the authors' code (DESIGN.md section 4): ``eps_s = 1 - (2 k 0.16)^2``, k = 1.
EPS_S = 1.0 - (2 * 0.16) ** 2
ALPHA = 1.0
EPS_A = 1.0
MASK_THRESHOLD = 0.5
#: Rows of a cost matrix per chunk, and the column-group width of the two-level argmin (see _row_argmin).
CHUNK_ROWS = 64
ARGMIN_GROUP = 64
#: Spatial pruning of the Chamfer texture search (exact): used from this many point pairs on, with the
#: points in PRUNE_TILES x PRUNE_TILES tiles and a first search radius of the weight-1 radius + margin.
#: Not for high-dimensional features (256-d VGG): there the products are compute-bound, gathering
#: candidate columns costs more than it saves, and the bound is weak (feature distances reach 4).
PRUNE_MIN_PAIRS = 1 << 20
PRUNE_MAX_CHANNELS = 8
#: Torch threads for the CPU nearest-neighbour searches (see _search_threads); None: leave the setting.
SEARCH_THREADS: Optional[int] = 1
PRUNE_TILES = 8
PRUNE_MARGIN = 0.05


def _check_chamfer_constants(eps_s: float, alpha: float, eps_a: float, num_points: Optional[int]) -> None:
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if eps_a < 0:
        raise ValueError(f"eps_a must be >= 0, got {eps_a}")
    if num_points is not None and num_points < 1:
        raise ValueError(f"num_points must be >= 1 (or None for all points), got {num_points}")



def foreground_points(
    values: torch.Tensor,
    mask: torch.Tensor,
    num_points: Optional[int] = None,
    threshold: float = MASK_THRESHOLD,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's foreground as points.

    Args:
        values: ``(C, H, W)`` float colours or features.
        mask: ``(1, H, W)`` float in ``[0, 1]``; the points are the pixels where ``mask > threshold``.
        num_points: keep a uniformly random subset of this many (without replacement) when there are more
            (default ``None``: all).
        threshold: default :data:`MASK_THRESHOLD` (0.5).
        generator: CPU ``torch.Generator`` for the subset (the global RNG when ``None``).
    Returns:
        ``xy`` ``(K, 2)`` pixel centres in ``(-1, 1)`` (x right, y up), ``values``' dtype, no gradient; and
        ``values`` ``(K, C)`` (differentiable with respect to the input ``values``). ``K`` may be 0.
    """
    c, h, w = values.shape
    idx = (mask.detach().reshape(-1) > threshold).nonzero().squeeze(1)
    if num_points is not None and idx.numel() > num_points:
        pick = torch.randperm(idx.numel(), generator=generator)[:num_points].to(idx.device)
        idx = idx[pick]
    xy = pixel_centers(h, w, device=values.device, dtype=values.dtype).reshape(-1, 2)[idx]
    return xy, values.reshape(c, -1)[:, idx].t()


def _augment(a: torch.Tensor, eps: float, left: bool) -> torch.Tensor:
    """Rows ``a`` ``(N, C)`` as ``[a, |a|^2 + eps, 1]`` (left, ``(N, C + 2)``) or columns ``[-2 a, 1, |a|^2]``
    (right, ``(C + 2, N)``), so that ``left(a) @ right(b) = |a_i - b_j|^2 + eps``."""
    sq = (a * a).sum(1, keepdim=True)
    one = torch.ones_like(sq)
    if left:
        return torch.cat([a, sq + eps, one], dim=1).contiguous()
    return torch.cat([-2 * a, one, sq], dim=1).t().contiguous()


def _row_argmin(d: torch.Tensor, group: int = ARGMIN_GROUP) -> torch.Tensor:
    """``d.argmin(1)`` for a contiguous ``(r, m)`` matrix, identical (first index on ties) and ~5x faster on CPU.

    ``argmin`` with indices is not vectorized on the CPU while ``amin`` is: take the minimum of every group
    of ``group`` columns, the argmin over the groups, then the argmin inside the winning group only.
    """
    r, m = d.shape
    q = m // group
    if q < 2:
        return d.argmin(1)
    rows = torch.arange(r, device=d.device)
    view = d.as_strided((r, q, group), (d.stride(0), group, 1))
    k = view.amin(2).argmin(1)
    idx = k * group + view[rows, k].argmin(1)
    if q * group < m:  # leftover columns: keep the grouped winner on ties (it has the smaller index)
        rest = d[:, q * group:]
        ridx = rest.argmin(1)
        use_rest = rest[rows, ridx] < d[rows, idx]
        idx = torch.where(use_rest, ridx + q * group, idx)
    return idx


def _nearest_both_ways(
    n: int, m: int, block: Callable[[int, int, Optional[torch.Tensor]], torch.Tensor], chunk: int, both: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Argmins of an ``(n, m)`` cost matrix along both axes, built in row chunks (call under ``no_grad``).

    ``block(s, e, cols)`` returns rows ``s:e`` of the matrix (columns ``cols``, or all when ``None``),
    contiguous. Row argmins come chunk by chunk. Column minima are tracked by value only together with
    the chunk holding them; the column argmins are then found in one more pass over just those
    (chunk, column) blocks. Ties go to the first index, as with ``argmin``.
    Returns ``(idx_row (n,), idx_col (m,) or None)``.
    """
    idx_row = best_col = chunk_col = None
    for ci, s in enumerate(range(0, n, chunk)):
        d = block(s, min(n, s + chunk), None)
        if idx_row is None:
            idx_row = torch.empty(n, dtype=torch.long, device=d.device)
            best_col = torch.full((m,), float("inf"), dtype=d.dtype, device=d.device)
            chunk_col = torch.zeros(m, dtype=torch.long, device=d.device)
        idx_row[s:s + d.shape[0]] = _row_argmin(d)
        if both:
            val = d.amin(0)
            better = val < best_col
            best_col = torch.where(better, val, best_col)
            chunk_col.masked_fill_(better, ci)
    if not both:
        return idx_row, None
    idx_col = torch.empty(m, dtype=torch.long, device=idx_row.device)
    for ci in torch.unique(chunk_col).tolist():
        cols = (chunk_col == ci).nonzero().squeeze(1)
        s = ci * chunk
        idx_col[cols] = _col_argmin(block(s, min(n, s + chunk), cols)[None])[0] + s
    return idx_row, idx_col


@contextmanager
def _search_threads(device: torch.device):
    """Run a CPU nearest-neighbour search with :data:`SEARCH_THREADS` torch threads, then restore the setting.

    The search is many small products and reductions; each multi-threaded op is a fork/join, and on a
    busy machine (other jobs on the cores) every join waits for a descheduled thread: measured 10-100x
    slower with 2 threads than with 1 on a loaded 2-core box. One thread loses little when idle.
    """
    before = torch.get_num_threads()
    change = SEARCH_THREADS is not None and device.type == "cpu" and before != SEARCH_THREADS
    if change:
        torch.set_num_threads(SEARCH_THREADS)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)


def _tile_groups(xy: torch.Tensor, tiles: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Order points ``(N, 2)`` in ``[-1, 1]`` by a ``tiles x tiles`` grid: ``(order (N,), [(start, end) per
    non-empty tile, in that order])``."""
    t = ((xy + 1) * (tiles / 2)).floor().clamp_(0, tiles - 1).long()
    key = t[:, 1] * tiles + t[:, 0]
    order = torch.argsort(key, stable=True)
    ends = torch.bincount(key, minlength=tiles * tiles).cumsum(0).tolist()
    starts = [0] + ends[:-1]
    return order, [(s, e) for s, e in zip(starts, ends) if e > s]


def _pruned_nearest_both_ways(
    a_xy: torch.Tensor,
    groups: list[tuple[int, int]],
    b_xy: torch.Tensor,
    block: Callable[[int, int, Optional[torch.Tensor]], torch.Tensor],
    radius2: Callable[[torch.Tensor], torch.Tensor],
    r0: float,
    both: bool,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """:func:`_nearest_both_ways` for costs with a spatial lower bound, skipping pairs that cannot win.

    ``a_xy`` ``(n, 2)`` is ordered so that each ``groups`` slice is spatially compact (one tile);
    ``block(s, e, cols)`` gives the cost of rows ``s:e`` against B points ``cols``; ``radius2(best)``
    is a squared distance beyond which every cost is at least ``best`` (``inf``: no bound).
    Stage 1: every tile against the B points within ``r0`` of its bounding box. Stage 2: against
    the B points that may still hold a smaller cost, by the radius of the worst row of the tile and
    of each B point's best so far. Exact: a pair is skipped only when the bound proves it cannot be
    strictly smaller than a cost already found (ties may resolve to a different, equally near, point).
    """
    n, m = a_xy.shape[0], b_xy.shape[0]
    dev = a_xy.device
    bx, by = b_xy[:, 0], b_xy[:, 1]
    row_best = torch.full((n,), float("inf"), device=dev)
    row_idx = torch.zeros(n, dtype=torch.long, device=dev)
    col_best = torch.full((m,), float("inf"), device=dev)
    col_owner = torch.zeros(m, dtype=torch.long, device=dev)

    def update(g: int, s: int, e: int, cand: torch.Tensor) -> None:
        d = block(s, e, cand)
        k = _row_argmin(d)
        v = d.gather(1, k[:, None]).squeeze(1)
        better = v < row_best[s:e]
        row_best[s:e] = torch.where(better, v, row_best[s:e])
        row_idx[s:e] = torch.where(better, cand[k], row_idx[s:e])
        if both:
            cv, old = d.amin(0), col_best[cand]
            cb = cv < old
            col_best[cand] = torch.where(cb, cv, old)
            col_owner[cand] = torch.where(cb, torch.full_like(cand, g), col_owner[cand])

    box_d2 = []
    for g, (s, e) in enumerate(groups):
        lo, hi = a_xy[s:e].amin(0), a_xy[s:e].amax(0)
        dx = (lo[0] - bx).clamp_min(0) + (bx - hi[0]).clamp_min(0)
        dy = (lo[1] - by).clamp_min(0) + (by - hi[1]).clamp_min(0)
        d2 = dx * dx + dy * dy
        box_d2.append(d2)
        cand = (d2 <= r0 * r0).nonzero().squeeze(1)
        if cand.numel():
            update(g, s, e, cand)
    rho_row = radius2(row_best)
    rho_col = radius2(col_best) if both else None
    for g, (s, e) in enumerate(groups):
        d2 = box_d2[g]
        need = d2 < rho_row[s:e].max()
        if both:
            need |= d2 < rho_col
        cand = (need & (d2 > r0 * r0)).nonzero().squeeze(1)
        if cand.numel():
            update(g, s, e, cand)
    if not both:
        return row_idx, None
    idx_col = torch.empty(m, dtype=torch.long, device=dev)
    for g in torch.unique(col_owner).tolist():
        cols = (col_owner == g).nonzero().squeeze(1)
        s, e = groups[g]
        idx_col[cols] = _col_argmin(block(s, e, cols)[None])[0] + s
    return row_idx, idx_col


def chamfer_point_sets(
    a_xy: torch.Tensor,
    a_val: torch.Tensor,
    b_xy: torch.Tensor,
    b_val: torch.Tensor,
    two_sided: bool = True,
    eps_s: float = EPS_S,
    alpha: float = ALPHA,
    eps_a: float = EPS_A,
    chunk_size: int = CHUNK_ROWS,
) -> torch.Tensor:
    """Chamfer distance (paper Eq. 5) between two coloured point sets (one image each), a scalar.

    ``D_ij = max((Ds_ij + eps_s)^alpha, 1) * (Da_ij + eps_a)`` with ``Ds_ij = |a_xy_i - b_xy_j|^2`` and
    ``Da_ij = |a_val_i - b_val_j|^2`` (summed over the ``C`` channels).

    Args:
        a_xy: ``(N, 2)`` float positions in normalized coordinates (x right, y up, ``[-1, 1]``); a_val ``(N, C)``
            float colours or features; b_xy ``(M, 2)``, b_val ``(M, C)`` likewise; ``N, M >= 1``.
        two_sided: ``True`` (default): ``mean_i min_j D_ij + mean_j min_i D_ij``; else the first term only
            (A -> B, each point of A matched in B: the authors' pred -> target side when A is the prediction).
        eps_s, alpha, eps_a: Eq. 5's constants (defaults :data:`EPS_S` = 0.8976, :data:`ALPHA` = 1,
            :data:`EPS_A` = 1; ``alpha > 0``, ``eps_a >= 0``).
        chunk_size: rows per chunk of the cost matrix (default :data:`CHUNK_ROWS`; memory only, same value).
    Returns:
        A 0-d tensor in ``a_val``'s dtype, at least ``eps_a`` per side; exactly ``eps_a`` per side for
        identical sets. Gradients reach ``a_val`` and ``b_val`` only: ``Ds`` is a weight, the positions get none.
    """
    check_shape("a_xy", a_xy, (None, 2), "(N, 2)")
    check_shape("b_xy", b_xy, (None, 2), "(M, 2)")
    check_shape("a_val", a_val, (a_xy.shape[0], None), "(N, C) with N = len(a_xy)")
    check_shape("b_val", b_val, (b_xy.shape[0], a_val.shape[1]), "(M, C) with M = len(b_xy), C as a_val")
    if a_xy.shape[0] == 0 or b_xy.shape[0] == 0:
        raise ValueError("Chamfer distance needs non-empty point sets on both sides")
    _check_chamfer_constants(eps_s, alpha, eps_a, None)
    n, m = a_xy.shape[0], b_xy.shape[0]
    with torch.no_grad(), _search_threads(a_xy.device):
        a_pos, b_pos = a_xy.detach().float(), b_xy.detach().float()
        # (on a GPU the brute-force products are cheap and many small pruned blocks are not)
        prune = (a_xy.device.type == "cpu" and n * m >= PRUNE_MIN_PAIRS and a_val.shape[1] <= PRUNE_MAX_CHANNELS
                 and eps_a > 0)
        order = None
        if prune:  # A in tile order, so that row slices are spatially compact
            order, groups = _tile_groups(a_pos, PRUNE_TILES)
            a_pos = a_pos[order]
        axy = _augment(a_pos, eps_s, left=True)
        bxy = _augment(b_pos, 0.0, left=False)
        av = _augment(a_val.detach().float() if order is None else a_val.detach().float()[order], eps_a, left=True)
        bv = _augment(b_val.detach().float(), 0.0, left=False)

        def block(s: int, e: int, cols: Optional[torch.Tensor]) -> torch.Tensor:
            d = axy[s:e] @ (bxy if cols is None else bxy[:, cols])  # Ds + eps_s
            if alpha != 1:
                d.clamp_(min=0).pow_(alpha)
            d.clamp_(min=1.0)
            da = av[s:e] @ (bv if cols is None else bv[:, cols])  # Da + eps_a
            if eps_a < 1e-3:  # the expansion can go slightly negative near 0
                da.clamp_(min=0)
            return d.mul_(da)

        if prune:
            def radius2(best: torch.Tensor) -> torch.Tensor:
                # D >= eps_a * max((Ds + eps_s)^alpha, 1) >= best once Ds >= (best / eps_a)^(1 / alpha) - eps_s
                # (a relative margin of 1e-5 covers float rounding of the matrix-product distances)
                return ((best * (1 + 1e-5) / eps_a) ** (1 / alpha) - eps_s).clamp_min(0)

            r0 = max(1.0 - eps_s, 0.0) ** 0.5 + PRUNE_MARGIN  # where the spatial weight leaves 1
            idx_ab, idx_ba = _pruned_nearest_both_ways(a_pos, groups, b_pos, block, radius2, r0, two_sided)
            idx_ab = torch.empty_like(idx_ab).index_copy_(0, order, idx_ab)
            idx_ba = order[idx_ba] if idx_ba is not None else None
        else:
            idx_ab, idx_ba = _nearest_both_ways(n, m, block, chunk_size, two_sided)

    def matched(p_xy, p_val, q_xy, q_val):
        with torch.no_grad():  # Ds: a weight only
            weight = (((p_xy - q_xy) ** 2).sum(-1) + eps_s).clamp_min(0).pow(alpha).clamp_min(1.0)
        return (weight * (((p_val - q_val) ** 2).sum(-1) + eps_a)).mean()

    loss = matched(a_xy.detach(), a_val, b_xy.detach()[idx_ab], b_val[idx_ab])
    if two_sided:
        loss = loss + matched(b_xy.detach(), b_val, a_xy.detach()[idx_ba], a_val[idx_ba])
    return loss


#: Largest ``B * N * M`` evaluated as one dense batched cost tensor (a few float32 tensors of that size).
#: About one image of 1,024 x 1,024 points (4 MB per tensor): measured on 2 CPU cores at lite sizes, 8
#: images of 1,024 points took 85 ms per call at 8.4 M (8 images a block), 56 ms at 2.1 M and 52 ms at
#: 1.05 M; larger blocks are slower, their fresh pages and cache misses costing more than the arithmetic.
DENSE_BUDGET = 1_100_000


def _col_argmin(d: torch.Tensor, group: int = ARGMIN_GROUP) -> torch.Tensor:
    """``d.argmin(1)`` for a contiguous ``(b, n, m)`` tensor, identical (first index on ties) and ~2x faster on
    CPU: the minimum of every group of ``group`` rows, the argmin over the groups, then the argmin inside the
    winning group only (the column twin of :func:`_row_argmin`)."""
    b, n, m = d.shape
    q = n // group
    if q < 2:
        return d.argmin(1)
    k = d[:, :q * group].view(b, q, group, m).amin(2).argmin(1)  # (b, m): the first group holding the minimum
    rows = k[:, None, :] * group + torch.arange(group, device=d.device)[None, :, None]
    idx = k * group + torch.gather(d, 1, rows).argmin(1)
    if q * group < n:  # leftover rows: keep the grouped winner on ties (it has the smaller index)
        rest = d[:, q * group:]
        ridx = rest.argmin(1)
        use_rest = torch.gather(rest, 1, ridx[:, None]).squeeze(1) < torch.gather(d, 1, idx[:, None]).squeeze(1)
        idx = torch.where(use_rest, ridx + q * group, idx)
    return idx


def dense_argmins(cost: torch.Tensor, both: bool = True) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Nearest neighbours both ways in a contiguous ``(B, N, M)`` float cost tensor (no gradient).

    Returns ``(argmin over M, (B, N) int64; argmin over N, (B, M) int64, or None when both=False)``,
    identical to ``argmin`` (first index on ties), with the grouped searches.
    """
    b, n, m = cost.shape
    return _row_argmin(cost.view(b * n, m)).view(b, n), (_col_argmin(cost) if both else None)


#: Added to the squared norm of padding points in the dense search: their cost is never the minimum.
_FAR = 1e18


def _augment_batch(p: torch.Tensor, ok: torch.Tensor, eps: float, left: bool) -> torch.Tensor:
    """:func:`_augment` for a batch ``(B, K, C)``: ``[p, |p|^2 + eps, 1]`` (left, ``(B, K, C + 2)``) or
    ``[-2 p, 1, |p|^2]`` transposed (right, ``(B, C + 2, K)``); padding points (``ok`` false) are put
    :data:`_FAR` away, so one ``bmm`` gives ``|p_i - q_j|^2 + eps`` with padding out of every minimum."""
    sq = (p * p).sum(-1, keepdim=True) + (~ok)[..., None].to(p.dtype) * _FAR
    one = torch.ones_like(sq)
    if left:
        return torch.cat([p, sq + eps, one], dim=-1).contiguous()
    return torch.cat([-2 * p, one, sq], dim=-1).transpose(1, 2).contiguous()


def _dense_chamfer(a_xy, a_val, a_ok, b_xy, b_val, b_ok, two_sided: bool, eps_s: float, alpha: float,
                   eps_a: float) -> torch.Tensor:
    """:func:`chamfer_point_sets` for a batch of padded sets at once, ``(B,)``.

    ``a_xy (B, N, 2)``, ``a_val (B, N, C)``, ``a_ok (B, N)`` marks real (not padding) points; same for ``b``.
    The nearest neighbours come from one dense cost tensor (no autograd), built from two batched products
    of augmented coordinates (:func:`_augment_batch`: no separate passes for norms, constants or padding)
    and searched with the grouped argmins; the loss is then recomputed with gradients on the matched
    pairs, exactly as the chunked per-image path does.
    """
    with torch.no_grad(), _search_threads(a_xy.device):
        cost = torch.bmm(_augment_batch(a_xy.detach().float(), a_ok, eps_s, True),
                         _augment_batch(b_xy.detach().float(), b_ok, 0.0, False))  # Ds + eps_s
        if alpha != 1:
            cost.clamp_(min=0).pow_(alpha)
        cost.clamp_(min=1.0)
        da = torch.bmm(_augment_batch(a_val.detach().float(), a_ok, eps_a, True),
                       _augment_batch(b_val.detach().float(), b_ok, 0.0, False))  # Da + eps_a
        if eps_a < 1e-3:  # the expansion can go slightly negative near 0
            da.clamp_(min=0)
        cost.mul_(da)
        del da
        idx_ab, idx_ba = dense_argmins(cost, two_sided)  # (B, N), (B, M)

    def matched(p_xy, p_val, p_ok, q_xy, q_val, idx):
        q_xy = torch.gather(q_xy, 1, idx[..., None].expand(-1, -1, q_xy.shape[-1]))
        q_val = torch.gather(q_val, 1, idx[..., None].expand(-1, -1, q_val.shape[-1]))
        with torch.no_grad():  # Ds: a weight only
            weight = (((p_xy - q_xy) ** 2).sum(-1) + eps_s).clamp_min(0).pow(alpha).clamp_min(1.0)
        per_point = weight * (((p_val - q_val) ** 2).sum(-1) + eps_a) * p_ok
        return per_point.sum(1) / p_ok.sum(1)

    loss = matched(a_xy, a_val, a_ok.to(a_val.dtype), b_xy, b_val, idx_ab)
    if two_sided:
        loss = loss + matched(b_xy, b_val, b_ok.to(b_val.dtype), a_xy, a_val, idx_ba)
    return loss


def _pad_sets(sets: list[tuple[torch.Tensor, torch.Tensor]]):
    """Stack point sets of different sizes: ``(xy (B, K, 2), values (B, K, C), ok (B, K))``."""
    k = max(xy.shape[0] for xy, _ in sets)
    xy = torch.stack([F.pad(p, (0, 0, 0, k - p.shape[0])) for p, _ in sets])
    val = torch.stack([F.pad(v, (0, 0, 0, k - v.shape[0])) for _, v in sets])
    ok = torch.stack([torch.arange(k, device=xy.device) < p.shape[0] for p, _ in sets])
    return xy, val, ok


def chamfer_on_maps(pred: torch.Tensor, pred_mask: torch.Tensor, target: torch.Tensor, target_mask: torch.Tensor,
                     num_points: Optional[int], generator: Optional[torch.Generator], **constants) -> torch.Tensor:
    """Per-image Chamfer distance (paper Eq. 5) between the foregrounds of two batches of value maps.

    Args:
        pred, target: ``(B, C, H, W)`` and ``(B, C, H', W')`` float value maps (colours or features; sizes may
            differ, positions are normalized).
        pred_mask, target_mask: ``(B, 1, H, W)`` / ``(B, 1, H', W')`` float; points where ``> 0.5``, at least
            one per image (not checked here: :func:`~meshinv_lite.losses.chamfer_texture_loss` checks).
        num_points: random points per image and side (``None``: all); generator: CPU generator or ``None``.
        constants: ``two_sided``, ``eps_s``, ``alpha``, ``eps_a``, ``chunk_size`` of :func:`chamfer_point_sets`
            (same defaults).
    Returns:
        ``(B,)`` in ``pred``'s dtype, differentiable in ``pred`` and ``target`` (values only).

    Images whose ``N * M`` fits :data:`DENSE_BUDGET` run as dense batched searches over as many images at a
    time as the budget holds; larger ones image by image with the chunked, pruned search of
    :func:`chamfer_point_sets`. Both give the same loss.
    """
    a = [foreground_points(pred[b], pred_mask[b], num_points, MASK_THRESHOLD, generator) for b in range(pred.shape[0])]
    t = [foreground_points(target[b], target_mask[b], num_points, MASK_THRESHOLD, generator) for b in range(pred.shape[0])]
    pairs = max(p.shape[0] for p, _ in a) * max(p.shape[0] for p, _ in t)
    if pairs <= DENSE_BUDGET:  # dense, in groups of images that fit the budget (e.g. 32 init candidates: 4 x 8)
        consts = {k: v for k, v in constants.items() if k != "chunk_size"}
        consts.setdefault("two_sided", True)
        consts.setdefault("eps_s", EPS_S)
        consts.setdefault("alpha", ALPHA)
        consts.setdefault("eps_a", EPS_A)
        group = max(1, DENSE_BUDGET // pairs)
        return torch.cat([_dense_chamfer(*_pad_sets(a[g:g + group]), *_pad_sets(t[g:g + group]), **consts)
                          for g in range(0, len(a), group)])
    return torch.stack([chamfer_point_sets(pxy, pv, txy, tv, **constants) for (pxy, pv), (txy, tv) in zip(a, t)])


def nearest_2d(a: torch.Tensor, b: torch.Tensor, chunk_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest neighbours both ways between 2D point sets ``a (N, 2)`` and ``b (M, 2)`` (squared Euclidean).

    Args:
        a, b: float point sets (computed in float32), ``N, M >= 1``.
        chunk_size: rows of ``a`` per chunk (default 1024; memory only).
    Returns:
        ``(idx_ab (N,), idx_ba (M,))`` int64: for every point of ``a`` its nearest in ``b`` and vice versa
        (first index on ties). No gradients (recompute the distances of the matched pairs for a loss).
    """
    with torch.no_grad(), _search_threads(a.device):
        a_aug = _augment(a.detach().float(), 0.0, left=True)
        b_aug = _augment(b.detach().float(), 0.0, left=False)

        def block(s: int, e: int, cols: Optional[torch.Tensor]) -> torch.Tensor:
            return a_aug[s:e] @ (b_aug if cols is None else b_aug[:, cols])

        return _nearest_both_ways(a.shape[0], b.shape[0], block, chunk_size, True)
