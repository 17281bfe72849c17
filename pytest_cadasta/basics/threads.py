"""Non-daemon threads the project's code leaves running (an app that starts one
while imported, as some metrics clients do): Python waits for every one of them
before it exits, so the run would print its verdict and never end. It ends
anyway, with its own exit code, saying which threads and why."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Collection


def lingering(before: Collection[threading.Thread]) -> list[threading.Thread]:
    """The non-daemon threads alive now that were not alive in ``before``."""
    return [t for t in threading.enumerate()
            if t not in before and not t.daemon and t is not threading.main_thread()]


def end_despite(threads: list[threading.Thread], exit_code: int) -> None:
    """Say which ``threads`` would keep the process alive; once the main thread
    is done (Python then waits for them), end the process with ``exit_code``."""
    names = ", ".join(repr(t.name) for t in threads)
    sys.stderr.write(
        f"pytest-cadasta: non-daemon threads still running now the run is over: {names} "
        "(started by the project's code: the app, a conftest or a test); Python would "
        "wait for them forever, as 'celery worker' would at shutdown: the process ends "
        "here (make them daemon threads, or stop them)\n")

    def end() -> None:
        # The main thread's end is the moment Python starts waiting for them.
        threading.main_thread().join()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(int(exit_code))

    threading.Thread(target=end, name="cadasta-end-despite-threads", daemon=True).start()
