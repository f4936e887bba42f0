"""Issue 11: every bad or extreme input gives a finite correct answer or a GradmathError.

Each case is one row: a call and the error it must raise (a regex on the message, which names
the argument), or a check of the answer it must give. The CLI rows check one line on stderr
and exit status 2. The notes build's data-loss cases are in ``test_notes_safety.py``, the
comparison's in ``test_validate.py``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradmath
from gradmath import MLP, GradmathError, Profile, symbolic
from gradmath.cli import main
from gradmath.numeric import length_chain
from gradmath.numeric.train import make_task, train
from gradmath.spec import parse_network
from gradmath.symbolic import norm_clip_derivation, value_clip_derivation

RNG = np.random.default_rng(0)
HE = gradmath.initializer("he_normal")
GAUSS_NET = MLP.square(4, 3, activation="tanh", init=gradmath.initializer("normal", sigma_w2=1.0))

#: (id, call, regex the GradmathError message must match)
REFUSED: list[tuple[str, Callable[[], Any], str]] = [
    # OverflowError before
    ("variance-huge-fan", lambda: HE.variance(10**400, 5), r"`fan_in`.*2\*\*53"),
    ("rounding-huge-gradient", lambda: symbolic.update_rounding_example(1, "1e400"), "gradient"),
    ("rounding-underflow", lambda: symbolic.update_rounding_example("1e-30", "1e-30"), "update"),
    ("rounding-huge-weight", lambda: symbolic.update_rounding_example(1, 1, "1e39"), "weight"),
    # TypeError before
    ("sample-int-dtype", lambda: HE.sample(RNG, (3, 3), dtype=np.int32), "`dtype`"),
    ("sample-float16", lambda: HE.sample(RNG, (3, 3), dtype=np.float16), "`dtype`"),
    ("sample-bogus-dtype", lambda: HE.sample(RNG, (3, 3), dtype="bogus"), "`dtype`"),
    ("sample-float-shape", lambda: HE.sample(RNG, (3.5, 3)), "`shape`"),
    ("sample-bool-shape", lambda: HE.sample(RNG, (True, 3)), "`shape`"),
    ("sample-str-shape", lambda: HE.sample(RNG, "ab"), "`shape`"),
    ("sample-scalar-shape", lambda: HE.sample(RNG, 5), "`shape`"),
    ("bound-elu-inf", lambda: symbolic.derivative_bound("elu", alpha=math.inf), "`alpha`"),
    # MemoryError before: estimated and refused with the number
    ("sample-huge", lambda: HE.sample(RNG, (10**6, 10**6)), r"needs about 7\.28 TiB"),
    (
        "sample-huge-orthogonal",
        lambda: gradmath.initializer("orthogonal").sample(RNG, (10**6, 10**6)),
        "needs about",
    ),
    # ValueError from NumPy before
    ("length-chain-seed", lambda: length_chain(GAUSS_NET, samples=10, seed=-1), "`seed`"),
    ("length-chain-one-sample", lambda: length_chain(GAUSS_NET, samples=1, seed=0), "`samples`"),
    (
        "train-empty",
        lambda: train(
            MLP((2, 3)), data=(np.zeros((0, 2)), np.zeros(0, int)), epochs=1, lr=0.1, seed=0
        ),
        "no examples",
    ),
    (
        "train-text",
        lambda: train(MLP((2, 3)), data=([["a", "b"]], [0]), epochs=1, lr=0.1, seed=0),
        "numbers",
    ),
    # activation and initializer parameters: finite and in their domain
    ("elu-alpha-inf", lambda: gradmath.activation("elu", alpha=math.inf), "`alpha`"),
    ("elu-alpha-nan", lambda: gradmath.activation("elu", alpha=math.nan), "`alpha`"),
    ("elu-alpha-negative", lambda: gradmath.activation("elu", alpha=-1), "`alpha`"),
    ("elu-alpha-text", lambda: gradmath.activation("elu", alpha="1"), "`alpha`"),
    ("leaky-slope-2", lambda: gradmath.activation("leaky_relu", slope=2), "`slope`"),
    ("selu-scale-0", lambda: gradmath.activation("selu", scale=0), "`scale`"),
    ("selu-alpha-inf", lambda: gradmath.activation("selu", alpha=math.inf), "`alpha`"),
    ("gain-0", lambda: gradmath.initializer("xavier_normal", gain=0), "`gain`"),
    ("gain-inf", lambda: gradmath.initializer("orthogonal", gain=math.inf), "`gain`"),
    ("scale-0", lambda: gradmath.initializer("variance_scaling", scale=0), "`scale`"),
    ("sigma-w2-inf", lambda: gradmath.initializer("normal", sigma_w2=math.inf), "`sigma_w2`"),
    ("gain-param-inf", lambda: gradmath.calculate_gain("leaky_relu", math.inf), "`param`"),
    # SymPy nan before
    ("norm-clip-zero", lambda: norm_clip_derivation((0, 0), 1), "zero vector"),
    ("value-clip-zero", lambda: value_clip_derivation((0, 0), 1), "zero vector"),
    ("norm-clip-text-c", lambda: norm_clip_derivation((1, 2), "abc"), "`max_norm`"),
    ("norm-clip-inf-c", lambda: norm_clip_derivation((1, 2), math.inf), "`max_norm`"),
    ("norm-clip-inf-g", lambda: norm_clip_derivation((math.inf, 2), 1), "`g`"),
    ("norm-clip-symbol-g", lambda: norm_clip_derivation(("x", 2), 1), "`g`"),
    # Profiles
    (
        "profile-negative-se",
        lambda: Profile(
            MLP((4, 4)), np.zeros(1), np.zeros(1), np.zeros(1), log_q_se=np.array([-0.1])
        ),
        r"log_q_se.*finite and >= 0",
    ),
    # close matches wherever a name is accepted
    ("initializer-he", lambda: gradmath.initializer("he"), "'he_normal', 'he_uniform'"),
    ("initializer-kaiming", lambda: gradmath.initializer("kaiming"), "'kaiming_normal'"),
    ("gain-sigmod", lambda: gradmath.calculate_gain("sigmod"), "Did you mean 'sigmoid'"),
    (
        "kaiming-sigmod",
        lambda: gradmath.initializer("kaiming_normal", nonlinearity="sigmod"),
        "Did you mean 'sigmoid'",
    ),
    ("activation-sigmod", lambda: gradmath.activation("sigmod"), "Did you mean 'sigmoid'"),
    ("scheme-hee", lambda: symbolic.init_variance("hee"), "Did you mean 'he'"),
]


@pytest.mark.parametrize(("call", "match"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_with_a_gradmath_error(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        call()


def test_deep_symbolic_chain_is_refused_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(GradmathError, match=r"`depth` \(=10000\) is above 100"):
        symbolic.chain_rule(10_000)
    assert time.perf_counter() - start < 1.0


def test_init_variance_and_initializer_share_a_vocabulary() -> None:
    # Every catalogue name of a LeCun/He/Glorot initializer is a scheme name for init_variance.
    for name in (
        "he_normal",
        "he_uniform",
        "kaiming_normal",
        "glorot_uniform",
        "xavier_normal",
        "lecun_normal",
    ):
        assert (
            symbolic.init_variance(name).result
            == symbolic.init_variance(
                name.split("_")[0].replace("kaiming", "he").replace("xavier", "glorot")
            ).result
        )


def test_numpy_scalars_are_real_parameters() -> None:
    a = gradmath.activation("elu", alpha=np.float32(0.5))
    assert a.params["alpha"] == 0.5
    assert HE.variance(np.int64(4), np.int32(5)) == HE.variance(4, 5)
    assert HE.sample(RNG, (np.int64(2), np.int64(3)), dtype=np.float32).dtype == np.float32


def test_make_task_with_huge_noise_stays_standardised() -> None:
    for kind in ("blobs", "shells"):
        x, _ = make_task(64, 3, 2, seed=0, noise=1e308, kind=kind)
        assert np.all(np.isfinite(x))
        np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(x.std(axis=0), 1.0, rtol=1e-12)
    # Noise up to 1 is drawn exactly as before (no rescaling at all).
    x, _ = make_task(16, 2, 2, seed=3, noise=0.5)
    x2, _ = make_task(16, 2, 2, seed=3, noise=0.5)
    np.testing.assert_array_equal(x, x2)


def test_a_huge_step_is_a_divergence_and_diagnosed_as_exploding() -> None:
    net = MLP((4, 16, 16, 3), activation="relu", init="he_normal")
    data = make_task(64, 4, 3, seed=0)
    for lr in (1e300, 1e6):
        r = train(net, data=data, epochs=5, lr=lr, seed=0)
        assert r.diverged and r.divergence is not None and r.divergence.epoch == 1
        assert np.all(np.isfinite(r.loss))
        d = gradmath.diagnose(r)  # the run died in epoch 1: no per-layer rows, still a verdict
        assert d.verdict == "exploding" and "training loss" in str(d)


def test_a_healthy_run_is_not_a_divergence() -> None:
    net = MLP((2, 16, 3), activation="tanh", init="glorot_uniform")
    r = train(net, data=make_task(90, 2, 3, seed=1), epochs=20, lr=0.5, seed=0)
    assert not r.diverged


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["phase", "tanh", "--sigma-b2", "0", "--figure", "{dir}"], "is a directory"),
        (["phase", "tanh", "--sigma-b2", "0", "--figure", ""], "non-empty path"),
        (["phase", "tanh", "--sigma-b2", "0", "--figure", "/proc/x.pdf"], "Cannot write"),
        (["phase", "tanh", "--sigma-b2", "0", "--figure", "{dir}/x.txt"], "must end in"),
        (["validate", "--workers", "-1"], "`workers`"),
        (["validate", "--width", "100000000", "--depth", "2"], "needs at least"),
        (["validate", "--networks", "2", "--depth", "2", "--width", "4"], "n_networks"),
        (["notes", "--out", "{dir}/file.txt"], "is a file"),
        (["notes", "--out", "/proc/x"], "Cannot use `out`"),
        (["predict", "--activation", "sigmod"], "Did you mean 'sigmoid'"),
        # argparse's own errors: one line too (no usage block)
        (["derive", "elu", "--param", "alpha=x"], r"'x' is not a number \(see gradmath derive"),
        (["inspect"], "the following arguments are required"),
        (["validate", "--networks", "many"], "invalid int value"),
        # network specs: bounded work, names with suggestions
        (["predict", "--network", "Network(4, Dense(2**10**10))"], "float range"),
        (["predict", "--network", "Network(4, repeat(Dense(4), 10**100))"], "at most 1,000,000"),
        (["predict", "--network", "Network(4, Dense(4, sigmab2=1))"], "Did you mean 'sigma_b2'"),
        (["predict", "--depth", "100000000"], "at most 1,000,000"),
    ],
    ids=[
        "figure-dir",
        "figure-empty",
        "figure-proc",
        "figure-suffix",
        "workers",
        "validate-huge-width",
        "networks",
        "notes-file",
        "notes-proc",
        "predict-name",
        "argparse-type",
        "argparse-missing",
        "argparse-int",
        "spec-power",
        "spec-repeat",
        "spec-keyword",
        "predict-depth",
    ],
)
def test_cli_errors_are_one_line_exit_2(
    argv: list[str], match: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("mine\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = main([a.replace("{dir}", str(tmp_path)) for a in argv])
    except SystemExit as exc:  # argparse's usage errors exit from parse_args
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"gradmath {argv[0]}: error: ") and __import__("re").search(match, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# --------------------------------------------------------------------------- mean-field edges


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gradmath.meanfield.fixed_point("elu", 2.0, 0.0), "grows without bound"),
        (lambda: gradmath.meanfield.fixed_point("softplus", 2.0, 0.0), "grows without bound"),
        (lambda: gradmath.meanfield.fixed_point("selu", 2.0, 0.0), "grows without bound"),
        (lambda: gradmath.meanfield.fixed_point("tanh", 1e308, 1e308), "exceeds the float64"),
        (lambda: gradmath.meanfield.length_map("relu", 1e300, 1e10, 0), "exceeds the float64"),
        (lambda: gradmath.meanfield.length_map("tanh", [1, 2, 3], [1, 2], 0), "broadcast"),
        (
            lambda: gradmath.meanfield.correlation_map("tanh", [0.1, 0.2], [1, 2, 3], 0.1),
            "broadcast",
        ),
        (lambda: gradmath.meanfield.kernel("tanh", [1, 2], [1, 2, 3], 0.5), "broadcast"),
        (lambda: gradmath.meanfield.kernel("tahn", 1, 1, 0.5), "Did you mean 'tanh'"),
    ],
    ids=[
        "elu-no-q*",
        "softplus-no-q*",
        "selu-no-q*",
        "tanh-q*-overflows",
        "length-overflow",
        "length-broadcast",
        "corr-broadcast",
        "kernel-broadcast",
        "kernel-name",
    ],
)
def test_meanfield_refusals(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        call()


def test_meanfield_extremes_are_right() -> None:
    mf = gradmath.meanfield
    # ReLU, zero bias: the correlation map does not depend on q (arc-cosine kernel, degree 1).
    assert mf.correlation_map("relu", 0.5, 2, 0, q=1e300) == pytest.approx(
        mf.correlation_map("relu", 0.5, 2, 0, q=1.0), rel=1e-14
    )
    # erf's arcsin kernel at huge q: E[erf(u1)erf(u2)] → (2/π) arcsin(c).
    assert float(mf.kernel("erf", 1e300, 1e300, 0.5)) == pytest.approx(1 / 3, rel=1e-12)
    assert mf.kernel("tanh", 1, 1, 0.5) == mf.kernel(gradmath.activation("tanh"), 1, 1, 0.5)
    # Below the unbounded edge a fixed point exists and is found (σ_w² s < 1).
    assert 13.0 < mf.fixed_point("elu", 1.9, 0.0) < 14.0
    # Batch norm's growth rate at huge B tends to the large-batch limit π/(π − 1).
    limit = math.pi / (math.pi - 1)
    rates = [mf.gradient_growth("relu", 10**k) for k in (6, 8, 12, 15, 20)]
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert rates[-2] == pytest.approx(limit, rel=1e-13) and rates[-1] == pytest.approx(limit)
    assert (rates[1] - limit) * 1e8 == pytest.approx(1.5914, rel=1e-3)  # the O(1/B) term


# ------------------------------------------------------------------ newer code, same classes


def _spectra(n: int) -> tuple[Any, Any]:
    from gradmath.meanfield.spectra import Jacobian
    from gradmath.numeric.spectra import sample_spectra

    net = MLP.square(8, 2, activation="tanh", init="glorot_normal")
    return Jacobian.of(net), sample_spectra(net, n_networks=n, seed=0)


def _live_counts(**kw: Any) -> Any:
    from gradmath.meanfield.spectra import jacobian, live_counts

    args = {"width": 8, "draws": 2} | kw
    return live_counts(
        jacobian("relu", 2.0, depth=2), args["width"], 1.0, draws=args["draws"], seed=0
    )


def _compare_spectra(n: int, **kw: Any) -> Any:
    from gradmath.validate_spectra import compare_spectra

    return compare_spectra(*_spectra(n), **kw)


NEW_REFUSED: list[tuple[str, Callable[[], Any], str]] = [
    # unbounded work: exact integer powers and repetition counts
    (
        "spec-huge-power",
        lambda: parse_network("Network(4, Dense(2**10**10))"),
        "float range",
    ),
    (
        "spec-huge-repeat",
        lambda: parse_network("Network(4, repeat(Dense(4), 10**100))"),
        r"`n` .* at most 1,000,000",
    ),
    ("spec-complex", lambda: parse_network("Network(4, Dense((-8) ** 0.5))"), "real"),
    ("mlp-depth", lambda: MLP.square(4, 10**8), r"`depth` .* at most 1,000,000"),
    # names looked up with suggestions
    (
        "spec-name",
        lambda: parse_network("Network(4, Dens(4))"),
        "Did you mean 'Dense'",
    ),
    (
        "spec-keyword",
        lambda: parse_network("Network(4, Dense(4, sigmab2=0.1))"),
        "Did you mean 'sigma_b2'",
    ),
    # gain² under/overflow (a variance of exactly 0 would read as a zero-initialised layer)
    ("dense-gain-huge", lambda: gradmath.network.Dense(4, gain=1e200), "`gain`"),
    ("dense-gain-tiny", lambda: gradmath.network.Dense(4, gain=1e-300), "`gain`"),
    # the spectra comparison: Student t needs enough networks, arguments checked
    ("spectra-3-networks", lambda: _compare_spectra(3), "at least 4"),
    ("spectra-z-max-nan", lambda: _compare_spectra(4, z_max=math.nan), "`z_max`"),
    ("spectra-ks-alpha", lambda: _compare_spectra(4, ks_alpha=2.0), "`ks_alpha`"),
    ("spectra-grid-points", lambda: _compare_spectra(4, grid_points=1), "`grid_points`"),
    ("spectra-mixture", lambda: _compare_spectra(4, mixture=1), "`mixture`"),
    ("spectra-count-draws", lambda: _compare_spectra(4, count_draws=3), "`count_draws`"),
    (
        "ks-one-theory-draw",
        lambda: gradmath.validate_spectra.ks_across(
            np.ones((3, 4)), lambda g: np.full((1, g.size), 0.5), [0.5, 1.0]
        ),
        "M ≥ 2 rows",
    ),
    ("live-counts-width", lambda: _live_counts(width=0), "`width`"),
    ("live-counts-draws", lambda: _live_counts(draws=0), "`draws`"),
    (
        "ks-empty-grid",
        lambda: gradmath.validate_spectra.ks_across(np.ones((3, 4)), lambda g: g, []),
        "`grid`",
    ),
    # issue 11 items for simulate (TypeError / MemoryError before)
    (
        "simulate-bogus-dtype",
        lambda: gradmath.numeric.simulate(MLP((4, 4)), dtype="bogus", n_networks=4, seed=0),
        "`dtype`",
    ),
    (
        "simulate-huge",
        lambda: gradmath.numeric.simulate(MLP.square(10**6, 2), n_networks=4, seed=0),
        "needs at least",
    ),
    ("bonferroni-tiny-alpha", lambda: gradmath.validate.bonferroni_z(3, 5e-324), "`alpha`"),
    # results beyond float64 are said, not returned as inf/NaN
    (
        "jacobian-moments-overflow",
        lambda: gradmath.meanfield.spectra.jacobian("tanh", 5e-324, 1.7e308, depth=3).moments(3),
        "float64 range",
    ),
]


@pytest.mark.parametrize(
    ("call", "match"), [c[1:] for c in NEW_REFUSED], ids=[c[0] for c in NEW_REFUSED]
)
def test_new_code_refuses_with_a_gradmath_error(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        call()


def test_new_code_extremes_are_right() -> None:
    import mpmath

    from gradmath.closed_forms import ErfForm
    from gradmath.meanfield.spectra import jacobian

    mf = gradmath.meanfield
    # erf's closed forms at q near the float64 top (√(1 + 4q) overflowed): against mpmath.
    q = mpmath.mpf(1e308)
    erf = ErfForm()
    assert erf.dphi2(1e308) == pytest.approx(
        float(4 / mpmath.pi / mpmath.sqrt(1 + 4 * q)), rel=1e-14
    )
    assert erf.slope(1e308) == pytest.approx(
        float(4 / mpmath.pi / (1 + 2 * q) / mpmath.sqrt(1 + 4 * q)), rel=1e-14
    )
    assert erf.phi2(1e308) == pytest.approx(1.0, rel=1e-14)
    # c = 0: D = (1 + 2q)², so E[erf'(u₁)erf'(u₂)] = (4/π)/(1 + 2q); c = ½: (2/π) arcsin(½) = ⅓.
    assert float(mf.dkernel("erf", 1e308, 1e308, 0.0)) == pytest.approx(
        float(4 / mpmath.pi / (1 + 2 * q)), rel=1e-13
    )
    assert float(mf.kernel("erf", 1e308, 1e308, 0.5)) == pytest.approx(1 / 3, rel=1e-14)
    # The Jacobian's moments in units of its mean do not depend on σ_w² (it cancels), also
    # where σ_w^{2k} overflows.
    ref = jacobian("relu", 2.0, depth=2, q=1.0).moments(3)
    assert jacobian("relu", 1e300, depth=2, q=1.0).moments(3) == pytest.approx(ref, rel=1e-12)
    # A dead signal (q = 0 exactly, log q = −∞) through tanh: finite or −inf logs, no NaN.
    net = gradmath.network.Network(
        4, gradmath.network.Dense(4, gain=0.0), "tanh", gradmath.network.Dense(4)
    )
    p = mf.predict(net)
    assert np.isneginf(p.log_q[0]) and not np.any(np.isnan(p.log_grad_q))
    # Bonferroni from the lower tail: digits kept for tiny α (1 − α/2m rounded them away).
    assert gradmath.validate.bonferroni_z(1, 1e-20) == pytest.approx(
        9.33604484923406, rel=1e-13
    )  # mpmath
