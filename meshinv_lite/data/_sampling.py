"""What the procedural categories share when they draw per-instance parameters: checked class ids and seeded draws."""
from __future__ import annotations

from typing import Callable

import torch


def class_draws(class_ids, num_types: int, generator: torch.Generator
                ) -> tuple[torch.Tensor, Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """``(class_ids (B,) long, normal(*shape), uniform(*shape))``: the ids checked against ``[0, num_types)`` and two
    float64 samplers drawing from ``generator`` (so a dataset's draws depend on the seed alone)."""
    class_ids = torch.as_tensor(class_ids, dtype=torch.long).reshape(-1)
    if class_ids.numel() and (class_ids.min() < 0 or class_ids.max() >= num_types):
        raise ValueError(f"class ids must lie in [0, {num_types}), got {class_ids.tolist()}")

    def normal(*shape) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    def uniform(*shape) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    return class_ids, normal, uniform
