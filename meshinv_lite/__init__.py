"""meshinv-lite: single-view textured mesh reconstruction by GAN inversion, as a tutorial package.

Data flow, one module per step: ``data`` -> ``pseudo_gt`` -> ``pretrain`` -> ``invert`` -> ``metrics``,
built on ``mesh`` (template and UV maps), ``camera`` (weak perspective) and ``render`` (DIB-R).
"""
from ._allocator import tune_glibc_malloc as _tune_glibc_malloc
from .config import PROFILES, Profile, RenderConfig, TemplateConfig, get_profile

__version__ = "0.1.0"

_tune_glibc_malloc()  # see meshinv_lite/_allocator.py; MESHINV_NO_MALLOC_TUNING=1 disables

from . import inception as _inception  # noqa: E402,F401  registers "inception_v3_fid" with meshinv_lite.features
from . import domain_features as _domain  # noqa: E402,F401  registers "auto", "synthbirds_features", "synthbirds_eval"

__all__ = ["PROFILES", "Profile", "RenderConfig", "TemplateConfig", "get_profile", "__version__"]
