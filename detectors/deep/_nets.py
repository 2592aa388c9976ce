"""Small network builders shared by the deep detectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["latent_size", "mlp"]


def latent_size(latent_dim: int, d: int) -> int:
    """Bottleneck width: ``latent_dim`` but at most half the input (else it learns identity)."""
    return max(1, min(int(latent_dim), d // 2 if d > 1 else 1))


def mlp(sizes: Sequence[int], *, last_activation: bool = False) -> Any:
    """Linear layers of the given sizes with ReLU between (and after, if asked)."""
    from torch import nn

    layers: list[Any] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
