"""Shared test settings.

Hypothesis is derandomised so every run checks the same examples. Optional references (PyTorch,
a TeX engine) make their tests skip on a machine without them; CI installs them all and sets
``GRADMATH_NO_SKIP=1``, under which a skip is a failure, so no check there passes unrun.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "gradmath",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("gradmath")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("GRADMATH_NO_SKIP") == "1":
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under GRADMATH_NO_SKIP=1: {reason}"


def _same_bytes(a: Path, b: Path) -> None:
    """Fail unless the two files hold the same bytes, naming their sizes and the first byte
    that differs. pytest's own explanation of ``a.read_bytes() == b.read_bytes()`` is an ndiff
    of the two, in full where CI is set: for two 1 MB PDFs it ran for over an hour."""
    x, y = a.read_bytes(), b.read_bytes()
    if x != y:
        at = next(
            (i for i, (u, v) in enumerate(zip(x, y, strict=False)) if u != v), min(len(x), len(y))
        )
        pytest.fail(f"{a} ({len(x)} bytes) and {b} ({len(y)} bytes) differ from byte {at} on",
                    pytrace=False)  # fmt: skip


@pytest.fixture
def same_bytes() -> Callable[[Path, Path], None]:
    """``same_bytes(a, b)``: the two files hold the same bytes (a short message if not)."""
    return _same_bytes
