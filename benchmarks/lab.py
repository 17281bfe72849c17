"""Where the benchmark's runs happen: a private temporary directory, the timed
``python -m pytest`` subprocesses, and the servers the benchmark process starts
itself. ``Lab.close()`` (also on Ctrl-C) stops every one of them and removes
the directory.

Every child runs in a session of its own with ``TMPDIR`` inside the lab, so
whatever it starts (PostgreSQL daemonizes out of its process group) leaves a
``postmaster.pid`` under the lab, and the lab can stop it by that id even when
the child was killed before its own teardown ran. (The own tests run without
a TMPDIR, as the README's test command does; their session removes its own.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How long a child gets to tear down (stop PostgreSQL, moto) after SIGINT.
INTERRUPT_GRACE = 20.0
KILL_GRACE = 5.0

#: A pg_ctl that prepares the directories pytest-postgresql made for the data
#: (root-owned, mode 0700) and drops root before running the real one.
PG_CTL_WRAPPER = """\
#!{python}
import os, sys
from pathlib import Path

args = sys.argv[1:]
home = Path({lab!r})
for flag in ("-D", "--pgdata"):
    if flag in args:
        home = Path(args[args.index(flag) + 1]).parent
        break
below = Path({below!r})
for directory in (home, *home.parents):
    if below not in directory.parents:
        break
    os.chown(directory, {uid}, {gid})
