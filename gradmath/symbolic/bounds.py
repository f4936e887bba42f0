"""φ'(z) in textbook closed form, and the supremum of |φ'(z)| over the reals, proved.

The supremum γ = sup_z |φ'(z)| is the factor that bounds every local factor φ'(z_l)·w_l of the
chain rule (theory.md, "Symbolic facts"; Pascanu, Mikolov & Bengio 2013, §2.1 use γ = 1/4 for
the sigmoid and γ = 1 for tanh). :func:`derivative_bound` proves it the way a lecture would:

1. split ℝ at the activation's kinks into open pieces (and the kink points themselves, where
   φ' takes the value of the catalogue's convention, relu'(0) = 0 as in PyTorch);
2. on each open piece φ' is smooth: a constant is its own supremum; otherwise the critical
   points are the real solutions of φ''(z) = 0 and the one-sided limits at the ends are taken;
3. a continuous function on an open interval whose |·| has a larger value than its limits at
   both ends attains its supremum at an interior local extremum, i.e. a critical point; so
   sup |φ'| is the largest of |φ'| at the critical points, at the kink points and the limits,
   and it is attained exactly where a critical or kink value (or a constant piece) reaches it.

Every number is exact (SymPy) except where the critical points are roots of a transcendental
equation (SiLU): there the root is enclosed rigorously with interval arithmetic (mpmath.iv)
and the bound is rounded up; the Derivation then has ``exact=False`` and ``data["enclosure"]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError
from gradmath.symbolic.derivation import Derivation, Step, decimal_text

__all__ = ["derivative", "derivative_bound"]


def _resolve(act: str | Activation, params: dict[str, float]) -> Activation:
    return activation(act, **params)


def _fn(name: str) -> Any:
    import sympy as sp

    return sp.Function(name)


# --------------------------------------------------------------------------- derivative


@dataclass(frozen=True)
class _Textbook:
    """φ'(z) written the way textbooks do, with named functions standing for φ itself.

    ``form`` uses placeholders (σ(z), Φ(z), …); ``explicit`` substitutes them so the result
    is an expression in ``z`` only; ``identity`` is the one step that turns SymPy's raw
    derivative into the textbook form.
    """

    form: Any
    explicit: Any
    identity: Step | None
    why: str


def _sigma_parts(z: Any) -> tuple[Any, Any]:
    import sympy as sp

    sigma = _fn("sigma")(z)
    return sigma, 1 / (1 + sp.exp(-z))


def _textbook(act: Activation, raw: Any) -> _Textbook | None:
    """The textbook form of φ' for the named smooth activations (None: SymPy's own is it)."""
    import sympy as sp

    z = act.symbol()
    sigma, sig = _sigma_parts(z)
    eq = sp.Eq
    if act.name == "sigmoid":
        form = sigma * (1 - sigma)
        ident = Step(
            "since $1 - \\sigma(z) = e^{-z}/(1 + e^{-z})$",
            eq(sp.exp(-z) / (1 + sp.exp(-z)), 1 - sigma, evaluate=False),
            "multiply $1 - \\sigma = 1 - 1/(1 + e^{-z})$ out",
        )
        why = "the logistic identity $\\sigma' = \\sigma(1 - \\sigma)$"
        return _Textbook(form, form.subs(sigma, sig), ident, why)
    if act.name == "tanh":
        form = 1 - sp.tanh(z) ** 2
        ident = Step(
            "since $\\operatorname{sech}^2 = 1 - \\tanh^2$",
            eq(1 / sp.cosh(z) ** 2, form, evaluate=False),
            "divide $\\cosh^2 - \\sinh^2 = 1$ by $\\cosh^2$",
        )
        why = "$\\tanh' = \\operatorname{sech}^2 = 1 - \\tanh^2$"
        return _Textbook(form, form, ident, why)
    if act.name == "softplus":
        ident = Step(
            "divide numerator and denominator by $e^z$",
            eq(sp.exp(z) / (1 + sp.exp(z)), sigma, evaluate=False),
            "$e^z/(1 + e^z) = 1/(1 + e^{-z})$",
        )
        return _Textbook(sigma, sig, ident, "the derivative of softplus is the logistic sigmoid")
    if act.name == "silu":
        form = sigma * (1 + z * (1 - sigma))
        ident = Step(
            "product rule on $z\\,\\sigma(z)$ with $\\sigma' = \\sigma(1 - \\sigma)$",
            eq(sp.Derivative(z * sigma, z), sigma + z * sigma * (1 - sigma), evaluate=False),
            "$(z\\sigma)' = \\sigma + z\\sigma'$",
        )
        why = "$\\mathrm{SiLU}'(z) = \\sigma(z)\\,(1 + z(1 - \\sigma(z)))$"
        return _Textbook(form, form.subs(sigma, sig), ident, why)
    if act.name == "gelu":
        big_phi, small_phi = _fn("Phi")(z), _fn("phi")(z)
        cdf = (1 + sp.erf(z / sp.sqrt(2))) / 2
        pdf = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
        form = big_phi + z * small_phi
        ident = Step(
            "product rule on $z\\,\\Phi(z)$, with $\\Phi' = \\phi$ the standard normal density",
            eq(small_phi, pdf, evaluate=False),
            "$\\Phi(z) = (1 + \\operatorname{erf}(z/\\sqrt{2}))/2$, so "
            "$\\Phi'(z) = e^{-z^2/2}/\\sqrt{2\\pi}$",
        )
        explicit = form.subs({big_phi: cdf, small_phi: pdf})
        why = "$\\mathrm{GELU}'(z) = \\Phi(z) + z\\,\\phi(z)$"
        return _Textbook(form, explicit, ident, why)
    if act.name == "erf":
        form = 2 * sp.exp(-(z**2)) / sp.sqrt(sp.pi)
        why = "$\\operatorname{erf}'(z) = 2e^{-z^2}/\\sqrt{\\pi}$ by definition of erf"
        return _Textbook(form, form, None, why)
    if act.name == "softsign":
        form = 1 / (1 + sp.Abs(z)) ** 2
        ident = Step(
            "$z\\,\\mathrm{sign}(z) = |z|$ for real $z$",
            eq(raw, form, evaluate=False),
            "common denominator $(1 + |z|)^2$",
        )
        return _Textbook(form, form, ident, "$\\mathrm{softsign}'(z) = 1/(1 + |z|)^2$")
    return None


def _kink_step(act: Activation, deriv: Any) -> Step | None:
    import sympy as sp

    if not act.kinks:
        return None
    z, f = act.symbol(), _phi_tex(act)
    values = {k: deriv.subs(z, _exact_number(k)) for k in act.kinks}
    at = ", ".join(f"${f}'({_num(k)}) = {sp.latex(v)}$" for k, v in values.items())
    return Step(
        f"convention at the kink{'s' if len(values) > 1 else ''}: {at}",
        None,
        f"where ${f}'$ jumps it has no classical value; gradmath, like PyTorch's autograd, "
        "takes the value of the branch that contains the kink "
        "(activations.py: $\\mathrm{relu}'(0) = 0$)",
    )


def _num(k: float) -> str:
    return str(int(k)) if float(k).is_integer() else repr(k)


def _exact_number(k: float) -> Any:
    import sympy as sp

    return sp.Rational(repr(float(k)))


def _phi_symbol(act: Activation) -> Any:
    return _fn("sigma" if act.name == "sigmoid" else "varphi")(act.symbol())


def _phi_tex(act: Activation) -> str:
    """The LaTeX of φ in the step texts: the symbol the displayed expressions use."""
    return "\\sigma" if act.name == "sigmoid" else "\\varphi"


def _dphi_at(act: Activation, point: Any) -> Any:
    """φ'(point) as a named value (σ'(0), φ'(√2)) for the steps."""
    return _fn(r"\sigma'" if act.name == "sigmoid" else r"\varphi'")(point)


