"""Read a network from text: the same expression one would write in Python, safely.

``gradmath predict --network SPEC`` and ``gradmath validate --network SPEC`` take either the
expression itself or the path of a file holding it, e.g.

    Network(784, Dense(256), "relu",
            repeat(Residual(Serial(LayerNorm(), Dense(256), "relu", Dense(256)), alpha=0.1), 8),
            Dense(10))

The text is parsed with :mod:`ast` and evaluated by walking the tree: only the constructors
of this package (and ``MLP``), numbers, strings, lists/tuples, unary minus and + − × / ** on
numbers are allowed, so a spec can never run other code.
"""

from __future__ import annotations

import ast
import inspect
import math
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradmath.errors import GradmathError, suggest

__all__ = ["parse_network"]

#: Largest magnitude a spec's arithmetic may reach, in bits (float64 tops out at 2^1024).
_MAX_BITS = 1024

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _names() -> dict[str, Callable[..., Any]]:
    import gradmath.network as nw
    from gradmath.mlp import MLP

    allowed = (
        "Network", "Serial", "repeat", "Dense", "Elementwise", "Residual", "BatchNorm",
        "LayerNorm", "pre_ln_block", "post_ln_block", "fixup_block", "Conv", "AvgPool",
        "AdaptiveAvgPool", "GlobalAvgPool", "Flatten", "Dropout", "Scale",
    )  # fmt: skip
    out: dict[str, Callable[..., Any]] = {n: getattr(nw, n) for n in allowed}
    out["MLP"] = MLP
    return out


def parse_network(text: str) -> Any:
    """The :class:`~gradmath.network.Network` (or MLP) that ``text`` or the file it names describes.

    >>> net = parse_network('Network(8, Dense(16), "tanh", repeat(Dense(16), 2))')
    >>> [s.name for s in net.sites]
    ['dense1', 'dense2', 'dense3']
    """
    if not isinstance(text, str) or not text.strip():
        raise GradmathError("The network spec is empty; write e.g. 'Network(8, Dense(16))'.")
    source = text
    if "(" not in text:
        path = Path(text)
        if not path.is_file():
            raise GradmathError(
                f"The network spec {text!r} is neither an expression such as "
                "'Network(8, Dense(16))' nor a readable file."
            )
        source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise GradmathError(
            f"The network spec does not parse: {exc.msg} (line {exc.lineno})."
        ) from None
    from gradmath.mlp import MLP
    from gradmath.network import Network

    result = _eval(tree.body, _names())
    if not isinstance(result, (Network, MLP)):
        raise GradmathError(
            "The network spec must describe a whole network: Network(input_width, ...) or "
            f"MLP(...), not {type(result).__name__}."
        )
    return result


def _eval(node: ast.AST, names: dict[str, Callable[..., Any]]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, names) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _number(_eval(node.operand, names))
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _number(_eval(node.left, names)), _number(_eval(node.right, names))
        if isinstance(node.op, ast.Pow) and abs(a) > 1 and b * math.log2(abs(a)) > _MAX_BITS:
            # Integer powers are exact in Python: 2**10**10 would compute for minutes.
            raise GradmathError(
                f"The network spec computes {a!r}**{b!r}, beyond the float range (≈ 1.8e308)."
            )
        try:
            out = _BINOPS[type(node.op)](a, b)
        except (ZeroDivisionError, OverflowError) as exc:
            raise GradmathError(f"The network spec has an invalid number: {exc}.") from None
        if not isinstance(out, (int, float)) or abs(out) > 2**_MAX_BITS:
            raise GradmathError(
                f"The network spec computes {ast.unparse(node)}, which is not a real number "
                "in the float range."
            )
        return out
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fn = names.get(node.func.id)
        if fn is None:
            raise GradmathError(
                f"`{node.func.id}` is not allowed in a network spec.{suggest(node.func.id, names)}"
                f" Allowed: {', '.join(sorted(names))}."
            )
        args = [_eval(a, names) for a in node.args]
        kwargs = {k.arg: _eval(k.value, names) for k in node.keywords if k.arg is not None}
        if len(kwargs) != len(node.keywords):
            raise GradmathError("`**kwargs` is not allowed in a network spec.")
        try:
            return fn(*args, **kwargs)
        except TypeError as exc:
            hint = _keyword_hint(fn, kwargs)
            raise GradmathError(f"In the network spec, {node.func.id}(...): {exc}.{hint}") from None
    raise GradmathError(
        f"The network spec may only contain constructor calls, numbers and strings; found "
        f"`{ast.unparse(node)}`."
    )


def _keyword_hint(fn: Callable[..., Any], kwargs: dict[str, Any]) -> str:
    """Close matches for keywords ``fn`` does not take ("sigmab2" → "sigma_b2")."""
    try:
        known = [p for p in inspect.signature(fn).parameters if p != "self"]
    except (TypeError, ValueError):  # pragma: no cover - every allowed name has a signature
        return ""
    return "".join(suggest(k, known) for k in kwargs if k not in known)


def _number(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise GradmathError(f"The network spec does arithmetic on {v!r}, which is not a number.")
    return v
