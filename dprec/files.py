"""Atomic file writes: a temporary file in the same folder, then a rename, so that an
interrupted writer never leaves a half-written file; an OSError while writing (no space,
read-only, quota) is one line naming the path and the errno (`DiskError`)."""

from __future__ import annotations

import errno
import gzip
import os
import tempfile
from pathlib import Path

from dprec.errors import UserInputError


class DiskError(UserInputError):
    """A file of the run could not be written (no space, read-only, quota): one line naming the
    path and the errno."""


def disk_error(path: str | Path, err: OSError) -> DiskError:
    """The one-line error for an OSError `err` raised while writing `path`."""
    code = errno.errorcode.get(err.errno, "") if err.errno else ""
    reason = err.strerror or str(err) or type(err).__name__
    return DiskError(
        f"cannot write {path}: {reason}{f' ({code})' if code else ''}; free space or pass a "
        "writable --workdir (finished results and committed checkpoints are kept)"
    )


def process_umask() -> int:
    mask = os.umask(0o022)  # os.umask can only be read by setting it: set it back at once
    os.umask(mask)
    return mask


def write_atomic_bytes(path: str | Path, data: bytes, *, gzip_compress: bool = False) -> None:
    """Write `data` to `path` through a temporary file and a rename (optionally gzip'd)."""
    path = Path(path)
    if gzip_compress:
        data = gzip.compress(data, mtime=0)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~process_umask())  # mkstemp makes 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise disk_error(path, err) from err
        raise


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    write_atomic_bytes(path, text.encode())
