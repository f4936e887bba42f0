"""The models here are small: one torch thread is faster than two fighting over busy cores
(measured 18× faster on the shared 2-core CI machine type under load)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _default_dtype_is_restored() -> object:
    """Each test starts from torch's float32 default and may not leave another one behind."""
    before = torch.get_default_dtype()
    yield
    after = torch.get_default_dtype()
    torch.set_default_dtype(before)
    assert after == before, f"the test changed torch's default dtype to {after}"
