"""Where PostgreSQL comes from: an ephemeral server, or the user's own.

The ephemeral server is a cluster of the run's own (``initdb``, or a copy of
the cached template) whose postmaster is this process's child, signalled only
through a hold on that very process. PostgreSQL refuses to run as root, and
CI and containers often are root: then its programs run as an unprivileged
system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_cadasta.basics.errors import CadastaError, InfrastructureError, NotConfigured, PortTaken
from pytest_cadasta.basics.process_handle import ProcessHandle
from pytest_cadasta.services.pg_watchdog import (
    clean,
    kept_log,
    mark_owner,
    owner_alive,
    pid_file,
    release_shared_memory,
)
from pytest_cadasta.services.pgtemplate import ClusterTemplate

SUPERUSER = "postgres"
#: The start of the name of every run's directory (a cluster, its logs).
WORKDIR_PREFIX = "pytest-cadasta-pg-"
#: How long a watchdog released after a normal stop may take to exit.
WATCHDOG_EXIT = 5.0
#: Safety net: the longest initdb, or a server's start, may take.
START_TIMEOUT = 60.0
#: How often a starting server's status is read.
READY_POLL = 0.01
#: How a server is stopped: fast shutdown; if it lingers, immediate; then SIGKILL
#: (each with the seconds it is given).
STOP_SIGNALS = ((signal.SIGINT, 60.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0))
#: A throwaway cluster need not survive a crash of the machine.
SPEED_OPTIONS = ("-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off")
#: A killed server's dynamic shared memory goes with its directory, not left in
#: /dev/shm for good (its System V segment: ``release_shared_memory``). Files
#: a throwaway server's light load barely touches, wherever TMPDIR lies.
LEAVE_NOTHING_OPTIONS = ("-c", "dynamic_shared_memory_type=mmap")
#: The run reaches its server over TCP only, so the server listens on no
#: Unix-domain socket: one in its directory under a long TMPDIR would pass the
#: 107 bytes a socket's path may take, and the server would not start.
NO_UNIX_SOCKET = ("-c", "unix_socket_directories=")
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
    """A port nothing uses now (it may be taken before PostgreSQL binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def _server_environment() -> dict[str, str]:
    """The environment the server's programs run in: this process's, less what
    would point them elsewhere, and less mirakuru's mark. Every process that
    imports mirakuru (pytest-postgresql's plugin does, in every pytest run on
    the machine) SIGKILLs at exit each process whose ``mirakuru_uuid`` merely
    contains its pid's digits: a server carrying one is killed, without a
    word in its log, when some unrelated process whose pid matches ends."""
    return {name: value for name, value in os.environ.items()
            if name not in ("mirakuru_uuid", "PGDATA", "PGPORT", "PGHOST")}


def _binary(pg_ctl: str, name: str) -> str:
    """PostgreSQL's program ``name`` beside ``pg_ctl`` (or beside what a link
    named pg_ctl points at)."""
    places = list(dict.fromkeys((Path(pg_ctl).parent, Path(os.path.realpath(pg_ctl)).parent)))
    for directory in places:
        candidate = directory / name
        if os.access(candidate, os.X_OK) and candidate.is_file():
            return str(candidate)
    raise NotConfigured(
        f"PostgreSQL's {name} is not beside {pg_ctl} (looked in "
        f"{' and '.join(map(str, places))}); point --cadasta-pg-ctl (ini: cadasta_pg_ctl) "
        "at the pg_ctl of a complete PostgreSQL installation")


@dataclass(frozen=True)
class _RunAs:
    """Who the server's programs run as (None: this process's user), and where:
    ``home`` (pytest's own directory may be closed to that user)."""

    home: Path
    user: pwd.struct_passwd | None

    def popen_kwargs(self) -> dict[str, Any]:
        env = _server_environment()
        kwargs: dict[str, Any] = {"cwd": str(self.home), "env": env,
                                  "stdin": subprocess.DEVNULL}
        if self.user is not None:
            env["HOME"] = str(self.home)
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return kwargs


def _initdb(initdb: str, datadir: Path, run_as: _RunAs, log: Any) -> None:
    """A new cluster in ``datadir``: the superuser trusted (``_require_passwords``
    then narrows that to loopback)."""
    done = subprocess.run([initdb, "-D", str(datadir), f"--username={SUPERUSER}",
                           "--auth=trust", "--no-sync"],
                          stdout=log, stderr=subprocess.STDOUT, timeout=START_TIMEOUT,
                          **run_as.popen_kwargs())
    if done.returncode != 0:
        raise InfrastructureError(f"initdb ({initdb}) failed with status {done.returncode}")


class EphemeralPostgres:
    """A cluster in a temporary directory (copied from the cached template, or
    initdb), its postmaster a child of this process; stop removes it all.

    The postmaster is started directly, not through ``pg_ctl``, held by a
    ``ProcessHandle`` from the moment it exists, and signalled only through
    it: no signal of this run can reach a process that took a dead server's
    pid since, or the group of a ``pg_ctl`` that exited long ago."""

    def __init__(self, pg_ctl: str) -> None:
        self.pg_ctl = pg_ctl
        self.workdir: Path | None = None
        self.server: Server | None = None
        #: The postmaster, while this run holds it.
        self.process: subprocess.Popen | None = None
        self._handle: ProcessHandle | None = None
        self._log: Path | None = None
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
        _become_subreaper()
        postgres, initdb = _binary(self.pg_ctl, "postgres"), _binary(self.pg_ctl, "initdb")
        as_root = os.geteuid() == 0
        user = unprivileged_user() if as_root else None
        base = reachable_temp_dir() if as_root else None
        remove_dead_runs(Path(base or tempfile.gettempdir()))
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base))
        mark_owner(self.workdir)
        self._watchdog = Watchdog(self.workdir)
        home, owner = self.workdir, None
        if user is not None:
            self.workdir.chmod(0o711)  # the unprivileged user must reach run/ inside
            home = self.workdir / "run"
            home.mkdir()
            owner = (user.pw_uid, user.pw_gid)
            os.chown(home, *owner)
        run_as = _RunAs(home, user)
        datadir = home / "data"
        port = free_port()
        template = self._template()
        try:
            self._log = home / "postgresql.log"
            with self._log.open("ab") as log:
                os.link(self._log, kept_log(self.workdir))
                self.from_template = template is not None and template.copy_to(datadir, owner)
                if not self.from_template:
                    _initdb(initdb, datadir, run_as, log)
                    _require_passwords(datadir)
                    if template is not None:
                        template.store(datadir)
                self._launch(postgres, datadir, port, run_as, log)
            _wait_until_ready(self, datadir)
        except BaseException as exc:
            log_tail = self._log_tail()
            self.stop()
            if "could not bind" in log_tail or "already in use" in log_tail:
                raise PortTaken(str(port)) from None
            if self.from_template and template is not None and isinstance(exc, Exception):
                template.discard()  # a bad copy: start again, from initdb
                return self._start_once()
            if isinstance(exc, Exception):
                raise InfrastructureError(
                    f"the ephemeral PostgreSQL ({postgres}) did not start: "
                    f"{exc}\n{log_tail}") from None
            raise
        self.server = Server("127.0.0.1", port, SUPERUSER, None, "postgres")
        return self.server

    def _launch(self, postgres: str, datadir: Path, port: int, run_as: _RunAs,
                log: Any) -> None:
        """The postmaster, a child of this process in a session of its own (a
        Ctrl-C is for the run, which stops it), held from the start."""
        self.process = subprocess.Popen(
            [postgres, "-D", str(datadir), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1",
             *NO_UNIX_SOCKET,
             "-c", "logging_collector=off", *SPEED_OPTIONS, *LEAVE_NOTHING_OPTIONS],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            **run_as.popen_kwargs())
        # Unreaped, the child keeps its pid, whatever happens next: held now.
        self._handle = ProcessHandle.open(self.process.pid)

    def _template(self) -> ClusterTemplate | None:
        try:
            return ClusterTemplate(self.pg_ctl, SUPERUSER)
        except (OSError, subprocess.SubprocessError):
            return None

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = "" if self._log is None else self._log.read_text(errors="replace")
        except OSError:
            return ""
        return "PostgreSQL log:\n" + "\n".join(text.splitlines()[-lines:]) if text else ""

    def ended(self) -> str | None:
        """How the server ended, if it did while this run held it (None while it
        runs), with the last lines of its log: PostgreSQL logs each kind of stop
        it is asked for, and nothing at all when it is SIGKILLed."""
        process = self.process
        if process is None or process.poll() is None:
            return None
        code = process.returncode
        how = (f"was killed by {signal.Signals(-code).name}" if code < 0
               else f"exited with status {code}")
        return f"its PostgreSQL (pid {process.pid}) {how}. {self._log_tail(5)}".rstrip()

    def stop(self) -> None:
        """Stop the server (fast shutdown; immediate, then SIGKILL, if it
        lingers), end what a crashed one left, remove its files."""
        process, self.process = self.process, None
        handle, self._handle = self._handle, None
        try:
            if handle is not None:
                handle.end(STOP_SIGNALS)
                handle.close()
            if process is not None:
                try:
                    process.wait(STOP_SIGNALS[0][1])
                except subprocess.TimeoutExpired:  # held by no handle, and lingering
                    process.kill()
                    process.wait()
                if process.returncode != 0 and self.workdir is not None:
                    _collect_orphans(self.workdir)
                    release_shared_memory(self.workdir)  # a killed server leaves it
        finally:
            if self.workdir is not None:
                kept_log(self.workdir).unlink(missing_ok=True)
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None
            self._log = None
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
                [sys.executable, "-m", "pytest_cadasta.services.pg_watchdog", str(lifeline),
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


def _collect_orphans(workdir: Path) -> None:
    """End and collect the processes a dead postmaster left: its children
    (background processes, backends) became this subreaper's, and nobody else
    would collect them ('[postgres] <defunct>'). Only children of this process
    (their pids stay theirs until collected) that work under ``workdir``, or
    are already dead."""
    if not sys.platform.startswith("linux"):
        return
    for entry in os.listdir("/proc"):
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) != os.getpid() or name != "postgres":
            continue
        if state != "Z":
            try:
                if not Path(os.readlink(f"/proc/{entry}/cwd")).is_relative_to(workdir):
                    continue
            except OSError:
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

    def ended(self) -> str | None:
        return self._postgres.ended()

    def stop(self) -> None:
        self._thread.join()
        self._postgres.stop()


def _wait_until_ready(postgres: EphemeralPostgres, datadir: Path) -> None:
    """Return once the server accepts sessions: its ``postmaster.pid`` says
    "ready", as ``pg_ctl start -w`` reads it (PostgreSQL 10 and later). A
    server that exits meanwhile is an error at once; the timeout is a safety
    net. (Nothing is imported here: this runs in the starting thread.)"""
    deadline = time.monotonic() + START_TIMEOUT
    while _status(datadir) != "ready":
        if postgres.process is None or postgres.process.poll() is not None:
            raise InfrastructureError("the server exited as it started")
        if time.monotonic() >= deadline:
            raise InfrastructureError(f"not ready within {START_TIMEOUT:.0f} s")
        if postgres._handle is not None:
            postgres._handle.wait(READY_POLL)  # wakes at once if the server exits
        else:
            time.sleep(READY_POLL)


def _status(datadir: Path) -> str | None:
    lines = pid_file(datadir)
    return lines[7].strip() if len(lines) > 7 else None


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
