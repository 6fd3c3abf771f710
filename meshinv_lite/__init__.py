"""meshinv-lite: single-view textured mesh reconstruction by GAN inversion, as a tutorial package.

One subpackage per stage of the pipeline, in the order the notebooks teach them::

    render/      00  the UV-sphere mesh, weak-perspective cameras, the DIB-R renderer
    data/        01  SynthBirds (procedural birds with 3D ground truth), the on-disk format, CUB
    pseudo_gt/   02  per-image silhouette fit + back-projected texture
    gan/         03  the generator and discriminators, pretraining, the shipped prior
    inversion/   04  MeshInversion: search the latent space; 05 texture transfer; 08 the adaptation
                 phase beyond the prior
    evaluation/  06  IoU, FID_k (or its labelled fallback), ground-truth 3D and novel-view metrics
    photo/       07  your own photo: read it, find the camera and species, reconstruct

beside the pieces several stages share: ``losses/`` (Chamfer texture and mask losses, regularisers, the
paper's baselines), ``features/`` (frozen CNN feature extractors), ``viz/`` (figures, the live loss panel,
the 3D viewer), and small modules (``config``, ``metrics``, ``io``, ``paths``, ``export``, ...). The entry
points are ``python -m meshinv_lite.pipeline`` (all notebooks) and ``python -m meshinv_lite.cli``.

Importing the package does nothing but hand these names on.
"""
from .config import PROFILES, Profile, RenderConfig, TemplateConfig, get_profile

__version__ = "0.1.0"

__all__ = ["PROFILES", "Profile", "RenderConfig", "TemplateConfig", "get_profile", "__version__"]
