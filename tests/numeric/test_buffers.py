"""numeric.buffers: simulate's weights in memory kept between calls, never shared while in use."""

from __future__ import annotations

import numpy as np
import pytest

from gradmath import MLP
from gradmath.numeric import buffers, simulate


@pytest.fixture(autouse=True)
def _empty_pool() -> None:
    buffers.release_memory()


def test_arrays_are_aligned_disjoint_and_of_the_asked_shape() -> None:
    arena = buffers.Arena()
    a = arena.empty((3, 5), np.dtype(np.float32))
    b = arena.empty((7,), np.dtype(np.float64))
    big = arena.empty((buffers.BLOCK // 8 + 1,), np.dtype(np.float64))  # its own block
    for x, shape, dt in ((a, (3, 5), np.float32), (b, (7,), np.float64)):
        assert x.shape == shape and x.dtype == dt and x.flags.c_contiguous
        assert x.ctypes.data % buffers.ALIGN == 0
    a[:] = 1.0
    b[:] = 2.0
    big[:] = 3.0
    assert np.all(a == 1.0) and np.all(b == 2.0)
    assert not np.shares_memory(a, b) and not np.shares_memory(b, big)


def test_a_block_returns_to_the_pool_only_when_nothing_points_into_it() -> None:
    arena = buffers.Arena()
    view = arena.empty((4, 4), np.dtype(np.float64)).T  # a view keeps the block alive
    arena.close()
    assert buffers.release_memory() == 0  # not pooled: still in use
    del view
    arena = buffers.Arena()
    x = arena.empty((4, 4), np.dtype(np.float64))
    address = x.ctypes.data
    del x
    arena.close()
    again = buffers.Arena()
    # the pooled block is handed out again (same memory), and only once
    assert again.empty((4, 4), np.dtype(np.float64)).ctypes.data == address
    assert buffers.Arena().empty((4, 4), np.dtype(np.float64)).ctypes.data != address
    assert buffers.release_memory() == 0


def test_repeated_simulate_reuses_memory_and_gives_the_same_numbers() -> None:
    mlp = MLP.square(32, 4, activation="tanh", init="xavier_normal")
    first = simulate(mlp, n_networks=4, batch=8, seed=3, progress=False)
    kept = buffers.release_memory()
    assert kept > 0  # the weights' blocks came back to the pool
    second = simulate(mlp, n_networks=4, batch=8, seed=3, progress=False)
    third = simulate(mlp, n_networks=4, batch=8, seed=3, progress=False)  # from pooled memory
    for p in (second, third):
        np.testing.assert_array_equal(p.log_q, first.log_q)
        np.testing.assert_array_equal(p.log_grad_q, first.log_grad_q)
        np.testing.assert_array_equal(p.log_wgrad_q, first.log_wgrad_q)


def test_the_pool_keeps_at_most_keep_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buffers, "KEEP", buffers.BLOCK + 1024)
    arenas = [buffers.Arena() for _ in range(3)]
    for a in arenas:
        a.empty((16,), np.dtype(np.float64))
    for a in arenas:
        a.close()
    assert buffers.release_memory() <= buffers.KEEP
