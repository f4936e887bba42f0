"""Named residual blocks from the literature, built from the layers (no new rules here).

- pre-LN (Xiong et al. 2020; GPT-2): x + α·F(LN(x)), F = Dense → φ → Dense;
- post-LN (Vaswani et al. 2017): LN(x + α·F(x));
- Fixup (Zhang, Dauphin & Ma 2019, §3): m weight layers per branch, L branches, no
  normalisation; the branch's weight layers are scaled by L^(−1/(2m−2)) and its last layer is
  zero-initialised, so each block is the identity at initialisation.
"""

from __future__ import annotations

from gradmath.activations import Activation
from gradmath.errors import check_positive_int
from gradmath.initializers import Initializer
from gradmath.network.base import Layer
from gradmath.network.combinators import Serial
from gradmath.network.dense import Dense
from gradmath.network.layernorm import LayerNorm
from gradmath.network.residual import Residual

__all__ = ["fixup_block", "post_ln_block", "pre_ln_block"]

Init = Initializer | str


def pre_ln_block(
    width: int,
    act: Activation | str = "relu",
    *,
    alpha: float = 1.0,
    init: Init = "he_normal",
    hidden: int | None = None,
) -> Residual:
    """x + α·Dense(φ(Dense(LN(x)))) with a hidden width (default ``width``).

    >>> pre_ln_block(16).out_width(16)
    16
    """
    h = width if hidden is None else hidden
    return Residual(Serial(LayerNorm(), Dense(h, init), act, Dense(width, init)), alpha)


def post_ln_block(
    width: int,
    act: Activation | str = "relu",
    *,
    alpha: float = 1.0,
    init: Init = "he_normal",
    hidden: int | None = None,
) -> Serial:
    """LN(x + α·Dense(φ(Dense(x)))).

    >>> post_ln_block(16).out_width(16)
    16
    """
    h = width if hidden is None else hidden
    return Serial(Residual(Serial(Dense(h, init), act, Dense(width, init)), alpha), LayerNorm())


def fixup_block(
    width: int,
    n_blocks: int,
    act: Activation | str = "relu",
    *,
    m: int = 2,
    init: Init = "he_normal",
) -> Residual:
    """A Fixup branch of ``m`` weight layers for a net of ``n_blocks`` branches.

    Layers 1 … m−1 have He-style variance times L^(−2/(2m−2)) (gain L^(−1/(2m−2))); layer m is
    zero (gain 0), so the block is exactly the identity at initialisation.

    >>> b = fixup_block(16, 9, m=3)
    >>> [round(d.gain, 12) for d in b.branch.layers if isinstance(d, Dense)]
    [0.57735026919, 0.57735026919, 0.0]
    """
    L = check_positive_int("n_blocks", n_blocks)
    m = check_positive_int("m", m, minimum=2)
    gain = L ** (-1.0 / (2 * m - 2))
    layers: list[Layer | Activation | str] = []
    for k in range(m):
        layers.append(Dense(width, init, gain=0.0 if k == m - 1 else gain))
        if k < m - 1:
            layers.append(act)
    return Residual(Serial(*layers), 1.0)
