"""Writing files so that they appear whole or not at all.

A file is written to a temporary name in its own directory and renamed over the target with
:func:`os.replace`, which POSIX and Windows make atomic within one file system: an interrupted
or failed write leaves the old file (or none), never a truncated one. Errors from the file
system become :class:`~gradmath.GradmathError` naming the path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gradmath.errors import GradmathError

__all__ = ["atomic_path", "check_path", "write_text_atomic"]


def check_path(name: str, value: object) -> Path:
    """``value`` as a :class:`~pathlib.Path`, refusing the empty string.

    An empty path is what an unset shell variable gives (``--out "$OUT"``); taking it as the
    current directory would write over whatever is there.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise GradmathError(f"`{name}` (={value!r}) must be a path (a string).")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise GradmathError(f"`{name}` (={value!r}) must be a non-empty path.")
    return Path(text)


def _read_umask() -> int:
    # Read once at import: setting the umask to read it is not thread-safe.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _os_error(path: Path, exc: OSError) -> GradmathError:
    reason = exc.strerror or type(exc).__name__
    return GradmathError(f"Cannot write {path}: {reason}.")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write to; renamed to ``path`` when the block ends without error.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path``
    is left as it was. The parent directory is created if needed.
    """
    path = Path(path)
    if path.is_dir():
        raise GradmathError(f"Cannot write {path}: it is a directory; give a file name.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _os_error(path, exc) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _os_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
