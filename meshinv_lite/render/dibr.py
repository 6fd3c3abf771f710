"""A differentiable mesh renderer in the DIB-R formulation, in plain PyTorch (CPU or CUDA).

Four primitives with plain tensor arguments and no hidden state (nvdiffrast-style), plus one
convenience function that composes them:

===================  ============================================================  =================================
primitive            does                                                          differentiable in
===================  ============================================================  =================================
:func:`rasterize`    hard z-buffer: nearest face per pixel and its barycentrics    ``verts[..., :2]`` (via ``bary``)
:func:`interpolate`  barycentric interpolation of per-vertex attributes            ``attr``, ``bary``
:func:`soft_mask`    DIB-R soft silhouette ``1 - prod_f (1 - exp(-d^2 / sigma))``  ``verts[..., :2]``
:func:`project`      camera projection of vertices, no rasterization               ``verts``, the camera
===================  ============================================================  =================================

:func:`texture` looks a texture map up at interpolated UVs and :func:`render_mesh` does the whole
textured render. Vertices given to :func:`rasterize`, :func:`interpolate` and :func:`soft_mask` are in
**camera space** (``V_cam = camera.apply(V) = qrot(r, s V) + (t_x, t_y, 0)``): ``x, y`` in normalized image
coordinates (x right, y up, the image spans ``[-1, 1]``), ``z`` larger = farther from the viewer (see
:mod:`meshinv_lite.render.camera`); :func:`project` and :func:`render_mesh` take object-space vertices.
Which face covers a pixel is a discrete choice with no gradient; gradients reach the vertices through the
barycentrics of the covered pixels (texture shifts inside the silhouette) and through :func:`soft_mask`
(the silhouette's outline). The vertices' ``z`` only decides visibility: no gradient reaches it.

Both sides of every face are rasterized by default (thin parts such as wings must render from
either side); pass ``cull_backfaces=True`` to keep only faces whose outward normal faces the viewer.

How it is fast on a CPU: the hard pass enumerates, for every face, the pixels of its bounding box
(a flat list of (face, pixel) pairs, no pixels x faces product), keeps those inside, and resolves
visibility with one ``scatter_reduce(amin)`` on a key that packs quantized depth with the face index.
Only the winning pixels are then revisited with autograd on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .._checks import check_batch, check_finite, check_nonempty_batch, check_shape, image_hw
from ..config import RenderConfig
from .camera import WeakPerspectiveCamera, check_camera, ndc_to_pixel, pixel_to_ndc
from .mesh import TemplateMesh, sample_uv_map

_FACE_BITS = 21  # faces per mesh < 2**21; the depth gets the upper 40 bits of the int64 key
_DEPTH_LEVELS = 2**40 - 1
_EMPTY = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """What rasterization found at every pixel (made by :func:`rasterize`; ``P`` = number of covered pixels).

    Attributes:
        pix_to_face: ``(B, H, W)`` int64, index in ``[0, F)`` of the nearest covering face (per mesh, not
            flattened), ``-1`` for background. No gradient.
        zbuf: ``(B, H, W)`` float (the vertices' dtype), camera-space ``z`` of that face at the pixel centre
            (larger = farther), quantized to 2^40 levels between the batch's smallest and largest vertex
            ``z``; ``inf`` for background. No gradient.
        fg_index: ``(P,)`` int64 flat indices ``b * H * W + row * W + col`` of the covered pixels, ascending
            (row 0 at the top of the image).
        fg_face: ``(P,)`` int64 flat face indices ``b * F + face`` at those pixels.
        fg_bary: ``(P, 3)`` float (the vertices' dtype) barycentric coordinates of each pixel centre in its face
            (weights of the face's corners 0, 1, 2; they sum to 1 and lie in ``[0, 1]`` up to rounding),
            differentiable in the camera-space ``x, y`` of that face's vertices.
    """

    pix_to_face: torch.Tensor
    zbuf: torch.Tensor
    fg_index: torch.Tensor
    fg_face: torch.Tensor
    fg_bary: torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(B, H, W)``: batch size and image size."""
        return tuple(self.pix_to_face.shape)

    @property
    def mask(self) -> torch.Tensor:
        """Hard silhouette ``(B, 1, H, W)`` in ``{0, 1}`` (1 = covered), ``fg_bary``'s dtype; no gradient."""
        return (self.pix_to_face >= 0).to(self.fg_bary.dtype)[:, None]

    @property
    def bary(self) -> torch.Tensor:
        """Dense barycentrics ``(B, H, W, 3)`` (``fg_bary`` scattered), zero on the background; keeps the gradient."""
        b, h, w = self.shape
        dense = self.fg_bary.new_zeros(b * h * w, 3).index_copy(0, self.fg_index, self.fg_bary)
        return dense.view(b, h, w, 3)


def _check_mesh(verts: torch.Tensor, faces: torch.Tensor) -> None:
    check_shape("verts", verts, (None, None, 3), "(B, N, 3) camera-space vertices")
    check_shape("faces", faces, (None, 3), "(F, 3) vertex indices")
    if verts.shape[1] == 0 or faces.shape[0] == 0:
        raise ValueError(f"empty mesh: {verts.shape[1]} vertices, {faces.shape[0]} faces")
    if faces.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"faces must be an integer tensor, got {faces.dtype}")
    if int(faces.max()) >= verts.shape[1] or int(faces.min()) < 0:
        raise ValueError(f"faces index vertices outside [0, {verts.shape[1]})")
    if faces.shape[0] >= 2**_FACE_BITS:
        raise ValueError(f"at most {2**_FACE_BITS - 1} faces are supported, got {faces.shape[0]}")
    check_finite("verts", verts)


def _face_bboxes(pix: torch.Tensor, height: int, width: int, margin_x: float, margin_y: float):
    """Inclusive pixel-index boxes ``(x0, x1, y0, y1)`` (long ``(M,)`` each) of faces ``(M, 3, 2)``
    grown by a margin and clipped to the image; empty boxes have ``x1 < x0`` or ``y1 < y0``."""
    lo = pix.min(dim=1).values
    hi = pix.max(dim=1).values
    x0 = torch.ceil(lo[:, 0] - margin_x).clamp_min(0).long()
    x1 = torch.floor(hi[:, 0] + margin_x).clamp_max(width - 1).long()
    y0 = torch.ceil(lo[:, 1] - margin_y).clamp_min(0).long()
    y1 = torch.floor(hi[:, 1] + margin_y).clamp_max(height - 1).long()
    return x0, x1, y0, y1


def _box_pixels(x0: torch.Tensor, x1: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, first_pixel: torch.Tensor, width: int):
    """Every pixel of every box: ``(box, flat pixel index)`` long tensors.

    ``first_pixel`` ``(M,)`` is the flat index of each box's top-left pixel, ``width`` the image width.
    """
    bw = (x1 - x0 + 1).clamp_min(0)
    counts = bw * (y1 - y0 + 1).clamp_min(0)
    box = torch.repeat_interleave(torch.arange(x0.shape[0], device=x0.device), counts)
    local = torch.arange(box.shape[0], device=x0.device) - (torch.cumsum(counts, 0) - counts).index_select(0, box)
    w_b = bw.index_select(0, box)
    row = torch.div(local, w_b, rounding_mode="floor")
    return box, first_pixel.index_select(0, box) + local + row * (width - w_b)


def _barycentric(corners: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Barycentrics ``(P, 3)`` of points ``p`` ``(P, 2)`` in triangles ``corners`` ``(P, 3, 2)``; also 2x the
    signed area ``(P,)``."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    w0 = (b[:, 0] - p[:, 0]) * (c[:, 1] - p[:, 1]) - (c[:, 0] - p[:, 0]) * (b[:, 1] - p[:, 1])
    w1 = (c[:, 0] - p[:, 0]) * (a[:, 1] - p[:, 1]) - (a[:, 0] - p[:, 0]) * (c[:, 1] - p[:, 1])
    safe = torch.where(area.abs() > 1e-20, area, torch.ones_like(area))
    l0, l1 = w0 / safe, w1 / safe
    return torch.stack([l0, l1, 1 - l0 - l1], dim=-1), area


def _scanline_pairs(pix: torch.Tensor, height: int, width: int):
    """(face, col, row) for every pixel centre inside a face, found row by row (scanlines).

    Args:
        pix: ``(M, 3, 2)`` face corners in continuous pixel coordinates (column, row).
    Returns:
        ``(face, col, row)`` long tensors, one entry per covered (face, pixel) pair.

    Each face is split into the pixel rows it spans; on each row the covered columns are the
    integers between the row's crossings of two edges. Edge endpoints are put in a canonical order
    first so that two faces sharing an edge compute bit-identical crossings: no pixel centre on a
    shared edge is lost (watertight), and none is tested outside its face.
    """
    m, dev = pix.shape[0], pix.device
    x, y = pix[..., 0], pix[..., 1]
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    # Per face and edge: lower endpoint (xa, ya), upper y (yb) and dx/dy, in canonical order.
    a, b = pix, pix[:, [1, 2, 0]]  # (M, 3, 2): edges 0-1, 1-2, 2-0
    swap = (a[..., 1] > b[..., 1]) | ((a[..., 1] == b[..., 1]) & (a[..., 0] > b[..., 0]))
    lo_pt = torch.where(swap[..., None], b, a)
    hi_pt = torch.where(swap[..., None], a, b)
    dy = hi_pt[..., 1] - lo_pt[..., 1]
    flat = dy > 0
    slope = (hi_pt[..., 0] - lo_pt[..., 0]) / torch.where(flat, dy, torch.ones_like(dy))
    ya = torch.where(flat, lo_pt[..., 1], torch.full_like(dy, float("inf")))  # horizontal edges never cross
    table = torch.cat([lo_pt[..., 0], ya, hi_pt[..., 1], slope], dim=1)  # (M, 12)

    r0 = torch.ceil(y.min(1).values).clamp_min(0).long()
    r1 = torch.floor(y.max(1).values).clamp_max(height - 1).long()
    n_rows = torch.where(area.abs() > 1e-12, (r1 - r0 + 1).clamp_min(0), torch.zeros_like(r0))
    seg_face = torch.repeat_interleave(torch.arange(m, device=dev), n_rows)
    seg_row = torch.arange(seg_face.shape[0], device=dev) - (torch.cumsum(n_rows, 0) - n_rows - r0).index_select(0, seg_face)
    ry = seg_row.to(pix.dtype)[:, None]
    t = table.index_select(0, seg_face)
    e_xa, e_ya, e_yb, e_slope = t[:, 0:3], t[:, 3:6], t[:, 6:9], t[:, 9:12]
    crosses = (ry >= e_ya) & (ry <= e_yb)
    xc = e_xa + (ry - e_ya) * e_slope
    lo = torch.where(crosses, xc, torch.full_like(xc, float("inf"))).min(1).values
    hi = torch.where(crosses, xc, torch.full_like(xc, float("-inf"))).max(1).values
    valid = crosses.any(1)
    c0 = torch.ceil(torch.where(valid, lo, torch.zeros_like(lo))).clamp_min(0).long()
    c1 = torch.floor(torch.where(valid, hi, torch.full_like(hi, -1.0))).clamp_max(width - 1).long()
    n_cols = torch.where(valid, (c1 - c0 + 1).clamp_min(0), torch.zeros_like(c0))
    seg = torch.repeat_interleave(torch.arange(seg_face.shape[0], device=dev), n_cols)
    col = torch.arange(seg.shape[0], device=dev) - (torch.cumsum(n_cols, 0) - n_cols - c0).index_select(0, seg)
    return seg_face.index_select(0, seg), col, seg_row.index_select(0, seg)


def rasterize(
    verts: torch.Tensor,
    faces: torch.Tensor,
    image_size: int | tuple[int, int],
    cull_backfaces: bool = False,
) -> Fragments:
    """Hard rasterization with a z-buffer; barycentrics are recomputed differentiably.

    A pixel is covered by a face when its centre (``pixel_to_ndc``: ``x = (col + 0.5) / W * 2 - 1``,
    ``y = 1 - (row + 0.5) / H * 2``) lies inside the face's projection (orthographic: ``x, y`` kept);
    among covering faces the one with the smallest ``z`` at that centre wins. Shared edges are watertight.

    Args:
        verts: ``(B, N, 3)`` float camera-space vertices (``camera.apply(V)``): ``x, y`` normalized image
            coordinates (x right, y up; the image spans ``[-1, 1]``, anything outside is off-screen),
            ``z`` larger = farther. Finite.
        faces: ``(F, 3)`` int64 (or int32) vertex indices in ``[0, N)``, shared by the batch; ``F < 2**21``.
        image_size: ``S`` (square) or ``(H, W)`` in pixels, each at least 8.
        cull_backfaces: ``False`` (default): both sides of every face render (thin wings). ``True``: keep only
            faces whose normal ``(v1 - v0) x (v2 - v0)`` in camera space has ``z < 0``, i.e. points at the
            viewer; for the template (counter-clockwise seen from outside) these are the outside faces.
    Returns:
        :class:`Fragments`. Only ``fg_bary`` (and :attr:`Fragments.bary`) carries gradients, to ``verts[..., :2]``
        of the winning faces; the face choice, ``zbuf`` and the hard mask are not differentiable.
    """
    _check_mesh(verts, faces)
    h, w = image_hw(image_size)
    bsz, n_faces = verts.shape[0], faces.shape[0]
    with torch.no_grad():
        v = verts.detach()
        corners = _face_corners(v, faces)  # (B*F, 3, 3)
        pix = ndc_to_pixel(corners[..., :2], h, w)
        if cull_backfaces:
            e1 = corners[:, 1, :2] - corners[:, 0, :2]
            e2 = corners[:, 2, :2] - corners[:, 0, :2]
            facing = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) < 0  # normal z < 0: towards viewer
            pix = torch.where(facing[:, None, None], pix, torch.full_like(pix, -1e9))
        face, col, row = _scanline_pairs(pix, h, w)
        # Depth is affine in the image plane (orthographic): z = z0 + a * col + b * row per face.
        plane = _depth_planes(pix, corners[..., 2])  # (B*F, 3)
        pl = plane.index_select(0, face)
        z = pl[:, 0] + pl[:, 1] * col + pl[:, 2] * row
        zmin, zmax = v[..., 2].min(), v[..., 2].max()
        zq = ((z - zmin) / (zmax - zmin).clamp_min(1e-12) * _DEPTH_LEVELS).clamp(0, _DEPTH_LEVELS).long()
        b_idx = torch.div(face, n_faces, rounding_mode="floor")
        key = (zq << _FACE_BITS) | (face - b_idx * n_faces)
        lin = (b_idx * h + row) * w + col
        best = torch.full((bsz * h * w,), _EMPTY, dtype=torch.int64, device=verts.device)
        best.scatter_reduce_(0, lin, key, reduce="amin", include_self=True)
        covered = best != _EMPTY
        pix_to_face = torch.where(covered, best & (2**_FACE_BITS - 1), torch.full_like(best, -1))
        fg_index = torch.nonzero(covered).squeeze(1)
        zq_best = (best[fg_index] >> _FACE_BITS).to(verts.dtype)
        zbuf = torch.full((bsz * h * w,), float("inf"), dtype=verts.dtype, device=verts.device)
        zbuf[fg_index] = zmin + zq_best / _DEPTH_LEVELS * (zmax - zmin)

        fg_face = torch.div(fg_index, h * w, rounding_mode="floor") * n_faces + pix_to_face.index_select(0, fg_index)

    fg_bary = _pixel_barycentrics(verts, faces, fg_face, fg_index, h, w)
    return Fragments(pix_to_face.view(bsz, h, w), zbuf.view(bsz, h, w), fg_index, fg_face, fg_bary)


def _depth_planes(pix: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Coefficients ``(M, 3)`` of ``z = c0 + c1 * col + c2 * row`` through each face's corners."""
    x, y = pix[..., 0], pix[..., 1]
    dx1, dy1, dz1 = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0], z[:, 1] - z[:, 0]
    dx2, dy2, dz2 = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0], z[:, 2] - z[:, 0]
    det = dx1 * dy2 - dx2 * dy1
    det = torch.where(det.abs() > 1e-20, det, torch.ones_like(det))
    a = (dz1 * dy2 - dz2 * dy1) / det
    b = (dx1 * dz2 - dx2 * dz1) / det
    return torch.stack([z[:, 0] - a * x[:, 0] - b * y[:, 0], a, b], dim=-1)


def _face_corners(verts: torch.Tensor, faces: torch.Tensor, which: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Corners ``(M, 3, C)`` of faces, flattened over the batch: face ``k`` is batch ``k // F``, face ``k % F``.

    ``which`` (long ``(M,)``) selects flat face indices; all ``B * F`` faces when omitted.
    """
    bsz, n, c = verts.shape
    flat_faces = (faces[None] + (torch.arange(bsz, device=verts.device) * n)[:, None, None]).reshape(-1, 3)
    if which is not None:
        flat_faces = flat_faces.index_select(0, which)
    return verts.reshape(-1, c).index_select(0, flat_faces.reshape(-1)).view(-1, 3, c)


def _split_pixel_index(flat: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat pixel indices ``b * H * W + row * W + col`` -> ``(b, col, row)``."""
    b_idx = torch.div(flat, h * w, rounding_mode="floor")
    rem = flat - b_idx * h * w
    row = torch.div(rem, w, rounding_mode="floor")
    return b_idx, rem - row * w, row


def _pixel_barycentrics(verts, faces, fg_face, fg_index, h, w) -> torch.Tensor:
    """Differentiable barycentrics ``(P, 3)`` of the covered pixels' centres in their faces."""
    _, col, row = _split_pixel_index(fg_index, h, w)
    p = pixel_to_ndc(torch.stack([col, row], -1).to(verts.dtype), h, w)
    corners = _face_corners(verts[..., :2], faces, fg_face)  # (P, 3, 2)
    bary, _ = _barycentric(corners, p)
    return bary


def interpolate(attr: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate attributes over the covered pixels; zero on the background.

    ``out[b, row, col] = sum_k bary_k * attr[b, faces[face, k]]`` for the face covering the pixel.

    Args:
        attr: ``(B, N, C)`` float per-vertex (or per-UV-point) attributes, any values (UVs in ``[0, 1]``,
            depth, normals, ...), or ``(N, C)`` / ``(1, N, C)`` shared by the batch.
        faces: ``(F, 3)`` int64 indices into ``attr`` for each face corner, in the same face order as the
            faces that were rasterized (for UVs: ``template.faces_uv``; for vertex attributes: ``faces``).
        fragments: from :func:`rasterize`, batch ``B`` (``attr``'s batch must be ``B`` or 1).
    Returns:
        ``(B, H, W, C)`` in ``attr``'s dtype, zero on background pixels; differentiable in ``attr`` and in the
        camera-space ``x, y`` of the vertices (through ``fragments.fg_bary``).
    """
    bsz, h, w = fragments.shape
    if attr.dim() == 2:
        attr = attr[None]
    check_shape("attr", attr, (None, None, None), "(B, N, C) or (N, C)")
    if attr.shape[0] not in (1, bsz):
        raise ValueError(f"mismatched batch sizes: attr {attr.shape[0]}, fragments {bsz}")
    if attr.shape[0] == 1:  # shared attributes: index the faces directly
        local_face = fragments.fg_face - torch.div(fragments.fg_face, faces.shape[0], rounding_mode="floor") * faces.shape[0]
        vals = attr[0].index_select(0, faces.index_select(0, local_face).reshape(-1)).view(-1, 3, attr.shape[-1])
    else:
        vals = _face_corners(attr, faces, fragments.fg_face)  # (P, 3, C)
    out = torch.bmm(fragments.fg_bary.to(vals.dtype)[:, None, :], vals)[:, 0]
    dense = out.new_zeros(bsz * h * w, attr.shape[-1]).index_copy(0, fragments.fg_index, out)
    return dense.view(bsz, h, w, -1)


def texture(tex: torch.Tensor, uv: torch.Tensor, fragments: Optional[Fragments] = None) -> torch.Tensor:
    """Bilinear texture lookup at per-pixel UVs (wrapping across the seam), by :func:`sample_uv_map`.

    Args:
        tex: ``(B, C, Ht, Wt)`` float texture map (colours in ``[0, 1]`` for images; any values work).
        uv: ``(B, H, W, 2)`` float ``(u, v)`` in ``[0, 1]`` (from :func:`interpolate`): ``u`` along the map's
            width, wrapping around (circular), ``v`` along its height, row 0 at the top (clamped).
            ``tex`` and ``uv`` may have batch 1, broadcast to the other's batch.
        fragments: when given, background pixels are multiplied by 0 (the hard mask, no gradient);
            ``None`` (default): every pixel is looked up, background included (at ``uv = 0``).
    Returns:
        ``(B, C, H, W)`` in ``tex``'s dtype, differentiable in ``tex`` and ``uv``.
    """
    check_shape("uv", uv, (None, None, None, 2), "(B, H, W, 2)")
    check_batch(texture=tex, uv=uv)
    if tex.shape[0] != uv.shape[0]:
        bsz = max(tex.shape[0], uv.shape[0])
        tex, uv = tex.expand(bsz, -1, -1, -1), uv.expand(bsz, -1, -1, -1)
    out = sample_uv_map(tex, uv)
    if fragments is not None:
        out = out * fragments.mask.to(out.dtype)
    return out


def _point_segment_sqdist(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance ``(P,)`` from points ``p`` to segments ``a-b`` (all ``(P, 2)``)."""
    ab = b - a
    t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-20)
    closest = a + t.clamp(0, 1)[:, None] * ab
    return ((p - closest) ** 2).sum(-1)


def soft_mask(
    verts: torch.Tensor,
    faces: torch.Tensor,
    fragments: Fragments,
    sigma_inv: float = 7000.0,
    box_len: float = 0.02,
) -> torch.Tensor:
    """DIB-R soft silhouette ``A(p) = 1 - prod_f (1 - exp(-d(p, f)^2 / sigma))``, with ``1 / sigma = sigma_inv``.

    Covered pixels (``fragments.pix_to_face >= 0``) are exactly 1 (``d = 0`` inside a face), without
    gradient. For the others, every face with ``d(p, f) < box_len`` contributes; ``d`` is the distance from
    the pixel centre to the triangle's projection (its nearest edge), in normalized units (x, y only; depth
    plays no role, so hidden faces count too). Each factor ``exp(-d^2 / sigma)`` is capped at ``1 - 1e-6``.
    Unlike kaolin there is no cap on faces per pixel (near a silhouette only a handful are in reach).

    Args:
        verts: ``(B, N, 3)`` float camera-space vertices, the same the fragments were made from.
        faces: ``(F, 3)`` int64 vertex indices, the same the fragments were made from.
        fragments: from :func:`rasterize`, for the pixel grid and which pixels are covered.
        sigma_inv: ``1 / sigma``, the sharpness (default 7000, kaolin's): a face at ``d`` adds
            ``exp(-7000 d^2)``, 0.5 at ``d = 0.01`` (0.64 px at 128 px), 0.06 at ``d = 0.02``.
        box_len: reach in normalized units (default 0.02, kaolin's; ``box_len * W / 2`` = 1.28 px at 128 px):
            faces farther than this from a pixel contribute nothing.
    Returns:
        ``(B, 1, H, W)`` in ``verts``' dtype, in ``[0, 1]``: 1 on covered pixels, 0 farther than ``box_len``
        from every face. Differentiable in ``verts[..., :2]`` on uncovered pixels only.
    """
    _check_mesh(verts, faces)
    bsz, h, w = fragments.shape
    n_faces = faces.shape[0]
    covered = fragments.pix_to_face.view(-1) >= 0
    with torch.no_grad():
        # Only faces whose (grown) box holds an uncovered pixel can contribute: count uncovered
        # pixels per box with a summed-area table and skip the rest before enumerating pixels.
        free_img = (~covered).view(bsz, h, w).to(torch.int32)
        sat = torch.nn.functional.pad(free_img.cumsum(1).cumsum(2), (1, 0, 1, 0)).reshape(-1)
        corners_px = ndc_to_pixel(_face_corners(verts.detach()[..., :2], faces), h, w)  # (B*F, 3, 2)
        x0, x1, y0, y1 = _face_bboxes(corners_px, h, w, box_len * w / 2, box_len * h / 2)
        base = torch.div(torch.arange(bsz * n_faces, device=verts.device), n_faces, rounding_mode="floor") * (h + 1) * (w + 1)
        xa, ya = x0.clamp_max(w), y0.clamp_max(h)  # boxes right of / below the image are empty
        xb, yb = (x1 + 1).clamp_min(xa), (y1 + 1).clamp_min(ya)
        n_free = (
            sat[base + yb * (w + 1) + xb] - sat[base + ya * (w + 1) + xb]
            - sat[base + yb * (w + 1) + xa] + sat[base + ya * (w + 1) + xa]
        )
        which = torch.nonzero(n_free > 0).squeeze(1)
        b_w = torch.div(which, n_faces, rounding_mode="floor")
        x0, x1, y0, y1 = x0[which], x1[which], y0[which], y1[which]
        box, lin = _box_pixels(x0, x1, y0, y1, (b_w * h + y0) * w + x0, w)
        keep = torch.nonzero(~covered.index_select(0, lin)).squeeze(1)
        flat_face, lin = which.index_select(0, box.index_select(0, keep)), lin.index_select(0, keep)
        _, col, row = _split_pixel_index(lin, h, w)
        p = pixel_to_ndc(torch.stack([col, row], -1).to(verts.dtype), h, w)
    corners = _face_corners(verts[..., :2], faces, flat_face)  # (Q, 3, 2) with grad
    d2 = torch.minimum(
        torch.minimum(
            _point_segment_sqdist(p, corners[:, 0], corners[:, 1]),
            _point_segment_sqdist(p, corners[:, 1], corners[:, 2]),
        ),
        _point_segment_sqdist(p, corners[:, 2], corners[:, 0]),
    )
    near = d2.detach() < box_len**2
    d2, lin = d2[near], lin[near]
    weight = torch.exp(-d2 * sigma_inv).clamp(max=1 - 1e-6)
    log_empty = verts.new_zeros(bsz * h * w).index_add(0, lin, torch.log1p(-weight))
    soft = 1 - torch.exp(log_empty)
    soft = torch.where(covered, torch.ones_like(soft), soft)
    return soft.view(bsz, 1, h, w)


def project(verts: torch.Tensor, camera: WeakPerspectiveCamera) -> torch.Tensor:
    """Projected vertices in normalized image coordinates, without rasterization or visibility test.

    ``P(S, c) = (qrot(r, s V) + (t_x, t_y, 0))[..., :2]``: the ``P(S, c)`` of the Chamfer mask loss
    (:func:`meshinv_lite.losses.chamfer_mask_loss`).

    Args:
        verts: ``(B, N, 3)`` float **object-space** vertices (or ``(N, 3)`` / ``(1, N, 3)``, shared).
        camera: ``B`` cameras (or one, broadcast to the vertices' batch).
    Returns:
        ``(B, N, 2)`` ``(x, y)``, x right, y up; the image spans ``[-1, 1]`` (values outside are off-screen).
        Differentiable in ``verts`` and in the camera's ``scale``, ``translation`` and ``rotation``.
    """
    return camera.project(verts)


@dataclass
class RenderOutput:
    """Result of :func:`render_mesh` (all floats in the vertices' dtype).

    Attributes:
        image: ``(B, 3, H, W)`` in ``[0, 1]`` (for a texture and background in ``[0, 1]``): the texture on
            covered pixels, the background elsewhere. Differentiable in the texture map, the background, and
            (through ``uv``) the vertices and camera; not at the outline (use ``soft_mask`` for that).
        mask: ``(B, 1, H, W)`` hard silhouette in ``{0, 1}`` (no gradient).
        soft_mask: ``(B, 1, H, W)`` DIB-R soft silhouette in ``[0, 1]`` (:func:`soft_mask`), differentiable in
            the vertices and camera on uncovered pixels; ``None`` when ``soft=False``.
        uv: ``(B, H, W, 2)`` interpolated texture coordinates ``(u, v)`` in ``[0, 1]`` (zero on background).
        fragments: the rasterizer's :class:`Fragments`.
        verts_cam: ``(B, N, 3)`` camera-space vertices ``qrot(r, s V) + (t_x, t_y, 0)`` (larger ``z`` farther).
    """

    image: torch.Tensor
    mask: torch.Tensor
    soft_mask: Optional[torch.Tensor]
    uv: torch.Tensor
    fragments: Fragments
    verts_cam: torch.Tensor


def render_mesh(
    template: TemplateMesh,
    verts: torch.Tensor,
    camera: WeakPerspectiveCamera,
    texture_map: torch.Tensor,
    config: RenderConfig = RenderConfig(),
    background: Optional[torch.Tensor] = None,
    soft: bool = True,
    cull_backfaces: bool = False,
) -> RenderOutput:
    """Render textured meshes that share the template's topology.

    ``camera.apply`` -> :func:`rasterize` -> :func:`interpolate` (UVs) -> :func:`texture` -> composite over the
    background, and (``soft=True``) :func:`soft_mask`.

    Args:
        template: gives ``faces`` and the UV layout (``uvs``, ``faces_uv``).
        verts: ``(B, N, 3)`` float object-space vertices, ``N = template.num_vertices``
            (e.g. :func:`~meshinv_lite.render.deform_vertices`); batch 1 broadcasts to the camera's.
        camera: ``B`` cameras (or one, broadcast): ``V_cam = qrot(r, s V) + (t_x, t_y, 0)``.
        texture_map: ``(B, 3, Ht, Wt)`` float in ``[0, 1]`` (integer tensors are refused); batch 1 broadcasts.
        config: ``image_size`` (default 128), ``sigma_inv`` (7000) and ``box_len`` (0.02) of the soft silhouette.
        background: ``None`` (default): black (0); else ``(B, 3, H, W)`` image or ``(3,)`` colour in ``[0, 1]``.
        soft: also compute the DIB-R soft silhouette (default ``True``; the only path for gradients that move
            the outline).
        cull_backfaces: see :func:`rasterize` (default ``False``: both sides of every face render).
    Returns:
        :class:`RenderOutput`: ``image`` ``(B, 3, H, W)`` in ``[0, 1]``, ``mask`` and ``soft_mask``
        ``(B, 1, H, W)``, ``uv``, ``fragments``, ``verts_cam``.
    """
    check_camera("camera", camera)
    check_shape("texture_map", texture_map, (None, 3, None, None), "(B, 3, Ht, Wt)")
    if not texture_map.is_floating_point():
        raise TypeError(f"texture_map is a {texture_map.dtype} tensor; textures must be floats in [0, 1] "
                        "(pass texture_map.float() / 255)")
    check_shape("verts", verts, (None, template.num_vertices, 3), f"(B, {template.num_vertices}, 3)")
    check_batch(verts=verts, texture_map=texture_map, camera=camera.scale)  # before the camera meets the vertices
    sil = render_silhouette(template, verts, camera, config, soft=soft, cull_backfaces=cull_backfaces)
    frags = sil.fragments
    uv = interpolate(template.uvs.to(verts.device, verts.dtype), template.faces_uv.to(verts.device), frags)
    bsz = sil.verts_cam.shape[0]
    color = texture(texture_map.expand(bsz, -1, -1, -1) if texture_map.shape[0] == 1 else texture_map, uv)
    mask = frags.mask.to(color.dtype)
    if background is None:
        image = color * mask
    else:
        bg = background.to(color)
        if bg.dim() == 1:
            bg = bg[None, :, None, None]
        image = color * mask + bg * (1 - mask)
    return RenderOutput(image=image, mask=mask, soft_mask=sil.soft_mask, uv=uv, fragments=frags, verts_cam=sil.verts_cam)


def render_silhouette(
    template: TemplateMesh,
    verts: torch.Tensor,
    camera: WeakPerspectiveCamera,
    config: RenderConfig = RenderConfig(),
    soft: bool = True,
    cull_backfaces: bool = False,
) -> RenderOutput:
    """The silhouette alone: :func:`render_mesh` without the texture (no UV interpolation, no texture lookup), and
    the first half of :func:`render_mesh` (``camera.apply`` -> :func:`rasterize` -> :func:`soft_mask`).

    ``verts`` ``(B, N, 3)``, ``camera`` and ``cull_backfaces`` as for :func:`render_mesh`. Returns a
    :class:`RenderOutput` whose ``mask`` and ``soft_mask`` equal :func:`render_mesh`'s, whose ``image`` is that mask
    in white on black ``(B, 3, H, W)`` (something to look at), and whose ``uv`` is ``None``."""
    check_camera("camera", camera)
    check_shape("verts", verts, (None, template.num_vertices, 3), f"(B, {template.num_vertices}, 3)")
    check_nonempty_batch("verts", verts)
    h, w = image_hw(config.image_size)
    verts_cam = camera.apply(verts)
    faces = template.faces.to(verts.device)
    frags = rasterize(verts_cam, faces, (h, w), cull_backfaces=cull_backfaces)
    mask = frags.mask.to(verts.dtype)
    sm = soft_mask(verts_cam, faces, frags, config.sigma_inv, config.box_len) if soft else None
    return RenderOutput(image=mask.expand(-1, 3, -1, -1), mask=mask, soft_mask=sm, uv=None, fragments=frags,
                        verts_cam=verts_cam)
