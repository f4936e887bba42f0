"""Shared test settings.

Hypothesis is derandomised so every run checks the same examples. Optional references (PyTorch,
a TeX engine) make their tests skip on a machine without them; CI installs them all and sets
``GRADMATH_NO_SKIP=1``, under which a skip is a failure, so no check there passes unrun.
"""

from __future__ import annotations

import os
from collections.abc import Generator
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
