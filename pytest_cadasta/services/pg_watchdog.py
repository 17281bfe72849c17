"""The ephemeral PostgreSQL's watchdog: when the run dies, however it dies,
stop the server at once and remove its directory.
``python -m pytest_cadasta.services.pg_watchdog LIFELINE_FD WORKDIR``.

The run holds the write end of the lifeline pipe; the kernel closes it when
the run dies, SIGKILL included, and this process, blocked reading it, wakes at
end-of-file. A pipe rather than Linux's parent-death signal: that signal
follows the thread that started this process, not the run, and is Linux's
alone. On a normal stop the run has stopped the server and removed the
directory first: the watchdog finds nothing and exits.

The same cleaning serves a later run, which removes what a dead run's
watchdog could not (the watchdog killed with it): ``owner_alive`` tells a
dead run's directory from a live one's, by the pid and start time the run
wrote in it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

from pytest_cadasta.basics.process_handle import ProcessHandle

#: The file in a run's directory naming the run: its pid and start time.
OWNER_FILE = "owner"
#: The file a postmaster keeps in its data directory while it runs.
PID_FILE = "postmaster.pid"
#: How long a postmaster gets to go after SIGQUIT (immediate shutdown).
QUIT_GRACE = 3.0
#: After a clean pass, how long the directory must stay gone (a ``pg_ctl
#: start`` the run left behind may still be starting a server there).
SETTLE = 1.0
#: The most the cleaning takes.
LIMIT = 10.0


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or None when
    there is no such process: with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def mark_owner(workdir: Path) -> None:
    """Write this process's pid and start time into ``workdir``."""
    (workdir / OWNER_FILE).write_text(f"{os.getpid()} {start_time(os.getpid())}\n")


def owner_alive(workdir: Path) -> bool:
    """Whether the run that made ``workdir`` still runs (a directory without an
    owner is young, or not ours: taken as alive)."""
    try:
        pid, started = (workdir / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        return True
    return start_time(int(pid)) == started


def _works_in(pid: int, datadir: Path) -> bool:
    """Whether process ``pid`` is the postmaster of ``datadir`` (a postmaster
    works in its data directory), not a process that took a dead one's pid
    since; without /proc the pid file is taken at its word."""
    if not Path("/proc/self/cwd").exists():
        return True
    try:
        return os.path.samefile(f"/proc/{pid}/cwd", datadir)
    except OSError:
        return False


def pid_file(datadir: Path) -> list[str]:
    """The lines of the ``postmaster.pid`` in ``datadir`` (the postmaster's pid,
    its directory, start time, port, socket directory, address, shared memory
    key and id, status); none without one. A postmaster removes it as it
    stops: one left behind names a server that runs, or was killed."""
    try:
        return (datadir / PID_FILE).read_text().splitlines()
    except OSError:
        return []


def _servers(workdir: Path) -> list[tuple[Path, list[str]]]:
    """Each data directory under ``workdir`` with a pid file, and its lines."""
    found = []
    for pidfile in workdir.glob(f"**/{PID_FILE}"):
        lines = pid_file(pidfile.parent)
        if lines and lines[0].strip().isdigit():
            found.append((pidfile.parent, lines))
    return found


def stop_servers(workdir: Path) -> bool:
    """Stop every postmaster whose data directory is under ``workdir``:
    immediate shutdown (SIGQUIT), then SIGKILL if it lingers, each sent to the
    process found there (held by a pidfd as soon as it is known, checked to
    work in that directory), never to a pid that changed hands since. Whether
    there was one."""
    found = False
    for datadir, lines in _servers(workdir):
        pid = int(lines[0])
        if pid <= 1:
            continue
        process = ProcessHandle.open(pid)
        if process is None:
            continue
        try:
            # Checked once held: the hold keeps the process it was checked on.
            if not _works_in(pid, datadir):
                continue
            found = True
            process.end(((signal.SIGQUIT, QUIT_GRACE), (signal.SIGKILL, QUIT_GRACE)))
        finally:
            process.close()
    return found


def release_shared_memory(workdir: Path) -> None:
    """Remove the System V shared memory segment of each killed server under
    ``workdir`` (Linux): a postmaster removes it as it stops; a killed one
    leaves it for good, since no server will start in that directory again.
    Only a segment its pid file names, made by that postmaster (the segment's
    creator is the pid the file names, and no longer runs) as the user the
    file belongs to: never one whose id was reused since, nor one a pid file
    someone else wrote names. (Its dynamic shared memory lives in its
    directory: ``dynamic_shared_memory_type=mmap``.)"""
    try:
        table = Path("/proc/sysvipc/shm").read_text().splitlines()
    except OSError:
        return
    columns = table[0].split() if table else []
    rows = [dict(zip(columns, row.split())) for row in table[1:]]
    for datadir, lines in _servers(workdir):
        try:
            key, shmid = (int(field) for field in lines[6].split())
            owner = (datadir / PID_FILE).stat()
        except (IndexError, ValueError, OSError):
            continue
        pid = lines[0].strip()
        for row in rows:
            if (row.get("shmid") == str(shmid) and row.get("cpid") == pid
                    and row.get("cuid") == str(owner.st_uid)
                    # PostgreSQL writes the key unsigned, Linux signed
                    and int(row.get("key", "0")) & 0xFFFFFFFF == key & 0xFFFFFFFF
                    and not Path("/proc", pid).exists()):
                _remove_segment(shmid, owner.st_uid, owner.st_gid)


def _remove_segment(shmid: int, uid: int, gid: int) -> None:
    """IPC_RMID segment ``shmid``: as this process, or, as root without the
    right to remove another user's segment (CAP_SYS_ADMIN, which containers
    drop), as its owner with ``ipcrm``. (Imported here: the watchdog's every
    start needs neither.)"""
    import ctypes
    import subprocess

    ipc_rmid = 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.shmctl(shmid, ipc_rmid, None) == 0:
            return
    except (OSError, AttributeError):
        return
    ipcrm = shutil.which("ipcrm")
    if os.geteuid() == 0 and uid != 0 and ipcrm is not None:
        subprocess.run([ipcrm, "-m", str(shmid)], user=uid, group=gid, cwd="/",
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, timeout=QUIT_GRACE)


def kept_log(workdir: Path) -> Path:
    """Where a run's server log is kept beside its directory (a hard link to
    the log inside): what removes the directory while the server runs cannot
    take the server's last words with it."""
    return workdir.with_name(workdir.name + ".log")


def clean(workdir: Path, settle: float = SETTLE) -> None:
    """Stop the servers under ``workdir`` and remove it and its kept log, until
    it stays gone for ``settle`` seconds."""
    deadline = time.monotonic() + LIMIT
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if workdir.exists():
            stop_servers(workdir)
            release_shared_memory(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            break
        time.sleep(0.05)
    kept_log(workdir).unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    lifeline, workdir = int(argv[1]), Path(argv[2])
    try:
        while os.read(lifeline, 64):
            pass
    except OSError:
        pass
    if workdir.exists():
        clean(workdir)
    else:
        kept_log(workdir).unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv)
