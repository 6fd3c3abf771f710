"""meshinv-lite: single-view textured mesh reconstruction by GAN inversion, as a tutorial package.

Data flow, one module per step: ``data`` -> ``pseudo_gt`` -> ``pretrain`` -> ``invert`` -> ``metrics``,
built on ``mesh`` (template and UV maps), ``camera`` (weak perspective) and ``render`` (DIB-R).
"""
from .config import PROFILES, Profile, RenderConfig, TemplateConfig, get_profile

__version__ = "0.1.0"

__all__ = ["PROFILES", "Profile", "RenderConfig", "TemplateConfig", "get_profile", "__version__"]
