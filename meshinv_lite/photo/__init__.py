"""Stage 7 (notebook 07): your own photo in, a textured mesh out.

* :mod:`.load`: read an image and its silhouette (mask file or alpha), check them, frame them like SynthBirds;
* :mod:`.viewpoint`: camera and species hypotheses for a photo without either;
* :mod:`.reconstruct`: the whole method on one photo, and the files it writes.
"""
from .load import DEFAULT_FILL, FULL_MASK, MAX_SIDE, Crop, Photo, PhotoError, check_mask, crop_to_square, load_photo
from .reconstruct import PhotoReconstruction, reconstruct_photo, write_outputs
from .viewpoint import SCORING_CHAMFER_WEIGHT, ViewHypotheses, ViewSearchConfig, fit_box, search_views