def derivative(act: str | Activation, **params: float) -> Derivation:
    r"""φ'(z) of a catalogue activation, in textbook closed form.

    σ' = σ(1 − σ) (logistic), tanh' = 1 − tanh², softplus' = σ, SiLU' = σ(1 + z(1 − σ)),
    GELU' = Φ + zφ (Hendrycks & Gimpel 2016), erf' = 2e^{−z²}/√π, softsign' = 1/(1 + |z|)²,
    and the piecewise ones (ReLU, leaky ReLU, ELU, SELU, hard tanh) as a ``Piecewise`` whose
    conditions carry the kink convention of :mod:`gradmath.activations` (relu'(0) = 0).

    ``result`` is an expression in ``z`` only that equals ``sympy.diff(act.expr, z)``
    exactly; ``data["textbook"]`` is the same with σ(z), Φ(z), φ(z) kept as named functions
    (``data["raw"]`` is SymPy's own derivative).

    >>> derivative("sigmoid").data["textbook"]
    (1 - sigma(z))*sigma(z)
    >>> derivative("relu").result
    Piecewise((0, z <= 0), (1, True))
    """
    import sympy as sp

    a = _resolve(act, params)
    z = a.symbol()
    phi = _phi_symbol(a)
    raw = sp.diff(a.expr, z)
    book = _textbook(a, raw)
    dphi = sp.Derivative(phi, z)
    steps = [
        Step(f"definition of {a.name}", sp.Eq(phi, a.expr, evaluate=False), a.reference),
        Step(
            "differentiate", sp.Eq(dphi, raw, evaluate=False), "chain, quotient and product rules"
        ),
    ]
    if book is None:
        form, result, why = raw, raw, "SymPy's derivative is already the closed form"
    else:
        form, result, why = book.form, book.explicit, book.why
        if book.identity is not None:
            steps.append(book.identity)
        steps.append(Step("textbook form", sp.Eq(dphi, form, evaluate=False), why))
    kink = _kink_step(a, raw)
    if kink is not None:
        steps.append(kink)
    return Derivation(
        title=f"The derivative of {a.name}",
        steps=tuple(steps),
        result=result,
        data={"textbook": form, "raw": raw, "activation": a},
    )


