"""The adversarial losses of pretraining (paper Eqs. 1-3): least squares (LSGAN) or hinge, for D and for G."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _lsgan(pred: torch.Tensor, target: float) -> torch.Tensor:
    return (pred - target).pow(2).mean()


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """``lsgan``: ``(D(x) - 1)^2 + D(G(z))^2``; ``hinge``: ``relu(1 - D(x)) + relu(1 + D(G(z)))`` (means)."""
    if kind == "lsgan":
        return _lsgan(real, 1.0) + _lsgan(fake, 0.0)
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use 'lsgan' or 'hinge'")


def generator_loss(fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """``lsgan``: ``(D(G(z)) - 1)^2``; ``hinge``: ``-D(G(z))``."""
    if kind == "lsgan":
        return _lsgan(fake, 1.0)
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use 'lsgan' or 'hinge'")
