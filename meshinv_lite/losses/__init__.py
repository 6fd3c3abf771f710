"""Losses of the method (DESIGN.md section 4) and the baselines the paper compares them with.

* :mod:`.nearest`: nearest-neighbour search, the machinery under every Chamfer distance;
* :mod:`.chamfer`: the Chamfer texture loss (pixels, features; paper Eq. 5) and the Chamfer mask loss;
* :mod:`.silhouette`: silhouette comparisons of the pseudo-GT fit (soft IoU, 2D Chamfer);
* :mod:`.regularizers`: smoothness (normal consistency), crease and latent terms;
* :mod:`.baselines`: L1/L2, perceptual, contextual, and the L1/IoU mask losses of the paper's Table 3;
* :mod:`.registry`: losses by name (:func:`get_texture_loss`, :func:`get_mask_loss`) and their weights.
"""
from .baselines import contextual_loss, mask_iou_loss, mask_l1_loss, masked_pixel_loss, perceptual_loss
from .chamfer import NUM_POINTS, chamfer_feature_loss, chamfer_mask_loss, chamfer_texture_loss
from .nearest import (
    ALPHA,
    ARGMIN_GROUP,
    CHUNK_ROWS,
    DENSE_BUDGET,
    EPS_A,
    EPS_S,
    MASK_THRESHOLD,
    PRUNE_MARGIN,
    PRUNE_MAX_CHANNELS,
    PRUNE_MIN_PAIRS,
    PRUNE_TILES,
    SEARCH_THREADS,
    chamfer_on_maps,
    chamfer_point_sets,
    dense_argmins,
    foreground_points,
    nearest_2d,
)
from .registry import MASK_LOSSES, NEEDS_EXTRACTOR, TEXTURE_LOSSES, LossWeights, get_mask_loss, get_texture_loss
from .regularizers import crease_loss, latent_loss, normal_consistency, smoothness_loss
from .silhouette import chamfer_2d, mask_points, soft_iou
