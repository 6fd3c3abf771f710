"""Regularisers: smoothness (neighbouring face normals), creases, and the latent prior on ``z``."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .._checks import check_finite, check_shape, reduce_per_image
from ..render.mesh import face_adjacency, face_normals


def normal_consistency(verts: torch.Tensor, faces: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos`` between normals of neighbouring faces, per mesh ``(B,)``."""
    n = face_normals(verts, faces)
    return (1 - (n[:, pairs[:, 0]] * n[:, pairs[:, 1]]).sum(-1)).mean(1)


def smoothness_loss(verts: torch.Tensor, faces: torch.Tensor, face_pairs: Optional[torch.Tensor] = None,
                    reduction: str = "mean") -> torch.Tensor:
    """Mean ``1 - cos`` between the normals of faces sharing an edge, per mesh; 0 for a flat surface.

    Args:
        verts: ``(B, N, 3)``; faces ``(F, 3)`` long; face_pairs ``(E, 2)`` from
            :func:`meshinv_lite.render.face_adjacency` (computed when ``None``; pass it in loops).
    Returns:
        values in ``[0, 2]``, ``(B,)`` for ``reduction="none"``. (Wraps
        :func:`meshinv_lite.losses.normal_consistency`.)
    """
    check_shape("verts", verts, (None, None, 3), "(B, N, 3)")
    check_shape("faces", faces, (None, 3), "(F, 3)")
    check_finite("verts", verts)
    pairs = face_adjacency(faces) if face_pairs is None else face_pairs
    check_shape("face_pairs", pairs, (None, 2), "(E, 2) from face_adjacency(faces)")
    return reduce_per_image(normal_consistency(verts, faces.to(verts.device), pairs.to(verts.device)), reduction)


def crease_loss(verts: torch.Tensor, faces: torch.Tensor, face_pairs: Optional[torch.Tensor] = None,
                reduction: str = "mean") -> torch.Tensor:
    """Mean ``relu(-cos)`` between the normals of faces sharing an edge, per mesh: zero unless the surface
    folds back on itself (neighbouring normals more than 90 degrees apart).

    Unlike :func:`smoothness_loss` it leaves ordinary curvature (a round head, a thin tail) alone and
    acts only on creases, the folds :func:`meshinv_lite.metrics.folded_fraction` counts. Values in
    ``[0, 1]``, ``(B,)`` for ``reduction="none"``.
    """
    from ..render.mesh import face_normals

    check_shape("verts", verts, (None, None, 3), "(B, N, 3)")
    check_shape("faces", faces, (None, 3), "(F, 3)")
    pairs = (face_adjacency(faces) if face_pairs is None else face_pairs).to(verts.device)
    n = face_normals(verts, faces.to(verts.device))
    cos = (n[:, pairs[:, 0]] * n[:, pairs[:, 1]]).sum(-1)
    return reduce_per_image(F.relu(-cos).mean(1), reduction)


def latent_loss(z: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``mean(z^2 / 2)`` over the latent dimensions of each code ``z`` ``(B, D)``: the negative log-density
    of ``N(0, I)`` up to a constant (per dimension). ``(B,)`` for ``reduction="none"``."""
    check_shape("z", z, (None, None), "(B, D) latent codes")
    check_finite("z", z)
    return reduce_per_image((z * z / 2).mean(1), reduction)
