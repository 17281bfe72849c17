"""mirakuru's exit-time sweep, narrowed to what it means: the processes this
process started.

pytest-postgresql's plugin imports mirakuru in every pytest run on a machine
that has it installed, and mirakuru then SIGKILLs, as Python exits, every
process whose ``mirakuru_uuid`` variable *contains* the exiting process's pid
(mirakuru 3.1: a substring test against ``'<pid of its starter>:<uuid>'``).
Run 2345 ending kills the PostgreSQL that run 12345 started with
pytest-postgresql, whose log then ends without a word: pids wrap at 32,768,
so on a CI machine running jobs side by side it is a matter of time. While
this plugin runs, the sweep kills only the processes whose mark this process
wrote (they start ``'<pid>:'``): what mirakuru means to clean, and no one
else's. (The plugin's own servers carry no mark at all.)
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from pathlib import Path

from pytest_cadasta.basics.process_handle import ProcessHandle

MARK = b"mirakuru_uuid="


def narrow() -> None:
    """Replace mirakuru's exit-time sweep, if mirakuru is imported, with one
    that kills only the processes this process marked."""
    base = sys.modules.get("mirakuru.base")
    sweep = getattr(base, "cleanup_subprocesses", None)
    if sweep is None:
        return
    atexit.unregister(sweep)
    atexit.unregister(sweep_own)
    atexit.register(sweep_own)


def _mark(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for variable in environ.split(b"\0"):
        if variable.startswith(MARK):
            return variable[len(MARK):].decode(errors="replace")
    return None


def sweep_own() -> None:
    """SIGKILL the processes whose mirakuru mark this process wrote, each
    checked once held (see ``ProcessHandle``)."""
    if not Path("/proc/self/environ").exists():
        return
    mine = f"{os.getpid()}:"
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not (_mark(int(entry)) or "").startswith(mine):
            continue
        process = ProcessHandle.open(int(entry))
        if process is None:
            continue
        try:
            if (_mark(int(entry)) or "").startswith(mine):
                process.send(signal.SIGKILL)
        finally:
            process.close()
