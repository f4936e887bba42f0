"""Figures: they draw, they take and return an ``ax``, and the same figure gives the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import gradmath
from gradmath import validate
from gradmath.render import figures


def test_activation_derivative_marks_the_sigmoid_quarter() -> None:
    ax = figures.activation_derivative("sigmoid")
    texts = [t.get_text() for t in ax.texts]
    assert any("= 0.25 at z = 0" in t for t in texts), texts
    # the marked point is (0, 1/4) exactly
    (dot,) = [line for line in ax.lines if line.get_marker() == "o"]
    assert (float(dot.get_xdata()[0]), float(dot.get_ydata()[0])) == (0.0, 0.25)


def test_ax_is_used_and_returned() -> None:
    _, axes = figures.new_figure(1, 2)
    assert figures.activation_derivative("tanh", axes[0, 1]) is axes[0, 1]
    assert len(axes[0, 0].lines) == 0 and len(axes[0, 1].lines) > 0


def test_figures_do_not_touch_global_state() -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    figures.activation_grid(["relu", "tanh"])
    assert dict(matplotlib.rcParams) == before


@pytest.mark.parametrize("fmt", ["pdf", "png", "svg"])
def test_save_is_deterministic(
    tmp_path: Path, fmt: str, same_bytes: Callable[[Path, Path], None]
) -> None:
    a = figures.save(figures.activation_grid(["sigmoid", "relu"]), tmp_path / "a", formats=[fmt])
    b = figures.save(figures.activation_grid(["sigmoid", "relu"]), tmp_path / "b", formats=[fmt])
    assert [p.suffix for p in a] == [p.suffix for p in b] == [f".{fmt}"]
    same_bytes(a[0], b[0])


def test_save_rejects_low_dpi_and_unknown_format(tmp_path: Path) -> None:
    fig = figures.new_figure()[0]
    with pytest.raises(gradmath.GradmathError, match="dpi"):
        figures.save(fig, tmp_path / "x", dpi=72)
    with pytest.raises(gradmath.GradmathError, match="formats"):
        figures.save(fig, tmp_path / "x", formats=["bmp"])


def test_depth_profile_lines_and_error_bars() -> None:
    net = gradmath.MLP.square(8, 5, activation="tanh", init="glorot_normal")
    logs = -np.arange(5.0)
    theory = gradmath.Profile(net, logs, logs, logs)
    sim = gradmath.Profile(net, logs + 0.1, logs, logs, np.full(5, 0.1), np.full(5, 0.2),
                           np.full(5, 0.1), source="simulation")  # fmt: skip
    ax = figures.depth_profile(theory, sim, quantity="grad_q", label="tanh")
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), logs / np.log(10.0))
    assert len(ax.containers) == 1  # one errorbar container for the simulation
    with pytest.raises(gradmath.GradmathError, match="quantity"):
        figures.depth_profile(theory, quantity="nope")
    with pytest.raises(gradmath.GradmathError, match="theory"):
        figures.depth_profile()


class _FakePhaseDiagram:
    """The fields of gradmath.meanfield.PhaseDiagram, for ReLU where all are closed forms."""

    def __init__(self) -> None:
        self.activation = "relu"
        self.sigma_w2 = np.linspace(1.0, 3.0, 21)
        self.sigma_b2 = np.linspace(0.0, 0.5, 11)
        sw, _ = np.meshgrid(self.sigma_w2, self.sigma_b2)
        self.chi1 = sw / 2.0
        with np.errstate(divide="ignore"):
            self.xi_c = np.abs(1.0 / np.log(self.chi1))
        self.q_star = np.ones_like(sw)
        self.critical_sigma_w2 = np.full(self.sigma_b2.size, 2.0)


def test_phase_diagram_and_depth_scale() -> None:
    pd = _FakePhaseDiagram()
    ax = figures.phase_diagram(pd)
    crit = [line for line in ax.lines if "critical" in str(line.get_label())]
    assert len(crit) == 1 and np.all(crit[0].get_xdata() == 2.0)
    texts = {t.get_text().split("\n")[0] for t in ax.texts}
    assert {"ordered", "chaotic"} <= {t.split("\n")[0] for t in texts}
    ax = figures.depth_scale(pd, sigma_b2=[0.0, 0.5])
    assert len([line for line in ax.lines if line.get_linestyle() == "--"]) == 2
    pd.chi1 = pd.chi1[:, :3]
    with pytest.raises(gradmath.GradmathError, match=r"\[i_b, i_w\]"):
        figures.phase_diagram(pd)


class _FakeRun:
    """The fields of gradmath.numeric.train.TrainResult that the training figures read."""

    def __init__(self, loss: list[float], diverged: bool = False) -> None:
        self.loss = np.array(loss)
        self.accuracy = np.linspace(0.3, 0.9, len(loss))
        self.weight_change = np.outer(np.ones(len(loss)), [1e-6, 1e-3, 1e-1])
        self.divergence = "nan at epoch 3" if diverged else None


def test_training_curves_mark_divergence() -> None:
    runs = {"ok": _FakeRun([1.0, 0.5, 0.2, 0.1]), "bad": _FakeRun([1.0, 3.0, np.nan], True)}
    ax = figures.training_curves(runs)
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(crosses) == 1 and float(crosses[0].get_xdata()[0]) == 2.0
    assert float(crosses[0].get_ydata()[0]) == 3.0
    assert ax.get_yscale() == "log" and ax.get_ylim()[1] == 10.0
    with pytest.raises(gradmath.GradmathError, match="metric"):
        figures.training_curves(runs, metric="nope")
    ax = figures.layer_change(runs)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1e-6, 1e-3, 1e-1])
    assert len(ax.lines) == 1  # the diverged run is left out


def test_depth_profiles_one_look_per_label() -> None:
    # Curves differ in colour AND line style AND marker (not colour alone), and the legend
    # entry of a theory-and-simulation curve shows its line with its marker.
    net = gradmath.MLP.square(8, 4)
    logs = np.zeros(4)
    p = gradmath.Profile(net, logs, logs, logs)
    ax = figures.depth_profiles({"a": (p, p), "b": (p, p)})
    data = [ln for ln in ax.lines if len(ln.get_xdata()) == 4 and ln.get_linestyle() != "None"]
    assert len(data) == 2
    assert data[0].get_color() != data[1].get_color()
    assert data[0].get_linestyle() != data[1].get_linestyle()
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
    handles = legend.legend_handles
    assert handles[0].get_marker() != handles[1].get_marker()
    assert all(h.get_linestyle() != "None" for h in handles)


def test_every_series_differs_in_colour_line_style_and_marker() -> None:
    for key in ("color", "linestyle", "marker"):
        values = [str(s[key]) for s in figures.SERIES]
        assert len(set(values)) == len(values), key


def test_clipping_geometry_classic_example() -> None:
    ax = figures.clipping_geometry((0.9, 100.0), 1.0)
    labels = [str(line.get_label()) for line in ax.lines]
    assert any(label.startswith("clip by value: $(0.9, 1)$, 41.5°") for label in labels), labels
    assert any(label.startswith("clip by norm:") and "0.0°" in label for label in labels)
    with pytest.raises(gradmath.GradmathError, match="2-vector"):
        figures.clipping_geometry((1.0, 2.0, 3.0))


def test_phase_diagram_without_depth_scales_colours_chi1() -> None:
    pd = _FakePhaseDiagram()
    pd.xi_c = None
    ax = figures.phase_diagram(pd)
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).ravel(), np.log10(pd.chi1).ravel())


def test_theory_and_simulation_feed_forward_backward() -> None:
    nets = {"relu": gradmath.MLP.square(8, 3, activation="relu", init="he_normal")}
    curves = validate.theory_and_simulation(nets, n_networks=4, batch=4, seed=3)
    theory, sim = curves["relu"]
    assert theory.source != sim.source and sim.log_q_se is not None
    fig = figures.forward_backward(curves)
    left, right = fig.axes[:2]
    assert "h^l_i" in left.get_ylabel() and r"partial\ell" in right.get_ylabel()
    assert len(fig.legends) == 1
