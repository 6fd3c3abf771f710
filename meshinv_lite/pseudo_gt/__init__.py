"""Stage 2 (notebook 02): pseudo ground truth from single views.

* :mod:`.silhouette_fit`: fit a deformation map to a silhouette (the smallest differentiable-rendering loop);
* :mod:`.backproject`: carry an image's colours into UV space with what the camera saw, and mirror-fill;
* :mod:`.config`: :class:`PseudoGTConfig` per profile and where the results live;
* :mod:`.species_means`: the per-species mean shapes each fit starts from;
* :mod:`.fit`: both steps, per image, anchored on the species' mean shape;
* :mod:`.build`: a whole split, in resumable shards, on several processes;
* :mod:`.dataset`: :class:`PseudoGTDataset`, what pretraining reads;
* :mod:`.quality`: how close the pseudo ground truth is to the true maps (SynthBirds only).
"""
from .backproject import BackProjectionConfig, back_project, mirror_fill, uv_fragments
from .build import PSEUDO_GT_FORMAT, build_pseudo_gt
from .config import TRAIN_IMAGES, PseudoGTConfig, pseudo_gt_dir, read_json_roundtrip, train_image_limit
from .dataset import PseudoGTDataset
from .fit import PseudoGT, make_pseudo_gt
from .quality import evaluate_pseudo_gt, pseudo_gt_errors
from .silhouette_fit import SilhouetteFit, SilhouetteFitConfig, fit_deformation
from .species_means import fit_species_means, species_means, species_means_path
