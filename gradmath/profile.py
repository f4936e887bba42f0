"""Per-layer second moments, predicted or measured, carried as natural logarithms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError
from gradmath.mlp import MLP

__all__ = ["Profile"]

FloatArray = NDArray[np.float64]


def _exp(name: str, log_values: FloatArray) -> FloatArray:
    # Depth-10,000 nets leave float range; say so instead of returning inf or 0.
    if np.any(log_values > 709.0) or np.any(log_values < -745.0):
        raise GradmathError(
            f"`{name}` leaves the float64 range (log from {log_values.min():.4g} to "
            f"{log_values.max():.4g}); use `log_{name}` instead."
        )
    return np.exp(log_values)


@dataclass(frozen=True, eq=False)
class Profile:
    """Layer-by-layer second moments of one MLP: index i = 0 … L−1 is layer l = i + 1.

    All moments are stored as natural logs so that depth 10,000 neither overflows nor
    underflows (design.md, "Shared vocabulary"):

    - ``log_q``: log E[(h^l_i)²], the forward pre-activation second moment;
    - ``log_grad_q``: log E[(∂L/∂h^l_i)²], the backward second moment q̃^l;
    - ``log_wgrad_q``: log E[(∂L/∂W^l_ij)²] = log q̃^l + log E[(x^{l−1}_j)²]
      (Schoenholz et al. 2017, §4).

    A simulated profile also has ``*_se``: standard errors of the logs across sampled nets.
    ``source`` says where it came from ("theory", "simulation", …).
    """

    mlp: MLP
    log_q: FloatArray
    log_grad_q: FloatArray
    log_wgrad_q: FloatArray
    log_q_se: FloatArray | None = None
    log_grad_q_se: FloatArray | None = None
    log_wgrad_q_se: FloatArray | None = None
    source: str = "theory"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        L = self.mlp.depth
        for name in (
            "log_q",
            "log_grad_q",
            "log_wgrad_q",
            "log_q_se",
            "log_grad_q_se",
            "log_wgrad_q_se",
        ):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (L,):
                raise GradmathError(f"`{name}` has shape {arr.shape}; this net needs ({L},).")
            if not np.all(np.isfinite(arr)):
                bad = int(np.flatnonzero(~np.isfinite(arr))[0]) + 1
                raise GradmathError(f"`{name}` is not finite at layer {bad}.")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    @property
    def depth(self) -> int:
        return self.mlp.depth

    @property
    def q(self) -> FloatArray:
        """E[(h^l_i)²] per layer (raises if it leaves float range: use ``log_q``)."""
        return _exp("q", self.log_q)

    @property
    def grad_q(self) -> FloatArray:
        """E[(∂L/∂h^l_i)²] per layer."""
        return _exp("grad_q", self.log_grad_q)

    @property
    def wgrad_q(self) -> FloatArray:
        """E[(∂L/∂W^l_ij)²] per layer."""
        return _exp("wgrad_q", self.log_wgrad_q)

    @property
    def log_wgrad_norm2(self) -> FloatArray:
        """log E‖∂L/∂W^l‖_F² = log(n_l · n_{l−1} · E[(∂L/∂W^l_ij)²])."""
        w = np.asarray(self.mlp.widths, dtype=np.float64)
        return self.log_wgrad_q + np.log(w[1:]) + np.log(w[:-1])

    @property
    def log_first_last_ratio(self) -> float:
        """log of ‖∇W^1‖/‖∇W^L‖ from the expected squared Frobenius norms (½ log of their ratio).

        Below 0: the first layer's gradient is smaller (vanishing); above: exploding.
        """
        n2 = self.log_wgrad_norm2
        return float(0.5 * (n2[0] - n2[-1]))

    @property
    def first_last_ratio(self) -> float:
        """‖∇W^1‖/‖∇W^L‖ (raises if it leaves float range: use ``log_first_last_ratio``)."""
        r = self.log_first_last_ratio
        if not -745.0 < r < 709.0:
            raise GradmathError(f"The ratio is e^{r:.6g}; use `log_first_last_ratio`.")
        return math.exp(r)
