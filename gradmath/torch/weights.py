"""Read a layer's weight and bias variances from its actual parameters.

The mean-field theory needs Var[W_ij] and Var[b_i] of the distribution the parameters were
drawn from. gradmath reads the sampled tensor, estimates its variance v̂ = mean(W²) (a zero-mean
initialiser is assumed and checked) and its kurtosis κ̂ = mean(W⁴)/v̂², and looks for the
catalogue initializer it matches: same family of distribution (uniform κ = 9/5, Keras'
truncated normal κ = 2.3655, normal κ = 3; orthogonal by its Gram matrix) and a variance within
four standard errors, SE(v̂)/v = √((κ − 1)/m) for m entries. A match gives the initializer's
exact variance (PyTorch's default ``kaiming_uniform_(a=√5)`` shows up as
``torch_linear_default``, Var = 1/(3·fan_in)); no match gives the sample variance, reported as
"custom", so a user's own initialisation is honoured either way. A model may also *declare*
its init: a Hugging Face model draws its weights from N(0, ``config.initializer_range``²), and
GPT-2 its residual projections from N(0, r²/(2·n_layer)) (Radford et al. 2019, §2.3);
:func:`declared_variances` lists them and they are tried first, as normal distributions.
Matching matters: the sample variance of one draw is off by √(2/m) (0.55 % for a 128×512
matrix), which is the size of the probe's Monte-Carlo error, while the probe redraws from the
declared law every time. Fans follow PyTorch
(``nn.init._calculate_fan_in_and_fan_out``): fan_in = C_in·∏kernel, fan_out = C_out·∏kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gradmath.errors import GradmathError
from gradmath.initializers import Initializer, initializer

__all__ = ["WeightReading", "declared_variances", "read_bias", "read_weight"]

#: Kurtosis E[W⁴]/E[W²]² of each distribution family.
KURTOSIS = {"uniform": 1.8, "truncated_normal": 2.3655367171296495, "normal": 3.0}

#: Catalogue entries tried, in order (framework defaults first).
CANDIDATES: tuple[tuple[str, dict[str, object]], ...] = (
    ("torch_linear_default", {}),
    ("kaiming_uniform", {"nonlinearity": "relu"}),
    ("kaiming_normal", {"nonlinearity": "relu"}),
    ("kaiming_normal", {"nonlinearity": "relu", "mode": "fan_out"}),
    ("kaiming_uniform", {"nonlinearity": "relu", "mode": "fan_out"}),
    ("xavier_uniform", {}),
    ("xavier_normal", {}),
    ("lecun_normal", {}),
    ("lecun_uniform", {}),
    ("he_normal", {}),
    ("glorot_normal", {}),
    ("kaiming_normal", {"nonlinearity": "linear"}),
    ("kaiming_uniform", {"nonlinearity": "linear"}),
)


@dataclass(frozen=True)
class WeightReading:
    """What a weight tensor says about its initialiser.

    ``variance``: the one the theory uses (the matched initializer's, else the sample's);
    ``sample_variance``: v̂; ``init``: the matched :class:`~gradmath.Initializer` or, for a
    custom init, a normal one of the sample variance (mean field needs only the variance);
    ``matched``: whether it matched a catalogue entry (two entries of equal variance, e.g. a
    uniform and a normal one on a small matrix whose kurtosis cannot tell them apart, give the
    same theory; the first in :data:`CANDIDATES` is named); ``fan_in``, ``fan_out``.
    """

    variance: float
    sample_variance: float
    init: Initializer
    matched: bool
    fan_in: int
    fan_out: int

    @property
    def sigma_w2(self) -> float:
        """fan_in · Var[W], the mean-field weight scale."""
        return self.fan_in * self.variance

    @property
    def label(self) -> str:
        if self.matched and self.init.name == "normal":
            return f"declared N(0, {self.variance:.4g})"
        if self.matched:
            params = ", ".join(f"{k}={v!r}" for k, v in self.init.params.items())
            return f"{self.init.name}({params})" if params else self.init.name
        return f"custom (Var = {self.sample_variance:.4g})"


def fans_of(weight: torch.Tensor, layout: str = "out_in") -> tuple[int, int]:
    """(fan_in, fan_out) as PyTorch computes them; ``layout="in_out"`` for HF's Conv1D."""
    if weight.dim() < 2:
        raise GradmathError(f"A weight needs two or more axes, got shape {tuple(weight.shape)}.")
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    rows, cols = int(weight.shape[0]), int(weight.shape[1])
    if layout == "in_out":
        return rows, cols
    return cols * receptive, rows * receptive


