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
from gradmath.activations import register_activation as register_activation
from gradmath.activations import unregister_activation as unregister_activation
from gradmath.conditions import Conditions as Conditions

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
from gradmath.network import BatchNorm as BatchNorm
from gradmath.network import Dense as Dense
from gradmath.network import Elementwise as Elementwise
from gradmath.network import LayerNorm as LayerNorm
from gradmath.network import Network as Network
from gradmath.network import Residual as Residual
from gradmath.network import Serial as Serial
from gradmath.network import repeat as repeat
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
    "BatchNorm",
    "Conditions",
    "Dense",
    "Diagnosis",
    "Elementwise",
    "GradmathError",
    "Initializer",
    "LayerNorm",
    "Network",
    "Profile",
    "Residual",
    "Serial",
    "activation",
    "activations",
    "register_activation",
    "unregister_activation",
    "calculate_gain",
    "diagnose",
    "initializer",
    "initializers",
    "repeat",
    *_LAZY_MODULES,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"gradmath.{name}")
    raise AttributeError(f"module 'gradmath' has no attribute {name!r}")
