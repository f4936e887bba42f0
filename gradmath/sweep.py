"""Many independent jobs on one executor: local processes by default, a Dask cluster when given.

A sweep is a function and a list of keyword-argument sets (a validation matrix over activations,
widths and depths; a phase diagram per activation; spectra over depths): :func:`run` calls
``fn(**case)`` for every case and returns the results in the order of the cases. Where the jobs
run is chosen by :func:`open_executor` (design.md, "Where users outgrow one machine"):

- ``workers=0``: in this process, one after the other;
- default: a local pool of ``workers`` processes (every core), started with ``spawn``;
- ``scheduler="tcp://host:8786"`` or a ``distributed.Client``: the Dask cluster behind it,
  through ``Client.get_executor()``;
- ``executor=``: any ``concurrent.futures.Executor`` the caller already has.

**Same results however jobs are spread.** Every job runs under :func:`gradmath.threads.limit`
(1): one BLAS thread and a gradmath thread budget of one, in this process as on a worker, so a
job takes the same floating-point path wherever it runs, and W workers keep W cores busy. A
job's randomness must come from its own arguments (a seed per case; :func:`seeds` spawns
independent ones), never from where or when it runs. Then the results are bit-identical
between ``workers=0``, a process pool and a Dask cluster (tested against a Dask
``LocalCluster``).

>>> run(pow, [{"base": 2, "exp": 10}, {"base": 3, "exp": 2}], workers=0)
[1024, 9]
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from gradmath import threads
from gradmath.errors import GradmathError, check_positive_int, check_seed

__all__ = ["open_executor", "run", "seeds"]

T = TypeVar("T")

SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


def _call(fn: Callable[..., T], kwargs: Mapping[str, Any]) -> T:
    """One job, on one thread (module-level so that process pools and Dask can pickle it)."""
    with threads.limit(1):
        return fn(**kwargs)


def seeds(seed: int, n: int) -> list[int]:
    """``n`` independent seeds for the cases of a sweep (NumPy's ``SeedSequence.spawn``: the
    children's streams do not overlap; O'Neill 2015, NumPy NEP 19). Each seed is a plain int
    so that a case is readable and can be rerun alone.

    >>> seeds(0, 3) == seeds(0, 3)
    True
    """
    import numpy as np

    root = np.random.SeedSequence(check_seed(seed))
    return [int(s.generate_state(1, np.uint64)[0]) for s in root.spawn(check_positive_int("n", n))]


def _dask_client(scheduler: object) -> tuple[Any, bool]:
    """(client, whether we own it) for a scheduler address or an existing Client."""
    try:
        from distributed import Client
    except ImportError:
        raise GradmathError(
            "A Dask `scheduler` needs the distributed package: pip install 'gradmath[dask]'."
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if not (isinstance(scheduler, str) and scheduler.startswith(SCHEMES)):
        raise GradmathError(
            f"`scheduler` (={scheduler!r}) must be a Dask scheduler address such as "
            "'tcp://10.0.0.5:8786' or a distributed.Client."
        )
    try:
        return Client(scheduler, timeout="30s"), True
    except OSError as exc:  # nothing listening, DNS, TLS: say which address failed
        raise GradmathError(f"Cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None


@contextmanager
def open_executor(
    *, scheduler: object = None, workers: int | None = None
) -> Iterator[Executor | None]:
    """The executor a sweep runs on (``None``: run in this process), closed on exit.

    Args:
        scheduler: a Dask scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``;
            a client given here is left open, one made from an address is closed.
        workers: local processes when no scheduler is given (default: every core;
            0: no pool, jobs run in this process).
    """
    if scheduler is not None:
        if workers is not None:
            raise GradmathError(
                f"`workers` (={workers!r}) is for local processes; with a Dask `scheduler` the "
                "cluster's workers run the jobs. Pass one or the other."
            )
        client, owned = _dask_client(scheduler)
        try:
            yield client.get_executor()
        finally:
            if owned:
                client.close()
        return
    n = threads.cores() if workers is None else check_positive_int("workers", workers, minimum=0)
    if n == 0:
        yield None
        return
    # spawn: workers start clean (no locks forked from this process's threads, such as BLAS's).
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def run(
    fn: Callable[..., T],
    cases: Iterable[Mapping[str, Any]],
    *,
    executor: Executor | None = None,
    scheduler: object = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> list[T]:
    """``[fn(**case) for case in cases]``, spread over an executor, in the order of ``cases``.

    ``fn`` must be importable by the workers (a module-level function or a
    ``functools.partial`` of one) and deterministic given its arguments. Pass an ``executor``,
    or let :func:`open_executor` make one from ``scheduler`` / ``workers`` (module docstring). The
    first job that raises stops the sweep with its exception.
    """
    todo: Sequence[Mapping[str, Any]] = [dict(c) for c in cases]
    if not callable(fn):
        raise GradmathError(f"`fn` (={fn!r}) must be a callable.")
    if executor is not None:
        if scheduler is not None or workers is not None:
            raise GradmathError("Pass `executor` alone, or `scheduler`/`workers` to make one.")
        if not isinstance(executor, Executor):
            raise GradmathError(
                f"`executor` must be a concurrent.futures.Executor, got {type(executor).__name__}."
            )
        return _run_on(executor, fn, todo, progress)
    with open_executor(scheduler=scheduler, workers=workers) as ex:
        return _run_on(ex, fn, todo, progress)


def _run_on(
    ex: Executor | None,
    fn: Callable[..., T],
    cases: Sequence[Mapping[str, Any]],
    progress: bool | None,
) -> list[T]:
    bar = _bar(progress, len(cases))
    try:
        if ex is None:
            out = []
            for case in cases:
                out.append(_call(fn, case))
                if bar is not None:
                    bar.update(1)
            return out
        futures = [ex.submit(_call, fn, case) for case in cases]
        results = []
        for f in futures:
            results.append(f.result())
            if bar is not None:
                bar.update(1)
        return results
    finally:
        if bar is not None:
            bar.close()


def _bar(progress: bool | None, total: int) -> Any:
    if progress is not None and not isinstance(progress, bool):
        raise GradmathError(f"`progress` (={progress!r}) must be True, False or None.")
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sweep", unit="job", leave=False, delay=0.0 if progress else 1.0)
