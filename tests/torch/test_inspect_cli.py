"""`gradmath inspect`: the table and verdict, the figure, and one-line errors (exit 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gradmath.cli import main

HERE = Path(__file__).resolve().parent
FACTORY = "inspect_factories:sigmoid_mlp"


@pytest.fixture(autouse=True)
def _factories_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("inspect_factories", None)


def test_table_verdict_and_figure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fig = tmp_path / "flow.pdf"
    code = main(["inspect", FACTORY, "--input-shape", "16,64", "--inits", "6",
                 "--figure", str(fig)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Measured: Vanishing gradients (8 layers)" in out
    assert "Theory predicts 'vanishing' (as the measurement)" in out
    assert "torch probe agrees with theory" in out
    assert "theory: dense1 … dense8" in out
    assert fig.exists() and fig.stat().st_size > 1000


def test_one_weight_layer_is_compared_without_a_trend(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A single Linear has nothing for diagnose's slope over layers; the comparison still runs."""
    fig = tmp_path / "one.pdf"
    code = main(["inspect", "inspect_factories:one_layer", "--input-shape", "16,32",
                 "--inits", "6", "--figure", str(fig)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "One weight layer: no trend across layers for diagnose to judge." in out
    assert "torch probe agrees with theory" in out
    assert fig.exists() and fig.stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [FACTORY, "--input-shape", "16,32"],
            "does not accept an input of shape 16,32 "
            "(--input-shape): RuntimeError: mat1 and mat2 shapes cannot be multiplied",
        ),
        (
            ["inspect_factories:picky", "--input-shape", "4,5"],
            "does not accept an input of shape 4,5 (--input-shape): AssertionError: expects 8",
        ),
        (
            ["inspect_factories:scripted", "--input-shape", "4,8"],
            "cannot trace "
            "inspect_factories:scripted() (gradmath runs the model with module hooks and a torch "
            "function mode): RuntimeError: register_forward_pre_hook is not supported on "
            "ScriptModules",
        ),
        (["inspect_factories:no_tensor", "--input-shape", "4,8"], "output holds no tensor"),
        ([FACTORY, "--input-shape", "16,x"], "`--input-shape` (='16,x') must be positive"),
        (["no_such_module:f", "--input-shape", "2,2"], "cannot import 'no_such_module'"),
        (["inspect_factories:nope", "--input-shape", "2,2"], "has no attribute 'nope'"),
        (["inspect_factories", "--input-shape", "2,2"], "must look like package.module:callable"),
        (["inspect_factories:not_a_model", "--input-shape", "2,2"], "returned int, not a torch"),
        (["inspect_factories:broken", "--input-shape", "2,2"], "failed: RuntimeError: no GPU"),
    ],
)
def test_errors_are_one_line_with_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradmath inspect: error: ") and message in err
    assert err.count("\n") == 1
