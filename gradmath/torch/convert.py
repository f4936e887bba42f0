"""From a :class:`~gradmath.torch.translate.Translation` to a gradmath
:class:`~gradmath.network.Network`, and from a :class:`~gradmath.torch.measure.Measurement` to
a :class:`~gradmath.Profile` of that network.

The public face of the subpackage: :func:`from_module` (model → the network the theory takes),
:func:`probe` (model → measured profile of the same network) and :func:`predict` (the mean-field
profile, with the uncertainty that measured-only parts pass on), so that
``compare(predict(net, like=p), p)`` with ``net = from_module(model, x)`` and
``p = probe(model, x)`` is like for like.

Translation table (:data:`TABLE`, one entry per kind of translated operation):

=====================================  =======================================================
PyTorch                                 gradmath layer
=====================================  =======================================================
``nn.Linear``, HF ``Conv1D``            ``Dense`` (the read initializer and bias variance)
activation modules and functions        ``Elementwise`` (the catalogue entry)
``nn.LayerNorm`` (γ = 1, β = 0)         ``LayerNorm(eps)`` (the model's ε)
``nn.BatchNorm1d/2d`` train mode        ``BatchNorm`` (batch statistics; over examples and
                                        positions for a tensor with positions; ε ≪ var,
                                        ignored)
``nn.BatchNorm*`` eval mode, init stats ``Scale(1/√(1 + ε))``
``nn.Dropout*`` train mode              ``Dropout(p)`` (eval mode: nothing)
``x * c`` for a number c                ``Scale(c)``
``nn.Conv1d/2d`` (groups = 1)           ``Conv`` (kernel, stride, padding, dilation, read init)
``nn.AvgPool*``, ``nn.AdaptiveAvgPool*``  ``AvgPool``, ``AdaptiveAvgPool`` (positions' covariance)
``nn.Flatten``, ``torch.flatten``       ``Flatten``
``nn.MaxPool1d/2d`` (after φ)           ``MaxPool(kernel, stride, padding, act=φ)`` (by draws)
``x + F(x)``                            ``Residual(F)``
``F(x) + S(x)`` (ResNet downsampling)   ``Residual(F, shortcut=S)`` (e.g. conv 1×1 + BN)
sums of measured parts (embeddings)     ``Measured`` parts and their measured sum
attention, embeddings, other pooling,  ``Measured``: the moments measured on the model, marked
unknown modules                         as measured only (:class:`~gradmath.network.Measured`)
views, ``nn.Identity``                  nothing (entries move, moments do not change)
=====================================  =======================================================

Inside a convolutional stack a measured-only part (max-pooling) hands on what the theory
around it needs, measured on the model: the second moments between its output's positions for
one example and for two (``Measured.cov``/``cross``, for the convolutions and batch norms
after it) and between the positions of the gradient it passes down (``Measured.grad_cov``).
An activation right before it (ReLU → max-pool) joins the segment: max-pooling passes the
gradient only to selected positions, where φ' is not a typical value.

Not translated yet, refused with a GradmathError naming the layer: normalisations with γ ≠ 1
or β ≠ 0; max-pooling with dilation or ceil mode is measured only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from gradmath.conditions import Conditions
from gradmath.errors import GradmathError
from gradmath.network import (
    AvgPool,
    BatchNorm,
    Dense,
    Dropout,
    Elementwise,
    Flatten,
    Layer,
    LayerNorm,
    MaxPool,
    Measured,
    Network,
    Residual,
    Scale,
    Serial,
)
from gradmath.network import Conv as ConvLayer
from gradmath.network.pooling import AdaptiveAvgPool
from gradmath.profile import Profile
from gradmath.torch._model import InitFn
from gradmath.torch.measure import Loss, Measurement, log_mean_se, measure
from gradmath.torch.translate import (
    Act,
    Add,
    Conv,
    Factor,
    Norm,
    Pool,
    Site,
    Translation,
    translate,
)
from gradmath.torch.translate import Dense as DenseOp
from gradmath.torch.translate import Flatten as FlattenOp
from gradmath.torch.translate import MaxPool as MaxPoolOp
from gradmath.torch.translate import Measured as MeasuredOp

__all__ = [
    "TABLE",
    "PathSite",
    "from_module",
    "network_of",
    "predict",
    "probe",
    "profile_of",
    "sites_on_path",
]


@dataclass(frozen=True)
class PathSite:
    """A site of the translated network: the translation's site and whether the theory
    takes it from measurement (a measured-only part, or the sum of such parts)."""

    site: Site
    measured_only: bool


@dataclass
class _Build:
    """State of one translation into layers: the measurement that supplies measured-only
    parts (``drop``: the init left out, for a jackknife replicate), the translation sites in
    the order the network opens its sites, and the model's name for messages."""

    model: str
    measurement: Measurement | None
    drop: int | None = None
    sites: list[PathSite] | None = None
    opened: int = 0
    spatial: bool = False  # a convolutional net (input with positions)

    def open(self, site: Site, measured: bool = False) -> None:
        self.opened += 1
        if self.sites is not None:
            self.sites.append(PathSite(site, measured))

    def positions(self, site: Site) -> tuple[Any, Any, Any]:
        """(K, C, G) between the positions of a measured-only site's output (one example, two)
        and of the gradient it passes down (None when not measured)."""
        m = self.measurement
        if m is None or site.name not in m.positions:
            return None, None, None
        k, c, g = m.positions[site.name]
        return k, c, (g if np.ndim(g) == 2 else None)

    def moments(
        self, site: Site, below: Site | None = None
    ) -> tuple[float, float, tuple[tuple[float, float], ...]]:
        """(log q, log gain, jackknife replicates) of a measured-only site; ``below``: the
        gain is taken from that site's output gradient (the segment starts there)."""
        m = self.measurement
        if m is None and self.sites is not None:
            return 0.0, 0.0, ()  # structure only (sites_on_path)
        if m is None:
            raise GradmathError(
                f"{self.model}: {site.name} ({site.module}) is measured only; its moments come "
                "from a measurement (from_module measures them)."
            )
        i = m.index(site.name)
        per = m.per_init[:, :, i].copy()  # (4, n_inits): log q, log q̃, log wgrad, log q̃ in
        if below is not None:
            per[3] = m.per_init[1, :, m.index(below.name)]
        n = per.shape[1]

        def value(keep: np.ndarray) -> tuple[float, float]:
            (lq, lg, _, lgi), _ = log_mean_se(per[:, keep].T)
            return float(lq), float(lgi - lg)

        everything = np.ones(n, dtype=bool)
        log_q, log_gain = value(everything)
        reps = []
        for k in range(n):
            keep = everything.copy()
            keep[k] = False
            reps.append(value(keep))
        if self.drop is not None:
            log_q, log_gain = reps[self.drop]
        return log_q, log_gain, tuple(reps)


