"""The worked examples of the classic explanation, evaluated exactly.

- a local factor σ'(0)·w = 0.25·500 = 125 > 1 (theory.md, "Symbolic facts");
- the product of local factors along a path, 300·200·125·1001 = 7 507 500 000;
- an update α·∂L/∂w = 0.001·2·10⁻¹³… that floating point rounds away, and for which w;
- the vanishing bound (1/4)^L of a sigmoid chain with |w_l| ≤ 1.

Numbers given as floats are read as the decimals they print as (0.001 → 1/1000), so every
result is an exact SymPy number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from gradmath.errors import GradmathError
from gradmath.symbolic.bounds import derivative_bound
from gradmath.symbolic.derivation import Derivation, Step, decimal_text, named

__all__ = [
    "local_factor_example",
    "loss_scaling_example",
    "path_product_example",
    "relu_chain_example",
    "rounds_away_above",
    "update_rounding_example",
    "vanishing_bound_example",
]


def exact_number(name: str, value: object, *, positive: bool = False) -> Any:
    """``value`` as an exact SymPy number (floats and strings read as typed decimals)."""
    import sympy as sp

    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (float, np.floating)):
            if not math.isfinite(float(value)):
                raise ValueError
            value = repr(float(value))
        x = sp.Rational(value) if isinstance(value, (str, int, np.integer)) else sp.S(value)
    except (TypeError, ValueError, sp.SympifyError):
        raise GradmathError(f"`{name}` (={value!r}) must be a finite real number.") from None
    if not (x.is_number and x.is_finite and x.is_real) or (positive and not x > 0):
        allowed = "a finite positive number" if positive else "a finite real number"
        raise GradmathError(f"`{name}` (={value!r}) must be {allowed}.")
    return x


def _frac(x: Any) -> str:
    """An exact number as inline math that reads the same in text: 1/4, not \\frac{1}{4}."""
    import sympy as sp

    return str(sp.latex(x, fold_short_frac=True)).replace(" / ", "/")


def _repr_tex(x: Any) -> str:
    """A float with every digit its repr has, as inline math: 0.9999999999998, 3\\times10^{-20}."""
    r = repr(float(x))
    if "e" not in r:
        return r
    mantissa, exponent = r.split("e")
    return f"{mantissa}\\times10^{{{int(exponent)}}}"


def _times(*factors: Any) -> Any:
    import sympy as sp

    return sp.Mul(*factors, evaluate=False)


def local_factor_example(weight: object = 500) -> Derivation:
    """One sigmoid layer at its steepest point: σ'(0)·w = (1/4)·500 = 125.

    The local factor φ'(z)·w of the chain rule (theory.md "Symbolic facts": 0.25·500 = 125)
    exceeds 1 although σ' never does: a large weight can make a sigmoid chain explode.

    >>> local_factor_example().result
    125
    """
    import sympy as sp

    w = exact_number("weight", weight)
    gamma = derivative_bound("sigmoid").result
    factor = gamma * w
    sig_prime = sp.Function(r"\sigma'")(0)
    steps = (
        Step(
            "the steepest slope of the sigmoid",
            sp.Eq(sig_prime, gamma),
            f"$\\sigma'(z) \\le {_frac(gamma)}$, at $z = 0$",
        ),
        Step("the weight", sp.Eq(sp.Symbol("w"), w), "a large weight"),
        Step(
            "the local factor",
            sp.Eq(_times(gamma, w), factor, evaluate=False),
            "one layer's factor $\\varphi'(z)\\,w$ in the chain rule",
        ),
        Step(
            "compared with 1",
            sp.Gt(factor, 1, evaluate=False) if factor > 1 else sp.Le(factor, 1, evaluate=False),
            "above 1 the layer amplifies the gradient; $L$ such layers multiply it by "
            f"${sp.latex(sp.Pow(factor, sp.Symbol('L'), evaluate=False))}$",
        ),
    )
    title = "A local factor: $\\sigma'(0)\\,w$"
    return Derivation(title, steps, factor, data={"gamma": gamma, "w": w})


def path_product_example(factors: Sequence[object] = (300, 200, 125, 1001)) -> Derivation:
    """The gradient along one path is the product of its chain-rule factors: 300·200·125·1001.

    The factors are the partial derivatives met along the path, not one φ'(z)·w per layer:
    in the classic example 300 is ∂ℓ/∂O (loss by output) and 1001 is ∂O/∂w.

    = 7 507 500 000 ≈ 7.5·10⁹: moderate factors multiply to an exploding gradient.

    >>> path_product_example().result
    7507500000
    """
    import sympy as sp

    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence) or not factors:
        raise GradmathError(f"`factors` (={factors!r}) must be a non-empty sequence of numbers.")
    xs = [exact_number(f"factors[{i}]", f) for i, f in enumerate(factors)]
    product = sp.Mul(*xs)
    steps = [
        Step(
            "the chain-rule factors along one path",
            sp.Tuple(*xs),
            "the partial derivatives met from the loss down to the weight, e.g. "
            "$\\partial\\ell/\\partial O$ first and $\\partial O/\\partial w$ last",
        ),
        Step(
            "their product",
            sp.Eq(_times(*xs), product, evaluate=False),
            "the chain rule multiplies them",
        ),
    ]
    if product != 0:
        steps.append(
            Step(
                "order of magnitude",
                sp.Eq(
                    named("log10|prod|", r"\log_{10}\left|\prod\right|"),
                    sp.log(sp.Abs(product), 10).evalf(6),
                    evaluate=False,
                ),
                "the decimal digits the path gains (or, if negative, loses)",
            )
        )
    return Derivation(
        "The product of local factors along a path", tuple(steps), product, data={"factors": xs}
    )


def _float_fraction(x: np.floating[Any]) -> Fraction:
    return Fraction(*x.as_integer_ratio())


def rounds_away_above(update: float, dtype: Any) -> tuple[Fraction, Fraction]:
    """(threshold, update in that format): fl(w − u) == w exactly when w > threshold (w > 0).

    u = |update| as computed in ``dtype`` (round to nearest). For positive w in the binade
    [2^e, 2^{e+1}) the gap to the next float below w is 2^{e−p+1} (p significand bits),
    except at w = 2^e where it is 2^{e−p}; round to nearest returns w when u is less than half
    that gap (IEEE 754 §4.3.1; ties cannot occur unless u is a power of two, which is
    checked). So the update is lost for every w > 2^E, E the least e with u < 2^{e−p}, and
    survives for every positive w ≤ 2^E. (For w < 0 the subtraction moves away from zero and
    the gap above |w| counts: lost for |w| ≥ 2^E.)

    >>> rounds_away_above(2e-13, np.float64)[0]
    Fraction(2048, 1)
    """
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise GradmathError(f"`dtype` (={dtype!r}) must be a floating-point type.")
    u = abs(_float_fraction(dt.type(abs(float(update)))))
    if u == 0:
        raise GradmathError(f"`update` (={update!r}) is zero in {dt.name}.")
    if u.numerator & (u.numerator - 1) == 0 and u.denominator & (u.denominator - 1) == 0:
        raise GradmathError(f"The update {update!r} is a power of two in {dt.name}: a tie case.")
    p = np.finfo(dt).nmant + 1
    e = math.floor(math.log2(u)) + p - 1
    while not u < Fraction(2) ** (e - p):  # starts below: 2^(e−p) ≤ u/2
        e += 1
    return Fraction(2) ** e, u


def _in_format(dt: type[np.floating[Any]], **values: Any) -> tuple[Any, ...]:
    """The values and their product α·g (the update) in format ``dt``; a GradmathError if any
    of them overflows or underflows to 0 there (the example would compare inf or 0)."""
    import sympy as sp

    info = np.finfo(dt)
    out = []
    for name, x in values.items():
        with np.errstate(over="ignore", under="ignore"):
            v = dt(float(x)) if abs(x) <= float(info.max) else dt(np.inf)
        if not np.isfinite(v) or (v == 0) != (x == 0):
            raise GradmathError(
                f"`{name}` (={sp.N(x, 4)}) is outside the {np.dtype(dt).name} range "
                f"(|x| from {float(info.smallest_subnormal):.3g} to {float(info.max):.3g})."
            )
        out.append(v)
    with np.errstate(over="ignore", under="ignore"):
        update = out[0] * out[1]
    if not np.isfinite(update) or update == 0:
        raise GradmathError(
            f"The update α·∂L/∂w (={sp.N(values['alpha'] * values['gradient'], 4)}) is outside the "
            f"{np.dtype(dt).name} range: choose a learning rate and gradient whose product is "
            f"between {float(info.smallest_subnormal):.3g} and {float(info.max):.3g}."
        )
    return (*out, update)


def update_rounding_example(
    learning_rate: object = "0.001", gradient: object = "2e-10", weight: object = 1
) -> Derivation:
    r"""An update α·∂L/∂w = 0.001·2·10⁻¹⁰ = 2·10⁻¹³ and where floating point loses it.

    The exact update is 2·10⁻¹³. The step w ← w − α·∂L/∂w leaves w unchanged when the update is
    below half the gap between w and the next float (:func:`rounds_away_above`): at w = 1 in
    float32 (ulp 2⁻²³ ≈ 1.19·10⁻⁷) it is lost, in float64 (ulp 2⁻⁵² ≈ 2.2·10⁻¹⁶) it is *not*:
    1 − 2·10⁻¹³ ≠ 1. It is lost for positive w > 2⁻¹⁸ ≈ 3.8·10⁻⁶ in float32 and for w > 2¹¹ =
    2048 in float64. Each claim is checked with NumPy arithmetic in that format.

    ``result`` is the exact update; ``data[dtype_name]`` holds ``"update"`` (the update as
    that format computes it, a Fraction), ``"ulp_at_w"``, ``"threshold"`` (w above which the
    update is lost), ``"lost_at_w"`` (bool, from NumPy), and ``data["weight"]``.

    >>> d = update_rounding_example()
    >>> d.result, d.data["float32"]["lost_at_w"], d.data["float64"]["lost_at_w"]
    (1/5000000000000, True, False)
    """
    import sympy as sp

    from gradmath.render.latex import fmt_num

    alpha = exact_number("learning_rate", learning_rate, positive=True)
    g = exact_number("gradient", gradient)
    w = exact_number("weight", weight, positive=True)
    u = alpha * g
    if u == 0:
        raise GradmathError("`gradient` (=0) gives no update to lose.")
    steps = [
        Step(
            "the update",
            sp.Eq(_times(alpha, g), u, evaluate=False),
            f"$\\alpha\\cdot\\partial L/\\partial w$, exactly (${decimal_text(u, 3)}$)",
        )
    ]
    data: dict[str, Any] = {"weight": w}
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        _, _, w32, uf = _in_format(dt, alpha=alpha, gradient=g, weight=w)
        new = w32 - uf
        lost = bool(new == w32)
        threshold, u_exact = rounds_away_above(uf, dt)
        ulp = _float_fraction(np.spacing(w32))
        thr_exp = int(math.log2(threshold))
        # Check the threshold itself in the format: kept at 2^E, lost just above it.
        at, above = dt(threshold), np.nextafter(dt(threshold), dt(np.inf))
        if bool(at - uf == at) or not bool(above - uf == above):
            raise GradmathError(f"Internal check failed: rounding threshold in {name}.")
        word = "is lost" if lost else "survives"
        rel = "=" if lost else "\\ne"
        steps.append(
            Step(
                f"{name}: at $w = {sp.latex(w)}$ the update {word}: $w - \\text{{update}} {rel} w$",
                sp.Eq(
                    named(f"ulp_{name}(w)", rf"\mathrm{{ulp}}_{{\mathrm{{{name}}}}}(w)"),
                    sp.Rational(ulp.numerator, ulp.denominator),
                ),
                f"$\\mathrm{{ulp}}(w) {decimal_text(ulp, 3)}$; "
                f"$w - {fmt_num(float(uf), 6)}$ in {name} gives ${_repr_tex(new)}$",
            )
        )
        steps.append(
            Step(
                f"{name}: the update is lost exactly for $w > 2^{{{thr_exp}}}$",
                sp.Gt(sp.Symbol("w"), sp.Pow(2, thr_exp, evaluate=False)),
                f"$2^{{{thr_exp}}} {decimal_text(threshold, 4)}$; above it half the gap "
                "below $w$ exceeds the update (checked in NumPy at the threshold and the float "
                "after it)",
            )
        )
        data[name] = {
            "update": u_exact,
            "ulp_at_w": ulp,
            "threshold": threshold,
            "lost_at_w": lost,
        }
    return Derivation("An update that rounding loses", tuple(steps), u, data=data)


def vanishing_bound_example(depths: Sequence[int] = (10, 20, 50)) -> Derivation:
    """The sigmoid chain bound γ^L = (1/4)^L with |w_l| ≤ 1, exactly and as floats.

    (1/4)^10 = 1/1048576 ≈ 9.5·10⁻⁷, (1/4)^20 ≈ 9.1·10⁻¹³, (1/4)^50 ≈ 7.9·10⁻³¹
    (theory.md "Symbolic facts": vanishing when γ|w| < 1 in every layer).

    ``result`` is a SymPy Tuple of the exact bounds; ``data["values"]`` and
    ``data["floats"]`` map each depth to its bound.

    >>> vanishing_bound_example((10,)).result
    (1/1048576,)
    """
    import sympy as sp

    if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence) or not depths:
        raise GradmathError(f"`depths` (={depths!r}) must be a non-empty sequence of depths.")
    for d in depths:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise GradmathError(f"`depths` has {d!r}; each depth must be a positive integer.")
    gamma = derivative_bound("sigmoid").result
    values = {int(d): gamma ** int(d) for d in depths}
    floats = {d: float(v) for d, v in values.items()}
    big_l = sp.Symbol("L", positive=True, integer=True)
    steps = [
        Step(
            "the bound for a sigmoid chain with $|w_l| \\le 1$",
            sp.Le(
                named("|dL/dw_1|", r"\left|\frac{\partial L}{\partial w_{1}}\right|"),
                named(
                    "|dL/da_L|·|a_0|",
                    r"\left|\frac{\partial L}{\partial a_{L}}\right|"
                    r"\,|a_{0}|",
                )
                * gamma**big_l,
            ),
            f"the chain-rule bound with $\\gamma = \\sup \\sigma' = {_frac(gamma)}$",
        )
    ]
    for d, v in values.items():
        steps.append(
            Step(
                f"$L = {d}$",
                sp.Eq(sp.Pow(gamma, d, evaluate=False), v, evaluate=False),
                f"${decimal_text(v, 4)}$",
            )
        )
    return Derivation(
        f"The vanishing bound $({_frac(gamma)})^L$",
        tuple(steps),
        sp.Tuple(*values.values()),
        data={"values": values, "floats": floats, "gamma": gamma},
    )


def relu_chain_example(
    depth: int = 10,
    weight: object = 2,
    x0: object = 1,
    target: object = 1,
    learning_rate: object = "0.001",
) -> Derivation:
    r"""An exploding gradient in a scalar ReLU chain, and the step that kills it.

    The chain a_l = relu(w_l a_{l−1}) (no bias), l = 1 … L, with every w_l = ``weight``, input
    a_0 = ``x0`` and squared loss ℓ = ½(a_L − y)². The chain rule (theory.md, "Symbolic
    facts") gives

        ∂ℓ/∂w_1 = ∂ℓ/∂a_L · ∏_{l=2..L} relu'(z_l) w_l · relu'(z_1) a_0,

    with ∂ℓ/∂a_L = a_L − y. Every active unit has relu' = 1, so each local factor is the
    weight itself: w = 2 over L = 10 layers gives a_L = 1024, ∂ℓ/∂a_L = 1023 and
    ∂ℓ/∂w_1 = 1023 · 2⁹ · 1 = 523 776. One SGD step with η = 0.001 moves w_1 by 523.776 and
    makes it negative; then z_1 < 0, a_1 = 0, every later unit is off, ℓ = ½y², and every
    gradient is exactly 0 (relu'(z) = 0 for z ≤ 0, and ∂ℓ/∂w_l = δ_l a_{l−1} = 0): the chain is
    dead and SGD cannot revive it (Lu et al. 2020, "Dying ReLU and initialization").

    ``result`` is ∂ℓ/∂w_1 before the step (exact). ``data``: ``"a_L"``, ``"dloss_da_L"``,
    ``"factors"`` (the local factors relu'(z_l) w_l, l = 2 … L), ``"first_factor"``
    (relu'(z_1) a_0), ``"loss"``, ``"new_weight"``, ``"new_loss"``, ``"new_gradients"``
    (∂ℓ/∂w_l for l = 1 … L after the step).

    >>> d = relu_chain_example()
    >>> d.result, d.data["new_weight"], d.data["new_gradients"][0]
    (523776, -65222/125, 0)
    """
    import sympy as sp

    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise GradmathError(f"`depth` (={depth!r}) must be an integer >= 2.")
    L = int(depth)
    w = exact_number("weight", weight)
    a0 = exact_number("x0", x0)
    y = exact_number("target", target)
    eta = exact_number("learning_rate", learning_rate, positive=True)

    def relu(z: Any) -> Any:
        return z if z > 0 else sp.Integer(0)

    def drelu(z: Any) -> Any:
        return sp.Integer(1) if z > 0 else sp.Integer(0)  # flat side at the kink, as autograd

    def run(ws: Sequence[Any]) -> tuple[Any, list[Any]]:
        a, zs, acts = a0, [], [a0]
        for wl in ws:
            z = wl * a
            a = relu(z)
            zs.append(z)
            acts.append(a)
        loss = (a - y) ** 2 / 2
        delta = a - y  # ∂ℓ/∂a_L
        grads = [sp.Integer(0)] * L
        for k in range(L - 1, -1, -1):  # layer k + 1
            delta_z = delta * drelu(zs[k])  # ∂ℓ/∂z_l
            grads[k] = delta_z * acts[k]  # ∂ℓ/∂w_l = ∂ℓ/∂z_l · a_{l−1}
            delta = delta_z * ws[k]  # ∂ℓ/∂a_{l−1}
        return (acts, zs, loss), grads

    weights = [w] * L
    (acts, zs, loss), grads = run(weights)
    a_L = acts[-1]
    factors = [drelu(zs[k]) * weights[k] for k in range(1, L)]
    first = drelu(zs[0]) * a0
    g1 = grads[0]
    new_w = w - eta * g1
    (new_acts, _, new_loss), new_grads = run([new_w, *weights[1:]])
    aL_sym = named("a_L", "a_{L}")
    dl_da = named("dl/da_L", r"\frac{\partial \ell}{\partial a_{L}}")
    dl_dw1 = named("dl/dw_1", r"\frac{\partial \ell}{\partial w_{1}}")
    steps: tuple[Step, ...] = (
        Step(
            f"forward pass: every unit is active, so $a_L = w^L a_0$ with $L = {L}$",
            sp.Eq(aL_sym, a_L),
            "$\\mathrm{relu}(z) = z$ for $z > 0$",
        ),
        Step(
            "the gradient of the loss $\\ell = \\frac{1}{2}(a_L - y)^2$ at the output",
            sp.Eq(dl_da, a_L - y),
            f"$a_L - y$ with $y = {sp.latex(y)}$",
        ),
        Step(
            f"the local factors $\\mathrm{{relu}}'(z_l)\\,w_l$ for $l = 2, \\dots, {L}$",
            sp.Eq(_times(*factors), sp.Mul(*factors), evaluate=False),
            "each active unit passes the gradient times its weight",
        ),
        Step(
            "the chain rule multiplies them",
            sp.Eq(dl_dw1, _times(a_L - y, sp.Mul(*factors), first), evaluate=False),
            f"$\\partial\\ell/\\partial a_L \\cdot \\prod_{{l\\ge2}} \\mathrm{{relu}}'(z_l) w_l "
            f"\\cdot \\mathrm{{relu}}'(z_1) a_0 = {sp.latex(g1)}$",
        ),
        Step(
            f"one SGD step with $\\eta = {_frac(eta)}$",
            sp.Eq(named("w_1'", "w_{1}'"), new_w),
            f"$w_1 - \\eta\\,\\partial\\ell/\\partial w_1 {decimal_text(new_w, 6)}$: the weight "
            "changes sign",
        ),
        Step(
            "the next forward pass: $z_1 < 0$ switches the first unit off",
            sp.Eq(named("a_L'", "a_{L}'"), new_acts[-1]),
            f"so every later unit is off and the loss is ${_frac(new_loss)}$",
        ),
        Step(
            "every gradient is now zero: the chain is dead",
            sp.Eq(named("dl/dw'", r"\frac{\partial \ell}{\partial w_{l}}"), sp.Integer(0)),
            "$\\mathrm{relu}'(z_1) = 0$, and $a_{l-1} = 0$ for $l \\ge 2$",
        ),
    )
    if any(g != 0 for g in new_grads):  # the story above holds only for a killing step
        steps = steps[:5]
    return Derivation(
        "An exploding gradient in a ReLU chain",
        steps,
        g1,
        data={
            "a_L": a_L,
            "dloss_da_L": a_L - y,
            "factors": tuple(factors),
            "first_factor": first,
            "loss": loss,
            "new_weight": new_w,
            "new_loss": new_loss,
            "new_gradients": tuple(new_grads),
        },
    )


def loss_scaling_example(
    gradient: object = "2e-8", scale: int = 2**16, dtype: Any = np.float16
) -> Derivation:
    r"""Why mixed-precision training multiplies the loss by S: a float16 gradient underflow.

    float16 has 11 significand bits and exponents down to −14 (smallest normal 2⁻¹⁴ ≈
    6.1·10⁻⁵, smallest subnormal 2⁻²⁴ ≈ 5.96·10⁻⁸, IEEE 754 binary16). A gradient entry
    below half the smallest subnormal rounds to 0: g = 2·10⁻⁸ is lost. Scaling the loss by S
    scales every gradient by S (the chain rule is linear in ∂ℓ): S·g = 2¹⁶·2·10⁻⁸ ≈ 1.31·10⁻³
    is a normal float16, kept with relative error ≤ 2⁻¹¹; dividing by S in float32 before
    the update recovers g (Micikevicius et al. 2018, "Mixed precision training", §3.2).
    S must keep S·max|g| below the largest float16 (65 504); dynamic loss scaling halves S
    when an overflow appears. Every claim is checked in NumPy arithmetic.

    ``result`` is the recovered gradient (the float32 value, as an exact rational). ``data``:
    ``"lost"`` (bool: g rounds to 0 in ``dtype``), ``"in_dtype"`` (g as ``dtype`` stores it),
    ``"scaled"`` (fl(S·g) exactly), ``"recovered"``, ``"relative_error"`` (|recovered − g|/g),
    ``"tiny"`` (smallest normal), ``"smallest_subnormal"``, ``"max"``.

    >>> d = loss_scaling_example()
    >>> d.data["lost"], float(d.data["relative_error"]) < 2.0**-11
    (True, True)
    """
    import sympy as sp

    from gradmath.render.latex import fmt_num

    dt = np.dtype(dtype)
    if dt.kind != "f" or dt.itemsize >= 4:
        raise GradmathError(f"`dtype` (={dtype!r}) must be a float type narrower than float32.")
    g = exact_number("gradient", gradient, positive=True)
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise GradmathError(f"`scale` (={scale!r}) must be a positive integer.")
    fi = np.finfo(dt)
    g16 = dt.type(float(g))
    with np.errstate(over="ignore"):  # an overflow is reported below, not warned about
        s16 = dt.type(float(scale) * float(g))  # the scaled gradient as the low format stores it
    if not np.isfinite(s16):
        raise GradmathError(f"`scale` (={scale}) overflows {dt.name} for this gradient.")
    recovered32 = np.float32(s16) / np.float32(scale)
    as_q = {k: _float_fraction(v) for k, v in
            {"g16": g16, "s16": s16, "rec": recovered32, "tiny": fi.tiny,
             "sub": fi.smallest_subnormal, "max": fi.max}.items()}  # fmt: skip
    rat = {k: sp.Rational(v.numerator, v.denominator) for k, v in as_q.items()}
    rel = abs(rat["rec"] - g) / g
    name = dt.name
    steps = (
        Step(
            f"the smallest positive {name} numbers",
            sp.Tuple(rat["tiny"], rat["sub"]),
            f"smallest normal $2^{{{fi.minexp}}} \\approx {fmt_num(float(fi.tiny), 3)}$, "
            f"smallest subnormal $2^{{{fi.minexp - fi.nmant}}} \\approx "
            f"{fmt_num(float(fi.smallest_subnormal), 3)}$",
        ),
        Step(
            f"a small gradient entry stored in {name}",
            sp.Eq(named("fl(g)", r"\mathrm{fl}(g)"), rat["g16"]),
            f"$g = {_repr_tex(float(g))}$ is below half the smallest subnormal"
            if rat["g16"] == 0
            else f"$g = {_repr_tex(float(g))}$ is representable",
        ),
        Step(
            f"scale the loss by $S = {scale}$: every gradient is scaled by $S$",
            sp.Eq(named("fl(Sg)", r"\mathrm{fl}(S g)"), rat["s16"]),
            f"$\\approx {fmt_num(float(s16), 4)}$, a normal {name} number",
        ),
        Step(
            "unscale in float32 before the update",
            sp.Eq(named("fl(Sg)/S", r"\mathrm{fl}(S g)/S"), rat["rec"]),
            f"relative error $\\approx {fmt_num(float(rel), 2)}$",
        ),
    )
    return Derivation(
        f"Loss scaling rescues a {name} gradient",
        steps,
        rat["rec"],
        data={
            "lost": bool(g16 == 0),
            "in_dtype": rat["g16"],
            "scaled": rat["s16"],
            "recovered": rat["rec"],
            "relative_error": rel,
            "tiny": rat["tiny"],
            "smallest_subnormal": rat["sub"],
            "max": rat["max"],
            "gradient": g,
            "scale": scale,
        },
    )
