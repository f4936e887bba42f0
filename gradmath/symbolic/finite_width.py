"""Why a finite ReLU net fluctuates: E[X²] = 1 + 5/n for the per-layer squared-norm ratio.

Hanin (2018), "Which neural net architectures give rise to exploding and vanishing gradients?",
§3 and Theorem 1; Hanin & Nica (2019), Theorem 1. With He weights W_ij ~ N(0, 2/n) (width n,
zero bias), the squared-norm ratio of one layer is X = (2/n)·χ²_K with K ~ Binomial(n, ½) the
number of active units; E[X] = 1, so the mean is preserved exactly, but E[X²] = 1 + 5/n, so over
L independent layers E‖x^L‖⁴/(E‖x^L‖²)² = (1 + 5/n)^L grows with depth/width.
"""

from __future__ import annotations

from gradmath.symbolic.derivation import Derivation, Step, named

__all__ = ["relu_fluctuation"]


def relu_fluctuation() -> Derivation:
    r"""Derive E[X] = 1 and E[X²] = 1 + 5/n for X = ‖x^l‖²/‖x^{l−1}‖² of a He ReLU layer.

    ``result`` is E[X²] = 1 + 5/n (exact, in the positive integer symbol n); ``data`` holds
    ``"mean"`` (E[X] = 1), ``"n"`` (the symbol), ``"depth_ratio"`` ((1 + 5/n)^L in the symbol
    L) and ``"example"``: width 32, depth 10, (37/32)^10 exactly.

    >>> relu_fluctuation().result
    1 + 5/n
    """
    import sympy as sp
    from sympy.stats import ChiSquared
    from sympy.stats import E as expect

    n = sp.Symbol("n", integer=True, positive=True)
    k = sp.Symbol("k", integer=True, positive=True)
    depth = sp.Symbol("L", integer=True, positive=True)
    chi = ChiSquared("chi", k)
    m1, m2 = sp.simplify(expect(chi)), sp.expand(sp.simplify(expect(chi**2)))
    # K = Σ_i B_i, B_i i.i.d. Bernoulli(½): E[K] = n/2, E[K²] = n E[B²] + n(n − 1) E[B]².
    half = sp.Rational(1, 2)
    ek = n * half
    ek2 = sp.expand(n * half + n * (n - 1) * half**2)
    ex = sp.simplify(2 / n * ek)
    ex2 = sp.expand(sp.simplify((2 / n) ** 2 * (ek2 + 2 * ek)))
    x_sym = named("X", "X")
    ek_sym, ek2_sym = named("E[K]", r"\mathbb{E}[K]"), named("E[K^2]", r"\mathbb{E}[K^{2}]")
    ratio = (1 + 5 / n) ** depth
    example = ratio.subs({n: 32, depth: 10})
    steps = (
        Step(
            "given $x^{l-1}$, the $n$ pre-activations are i.i.d. "
            "$\\mathcal{N}(0, 2\\|x^{l-1}\\|^2/n)$; the $K$ positive ones are those ReLU keeps",
            sp.Eq(x_sym, 2 / n * named("chi2_K", r"\chi^{2}_{K}")),
            "sign and magnitude of a centred Gaussian are independent, so "
            "$K \\sim \\mathrm{Bin}(n, \\frac{1}{2})$ independently of the magnitudes "
            "(Hanin 2018, section 3)",
        ),
        Step(
            "chi-square moments",
            sp.Tuple(
                sp.Eq(named("E[chi2_k]", r"\mathbb{E}[\chi^{2}_{k}]"), m1),
                sp.Eq(named("E[chi2_k^2]", r"\mathbb{E}[(\chi^{2}_{k})^{2}]"), m2),
            ),
            "$\\chi^2_k$ has mean $k$ and variance $2k$",
        ),
        Step(
            "binomial moments, $K = \\sum_i B_i$, $B_i \\sim \\mathrm{Bernoulli}(\\frac{1}{2})$",
            sp.Tuple(sp.Eq(ek_sym, ek), sp.Eq(ek2_sym, ek2)),
            "$\\mathbb{E}[K^2] = n\\,\\mathbb{E}[B^2] + n(n-1)\\,\\mathbb{E}[B]^2$",
        ),
        Step(
            "the mean is preserved exactly",
            sp.Eq(named("E[X]", r"\mathbb{E}[X]"), ex),
            "$\\mathbb{E}[X] = \\frac{2}{n}\\,\\mathbb{E}[K]$",
        ),
        Step(
            "the second moment is not",
            sp.Eq(named("E[X^2]", r"\mathbb{E}[X^{2}]"), ex2),
            "$\\mathbb{E}[X^2] = \\frac{4}{n^{2}}\\,(\\mathbb{E}[K^2] + 2\\,\\mathbb{E}[K])$",
        ),
        Step(
            "over $L$ independent layers the relative fluctuation compounds",
            sp.Eq(named("ratio", r"\mathbb{E}\|x^L\|^4 / (\mathbb{E}\|x^L\|^2)^2"), ratio),
            "layers are independent (Hanin & Nica 2019, Thm 1); width 32, depth 10: "
            f"${sp.latex(example)}$",
        ),
    )
    return Derivation(
        "Finite-width fluctuations of a He ReLU net",
        steps,
        ex2,
        data={"mean": ex, "n": n, "depth_ratio": ratio, "example": example, "L": depth},
    )
