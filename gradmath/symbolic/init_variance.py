"""Why Var[W] = 1/fan_in (LeCun), 2/fan_in (He) and 2/(fan_in + fan_out) (Glorot).

One layer y_i = Σ_{j=1..fan_in} W_ij x_j with independent zero-mean weights, independent of
the inputs, has

    Var[y_i] = fan_in · Var[W] · E[x_j²]                       (forward)
    Var[∂L/∂x_j] = fan_out · Var[W] · E[φ'(h)²] · Var[∂L/∂y_i]  (backward)

(LeCun et al. 1998, "Efficient BackProp"; Glorot & Bengio 2010, eqs. 5–12; He et al. 2015,
"Delving deep into rectifiers", eqs. 7–14). Each scheme asks one of the two second moments
to stay constant from layer to layer:

- LeCun: a linear unit (or SELU at its fixed point, Klambauer et al. 2017) has
  E[x²] = Var[h], so fan_in·Var[W] = 1;
- He: for ReLU and symmetric h, E[relu(h)²] = Var[h]/2 (eq. 10: ½·fan_in·Var[W] = 1), so
  Var[W] = 2/fan_in; the backward pass (eq. 14) gives 2/fan_out;
- Glorot: near zero tanh is linear, forward wants 1/fan_in and backward 1/fan_out; eq. 12
  takes the compromise 2/(fan_in + fan_out).

The uniform distribution U(−a, a) with the same variance has a = √(3·Var[W]).
"""

from __future__ import annotations

from typing import Any

from gradmath.errors import GradmathError, suggest
from gradmath.symbolic.derivation import Derivation, Step, named

__all__ = ["SCHEMES", "fan_symbols", "init_variance"]

SCHEMES = ("lecun", "he", "glorot")
_ALIASES = {"kaiming": "he", "xavier": "glorot"}


def fan_symbols() -> tuple[Any, Any]:
    """The symbols (fan_in, fan_out): positive integers, printed n_in and n_out (in LaTeX
    ``n_{\\mathrm{in}}`` and ``n_{\\mathrm{out}}``)."""
    return (
        named("n_in", r"n_{\mathrm{in}}", integer=True, positive=True),
        named("n_out", r"n_{\mathrm{out}}", integer=True, positive=True),
    )


def _scheme(scheme: str) -> str:
    """'he', 'kaiming', 'he_normal', 'kaiming_uniform_', 'xavier_normal', … → a SCHEMES entry."""
    from gradmath.initializers import initializers

    if not isinstance(scheme, str):
        raise GradmathError(f"`scheme` (={scheme!r}) must be a string: one of {SCHEMES}.")
    key = scheme.strip().lower().rstrip("_")
    key = _ALIASES.get(key, key)
    if key in SCHEMES:
        return key
    prefix = key.split("_")[0]
    if key in initializers() and _ALIASES.get(prefix, prefix) in SCHEMES:
        return _ALIASES.get(prefix, prefix)
    known = (*SCHEMES, *_ALIASES)
    raise GradmathError(
        f"`scheme` (={scheme!r}) must be one of {', '.join(SCHEMES)} (aliases kaiming, xavier) "
        f"or a catalogue name of one of them (he_normal, xavier_uniform, …)."
        f"{suggest(key, known)}"
    )


