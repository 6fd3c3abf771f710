"""Stage 7 (notebook 07): your own photo in, a textured mesh out.

* :mod:`.load`: read an image and its silhouette (mask file or alpha), check them, frame them like SynthBirds;
* :mod:`.segment`: a mask estimated by the shipped segmenter for a photo without one;
* :mod:`.viewpoint`: camera and species hypotheses for a photo without either (the prior's grid search, or
  the shipped encoder's one forward pass);
* :mod:`.reconstruct`: the whole method on one photo, and the files it writes.
"""
from .load import DEFAULT_FILL, FULL_MASK, MAX_SIDE, Crop, Photo, PhotoError, check_mask, crop_to_square, load_photo
from .reconstruct import PhotoReconstruction, default_hypotheses, reconstruct_photo, write_outputs
from .segment import MaskEstimate, estimate_mask
from .viewpoint import SCORING_CHAMFER_WEIGHT, ViewHypotheses, ViewSearchConfig, encoder_hypotheses, fit_box, search_views
