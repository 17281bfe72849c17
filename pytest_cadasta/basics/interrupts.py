"""How a run meets SIGINT (Ctrl-C) and SIGTERM (a CI job's timeout, a container
stopping): every one that comes is recorded, whatever happens to it next, and
the run then ends as interrupted (exit 2).

While the run holds PostgreSQL, moto and a worker, SIGTERM stops it as Ctrl-C
does (Python's default would end the process with no teardown at all). While
it stops them, both are held: acted on once the stopping is done. A
KeyboardInterrupt can be lost on its way (raised inside a finalizer, whose
exceptions Python prints and drops; caught by code that catches everything),
so the record, not the exception, decides how the run ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """The run's handler of SIGINT and SIGTERM, from ``install`` to ``restore``."""

    def __init__(self) -> None:
        #: Every SIGINT and SIGTERM that reached the run, in order.
        self.received: list[int] = []
        #: Where ``received`` stood as each hold began (holds may nest).
        self._holds: list[int] = []
        #: The handlers in place before the run's, put back by ``restore``.
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle Ctrl-C and SIGTERM for the run (in the main thread: only it may
        set handlers). A handler someone else put in place first is left alone:
        the signal is theirs."""
        if threading.current_thread() is not threading.main_thread():
            return
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if current is defaults[signum] or current == self._handle:
                self._previous.setdefault(signum, current)
                signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self._holds and len(self.received) - self._holds[-1] == 1:
            return  # acted on once the stopping is done
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    @property
    def name(self) -> str | None:
        """The name of the first signal received (None: none came)."""
        return signal.Signals(self.received[0]).name if self.received else None

    @contextmanager
    def held(self) -> Iterator[Interrupts]:
        """Within the block, a first SIGINT or SIGTERM is recorded and not acted
        on: the run is stopping what it started, and an interruption would leave
        the rest running (PostgreSQL, its files, a throwaway database). A
        second one interrupts at once. The run's handler is put in place for
        the block, whoever replaced it meanwhile."""
        replaced: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                current = signal.getsignal(signum)
                if current != self._handle:
                    replaced[signum] = current
                    signal.signal(signum, self._handle)
        self._holds.append(len(self.received))
        try:
            yield self
        finally:
            self._holds.pop()
            for signum, handler in replaced.items():
                if handler is not None:
                    signal.signal(signum, handler)

    def restore(self) -> None:
        """Put back the handlers the run found (the run is over)."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
