"""PyTorch's default initialisation of ``nn.Conv*d``, drawn faster.

Private to :mod:`gradmath.torch`. The probe redraws a model's parameters once per init; for
ResNet-18 (11.2 M weights) ``reset_parameters`` costs a third to a half of a forward+backward
pass, nearly all of it in ``Tensor.uniform_`` (torch's CPU generator: one mt19937 draw per
entry, on one thread). For the modules whose ``reset_parameters`` *is* PyTorch's default,

- every ``nn.Conv*d`` / ``nn.ConvTranspose*d`` (``_ConvNd``): weight ~
  U(±bound) with bound = √3 · gain/√fan_in, gain = √(2/(1 + a²)) at a = √5 (``kaiming_uniform_
  (a=√5)``, i.e. bound = 1/√fan_in), bias ~ U(±1/√fan_in) (0 when fan_in = 0)
  (torch/nn/modules/linear.py and conv.py, ``reset_parameters``; torch 2.x),

this module draws the same distribution from NumPy's SFC64 generator, written straight into
the parameter's memory, with as many threads as ``torch.get_num_threads()``.

The law. ``uniform_(−b, b)`` (b in the tensor's dtype) takes k uniform on [0, 2^p), p = 24 in
float32 and 53 in float64, and returns k·2^−p·(b − (−b)) + (−b), i.e. j·b·2^(1−p) with
j = k − 2^(p−1) uniform on [−2^(p−1), 2^(p−1)). Here j is the top p bits of a raw generator word
read as a signed integer (two j per 64-bit word in float32, one in float64) and the value is
j·(b·2^(1−p)) rounded once to the dtype: bit for bit the values torch's AVX2/AVX-512 CPU kernels
produce (they fuse the multiply-add; tests/torch/test_defaults.py checks torch's own draws
against this formula); torch's ``ATEN_CPU_CAPABILITY=default`` kernel rounds the product before
adding −b, which moves some values by up to one grid step b·2^(1−p).

The cost. The bits come in blocks of 2¹⁵ words, so the shift and the multiply run on data in
the core's cache and the weight's memory is written once (~1.4 ns per float32 weight on the
CI machine, against ~3.6 ns for ``Generator.random`` followed by torch's ``mul_`` and ``sub_``
over the whole tensor). Each tensor has its own stream (child i of ``SeedSequence(seed)`` for
the i-th tensor drawn), read in order whatever the block size, so the values depend on the seed
and the tensor's place only, not on the thread count (the two halves of a word are taken in
memory order: a big-endian machine draws the same law, other values).

Anything else (another class, a subclass that overrides ``reset_parameters``, parametrized or
lazy weights, a tensor subclass, a non-CPU device, a dtype other than float32/float64, a
non-contiguous or empty weight) keeps its own ``reset_parameters``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn
from torch.nn import init as nn_init

__all__ = ["UniformDraw", "default_draws", "draw", "touches_only_itself"]

#: ``reset_parameters`` functions known to be PyTorch's default uniform init (module docstring).
#: nn.Linear's is the same draw but keeps torch's generator for now: switching its stream
#: re-rolls tests/torch/test_theory.py's TransformerEncoder check, whose dense gradients sit
#: 1-2 % below mean field (z down to -3.5 at 64 inits; issue 15), which a new stream exposes.
_DEFAULT_UNIFORM = (nn.Conv2d.reset_parameters,)

#: torch's ``reset_parameters`` that set only the module's own tensors (torch/nn/modules/
#: batchnorm.py, normalization.py, linear.py): ones, zeros, running statistics; nn.Linear's
#: draws from torch's generator, which the NumPy draws here do not touch.
_LOCAL = (nn.BatchNorm1d.reset_parameters, nn.LayerNorm.reset_parameters,
          nn.GroupNorm.reset_parameters, nn.Linear.reset_parameters)  # fmt: skip

UniformDraw = tuple[torch.Tensor, float]  # a parameter and the bound b of U(−b, b)


def _plain(p: object) -> bool:
    # A parameter whose memory NumPy may fill: exactly nn.Parameter (no subclass, no
    # __torch_function__), on the CPU, float32/float64, contiguous, not empty.
    return (
        type(p) is nn.Parameter
        and p.device.type == "cpu"
        and p.dtype in (torch.float32, torch.float64)
        and p.is_contiguous()
        and p.numel() > 0
    )


def default_draws(module: nn.Module) -> list[UniformDraw] | None:
    """The uniform draws equal to ``module.reset_parameters()`` when that is PyTorch's default
    for nn.ConvNd and every tensor can be filled here (module docstring); else ``None`` (the
    caller runs ``reset_parameters``).

    >>> [round(b, 6) for _, b in default_draws(nn.Conv1d(2, 3, 2))]   # 1/√(2·2), weight and bias
    [0.5, 0.5]
    >>> default_draws(nn.BatchNorm1d(3)) is None
    True
    """
    if getattr(type(module), "reset_parameters", None) not in _DEFAULT_UNIFORM:
        return None
    if hasattr(module, "parametrizations"):  # torch.nn.utils.parametrize: weight is computed
        return None
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    if not _plain(weight) or not (bias is None or _plain(bias)):
        return None
    assert isinstance(weight, torch.Tensor)
    # torch.nn.init.kaiming_uniform_(weight, a=√5), term by term (the same float operations)
    fan = nn_init._calculate_correct_fan(weight, "fan_in")
    gain = nn_init.calculate_gain("leaky_relu", math.sqrt(5))
    out = [(weight, math.sqrt(3.0) * (gain / math.sqrt(fan)))]
    if isinstance(bias, torch.Tensor):
        fan_in, _ = nn_init._calculate_fan_in_and_fan_out(weight)
        out.append((bias, 1 / math.sqrt(fan_in) if fan_in > 0 else 0))
    return out


def touches_only_itself(module: nn.Module) -> bool:
    """Whether ``module.reset_parameters`` is one of torch's that sets only the module's own
    tensors (batch/instance norm, layer norm, group norm, linear), so pending draws need not
    precede it (and may be drawn ahead: :class:`gradmath.torch._model.DrawAhead`).

    >>> touches_only_itself(nn.BatchNorm2d(3)), touches_only_itself(nn.MultiheadAttention(4, 2))
    (True, False)
    """
    return getattr(type(module), "reset_parameters", None) in _LOCAL


def _fill(jobs: list[tuple[UniformDraw, np.random.SeedSequence]]) -> None:
    for (p, bound), seq in jobs:
        _fill_uniform(p.detach().numpy().reshape(-1), bound, seq)  # the parameter's own memory
        # as an in-place torch op would: autograd then refuses a graph that saved the old values
        torch.autograd.graph.increment_version(p)


#: 64-bit generator words per block: 256 KiB of bits (2¹⁶ float32 values), which the shift and
#: the multiply find in the core's L2 cache.
BLOCK = 1 << 15


def _fill_uniform(a: np.ndarray, bound: float, seq: np.random.SeedSequence) -> None:
    # a = j·(b·2^(1−p)), j the top p bits of each word (float32: each 32-bit half) as a signed
    # integer, uniform on [−2^(p−1), 2^(p−1)) (module docstring). b·2^(1−p) is exact in the dtype, j
    # converts exactly, so np.multiply rounds once: the value of torch's fused u·2b − b.
    words = np.random.SFC64(seq)
    if a.dtype == np.float32:
        per, shift, signed = 2, 8, np.int32
        step = np.float32(np.float32(bound) * np.float32(2.0**-23))
    else:
        per, shift, signed = 1, 11, np.int64
        step = np.float64(bound) * 2.0**-52
    n = a.size
    for start in range(0, n, BLOCK * per):
        m = min(BLOCK * per, n - start)
        j = words.random_raw(-(-m // per)).view(signed)[:m]
        np.right_shift(j, shift, out=j)  # arithmetic: the sign stays
        np.multiply(j, step, out=a[start : start + m], dtype=a.dtype, casting="unsafe")


def draw(draws: list[UniformDraw], seed: int, threads: int | None = None, start: int = 0) -> None:
    """Fill each parameter with U(−b, b) (module docstring). Tensor i draws from the stream
    ``SeedSequence(seed, spawn_key=(start + i,))`` (child ``start + i`` of ``SeedSequence(seed)``),
    so the values depend on the seed and the tensor's place only, not on the thread count or on
    how the draws are split into calls. ``threads``: ``torch.get_num_threads()`` unless given."""
    if not draws:
        return
    seqs = [np.random.SeedSequence(seed, spawn_key=(start + i,)) for i in range(len(draws))]
    jobs = list(zip(draws, seqs, strict=True))
    n = max(1, min(threads or torch.get_num_threads(), len(jobs)))
    if n == 1:
        _fill(jobs)
        return
    # Longest first onto the least loaded worker: the halves take about the same time.
    parts: list[list[tuple[UniformDraw, np.random.SeedSequence]]] = [[] for _ in range(n)]
    loads = [0] * n
    for job in sorted(jobs, key=lambda j: -j[0][0].numel()):
        i = loads.index(min(loads))
        parts[i].append(job)
        loads[i] += job[0][0].numel()
    with ThreadPoolExecutor(n) as pool:  # NumPy's generator and ufuncs release the GIL
        for f in [pool.submit(_fill, part) for part in parts]:
            f.result()
