"""Stopping a run on SIGTERM or SIGINT (what SLURM and preemptible VMs send before a kill):
the loop finishes its epoch, commits a checkpoint and raises `RunStopped`; the command line
prints one line and exits with 128 + the signal number (143 for SIGTERM, 130 for SIGINT). A
second signal stops the process at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

from dprec import sharding

_log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunStopped(Exception):  # noqa: N818 (a request honoured, not an error)
    """The run stopped on a signal after committing the checkpoint of `epoch`."""

    def __init__(self, signum: int, epoch: int):
        self.signum, self.epoch = signum, epoch
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after epoch {epoch}; rerun the same command to resume")

    @property
    def exit_status(self) -> int:
        """128 + the signal number, as a shell reports a process the signal ended."""
        return 128 + self.signum


class StopRequest:
    """Whether a stop signal arrived; `requested()` is the same answer in every process."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def requested(self) -> bool:
        """True once any process of the run got a stop signal (a collective in a multi-process
        run: every process must call it at the same point, e.g. each epoch's end)."""
        return not sharding.in_every_process(self.signum is None)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, SIGTERM and SIGINT set the request instead of ending the process;
    the second one ends it at once. Outside the main thread (no handlers possible) the
    request is never set."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum, frame):
        del frame
        if request.signum is not None:  # the second signal: stop now, the default way
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        request.signum = signum
        _log.warning(
            "%s received: stopping after this epoch's checkpoint (send it again to stop at once)",
            signal.Signals(signum).name,
        )

    previous = {signum: signal.signal(signum, handle) for signum in SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
