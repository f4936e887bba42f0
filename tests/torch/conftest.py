"""The models here are small: one torch thread is faster than two fighting over busy cores
(measured 18× faster on the shared 2-core CI machine type under load)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
