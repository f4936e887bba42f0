"""Theory against measurement for a real model, per layer, with a verdict and a figure.

:func:`explain` runs the whole chain on a model and an example input::

    translation = translate(model, x)             # how each layer is read, where theory stops
    network     = from_module(model, x, seed=seed + 1)  # measured-only parts: other inits
    measured    = probe(model, x, n_inits=..., seed=seed)  # the same sites, re-initialised
    theory      = gradmath.torch.predict(network, like=measured)  # + jackknife SE
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


def _diagnose(p: Profile) -> Diagnosis | None:
    norms = _layer_norms(p)
    return diagnose(norms) if norms.size >= 2 else None


@dataclass(frozen=True, eq=False)
class Report:
    """The outcome of :func:`explain` (module docstring)."""

    translation: Translation
    theory: Profile
    measured: Profile
    comparison: Comparison
    diagnosis: Diagnosis | None  # None: fewer than two weight layers, no trend to diagnose
    theory_diagnosis: Diagnosis | None

    @property
    def names(self) -> list[str]:
        """Site names with the module each one is (``dense3 transformer.h.0.mlp.c_fc``)."""
        from gradmath.torch.convert import sites_on_path

        path = sites_on_path(self.translation)
        return [f"{s.name} {p.site.module}" for s, p in zip(self.measured.sites, path, strict=True)]

    @property
    def measured_only(self) -> list[int]:
        """Rows the theory does not cover: their forward moment is a measurement (of other
        inits than the probe's), from which the theory resumes."""
        from gradmath.torch.convert import sites_on_path

        return [i for i, p in enumerate(sites_on_path(self.translation)) if p.measured_only]

    @property
    def verdict(self) -> str:
        """One paragraph: measured verdict, the theory's, and whether they agree."""
        m, t = self.diagnosis, self.theory_diagnosis
        if m is None or t is None:
            return (
                "One weight layer: no trend across layers for diagnose to judge.\n"
                f"{self.comparison.verdict}"
            )
        same = "as" if m.verdict == t.verdict else "unlike"
        return (
            f"Measured: {m}\nTheory predicts {t.verdict!r} ({same} the measurement).\n"
            f"{self.comparison.verdict}"
        )

    def segments(self) -> list[str]:
        """Where theory stops and starts again along the network's rows (sums of measured
        parts, such as token + position embeddings, count as measured)."""
        from gradmath.torch.convert import sites_on_path
        from gradmath.torch.translate import segments

        path = sites_on_path(self.translation)
        return segments((s.name, p.site.module, p.measured_only)
                        for s, p in zip(self.measured.sites, path, strict=True))  # fmt: skip

    def table(self) -> str:
        """Per layer: measured ± SE, predicted and z for q, q̃ and the weight gradient."""
        c, th, me = self.comparison, self.theory, self.measured
        names = self.names
        only = set(self.measured_only)
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
                if np.isnan(v):
                    cells.append(f"{'—':>14} {'—':>8} {'':>6}")
                    continue
                cells.append(f"{v:8.3f}±{se:5.3f} {t:8.3f} {c.z[k, i]:+6.2f}")
            mark = "  measured only" if i in only else ""
            lines.append(f"{name:<{w}} " + " ".join(cells) + mark)
        lines.append("")
        lines.extend(self.segments())
        lines.append(self.verdict)
        return "\n".join(lines)

    def latex(self) -> str:
        """The comparison as a booktabs table, followed by the verdict as a sentence."""
        said = self.verdict if self.diagnosis is None else str(self.diagnosis)
        return self.comparison.latex() + "\n\n" + said.replace("%", r"\%")

    def figure(self, ax: Axes | None = None) -> Axes:
        """The gradient-flow plot (:func:`gradmath.render.figures.gradient_flow`)."""
        from gradmath.render.figures import gradient_flow

        return gradient_flow(self.theory, self.measured, ax=ax, names=self.names,
                             measured_only=self.measured_only)  # fmt: skip


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

    The theory is predicted under the probe's conditions (``predict(net, like=measured)``:
    the inputs' E[x²], a unit output gradient, the batch). Measured-only parts carry moments
    measured on other inits (seed + 1) than the probe's, so theory and probe stay independent
    and the theory's standard error (jackknife) covers what those parts pass on.
    """
    from gradmath.torch.convert import network_of, predict, profile_of
    from gradmath.torch.measure import measure
    from gradmath.torch.translate import translate
    from gradmath.validate import compare

    translation = translate(model, inputs)
    m = measure(model, inputs, n_inits=n_inits, seed=seed, init=init, dtype=dtype)
    parts = None
    if translation.measured:
        parts = measure(model, inputs, n_inits=n_inits, seed=seed + 1, init=init, dtype=dtype)
    network = network_of(translation, parts)
    measured = profile_of(network, translation, m)
    theory = predict(network, like=measured)
    comparison = compare(theory, measured, z_max=z_max)
    return Report(
        translation=translation,
        theory=theory,
        measured=measured,
        comparison=comparison,
        diagnosis=_diagnose(measured),
        theory_diagnosis=_diagnose(theory),
    )
