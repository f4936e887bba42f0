"""Read per-layer gradient norms (or a training record) and say vanishing, exploding or healthy.

The one number behind the verdict is the **backward log-slope** s: the least-squares slope
of log‖g_l‖ against the number of layers the backward pass has crossed, L − l, for layers
l = 1 … L (layer 1 next to the input). Going from the output towards the input the gradient
norm is multiplied by about e^s per layer, so

- s < 0: gradients shrink towards the input (vanishing);
- s > 0: they grow towards the input (exploding);
- in mean-field theory s = ½ log χ₁ (Schoenholz et al. 2017, §4: ‖∇W^1‖/‖∇W^L‖ ~
  χ₁^{(L−1)/2}); He-initialised ReLU has χ₁ = 1, s = 0.

The fitted ratio across the whole net is ``log_ratio = s·(L − 1)`` ≈ log(‖g_1‖/‖g_L‖). The
verdict compares it with ``±log(factor)`` (default factor 10): a net whose first layer gets a
gradient ten times smaller than its last has, with one learning rate for all layers, a first
layer that learns an order of magnitude slower — it is vanishing in the practical sense. In
per-layer terms the threshold is |s| > log(10)/(L − 1), so a deeper net is flagged at a smaller
per-layer rate, as it should: what hurts is the product over layers, not one factor. At
initialisation a healthy finite-width net fluctuates around s = 0 by a few times
√(Σ_l 1/n_l)/L (Hanin 2018; Hanin & Nica 2019), far inside the threshold for widths ≥ 16.

Other evidence:

- non-finite norms (NaN or ±inf) anywhere: verdict ``"exploding"``; inf is an exploded
  norm and NaN in a gradient arises from inf − inf or 0·inf downstream of one. ``str`` says
  where the first one appeared;
- a training record that diverged (its loss or a gradient became non-finite, or the loss
  blew up, :class:`gradmath.numeric.train.Divergence`): verdict ``"exploding"``, even when it
  died in the first epoch and left no per-layer norms to fit;
- growth over time (input of shape (steps, layers)): if the total norm grew by more than
  ``max_growth`` (default 1000) between the first and the largest later step, ``"exploding"``
  — healthy SGD keeps the gradient norm within a couple of orders of magnitude of its
  starting value, a divergent run multiplies it without bound;
- zero-gradient layers (norm exactly 0): ``"vanishing"`` (nothing reaches them);
- stalled layers, from a training record or ``weight_change``: layers whose relative weight
  change ‖W_T − W_0‖/‖W_0‖ is below ``stall_fraction`` (default 1%) of the largest layer's.
  This is evidence only (reported, not used in the verdict): it is the visible symptom of
  vanishing gradients in training (lower layers barely move while the top learns).

For input of shape (steps, layers) the depth profile fitted is the per-layer median of log‖g‖
over the steps where every layer is finite (robust to a few spiky steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.clipping import scaled_norm
from gradmath.errors import GradmathError, check_positive

__all__ = ["Diagnosis", "Verdict", "diagnose", "log_slope"]

FloatArray = NDArray[np.float64]
Verdict = Literal["vanishing", "exploding", "healthy"]


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The verdict on a set of per-layer gradient norms, with the numbers behind it.

    Attributes:
        verdict: ``"vanishing"``, ``"exploding"`` or ``"healthy"``.
        log_slope: backward log-slope s per layer (module docstring); ``None`` if fewer than
            two layers have finite, non-zero norms.
        log_ratio: s·(L − 1), the fitted log(‖g_1‖/‖g_L‖) across the net (``None`` likewise).
        layer_norms: the per-layer norms the slope was fitted to, shape (L,), layer 1 first
            (the per-layer median over finite steps for 2-D input).
        n_nan, n_inf: how many NaN and ±inf entries the norms held.
        first_nonfinite: (step, layer) of the first non-finite entry, step 0-based, layer
            1-based (step is 0 for 1-D input), or ``None``.
        log_growth: log(max_t ‖g_t‖ / ‖g_0‖) of the total norm over steps (2-D input),
            else ``None``.
        zero_layers: layers (1-based) whose norm is exactly zero.
        weight_change: relative weight change per layer ‖W_T − W_0‖/‖W_0‖, when known.
        stalled_layers: layers (1-based) whose weight change is below ``stall_fraction`` of
            the largest layer's.
        notes: extra facts from a training record (e.g. when the loss became non-finite).
        thresholds: the parameters the verdict used.
        time_unit: what a row of 2-D input is: ``"step"``, or ``"epoch"`` for a training
            record (row i is epoch i + 1; the failing step of a diverged run is the last row).
    """

    verdict: Verdict
    log_slope: float | None
    log_ratio: float | None
    layer_norms: FloatArray
    n_nan: int = 0
    n_inf: int = 0
    first_nonfinite: tuple[int, int] | None = None
    log_growth: float | None = None
    zero_layers: tuple[int, ...] = ()
    weight_change: FloatArray | None = None
    stalled_layers: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)
    time_unit: Literal["step", "epoch"] = "step"

    @property
    def depth(self) -> int:
        """L, the number of layers."""
        return int(self.layer_norms.shape[0])

    @property
    def nonfinite(self) -> bool:
        """Whether any NaN or ±inf appeared."""
        return self.n_nan + self.n_inf > 0

    def evidence(self) -> tuple[str, ...]:
        """One sentence per piece of evidence, most decisive first."""
        out: list[str] = []
        if self.nonfinite:
            row, layer = self.first_nonfinite or (0, 0)
            when = f"epoch {row + 1}" if self.time_unit == "epoch" else f"step {row}"
            out.append(
                f"non-finite gradient norms: {self.n_nan} NaN and {self.n_inf} ±inf, the first "
                f"in {when}, layer {layer}"
            )
        out.extend(self.notes)
        if self.log_growth is not None and self.log_growth > math.log(
            self.thresholds["max_growth"]
        ):
            out.append(
                f"the total gradient norm grew by a factor e^{self.log_growth:.1f} "
                f"(≈ {_fmt_exp(self.log_growth)}) during training"
            )
        if self.zero_layers:
            out.append(f"exactly zero gradient in layer(s) {_fmt_layers(self.zero_layers)}")
        if self.log_slope is not None and self.log_ratio is not None:
            out.append(
                f"backward log-slope {self.log_slope:+.3f} per layer: from layer {self.depth} "
                f"down to layer 1 the fitted gradient norm changes by a factor "
                f"{_fmt_exp(self.log_ratio)} (threshold: a factor "
                f"{self.thresholds['factor']:g} either way)"
            )
        if self.stalled_layers and self.weight_change is not None:
            wc = self.weight_change
            out.append(
                f"stalled layer(s) {_fmt_layers(self.stalled_layers)}: relative weight change "
                f"{', '.join(f'{wc[i - 1]:.2g}' for i in self.stalled_layers)} against "
                f"{np.max(wc):.2g} for the most-changed layer"
            )
        return tuple(out)

    def __str__(self) -> str:
        head = {
            "vanishing": "Vanishing gradients",
            "exploding": "Exploding gradients",
            "healthy": "Healthy gradient flow",
        }[self.verdict]
        body = "; ".join(self.evidence()) or "no evidence either way"
        return f"{head} ({self.depth} layers): {body}."


