"""How pseudo ground truth is made and where it lives: :class:`PseudoGTConfig` per profile, the training-image
limit, the output folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .backproject import BackProjectionConfig
from .silhouette_fit import SilhouetteFitConfig


@dataclass(frozen=True)
class PseudoGTConfig:
    """How a split's pseudo ground truth is made.

    ``shape_prior``: ``"species_mean"`` (default) fits each image from its species' mean shape and anchors
    its depth there (``fit.w_l2`` then pulls towards the mean, ``fit.w_anchor_depth`` holds the depth);
    ``"sphere"`` fits every image from the sphere alone. ``mean_views``: training images per class the
    mean shape is fitted to; ``mean_fit``: that fit's settings.
    """

    camera: str = "noisy"  # which annotation camera to fit with: "noisy" (realistic) or "exact"
    texture_size: int = 128
    batch_size: int = 16
    fit: SilhouetteFitConfig = field(default_factory=SilhouetteFitConfig)
    back_projection: BackProjectionConfig = field(default_factory=BackProjectionConfig)
    shape_prior: str = "species_mean"
    mean_views: int = 12
    mean_fit: SilhouetteFitConfig = field(default_factory=lambda: SilhouetteFitConfig(steps=150, lr=0.015, mask_points=256))

    def __post_init__(self) -> None:
        if self.shape_prior not in ("species_mean", "sphere"):
            raise ValueError(f"shape_prior must be 'species_mean' or 'sphere', got {self.shape_prior!r}")
        if self.mean_views < 1:
            raise ValueError(f"mean_views must be >= 1, got {self.mean_views}")

    @classmethod
    def for_profile(cls, name: str, fit_recipe: str = "fast", category: str = "birds",
                    refine_cameras: Optional[bool] = None, **overrides) -> "PseudoGTConfig":
        """Sizes and step counts for ``quick`` / ``lite`` / ``paper``.

        ``fit_recipe`` (quick and lite; paper has one recipe): ``"fast"`` (default) or ``"full"``, the earlier
        recipe, which the shipped prior's pseudo-GT was made with (:meth:`meshinv_lite.gan.PriorRecipe.pseudo_gt_config`).

        * lite, fast: the fits' silhouettes are rendered at 64 px instead of the masks' 128, and each image is fitted
          in 50 steps to 256 mask points instead of 80 to 512. Measured on the 200 lite test images (noisy cameras,
          1 thread): 3.4x faster per image (0.75 -> 0.22 s), 3D Chamfer to the true shapes 0.0671 -> 0.0676,
          silhouette IoU (at 128 px) 0.960 -> 0.955, texture error on visible texels 0.1037 -> 0.1034. The species
          means at 64 px: 2.2x faster, the pseudo-GT made from them as good (Chamfer 0.0664 vs 0.0675).
        * quick, fast: 40 steps to 256 points instead of 60 to 512 (its masks are 64 px already). On 160 quick test
          images: IoU 0.965 / 0.963, 3D Chamfer 0.0692 / 0.0686, texture error 0.1001 / 0.1007, 2.2x faster.

        ``refine_cameras``: correct the annotated (noisy) cameras while fitting, both the species means' (each view
        of the mean fit gets its own small correction, held near zero: a bundle adjustment) and each image's (the
        first 30 % of its steps move only the camera, aligning the mean to the mask before the shape bends).
        Without it, every degree of camera error has to be absorbed by the shape. ``None`` (default): the category's
        choice (:attr:`~meshinv_lite.data.category.Category.refine_cameras`: on for cars, off for birds). Measured on
        96 (cars) and 144 (birds) lite training images, the last 12 per class of the first 1,000, against the true
        maps (noisy cameras, the "full" recipe; ``bench/pseudo_gt_cameras.py``):

        ============================  ======================  ======================
        figure                        SynthCars off -> on     SynthBirds off -> on
        ============================  ======================  ======================
        3D Chamfer of species means   0.0748 -> 0.0654        0.0684 -> 0.0568
        3D Chamfer of pseudo-GT       0.0813 -> 0.0654        0.0664 -> 0.0585
        silhouette IoU (means)        0.875 -> 0.960          0.841 -> 0.935
        pseudo-GT silhouette IoU      0.955 -> 0.956          0.960 -> 0.962
        texture error, seen texels    0.176 -> 0.179          0.100 -> 0.099
        ============================  ======================  ======================

        With exact cameras the cars' means reach 0.0717 and their pseudo-GT 0.0702: the corrections also take up
        what differs between the images of one class (size, proportions), which no single mean shape can. The
        corrected cameras are not much nearer the true ones (cars: 5.1 -> 4.4 degrees of rotation error; birds 5.1
        -> 7.8, the corrections absorbing shape differences instead): what improves is the shape. Birds keep it off (their
        notebooks' figures were measured without it). Better pseudo-GT alone did not make a better car prior at the first
        recipe's 4,000 GAN iterations; with 8,000 and crease weight 4 it did (:data:`~meshinv_lite.gan.SHIPPED_CARS`).
        """
        from dataclasses import replace

        from ..config import get_profile

        if fit_recipe not in ("fast", "full"):
            raise ValueError(f"fit_recipe must be 'fast' or 'full', got {fit_recipe!r}")
        prof = get_profile(name)
        fast = fit_recipe == "fast" and prof.name in ("quick", "lite")
        steps = {"quick": 40 if fast else 60, "lite": 50 if fast else 80}.get(prof.name, 150)
        points = 256 if fast else 512
        render_size = 64 if fast and prof.name == "lite" else None  # quick's masks are 64 px already
        shape_prior = overrides.get("shape_prior", "species_mean")
        # anchored to the species mean: stay near its depth (the weights measured in the module docstring)
        anchor = dict(w_l2=0.1, w_anchor_depth=10.0) if shape_prior == "species_mean" else {}
        if refine_cameras is None:
            from ..data.category import get_category

            refine_cameras = get_category(category).refine_cameras
        fit_cam = dict(lr_camera=0.01, camera_only_fraction=0.3) if refine_cameras else {}
        mean_cam = dict(lr_camera=0.01, w_camera=1.0) if refine_cameras else {}
        base = cls(texture_size=min(prof.texture_size, 256),
                   fit=SilhouetteFitConfig(steps=steps, deform_size=prof.deform_size, lr=0.015, mask_points=points,
                                           render_size=render_size, **anchor, **fit_cam),
                   mean_fit=SilhouetteFitConfig(steps={"quick": 60}.get(prof.name, 150), deform_size=prof.deform_size,
                                                lr=0.015, mask_points=256, render_size=render_size, **mean_cam))
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "fit": self.fit.to_dict(), "mean_fit": self.mean_fit.to_dict()}


#: Training images that get pseudo ground truth (and so train the GAN), per profile; absent: the whole split.
TRAIN_IMAGES = {"lite": 1000}


def train_image_limit(profile: str) -> Optional[int]:
    """How many training images a profile fits pseudo ground truth for (``None``: all of them)."""
    from ..config import get_profile

    return TRAIN_IMAGES.get(get_profile(profile).name)


def pseudo_gt_dir(dataset_root, split: str, camera: str = "noisy"):
    """``<dataset_root>/pseudo_gt_<camera>/<split>``."""

    return Path(dataset_root) / f"pseudo_gt_{camera}" / split


def read_json_roundtrip(obj):
    """``obj`` as it reads back from JSON (tuples become lists), for comparing saved settings."""
    import json

    from ..io import _jsonable

    return json.loads(json.dumps(_jsonable(obj)))
