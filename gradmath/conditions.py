"""The experimental conditions a profile was made under, so comparisons are like for like."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

from gradmath.errors import GradmathError, check_positive, check_positive_int

__all__ = ["Conditions"]

Loss = Literal["mse"] | None


@dataclass(frozen=True)
class Conditions:
    """What a profile assumed about its inputs, its loss and its batch.

    - ``input_q`` = E[(x^0_j)²]: inputs i.i.d. N(0, input_q);
    - ``output_grad_q`` = E[(∂L/∂y_i)²] at the output y, drawn independently of the forward
      pass (Schoenholz et al. 2017, §4); with ``loss="mse"`` the gradient of
      ℓ = ½ Σ_b ‖y_b − t_b‖² on targets t ~ N(0, output_grad_q), so δ = y − t;
    - ``batch``: the examples that pass through a network together, which is what batch
      statistics see (``None`` in theory: the large-batch limit);
    - ``n_networks``: independent networks sampled (``None`` for theory).

    >>> Conditions(batch=8).differences(Conditions(batch=None), batch_matters=True)
    ['batch: 8 vs None (the large-batch limit)']
    """

    input_q: float = 1.0
    output_grad_q: float = 1.0
    loss: Loss = None
    batch: int | None = None
    n_networks: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_q", check_positive("input_q", self.input_q))
        object.__setattr__(
            self, "output_grad_q", check_positive("output_grad_q", self.output_grad_q)
        )
        if self.loss not in (None, "mse"):
            raise GradmathError(f"`loss` (={self.loss!r}) must be None or 'mse'.")
        if self.batch is not None:
            object.__setattr__(self, "batch", check_positive_int("batch", self.batch))
        if self.n_networks is not None:
            object.__setattr__(
                self, "n_networks", check_positive_int("n_networks", self.n_networks, minimum=2)
            )

    def but(self, **changes: object) -> Conditions:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def differences(self, other: Conditions, *, batch_matters: bool) -> list[str]:
        """What differs between two profiles' conditions in a way that changes the answer.

        ``n_networks`` never matters (it sets the error bars, not the expectation); ``batch``
        only when the network uses batch statistics.
        """
        out = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "n_networks" or (f.name == "batch" and not batch_matters):
                continue
            if isinstance(a, float) and isinstance(b, float):
                if math.isclose(a, b, rel_tol=1e-12):
                    continue
            elif a == b:
                continue
            show = [_LIMIT if v is None and f.name == "batch" else repr(v) for v in (a, b)]
            out.append(f"{f.name}: {show[0]} vs {show[1]}")
        return out


_LIMIT = "None (the large-batch limit)"
