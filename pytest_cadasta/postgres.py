"""Where PostgreSQL comes from: an ephemeral server, or the user's own.

The ephemeral server is pytest-postgresql's executor around ``pg_ctl``.
PostgreSQL refuses to run as root, and CI and containers often are root: then
the server runs as an unprivileged system user, through a small wrapper.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_cadasta.errors import CadastaError, InfrastructureError, NotConfigured, PortTaken
from pytest_cadasta.pg_watchdog import clean, mark_owner, owner_alive
from pytest_cadasta.pgtemplate import ClusterTemplate

SUPERUSER = "postgres"
#: The start of the name of every run's directory (a cluster, its socket, logs).
WORKDIR_PREFIX = "pytest-cadasta-pg-"
#: How long a watchdog released after a normal stop may take to exit.
WATCHDOG_EXIT = 5.0
UNPRIVILEGED_USERS = ("postgres", "nobody")
PG_CTL_GLOBS = ("/usr/lib/postgresql/*/bin/pg_ctl", "/usr/local/pgsql/bin/pg_ctl",
                "/usr/pgsql-*/bin/pg_ctl", "/opt/homebrew/bin/pg_ctl")


@dataclass(frozen=True)
class Server:
    """Where to reach a PostgreSQL server as a role that may create databases."""

    host: str
    port: int
    user: str
    password: str | None
    maintenance_db: str


def find_pg_ctl(configured: str | None, label: str = "--cadasta-pg-ctl") -> str:
    """The pg_ctl to use: the setting (spelled ``label``), else PATH, else the
    usual install places."""
    if configured is not None:
        if os.access(configured, os.X_OK) and os.path.isfile(configured):
            return configured
        raise NotConfigured(f"{label}={configured!r}: not an executable file")
    found = shutil.which("pg_ctl")
    if found:
        return found
    candidates = []
    for pattern in PG_CTL_GLOBS:
        candidates += glob.glob(pattern)
    if candidates:
        return max(candidates, key=_version_key)
    raise NotConfigured(
        "pytest-cadasta needs PostgreSQL for the result database, but pg_ctl was "
        f"not found on PATH nor in {', '.join(PG_CTL_GLOBS)}. Install PostgreSQL "
        "(e.g. apt-get install postgresql), point at it with "
        "--cadasta-pg-ctl=/path/to/pg_ctl (ini: cadasta_pg_ctl), or use a server "
        "you already run with --cadasta-result-db=postgresql://user:pw@host:5432/postgres")


def _version_key(path: str) -> tuple:
    parts = [p for p in Path(path).parts if p.replace(".", "").isdigit()]
    return tuple(int(x) for x in parts[0].split(".")) if parts else (0,)


def free_port() -> int:
    """A port nothing listens on now (it may be taken before PostgreSQL binds it)."""
    import port_for

    return port_for.select_random()


def unprivileged_user() -> pwd.struct_passwd:
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise InfrastructureError(
        "pytest runs as root and PostgreSQL refuses to; none of the users "
        f"{', '.join(UNPRIVILEGED_USERS)} exists to run it as. Run pytest as another "
        "user, or use --cadasta-result-db=postgresql://user:pw@host:5432/postgres")


def reachable_temp_dir() -> str:
    """A temporary directory every user can traverse to (pytest's own, and a
    TMPDIR under a 0700 home, are not), for the unprivileged server."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        path = Path(candidate).resolve()
        if path.is_dir() and all(os.stat(p).st_mode & stat.S_IXOTH
                                 for p in (path, *path.parents)):
            return str(path)
    raise InfrastructureError(
        "pytest runs as root and PostgreSQL must run as an unprivileged user, but "
        "no temporary directory is reachable by other users; set TMPDIR to one")


def files_elsewhere() -> str | None:
    """Where the ephemeral server's files go when not under TMPDIR (a TMPDIR the
    unprivileged user it runs as cannot reach), said for the header; None when
    they go under TMPDIR."""
    if os.geteuid() != 0 or not os.environ.get("TMPDIR"):
        return None
    wanted = str(Path(tempfile.gettempdir()).resolve())
    try:
        chosen = reachable_temp_dir()
    except InfrastructureError:
        return None  # said when it starts
    if chosen == wanted:
        return None
    return (f"the ephemeral PostgreSQL's files go under {chosen}: TMPDIR ({wanted}) is "
            "not reachable by the unprivileged user it runs as")


