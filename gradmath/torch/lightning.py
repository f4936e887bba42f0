"""A Lightning callback that watches training like :class:`~gradmath.torch.TrainingMonitor`.

Needs ``lightning`` (``pip install lightning``); importing this module imports it, nothing else
in gradmath does::

    from gradmath.torch.lightning import TrainingMonitorCallback

    monitor = TrainingMonitorCallback()
    lightning.Trainer(max_epochs=3, callbacks=[monitor]).fit(model, loader)
    print(gradmath.diagnose(monitor.history()))

The history is the one :class:`~gradmath.torch.TrainingMonitor` records (per optimizer step and
weight layer: ‖∂ℓ/∂W‖_F, the update-to-weight ratio ‖ΔW‖_F/‖W‖_F, the relative change since
training started, the first non-finite gradient or weight), so ``gradmath.diagnose`` names
stalled lower layers and weights that became NaN on a Lightning run as on a plain loop.

Why not the optimizer's step pre-hook, as in a plain loop: Lightning calls
``optimizer.step(closure)`` and the closure runs ``training_step`` and ``backward`` *inside* the
step, after a pre-hook has fired. The gradients are read in ``on_before_optimizer_step``
(after the closure, before gradient clipping and the update, as Lightning's own ``grad_norm``
utility does) and the update after the step (an optimizer step post-hook). The loss of each
recorded step is ``training_step``'s (``outputs["loss"]`` in ``on_train_batch_end``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from gradmath.errors import GradmathError
from gradmath.torch.monitor import TrainingHistory, TrainingMonitor

__all__ = ["TrainingMonitorCallback"]


class TrainingMonitorCallback(pl.Callback):
    """Record per-layer gradient norms and updates at every optimizer step of ``Trainer.fit``.

    ``layers`` and ``every`` are :class:`~gradmath.torch.TrainingMonitor`'s (qualified module
    names within the LightningModule; record every n-th step). ``stop_on_divergence``: ask the
    trainer to stop after the first step with a non-finite gradient or weight (as
    ``gradmath.numeric.train`` does); by default training goes on and later steps are counted.
    The weights at ``on_train_start`` are the reference for the relative weight change. One
    optimizer is watched; a module with several (a GAN) is refused.
    """

    def __init__(
        self, *, layers: list[str] | None = None, every: int = 1, stop_on_divergence: bool = False
    ) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise GradmathError(f"`every` (={every!r}) must be a positive integer.")
        self.layers = layers
        self.every = every
        self.stop_on_divergence = bool(stop_on_divergence)
        self.monitor: TrainingMonitor | None = None
        self._handles: list[Any] = []
        self._armed = False
        self._trainer: pl.Trainer | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._remove_hooks()
        if len(trainer.optimizers) != 1:
            raise GradmathError(
                f"TrainingMonitorCallback watches one optimizer; the module configured "
                f"{len(trainer.optimizers)}."
            )
        self.monitor = TrainingMonitor(pl_module, None, layers=self.layers, every=self.every)
        self._trainer = trainer
        self._handles = [trainer.optimizers[0].register_step_post_hook(self._after_step)]
        self._armed = False

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self.monitor is not None:
            self.monitor.before_step()
            self._armed = True

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        # A step without on_before_optimizer_step (none in Lightning's loops) is not counted.
        if self.monitor is None or not self._armed:
            return
        self._armed = False
        self.monitor.after_step()
        if self.stop_on_divergence and self.monitor.divergence is not None and self._trainer:
            self._trainer.should_stop = True

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if self.monitor is not None and isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self.monitor.log_loss(loss, step="last")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._remove_hooks()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._remove_hooks()

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._trainer = None

    def history(self) -> TrainingHistory:
        """The records so far (:meth:`gradmath.torch.TrainingMonitor.history`)."""
        if self.monitor is None:
            raise GradmathError("TrainingMonitorCallback has recorded nothing: run Trainer.fit.")
        return self.monitor.history()
