"""Stage 6 (notebook 06): how good is a reconstruction? Evaluation over whole splits.

* :mod:`.ground_truth`: score one reconstruction against any ground truth (a mesh, or renders with cameras);
* :mod:`.realism`: realism and detail of rendered views, with the in-domain *evaluation* network;
* :mod:`.store`: per-image CSV rows and saved reconstructions (resumable evaluations);
* :mod:`.fid`: the multi-view protocol renders and FID_1/10/12 (or their labelled fallback);
* :mod:`.evaluate`: :func:`evaluate_split`, the driver that inverts, scores and summarizes a split;
* :mod:`.tables`: the markdown tables notebooks and the README print;
* :mod:`.views`: error around the circle (per-view PSNR of a split, near side against far side);
* :mod:`.probe`: a quick inversion probe of a prior on a few validation images;
* :mod:`.ablation`: paired ablations (losses, camera noise, splits) with bootstrap intervals.

The measures themselves (IoU, PSNR, SSIM, Frechet distance, 3D Chamfer, F-score) are :mod:`meshinv_lite.metrics`.
"""
from .ablation import (
    FD_METRICS,
    METRICS,
    OURS,
    VARIANTS,
    Variant,
    bootstrap_mean,
    cell_name,
    fd_paired,
    format_table,
    noisy_batch,
    paired,
    plot_summary,
    read_cell,
    run_cell,
    summarize,
    variant_config,
)
from .evaluate import GT_AZIMUTHS, SIGNATURE_NAME, evaluate_split, iou_occluder_ignored, realism_figures, summarize_rows
from .fid import WHITE, extract_features, fid_figures, fid_key, reference_images, render_protocol_views
from .ground_truth import (
    SURFACE_POINTS,
    GroundTruthMesh,
    aligned_camera,
    depth_offset,
    ground_truth_metrics,
    mesh_metrics,
    reconstruction_metrics,
    render_metrics,
    sample_surface,
    surface_centroid,
    texture_error_by_visibility,
)
from .probe import inversion_probe
from .realism import (
    FD_LABEL,
    INPUT_VIEW,
    fd_from_embeddings,
    fd_in_domain,
    perceptual_distance,
    realism_per_image,
    sharpness,
    sharpness_ratio,
    view_embeddings,
)
from .store import (
    CSV_NAME,
    PART_GLOB,
    PART_NAME,
    RECON_DIR,
    TEXT_COLUMNS,
    generator_fingerprint,
    load_reconstructions,
    read_rows,
    save_reconstructions,
    write_rows,
)
from .tables import GT_COLUMNS, PAPER_CUB, REALISM_COLUMNS, ground_truth_table, results_table
from .views import near_side, psnr_around