Builder = Callable[[Any, _Build, bool], list[Layer]]


def _dense(op: DenseOp, b: _Build, first: bool) -> list[Layer]:
    b.open(op.site)
    return [Dense(op.weight.fan_out, init=op.weight.init, sigma_b2=op.sigma_b2)]


def _act(op: Act, b: _Build, first: bool) -> list[Layer]:
    return [Elementwise(op.activation)]


def _norm(op: Norm, b: _Build, first: bool) -> list[Layer]:
    if not op.affine_default:
        raise GradmathError(
            f"{b.model}: {op.site.module} is a normalisation with γ ≠ 1 or β ≠ 0 "
            "(gradmath's theory covers the initial γ = 1, β = 0)."
        )
    b.open(op.site)
    if op.kind == "layernorm":
        return [LayerNorm(eps=op.eps)]
    if op.training:
        return [BatchNorm()]
    raise GradmathError(
        f"{b.model}: {op.site.module} is a batch norm in eval mode (running statistics); "
        "gradmath's theory covers batch norm in training mode: call model.train()."
    )


def _factor(op: Factor, b: _Build, first: bool) -> list[Layer]:
    if op.p is not None:
        return [Dropout(op.p)]
    return [Scale(math.sqrt(op.factor))]


def _measured(
    op: MeasuredOp, b: _Build, first: bool, in_sum: int = 0, below: Site | None = None
) -> list[Layer]:
    """A measured-only part. ``in_sum``: the number of elements of the sum it is a part of
    (its gradient is the sum's, summed over the copies it was broadcast to); ``below``: the
    site whose output gradient the part's gain ends at (an activation folded into it)."""
    log_q, log_gain, reps = b.moments(op.site, below)
    if math.isnan(log_gain):
        if b.opened and not in_sum:
            raise GradmathError(
                f"{b.model}: the gradient {op.site.module} passes to its input was not "
                "measured, so the theory cannot resume below it."
            )
        # No site below it (it reads the model's input, e.g. token ids): no row receives
        # the gradient it passes on.
        log_gain = -math.inf
        reps = tuple((q, -math.inf) for q, _ in reps)
    factor = 0.0
    if in_sum:
        # ∂(a + b)/∂a = ∂L/∂(a + b), summed over the copies a was broadcast to: the part's
        # gradient is the sum's times the copies (if independent), and the part passes the
        # sum's gradient on to the next part of the chain unchanged.
        factor = math.log(in_sum / math.prod(op.site.shape))
        log_gain, reps = -factor, tuple((q, -factor) for q, _ in reps)
    b.open(op.site, True)
    shape = op.site.shape
    pos: tuple[int, ...] = ()
    cov = cross = grad = None
    if len(shape) == 4 or (len(shape) == 3 and b.spatial):
        # inside a conv stack: the theory after it needs the positions' second moments, and
        # the theory below it the gradient's
        pos = tuple(shape[2:])
        cov, cross, grad = b.positions(op.site)
        if cov is None and b.measurement is not None:
            raise GradmathError(
                f"{b.model}: the second moments between the positions of {op.site.module}'s "
                "output were not measured, so the theory cannot resume after it."
            )
        if cov is None:  # structure only (sites_on_path)
            cov = np.eye(math.prod(pos))
    return [Measured(op.site.width, log_q, log_gain, op.site.module, "measured", factor,
                     0.0 if op.centred else None, reps, pos, cov, cross, grad)]  # fmt: skip


