"""A hold on one process that no later process can take over: it is signalled
through a pidfd (Linux 5.3 and later), never by a pid read earlier, which the
kernel may have handed to another process since (pids wrap at 32,768 on many
machines, and one test run forks over a hundred thousand processes).

Without pidfds (another system, an old kernel) the pid is used, checked just
before each signal: the window is the one every ``kill`` has.
"""

from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not; another user's does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


class ProcessHandle:
    """One process, held from ``open`` (while it is known to be that process)
    to ``close``."""

    def __init__(self, pid: int, fd: int | None) -> None:
        self.pid = pid
        self._fd = fd

    @classmethod
    def open(cls, pid: int) -> ProcessHandle | None:
        """A hold on process ``pid`` as it is now; None if there is none. Open it
        while ``pid`` is known to be the process meant (an unreaped child of
        this one; or check what it is after opening: the hold then keeps it)."""
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:
            return cls(pid, None) if alive(pid) else None
        try:
            return cls(pid, pidfd_open(pid))
        except ProcessLookupError:
            return None
        except OSError:  # no pidfds on this kernel
            return cls(pid, None) if alive(pid) else None

    def send(self, signum: int) -> bool:
        """Send ``signum``; False if the process has gone."""
        try:
            if self._fd is not None:
                signal.pidfd_send_signal(self._fd, signum)
            elif alive(self.pid):
                os.kill(self.pid, signum)
            else:
                return False
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; whether it has
        (a zombie has ended: its parent has yet to collect it)."""
        if self._fd is not None:
            return bool(select.select([self._fd], [], [], max(timeout, 0))[0])
        deadline = time.monotonic() + timeout
        while alive(self.pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def end(self, signals: tuple[tuple[int, float], ...]) -> bool:
        """Send each signal in turn, giving the process its seconds to end after
        each; whether it ended."""
        for signum, grace in signals:
            if self.wait(0) or not self.send(signum):
                return True
            if self.wait(grace):
                return True
        return self.wait(0)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
