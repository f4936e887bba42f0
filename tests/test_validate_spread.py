"""compare(…, spread=True): the spread across initialisations, predicted and simulated.

References: the exact ReLU law (Hanin & Nica 2019) and the O(1/n) expansion against
``numeric.simulate(batch=1)``; the standard error of log s against its exact chi-square value for
normal samples; the false-alarm rate of the whole test over many simulation seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import polygamma
from scipy.stats import binom

from gradmath import MLP, GradmathError
from gradmath.meanfield import predict
from gradmath.numeric import simulate
from gradmath.numeric.simulation import _sd_log_se
from gradmath.validate import bonferroni_z, compare

RELU = MLP.square(16, 3, activation="relu", init="kaiming_normal_")  # Gaussian He weights


def test_se_of_log_sd_is_chi_square_for_normal_samples() -> None:
    # N normal values: Var log s² = ψ'((N−1)/2) exactly; the estimate adds κ̂ ≥ 0 only.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 5000))
    se = _sd_log_se(x)
    exact = 0.5 * math.sqrt(float(polygamma(1, 19.5)))
    assert np.all(se >= exact - 1e-15) and np.median(se) < 1.1 * exact
    observed = np.std(np.log(np.std(x, axis=0, ddof=1)))
    assert observed == pytest.approx(exact, rel=0.05)  # 5000 samples: SE of an SD ≈ 1%


@pytest.mark.parametrize(
    ("act", "init", "width", "depth"),
    [("relu", "kaiming_normal_", 16, 10), ("tanh", "glorot_normal", 64, 10)],
)
def test_spread_agrees_with_simulation(act: str, init: str, width: int, depth: int) -> None:
    net = MLP.square(width, depth, activation=act, init=init)
    sim = simulate(net, n_networks=256, batch=1, seed=21)
    theory = predict(net, like=sim, width_corrections=True)
    c = compare(theory, sim, spread=True)
    assert c.z_spread is not None and c.n_comparisons == 7 * depth  # 3 means, 2 + 2 spreads
    c.assert_agrees(bonferroni_z(2 * c.n_comparisons, 0.01))  # two cases
    # The spread is real: the last layer's forward SD is several times the first layer's
    # for ReLU (Σ 5/n grows), and mean-field theory predicts none.
    if act == "relu":
        assert sim.sd_log is not None and sim.sd_log[0, -1] > 3 * sim.sd_log[0, 0]


def test_spread_false_alarm_rate() -> None:
    # ReLU + Gaussian He weights, width 16, depth 3: the exact law is the truth. 80 seeds of
    # 128 networks, 12 spread comparisons each (typical and SD of q and q̃ at 3 sites) at a
    # family-wise level of 10%: at most 16 alarms (P(Bin(80, 0.1) > 16) = 0.3%); the pooled
    # spread z have SD near 1 (the SE is neither too small nor too large).
    theory = predict(RELU, batch=1, width_corrections=True)
    z_max = bonferroni_z(12, 0.1)
    alarms, zs = 0, []
    for seed in range(80):
        c = compare(theory, simulate(RELU, n_networks=128, batch=1, seed=seed), spread=True)
        assert c.z_spread is not None and c.z_typical is not None
        both = np.concatenate([c.z_spread[:2], c.z_typical[:2]])
        alarms += bool(np.max(np.abs(both)) >= z_max)
        zs.append(c.z_spread[:2].ravel())
    assert binom.sf(alarms - 1, 80, 0.1) > 0.003, alarms
    sd = float(np.std(np.concatenate(zs)))
    assert 0.8 < sd < 1.2, sd


def test_spread_refusals() -> None:
    theory = predict(RELU, width_corrections=True)
    wide = simulate(RELU, n_networks=8, batch=4, seed=1)
    with pytest.raises(GradmathError, match="batch=1"):
        compare(theory, wide, spread=True)
    with pytest.raises(GradmathError, match="width_corrections"):
        compare(predict(RELU), wide, spread=True)
    # Two simulations at the same batch: like for like, their errors combine.
    c = compare(wide, simulate(RELU, n_networks=8, batch=4, seed=2), spread=True)
    assert c.z_spread is not None and np.all(np.isfinite(c.z_spread[:2]))
    assert "spread" in " ".join(label for _, label, _, _ in c.worst(50))
    assert wide.sd_log_se is not None and wide.sd_log_se.shape == (3, 3)