def init_variance(scheme: str) -> Derivation:
    r"""Derive Var[W] of the LeCun, He or Glorot initialisation from the variance recursion.

    ``scheme``: ``"lecun"``, ``"he"`` (alias ``"kaiming"``) or ``"glorot"`` (``"xavier"``),
    or a catalogue initializer name of one of them (``"he_normal"``, ``"xavier_uniform"``…).
    ``result`` is Var[W] in the symbols of :func:`fan_symbols` (exact); ``data`` holds
    ``"forward"`` and ``"backward"`` (the variance each condition alone asks for),
    ``"uniform_limit"`` (a = √(3·Var[W])) and ``"fan_in"``, ``"fan_out"`` (the symbols).

    Sources: LeCun et al. (1998); He et al. (2015), eqs. 10 and 14; Glorot & Bengio (2010),
    eq. 12 (theory.md, "Initializer variances").

    >>> init_variance("glorot").result
    2/(n_in + n_out)
    >>> init_variance("he").data["uniform_limit"]
    sqrt(6)/sqrt(n_in)
    """
    import sympy as sp

    key = _scheme(scheme)
    n_in, n_out = fan_symbols()
    var_w = sp.Symbol("v", positive=True)  # Var[W], the unknown
    q = sp.Symbol("q", positive=True)  # Var[h] of the previous pre-activation
    h = sp.Symbol("h", real=True)
    var_y = named("Var[y]", r"\mathrm{Var}[y]")
    ex2 = named("E[x^2]", r"\mathbb{E}[x^{2}]")
    steps = [
        Step(
            "one layer: $y_i = \\sum_{j=1}^{n_{\\mathrm{in}}} W_{ij} x_j$, weights independent, "
            "mean $0$",
            sp.Eq(var_y, n_in * named("Var[W]", r"\mathrm{Var}[W]") * ex2),
            "cross terms $\\mathbb{E}[W_{ij} W_{ik} x_j x_k]$ vanish (zero mean, independent), "
            "so $n_{\\mathrm{in}}$ equal terms $\\mathbb{E}[W^2]\\,\\mathbb{E}[x^2]$ remain",
        )
    ]
    if key == "he":
        density = sp.exp(-(h**2) / (2 * q)) / sp.sqrt(2 * sp.pi * q)
        relu2 = sp.integrate(h**2 * density, (h, 0, sp.oo))
        dphi2 = sp.integrate(density, (h, 0, sp.oo))
        steps.append(
            Step(
                "ReLU keeps half of a symmetric second moment, $h \\sim \\mathcal{N}(0, q)$",
                sp.Tuple(
                    sp.Eq(named("E[relu(h)^2]", r"\mathbb{E}[\mathrm{relu}(h)^{2}]"), relu2),
                    sp.Eq(named("E[relu'(h)^2]", r"\mathbb{E}[\mathrm{relu}'(h)^{2}]"), dphi2),
                ),
                "integrate $h^2$ and $1$ over $h > 0$ against the $\\mathcal{N}(0, q)$ density "
                "(He et al. 2015, eq. 10)",
            )
        )
        ex2_value, dphi2_value = relu2, dphi2
    else:
        why = "a linear unit" if key == "lecun" else "tanh is linear near $0$: $\\tanh'(0) = 1$"
        steps.append(
            Step(
                "linear regime",
                sp.Eq(ex2, q),
                f"{why} ($\\mathbb{{E}}[\\varphi'(h)^2] = 1$ in the backward pass)",
            )
        )
        ex2_value, dphi2_value = q, sp.Integer(1)
    forward = sp.solve(sp.Eq(n_in * var_w * ex2_value, q), var_w)[0]
    backward = sp.solve(sp.Eq(n_out * var_w * dphi2_value, 1), var_w)[0]
    steps += [
        Step(
            "forward: keep the second moment, $\\mathrm{Var}[y] = \\mathrm{Var}[h]$",
            sp.Eq(named("Var[W]_fwd", r"\mathrm{Var}[W]_{\mathrm{fwd}}"), forward),
            "solve $n_{\\mathrm{in}}\\,\\mathrm{Var}[W]\\,\\mathbb{E}[x^2] = q$",
        ),
        Step(
            "backward: keep the gradient's second moment, through $W^{\\top}$ "
            "(a sum over $n_{\\mathrm{out}}$)",
            sp.Eq(named("Var[W]_bwd", r"\mathrm{Var}[W]_{\mathrm{bwd}}"), backward),
            "solve $n_{\\mathrm{out}}\\,\\mathrm{Var}[W]\\,\\mathbb{E}[\\varphi'(h)^2] = 1$"
            + (" (He et al. 2015, eq. 14)" if key == "he" else ""),
        ),
    ]
    if key == "glorot":
        result = sp.solve(sp.Eq((n_in + n_out) / 2 * var_w, 1), var_w)[0]
        steps.append(
            Step(
                "compromise: both hold only if $n_{\\mathrm{in}} = n_{\\mathrm{out}}$; average "
                "the two conditions",
                sp.Eq(named("Var[W]", r"\mathrm{Var}[W]"), result),
                "Glorot & Bengio (2010), eq. 12: "
                "$(n_{\\mathrm{in}} + n_{\\mathrm{out}})\\,\\mathrm{Var}[W]/2 = 1$",
            )
        )
    else:
        result = forward
        source = "LeCun et al. (1998)" if key == "lecun" else "He et al. (2015), eq. 10"
        steps.append(
            Step(
                "choose the forward condition",
                sp.Eq(named("Var[W]", r"\mathrm{Var}[W]"), result),
                f"{source}; the backward one is the fan_out mode",
            )
        )
    limit = sp.sqrt(3 * result)
    steps.append(
        Step(
            "the uniform form $U(-a, a)$ has variance $a^2/3$",
            sp.Eq(sp.Symbol("a"), limit),
            "$a = \\sqrt{3\\,\\mathrm{Var}[W]}$",
        )
    )
    names = {"lecun": "LeCun", "he": "He", "glorot": "Glorot"}
    return Derivation(
        f"The {names[key]} initialisation variance",
        tuple(steps),
        result,
        data={
            "forward": forward,
            "backward": backward,
            "uniform_limit": limit,
            "fan_in": n_in,
            "fan_out": n_out,
            "scheme": key,
        },
    )