def _wrap_pg_ctl(pg_ctl: str, workdir: Path, home: Path,
                 user: pwd.struct_passwd) -> str:
    """A pg_ctl that drops root for ``user`` before running the real one, in
    ``home`` (pytest's directory may be closed to that user: PostgreSQL's
    programs then complain, on the run's stderr, that they cannot return to
    it)."""
    wrapper = workdir / "pg_ctl"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "os.setgroups([])\n"
        f"os.setgid({user.pw_gid})\n"
        f"os.setuid({user.pw_uid})\n"
        f"os.environ['HOME'] = {str(home)!r}\n"
        f"os.chdir({str(home)!r})\n"
        f"os.execv({pg_ctl!r}, [{pg_ctl!r}] + sys.argv[1:])\n")
    wrapper.chmod(stat.S_IRWXU)
    return str(wrapper)


def _executor_class() -> type:
    from pytest_postgresql.executors import PostgreSQLExecutor

    class Executor(PostgreSQLExecutor):
        """pytest-postgresql's executor, which also starts a cluster copied
        from the template (it would wipe it and run initdb again)."""

        def init_directory(self) -> None:
            if (Path(self.datadir) / "PG_VERSION").is_file():
                return
            super().init_directory()

    return Executor


class EphemeralPostgres:
    """A cluster in a temporary directory (copied from the cached template, or
    initdb), started with pg_ctl; stop removes it all."""

    def __init__(self, pg_ctl: str) -> None:
        self.pg_ctl = pg_ctl
        self.workdir: Path | None = None
        self.executor = None
        self.server: Server | None = None
        self._watchdog: Watchdog | None = None
        #: Whether the cluster was copied from the cached template.
        self.from_template = False

    def start(self, attempts: int = 3) -> Server:
        """Start the server; a port taken between choosing and binding it costs
        another try on another port."""
        taken = []
        for _attempt in range(attempts):
            try:
                return self._start_once()
            except PortTaken as exc:
                taken.append(str(exc))
        raise PortTaken(
            f"the ephemeral PostgreSQL could not bind a port: each one chosen free was "
            f"taken by another process before it could bind it ({', '.join(taken)}); "
            "run again, or use a server you run with "
            "--cadasta-result-db=postgresql://user:pw@host:5432/postgres")

    def _start_once(self) -> Server:
        from mirakuru.exceptions import AlreadyRunning

        _become_subreaper()

        as_root = os.geteuid() == 0
        user = unprivileged_user() if as_root else None
        base = reachable_temp_dir() if as_root else None
        remove_dead_runs(Path(base or tempfile.gettempdir()))
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base))
        mark_owner(self.workdir)
        self._watchdog = Watchdog(self.workdir)
        datadir = self.workdir / "data"
        executable = self.pg_ctl
        owner = None
        if user is not None:
            self.workdir.chmod(0o711)  # the unprivileged user must reach run/ inside
            run_dir = self.workdir / "run"
            run_dir.mkdir()
            owner = (user.pw_uid, user.pw_gid)
            os.chown(run_dir, *owner)
            executable = _wrap_pg_ctl(self.pg_ctl, self.workdir, run_dir, user)
            datadir = run_dir / "data"
            socketdir = logdir = run_dir
        else:
            socketdir = logdir = self.workdir
        port = free_port()
        self.executor = _executor_class()(
            executable=executable, host="127.0.0.1", port=port,
            datadir=str(datadir), unixsocketdir=str(socketdir),
            logfile=str(logdir / "postgresql.log"), startparams="-w",
            dbname="postgres", user=SUPERUSER, sleep=0.01,
            postgres_options="-c fsync=off -c synchronous_commit=off "
                             "-c full_page_writes=off")
        template = self._template()
        try:
            self.from_template = template is not None and template.copy_to(datadir, owner)
            if not self.from_template:
                self.executor.init_directory()
                _require_passwords(datadir)
                if template is not None:
                    template.store(datadir)
            self.executor.start()  # returns once the port is open...
            _wait_until_accepting(port)  # ...not once PostgreSQL is ready
        except BaseException as exc:
            log = self._log_tail()
            self.stop()
            if (isinstance(exc, AlreadyRunning)  # mirakuru: something answers there
                    or "could not bind" in log or "already in use" in log):
                raise PortTaken(str(port)) from None
            if self.from_template and template is not None and isinstance(exc, Exception):
                template.discard()  # a bad copy: start again, from initdb
                return self._start_once()
            if isinstance(exc, Exception):
                raise InfrastructureError(
                    f"the ephemeral PostgreSQL ({self.pg_ctl}) did not start: "
                    f"{exc}\n{log}") from None
            raise
        self.server = Server("127.0.0.1", port, SUPERUSER, None, "postgres")
        return self.server

    def _template(self) -> ClusterTemplate | None:
        try:
            return ClusterTemplate(self.pg_ctl, SUPERUSER)
        except (OSError, subprocess.SubprocessError):
            return None

    def _log_tail(self) -> str:
        if self.workdir is None:
            return ""
        logs = list(self.workdir.rglob("postgresql.log"))
        if not logs:
            return ""
        return "PostgreSQL log:\n" + "\n".join(
            logs[0].read_text(errors="replace").splitlines()[-15:])

    def stop(self) -> None:
        executor, self.executor = self.executor, None
        try:
            postmaster = None if executor is None else _postmaster_pid(Path(executor.datadir))
            if postmaster is not None and _died(postmaster):
                # Killed or crashed: 'pg_ctl stop' would wait a minute for it;
                # what it left running is this process's to end.
                executor.kill()
                _collect_orphans()
            elif executor is not None and executor.running():
                # 'pg_ctl start -w' notices the server is up a tenth of a second
                # after the harness does; stopped before, it says it failed.
                starter = getattr(executor, "process", None)
                if starter is not None:
                    try:
                        starter.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
                executor.stop()
                if postmaster is not None:
                    _reap(postmaster)
        finally:
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                watchdog.release()


