"""Factories for the `gradmath inspect` tests (imported by the CLI as tests.torch...)."""

from __future__ import annotations

from torch import nn


def sigmoid_mlp() -> nn.Module:
    layers: list[nn.Module] = []
    for i in range(8):
        layers.append(nn.Linear(64, 64))
        if i < 7:
            layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def not_a_model() -> int:
    return 3


def broken() -> nn.Module:
    raise RuntimeError("no GPU here")
