"""The Lightning callback on real (tiny, CPU) Trainer.fit runs: the same two symptoms as the
plain-loop monitor, stalled lower layers and weights that become NaN."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")
from lightning.pytorch.utilities.warnings import PossibleUserWarning  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import gradmath  # noqa: E402
from gradmath import GradmathError  # noqa: E402
from gradmath.torch.lightning import TrainingMonitorCallback  # noqa: E402

from .models import glorot, linear_init, mlp  # noqa: E402


class Module(pl.LightningModule):
    def __init__(self, net: nn.Module, lr: float, regression: bool) -> None:
        super().__init__()
        self.net, self.lr, self.regression = net, lr, regression
        self.losses: list[float] = []

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> torch.Tensor:
        x, y = batch
        out = self.net(x)
        if self.regression:
            loss = (out - y).square().mean()
        else:
            loss = nn.functional.cross_entropy(out, y)
        self.losses.append(float(loss.detach()))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


@pytest.fixture(autouse=True)
def _quiet_lightning() -> Iterator[None]:
    # pytest turns warnings into errors: Lightning's advice (PossibleUserWarning: data-loader
    # workers, logging interval; depends on the machine's cores) and its own use of a torch
    # pytree API that torch 2.13 deprecates are not the code under test.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PossibleUserWarning)
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
        yield


Fit = tuple[TrainingMonitorCallback, pl.Trainer, list[float]]


def _fit(net: nn.Module, lr: float, *, regression: bool = False, **kw: object) -> Fit:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    if regression:  # random targets of the output's width, mean squared error
        y = torch.randn(256, 32, generator=g)
    else:
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)
    callback = TrainingMonitorCallback(**kw)  # type: ignore[arg-type]
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )  # fmt: skip
    module = Module(net, lr, regression)
    trainer.fit(module, loader)
    return callback, trainer, module.losses


def test_deep_sigmoid_lower_layers_do_not_change() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(mlp(nn.Sigmoid, 10, 32, n_in=16), nn.Sigmoid(), nn.Linear(32, 3))
    linear_init(glorot)(net)
    callback, trainer, losses = _fit(net, lr=0.5)
    h = callback.history()
    assert h.steps == 24 == trainer.global_step  # 3 epochs of 8 batches, every step recorded
    assert h.layers[0] == "net.0.0" and h.layers[-1] == "net.2"
    assert h.divergence is None and np.all(np.isfinite(h.loss))
    d = gradmath.diagnose(h)
    assert d.verdict == "vanishing"
    assert {1, 2, 3, 4} <= set(d.stalled_layers)  # lower layers < 1% of the top's change
    assert 11 not in d.stalled_layers
    assert np.median(h.update_ratio[:, -1]) > 100 * np.median(h.update_ratio[:, 0])
    assert h.loss.tolist() == losses  # training_step's loss of each step
    assert not trainer.optimizers[0]._optimizer_step_post_hooks  # hooks removed at the end


def test_weights_becoming_nan_are_detected() -> None:
    torch.manual_seed(0)
    callback, trainer, losses = _fit(mlp(nn.ReLU, 4, 32, n_in=16), lr=100.0, regression=True)
    h = callback.history()
    assert h.divergence is not None and h.steps == h.divergence.step
    assert h.steps + 1 + h.steps_after_divergence == trainer.global_step == 24
    assert h.loss.tolist() == losses[: h.steps]
    d = gradmath.diagnose(h)
    assert d.verdict == "exploding" and d.nonfinite
    assert str(h.divergence) in str(d)


def test_stop_on_divergence_and_arguments() -> None:
    torch.manual_seed(0)
    callback, trainer, _ = _fit(
        mlp(nn.ReLU, 4, 32, n_in=16), lr=100.0, regression=True, stop_on_divergence=True
    )
    h = callback.history()
    assert h.divergence is not None and h.steps_after_divergence == 0
    assert trainer.global_step == h.divergence.step + 1  # stopped right after that step
    with pytest.raises(GradmathError, match="every"):
        TrainingMonitorCallback(every=0)
    with pytest.raises(GradmathError, match="run Trainer"):
        TrainingMonitorCallback().history()