# --------------------------------------------------------------------------- bound


@dataclass(frozen=True)
class Candidate:
    """A value that |φ'| takes (``attained``) or approaches, and where."""

    value: Any  # |φ'| there, exact (or the upper end of an enclosure when certified)
    where: Any  # a SymPy Set when attained; a text like "z → ∞" when approached
    attained: bool


_Candidate = Candidate


def _pieces(act: Activation) -> tuple[list[Any], list[Any]]:
    """The open intervals between the kinks, and the kink points (exact)."""
    import sympy as sp

    ks = sorted(_exact_number(k) for k in act.kinks)
    ends = [-sp.oo, *ks, sp.oo]
    return [sp.Interval.open(lo, hi) for lo, hi in itertools.pairwise(ends)], ks


def _on_piece(g: Any, piece: Any, z: Any) -> Any:
    """φ' restricted to an open interval on which it is smooth."""
    import sympy as sp

    g = sp.piecewise_fold(g)
    if isinstance(g, sp.Piecewise):
        for expr, cond in g.args:
            cset = cond.as_set()
            if piece.is_subset(cset):
                return expr
            if piece.intersect(cset) != sp.S.EmptySet:
                break  # a branch boundary inside the piece: the kinks list is incomplete
        raise GradmathError(f"φ' = {g} changes branch inside {piece}; list it in `kinks`.")
    if piece.inf >= 0:
        return sp.simplify(sp.refine(g, sp.Q.positive(z)))
    if piece.sup <= 0:
        return sp.simplify(sp.refine(g, sp.Q.negative(z)))
    return g