os.chdir(home)
os.environ["HOME"] = str(home)
os.setgroups([])
os.setgid({gid})
os.setuid({uid})
os.execv({pg_ctl!r}, [{pg_ctl!r}] + args)
"""


def _children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for descendants."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Run:
    """One finished subprocess: its wall time, exit code and output, and the
    CPU seconds (user + system) its process tree spent."""

    seconds: float
    returncode: int | None  # None: stopped at the timeout
    output: str
    cpu: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class Lab:
    """A private temporary directory (reachable by PostgreSQL's unprivileged
    user when running as root), the subprocesses run in it, and the servers
    started for the benchmark process."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._stack = ExitStack()
        self.root = Path(tempfile.mkdtemp(prefix="cadasta-bench-", dir=_base_dir()))
        self._stack.callback(shutil.rmtree, self.root, ignore_errors=True)
        self._stack.callback(self._stop_leftover_postgres)
        self.root.chmod(0o711)
        # The children's /tmp: world-writable and sticky like /tmp, so a server
        # running as another user can put its socket there.
        self.tmp = self.root / "tmp"
        self.tmp.mkdir()
        self.tmp.chmod(0o1777)
        self._dirs: set[str] = set()
        self._moto_endpoint: str | None = None
        self._counted_moto: Any = None
        self._postgres_url: str | None = None
        self._pg_ctl: str | None = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def workdir(self, name: str) -> Path:
        """``root/name``, made once; traversable by PostgreSQL's user."""
        path = self.root / name
        if name not in self._dirs:
            path.mkdir()
            path.chmod(0o711)
            self._dirs.add(name)
        return path

    def pytest(self, args: Sequence[str], cwd: Path,
               env: Mapping[str, str] | None = None, lab_tmpdir: bool = True) -> Run:
        """Wall time of ``python -m pytest *args`` in ``cwd``; stopped (and its
        PostgreSQL with it) at the timeout or on Ctrl-C. ``lab_tmpdir=False``:
        with no TMPDIR at all, as a command typed in a shell without one."""
        log = self.root / "last-run.log"
        child_env = {**os.environ, "TMPDIR": str(self.tmp), **(env or {})}
        if not lab_tmpdir:
            del child_env["TMPDIR"]
        command = [sys.executable, "-m", "pytest", "--color=no", *args]
        with log.open("w") as out:
            start = time.perf_counter()
            before = _children_cpu()
            child = subprocess.Popen(command, cwd=cwd, env=child_env, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
            try:
                returncode: int | None = child.wait(self.timeout)
            except subprocess.TimeoutExpired:
                returncode = None
            except BaseException:
                _stop(child)
                self._stop_leftover_postgres()
                raise
            seconds = time.perf_counter() - start
            if returncode is None:
                _stop(child)
                self._stop_leftover_postgres()
        # Every process of its tree that was waited for (moto's, PostgreSQL's,
        # the xdist workers) adds to the run's children's usage.
        return Run(seconds, returncode, log.read_text(errors="replace"),
                   _children_cpu() - before)

    def pg_ctl(self) -> str:
        """The pg_ctl the plugin would find (PATH, then the usual places)."""
        if self._pg_ctl is None:
            from pytest_cadasta.services.postgres import find_pg_ctl

            self._pg_ctl = find_pg_ctl(None)
        return self._pg_ctl

    def pg_ctl_for(self, below: Path) -> str:
        """A pg_ctl that pytest-postgresql can run with data under ``below``: the
        real one, or as root a wrapper that runs it as an unprivileged user."""
        if os.geteuid() != 0:
            return self.pg_ctl()
        from pytest_cadasta.services.postgres import unprivileged_user

        user = unprivileged_user()
        wrapper = below / "pg_ctl"
        wrapper.write_text(PG_CTL_WRAPPER.format(
            python=sys.executable, lab=str(self.tmp), below=str(below),
            uid=user.pw_uid, gid=user.pw_gid, pg_ctl=self.pg_ctl()))
        wrapper.chmod(stat.S_IRWXU)
        return str(wrapper)

    def moto_endpoint(self) -> str:
        """A moto server in this process (started once, stopped on close)."""
        if self._moto_endpoint is None:
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line a request
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            self._stack.callback(server.stop)
            host, port = server.get_host_and_port()
            self._moto_endpoint = f"http://{host}:{port}"
        return self._moto_endpoint

    def counted_moto(self) -> str:
        """The plugin's own moto server (``pytest_cadasta.services.moto_process``),
        started once: it counts each AWS action's requests (``calls``)."""
        if self._counted_moto is None:
            from pytest_cadasta.services.sqs import MotoServer

            self._counted_moto = MotoServer().start()
            self._stack.callback(self._counted_moto.stop)
        return self._counted_moto.endpoint

    def calls(self) -> dict[str, int]:
        """Each AWS action's requests to ``counted_moto()`` so far."""
        self.counted_moto()
        return self._counted_moto.calls()

    def postgres_url(self) -> str:
        """An already running PostgreSQL, started once the way the plugin starts
        its own, for --cadasta-result-db."""
        if self._postgres_url is None:
            from pytest_cadasta.services.postgres import EphemeralPostgres

            postgres = EphemeralPostgres(self.pg_ctl())
            self._stack.callback(postgres.stop)
            server = postgres.start()
            self._postgres_url = f"postgresql://{server.user}@{server.host}:{server.port}/postgres"
        return self._postgres_url

    def _stop_leftover_postgres(self) -> None:
        """Stop (immediate shutdown) any PostgreSQL whose data lives in the lab:
        one a child started and could not stop because it was killed."""
        for pidfile in self.root.rglob("postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pidfile.read_text().splitlines()[0])
                if b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGQUIT)
                    _wait_gone(pid, KILL_GRACE)


def _base_dir() -> str | None:
    """As root, a directory PostgreSQL's unprivileged user can traverse."""
    if os.geteuid() != 0:
        return None
    from pytest_cadasta.services.postgres import reachable_temp_dir

    return reachable_temp_dir()


def _stop(child: subprocess.Popen) -> None:
    """SIGINT to the child's session (pytest tears its fixtures down), then
    SIGKILL; a second Ctrl-C skips the wait. The child is reaped last: until
    then its id cannot name anyone else's process group."""
    if child.returncode is not None:
        return
    for sig, grace in ((signal.SIGINT, INTERRUPT_GRACE), (signal.SIGKILL, KILL_GRACE)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        if _wait_gone(child.pid, grace):
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # stragglers of the same session
    child.wait()


def _wait_gone(pid: int, timeout: float) -> bool:
    """Whether ``pid`` ended (or is a zombie, not yet reaped) within ``timeout``;
    Ctrl-C gives up waiting."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return True
            if state in ("Z", "X"):
                return True
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    return False
