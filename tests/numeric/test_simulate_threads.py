"""simulate on every core: the same numbers whatever the thread budget, and a memory plan that
stacks fewer networks before it checkpoints (which would draw every weight twice)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradmath import MLP, threads
from gradmath.numeric import simulate
from gradmath.numeric.simulation import memory_plan


def _arrays(p: Any) -> list[np.ndarray]:
    return [p.log_q, p.log_grad_q, p.log_wgrad_q, p.log_q_se, p.log_grad_q_se, p.log_wgrad_q_se]


def test_thread_budget_does_not_change_the_numbers() -> None:
    # Groups of networks run on a pool of threads.cores() threads, one BLAS thread each; each
    # network has its own generators, so neither the budget nor the grouping shows.
    mlp = MLP.square(24, 5, activation="tanh", init="glorot_normal", sigma_b2=0.1)
    kwargs: dict[str, Any] = dict(n_networks=7, batch=5, seed=11, progress=False)
    default = simulate(mlp, **kwargs)
    with threads.limit(1):
        alone = simulate(mlp, **kwargs)
    small = simulate(mlp, memory_budget=30_000, **kwargs)  # many small groups, checkpointed
    for a, b, c in zip(_arrays(default), _arrays(alone), _arrays(small), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_float32_thread_budget_does_not_change_the_numbers() -> None:
    mlp = MLP.square(20, 4, activation="relu", init="he_normal")
    kwargs: dict[str, Any] = dict(n_networks=6, batch=4, seed=2, dtype=np.float32, progress=False)
    with threads.limit(1):
        alone = simulate(mlp, **kwargs)
    for a, b in zip(_arrays(simulate(mlp, **kwargs)), _arrays(alone), strict=True):
        np.testing.assert_array_equal(a, b)


def test_plan_stacks_fewer_networks_before_it_checkpoints() -> None:
    # Width 512, depth 20, batch 64, float64: one network keeps ~48 MiB (weights and three
    # batch × width tensors per layer), 16 networks ~770 MiB, over the 512 MiB default.
    mlp = MLP.square(512, 20, activation="tanh", init="glorot_normal")
    per_network = 20 * (512 * 513 + 3 * 64 * 512) * 8
    K, C = memory_plan(mlp, batch=64, n_networks=16)
    n_threads = threads.cores()
    whole = memory_plan(mlp, batch=64, n_networks=16, memory_budget=1e12)[1]
    assert C == whole  # one segment: nothing recomputed, no weight drawn twice
    assert n_threads * K * per_network <= 512 * 2**20  # the groups running at once fit
    groups = -(-16 // K)
    assert groups % n_threads == 0 or groups < n_threads  # no thread idles at the end
    # Only when one network per thread does not fit is the forward pass checkpointed.
    K1, C1 = memory_plan(mlp, batch=64, n_networks=16, memory_budget=per_network / 2)
    assert K1 == 1 and C1 < whole
