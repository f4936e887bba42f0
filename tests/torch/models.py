"""Real PyTorch models built locally (no downloads) for the gradmath.torch tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def mlp(
    act: type[nn.Module], depth: int, width: int, *, bias: bool = True, n_in: int | None = None
) -> nn.Sequential:
    """depth nn.Linear layers of ``width`` with ``act`` between them (none after the last)."""
    layers: list[nn.Module] = []
    n = width if n_in is None else n_in
    for i in range(depth):
        layers.append(nn.Linear(n, width, bias=bias))
        if i < depth - 1:
            layers.append(act())
        n = width
    return nn.Sequential(*layers)


def linear_init(weight_init: Callable[[torch.Tensor], object]) -> Callable[[nn.Module], None]:
    """An ``init`` for probe: ``weight_init`` on every nn.Linear weight, biases zero."""

    def init(model: nn.Module) -> None:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                weight_init(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    return init


def glorot(w: torch.Tensor) -> None:
    nn.init.xavier_normal_(w)


def he(w: torch.Tensor) -> None:
    nn.init.kaiming_normal_(w, nonlinearity="relu")