def _describe(s: Any) -> str:
    """A SymPy set of reals as words with ``$…$`` math: ``$z > 0$``, ``$-1 < z < 1$``."""
    import sympy as sp

    if s == sp.S.Reals:
        return "every real $z$"
    if isinstance(s, sp.ConditionSet):
        return f"the root of ${sp.latex(s.condition)}$ with {_describe(s.base_set)}"
    if isinstance(s, sp.FiniteSet):
        pts = sorted(s, key=lambda p: float(p))
        return " and ".join(f"$z = {sp.latex(p)}$" for p in pts)
    if isinstance(s, sp.Union):
        return " or ".join(_describe(a) for a in s.args)
    if isinstance(s, sp.Interval):
        lo, hi = s.inf, s.sup
        le = "\\le"
        left = "" if lo == -sp.oo else f"{sp.latex(lo)} {'<' if s.left_open else le} "
        right = "" if hi == sp.oo else f" {'<' if s.right_open else le} {sp.latex(hi)}"
        if left and not right:
            return "$z " + (">" if s.left_open else "\\ge") + f" {sp.latex(lo)}$"
        return f"${left}z{right}$"
    return f"${sp.latex(s)}$"


def _on(piece: Any) -> str:
    """ "on $\\mathbb{R}$" or "on $z > 0$": the piece a step is about."""
    import sympy as sp

    return "on $\\mathbb{R}$" if piece == sp.S.Reals else f"on {_describe(piece)}"


def _side(lo_or_hi: Any, left: bool) -> str:
    """A one-sided limit point as plain text (``z → 0⁻``): a key, and ``data["approached"]``."""
    import sympy as sp

    if lo_or_hi == sp.oo:
        return "z → ∞"
    if lo_or_hi == -sp.oo:
        return "z → −∞"
    return f"z → {sp.sstr(lo_or_hi)}{'⁺' if left else '⁻'}"


def _side_tex(lo_or_hi: Any, left: bool) -> str:
    """The same limit point as math for the step texts: ``$z \\to 0^{-}$``."""
    import sympy as sp

    if lo_or_hi in (sp.oo, -sp.oo):
        return f"$z \\to {sp.latex(lo_or_hi)}$"
    return f"$z \\to {sp.latex(lo_or_hi)}^{{{'+' if left else '-'}}}$"


def _limits(e: Any, piece: Any, z: Any) -> list[tuple[Any, str, str]]:
    """(limit, the end as plain text, the end as math) at both ends of an open piece."""
    import sympy as sp

    out = []
    for end, left in ((piece.inf, True), (piece.sup, False)):
        if end in (sp.oo, -sp.oo):
            lim = sp.limit(e, z, end)
        else:
            lim = sp.limit(e, z, end, "+" if left else "-")
        lim = sp.nsimplify(lim) if lim.is_Float else lim
        out.append((lim, _side(end, left), _side_tex(end, left)))
    return out


def _eq(a: Any, b: Any) -> bool:
    import sympy as sp

    return bool(sp.simplify(a - b) == 0)


def _max(values: list[Any]) -> Any:
    best = values[0]
    for v in values[1:]:
        if not _eq(v, best) and bool(v > best):
            best = v
    return best


def _rationalise(expr: Any) -> Any:
    """Floats (SELU's published 32-digit constants) as the exact decimals they print as."""
    import sympy as sp

    return expr.xreplace({f: sp.Rational(str(f)) for f in expr.atoms(sp.Float)})


#: Certifiers for activations whose critical points SymPy cannot solve for exactly:
#: (act, φ' on the piece, piece) -> (candidates, steps, data).
Certifier = Callable[[Activation, Any, Any], tuple[list[Candidate], list[Step], dict[str, Any]]]
_Certifier = Certifier


