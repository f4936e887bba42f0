"""Sweeps and simulate on a real Dask cluster give bit-for-bit the results of a local run.

The cluster is a Dask ``LocalCluster`` of two worker processes (one thread each) started by the
test itself, so CI needs nothing but the ``distributed`` package (test extra).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from gradmath import MLP, GradmathError, sweep, threads
from gradmath.cli import main
from gradmath.commands.sweep import validate_cell
from gradmath.numeric import simulate

CASES = [
    dict(activation=a, init="glorot_normal", depth=3, width=24, sigma_b2=0.05, networks=6,
         batch=5, seed=s)
    for a, s in zip(("tanh", "relu", "gelu", "sigmoid"), sweep.seeds(7, 4), strict=True)
]  # fmt: skip


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _profile_arrays(p: Any) -> list[np.ndarray]:
    return [p.log_q, p.log_grad_q, p.log_wgrad_q, p.log_q_se, p.log_grad_q_se, p.log_wgrad_q_se]


@pytest.mark.slow
def test_sweep_on_dask_equals_the_local_run(client: Any) -> None:
    local = sweep.run(validate_cell, CASES, workers=0)
    remote = sweep.run(validate_cell, CASES, scheduler=client)
    spread = {w for w in client.run(os.getpid).values()}
    assert len(spread) == 2  # two worker processes really ran
    assert len(remote) == len(CASES)
    for a, b in zip(local, remote, strict=True):
        assert a.shape == (3, 3) and np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_simulate_on_a_dask_executor_equals_the_local_run(client: Any) -> None:
    mlp = MLP.square(20, 4, activation="tanh", init="glorot_normal", sigma_b2=0.1)
    kwargs: dict[str, Any] = dict(n_networks=9, batch=6, seed=3, progress=False)
    local = simulate(mlp, **kwargs)
    # memory_budget small enough that networks go out in several groups (and checkpoint)
    remote = simulate(mlp, executor=client.get_executor(), memory_budget=20_000, **kwargs)
    for a, b in zip(_profile_arrays(local), _profile_arrays(remote), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_cli_sweep_with_a_scheduler_address_prints_what_the_local_run_prints(
    client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", "--activation", "tanh", "relu", "--depth", "2", "--width", "16"]
    argv += ["--networks", "4", "--batch", "4"]
    assert main([*argv, "--workers", "0"]) == 0
    local = capsys.readouterr().out
    assert main([*argv, "--scheduler", client.scheduler.address]) == 0
    assert capsys.readouterr().out == local
    assert local.count("agrees") == 2


def test_process_pool_sweep_equals_in_process() -> None:
    job = functools.partial(validate_cell, init="he_normal", depth=2, width=16, sigma_b2=0.0,
                            networks=4, batch=4)  # fmt: skip
    cases = [dict(activation=a, seed=s) for a, s in zip(("relu", "elu"), (1, 2), strict=True)]
    for a, b in zip(sweep.run(job, cases, workers=0), sweep.run(job, cases, workers=2),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


def test_seeds_are_distinct_and_reproducible() -> None:
    s = sweep.seeds(0, 100)
    assert len(set(s)) == 100 and s == sweep.seeds(0, 100) and s != sweep.seeds(1, 100)
    assert all(isinstance(x, int) and x >= 0 for x in s)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheduler": "localhost:8786"}, "scheduler"),
        ({"scheduler": 42}, "scheduler"),
        ({"scheduler": "tcp://127.0.0.1:1", "workers": 2}, "workers"),
        ({"workers": -1}, "workers"),
        ({"executor": object()}, "executor"),
        ({"progress": "yes", "workers": 0}, "progress"),
    ],
)
def test_bad_sweep_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        sweep.run(pow, [{"base": 2, "exp": 3}], **kwargs)


def test_cli_refuses_a_bad_scheduler_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--depth", "2", "--scheduler", "10.0.0.5:8786"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "tcp://" in err


def test_limit_caps_gradmath_and_blas_threads_and_restores_them() -> None:
    from threadpoolctl import threadpool_info

    before = [lib["num_threads"] for lib in threadpool_info()]
    outer = threads.cores()
    with threads.limit(1):
        assert threads.cores() == 1
        assert all(lib["num_threads"] == 1 for lib in threadpool_info())
        with threads.limit(4):  # an inner limit never raises the budget
            assert threads.cores() == 1
    assert threads.cores() == outer
    assert [lib["num_threads"] for lib in threadpool_info()] == before


def test_environment_caps_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.cores() == 1
    monkeypatch.setenv(threads.ENV, "two")
    with pytest.raises(GradmathError, match=threads.ENV):
        threads.cores()
    with pytest.raises(GradmathError, match="threads"):
        threads.limit(0).__enter__()


def test_pool_threads_run_with_one_blas_thread_and_a_budget_of_one() -> None:
    from threadpoolctl import threadpool_info

    def inside() -> tuple[int, list[int]]:
        # BLAS pools are process-wide (OpenMP's thread count is per thread: not checked here)
        blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        return threads.cores(), blas

    with threads.pool(1) as none:
        assert none is None
    with threads.pool(4) as ex:
        if threads.cores() < 2:  # one core: no pool
            assert ex is None
            return
        assert ex is not None and ex._max_workers == threads.cores()  # type: ignore[attr-defined]
        for budget, blas in ex.map(lambda _: inside(), range(4)):
            assert budget == 1 and set(blas) == {1}


def test_environment_caps_blas_too_when_the_tasks_run_inline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GRADMATH_NUM_THREADS=1 runs a pool's tasks inline, and their matmuls on one BLAS
    thread: OpenBLAS's own pool (a thread per core) spinning beside them made a simulate call
    under load take 20 s instead of 1.3 s."""
    from threadpoolctl import threadpool_info

    def blas() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas()
    monkeypatch.setenv(threads.ENV, "1")
    with threads.pool(4) as ex:
        assert ex is None
        assert set(blas()) == {1}
    assert blas() == before


@pytest.mark.parametrize("tasks", [-1, 2.5, True, "4", None])
def test_pool_refuses_a_task_count_that_is_not_a_count(tasks: object) -> None:
    with pytest.raises(GradmathError, match=r"`tasks` .*integer >= 0"), threads.pool(tasks):  # type: ignore[arg-type]
        pass


def test_pool_of_no_tasks_is_inline() -> None:
    with threads.pool(0) as ex:
        assert ex is None
