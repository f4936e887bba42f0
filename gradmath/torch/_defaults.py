"""PyTorch's default initialisation of ``nn.Conv*d``, drawn faster.

Private to :mod:`gradmath.torch`. The probe redraws a model's parameters once per init; for
ResNet-18 (11.2 M weights) ``reset_parameters`` costs a third to a half of a forward+backward
pass, nearly all of it in ``Tensor.uniform_`` (torch's CPU generator: one mt19937 draw per
entry, on one thread). For the modules whose ``reset_parameters`` *is* PyTorch's default,

- every ``nn.Conv*d`` / ``nn.ConvTranspose*d`` (``_ConvNd``): weight ~
  U(±bound) with bound = √3 · gain/√fan_in, gain = √(2/(1 + a²)) at a = √5 (``kaiming_uniform_
  (a=√5)``, i.e. bound = 1/√fan_in), bias ~ U(±1/√fan_in) (0 when fan_in = 0)
  (torch/nn/modules/linear.py and conv.py, ``reset_parameters``; torch 2.x),

this module draws the same distribution from AES-128 in counter mode (a counter-based
generator: Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011,
whose AES generator passes TestU01's BigCrush; OpenSSL's AES-NI kernel through the
``cryptography`` package), written straight into the parameter's memory, with as many threads
as ``torch.get_num_threads()``.

The law. ``uniform_(−b, b)`` (b in the tensor's dtype) takes k uniform on [0, 2^p), p = 24 in
float32 and 53 in float64, and returns k·2^−p·(b − (−b)) + (−b), i.e. j·b·2^(1−p) with
j = k − 2^(p−1) uniform on [−2^(p−1), 2^(p−1)). Here j is the top p bits of a little-endian
word of the key stream (32 bits in float32, 64 in float64) read as a signed integer, and the
value is j·(b·2^(1−p)) rounded once to the dtype: bit for bit the values torch's AVX2/AVX-512
CPU kernels produce (they fuse the multiply-add; tests/torch/test_defaults.py checks torch's
own draws against this formula); torch's ``ATEN_CPU_CAPABILITY=default`` kernel rounds the
product before adding −b, which moves some values by up to one grid step b·2^(1−p).

The streams. Tensor i of a draw with seed s uses the key ``SeedSequence(s, spawn_key=(i,))
.generate_state(4)`` (128 bits) and the counter blocks 0, 1, 2, ... (16 bytes each, big-endian,
the CTR mode of NIST SP 800-38A): its values depend on the seed and the tensor's place only,
not on the thread count or the block size, on any machine (the words are read little-endian
whatever the machine's byte order).

The cost. The key stream comes in blocks of 2¹⁷ 64-bit words (1 MiB, the core's L2 cache),
so the shift and the multiply run on data in cache and the weight's memory is written once;
the threads take pieces of two blocks from a common queue (OpenSSL and NumPy release the GIL;
smaller blocks lose the second thread's gain to GIL hand-overs) and are kept between draws
(:class:`_Helpers`). On ResNet-18's 11.2 M weights (README): ~13 ms on one core (about half
of it AES, the rest the shift and the multiply); on two threads right after a pass 10.6–11 ms
(the second core is shared with torch's spinning OpenMP worker for its first ~6 ms), 9 ms on
an idle machine;
against ~18 ms for NumPy's SFC64 ``random_raw`` alone (3.3 ns per 64-bit word, the former
generator here) and ~3.6 ns per weight for ``Generator.random`` followed by torch's ``mul_``
and ``sub_`` over the whole tensor.

Anything else (another class, a subclass that overrides ``reset_parameters``, parametrized or
lazy weights, a tensor subclass, a non-CPU device, a dtype other than float32/float64, a
non-contiguous or empty weight) keeps its own ``reset_parameters``.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from torch import nn
from torch.nn import init as nn_init

__all__ = ["Draw", "UniformDraw", "default_draws", "draw", "touches_only_itself"]

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


#: 64-bit key-stream words per block: 1 MiB of bits (2¹⁸ float32 values), which the shift and
#: the multiply find in the core's L2 cache (module docstring). A tensor is drawn in pieces of
#: ``PIECE`` blocks (the unit of work a thread takes), each from its own place in its stream.
BLOCK = 1 << 17
PIECE = 2

#: The zeros AES-CTR encrypts: their cipher text is the key stream (read only, shared).
_ZEROS = memoryview(bytes(8 * BLOCK))
_buffers = threading.local()  # each thread's key-stream buffer


def _key(seq: np.random.SeedSequence) -> bytes:
    # AES-128's key for one tensor's stream (module docstring: Salmon et al. 2011)
    return seq.generate_state(4, np.uint32).astype("<u4").tobytes()


#: A piece of a draw: the tensor's memory (flat), its bound, its AES key, the first value and
#: the end.
Piece = tuple[np.ndarray, float, bytes, int, int]


def _fill(a: np.ndarray, bound: float, key: bytes, start: int, stop: int) -> None:
    # a[i] = j·(b·2^(1−p)), j the top p bits of the i-th little-endian key-stream word (float32:
    # 32-bit words) as a signed integer, uniform on [−2^(p−1), 2^(p−1)) (module docstring).
    # b·2^(1−p) is exact in the dtype, j converts exactly, so np.multiply rounds once: the value
    # of torch's fused u·2b − b. ``start``·word size is a whole number of AES blocks.
    word: np.dtype[Any]
    if a.dtype == np.float32:
        word, shift = np.dtype("<i4"), 8
        step = np.float32(np.float32(bound) * np.float32(2.0**-23))
    else:
        word, shift = np.dtype("<i8"), 11
        step = np.float64(bound) * 2.0**-52
    per = BLOCK * 8 // word.itemsize  # values per block
    counter = start * word.itemsize // 16
    aes = Cipher(algorithms.AES(key), modes.CTR(counter.to_bytes(16, "big"))).encryptor()
    buf = getattr(_buffers, "buf", None)
    if buf is None or buf.size != BLOCK * 8 + 15:  # update_into wants room for an AES block more
        # one per thread, kept: a fresh 1 MiB would be mapped anew (page faults) every piece
        buf = _buffers.buf = np.empty(BLOCK * 8 + 15, np.uint8)
    out = buf.data
    zeros = _ZEROS if len(_ZEROS) >= 8 * BLOCK else memoryview(bytes(8 * BLOCK))  # BLOCK changed
    for i in range(start, stop, per):
        m = min(per, stop - i)
        nbytes = m * word.itemsize
        aes.update_into(zeros[:nbytes], out)  # the GIL is released meanwhile
        j = buf[:nbytes].view(word)
        np.right_shift(j, shift, out=j)  # arithmetic: the sign stays
        np.multiply(j, step, out=a[i : i + m], dtype=a.dtype, casting="unsafe")


class Draw:
    """The pieces of one :func:`draw`, done by whichever threads call :meth:`run` (each piece by
    one of them): the values do not depend on which thread draws what."""

    def __init__(self, draws: list[UniformDraw], seed: int, start: int = 0) -> None:
        self.tensors = [p for p, _ in draws]
        todo: list[Piece] = []
        for i, (p, bound) in enumerate(draws):
            a = p.detach().numpy().reshape(-1)  # the parameter's own memory
            key = _key(np.random.SeedSequence(seed, spawn_key=(start + i,)))
            per = max(1, PIECE * BLOCK * 8 // 16) * 16 // a.itemsize  # whole AES blocks
            todo += [(a, bound, key, j, min(j + per, a.size)) for j in range(0, a.size, per)]
        self.todo = deque(todo)

    def run(self) -> None:
        """Draw pieces until none is left (call from any number of threads)."""
        while True:
            try:
                piece = self.todo.popleft()  # atomic: no two threads take the same piece
            except IndexError:
                return
            _fill(*piece)

    def done(self) -> None:
        """After every :meth:`run` has returned: as an in-place torch op would, so that autograd
        refuses a graph that saved the old values."""
        for p in self.tensors:
            torch.autograd.graph.increment_version(p)


class _Helpers:
    """The threads that draw beside the calling one, kept from one draw to the next (as torch
    keeps its OpenMP threads): a thread started for each draw made ResNet-18's redraw ~4 ms
    slower per init on two cores (15 against 11 ms after a pass; README), its first run waiting
    for a core that is either asleep (a virtual CPU wakes slowly) or busy with torch's
    spinning OpenMP worker. Idle between draws; gone in a forked child, which starts its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def pool(self, n: int) -> ThreadPoolExecutor:
        """An executor with at least ``n`` threads (started as they are first needed)."""
        with self._lock:
            if self._pool is None or self._size < n:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)  # its running pieces finish
                self._pool = ThreadPoolExecutor(n, thread_name_prefix="gradmath-draw")
                self._size = n
            return self._pool

    def forget(self) -> None:
        """In a forked child: the parent's threads do not exist there."""
        self._lock = threading.Lock()
        self._pool, self._size = None, 0


_HELPERS = _Helpers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_HELPERS.forget)


def draw(draws: list[UniformDraw], seed: int, threads: int | None = None, start: int = 0) -> None:
    """Fill each parameter with U(−b, b) (module docstring). Tensor i draws from the key
    ``SeedSequence(seed, spawn_key=(start + i,))`` (child ``start + i`` of ``SeedSequence(seed)``),
    so the values depend on the seed and the tensor's place only, not on the thread count or on
    how the draws are split into calls. ``threads``: ``torch.get_num_threads()`` unless given
    (the calling thread and ``threads − 1`` kept helpers, :class:`_Helpers`)."""
    job = Draw(draws, seed, start)
    n = max(1, min(threads or torch.get_num_threads(), len(job.todo)))
    helpers = []
    if n > 1:  # AES and NumPy's ufuncs release the GIL
        pool = _HELPERS.pool(n - 1)
        helpers = [pool.submit(job.run) for _ in range(n - 1)]
    try:
        job.run()
    finally:
        job.todo.clear()  # on an error here, the helpers stop after their current piece
        wait(helpers)  # no helper writes into the parameters after this returns
    for f in helpers:
        f.result()  # a helper's error
    job.done()
