"""Factories for the `gradmath inspect` tests (imported by the CLI as tests.torch...)."""

from __future__ import annotations

import warnings

import torch
from torch import nn


def sigmoid_mlp() -> nn.Module:
    layers: list[nn.Module] = []
    for i in range(8):
        layers.append(nn.Linear(64, 64))
        if i < 7:
            layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def one_layer() -> nn.Module:
    return nn.Linear(32, 10)


def not_a_model() -> int:
    return 3


def broken() -> nn.Module:
    raise RuntimeError("no GPU here")


def scripted() -> nn.Module:
    """A TorchScript module: it runs, but no Python hook or function mode sees inside it."""
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; models still use it
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8)))


class _Picky(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] == 8, "expects 8 features"
        return self.lin(x)


def picky() -> nn.Module:
    """Refuses a wrong input with an AssertionError (not a RuntimeError)."""
    return _Picky()


class _NoTensor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> str:
        return f"{self.lin(x).sum().item():.3f}"


def no_tensor() -> nn.Module:
    """Returns text: nothing to backpropagate through."""
    return _NoTensor()
