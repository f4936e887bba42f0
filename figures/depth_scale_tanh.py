"""The correlation depth scale ξ_c of tanh against σ_w²: it diverges on the critical line."""

from __future__ import annotations

import numpy as np

import gradmath.meanfield as mf
from gradmath.render import figures, notes

CHAPTER = "05_mean_field"
CAPTION = (
    r"Correlation depth scale $\xi_c$ of tanh networks against $\sigma_w^2$ for three bias "
    r"variances (Schoenholz et al.\ 2017, eq.~9). Dashed: the critical $\sigma_w^2$ where "
    r"$\chi_1=1$ and $\xi_c$ diverges. Networks much deeper than about $6\,\xi_c$ do not train."
)
SIGMA_B2 = (0.0, 0.05, 0.2)


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    # An even grid plus points closing in on each critical σ_w², where ξ_c has its peak.
    crit = np.asarray(mf.critical_sigma_w2("tanh", np.array(SIGMA_B2)))
    offsets = np.logspace(-3, -0.7, 6 if quick else 12)
    near = np.concatenate([c * (1 + s * offsets) for c in crit for s in (-1, 1)])
    grid = np.unique(np.concatenate([np.linspace(0.5, 4.0, 30 if quick else 80), near]))
    pd = mf.phase_diagram("tanh", grid[(grid >= 0.5) & (grid <= 4.0)], np.array(SIGMA_B2))
    return figures.depth_scale(pd).figure


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
