"""What determines a SynthBirds dataset: :class:`SynthBirdsConfig` (with the seed), one home below the
shape, texture and rendering modules that all read it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from ..config import get_profile
from .species import SPECIES

_SPLIT_SIZES = {
    "quick": {"train": 48, "val": 16, "test": 16, "test_hard": 16},
    "lite": {"train": 2000, "val": 200, "test": 200, "test_hard": 200},
    "paper": {"train": 6000, "val": 500, "test": 1000, "test_hard": 500},
}

#: The held-out-species split: birds of :data:`~meshinv_lite.data.species.UNSEEN_SPECIES` only.
UNSEEN_SPLIT = "test_unseen"
#: Its images per profile. They are kept out of :attr:`SynthBirdsConfig.sizes` on purpose: every split's
#: signature holds the whole ``config.to_dict()``, so a new key in ``sizes`` would make each dataset built
#: before ``test_unseen`` existed look "built with other settings". A ``sizes`` that lists ``test_unseen``
#: overrides this table.
_UNSEEN_SIZES = {"quick": 6, "lite": 24, "paper": 200}


@dataclass(frozen=True)
class SynthBirdsConfig:
    """Everything that determines a SynthBirds dataset (with the seed).

    Attributes:
        profile: profile name the sizes come from.
        image_size: rendered image side, pixels.
        texture_size: ground-truth texture map side (``Ht = Wt``).
        deform_size: ground-truth deformation map side (``Hd = Wd``).
        sizes: images per split (``test_unseen``'s comes from the profile unless listed: see
            :meth:`split_size`).
        symmetric: left-right symmetric birds (shape and texture); ``False`` gives each side its own
            wing articulation and texture noise.
        elevation_range: camera elevations, degrees (azimuth covers the full circle).
        fill_range: fraction of the frame spanned by the bird's larger projected extent.
        max_offset: largest image-plane shift of the bird's box centre (normalized units); kept
            within the free margin so the bird is never cut by the frame.
        wing_open_range: wing articulation of ordinary splits (0 folded, 1 fully open);
        folded_fraction: share of ordinary birds with (nearly) folded wings.
        tail_scale_range: tail length factor of ordinary splits.
        hard_wing_open_range / hard_tail_scales: articulation extremes held out for ``test_hard``.
        hard_extreme_prob / hard_occlusion_prob: chance that a ``test_hard`` image has extreme
            articulation / an occluding twig (each image has at least one of the two).
        noise_rot_deg, noise_scale, noise_trans: "SfM" camera noise: rotation angle std (degrees),
            log-scale std, translation std (normalized units).
        chunk: images rendered per batch (and written per resumable chunk).
    """

    profile: str = "lite"
    image_size: int = 128
    texture_size: int = 128
    deform_size: int = 32
    sizes: dict = field(default_factory=lambda: dict(_SPLIT_SIZES["lite"]))
    symmetric: bool = True
    elevation_range: tuple[float, float] = (-10.0, 40.0)
    fill_range: tuple[float, float] = (0.72, 0.92)
    max_offset: float = 0.05
    wing_open_range: tuple[float, float] = (0.0, 0.75)
    folded_fraction: float = 0.55
    tail_scale_range: tuple[float, float] = (0.85, 1.15)
    hard_wing_open_range: tuple[float, float] = (0.88, 1.0)
    hard_tail_scales: tuple[tuple[float, float], tuple[float, float]] = ((0.45, 0.6), (1.4, 1.6))
    hard_extreme_prob: float = 0.6
    hard_occlusion_prob: float = 0.6
    noise_rot_deg: float = 6.0
    noise_scale: float = 0.04
    noise_trans: float = 0.03
    chunk: int = 32

    @classmethod
    def for_profile(cls, name: str = "lite", **overrides) -> "SynthBirdsConfig":
        """The configuration of a profile (``quick``, ``lite``, ``paper``) with optional overrides.

        Image and deformation sizes follow the profile; the paper profile stores 256 px texture maps
        (its 512 px GAN textures would make the ground truth 3 GB).
        """
        prof = get_profile(name)
        tex = min(prof.texture_size, 256)
        base = cls(
            profile=prof.name,
            image_size=prof.render_size,
            texture_size=tex,
            deform_size=prof.deform_size,
            sizes=dict(_SPLIT_SIZES[prof.name]),
        )
        return replace(base, **overrides) if overrides else base

    @property
    def num_classes(self) -> int:
        return len(SPECIES)

    @property
    def split_names(self) -> tuple[str, ...]:
        """Every split this configuration can build: those of ``sizes``, then ``test_unseen``."""
        return tuple(self.sizes) + (() if UNSEEN_SPLIT in self.sizes else (UNSEEN_SPLIT,))

    def split_size(self, split: str) -> int:
        """Images of ``split``: ``sizes[split]``, or for ``test_unseen`` (when ``sizes`` does not list it)
        the profile's default (quick 6, lite 24, paper 200)."""
        if split in self.sizes:
            return int(self.sizes[split])
        if split == UNSEEN_SPLIT:
            return _UNSEEN_SIZES[get_profile(self.profile).name]
        raise ValueError(f"unknown split {split!r}; SynthBirds has {list(self.split_names)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SynthBirdsConfig":
        """Inverse of :meth:`to_dict` (lists turned back into tuples, unknown keys rejected)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown SynthBirdsConfig keys {sorted(unknown)}")
        kw = {}
        for k, v in d.items():
            if isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kw[k] = v
        return cls(**kw)
