"""The encoder stage: a trained image encoder (latent, species, camera, texture flow) and a mask segmenter.

Between the prior (``gan/``) and inversion: it regresses what inversion searches for, so it is both the
regression baseline the paper compares against and a fast start for inversion and for photos.
"""
from .network import EncoderConfig, EncoderOutput, ImageEncoder, SegmentationNet, flow_targets, sample_flow, texel_points
from .shipped import EncoderError, load_shipped_encoder, save_encoder
from .training import EncoderRecipe, build_encoder

__all__ = ["EncoderConfig", "EncoderOutput", "ImageEncoder", "SegmentationNet", "flow_targets", "sample_flow",
           "texel_points", "EncoderError", "load_shipped_encoder", "save_encoder", "EncoderRecipe", "build_encoder"]
