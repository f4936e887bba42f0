"""The chain rule through a scalar chain of L layers: a product of local factors.

For the chain z_l = w_l a_{l−1} + b_l, a_l = φ(z_l) (l = 1 … L) and a loss L(a_L),

    ∂L/∂w_1 = ∂L/∂a_L · ∏_{l=2..L} φ'(z_l) w_l · φ'(z_1) a_0,

so with γ = sup|φ'| (:func:`gradmath.symbolic.derivative_bound`)

    |∂L/∂w_1| ≤ |∂L/∂a_L| · |a_0| · γ^L · ∏_{l=2..L} |w_l|

(theory.md, "Symbolic facts"; Pascanu, Mikolov & Bengio 2013, §2.1, for the matrix case).
w_1 does not appear on the right: it enters only through z_1.
"""

from __future__ import annotations

from typing import Any

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError, check_positive_int
from gradmath.symbolic.bounds import derivative, derivative_bound
from gradmath.symbolic.derivation import Derivation, Step, named

__all__ = ["MAX_DEPTH", "chain_rule", "compose_chain"]

#: Depth up to which :func:`chain_rule` re-derives the product with ``sympy.diff`` of the
#: composed chain (nesting deeper than a few dozen levels exhausts SymPy's recursion).
VERIFY_DEPTH = 6
#: Deepest chain built: one explicit factor per layer, so time and LaTeX size grow with the
#: depth (SymPy needs seconds at 100; at 10,000, γ^L alone has 6,000 digits). Deeper chains
#: are refused; the bound's size γ^L is printed by ``derivative_bound`` and mean-field theory.
MAX_DEPTH = 100


def _check_depth(depth: object) -> int:
    d = check_positive_int("depth", depth, what="a positive integer (layers >= 1)")
    if d > MAX_DEPTH:
        raise GradmathError(
            f"`depth` (={d!r}) is above {MAX_DEPTH}: the chain is written out with one factor "
            f"per layer, which SymPy cannot build or print quickly that deep. Use depth <= "
            f"{MAX_DEPTH} for the symbolic chain; its bound is γ^L times the weights (log10 "
            "of γ^L = L·log10 γ), and meanfield.predict handles depth 10,000 in log space."
        )
    return d


def _symbols(depth: int) -> dict[str, Any]:
    import sympy as sp

    def seq(name: str, start: int) -> tuple[Any, ...]:
        return tuple(sp.Symbol(f"{name}_{i}", real=True) for i in range(start, depth + 1))

    return {"a": seq("a", 0), "w": seq("w", 1), "b": seq("b", 1), "z": seq("z", 1)}


def compose_chain(depth: int, phi: Any) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """(a_L, (z_1 … z_L), symbols) with ``phi`` (a callable on SymPy expressions) composed
    ``depth`` times: z_l = w_l a_{l−1} + b_l nested, a_L = φ(z_L)."""
    s = _symbols(_check_depth(depth))
    a, zs = s["a"][0], []
    for w, b in zip(s["w"], s["b"], strict=True):
        zs.append(w * a + b)
        a = phi(zs[-1])
    return a, tuple(zs), s


def _local_product(depth: int, dphi: Any, zs: tuple[Any, ...], s: dict[str, Any]) -> Any:
    """a_0 · φ'(z_1) · ∏_{l≥2} φ'(z_l) w_l (without the loss factor)."""
    import sympy as sp

    factors = [s["a"][0], dphi(zs[0])]
    factors += [dphi(zs[i]) * s["w"][i] for i in range(1, depth)]
    return sp.Mul(*factors)


def _verify_generic(depth: int) -> bool:
    """sympy.diff of the composed chain with an undefined φ equals the product, exactly."""
    import sympy as sp

    phi, dphi = sp.Function("varphi"), sp.Function(r"\varphi'")
    loss = sp.Function("L")
    a_last, zs, s = compose_chain(depth, phi)
    direct = sp.diff(loss(a_last), s["w"][0])
    # SymPy writes φ'(e) as Subs(Derivative(φ(ξ), ξ), ξ, e): name it φ'(e).
    direct = direct.replace(
        lambda e: isinstance(e, sp.Subs) and isinstance(e.expr, sp.Derivative),
        lambda e: dphi(e.point[0]),
    )
    product = sp.Derivative(loss(a_last), a_last) * _local_product(depth, dphi, zs, s)
    return bool(sp.expand(direct - product) == 0)


