"""Thread budgets: never more busy threads than cores, across BLAS and gradmath's own pools.

Two kinds of threads compete for the cores of a gradmath process: the BLAS/OpenMP pools behind
``np.matmul`` (OpenBLAS starts one per core) and the thread pools gradmath starts itself (e.g.
``simulate`` runs groups of networks on every core). Left alone they multiply: a pool of two
threads that each call a two-thread BLAS runs four busy threads on two cores, and OpenBLAS's
threads spin while they wait for each other, so when another process holds a core the spinning
thread steals the time of the working one. Measured on the 2-core CI machine type (issue 16):
with one core kept busy by another process, a tanh width-256 batch-64 ``simulate`` took 7.7 s
with default threading against 0.79 s with one BLAS thread.

The rule here: gradmath parallelises over *independent work* (networks, sweep jobs) with at
most :func:`cores` threads, and inside such a pool every BLAS call runs on one thread. A
worker of a process pool or of a Dask cluster is one such thread: :func:`limit` gives it one
BLAS thread and a gradmath budget of one, so W workers keep W cores busy, never W × cores.

The budget is a context variable (per thread, per asyncio task), set by :func:`limit` for the
code inside the ``with`` block; ``GRADMATH_NUM_THREADS`` in the environment caps it for a whole
process (as ``OMP_NUM_THREADS`` does for OpenMP). BLAS pools are process-wide: :func:`limit`
sets them through threadpoolctl (Pedregosa et al.'s ``threadpool_limits``, which talks to the
loaded OpenBLAS/MKL/OpenMP libraries directly) and restores them on exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from gradmath.errors import GradmathError

__all__ = ["cores", "limit", "pool"]

#: gradmath's own thread budget for the code running in this context (None: every core).
_BUDGET: ContextVar[int | None] = ContextVar("gradmath_thread_budget", default=None)

ENV = "GRADMATH_NUM_THREADS"

#: (len(sys.modules) when built, threadpoolctl.ThreadpoolController): see _blas_limit.
_CONTROLLER: tuple[int, Any] | None = None


def _blas_limit(n: int) -> Any:
    """threadpoolctl's limit of every loaded BLAS/OpenMP pool to ``n`` threads (a context
    manager restoring them). Finding the pools scans the process's shared libraries (~10 ms,
    as much as a small ``simulate`` call), so the controller is kept and rebuilt only when
    modules were imported since: a new extension module is how a new pool gets loaded."""
    from threadpoolctl import ThreadpoolController

    global _CONTROLLER
    key = len(sys.modules)
    if _CONTROLLER is None or _CONTROLLER[0] != key:
        _CONTROLLER = (key, ThreadpoolController())
    return _CONTROLLER[1].limit(limits=n)


def _machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (Linux)
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cores() -> int:
    """Threads gradmath may keep busy here: the cores this process may use, capped by
    ``GRADMATH_NUM_THREADS`` and by an enclosing :func:`limit`.

    >>> with limit(1):
    ...     cores()
    1
    """
    n = _machine_cores()
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            n = min(n, max(1, int(env)))
        except ValueError:
            raise GradmathError(
                f"The environment variable {ENV} (={env!r}) must be a positive integer."
            ) from None
    budget = _BUDGET.get()
    return n if budget is None else max(1, min(n, budget))


@contextmanager
def limit(threads: int = 1) -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS/OpenMP threads and gradmath thread budget.

    For a worker (one thread of a pool, a process-pool or Dask worker) ``threads=1``: its
    parallelism comes from the pool, so its matmuls must not start threads of their own. The
    BLAS limit is process-wide and restored on exit.
    """
    from gradmath.errors import check_positive_int

    n = check_positive_int("threads", threads)
    outer = _BUDGET.get()
    token = _BUDGET.set(n if outer is None else min(n, outer))
    try:
        with _blas_limit(min(n, _machine_cores())):
            yield
    finally:
        _BUDGET.reset(token)


@contextmanager
def pool(tasks: int) -> Iterator[ThreadPoolExecutor | None]:
    """A pool of min(``tasks``, :func:`cores`) threads for independent work, or ``None`` when
    one thread would do (run the tasks inline then). ``tasks`` counts the tasks (an integer
    >= 0; 0 or 1 gives ``None``, as does a budget of one thread, under which BLAS runs
    :func:`cores` threads too).

    While the pool is open BLAS runs one thread per call and each pool thread has a gradmath
    budget of one, so the pool never keeps more threads busy than cores. Work split this way
    (e.g. groups of networks) also runs its elementwise NumPy passes in parallel, which a
    multi-threaded BLAS alone does not. Under contention the pool's threads simply share the
    remaining cores, where spinning BLAS threads would wait for each other (module docstring).
    """
    from gradmath.errors import check_positive_int

    n = min(check_positive_int("tasks", tasks, minimum=0,
                               what="an integer >= 0 (the number of tasks)"), cores())  # fmt: skip
    if n < 2:
        cap = cores()
        if cap < _machine_cores():
            # GRADMATH_NUM_THREADS (or an enclosing limit) caps BLAS as well: the tasks run
            # inline, and their matmuls must not start a thread per core
            with _blas_limit(cap):
                yield None
        else:
            yield None
        return
    with (
        _blas_limit(1),
        ThreadPoolExecutor(n, initializer=_BUDGET.set, initargs=(1,)) as ex,
    ):
        yield ex
