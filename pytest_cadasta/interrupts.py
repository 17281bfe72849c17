"""How a run meets SIGINT (Ctrl-C) and SIGTERM (a CI job's timeout, a container
stopping): while it holds PostgreSQL, moto and a worker, SIGTERM stops it as
Ctrl-C does; while it stops them, both wait until it is done."""

from __future__ import annotations

import signal
import threading
from contextlib import ExitStack
from typing import Any


def stop_cleanly_on_sigterm(stack: ExitStack) -> None:
    """SIGTERM ends Python without any teardown, leaving PostgreSQL running;
    until ``stack`` closes, it is handled as Ctrl-C is, so everything started
    is stopped and removed."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return  # somebody else handles it already

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    stack.callback(signal.signal, signal.SIGTERM, previous)


class HeldSignals:
    """Within the block, SIGINT and SIGTERM are held, not acted on: the run is
    stopping what it started, and an interruption then would leave the rest
    running (PostgreSQL, its files, a throwaway database). ``received`` says
    what came; a second signal is not held: it interrupts at once."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> HeldSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._hold)
        return self

    def _hold(self, signum: int, frame: Any) -> None:
        if self.received:
            raise KeyboardInterrupt(f"signal {signum}")
        self.received.append(signum)

    def __exit__(self, *exc_info: Any) -> None:
        for signum, previous in self._previous.items():
            # Unless the block set its own (closing the run puts SIGTERM back).
            if signal.getsignal(signum) == self._hold and previous is not None:
                signal.signal(signum, previous)
        self._previous.clear()
