"""Memory for :func:`gradmath.numeric.simulate`'s weights, kept from one call to the next.

Why. Every weight matrix of a simulation is alive at once (the backward pass needs them), so
each call writes its weights into memory it has not touched before, and a first touch costs
a page fault per 4 KiB page while the kernel maps and zeroes it. glibc hands blocks this large
straight back to the kernel when they are freed, so the next call pays again. Measured on the
2-core CI machine type (issue 16): 31,000 faults and 0.10 s of kernel time per float32
``simulate`` call at tanh 256/64 with 16 networks, about 30 % of its CPU time, where the
floor's benchmark writes into warm buffers. An :class:`Arena` hands out arrays cut from large
blocks of a process-wide pool and gives the blocks back when its networks are done, so the
next call finds them mapped.

What is kept: at most :data:`KEEP` bytes of free blocks (simulate's default memory budget),
released by :func:`release_memory`. A block goes back to the pool only
when no array still points into it (an exception's traceback may hold a call's tapes), so
nothing handed out is ever shared.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["KEEP", "Arena", "release_memory"]

#: Size of a block (bytes): large enough that the per-array bookkeeping is negligible, small
#: enough that a chunk's last, partly used block wastes little.
BLOCK = 8 * 2**20
#: Most bytes of free blocks the pool keeps between calls.
KEEP = 512 * 2**20
#: Arrays start at multiples of this many bytes (a cache line: aligned SIMD loads).
ALIGN = 64

_free: list[NDArray[np.uint8]] = []
_lock = threading.Lock()


def _take(nbytes: int) -> NDArray[np.uint8]:
    """The smallest free block of at least ``nbytes`` bytes from the pool, or a new one."""
    with _lock:
        fits = [i for i, block in enumerate(_free) if block.nbytes >= nbytes]
        if fits:
            return _free.pop(min(fits, key=lambda i: _free[i].nbytes))
    return np.empty(max(BLOCK, nbytes), dtype=np.uint8)


class Arena:
    """Arrays cut from pooled blocks (bump allocation), for one thread's use; :meth:`close`
    returns the blocks to the pool."""

    def __init__(self) -> None:
        self._blocks: list[NDArray[np.uint8]] = []
        self._address = 0  # of the last block (ndarray.ctypes costs ~10 µs per look-up)
        self._used = 0

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]:
        """An uninitialised C-contiguous array (like ``np.empty``) that lives in the pool."""
        nbytes = math.prod(shape) * dtype.itemsize
        start = self._aligned(self._used) if self._blocks else 0
        if not self._blocks or start + nbytes > self._blocks[-1].nbytes:
            self._blocks.append(_take(nbytes + ALIGN))
            self._address = self._blocks[-1].ctypes.data
            start = self._aligned(0)
        self._used = start + nbytes
        raw = self._blocks[-1][start : start + nbytes]
        return raw.view(dtype).reshape(shape)

    def _aligned(self, offset: int) -> int:
        """The first offset >= ``offset`` whose address in the last block is a multiple of
        :data:`ALIGN`."""
        return offset + (-(self._address + offset) % ALIGN)

    def close(self) -> None:
        """Give the blocks no array points into back to the pool (up to :data:`KEEP` bytes)."""
        blocks, self._blocks = self._blocks, []
        # References to a block here: the list, the loop variable and getrefcount's argument.
        # An array cut from it holds one more (its base): the block is still in use.
        free = [b for b in blocks if sys.getrefcount(b) <= 3]
        del blocks
        with _lock:
            room = KEEP - sum(b.nbytes for b in _free)
            for b in free:
                if b.nbytes <= room:
                    _free.append(b)
                    room -= b.nbytes


def release_memory() -> int:
    """Free the memory :func:`gradmath.numeric.simulate` keeps for its next call; returns
    the number of bytes released (to the allocator, which returns large blocks to the OS).

    >>> release_memory() >= 0
    True
    """
    with _lock:
        n = sum(b.nbytes for b in _free)
        _free.clear()
    return n
