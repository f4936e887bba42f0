"""The probe's fast redraw of PyTorch's default nn.ConvNd init (gradmath.torch._defaults):
exactly the distribution reset_parameters draws (U(±1/√fan_in) for weight and bias, checked
against the closed form and against torch's own draws), reproducible per seed whatever the
thread count, and never used where reset_parameters is anything else."""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import select
import signal
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gradmath.torch import _defaults, measure
from gradmath.torch._defaults import default_draws, draw
from gradmath.torch._model import DrawAhead, reinitialise

measure_module = importlib.import_module("gradmath.torch.measure")  # the function shadows it

# Kolmogorov's limiting distribution: P(√n·D > 1.95) = 0.001 (one-sample; two-sample with
# √(nm/(n+m))). Each check is one such test; 1.95 keeps the family's false-alarm rate < 2 %.
KS_CRIT = 1.95

MODULES = {
    "conv2d-1x1": lambda: nn.Conv2d(300, 200, 1),
    "conv1d-nobias": lambda: nn.Conv1d(250, 120, 1, bias=False),
    "conv1d": lambda: nn.Conv1d(16, 64, 5),
    "conv2d-groups": lambda: nn.Conv2d(32, 64, 3, groups=4),
    "conv3d": lambda: nn.Conv3d(4, 16, 3),
    "convtranspose2d": lambda: nn.ConvTranspose2d(24, 48, 3),
}


def _ks_uniform(x: np.ndarray, b: float) -> float:
    """√n · sup |F_n − F| against U(−b, b)."""
    x = np.sort(x.astype(np.float64))
    n = x.size
    f = (x + b) / (2 * b)
    i = np.arange(1, n + 1)
    return math.sqrt(n) * max(float(np.max(i / n - f)), float(np.max(f - (i - 1) / n)))


def _ks_two(a: np.ndarray, c: np.ndarray) -> float:
    """√(nm/(n+m)) · sup |F_a − F_c| (two-sample Kolmogorov–Smirnov)."""
    grid = np.concatenate([a, c])
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fc = np.searchsorted(np.sort(c), grid, side="right") / c.size
    return math.sqrt(a.size * c.size / (a.size + c.size)) * float(np.max(np.abs(fa - fc)))


def _fan_in(w: torch.Tensor) -> int:
    # PyTorch's fan_in (dim 1 × receptive field), computed here independently of torch.nn.init
    return int(w.shape[1]) * math.prod(int(k) for k in w.shape[2:])


@pytest.mark.parametrize("kind", list(MODULES))
def test_draws_are_torchs_default_distribution(kind: str) -> None:
    m = MODULES[kind]()
    draws = default_draws(m)
    assert draws is not None
    b = 1 / math.sqrt(_fan_in(m.weight))
    assert [t is p for (t, _), p in zip(draws, m.parameters(), strict=True)] == [True] * len(draws)
    assert all(bound == pytest.approx(b, rel=1e-12) for _, bound in draws)
    ours = {n: [] for n, _ in m.named_parameters()}
    theirs = {n: [] for n, _ in m.named_parameters()}
    torch.manual_seed(0)
    with torch.no_grad():
        for s in range(4):
            draw(draws, seed=s)
            for n, p in m.named_parameters():
                ours[n].append(p.detach().numpy().ravel().copy())
            m.reset_parameters()
            for n, p in m.named_parameters():
                theirs[n].append(p.detach().numpy().ravel().copy())
    for n in ours:
        x, y = np.concatenate(ours[n]), np.concatenate(theirs[n])
        assert x.dtype == np.float32 and np.all(np.abs(x) <= b)
        assert _ks_uniform(x, b) < KS_CRIT, n
        assert _ks_two(x, y) < KS_CRIT, n
        # moments: mean 0 and variance b²/3, within 4 standard errors (SE of a uniform sample's
        # variance: √((κ − 1)/n)·v with κ = 9/5)
        v = b * b / 3
        assert abs(x.mean()) < 4 * math.sqrt(v / x.size)
        assert abs(np.mean(x.astype(np.float64) ** 2) / v - 1) < 4 * math.sqrt(0.8 / x.size)


