"""gradmath: explain, predict and check vanishing and exploding gradients in deep networks.

Three engines answer one question at three levels of rigour (design.md):
``gradmath.symbolic`` (exact SymPy derivations), ``gradmath.meanfield`` (infinite-width
theory) and ``gradmath.numeric`` (sampled networks with Monte-Carlo errors);
``gradmath.validate`` compares the last two and ``gradmath.render`` publishes all of them.
The engines load on first use so that ``import gradmath`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from gradmath.activations import Activation as Activation
from gradmath.activations import activation as activation
from gradmath.activations import activations as activations

# Imported eagerly on purpose: `gradmath.diagnose` is both a submodule and the function of that
# name, and importing the submodule (e.g. `from gradmath.diagnose import Diagnosis`) would bind
# the attribute to the module if the function were lazy. The module needs only NumPy (~1 ms).
from gradmath.diagnose import Diagnosis as Diagnosis
from gradmath.diagnose import diagnose as diagnose
from gradmath.errors import GradmathError as GradmathError
from gradmath.initializers import Initializer as Initializer
from gradmath.initializers import calculate_gain as calculate_gain
from gradmath.initializers import initializer as initializer
from gradmath.initializers import initializers as initializers
from gradmath.mlp import MLP as MLP
from gradmath.mlp import Layer as Layer
from gradmath.profile import Profile as Profile

__version__ = "0.1.0"

_LAZY_MODULES = (
    "symbolic",
    "meanfield",
    "numeric",
    "validate",
    "render",
    "clipping",
    "sweep",
    "threads",
)

__all__ = [
    "MLP",
    "Activation",
    "Diagnosis",
    "GradmathError",
    "Initializer",
    "Layer",
    "Profile",
    "activation",
    "activations",
    "calculate_gain",
    "diagnose",
    "initializer",
    "initializers",
    *_LAZY_MODULES,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"gradmath.{name}")
    raise AttributeError(f"module 'gradmath' has no attribute {name!r}")