def _is_orthogonal(w: torch.Tensor) -> float | None:
    # gain² if the rows (or columns) of the matrix are orthogonal with one common length.
    m = w.reshape(w.shape[0], -1).double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    d = torch.diagonal(gram)
    g2 = float(d.mean())
    if g2 <= 0 or gram.shape[0] < 2:
        return None
    off = gram - torch.diag(d)
    if float((d / g2 - 1).abs().max()) < 1e-5 and float(off.abs().max()) < 1e-5 * g2:
        return g2
    return None


def declared_variances(model: torch.nn.Module) -> tuple[float, ...]:
    """Weight variances a model's own initialisation declares (module docstring): for a
    Hugging Face model r² and r²/(2·n_layers), r = ``config.initializer_range``; else none.

    >>> declared_variances(torch.nn.Linear(2, 2))
    ()
    """
    config = getattr(model, "config", None)
    r = getattr(config, "initializer_range", None)
    if not isinstance(r, (int, float)) or isinstance(r, bool) or not r > 0:
        return ()
    out = [float(r) ** 2]
    n = getattr(config, "num_hidden_layers", None)
    if isinstance(n, int) and n > 0:
        out.append(float(r) ** 2 / (2 * n))
    return tuple(out)


def read_weight(
    weight: torch.Tensor, layout: str = "out_in", *, declared: tuple[float, ...] = ()
) -> WeightReading:
    """Match a weight tensor to the initializer it was drawn from (module docstring);
    ``declared``: variances of normal distributions the model declares, tried first.

    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> read_weight(nn.Linear(256, 128).weight).label
    'torch_linear_default'
    """
    fan_in, fan_out = fans_of(weight, layout)
    w = weight.detach().double().flatten()
    m = w.numel()
    v = float(w.square().mean())
    if v == 0.0:
        raise GradmathError("The weight is all zeros; the theory needs a nonzero variance.")
    kurt = float(w.pow(4).mean()) / v**2
    mean = float(w.mean())
    centred = abs(mean) < 4 * math.sqrt(v / m)
    g2 = _is_orthogonal(weight.detach()) if weight.dim() >= 2 else None
    if g2 is not None:
        init = initializer("orthogonal", gain=math.sqrt(g2))
        return WeightReading(init.variance(fan_in, fan_out), v, init, True, fan_in, fan_out)
    if centred:
        se_normal = 4 * math.sqrt(2.0 / m)
        if abs(kurt - 3.0) <= 4 * math.sqrt(72.0 / m) + 0.05:
            for var in declared:
                if abs(v / var - 1.0) < se_normal:
                    init = initializer("normal", sigma_w2=var * fan_in)
                    return WeightReading(var, v, init, True, fan_in, fan_out)
        for name, params in CANDIDATES:
            init = initializer(name, **params)
            k = KURTOSIS.get(init.distribution, 3.0)
            se_k = math.sqrt(max(k * k * 8.0, 1.0) * 3.0 / m)  # generous: κ̂ is noisy
            if abs(kurt - k) > 4 * se_k + 0.05:
                continue
            var = init.variance(fan_in, fan_out)
            if abs(v / var - 1.0) < 4 * math.sqrt((k - 1.0) / m):
                return WeightReading(var, v, init, True, fan_in, fan_out)
    init = initializer("normal", sigma_w2=v * fan_in)
    return WeightReading(v, v, init, False, fan_in, fan_out)


def read_bias(bias: torch.Tensor | None, fan_in: int) -> tuple[float, str]:
    """(Var[b], label): 0 for no or a zero bias; PyTorch's default U(±1/√fan_in) gives exactly
    1/(3·fan_in) when the sample fits it; otherwise the sample variance."""
    if bias is None:
        return 0.0, "none"
    b = bias.detach().double().flatten()
    v = float(b.square().mean())
    if v == 0.0:
        return 0.0, "zero"
    default = 1.0 / (3.0 * fan_in)
    m = b.numel()
    bound = float(b.abs().max())
    if bound <= 1.0 / math.sqrt(fan_in) * (1 + 1e-6) and abs(v / default - 1) < 4 * math.sqrt(
        0.8 / m
    ):
        return default, "torch default U(±1/√fan_in)"
    return v, f"custom (Var = {v:.4g})"
