"""From a :class:`~gradmath.torch.translate.Translation` to gradmath's network, and from a
:class:`~gradmath.torch.measure.Measurement` to a :class:`~gradmath.Profile` of that network.

This is the public face of the subpackage: :func:`from_module` (model → network the theory
takes) and :func:`probe` (model → measured profile of the same network), so that
``compare(predict(from_module(model, x)), probe(model, x))`` is like for like.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gradmath.conditions import Conditions
from gradmath.errors import GradmathError
from gradmath.mlp import MLP
from gradmath.profile import Profile
from gradmath.torch._model import InitFn
from gradmath.torch.measure import Loss, Measurement, measure
from gradmath.torch.translate import Act, Dense, Translation, translate

__all__ = ["from_module", "network_of", "probe", "profile_of"]


def network_of(translation: Translation) -> MLP:
    """The gradmath network of a translated model.

    A chain of dense layers with elementwise activations between them becomes an
    :class:`~gradmath.MLP` with the read weight variances (the matched initializer, or a normal
    one of the sample variance) and bias variances.
    """
    ops = translation.ops
    dense: list[Dense] = []
    acts: list[Any] = []
    for op in ops:
        if isinstance(op, Dense):
            if len(acts) < len(dense):
                acts.append("linear")
            dense.append(op)
        elif isinstance(op, Act) and dense and len(acts) < len(dense):
            acts.append(op.activation)
        else:
            raise GradmathError(
                f"{translation.model_name}: {op.describe()} cannot be translated yet; "
                "only chains of nn.Linear layers and activations are supported."
            )
    if not dense:
        raise GradmathError(f"{translation.model_name} has no nn.Linear layer to translate.")
    if len(acts) < len(dense):
        acts.append("linear")
    widths = (dense[0].weight.fan_in, *(d.weight.fan_out for d in dense))
    return MLP(
        widths,
        activation=acts,
        init=[d.weight.init for d in dense],
        sigma_b2=[d.sigma_b2 for d in dense],
    )


def from_module(model: nn.Module, example_input: Any) -> MLP:
    """The gradmath network of ``model``, read by running it once on ``example_input``.

    >>> from torch import nn
    >>> net = from_module(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
    ...                   torch.randn(8, 64))
    >>> net.widths, [a.name for a in net.activation], net.init[0].name
    ((64, 32, 10), ['relu', 'linear'], 'torch_linear_default')
    """
    return network_of(translate(model, example_input))


def profile_of(network: MLP, translation: Translation, measurement: Measurement) -> Profile:
    """The measured profile of ``network``: the measurement's rows at the network's sites."""
    idx = [measurement.index(s.name) for s in translation.sites if s.kind == "dense"]
    if len(idx) != network.depth:
        raise GradmathError(
            f"The measurement has {len(idx)} dense sites, the network {network.depth} layers."
        )

    def rows(a: np.ndarray) -> np.ndarray:
        return np.asarray(a)[idx]

    c = measurement.conditions
    loss = c.get("loss")
    if loss not in (None, "mse"):
        raise GradmathError(
            f"The measurement used a custom loss ({loss!r}); a theory comparison needs the "
            "default Gaussian output gradient or loss='mse'."
        )
    conditions = Conditions(
        input_q=c["input_q"],
        output_grad_q=c.get("output_grad_q") or 1.0,
        loss=loss,
        batch=c.get("batch"),
        n_networks=c.get("n_networks"),
    )
    return Profile(
        network.network,
        rows(measurement.log_q),
        rows(measurement.log_grad_q),
        rows(measurement.log_wgrad_q),
        log_q_se=rows(measurement.log_q_se),
        log_grad_q_se=rows(measurement.log_grad_q_se),
        log_wgrad_q_se=rows(measurement.log_wgrad_q_se),
        source="torch probe",
        conditions=conditions,
    )


def probe(
    model: nn.Module,
    inputs: Any,
    *,
    n_inits: int = 16,
    loss: Loss = None,
    seed: int = 0,
    init: InitFn | None = None,
    dtype: torch.dtype | None = None,
    output_grad_q: float = 1.0,
) -> Profile:
    """Measure ``model`` over ``n_inits`` initialisations as a :class:`~gradmath.Profile` of
    ``from_module(model, inputs)``: one row per site, Monte-Carlo standard errors across inits
    (the estimator and the arguments are :func:`gradmath.torch.measure`'s).

    >>> from torch import nn
    >>> p = probe(nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4)),
    ...           torch.randn(16, 32), n_inits=4)
    >>> p.source, p.depth, p.log_q_se.shape
    ('torch probe', 2, (2,))
    """
    translation = translate(model, inputs)
    network = network_of(translation)
    m = measure(model, inputs, n_inits=n_inits, loss=loss, seed=seed, init=init, dtype=dtype,
                output_grad_q=output_grad_q)  # fmt: skip
    return profile_of(network, translation, m)
