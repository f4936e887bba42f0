"""Watch a real training run: per-layer gradient norms, update-to-weight ratios, non-finite steps.

:class:`TrainingMonitor` hangs two hooks on the optimizer (``register_step_pre_hook`` and
``register_step_post_hook``), so a plain training loop needs no change beyond creating it::

    monitor = TrainingMonitor(model, optimizer)
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()              # the monitor records this step
    print(gradmath.diagnose(monitor.history()))

Before each step it reads every layer's weight gradient (the layers are the weight layers,
``weight`` of ``nn.Linear``, ``nn.Conv*d`` and Hugging Face's ``Conv1D``, in module order,
layer 1 next to the input as far as module order says so) and keeps a copy of the weights;
after the step it measures the update. Per step and layer it records

- ``grad_norms``: ‖∂ℓ/∂W‖_F, and ``grad_rms`` = ‖∂ℓ/∂W‖_F/√(numel W), the per-entry size that
  :func:`gradmath.diagnose` compares across layers of different shapes;
- ``update_ratio``: ‖ΔW‖_F/‖W‖_F of the step (Karpathy's rule of thumb: about 1e-3 for a layer
  that learns at a sensible rate; far below it the layer is not moving);
- ``weight_change``: ‖W_t − W_0‖_F/‖W_0‖_F since the monitor started, the quantity
  ``diagnose`` uses to name *stalled* layers (lower layers that do not change).

The first step whose gradients or updated weights are not finite becomes the ``divergence``
(which layer, gradient or weight, which step); later steps are counted but not recorded, as
``numeric.train`` stops there. :meth:`TrainingMonitor.history` returns a frozen
:class:`TrainingHistory` that ``gradmath.diagnose`` reads like a ``numeric.train`` record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from gradmath.errors import GradmathError
from gradmath.torch._model import check_model
from gradmath.torch.sites import weight_of

__all__ = ["StepDivergence", "TrainingHistory", "TrainingMonitor"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class StepDivergence:
    """The first optimizer step (0-based) at which a gradient or an updated weight was not
    finite; ``layers`` names the layers concerned, ``grad_rms`` holds that step's per-entry
    gradient norms (NaN/inf included) for ``diagnose``."""

    step: int
    quantity: Literal["gradient", "weight"]
    layers: tuple[str, ...]
    grad_rms: FloatArray | None

    def __str__(self) -> str:
        what = "gradients" if self.quantity == "gradient" else "weights after the update"
        return f"the {what} of {', '.join(self.layers)} became non-finite at step {self.step}"


@dataclass(frozen=True, eq=False)
class TrainingHistory:
    """Per-step records of a monitored run (module docstring). Arrays have one column per
    layer (``layers``, layer 1 first); ``weight_change`` has a first row of zeros (the start)."""

    layers: tuple[str, ...]
    grad_norms: FloatArray
    grad_rms: FloatArray
    update_ratio: FloatArray
    weight_change: FloatArray
    loss: FloatArray
    divergence: StepDivergence | None
    steps_after_divergence: int = 0
    time_unit: Literal["step"] = "step"

    @property
    def steps(self) -> int:
        return int(self.grad_norms.shape[0])


class TrainingMonitor:
    """Record per-layer gradient norms and updates at every ``optimizer.step()`` (module doc).

    ``layers``: qualified names of the modules to watch (default: every weight layer);
    ``every``: record every n-th step (the copy of the weights costs one model's memory and a
    copy per recorded step). Call :meth:`log_loss` with the loss if you want it recorded, and
    :meth:`close` (or use ``with``) to remove the hooks.

    ``optimizer=None`` hangs no hooks: the caller calls :meth:`before_step` once the gradients
    are ready and :meth:`after_step` after the update (what the Lightning callback
    :class:`gradmath.torch.lightning.TrainingMonitorCallback` does, since Lightning computes the
    gradients inside ``optimizer.step(closure)``, after a step pre-hook has fired).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        *,
        layers: list[str] | None = None,
        every: int = 1,
    ) -> None:
        self.model = check_model(model)
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise GradmathError(
                f"`optimizer` must be a torch.optim.Optimizer or None, got "
                f"{type(optimizer).__name__}."
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise GradmathError(f"`every` (={every!r}) must be a positive integer.")
        named = dict(model.named_modules())
        if layers is None:
            chosen = [(n, w) for n, m in named.items() if (w := weight_of(m)) is not None]
        else:
            chosen = []
            for n in layers:
                w = weight_of(named[n]) if n in named else None
                if w is None:
                    raise GradmathError(f"`layers` entry {n!r} is not a weight layer of the model.")
                chosen.append((n, w))
        if len(chosen) < 1:
            raise GradmathError("The model has no weight layers (nn.Linear, nn.Conv*d) to watch.")
        self.names = tuple(n for n, _ in chosen)
        self.weights = [w for _, w in chosen]
        self.every = every
        with torch.no_grad():
            self._w0 = [w.detach().clone() for w in self.weights]
            self._w0_norm = [float(torch.linalg.vector_norm(w.double())) for w in self._w0]
        self._rows: dict[str, list[Any]] = {k: [] for k in ("g", "u", "c", "loss")}
        self._before: list[torch.Tensor] | None = None
        self._grads: FloatArray | None = None
        self._step = 0
        self.divergence: StepDivergence | None = None
        self.after_divergence = 0
        self._pending_loss = math.nan
        self._last_recorded = -1
        self._handles = []
        if optimizer is not None:
            self._handles = [
                optimizer.register_step_pre_hook(lambda *_: self.before_step()),
                optimizer.register_step_post_hook(lambda *_: self.after_step()),
            ]

    def log_loss(
        self, loss: torch.Tensor | float, *, step: Literal["next", "last"] = "next"
    ) -> None:
        """Record the loss of the step about to be taken (``step="next"``), or of the step
        just recorded (``"last"``, when the loss is known only after the update)."""
        value = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        if step == "next":
            self._pending_loss = value
        elif step == "last":
            if self._last_recorded == self._step - 1:  # not a skipped or diverged step
                self._rows["loss"][-1] = value
        else:
            raise GradmathError(f"`step` (={step!r}) must be 'next' or 'last'.")

    def before_step(self) -> None:
        """Read the gradients (and copy the weights) of the step about to be taken."""
        self._before = None
        if self._step % self.every or self.divergence is not None:
            return
        norms = []
        for w in self.weights:
            g = w.grad
            norms.append(0.0 if g is None else float(torch.linalg.vector_norm(g.double())))
        self._grads = np.array(norms)
        with torch.no_grad():
            self._before = [w.detach().clone() for w in self.weights]

    def after_step(self) -> None:
        """Measure the update of the step just taken (after :meth:`before_step`)."""
        step = self._step
        self._step += 1
        if self.divergence is not None:
            self.after_divergence += 1
            return
        if self._before is None or self._grads is None:
            return
        sizes = np.array([w.numel() for w in self.weights], dtype=np.float64)
        g = self._grads
        if not np.all(np.isfinite(g)):
            bad = tuple(n for n, v in zip(self.names, g, strict=True) if not math.isfinite(v))
            self.divergence = StepDivergence(step, "gradient", bad, g / np.sqrt(sizes))
            return
        upd, chg, bad_w = [], [], []
        with torch.no_grad():
            for name, w, b, w0, n0 in zip(self.names, self.weights, self._before, self._w0,
                                          self._w0_norm, strict=True):  # fmt: skip
                wd = w.detach().double()
                if not bool(torch.isfinite(wd).all()):
                    bad_w.append(name)
                    continue
                norm = float(torch.linalg.vector_norm(b.double()))
                delta = float(torch.linalg.vector_norm(wd - b.double()))
                upd.append(delta / norm if norm > 0 else math.inf)
                drift = float(torch.linalg.vector_norm(wd - w0.double()))
                chg.append(drift / n0 if n0 > 0 else math.inf)
        if bad_w:
            self.divergence = StepDivergence(step, "weight", tuple(bad_w), g / np.sqrt(sizes))
            return
        self._rows["g"].append(g)
        self._rows["u"].append(np.array(upd))
        self._rows["c"].append(np.array(chg))
        self._rows["loss"].append(self._pending_loss)
        self._pending_loss = math.nan
        self._last_recorded = step
        self._before = None

    def history(self) -> TrainingHistory:
        """The records so far, as a frozen :class:`TrainingHistory`."""
        L = len(self.weights)
        sizes = np.array([w.numel() for w in self.weights], dtype=np.float64)

        def stack(key: str) -> FloatArray:
            rows = self._rows[key]
            return np.array(rows, dtype=np.float64).reshape(len(rows), L)

        g = stack("g")
        change = np.vstack([np.zeros((1, L)), stack("c")])
        return TrainingHistory(
            layers=self.names,
            grad_norms=g,
            grad_rms=g / np.sqrt(sizes),
            update_ratio=stack("u"),
            weight_change=change,
            loss=np.array(self._rows["loss"], dtype=np.float64),
            divergence=self.divergence,
            steps_after_divergence=self.after_divergence,
        )

    def close(self) -> None:
        """Remove the optimizer hooks."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> TrainingMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
