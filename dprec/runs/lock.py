"""One run per workdir: an advisory file lock (`fcntl.flock`) held for the whole run.

The kernel releases the lock when its process dies (kill -9 included), so a killed run never
blocks the next one; a second run on a held workdir gets one line naming the holder's pid and
host. The lock file (`.dprec.lock`, holding "pid@host") stays in the workdir between runs:
removing it on release would let two waiting runs lock two different files.
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
        text = path.read_text().strip()
        if text:
            pid, _, host = text.partition("@")
            return f"pid {pid} on {host or 'an unknown host'}"
    return "another process"


@contextlib.contextmanager
def workdir_lock(workdir: str | Path) -> Iterator[Path]:
    """Hold `workdir`'s run lock for the body; creates the workdir if needed.

    If this call created the workdir and the body leaves nothing in it but the lock file (a
    bad input found before any output), the workdir is removed again on exit.

    Raises:
      WorkdirBusy: another process holds it; the message names its pid and host.
    """
    path = Path(workdir).expanduser()
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    lock_path = path / LOCK_FILE
    handle = open(lock_path, "a+")  # noqa: SIM115 (held open for the context's lifetime)
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise WorkdirBusy(
                f"{path} is in use by a run of {_holder(lock_path)}; wait for it to finish, "
                "stop it, or pass another --workdir"
            ) from err
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}@{socket.gethostname()}\n")
        handle.flush()
        try:
            yield path
        finally:
            if created and [p.name for p in path.iterdir()] == [LOCK_FILE]:
                lock_path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.rmdir()
    finally:
        handle.close()  # closing the descriptor releases the lock