def _silu_certifier(
    act: Activation, e: Any, piece: Any
) -> tuple[list[_Candidate], list[Step], dict[str, Any]]:
    """SiLU: the critical points ±z* solve z·tanh(z/2) = 2; φ'(±z*) = (2 ± z*)/4 exactly."""
    import mpmath
    import sympy as sp

    z = act.symbol()
    sigma, sig = _sigma_parts(z)
    # z·tanh(z/2) = 2 times (e^z + 1) > 0: (z − 2)e^z − z − 2 = 0, the same signs.
    lo, hi = _enclose_root(lambda x: (x - 2) * mpmath.iv.exp(x) - x - 2, mpmath.mpf(2), 3)
    a, b = _dyadic(lo), _dyadic(hi)  # mpf endpoints are dyadic rationals: exact
    # σ at a critical point: z(2σ − 1) = 2 ⇒ σ = (z + 2)/(2z); then σ(1 + z(1 − σ)) = (z + 2)/4.
    at_crit = sp.simplify((sigma * (1 + z * (1 - sigma))).subs(sigma, (z + 2) / (2 * z)))
    zstar = sp.Symbol("z_*", positive=True)
    crit_eq = sp.Eq(z * sp.tanh(z / 2), 2)
    ulp = sp.Rational(1, 10**12)
    upper = sp.ceiling((b + 2) / 4 / ulp) * ulp  # rounded up: still an upper bound
    steps = [
        Step(
            "critical points: $\\varphi''(z) = \\sigma(1-\\sigma)\\,(2 + z(1 - 2\\sigma)) = 0$",
            crit_eq,
            "$\\sigma(1 - \\sigma) > 0$, and $z(2\\sigma(z) - 1) = z\\tanh(z/2)$; no closed form "
            "(SymPy: ConditionSet)",
        ),
        Step(
            "$z\\tanh(z/2)$ is even and strictly increasing on $z > 0$ from $0$ to $\\infty$",
            None,
            "its derivative $\\tanh(z/2) + (z/2)\\operatorname{sech}^2(z/2)$ is positive for "
            "$z > 0$: exactly two critical points $\\pm z_*$",
        ),
        Step(
            "value at a critical point, using $\\sigma = (z+2)/(2z)$ there",
            sp.Eq(_dphi_at(act, z), at_crit, evaluate=False),
            "substitute $\\sigma$ into $\\sigma(1 + z(1 - \\sigma))$ (exact algebra)",
        ),
        Step(
            "certified enclosure of $z_*$",
            sp.And(sp.Le(a, zstar), sp.Le(zstar, b)),
            "bisection with interval arithmetic (mpmath.iv): the sign of $z\\tanh(z/2) - 2$ is "
            "proved at both ends",
        ),
        Step(
            "so $\\varphi'(z_*) = (z_* + 2)/4$ lies in",
            sp.Interval((a + 2) / 4, (b + 2) / 4),
            "and $|\\varphi'(-z_*)| = (z_* - 2)/4 < 1/10$",
        ),
    ]
    cands = [
        _Candidate(upper, sp.ConditionSet(z, crit_eq, sp.Interval.open(0, sp.oo)), True),
        _Candidate((b - 2) / 4, sp.ConditionSet(z, crit_eq, sp.Interval.open(-sp.oo, 0)), True),
    ]
    data = {"enclosure": ((a + 2) / 4, (b + 2) / 4), "argmax_enclosure": (a, b)}
    del sig, e, piece
    return cands, steps, data


_CERTIFIERS: dict[str, _Certifier] = {"silu": _silu_certifier}


def register_certifier(name: str, certifier: Certifier | None) -> None:
    """Give :func:`derivative_bound` a certified bound for the activation ``name`` (``None``
    removes it): ``certifier(act, φ' on the piece, piece)`` returns the :class:`Candidate`
    values of |φ'| at the critical points SymPy cannot solve for, the proof's steps, and
    extra ``data``; a ``data["enclosure"]`` (lo, hi) of the sup marks the bound ``exact=False``.
    """
    if certifier is None:
        _CERTIFIERS.pop(name, None)
    else:
        _CERTIFIERS[name] = certifier


def _dyadic(x: Any) -> Any:
    import sympy as sp

    man, exp = x.man_exp
    return sp.Integer(man) * sp.Integer(2) ** exp


def _enclose_root(f: Callable[[Any], Any], lo: Any, hi: Any, width: float = 1e-14) -> Any:
    """A bracket [lo, hi] of a sign change of f, each sign proved by interval arithmetic.

    f is evaluated on point intervals with mpmath.iv (outward rounding at any precision, so
    a sign it reports is proved); the bisection points are dyadic and exact at 100 bits.
    """
    import mpmath

    with mpmath.workprec(100):

        def sign(x: Any) -> int:
            v = f(mpmath.iv.mpf(x))
            if v.a > 0:
                return 1
            if v.b < 0:
                return -1
            raise GradmathError(f"Cannot prove the sign of the critical-point equation at {x}.")

        s_lo = sign(lo)
        if s_lo == sign(hi):
            raise GradmathError(f"No sign change of the critical-point equation on [{lo}, {hi}].")
        while hi - lo > width:
            mid = (lo + hi) / 2  # exact at this precision: dyadic
            if sign(mid) == s_lo:
                lo = mid
            else:
                hi = mid
    return lo, hi


