"""One run per workdir: an advisory lock (`fcntl.flock`) on the workdir itself, held for the
whole run.

The kernel releases the lock when its process dies (kill -9 included), so a killed run never
blocks the next one. While it holds the lock, a run names itself ("pid@host") in
`.dprec.lock`, so a second run on the workdir gets one line naming the holder; the file goes
when the lock is released (a killed holder's stale file is simply overwritten).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from dprec.errors import UserInputError

LOCK_FILE = ".dprec.lock"


class WorkdirBusy(UserInputError):
    """Another live process holds the workdir's lock."""


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        pid, _, host = path.read_text().strip().partition("@")
        if pid:
            return f"pid {pid} on {host or 'an unknown host'}"
    return "another process"


@contextlib.contextmanager
def workdir_lock(workdir: str | Path) -> Iterator[Path]:
    """Hold `workdir`'s run lock for the body; creates the workdir if needed.

    If this call created the workdir and the body leaves it empty (a bad input found before
    any output), the workdir is removed again on exit.

    Raises:
      WorkdirBusy: another process holds it; the message names its pid and host.
    """
    path = Path(workdir).expanduser()
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    holder_file = path / LOCK_FILE
    fd = os.open(path, os.O_RDONLY)  # a directory's descriptor can be flock'ed like a file's
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise WorkdirBusy(
                f"{path} is in use by a run of {_holder(holder_file)}; wait for it to finish, "
                "stop it, or pass another --workdir"
            ) from err
        holder_file.write_text(f"{os.getpid()}@{socket.gethostname()}\n")
        try:
            yield path
        finally:
            holder_file.unlink(missing_ok=True)
            if created and not any(path.iterdir()):
                with contextlib.suppress(OSError):
                    path.rmdir()
    finally:
        os.close(fd)  # closing the descriptor releases the lock