class Watchdog:
    """A process of its own (``pg_watchdog``) that stops the server and removes
    ``workdir`` when this run dies, however it dies: it holds the read end of
    a pipe whose write end only this process holds, and wakes at end-of-file.
    ``release()`` after a normal stop: it finds nothing left, and exits."""

    def __init__(self, workdir: Path) -> None:
        lifeline, self._lifeline = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pytest_cadasta.pg_watchdog", str(lifeline),
                 str(workdir)],
                pass_fds=(lifeline,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                cwd="/", start_new_session=True)  # a Ctrl-C is for the run, not for it
        except BaseException:
            os.close(self._lifeline)
            raise
        finally:
            os.close(lifeline)

    def release(self) -> None:
        os.close(self._lifeline)
        try:
            self.process.wait(WATCHDOG_EXIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def remove_dead_runs(base: Path) -> None:
    """Stop the servers, and remove the directories, of runs under ``base`` that
    died without their watchdog cleaning up (killed together, say): only those
    whose owner (pid and start time) no longer runs, never a live run's."""
    for workdir in base.glob(f"{WORKDIR_PREFIX}*"):
        if workdir.is_dir() and not owner_alive(workdir):
            clean(workdir, settle=0)


def _become_subreaper() -> None:
    """pg_ctl daemonises the postmaster: once pg_ctl exits, the postmaster's
    parent is the nearest subreaper, else PID 1, which in many containers never
    reaps, leaving a '[postgres] <defunct>' behind every run. Making this
    process a subreaper (Linux) makes it the parent that reaps it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_child_subreaper = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _postmaster_pid(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _reap(pid: int) -> None:
    """Collect the stopped postmaster if it is this process's child ('pg_ctl stop'
    has waited for it to go, so this returns at once)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # not ours (no subreaper here): nothing to reap