def _all_measured(op: Any) -> bool:
    parts = (*op.branch, *op.shortcut)
    return bool(parts) and all(
        isinstance(p, MeasuredOp) or (isinstance(p, Add) and _all_measured(p)) for p in parts
    )


def _measured_sum(op: Add, b: _Build, n: int) -> list[Layer]:
    # A sum of measured parts (token + position embeddings): each part, then the sum, all as
    # measured; the sum passes its gradient on unchanged (gain 1) to every part.
    out: list[Layer] = []
    for part in (*op.branch, *op.shortcut):
        if isinstance(part, Add):
            out += _measured_sum(part, b, n)
        else:
            out += _measured(part, b, True, in_sum=n)
    log_q, _, reps = b.moments(op.site)
    centred = all(p.centred for p in _parts(op))
    b.open(op.site, True)
    factor = math.log(n / math.prod(op.site.shape))
    out.append(Measured(op.site.width, log_q, 0.0, op.site.module, "residual", factor,
                        0.0 if centred else None, tuple((q, 0.0) for q, _ in reps)))  # fmt: skip
    return out


def _parts(op: Add) -> list[MeasuredOp]:
    out: list[MeasuredOp] = []
    for p in (*op.branch, *op.shortcut):
        out += _parts(p) if isinstance(p, Add) else [p]
    return out


def _add(op: Add, b: _Build, first: bool) -> list[Layer]:
    if first and _all_measured(op):
        return _measured_sum(op, b, math.prod(op.site.shape))
    # Sites open in the order Residual opens them: the branch's, the shortcut's, the sum.
    branch = _layers(op.branch, b, False)
    shortcut = _layers(op.shortcut, b, False) if op.shortcut else []
    b.open(op.site)
    if not shortcut:
        return [Residual(Serial(*branch), alpha=1.0)]
    # ResNet's downsampling F(x) + BN(conv1×1(x)): a layer on the skip path
    skip = shortcut[0] if len(shortcut) == 1 else Serial(*shortcut)
    return [Residual(Serial(*branch), alpha=1.0, shortcut=skip)]


def _conv(op: Conv, b: _Build, first: bool) -> list[Layer]:
    if op.groups != 1:
        raise GradmathError(
            f"{b.model}: {op.site.module} is a grouped convolution (groups={op.groups}); "
            "gradmath's Conv covers groups=1."
        )
    b.open(op.site)
    return [ConvLayer(op.out_shape[1], op.kernel, init=op.weight.init, sigma_b2=op.sigma_b2,
                      padding=op.padding, stride=op.stride, dim=len(op.kernel),
                      dilation=op.dilation)]  # fmt: skip


def _pool(op: Pool, b: _Build, first: bool) -> list[Layer]:
    m = op.module
    b.open(op.site)
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        dim = 1 if isinstance(m, nn.AdaptiveAvgPool1d) else 2
        return [AdaptiveAvgPool(tuple(op.site.shape[2:]), dim=dim)]  # the output's positions
    assert isinstance(m, (nn.AvgPool1d, nn.AvgPool2d))
    dim = 1 if isinstance(m, nn.AvgPool1d) else 2
    return [AvgPool(m.kernel_size, m.stride, m.padding, dim=dim)]


