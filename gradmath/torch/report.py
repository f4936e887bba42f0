"""Theory against measurement for a real model, per layer, with a verdict and a figure.

:func:`explain` runs the whole chain on a model and an example input::

    translation = translate(model, x)             # how each layer is read, where theory stops
    theory      = meanfield.predict(from_module(model, x), input_q=E[x²])
    measured    = probe(model, x, n_inits=...)    # the same sites, over re-initialisations
    comparison  = validate.compare(theory, measured)

and returns a :class:`Report`: per site the measured log second moments ± SE, the prediction
and z; the verdict of :func:`gradmath.diagnose` on the measured per-layer gradient norms (and
on the predicted ones); :meth:`Report.figure` draws them with
:func:`gradmath.render.figures.gradient_flow`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gradmath.diagnose import Diagnosis, diagnose
from gradmath.profile import Profile
from gradmath.torch.translate import Translation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from gradmath.validate import Comparison

__all__ = ["Report", "explain"]

_LN10 = math.log(10.0)
_COLUMNS = (("q", "log10 E[h²]"), ("grad_q", "log10 E[δ²]"), ("wgrad_q", "log10 E[∂W²]"))


def _layer_norms(p: Profile) -> np.ndarray:
    # Per-entry RMS weight-gradient norm per weight layer, layer 1 first (diagnose's input).
    lw = np.asarray(p.log_wgrad_q)
    return np.exp(0.5 * lw[np.isfinite(lw)])


@dataclass(frozen=True, eq=False)
class Report:
    """The outcome of :func:`explain` (module docstring)."""

    translation: Translation
    theory: Profile
    measured: Profile
    comparison: Comparison
    diagnosis: Diagnosis
    theory_diagnosis: Diagnosis

    @property
    def names(self) -> list[str]:
        # the modules of the weight layers, in the order of the profiles' rows
        return [s.module for s in self.translation.sites if s.kind == "dense"]

    @property
    def verdict(self) -> str:
        """One paragraph: measured verdict, the theory's, and whether they agree."""
        m, t = self.diagnosis, self.theory_diagnosis
        same = "as" if m.verdict == t.verdict else "unlike"
        return (
            f"Measured: {m}\nTheory predicts {t.verdict!r} ({same} the measurement).\n"
            f"{self.comparison.verdict}"
        )

    def table(self) -> str:
        """Per layer: measured ± SE, predicted and z for q, q̃ and the weight gradient."""
        c, th, me = self.comparison, self.theory, self.measured
        names = self.names or [str(i + 1) for i in range(th.depth)]
        w = max(8, *(len(n) for n in names))
        head = f"{'layer':<{w}} " + " ".join(f"{label:^30}" for _, label in _COLUMNS)
        sub = f"{'':<{w}} " + " ".join(f"{'measured':>14} {'theory':>8} {'z':>6}" for _ in _COLUMNS)
        lines = [head, sub, "-" * len(sub)]
        for i, name in enumerate(names):
            cells = []
            for k, (q, _) in enumerate(_COLUMNS):
                v = getattr(me, f"log_{q}")[i] / _LN10
                se_arr = getattr(me, f"log_{q}_se")
                se = (se_arr[i] if se_arr is not None else 0.0) / _LN10
                t = getattr(th, f"log_{q}")[i] / _LN10
                cells.append(f"{v:8.3f}±{se:5.3f} {t:8.3f} {c.z[k, i]:+6.2f}")
            lines.append(f"{name:<{w}} " + " ".join(cells))
        lines.append("")
        lines.extend(self.translation.segments())
        lines.append(self.verdict)
        return "\n".join(lines)

    def latex(self) -> str:
        """The comparison as a booktabs table, followed by the verdict as a sentence."""
        return self.comparison.latex() + "\n\n" + str(self.diagnosis).replace("%", r"\%")

    def figure(self, ax: Axes | None = None) -> Axes:
        """The gradient-flow plot (:func:`gradmath.render.figures.gradient_flow`)."""
        from gradmath.render.figures import gradient_flow

        return gradient_flow(self.theory, self.measured, ax=ax, names=self.names or None)


def explain(
    model: Any,
    inputs: Any,
    *,
    n_inits: int = 16,
    seed: int = 0,
    init: Any = None,
    dtype: Any = None,
    z_max: float = 4.0,
) -> Report:
    """Translate, predict, probe, compare and diagnose ``model`` on ``inputs`` (module doc).

    The theory starts from the inputs' measured second moment E[x²] and a unit output
    gradient, the probe's default condition.
    """
    from gradmath.meanfield import predict
    from gradmath.torch.convert import network_of, profile_of
    from gradmath.torch.measure import measure
    from gradmath.torch.translate import translate
    from gradmath.validate import compare

    translation = translate(model, inputs)
    network = network_of(translation)
    m = measure(model, inputs, n_inits=n_inits, seed=seed, init=init, dtype=dtype)
    measured = profile_of(network, translation, m)
    theory = predict(network, like=measured)
    comparison = compare(theory, measured, z_max=z_max)
    return Report(
        translation=translation,
        theory=theory,
        measured=measured,
        comparison=comparison,
        diagnosis=diagnose(_layer_norms(measured)),
        theory_diagnosis=diagnose(_layer_norms(theory)),
    )