def _critical_steps(
    a: Activation, e: Any, piece: Any, phi: Any, cands: list[_Candidate], data: dict[str, Any]
) -> list[Step]:
    """Critical points of φ' on an open piece: their values join ``cands``; the steps."""
    import sympy as sp

    z, f = a.symbol(), _phi_tex(a)
    e2 = sp.diff(e, z)
    crit = sp.solveset(e2, z, piece)
    steps = [
        Step(
            f"{_on(piece)}, critical points of ${f}'$ solve ${f}''(z) = 0$",
            sp.Eq(sp.Derivative(phi, (z, 2)), sp.simplify(e2), evaluate=False),
            f"${f}'$ is smooth there",
        )
    ]
    if isinstance(crit, (sp.FiniteSet, sp.EmptySet.__class__)):
        steps.append(Step("critical points", crit, "solveset over the reals"))
        for c in crit:
            v = sp.simplify(e.subs(z, c))
            e3 = sp.simplify(sp.diff(e2, z).subs(z, c))
            kind = "maximum" if e3 < 0 else "minimum" if e3 > 0 else "critical point"
            steps.append(
                Step(
                    f"at $z = {sp.latex(c)}$: local {kind} of ${f}'$",
                    sp.Eq(_dphi_at(a, c), v, evaluate=False),
                    f"second-derivative test: ${f}'''({sp.latex(c)}) = {sp.latex(e3)}$",
                )
            )
            cands.append(_Candidate(sp.Abs(v), sp.FiniteSet(c), True))
        return steps
    if a.name in _CERTIFIERS:
        more, extra_steps, extra = _CERTIFIERS[a.name](a, e, piece)
        cands += more
        data.update(extra)
        return steps + extra_steps
    raise GradmathError(
        f"Cannot solve φ''(z) = 0 for {a.name!r} exactly ({crit}), and no certified "
        "bound is implemented for it."
    )