def _flatten(op: FlattenOp, b: _Build, first: bool) -> list[Layer]:
    return [Flatten()]


def _maxpool(op: MaxPoolOp, b: _Build, first: bool, act: Any = None) -> list[Layer]:
    m = op.module
    assert isinstance(m, (nn.MaxPool1d, nn.MaxPool2d))
    b.open(op.site)
    dim = 1 if isinstance(m, nn.MaxPool1d) else 2
    return [MaxPool(m.kernel_size, m.stride, m.padding, act=act, dim=dim)]


#: How each translated operation becomes gradmath layers: the one place a module type maps.
TABLE: dict[type, Builder] = {
    DenseOp: _dense,
    Act: _act,
    Norm: _norm,
    Factor: _factor,
    MeasuredOp: _measured,
    Add: _add,
    Conv: _conv,
    Pool: _pool,
    MaxPoolOp: _maxpool,
    FlattenOp: _flatten,
}


def _layers(ops: Any, b: _Build, first: bool) -> list[Layer]:
    out: list[Layer] = []
    for k, op in enumerate(ops):
        nxt = ops[k + 1] if k + 1 < len(ops) else None
        if isinstance(op, Act) and isinstance(nxt, MaxPoolOp):
            continue  # φ → max-pool is one layer (gradmath.network.maxpool says why)
        if isinstance(op, MaxPoolOp):
            prev = ops[k - 1] if k else None
            act = prev.activation if isinstance(prev, Act) else None
            out += _maxpool(op, b, first and k == 0, act)
            continue
        if isinstance(op, Act) and isinstance(nxt, MeasuredOp) and k and b.spatial:
            # An activation right before a measured part inside a conv stack (ReLU →
            # max-pool): the part passes its gradient only to the positions it selects, where
            # φ' is not a typical value (φ' = 1 at a max of ReLU outputs), so gradient
            # independence fails across the activation; the segment starts at its input.
            prev = getattr(ops[k - 1], "site", None)
            if prev is not None:
                continue
        if isinstance(op, MeasuredOp) and k >= 2 and isinstance(ops[k - 1], Act) and b.spatial:
            prev = getattr(ops[k - 2], "site", None)
            if prev is not None:
                out += _measured(op, b, first and k == 0, below=prev)
                continue
        build = TABLE.get(type(op))
        if build is None:  # pragma: no cover - every Op type has an entry
            raise GradmathError(f"{b.model}: {type(op).__name__} has no translation.")
        out += build(op, b, first and k == 0)
    return out


def _network(translation: Translation, b: _Build) -> Network:
    b.spatial = any(isinstance(op, Conv) for op in _walk(translation.ops))
    layers = _layers(translation.ops, b, True)
    if not layers:
        raise GradmathError(f"{translation.model_name}: nothing on the path from input to output.")
    # A convolutional net takes (C, *positions) per example; others the features per row.
    spatial = any(isinstance(layer, ConvLayer) for layer in _all(layers))
    shape = translation.input_shape if spatial else translation.input_width
    return Network(shape, *layers)


def _walk(ops: Any) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        out.append(op)
        if isinstance(op, Add):
            out += _walk(op.branch) + _walk(op.shortcut)
    return out


def _all(layers: list[Layer]) -> list[Layer]:
    out: list[Layer] = []
    for layer in layers:
        out += [layer, *_all(list(layer.children()))]
    return out


def network_of(translation: Translation, measurement: Measurement | None = None) -> Network:
    """The gradmath network of a translated model (module docstring for the table);
    ``measurement`` supplies the moments of measured-only parts."""
    return _network(translation, _Build(translation.model_name, measurement))


def sites_on_path(translation: Translation) -> list[PathSite]:
    """The translation's sites in the order the network opens its own (off-path sites, e.g.
    BERT's pooler, are left out), each marked measured-only or not."""
    b = _Build(translation.model_name, None, sites=[])
    _network(translation, b)
    assert b.sites is not None
    return b.sites


