"""Per-site second moments, predicted or measured, carried as natural logarithms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.conditions import Conditions
from gradmath.errors import GradmathError
from gradmath.network import Network, Site

__all__ = ["Profile", "as_network"]

FloatArray = NDArray[np.float64]
QUANTITIES = ("q", "grad_q", "wgrad_q")


def as_network(net: object) -> Network:
    """The :class:`~gradmath.network.Network` of a Network or an :class:`~gradmath.MLP`."""
    if isinstance(net, Network):
        return net
    network = getattr(net, "network", None)
    if isinstance(network, Network):
        return network
    raise GradmathError(
        f"Expected a gradmath.network.Network or a gradmath.MLP, got {type(net).__name__}."
    )


def _exp(name: str, log_values: FloatArray) -> FloatArray:
    # Depth-10,000 nets leave float range; say so instead of returning inf or 0.
    if np.any(log_values > 709.0) or np.any(log_values < -745.0):
        raise GradmathError(
            f"`{name}` leaves the float64 range (log from {np.nanmin(log_values):.4g} to "
            f"{np.nanmax(log_values):.4g}); use `log_{name}` instead."
        )
    return np.exp(log_values)


@dataclass(frozen=True, eq=False)
class Profile:
    """Site-by-site second moments of one network: row i is ``sites[i]`` (dense1, …).

    All moments are stored as natural logs so that depth 10,000 neither overflows nor
    underflows (design.md, "Shared vocabulary"):

    - ``log_q``: log E[y_i²] of the site's output y (a Dense site: its pre-activation
      h = W x + b; a residual site: the stream after the addition);
    - ``log_grad_q``: log E[(∂L/∂y_i)²], the backward second moment q̃;
    - ``log_wgrad_q``: log E[(∂ℓ_b/∂W_ij)²] = log q̃ + log E[x_j²] (Schoenholz et al. 2017, §4)
      for sites with weights; NaN for the others.

    −∞ stands for an exact zero (e.g. the branch gradients of a ReZero block, α = 0). A
    simulated profile also has ``*_se`` (standard errors of the logs across sampled networks)
    and ``ess`` (effective number of networks per quantity and site).

    The spread across initialisations, arrays of shape (3, sites) in the rows q, q̃, weight
    gradient: with Q_k network k's own empirical moment at a site (its average over the batch
    and the units, e.g. (1/(Bn)) Σ_{b,i} h_{bi}²), ``mean_log`` and ``sd_log`` are the mean and
    the standard deviation across networks of log Q_k (the typical network, and how far one
    initialisation lands from the next; log because Q_k is close to log-normal, Hanin & Nica
    2019), ``sd_log_se`` the standard error of log(sd_log) and ``n_log`` the number of networks
    they rest on (those with Q_k > 0; ``numeric.simulate``). A
    theory profile with width corrections (``meanfield.predict(net, width_corrections=True)``)
    predicts ``mean_log`` and ``sd_log`` for batch 1 (one example per network), NaN where it
    predicts nothing. ``conditions`` says what a profile was made under; ``source`` where it
    came from ("theory", "simulation", …).
    """

    network: Network
    log_q: FloatArray
    log_grad_q: FloatArray
    log_wgrad_q: FloatArray
    log_q_se: FloatArray | None = None
    log_grad_q_se: FloatArray | None = None
    log_wgrad_q_se: FloatArray | None = None
    source: str = "theory"
    conditions: Conditions = field(default_factory=Conditions)
    sites: tuple[Site, ...] = ()
    ess: FloatArray | None = None
    mean_log: FloatArray | None = None
    sd_log: FloatArray | None = None
    reference: str = ""
    sd_log_se: FloatArray | None = None
    n_log: FloatArray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "network", as_network(self.network))
        if not self.sites:
            object.__setattr__(self, "sites", self.network.sites)
        n = len(self.sites)
        weights = np.array([s.has_weights for s in self.sites])
        for name in ("log_q", "log_grad_q", "log_wgrad_q", *(f"log_{q}_se" for q in QUANTITIES)):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.array(value, dtype=np.float64)
            if arr.shape != (n,):
                raise GradmathError(f"`{name}` has shape {arr.shape}; this network needs ({n},).")
            rows = weights if name.startswith("log_wgrad_q") else np.ones(n, dtype=bool)
            arr = np.where(rows, arr, np.nan)
            if name.endswith("_se"):
                bad = rows & ~(np.isfinite(arr) & (arr >= 0))
                allowed = "finite and >= 0"
            else:
                bad = rows & (np.isnan(arr) | (arr == np.inf))
                allowed = "finite or −inf (an exact zero)"
            if np.any(bad):
                i = int(np.flatnonzero(bad)[0])
                raise GradmathError(
                    f"`{name}` is {arr[i]!r} at site {self.sites[i].name}; it must be {allowed}."
                )
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        for name in ("ess", "mean_log", "sd_log", "sd_log_se", "n_log"):
            value = getattr(self, name)
            if value is not None:
                arr = np.array(value, dtype=np.float64)
                if arr.shape != (3, n):
                    raise GradmathError(f"`{name}` has shape {arr.shape}; it needs (3, {n}).")
                arr.flags.writeable = False
                object.__setattr__(self, name, arr)
        if not isinstance(self.conditions, Conditions):
            raise GradmathError("`conditions` must be a gradmath.Conditions.")

    # ------------------------------------------------------------------ views
    @property
    def depth(self) -> int:
        """The number of rows (sites)."""
        return len(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sites)

    def select(self, kind: str) -> Profile:
        """The rows of one kind of site (``"dense"``, ``"residual"``, ``"batchnorm"``, …), or
        ``"stream"``: the main path after every block (``Network.stream``; for an MLP the
        h^l of its docstring: the Dense output, the residual stream or the normalised h).

        >>> from gradmath import MLP
        >>> from gradmath.meanfield import predict
        >>> p = predict(MLP.square(8, 3, residual=0.5))
        >>> p.names, p.select("residual").names
        (('dense1', 'dense2', 'residual1', 'dense3', 'residual2'), ('residual1', 'residual2'))
        """
        if kind == "stream":
            idx = list(self.network.stream)
        else:
            idx = [i for i, s in enumerate(self.sites) if s.kind == kind]
        if not idx:
            kinds = sorted({s.kind for s in self.sites})
            raise GradmathError(f"No {kind!r} site in this profile; it has {kinds}.")
        return self._rows(np.array(idx))

    def _rows(self, idx: NDArray[np.intp]) -> Profile:
        def pick(a: FloatArray | None, two_d: bool = False) -> Any:
            if a is None:
                return None
            return a[:, idx] if two_d else a[idx]

        return replace(
            self,
            sites=tuple(self.sites[i] for i in idx),
            log_q=pick(self.log_q),
            log_grad_q=pick(self.log_grad_q),
            log_wgrad_q=pick(self.log_wgrad_q),
            log_q_se=pick(self.log_q_se),
            log_grad_q_se=pick(self.log_grad_q_se),
            log_wgrad_q_se=pick(self.log_wgrad_q_se),
            ess=pick(self.ess, True),
            mean_log=pick(self.mean_log, True),
            sd_log=pick(self.sd_log, True),
            sd_log_se=pick(self.sd_log_se, True),
            n_log=pick(self.n_log, True),
        )

    @property
    def q(self) -> FloatArray:
        """E[y_i²] per site (raises if it leaves float range: use ``log_q``)."""
        return _exp("q", self.log_q)

    @property
    def grad_q(self) -> FloatArray:
        """E[(∂L/∂y_i)²] per site."""
        return _exp("grad_q", self.log_grad_q)

    @property
    def wgrad_q(self) -> FloatArray:
        """E[(∂ℓ_b/∂W_ij)²] per site (NaN for sites without weights)."""
        return _exp("wgrad_q", self.log_wgrad_q)

    @property
    def log_wgrad_norm2(self) -> FloatArray:
        """log E‖∂ℓ/∂W‖_F² = log(fan_out · fan_in · E[(∂ℓ/∂W_ij)²]) per Dense site (NaN else)."""
        fo = np.array([s.width for s in self.sites], dtype=np.float64)
        fi = np.array([s.fan_in or np.nan for s in self.sites], dtype=np.float64)
        return self.log_wgrad_q + np.log(fo) + np.log(fi)

    @property
    def log_first_last_ratio(self) -> float:
        """log of ‖∇W^1‖/‖∇W^L‖ (first and last weight layer; ½ log of the squared ratio).

        Below 0: the first layer's gradient is smaller (vanishing); above: exploding.
        """
        n2 = self.log_wgrad_norm2
        w = np.flatnonzero(np.isfinite(n2))
        if w.size == 0:
            raise GradmathError("This profile has no weight layer with a nonzero gradient.")
        return float(0.5 * (n2[w[0]] - n2[w[-1]]))

    @property
    def first_last_ratio(self) -> float:
        """‖∇W^1‖/‖∇W^L‖ (raises if it leaves float range: use ``log_first_last_ratio``)."""
        r = self.log_first_last_ratio
        if not -745.0 < r < 709.0:
            raise GradmathError(f"The ratio is e^{r:.6g}; use `log_first_last_ratio`.")
        return math.exp(r)

    def quantity(self, name: str, suffix: str = "") -> FloatArray | None:
        """``log_{name}{suffix}`` by name (``"q"``, ``"grad_q"``, ``"wgrad_q"``; ``"_se"``)."""
        if name not in QUANTITIES:
            raise GradmathError(f"`quantity` (={name!r}) must be one of {QUANTITIES}.")
        value: Any = getattr(self, f"log_{name}{suffix}")
        return value