def chain_rule(depth: int, act: str | Activation = "sigmoid", **params: float) -> Derivation:
    r"""∂L/∂w_1 of the scalar chain a_l = φ(w_l a_{l−1} + b_l), and its bound by γ = sup|φ'|.

    ``result`` is ∂L/∂w_1 = ∂L/∂a_L · a_0 · ∏_{l=1..L} φ'(z_l) · ∏_{l=2..L} w_l with φ' in
    the closed form of :func:`derivative` (an exact expression in the symbols ``a_0``,
    ``w_l``, ``z_l`` and the loss derivative). ``data``: ``"generic"`` (the same with an
    undefined φ'), ``"gamma"`` (sup|φ'|, from :func:`derivative_bound`), ``"bound"``
    (|∂L/∂a_L|·|a_0|·γ^L·∏_{l≥2}|w_l|; ``"bound_exact"`` is False when γ is a certified
    numeric bound, SiLU), ``"verified"`` (True when the product was re-derived
    by ``sympy.diff`` of the composed chain: depth <= ``VERIFY_DEPTH``), ``"symbols"``.

    Source: theory.md "Symbolic facts"; Pascanu, Mikolov & Bengio (2013), §2.1.

    >>> d = chain_rule(2, "sigmoid")
    >>> d.data["bound"]
    Abs(a_0)*Abs(w_2)*Abs(Derivative(L(a_2), a_2))/16
    """
    import sympy as sp

    depth = _check_depth(depth)
    a = activation(act, **params)
    s = _symbols(depth)
    zs = s["z"]
    a_last = s["a"][-1]
    loss = sp.Function("L")
    dloss = sp.Derivative(loss(a_last), a_last)
    generic_dphi = sp.Function(r"\varphi'")
    gen = dloss * _local_product(depth, generic_dphi, zs, s)
    d = derivative(a)
    dphi_z = d.result
    dphi_book = d.data["textbook"]
    z = a.symbol()
    grad = dloss * _local_product(depth, lambda zl: dphi_z.subs(z, zl), zs, s)
    book = dloss * _local_product(depth, lambda zl: dphi_book.subs(z, zl), zs, s)
    bound_d = derivative_bound(a)
    gamma = bound_d.result
    w_abs = sp.Mul(*(sp.Abs(w) for w in s["w"][1:]))
    bound = sp.Abs(dloss) * sp.Abs(s["a"][0]) * gamma**depth * w_abs
    verified = depth <= VERIFY_DEPTH and _verify_generic(depth)
    zl, wl, al, al1, bl = sp.symbols("z_l w_l a_l a_{l-1} b_l")
    varphi = sp.Function("varphi")
    grad_sym = named("dL/dw_1", r"\frac{\partial L}{\partial w_{1}}")
    steps = [
        Step(
            "the chain, $l = 1$" if depth == 1 else f"the chain, $l = 1, \\dots, {depth}$",
            sp.Tuple(sp.Eq(zl, wl * al1 + bl), sp.Eq(al, varphi(zl))),
            "a scalar unit per layer; loss $L(a_L)$",
        ),
        Step(
            "local factors",
            sp.Tuple(
                sp.Eq(
                    named("da_l/da_{l-1}", r"\frac{\partial a_{l}}{\partial a_{l-1}}"),
                    generic_dphi(zl) * wl,
                ),
                sp.Eq(
                    named("da_1/dw_1", r"\frac{\partial a_{1}}{\partial w_{1}}"),
                    generic_dphi(zs[0]) * s["a"][0],
                ),
            ),
            "chain rule through $a_l = \\varphi(w_l a_{l-1} + b_l)$",
        ),
        Step(
            "chain rule: the product of the local factors",
            sp.Eq(grad_sym, gen, evaluate=False),
            (
                f"checked exactly against sympy.diff of the composed chain (depth {depth})"
                if verified
                else "the product of the local factors, layer by layer"
            ),
        ),
        Step(
            f"with φ = {a.name}",
            sp.Eq(grad_sym, book, evaluate=False),
            f"$\\varphi'$ from the derivative of {a.name}",
        ),
        Step(
            f"$\\gamma = \\sup|\\varphi'|$ for {a.name}",
            sp.Eq(sp.Symbol("gamma"), gamma, evaluate=False),
            bound_d.data["where"],
        ),
        Step(
            "bound: each $|\\varphi'(z_l)|$ is at most $\\gamma$",
            sp.Le(sp.Abs(grad_sym), bound),
            "vanishes geometrically when $\\gamma|w_l| < 1$ in every layer; can explode when "
            "$\\gamma|w_l| > 1$",
        ),
    ]
    return Derivation(
        title=f"The chain rule through {depth} {a.name} layer{'s' if depth > 1 else ''}",
        steps=tuple(steps),
        result=grad,
        data={
            "generic": gen,
            "textbook": book,
            "gamma": gamma,
            "bound": bound,
            "bound_exact": bound_d.exact,
            "verified": verified,
            "symbols": s,
        },
    )
