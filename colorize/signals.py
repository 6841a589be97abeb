"""SIGTERM and SIGINT handled alike by the long-running commands (``colorize serve``, ``colorize archive``).

Why: a container runtime, systemd or Kubernetes stops a process with SIGTERM, not Ctrl-C. Python's default
for SIGTERM is to die on the spot, and in a Ray driver Ray's native handler aborts with a stack trace (exit
134): nothing drains, no report is written. Here both signals take the same graceful path as Ctrl-C. A second
signal while stopping forces a KeyboardInterrupt, so a stuck stop can still be cut short.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Set by the first SIGTERM/SIGINT; ``signum`` says which (for the exit status: 128 + signum)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)

    @property
    def exit_status(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


@contextlib.contextmanager
def stop_signals(*, interrupt: bool) -> Iterator[StopRequest]:
    """Within the block, SIGTERM and SIGINT set the returned :class:`StopRequest`; with ``interrupt`` they
    also raise KeyboardInterrupt in the main thread (for code that stops on Ctrl-C already). Must be entered
    from the main thread, after ``ray.init`` (which installs handlers of its own)."""
    request = StopRequest()

    def handle(signum: int, frame: FrameType | None) -> None:
        first = not request.event.is_set()
        request.signum = request.signum or signum
        request.event.set()
        if interrupt or not first:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
