"""Where :func:`gradmath.numeric.simulate` draws its random numbers: NumPy or PyTorch.

``"numpy"`` (the default, no dependency): SFC64 bit generators and NumPy's ziggurat, the
fastest NumPy combination here (``benchmarks/rng_rates.py``), about equally fast in float64
and float32. ``"torch"`` (needs ``pip install gradmath[torch]``): ``torch.randn``/``torch.rand``
on one ``torch.Generator`` (Mersenne Twister) per stream, written straight into the NumPy
arrays through ``torch.from_numpy`` (shared memory, no copy). PyTorch's CPU normal kernel is
vectorised (Box–Muller over SIMD lanes), several times faster than the ziggurat in float32,
which is where the float32 simulation spends most of its time; in float64 it is slower than
NumPy's. The two give different (each deterministic) streams: a seed reproduces a result
only with the same generator.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from gradmath.errors import GradmathError

GENERATORS = ("numpy", "torch")
GeneratorName = Literal["numpy", "torch"]


#: NumPy dtype character -> torch dtype, filled on first use (float32 and float64 only).
_TORCH_DTYPES: dict[str, Any] = {}


class TorchGenerator:
    """The part of ``numpy.random.Generator`` that :meth:`Initializer.sample` and simulate use
    (``standard_normal``, ``random``, ``bit_generator.state``), drawn by PyTorch."""

    def __init__(self, seq: np.random.SeedSequence) -> None:
        import torch

        self._torch = torch
        if not _TORCH_DTYPES:
            _TORCH_DTYPES.update({"f": torch.float32, "d": torch.float64})
        # 64 bits of the SeedSequence's hashed state: distinct children get distinct seeds
        # (with overwhelming probability) however many were spawned before.
        self._g = torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0]))

    @property
    def bit_generator(self) -> TorchGenerator:
        # NumPy keeps its state on the bit generator; simulate's checkpoints read it there.
        return self

    @property
    def state(self) -> Any:
        return self._g.get_state()

    @state.setter
    def state(self, value: Any) -> None:
        self._g.set_state(value)

    def _fill(self, fn: Any, size: Any, dtype: Any, out: np.ndarray | None) -> np.ndarray:
        if out is None:
            out = np.empty(() if size is None else size, dtype=dtype)
        # out's dtype decides (as NumPy's `out=`); the torch dtype from a dict, since
        # np.dtype.name costs microseconds and the truncated normal calls this per redraw.
        fn(
            out.shape,
            generator=self._g,
            dtype=_TORCH_DTYPES[out.dtype.char],
            out=self._torch.from_numpy(out),
        )
        return out

    def standard_normal(
        self, size: Any = None, dtype: Any = np.float64, out: np.ndarray | None = None
    ) -> np.ndarray:
        """N(0, 1) samples (``numpy.random.Generator.standard_normal``'s signature)."""
        return self._fill(self._torch.randn, size, dtype, out)

    def random(
        self, size: Any = None, dtype: Any = np.float64, out: np.ndarray | None = None
    ) -> np.ndarray:
        """U[0, 1) samples (``numpy.random.Generator.random``'s signature)."""
        return self._fill(self._torch.rand, size, dtype, out)


def make_generator(
    name: str, seq: np.random.SeedSequence, stream: int
) -> np.random.Generator | TorchGenerator:
    """Generator ``name`` for the child ``stream`` of ``seq``.

    The child is built from ``seq``'s spawn key, so it never depends on how many children were
    spawned before (``SeedSequence.spawn`` would count them).
    """
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, stream))
    if name == "torch":
        return TorchGenerator(child)
    return np.random.Generator(np.random.SFC64(child))


def check_generator(name: object) -> GeneratorName:
    """``name`` if it is a generator gradmath knows and can import, else a GradmathError."""
    if name not in GENERATORS:
        raise GradmathError(f"`generator` (={name!r}) must be one of {', '.join(GENERATORS)}.")
    if name == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise GradmathError(
                "`generator='torch'` needs PyTorch: pip install 'gradmath[torch]'."
            ) from None
    return name  # type: ignore[return-value]
