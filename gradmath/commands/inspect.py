"""`gradmath inspect`: a PyTorch model's per-layer theory against measurement, and a verdict."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, cast

from gradmath.errors import GradmathError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg, unused-ignore]
    p = sub.add_parser(
        "inspect",
        help="probe a PyTorch model and compare it with the mean-field theory",
        description=(
            "Build the model that `package.module:factory` returns, feed it a standard normal "
            "input of --input-shape, and print per layer the measured second moments over "
            "--inits re-initialisations (gradmath.torch.probe) against the mean-field "
            "prediction, with z-scores, where theory stops, and the verdict of "
            "gradmath.diagnose. Needs torch (pip install gradmath[torch])."
        ),
    )
    p.add_argument("factory", help="package.module:callable returning a torch.nn.Module")
    p.add_argument("--input-shape", required=True, help="input shape, batch first, e.g. 8,3,32,32")
    p.add_argument("--inits", type=int, default=16, help="re-initialisations (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--figure", default=None, metavar="PATH", help="write the gradient-flow plot")
    p.set_defaults(run=run)


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        raise GradmathError(
            f"`--input-shape` (={text!r}) must be positive integers separated by commas, batch "
            "first, e.g. 8,3,32,32."
        )
    return shape


def load_factory(spec: str) -> Any:
    """The callable named by ``package.module:name`` (a one-line error if it cannot be had)."""
    import importlib

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise GradmathError(f"`factory` (={spec!r}) must look like package.module:callable.")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is the user's module, reported in one line
        raise GradmathError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GradmathError(f"{module_name!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise GradmathError(f"{spec!r} is not callable.")
    return obj


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _check_runs(model: Any, x: Any, factory: str) -> None:
    """One plain forward pass, in eval mode and without gradients (nothing in the model
    changes), so that an input the model does not accept is named as such."""
    import torch

    modes = [(m, m.training) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()
            model(x)
    except Exception as exc:  # the user's model, whatever it raises: one line
        shape = ",".join(str(v) for v in x.shape)
        raise GradmathError(
            f"{factory}() does not accept an input of shape {shape} (--input-shape): "
            f"{_one_line(exc)}"
        ) from None
    finally:
        for m, mode in modes:
            m.training = mode


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        import torch
    except ImportError:
        raise GradmathError(
            "`gradmath inspect` needs torch: pip install 'gradmath[torch]'."
        ) from None
    from gradmath.torch.report import explain

    shape = _shape(args.input_shape)
    factory = load_factory(args.factory)
    try:
        model = factory()
    except Exception as exc:
        raise GradmathError(f"{args.factory}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        what = type(model).__name__
        raise GradmathError(f"{args.factory}() returned {what}, not a torch.nn.Module.")
    x = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))
    _check_runs(model, x, args.factory)
    try:
        report = explain(model, x, n_inits=args.inits, seed=args.seed)
    except GradmathError:
        raise
    except Exception as exc:
        # The model runs on this input (checked above): what failed is gradmath running it
        # with module hooks and a torch function mode (e.g. TorchScript modules take no hooks).
        raise GradmathError(
            f"cannot trace {args.factory}() (gradmath runs the model with module hooks and a "
            f"torch function mode): {_one_line(exc)}"
        ) from None
    print(report.table())
    if args.figure:
        from gradmath.render import figures

        ax = report.figure()
        path = Path(args.figure)
        formats = (path.suffix[1:],) if path.suffix else ("pdf", "png")
        for written in figures.save(cast("Figure", ax.figure), path.with_suffix(""),
                                    formats=formats):  # fmt: skip
            print(f"wrote {written}")
    return 0