def _fmt_exp(log_value: float) -> str:
    if abs(log_value) < math.log(1e4):
        return f"{math.exp(log_value):.3g}"
    return f"1e{log_value / math.log(10):+.1f}"


def _fmt_layers(layers: tuple[int, ...]) -> str:
    return ", ".join(str(i) for i in layers)


def _log_norm(m: float, r: float) -> float:
    # log(m·r) of a norm split as clipping.scaled_norm returns it: −inf for a zero norm,
    # NaN for a row holding NaN or inf (such rows are skipped).
    if m == 0.0:
        return -math.inf
    if not (math.isfinite(m) and math.isfinite(r)):
        return math.nan
    return math.log(m) + math.log(r)


def _fit_slope(index: NDArray[np.intp], log_norms: FloatArray, depth: int) -> float:
    # Least squares of log‖g‖ against L − l; ``index`` holds l − 1 for the layers used.
    x = (depth - 1 - index).astype(np.float64)
    xc = x - x.mean()
    return float(np.dot(xc, log_norms - log_norms.mean()) / np.dot(xc, xc))


def log_slope(norms: ArrayLike) -> float:
    """The backward log-slope s of per-layer norms (layer 1 first): −d log‖g_l‖ / dl, fitted.

    Least squares of log‖g_l‖ against L − l. A geometric sequence ‖g_l‖ = a·r^{L−l} (the norm
    multiplied by r per layer going backwards) gives exactly s = log r.

    >>> round(log_slope([0.001, 0.01, 0.1, 1.0]) / math.log(10), 12)   # ÷10 per layer: vanishing
    -1.0
    """
    g = np.asarray(norms, dtype=np.float64)
    if g.ndim != 1 or g.size < 2 or not np.all(np.isfinite(g)) or not np.all(g > 0):
        raise GradmathError(
            f"`norms` (={norms!r}) must be at least two finite positive per-layer norms."
        )
    return _fit_slope(np.arange(g.size), np.log(g), g.size)


