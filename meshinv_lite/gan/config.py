"""How the GAN prior is pretrained: :class:`PretrainConfig` (sizes, losses, learning rates, schedule) per profile."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..config import RenderConfig, get_profile
from .networks import DiscriminatorConfig, GeneratorConfig


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pretraining run (with the data)."""

    profile: str = "lite"
    num_classes: int = 12
    iterations: int = 1500
    batch_size: int = 16
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.99)
    d_steps: int = 2
    lambda_uv: float = 1.0
    lambda_image: float = 0.2
    image_discriminator: bool = True
    uv_loss: str = "lsgan"  # "lsgan" (the paper's equations) or "hinge" (the authors' code)
    w_smooth: float = 1e-4
    w_crease: float = 0.0  # weight of losses.crease_loss on generated meshes (folds only)
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    seed: int = 0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    @classmethod
    def for_profile(cls, name: str, num_classes: int = 12, **overrides) -> "PretrainConfig":
        prof = get_profile(name)
        schedule = {
            "quick": dict(iterations=40, batch_size=8, d_steps=1, ema_decay=0.9, checkpoint_every=20),
            # lite: 600 iterations (0.28 s each on 2 idle cores): the mechanics, not a prior (the shipped one is that)
            "lite": dict(iterations=600, batch_size=8, d_steps=1, ema_decay=0.995, checkpoint_every=100),
            "paper": dict(iterations=60000, batch_size=32, ema_decay=0.999, checkpoint_every=1000),
        }[prof.name]
        base = cls(profile=prof.name, num_classes=num_classes,
                   generator=GeneratorConfig.for_profile(prof.name, num_classes=num_classes),
                   discriminator=DiscriminatorConfig.for_profile(prof.name, num_classes=num_classes), **schedule)
        return replace(base, **overrides)

    @property
    def render(self) -> RenderConfig:
        return get_profile(self.profile).render

    def to_dict(self) -> dict:
        return asdict(self)
