"""Glorot's compromise in a net whose widths change by 4× per layer: fan_in scaling keeps the
forward signal, fan_out scaling the backward gradient, Glorot's average splits the difference."""

from __future__ import annotations

import gradmath
from gradmath import validate
from gradmath.render import figures, notes

CHAPTER = "04_initialisation"
CAPTION = (
    r"A linear network whose widths go $32, 128, 512, 128, 32, \dots$ (a factor 4 per layer). "
    r"Left: forward second moment; right: backward gradient second moment. "
    r"$\mathrm{Var}[W]=1/n_{\mathrm{in}}$ (LeCun) keeps the forward pass flat and lets the "
    r"gradient jump by the width ratio; $1/n_{\mathrm{out}}$ does the opposite. Glorot's "
    r"$2/(n_{\mathrm{in}}+n_{\mathrm{out}})$ multiplies the forward moment by "
    r"$2n_{\mathrm{in}}/(n_{\mathrm{in}}+n_{\mathrm{out}})$ and the backward one by "
    r"$2n_{\mathrm{out}}/(n_{\mathrm{in}}+n_{\mathrm{out}})$ per layer: smaller swings in both "
    r"directions than the other two make in one, at the price of a slow drift."
)
WIDTHS = (32, 128, 512, 128, 32, 128, 512, 128, 32)
INITS = {
    r"$1/n_{\mathrm{in}}$ (lecun_normal)": gradmath.initializer("lecun_normal"),
    r"$1/n_{\mathrm{out}}$ (variance_scaling, fan_out)": gradmath.initializer(
        "variance_scaling", mode="fan_out"
    ),
    r"$2/(n_{\mathrm{in}}+n_{\mathrm{out}})$ (glorot_normal)": gradmath.initializer(
        "glorot_normal"
    ),
}


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    nets = {label: gradmath.MLP(WIDTHS, activation="linear", init=init)
            for label, init in INITS.items()}  # fmt: skip
    curves = validate.theory_and_simulation(nets, n_networks=8 if quick else 32)
    return figures.forward_backward(curves)


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
