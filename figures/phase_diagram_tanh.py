"""The tanh phase diagram (Poole et al. 2016; Schoenholz et al. 2017, fig. 1): χ₁ over
(σ_w², σ_b²) and the critical line χ₁ = 1 between order and chaos."""

from __future__ import annotations

import numpy as np

import gradmath.meanfield as mf
from gradmath.render import figures, notes

CHAPTER = "05_mean_field"
CAPTION = (
    r"Phase diagram of deep tanh networks at infinite width: colour is $\log_{10}\chi_1$, the "
    r"per-layer factor of the squared gradient. The critical line $\chi_1 = 1$ separates the "
    r"ordered phase (blue; gradients vanish) from the chaotic phase (red; gradients explode)."
)


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    n = 80 if quick else 200
    grid_w, grid_b = np.linspace(0.5, 4.0, n), np.linspace(0.0, 0.3, n)
    pd = mf.phase_diagram("tanh", grid_w, grid_b, depth_scale=False)
    return figures.phase_diagram(pd).figure


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