def _on_torchs_grid(x: np.ndarray, b: float) -> bool:
    """Whether every value is k·2^−p·2b − b for an integer k in [0, 2^p), rounded once to the
    dtype (p = 24 in float32, 53 in float64; b in the dtype): torch's uniform_(−b, b) with a
    fused multiply-add. Written as j·b·2^(1−p) with j = k − 2^(p−1); j·b·2^(1−p) is exact in
    float64 for float32 (at most 48 bits). In float64 x/(b·2^(1−p)) is j to within ~1, so j is
    one of the three integers nearest to it."""
    if x.dtype == np.float32:
        bf, p = float(np.float32(b)), 24
    else:
        bf, p = b, 53
    step = bf * 2.0 ** (1 - p)
    j0 = np.rint(x.astype(np.float64) / step).astype(np.int64)
    found = np.zeros(x.shape, dtype=bool)
    for d in (-1, 0, 1):
        j = j0 + d
        inside = (j >= -(2 ** (p - 1))) & (j < 2 ** (p - 1))
        # float32: j·step exact in float64, then one rounding; float64: one rounding
        found |= inside & ((j.astype(np.float64) * step).astype(x.dtype) == x)
    return bool(np.all(found))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_are_torchs_formula_rounded_once(dtype: torch.dtype) -> None:
    # b = 1/√27 is not a power of two: a product rounded before adding −b (torch's
    # ATEN_CPU_CAPABILITY=default kernel) lands off this set for about half the values
    m = nn.Conv2d(3, 600, 3).to(dtype)
    draws = default_draws(m)
    assert draws is not None
    b = draws[0][1]
    with torch.no_grad():
        draw(draws, seed=11)
    x = m.weight.detach().numpy().ravel()
    assert _on_torchs_grid(x, b)
    # torch's own draws (its AVX2/AVX-512 kernel, which CI runs) are on the same set
    assert torch.backends.cpu.get_cpu_capability() != "DEFAULT"
    theirs = torch.empty(x.size, dtype=dtype).uniform_(-b, b).numpy()
    assert _on_torchs_grid(theirs, b)
    assert not _on_torchs_grid(x + np.asarray(b * 2.0**-30, dtype=x.dtype), b)  # the check bites