def from_module(
    model: nn.Module, example_input: Any, *, n_inits: int = 16, seed: int = 1,
    init: InitFn | None = None,
) -> Network:  # fmt: skip
    """The gradmath network of ``model``, read by running it once on ``example_input``
    (the translation table is in the module docstring).

    If the model has measured-only parts (attention, embeddings, pooling), they are measured
    over ``n_inits`` re-initialisations (``seed``; keep it different from the probe's so that
    theory and probe stay independent), and the network carries those moments with their
    jackknife replicates (:func:`predict` turns them into standard errors).

    >>> from torch import nn
    >>> net = from_module(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
    ...                   torch.randn(8, 64))
    >>> [s.name for s in net.sites], net.output_width
    (['dense1', 'dense2'], 10)
    """
    t = translate(model, example_input)
    m = None
    if t.measured:
        m = measure(model, example_input, n_inits=n_inits, seed=seed, init=init)
    return network_of(t, m)


def _substitute(layer: Layer, f: Callable[[Measured], Layer]) -> Layer:
    # The same layer tree with every Measured layer replaced by f(layer).
    if isinstance(layer, Measured):
        return f(layer)
    if isinstance(layer, Serial):
        return Serial(*(_substitute(c, f) for c in layer.layers))
    if not layer.children():
        return layer
    changes = {fl.name: _substitute(v, f) for fl in fields(layer)  # type: ignore[arg-type]
               if isinstance(v := getattr(layer, fl.name), Layer)}  # fmt: skip
    return replace(layer, **changes)  # type: ignore[type-var]


def _measured_layers(layer: Layer) -> list[Measured]:
    if isinstance(layer, Measured):
        return [layer]
    return [m for c in layer.children() for m in _measured_layers(c)]


def predict(net: Network, *, like: Profile | None = None, **conditions: Any) -> Profile:
    """``meanfield.predict(net, like=like, **conditions)`` with standard errors for what the
    measured-only parts pass on.

    Downstream of a measured part the prediction depends on that part's measured moments,
    which carry Monte-Carlo error. The error is propagated by the jackknife (Efron & Stein
    1981): the prediction is repeated with each init left out of every measured part,
    θ_(k), and SE² = (n − 1)/n · Σ_k (θ_(k) − θ̄)², which accounts for the correlation between
    the parts' moments (measured on the same inits). A network without measured parts gets
    the plain prediction (no SE).
    """
    from gradmath.meanfield import predict as mean_field

    theory = mean_field(net, like=like, **conditions)
    parts = _measured_layers(net.body)
    n = min((len(p.replicates) for p in parts), default=0)
    if n < 2:
        return theory
    rows = []
    for k in range(n):

        def pick(m: Measured, k: int = k) -> Measured:
            q, g = m.replicates[k]
            return replace(m, log_q=q, log_gain=g)

        rep = Network(net.input_width, _substitute(net.body, pick))
        p = mean_field(rep, like=like, **conditions)
        rows.append(np.array([p.log_q, p.log_grad_q, p.log_wgrad_q]))
    reps = np.array(rows)  # (n, 3, sites)
    with np.errstate(invalid="ignore"):
        dev = reps - reps.mean(axis=0)
        dev = np.where(np.isnan(dev), 0.0, dev)  # −∞ in every replicate: an exact zero
        se = np.sqrt((n - 1) / n * np.sum(dev**2, axis=0))
    se = np.where(np.isnan(np.array([theory.log_q, theory.log_grad_q, theory.log_wgrad_q])),
                  np.nan, se)  # fmt: skip
    return replace(theory, log_q_se=se[0], log_grad_q_se=se[1], log_wgrad_q_se=se[2],
                   source="theory (measured parts: jackknife SE)")  # fmt: skip


def profile_of(network: Network, translation: Translation, measurement: Measurement) -> Profile:
    """The measured profile of ``network``: the measurement's rows at the network's sites."""
    sites = [p.site for p in sites_on_path(translation)]
    if len(sites) != len(network.sites):
        raise GradmathError(
            f"The translation has {len(sites)} sites on the path, the network "
            f"{len(network.sites)}; was the network made from this model?"
        )
    idx = [measurement.index(s.name) for s in sites]

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
        input_q=c["input_q"] or 1.0,  # token ids: the network starts with a measured part
        output_grad_q=c.get("output_grad_q") or 1.0,
        loss=loss,
        batch=c.get("batch"),
        n_networks=c.get("n_networks"),
    )
    return Profile(
        network,
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
    >>> p.source, [s.name for s in p.sites], p.log_q_se.shape
    ('torch probe', ['dense1', 'dense2'], (2,))
    """
    t = translate(model, inputs)
    m = measure(model, inputs, n_inits=n_inits, loss=loss, seed=seed, init=init, dtype=dtype,
                output_grad_q=output_grad_q)  # fmt: skip
    return profile_of(network_of(t, m), t, m)
