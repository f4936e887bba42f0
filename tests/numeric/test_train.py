"""The SGD training experiment: records, loss, clipping, divergence and the classic outcomes."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import mpmath
import numpy as np
import pytest

from gradmath import MLP, GradmathError, initializer
from gradmath.numeric.train import (
    DIVERGED_LOSS_RATIO,
    TrainResult,
    make_task,
    softmax_cross_entropy,
    train,
)

DEEP = (4, *(32,) * 8, 3)  # 9 weight layers, 4 features, 3 classes


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_task(128, 4, 3, seed=seed)


def _exploding() -> MLP:
    # ReLU with σ_w² = 4: χ₁ = σ_w²/2 = 2, the chaotic side of He's σ_w² = 2 (theory.md).
    return MLP(DEEP, activation="relu", init=initializer("normal", sigma_w2=4.0))


# --------------------------------------------------------------------------- task and loss


def test_make_task_is_seeded_balanced_and_standardised() -> None:
    for kind in ("blobs", "shells"):
        x, y = make_task(300, 3, 4, seed=7, kind=kind)
        x2, y2 = make_task(300, 3, 4, seed=7, kind=kind)
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        assert x.shape == (300, 3) and y.dtype == np.int64
        assert np.bincount(y).tolist() == [75, 75, 75, 75]
        np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(x.std(axis=0), 1, rtol=1e-12)
    assert not np.array_equal(make_task(50, 2, 2, seed=1)[0], make_task(50, 2, 2, seed=2)[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 1}, "n_samples"),
        ({"n_features": 0}, "n_features"),
        ({"n_classes": 1}, "n_classes"),
        ({"n_samples": 2, "n_classes": 3}, "n_samples"),
        ({"kind": "moons"}, "kind"),
        ({"noise": -1.0}, "noise"),
    ],
)
def test_make_task_bad_input(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        make_task(**{"seed": 0, **kwargs})  # type: ignore[arg-type]


def test_softmax_cross_entropy_against_mpmath_and_finite_differences() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4)) * 3
    y = np.array([0, 3, 1, 1, 2])
    loss, grad, acc = softmax_cross_entropy(z, y)
    with mpmath.workdps(30):
        ref = sum(
            mpmath.log(sum(mpmath.exp(mpmath.mpf(v)) for v in row)) - mpmath.mpf(row[k])
            for row, k in zip(z.tolist(), y.tolist(), strict=True)
        ) / len(y)
    assert loss == pytest.approx(float(ref), rel=1e-14)
    assert acc == np.mean(z.argmax(axis=1) == y)
    h = 1e-6
    for b, j in [(0, 0), (1, 3), (4, 1)]:
        zp, zm = z.copy(), z.copy()
        zp[b, j] += h
        zm[b, j] -= h
        fd = (softmax_cross_entropy(zp, y)[0] - softmax_cross_entropy(zm, y)[0]) / (2 * h)
        assert grad[b, j] == pytest.approx(fd, rel=1e-6, abs=1e-10)


def test_softmax_cross_entropy_is_stable_for_huge_logits() -> None:
    z = np.array([[1e300, 0.0, -1e300], [0.0, 1e4, 0.0]])
    loss, grad, _ = softmax_cross_entropy(z, np.array([1, 1]))
    # row 0: loss = 1e300 − 0; row 1: log(1 + 2e^{−1e4}) = 0 in double.
    assert loss == pytest.approx(0.5e300, rel=1e-15)
    assert np.all(np.isfinite(grad))
    nan_loss, _, _ = softmax_cross_entropy(np.array([[np.inf, 0.0]]), np.array([1]))
    assert math.isnan(nan_loss)  # reported to the caller, no warning


# --------------------------------------------------------------------------- records


def test_records_shapes_determinism_and_frozen() -> None:
    net = MLP((4, 8, 8, 3), activation="tanh", init="glorot_normal")
    kw = {"data": _data(0), "epochs": 5, "lr": 0.3, "batch": 32, "seed": 3}
    r = train(net, **kw)  # type: ignore[arg-type]
    assert isinstance(r, TrainResult) and r.epochs_run == 5 and not r.diverged
    assert r.loss.shape == r.accuracy.shape == (6,)
    assert r.weight_change.shape == (6, 3) and np.all(r.weight_change[0] == 0)
    assert r.grad_norms.shape == r.step_change.shape == (5, 3)
    assert r.clipped.shape == (5,) and np.all(r.clipped == 0)
    assert r.batch == 32
    np.testing.assert_allclose(r.grad_rms, r.grad_norms / np.sqrt([32, 64, 24]))
    again = train(net, **kw)  # type: ignore[arg-type]
    for name in ("loss", "accuracy", "grad_norms", "weight_change", "step_change"):
        np.testing.assert_array_equal(getattr(r, name), getattr(again, name))
    with pytest.raises(FrozenInstanceError):
        r.lr = 1.0  # type: ignore[misc]
    assert "epochs" in str(r) and "diverged" not in str(r)


def test_full_batch_step_change_is_lr_times_gradient_norm() -> None:
    # One full-batch step, no clipping, no L2: ‖ΔW‖/‖W_0‖ = η‖∇W‖/‖W_0‖ = weight change.
    net = MLP((4, 16, 3), activation="tanh", init="glorot_uniform")
    r = train(net, data=_data(1), epochs=1, lr=0.05, seed=0)
    np.testing.assert_allclose(r.step_change[0], r.weight_change[1], rtol=1e-12)
    w0 = np.array([np.linalg.norm(w) for w, _ in _initial_params(net, 0)])
    np.testing.assert_allclose(r.step_change[0], 0.05 * r.grad_norms[0] / w0, rtol=1e-12)


def _initial_params(net: MLP, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from gradmath.numeric.network import sample_params

    return sample_params(net, np.random.default_rng(seed), np.float64)


def test_l2_shrinks_the_weights_towards_zero() -> None:
    net = MLP((4, 16, 3), activation="tanh", init="glorot_uniform")
    plain = train(net, data=_data(1), epochs=20, lr=0.1, seed=0)
    decayed = train(net, data=_data(1), epochs=20, lr=0.1, seed=0, l2=0.5)
    assert decayed.loss[-1] > plain.loss[-1]  # the penalty trades fit for small weights
    assert np.all(decayed.weight_change[-1] > plain.weight_change[-1])


@pytest.mark.parametrize("clip", [{"value": 1e-3}, {"norm": 1e-3}, {"global_norm": 1e-3}])
def test_clipping_bounds_the_step(clip: dict[str, float]) -> None:
    # One full-batch step at lr = 1: ‖ΔW^l‖ = ‖clip(∇W^l)‖, read back from the weight change.
    net = MLP((4, 16, 3), activation="tanh", init="glorot_uniform")
    r = train(net, data=_data(2), epochs=1, lr=1.0, seed=0, clip=clip)
    assert r.clipped[0] == 1.0
    w0 = np.array([np.linalg.norm(w) for w, _ in _initial_params(net, 0)])
    dw = r.weight_change[1] * w0
    if "value" in clip:
        assert np.all(dw <= 1e-3 * np.sqrt([64, 48]) * (1 + 1e-12))
    elif "norm" in clip:
        np.testing.assert_allclose(dw, 1e-3, rtol=1e-9)  # every tensor rescaled to c
    else:
        assert np.linalg.norm(dw) <= 1e-3 * (1 + 1e-12)  # weights and biases share c


def test_progress_callback() -> None:
    seen: list[tuple[int, float]] = []
    net = MLP((4, 8, 3), activation="tanh", init="glorot_uniform")
    r = train(
        net, data=_data(0), epochs=4, lr=0.1, seed=0, progress=lambda e, v: seen.append((e, v))
    )
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert [v for _, v in seen] == r.loss[1:].tolist()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"batch": 0}, "batch"),
        ({"l2": -1.0}, "l2"),
        ({"clip": {"norm": 0}}, "clip"),
        ({"clip": {"max": 1}}, "clip"),
        ({"seed": 1.5}, "seed"),
        ({"seed": -1}, "seed"),
        ({"progress": 3}, "progress"),
        ({"data": (np.zeros((5, 3)), np.zeros(5, dtype=int))}, r"shape \(n_samples, 4\)"),
        ({"data": (np.zeros((5, 4)), np.full(5, 3))}, "labels must lie in 0 … 2"),
        ({"data": (np.zeros((5, 4)), np.zeros(4, dtype=int))}, "labels"),
        ({"data": (np.full((5, 4), np.nan), np.zeros(5, dtype=int))}, "NaN"),
        ({"data": np.zeros(3)}, "pair"),
    ],
)
def test_bad_input(kwargs: dict[str, object], match: str) -> None:
    net = MLP((4, 8, 3), activation="tanh", init="glorot_uniform")
    args = {"data": _data(0), "epochs": 2, "lr": 0.1, "seed": 0, **kwargs}
    with pytest.raises(GradmathError, match=match):
        train(net, **args)  # type: ignore[arg-type]
    with pytest.raises(GradmathError, match="MLP"):
        train("net", epochs=1, lr=0.1, seed=0)  # type: ignore[arg-type]


def test_batchnorm_refuses_a_last_mini_batch_of_one_example() -> None:
    # 9 examples in batches of 4 leave a last batch of 1, whose batch-norm variance is 0.
    net = MLP((4, 8, 3), activation="tanh", init="glorot_uniform", batchnorm=True)
    data = make_task(9, 4, 3, seed=0)
    with pytest.raises(GradmathError, match=r"batch.*9 examples.*at least 2"):
        train(net, data=data, epochs=2, lr=0.1, batch=4, seed=0)
    with pytest.raises(GradmathError, match="batch"):
        train(net, data=data, epochs=2, lr=0.1, batch=1, seed=0)
    for ok in (3, 5, None):  # remainders 0 and 4, and the full batch
        assert train(net, data=data, epochs=2, lr=0.1, batch=ok, seed=0).epochs_run == 2


def test_make_task_refuses_a_negative_seed() -> None:
    with pytest.raises(GradmathError, match="seed"):
        make_task(10, 2, 2, seed=-1)


def test_default_task_matches_the_network() -> None:
    r = train(MLP((3, 8, 5), activation="tanh", init="glorot_uniform"), epochs=1, lr=0.1, seed=0)
    assert r.epochs_run == 1


# --------------------------------------------------------------------------- classic outcomes


@pytest.mark.parametrize("seed", [0, 1])
def test_deep_sigmoid_lower_layers_stall_while_the_top_learns(seed: int) -> None:
    # Glorot & Bengio (2010), §4: with sigmoid the lower layers barely move. Measured with
    # these settings: layer 1 changes ~0.1% as much as the top layer (0.0007–0.0016 over
    # seeds 0–5), the top ~0.2; asserted: < 2% and > 0.05.
    net = MLP(DEEP, activation="sigmoid", init="glorot_uniform")
    r = train(net, data=_data(seed), epochs=60, lr=1.0, seed=seed)
    wc = r.weight_change[-1]
    assert wc[-1] > 0.05
    assert wc[0] < 0.02 * wc[-1]
    g = r.grad_rms[0]  # first epoch: per-entry gradient ~1e-6 at layer 1, ~0.1 at the top
    assert g[0] < 1e-2 * g[-1]
    assert r.loss[-1] < r.loss[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_he_trains(seed: int) -> None:
    # Measured: loss falls to 0.003–0.14 of its start (seeds 0–5), accuracy ≥ 0.93.
    net = MLP(DEEP, activation="relu", init="he_normal")
    r = train(net, data=_data(seed), epochs=60, lr=0.1, seed=seed)
    assert not r.diverged
    assert r.loss[-1] < 0.5 * r.loss[0]
    assert r.accuracy[-1] > 0.8
    wc = r.weight_change[-1]
    assert wc.min() > 0.05 * wc.max()  # every layer learns


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exploding_without_clipping_is_detected(seed: int) -> None:
    # Measured: NaN in epoch 5 or 6 for seeds 0–2, 4, 5 (seed 3 blows up to 1e51 and dies);
    # the loss passes 10^6 times its start (1e22 and more) in epoch 3, where training now stops.
    r = train(_exploding(), data=_data(seed), epochs=60, lr=0.1, seed=seed)
    assert r.diverged and r.divergence is not None
    assert r.divergence.epoch <= 20
    assert r.epochs_run == r.divergence.epoch - 1
    for name in ("loss", "accuracy", "grad_norms", "weight_change", "step_change"):
        assert np.all(np.isfinite(getattr(r, name)))  # the record up to the failure is clean
    assert "blew up" in str(r.divergence) or "nan" in str(r.divergence)
    assert r.divergence.value > DIVERGED_LOSS_RATIO * r.loss[0] or math.isnan(r.divergence.value)
    assert "diverged" in str(r)
    assert r.loss[-1] > 100 * r.loss[0]  # it had already diverged before the blow-up


@pytest.mark.parametrize("clip", [{"value": 0.5}, {"norm": 1.0}, {"global_norm": 1.0}])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exploding_with_clipping_trains(clip: dict[str, float], seed: int) -> None:
    # Measured: loss from 6–36 down to 1e-4–0.1, accuracy ≥ 0.96 (seeds 0–5).
    r = train(_exploding(), data=_data(seed), epochs=60, lr=0.1, seed=seed, clip=clip)
    assert not r.diverged
    assert r.loss[-1] < 0.1 * r.loss[0]
    assert r.accuracy[-1] > 0.85
    assert r.clipped.max() > 0  # clipping did act


def test_chance_loss_is_the_label_entropy() -> None:
    from gradmath.numeric.train import chance_loss

    assert chance_loss(np.array([0, 1, 2] * 5)) == pytest.approx(math.log(3), rel=1e-15)
    # 43, 43, 42 of 128: the entropy of those frequencies, computed term by term.
    _, y = make_task(128, 4, 3, seed=0)
    counts = np.bincount(y)
    ref = -sum(c / 128 * math.log(c / 128) for c in counts)
    assert chance_loss(y) == pytest.approx(ref, rel=1e-14) and chance_loss(y) < math.log(3)
    with pytest.raises(GradmathError, match="labels"):
        chance_loss(np.array([-1, 0]))