def derivative_bound(act: str | Activation, **params: float) -> Derivation:
    r"""γ = sup_z |φ'(z)| over the reals, where it is attained, and the proof.

    Theory.md ("Symbolic facts"): σ' ≤ 1/4 with equality at z = 0, tanh' ≤ 1 with equality at
    z = 0; the chain-rule bound and Pascanu et al. (2013, §2.1) use γ. The catalogue gives
    (exact): sigmoid 1/4 at 0; tanh, softsign 1 at 0; erf 2/√π at 0; relu 1 on z > 0;
    leaky_relu max(1, slope); elu max(1, α); selu λ·α (the negative side, reached at z = 0
    only by the kink convention, approached as z → 0⁻) against λ; hard_tanh 1 on (−1, 1);
    linear 1 everywhere; softplus 1, not attained (z → ∞); gelu (1 + erf 1)/2 + 1/(e√π) ≈
    1.1289 at z = √2. SiLU's maximum (z* + 2)/4 ≈ 1.0998 at the root z* ≈ 2.3994 of
    z·tanh(z/2) = 2 is a certified upper bound (``exact=False``).

    The method is in the module docstring. ``result`` is γ; ``data`` holds ``"attained"``
    (bool), ``"attained_at"`` (a SymPy set, empty when not attained), ``"approached"``
    (limits, as text, where γ is approached but not attained), ``"where"`` (words, with
    ``$…$`` math like every step text: it is the reason of a chain_rule step), and for
    a certified bound ``"enclosure"`` (lo, hi) of the true γ and ``"argmax_enclosure"``.
    SELU's constants are read as the exact decimals Klambauer et al. (2017, eq. 14) print.

    >>> derivative_bound("sigmoid").result
    1/4
    >>> print(derivative_bound("softplus").data["where"])
    not attained; approached as $z \to \infty$
    """
    import sympy as sp

    a = _resolve(act, params)
    z = a.symbol()
    d = derivative(a)
    g = _rationalise(d.data["raw"])
    phi = _phi_symbol(a)
    dphi = sp.Derivative(phi, z)
    steps = [Step("the derivative", sp.Eq(dphi, d.data["textbook"], evaluate=False), d.title)]
    if g != d.data["raw"]:
        steps.append(
            Step(
                "exact constants",
                sp.Eq(dphi, g, evaluate=False),
                "the published decimals read as exact rationals",
            )
        )
    cands: list[_Candidate] = []
    data: dict[str, Any] = {}
    pieces, kinks = _pieces(a)
    side_limits: dict[str, Any] = {}  # "z → 0⁻" -> limit: tells jumps from smooth kinks
    side_tex: dict[str, str] = {}  # "z → 0⁻" -> "$z \\to 0^{-}$"
    f = _phi_tex(a)
    for piece in pieces:
        e = _on_piece(g, piece, z)
        limits = _limits(e, piece, z)
        side_limits.update((where, lim) for lim, where, _ in limits)
        side_tex.update((where, tex) for _, where, tex in limits)
        if not e.has(z):
            steps.append(
                Step(
                    f"{_on(piece)}, ${f}'$ is constant",
                    sp.Eq(dphi, e, evaluate=False),
                    "its supremum is attained on the whole piece",
                )
            )
            cands.append(_Candidate(sp.Abs(e), piece, True))
            continue
        steps += _critical_steps(a, e, piece, phi, cands, data)
        for lim, where, tex in limits:
            steps.append(
                Step(
                    f"limit as {tex}",
                    lim,
                    "an end of the piece",
                )
            )
            cands.append(_Candidate(sp.Abs(lim), where, False))
    jumps = set()
    for k in kinks:
        v = g.subs(z, k)
        smooth = _eq(side_limits[_side(k, False)], v) and _eq(side_limits[_side(k, True)], v)
        if not smooth:
            jumps.add(k)
        steps.append(
            Step(
                f"at the kink $z = {sp.latex(k)}$",
                sp.Eq(_dphi_at(a, k), v, evaluate=False),
                f"${f}'$ is continuous there"
                if smooth
                else f"${f}'$ jumps there: the value is the catalogue's convention",
            )
        )
        cands.append(_Candidate(sp.Abs(v), sp.FiniteSet(k), True))

    gamma = _max([c.value for c in cands])
    top = [c for c in cands if _eq(c.value, gamma)]
    attained_at = sp.Union(*(c.where for c in top if c.attained))
    # A limit at a kink where φ' is continuous is just the value there: not worth saying.
    smooth_sides = {_side(k, s) for k in kinks if k not in jumps for s in (True, False)}
    approached = tuple(sorted({c.where for c in top if not c.attained} - smooth_sides))
    attained = attained_at != sp.S.EmptySet
    where = f"attained at {_describe(attained_at)}" if attained else "not attained"
    conventional = sorted(k for k in jumps if k in attained_at)
    if conventional:
        pts = " and ".join(f"$z = {sp.latex(k)}$" for k in conventional)
        where += f" (by the kink convention at {pts})"
    if approached:
        where += "; approached as " + " and ".join(side_tex[s] for s in approached)
    exact = "enclosure" not in data
    steps.append(
        Step(
            "the supremum is the largest candidate" + ("" if exact else " (rounded up)"),
            sp.Eq(sp.Symbol("gamma"), gamma, evaluate=False),
            f"${decimal_text(gamma, 6)}$, {where}; on each piece ${f}'$ is continuous, "
            f"so an interior supremum of $|{f}'|$ is a critical point",
        )
    )
    data.update(
        {
            "sup": gamma,
            "attained": attained,
            "attained_at": attained_at,
            "approached": approached,
            "where": where,
        }
    )
    return Derivation(
        title=f"The supremum of $|{f}'|$ for {a.name}",
        steps=tuple(steps),
        result=gamma,
        exact=exact,
        data=data,
    )