def _count_nonfinite(a: FloatArray) -> tuple[int, int, tuple[int, int] | None]:
    bad = ~np.isfinite(a)
    if not bad.any():
        return 0, 0, None
    step, layer = np.argwhere(bad)[0]
    return int(np.isnan(a).sum()), int(np.isinf(a).sum()), (int(step), int(layer) + 1)


def _from_record(record: Any) -> tuple[FloatArray, FloatArray | None, tuple[str, ...]]:
    """Per-entry RMS gradient norms, final weight change and notes of a TrainResult."""
    norms = np.asarray(record.grad_rms, dtype=np.float64)
    wc = np.asarray(record.weight_change, dtype=np.float64)
    notes: list[str] = []
    div = record.divergence
    if div is not None:
        if div.grad_rms is not None:  # the failing step's gradients, NaN/inf included
            norms = np.vstack([norms, np.asarray(div.grad_rms, dtype=np.float64)[None, :]])
        notes.append(str(div))
    return norms, (wc[-1] if wc.shape[0] > 1 else None), tuple(notes)


def diagnose(
    record_or_norms: Any,
    *,
    factor: float = 10.0,
    max_growth: float = 1000.0,
    weight_change: ArrayLike | None = None,
    stall_fraction: float = 0.01,
) -> Diagnosis:
    """Diagnose vanishing or exploding gradients from per-layer norms or a training record.

    Args:
        record_or_norms: a :class:`gradmath.numeric.train.TrainResult` (its per-entry RMS
            weight-gradient norms per epoch, the failing step if training diverged, and its
            final relative weight changes are used), a ``gradmath.torch.TrainingHistory``
            (the same, per optimizer step of a real PyTorch run), or per-layer gradient
            norms of shape (layers,) or (steps, layers), layer 1 (next to the input) first.
            When layers have different sizes, pass per-entry RMS norms ‖∇W^l‖/√(n_l n_{l−1}) so that
            size does not masquerade as vanishing.
        factor: the fitted gradient ratio across the net, ‖g_1‖/‖g_L‖, beyond which the
            verdict is vanishing (< 1/factor) or exploding (> factor).
        max_growth: growth of the total norm over steps beyond which the verdict is
            exploding (2-D input only).
        weight_change: relative weight change per layer (overrides the record's).
        stall_fraction: a layer whose weight change is below this fraction of the largest
            layer's is reported as stalled.

    Returns:
        A frozen :class:`Diagnosis`; ``str()`` of it is a readable paragraph.

    >>> d = diagnose([1e-6, 1e-4, 1e-2, 1.0])
    >>> d.verdict, round(d.log_slope, 6)
    ('vanishing', -4.60517)
    >>> diagnose([1.0, 1.1, 0.9, 1.0]).verdict
    'healthy'
    """
    f = check_positive("factor", factor)
    if f <= 1.0:
        raise GradmathError(f"`factor` (={factor!r}) must be > 1 (a ratio across the net).")
    g_max = check_positive("max_growth", max_growth)
    if g_max <= 1.0:
        raise GradmathError(f"`max_growth` (={max_growth!r}) must be > 1.")
    stall = check_positive("stall_fraction", stall_fraction)

    notes: tuple[str, ...] = ()
    wc: FloatArray | None = None
    unit: Literal["step", "epoch"] = "step"
    diverged = False
    if hasattr(record_or_norms, "grad_rms") and hasattr(record_or_norms, "divergence"):
        raw, wc, notes = _from_record(record_or_norms)
        # numeric.train records epochs; gradmath.torch.TrainingHistory records steps.
        unit = "step" if getattr(record_or_norms, "time_unit", "epoch") == "step" else "epoch"
        diverged = record_or_norms.divergence is not None
    else:
        try:
            raw = np.asarray(record_or_norms, dtype=np.float64)
        except (TypeError, ValueError):
            raise GradmathError(
                f"`record_or_norms` (={record_or_norms!r}) must be a TrainResult or per-layer "
                "gradient norms of shape (layers,) or (steps, layers)."
            ) from None
    if weight_change is not None:
        wc = np.asarray(weight_change, dtype=np.float64)

    two_d = raw.ndim == 2
    norms2 = raw if two_d else raw[None, :] if raw.ndim == 1 else None
    # A run that died in its first epoch has no rows; its divergence is the evidence.
    if norms2 is None or norms2.shape[1] < 2 or (norms2.shape[0] < 1 and not diverged):
        raise GradmathError(
            f"Gradient norms must have shape (layers,) or (steps, layers) with at least two "
            f"layers and one step; got shape {raw.shape}."
        )
    if np.any(norms2 < 0):
        raise GradmathError("Gradient norms must be >= 0 (NaN and inf are accepted as evidence).")
    depth = norms2.shape[1]
    n_nan, n_inf, first = _count_nonfinite(norms2)

    finite_rows = norms2[np.all(np.isfinite(norms2), axis=1)]
    if finite_rows.shape[0]:
        with np.errstate(divide="ignore"):
            layer_norms = np.exp(np.median(np.log(finite_rows), axis=0))
    else:
        layer_norms = np.full(depth, np.nan)
    zero_layers = tuple(int(i) + 1 for i in np.flatnonzero(layer_norms == 0.0))
    usable = np.isfinite(layer_norms) & (layer_norms > 0)
    s = ratio = None
    if usable.sum() >= 2:
        # Fit on the layers that carry a signal; their positions keep their true spacing.
        s = _fit_slope(np.flatnonzero(usable), np.log(layer_norms[usable]), depth)
        ratio = s * (depth - 1)

    growth = None
    if two_d and norms2.shape[0] >= 2:
        # log of each row's total norm, from ‖g‖ = m·‖g/m‖ (clipping.scaled_norm): squaring
        # norms above ~1e154 would overflow and drop exactly the exploding rows.
        with np.errstate(all="ignore"):
            log_total = np.array([_log_norm(*scaled_norm([row])) for row in norms2])
        fin = np.flatnonzero(~np.isnan(log_total))
        if fin.size >= 2 and log_total[fin[0]] > -np.inf:
            growth = float(np.max(log_total[fin]) - log_total[fin[0]])

    stalled: tuple[int, ...] = ()
    if wc is not None:
        if wc.shape != (depth,) or not np.all(np.isfinite(wc)) or np.any(wc < 0):
            raise GradmathError(
                f"`weight_change` must be {depth} finite values >= 0, one per layer; got {wc!r}."
            )
        top = float(np.max(wc))
        if top > 0:
            stalled = tuple(int(i) + 1 for i in np.flatnonzero(wc < stall * top))

    verdict: Verdict
    if diverged or n_nan + n_inf > 0 or (growth is not None and growth > math.log(g_max)):
        verdict = "exploding"
    elif ratio is not None and ratio > math.log(f):
        verdict = "exploding"
    elif zero_layers or (ratio is not None and ratio < -math.log(f)):
        verdict = "vanishing"
    else:
        verdict = "healthy"
    return Diagnosis(
        verdict=verdict,
        log_slope=s,
        log_ratio=ratio,
        layer_norms=layer_norms,
        n_nan=n_nan,
        n_inf=n_inf,
        first_nonfinite=first,
        log_growth=growth,
        zero_layers=zero_layers,
        weight_change=wc,
        stalled_layers=stalled,
        notes=notes,
        thresholds={"factor": f, "max_growth": g_max, "stall_fraction": stall},
        time_unit=unit,
    )