def _died(postmaster: int) -> bool:
    """Whether the postmaster has died without being stopped; collected now if
    it is this process's child (a zombie, which 'pg_ctl' would take for a
    running server)."""
    try:
        pid, _status = os.waitpid(postmaster, os.WNOHANG)
    except ChildProcessError:  # not ours (no subreaper here): is it there at all?
        try:
            os.kill(postmaster, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False
    return pid == postmaster


def _collect_orphans() -> None:
    """End and collect the processes a dead postmaster left: its children
    (background processes, backends) became this subreaper's, and nobody else
    would collect them ('[postgres] <defunct>'). A live postmaster keeps its
    command line, its children keep theirs: both are left alone."""
    if not sys.platform.startswith("linux"):
        return
    for entry in os.listdir("/proc"):
        try:
            stat = Path("/proc", entry, "stat").read_text()
            title = Path("/proc", entry, "cmdline").read_bytes()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if (int(ppid) != os.getpid() or name != "postgres"
                or (state != "Z" and not title.startswith(b"postgres: "))):
            continue
        try:
            os.kill(int(entry), signal.SIGKILL)
            os.waitpid(int(entry), 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class StartingPostgres:
    """An ``EphemeralPostgres`` starting in a thread of its own, so pytest goes
    on (collecting, importing) while the server starts; ``server()`` waits
    for it."""

    def __init__(self, pg_ctl: str) -> None:
        self._postgres = EphemeralPostgres(pg_ctl)
        self._server: Server | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="cadasta-postgres",
                                        daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self._server = self._postgres.start()
        except BaseException as exc:  # handed to server()
            self._error = exc

    def server(self) -> Server:
        self._thread.join()
        if isinstance(self._error, CadastaError):
            raise self._error
        if self._error is not None:
            raise InfrastructureError(
                f"the ephemeral PostgreSQL did not start: {self._error}") from None
        assert self._server is not None
        return self._server

    def stop(self) -> None:
        self._thread.join()
        self._postgres.stop()


def _wait_until_accepting(port: int, timeout: float = 30.0) -> None:
    """Return once the server on ``port`` accepts a session (not merely a TCP
    connection: it refuses sessions while it starts up)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres",
                            connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _require_passwords(datadir: Path) -> None:
    """Trust only the superuser on loopback; every other role needs its password,
    so the worker role is really checked (initdb ran with --auth=trust)."""
    hba = datadir / "pg_hba.conf"
    hba.write_text(
        f"local all {SUPERUSER} trust\n"
        f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "local all all scram-sha-256\n")


def server_from_url(url: str) -> Server:
    """A ``Server`` from --cadasta-result-db's URL."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Server(parsed.host or "localhost", parsed.port or 5432,
                  parsed.username or os.environ.get("PGUSER", "postgres"),
                  parsed.password, parsed.database or "postgres")


#: libpq's preamble before what the server (or the network) said.
_LIBPQ_PREAMBLE = re.compile(r"^(connection failed: )?(connection to server (at|on) .*? failed: )?"
                             r"(FATAL:\s+)?")


def why_unusable(exc: BaseException, server: Server, label: str | None) -> str:
    """Why ``server`` could not hold the result database, in one line, password
    masked; with ``label`` (the user's own server, given there), what to change."""
    import psycopg

    lines = str(exc).strip().splitlines()
    detail = _LIBPQ_PREAMBLE.sub("", lines[0]) if lines else type(exc).__name__
    if server.password:
        detail = detail.replace(server.password, "**")
    if not isinstance(exc, psycopg.Error):
        detail = f"{type(exc).__name__}: {detail}"
    if label is None:
        return detail
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        hint = (f"the role needs CREATEDB and CREATEROLE (as a superuser: ALTER ROLE "
                f"{server.user} CREATEDB CREATEROLE), or name a role that has them in {label}")
    elif not isinstance(exc, psycopg.OperationalError):
        return detail
    elif "password" in detail or "role" in detail:
        hint = f"check the user and password in {label}"
    elif "database" in detail and "does not exist" in detail:
        hint = (f"name a database that exists in {label} (e.g. postgres): the throwaway "
                "database is made from there")
    else:
        hint = (f"is PostgreSQL running there, accepting TCP/IP connections? Check the host "
                f"and port in {label} (or leave it out: the plugin starts a PostgreSQL of "
                "its own)")
    return f"{detail}; {hint}"