def test_values_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    m = nn.Conv2d(3, 700, 5).double()  # 52 500 weights: several blocks of 2¹⁰ words
    m32 = nn.Conv2d(3, 700, 5)
    runs = []
    for block, piece in ((1 << 17, 2), (1 << 10, 1), (777, 3), (777, 1), (5, 2)):
        monkeypatch.setattr(_defaults, "BLOCK", block)
        monkeypatch.setattr(_defaults, "PIECE", piece)
        draw([d for mod in (m, m32) for d in default_draws(mod) or []], seed=4, threads=2)
        runs.append([p.detach().clone() for p in (*m.parameters(), *m32.parameters())])
    assert all(torch.equal(a, c) for r in runs[1:] for a, c in zip(runs[0], r, strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_are_the_aes_counter_stream(dtype: torch.dtype) -> None:
    # Independent of the CTR-mode code: AES-128 in ECB mode applied to the counter blocks
    # 0, 1, 2, ... (16-byte big-endian integers) is the key stream of NIST SP 800-38A's CTR
    # mode; its little-endian 32-bit (float32) or 64-bit (float64) words, top 24 or 53 bits
    # as a signed j, give j·b·2^(1−p) in the dtype.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    m = nn.Conv1d(7, 300, 3).to(dtype)  # 6300 weights, 300 biases (not whole AES blocks)
    draws = default_draws(m)
    assert draws is not None
    draw(draws, seed=9)
    for i, (p, b) in enumerate(draws):
        key = np.random.SeedSequence(9, spawn_key=(i,)).generate_state(4, np.uint32)
        size = p.element_size()
        counters = b"".join(c.to_bytes(16, "big") for c in range(-(-p.numel() * size // 16)))
        ecb = Cipher(algorithms.AES(key.astype("<u4").tobytes()), modes.ECB()).encryptor()
        stream = ecb.update(counters) + ecb.finalize()
        words = np.frombuffer(stream, dtype="<i4" if size == 4 else "<i8")[: p.numel()]
        p_bits = 24 if size == 4 else 53
        j = words.astype(np.int64) >> (8 * size - p_bits)
        expected = torch.from_numpy(j.astype(np.float64)) * (float(torch.tensor(b, dtype=dtype))
                                                             * 2.0 ** (1 - p_bits))  # fmt: skip
        if size == 4:  # j·step exact in float64 (at most 48 bits): one rounding to float32
            assert torch.equal(p.detach().reshape(-1), expected.to(dtype))
        else:  # float64: the product in float64 is the one rounding
            assert torch.equal(p.detach().reshape(-1), expected)


def test_float64_parameters_are_drawn_in_float64() -> None:
    m = nn.Conv1d(500, 400, 1).double()
    draws = default_draws(m)
    assert draws is not None
    with torch.no_grad():
        draw(draws, seed=3)
    x = m.weight.detach().numpy().ravel()
    assert x.dtype == np.float64 and _ks_uniform(x, 1 / math.sqrt(500)) < KS_CRIT
    # 53-bit grid: far more distinct values than float32's 2²⁴ levels would allow here
    assert np.unique(x).size == x.size


def test_same_seed_same_values_whatever_the_thread_count() -> None:
    m = nn.Sequential(nn.Conv2d(3, 64, 3), nn.Conv2d(64, 64, 3), nn.Conv1d(64, 10, 1))
    draws = [d for mod in m for d in default_draws(mod) or []]
    runs = []
    for seed, threads in ((7, 1), (7, 2), (7, 3), (8, 2), (7, 64)):
        draw(draws, seed, threads=threads)  # outside no_grad: the workers turn it on themselves
        runs.append([p.detach().clone() for p in m.parameters()])
    assert all(torch.equal(a, c) for a, c in zip(runs[0], runs[1], strict=True))
    assert all(torch.equal(a, c) for a, c in zip(runs[0], runs[2], strict=True))
    assert all(torch.equal(a, c) for a, c in zip(runs[0], runs[4], strict=True))
    assert not any(torch.equal(a, c) for a, c in zip(runs[0], runs[3], strict=True))
    # independent streams per tensor: two same-shape weights never share values
    assert not torch.equal(m[1].weight[:, :3], m[0].weight[:, :3].expand(64, 3, 3, 3))
    assert all(p.requires_grad and p.grad is None for p in m.parameters())


def test_a_forked_child_draws_with_threads_of_its_own() -> None:
    # the helper threads are kept between draws; a fork copies the pool but not its threads
    m = nn.Conv2d(512, 256, 3)  # 1.2 M weights: several pieces, so the helpers take part
    draws = default_draws(m) or []
    draw(draws, 3, threads=2)
    want = hashlib.sha256(m.weight.detach().numpy().tobytes()).digest()
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python ≥ 3.12 warns of fork() beside threads: the point
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: no pytest from here on
        try:
            m.weight.detach().numpy().fill(0.0)  # NumPy: no torch (OpenMP) work in the child
            draw(draws, 3, threads=2)
            os.write(write, hashlib.sha256(m.weight.detach().numpy().tobytes()).digest())
        finally:
            os._exit(0)
    os.close(write)
    ready: list[int] = []
    try:
        ready, _, _ = select.select([read], [], [], 60)
        got = os.read(read, 64) if ready else b""
    finally:
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
    assert got == want, "the child hung (no reply in 60 s)" if not got else "other values"


class OwnInit(nn.Conv1d):
    def reset_parameters(self) -> None:
        nn.init.constant_(self.weight, 0.25)


def _channels_last() -> nn.Module:
    return nn.Conv2d(4, 8, 3).to(memory_format=torch.channels_last)


def _empty() -> nn.Module:
    with pytest.warns(UserWarning, match="zero-element"):  # torch's own reset_parameters says so
        return nn.Conv1d(4, 0, 1)


def _parametrized() -> nn.Module:
    class Double(nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return 2 * w

    m = nn.Conv1d(4, 4, 1)
    parametrize.register_parametrization(m, "weight", Double())
    return m


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.BatchNorm2d(4),
        lambda: nn.LayerNorm(4),
        lambda: nn.Bilinear(3, 3, 2),
        lambda: nn.Embedding(5, 3),
        lambda: OwnInit(4, 4, 1),
        lambda: nn.LazyConv1d(3, 1),
        lambda: nn.Conv1d(4, 4, 1).half(),
        # nn.Linear keeps torch's generator for now (README, "Performance")
        lambda: nn.Linear(4, 4),
        _empty,
        _channels_last,
        _parametrized,
    ],
    ids="batchnorm layernorm bilinear embedding own-reset lazy half linear empty channels-last "
    "parametrized".split(),
)
def test_anything_else_keeps_its_own_reset_parameters(make: object) -> None:
    assert default_draws(make()) is None  # type: ignore[operator]


def test_reinitialise_mixes_fast_draws_and_own_initialisers() -> None:
    model = nn.Sequential(nn.Conv1d(8, 8, 1), OwnInit(8, 8, 1), nn.LayerNorm(8), nn.Conv1d(8, 2, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(9.0)
    reinitialise(model, None, seed=1)
    assert torch.all(model[1].weight == 0.25)  # its own reset_parameters ran
    assert torch.all(model[2].weight == 1) and torch.all(model[2].bias == 0)
    b = 1 / math.sqrt(8)
    for lin in (model[0], model[3]):
        assert torch.all(lin.weight.abs() <= b) and torch.all(lin.bias.abs() <= b)
    first = [p.detach().clone() for p in model.parameters()]
    reinitialise(model, None, seed=1)
    assert all(torch.equal(a, p) for a, p in zip(first, model.parameters(), strict=True))


class SetsOthers(nn.Module):
    """A module whose initialiser overwrites another module's weight (drawn before it)."""

    def __init__(self, other: nn.Conv1d) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.other = [other]  # not a submodule

    def reset_parameters(self) -> None:
        nn.init.constant_(self.other[0].weight, 0.5)


def test_resets_run_in_the_models_order() -> None:
    first = nn.Conv1d(6, 6, 1)
    model = nn.Sequential(first, SetsOthers(first), nn.BatchNorm1d(6), nn.Conv1d(6, 3, 1))
    reinitialise(model, None, seed=2)
    assert torch.all(first.weight == 0.5)  # as reset_parameters in order would leave it
    assert torch.all(first.bias.abs() <= 1 / math.sqrt(6))
    # drawn in one call or split by the flush before SetsOthers: the same streams
    draws = [d for m in (first, model[3]) for d in default_draws(m) or []]
    draw(draws, seed=2)
    whole = [p.detach().clone() for p, _ in draws]
    draw(draws[:2], seed=2)
    draw(draws[2:], seed=2, start=2)
    assert all(torch.equal(a, p) for a, (p, _) in zip(whole, draws, strict=True))
    assert torch.equal(model[3].weight, whole[2])


def test_probe_is_reproducible_and_leaves_the_model_as_found() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4))
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(4, 3, 8, 8)
    a = measure(model, x, n_inits=3, seed=5)
    b = measure(model, x, n_inits=3, seed=5)
    c = measure(model, x, n_inits=3, seed=6)
    assert np.array_equal(a.per_init, b.per_init, equal_nan=True)
    assert not np.array_equal(a.per_init, c.per_init, equal_nan=True)
    assert all(torch.equal(p0, p) for p0, p in zip(before, model.parameters(), strict=True))


class Block(nn.Module):
    """A container whose initialiser sets its child's weight (the child comes after it)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 1)

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        *(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()),
        *(nn.Conv2d(8, 8, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 4)),
    )


def test_drawing_ahead_gives_the_same_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    # DrawAhead draws init k + 1's convolutions during init k's passes into a second buffer:
    # the same values as drawing them in place at init k + 1, and the parameters' own storage
    # (the first buffer) holds the user's values again afterwards
    model = _small_cnn()
    x = torch.randn(4, 3, 8, 8)
    assert DrawAhead.plan(model, None, [1, 2]) is not None
    before = [(p.data_ptr(), p.detach().clone()) for p in model.parameters()]
    monkeypatch.setattr(measure_module, "DRAW_AHEAD", True)
    ahead = measure(model, x, n_inits=5, seed=3)
    assert all(
        ptr == p.data_ptr() and torch.equal(v, p.detach())
        for (ptr, v), p in zip(before, model.parameters(), strict=True)
    )
    monkeypatch.setattr(measure_module, "DRAW_AHEAD", False)
    in_place = measure(model, x, n_inits=5, seed=3)
    assert np.array_equal(ahead.per_init, in_place.per_init, equal_nan=True)


@pytest.mark.parametrize(
    "case", ["init-function", "sets-a-child", "tied", "view", "one-init", "nothing-to-draw"]
)
def test_drawing_ahead_only_where_it_cannot_change_the_values(case: str) -> None:
    seeds = [1, 2]
    init = None
    model: nn.Module = _small_cnn()
    if case == "init-function":
        init = lambda m: None  # noqa: E731
    elif case == "sets-a-child":
        model = nn.Sequential(Block(), nn.Conv1d(4, 4, 1))
    elif case == "tied":
        model[3].weight = model[0].weight.__class__(torch.zeros(8, 8, 3, 3))
        model.append(nn.Conv2d(8, 8, 3, bias=False))
        model[-1].weight = model[3].weight
    elif case == "view":
        model[3].weight = nn.Parameter(torch.zeros(2, 8, 8, 3, 3)[0])
    elif case == "one-init":
        seeds = [1]
    elif case == "nothing-to-draw":
        model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    assert DrawAhead.plan(model, init, seeds) is None
