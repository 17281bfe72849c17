"""Outer fixtures: one PostgreSQL for every inner run, and a runner for them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mermaid_browser import browser  # noqa: F401 (the tests that render Mermaid)

from pytest_cadasta.services.postgres import (
    WORKDIR_PREFIX,
    EphemeralPostgres,
    find_pg_ctl,
    remove_dead_runs,
)

collect_ignore = ["examples"]

# Started in the background by a shell without job control (nohup, some CI
# runners), a process inherits SIGINT ignored, and passes that on to every
# inner run: the tests that interrupt one need Ctrl-C as a terminal delivers
# it. (Handled here, SIGINT reaches each child as its default again.)
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Hypothesis's pytest plugin imports Hypothesis as every pytest process ends
# (about 0.8 s): the inner runs, a couple of hundred processes, need none of it.
os.environ["PYTEST_ADDOPTS"] = " ".join(
    filter(None, [os.environ.get("PYTEST_ADDOPTS"), "-p no:hypothesispytest"]))


#: Where the tests' temporary files go when TMPDIR is not set: a directory of
#: this session's own on a memory-backed filesystem with room to spare. The
#: tests start hundreds of PostgreSQL servers and databases, each a thousand
#: files made and removed; on a disk's filesystem that churn alone cost about a
#: sixth of the suite's CPU (the README's test command, 2 cores: 204 s on /tmp's
#: ext4, 177 s here).
MEMORY_FS, MEMORY_ROOM = Path("/dev/shm"), 4 << 30
SESSION_TMP_PREFIX, SESSION_LOCK = "pytest-cadasta-tests-", "session.lock"
_session_tmp = pytest.StashKey[tuple[str, int]]()


def _memory_backed() -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().split("\n")
        room = os.statvfs(MEMORY_FS)
    except OSError:
        return False
    tmpfs = any(line.split()[1:3] == [str(MEMORY_FS), "tmpfs"]
                for line in mounts if len(line.split()) > 2)
    return (tmpfs and room.f_bavail * room.f_frsize >= MEMORY_ROOM
            and os.access(MEMORY_FS, os.W_OK | os.X_OK))


def _remove_dead_sessions_tmp():
    """What a session killed before it could clean up left (memory, on a
    tmpfs): each live session holds a lock on its directory's lock file (a
    lock, not a pid, tells across pid namespaces sharing /dev/shm). The
    servers its runs left are stopped first, their shared memory released."""
    for path in MEMORY_FS.glob(f"{SESSION_TMP_PREFIX}*"):
        try:
            lock = os.open(path / SESSION_LOCK, os.O_RDWR)
        except OSError:
            continue  # being made, or not a session's
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            continue  # its session runs
        try:
            for base in {found.parent for found in path.rglob(f"{WORKDIR_PREFIX}*")}:
                remove_dead_runs(base)
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(lock)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """The session's TMPDIR (see MEMORY_FS): chosen by the main process only,
    before pytest-xdist starts its workers, which inherit it, as every inner
    run, PostgreSQL and pytest's own temporary paths do. A TMPDIR set by the
    caller is kept (set it to keep the files of a failed test)."""
    if hasattr(config, "workerinput") or os.environ.get("TMPDIR") or not _memory_backed():
        return
    _remove_dead_sessions_tmp()
    path = tempfile.mkdtemp(prefix=SESSION_TMP_PREFIX, dir=MEMORY_FS)
    lock = os.open(Path(path, SESSION_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # held until the session ends, or dies
    os.chmod(path, 0o755)  # the unprivileged PostgreSQL must reach its files
    os.environ["TMPDIR"] = path
    tempfile.tempdir = None
    config.stash[_session_tmp] = (path, lock)


def pytest_unconfigure(config):
    path, lock = config.stash.get(_session_tmp, (None, None))
    if path is not None:
        os.environ.pop("TMPDIR", None)
        tempfile.tempdir = None
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)


class WarmPython:
    """The client of ``tests/forkserver.py``: runs ``python -m pytest`` for
    pytester in a process forked from an interpreter that has imported the
    heavy libraries once (each run is still a process of its own). A server
    that misbehaves (no answer, an exception or a signal mid-run) is stopped
    and replaced: no run ever reads another's answer."""

    #: What Python reads only as it starts: a run whose environment sets one of
    #: them otherwise than the server's starts an interpreter of its own.
    STARTUP_VARIABLES = ("PYTHONWARNINGS", "PYTHONHASHSEED", "PYTHONIOENCODING",
                         "PYTHONUNBUFFERED", "PYTHONDEVMODE", "PYTHONFAULTHANDLER",
                         "PYTHONTRACEMALLOC", "PYTHONUTF8", "PYTHONSAFEPATH",
                         "PYTHONNOUSERSITE", "PYTHONOPTIMIZE", "PYTHONHOME",
                         "PYTHONINSPECT", "LANG", "LC_ALL", "LC_CTYPE", "TZ")

    def __init__(self):
        self.server = None
        self._requests = 0

    def _start(self):
        self._log = tempfile.TemporaryFile()
        self._started_env = {name: os.environ.get(name) for name in self.STARTUP_VARIABLES}
        self.server = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("forkserver.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        self._buffer = b""
        self._answer(None, "ready", HANG)

    def _said(self):
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def _answer(self, request, key, timeout):
        """The server's answer ``key`` to ``request`` (an older request's
        answers are skipped); None after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.server.stdout, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    answer = json.loads(line)
                    if key in answer and answer.get("request") == request:
                        return answer[key]
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(self.server.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(f"the fork server ended ({self.server.wait()}): "
                                       f"{self._said()}")
                self._buffer += chunk

    def runpytest(self, pytester, *args, timeout=None):
        """What ``pytester.runpytest_subprocess(*args, timeout=...)`` returns;
        None if this run must start an interpreter of its own (its environment
        sets what Python reads only as it starts)."""
        __tracebackhide__ = True
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(),
                                                          env.get("PYTHONPATH", "")]))
        if self.server is None:
            self._start()
        if any(env.get(name) != value for name, value in self._started_env.items()):
            return None
        basetemp = tempfile.mkdtemp(dir=pytester.path, prefix="runpytest-")
        args = [f"--basetemp={basetemp}", *(f"-p{plugin}" for plugin in pytester.plugins),
                *map(os.fspath, args)]
        out, err = pytester.path / "stdout", pytester.path / "stderr"
        out.write_text("")
        err.write_text("")
        print("running (forked): python -m pytest", *args)
        print("     in:", Path.cwd())
        started = time.monotonic()
        self._requests += 1
        request = self._requests
        pid = None
        try:
            self.server.stdin.write(json.dumps({
                "request": request, "args": args, "cwd": os.getcwd(), "env": env,
                "stdout": str(out), "stderr": str(err)}).encode() + b"\n")
            self.server.stdin.flush()
            pid = self._answer(request, "pid", HANG)
            if pid is None:
                raise RuntimeError(f"the fork server did not fork in {HANG:.0f} s: "
                                   f"{self._said()}")
            status = self._answer(request, "status", timeout)
            if status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if self._answer(request, "status", HANG) is None:
                    raise RuntimeError("the fork server did not collect a killed run")
                raise pytester.TimeoutExpired(
                    f"{timeout} second timeout expired running: {args}")
        except pytester.TimeoutExpired:
            raise
        except BaseException:
            self._discard(pid)
            raise
        outlines = out.read_text(encoding="utf8", errors="replace").splitlines()
        errlines = err.read_text(encoding="utf8", errors="replace").splitlines()
        pytester._dump_lines(outlines, sys.stdout)
        pytester._dump_lines(errlines, sys.stderr)
        return pytest.RunResult(status, outlines, errlines, time.monotonic() - started)

    def _discard(self, pid):
        """Stop the server (and its run ``pid``, if there is one): the next run
        starts another."""
        server, self.server = self.server, None
        if server is None:
            return
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.kill()
        server.wait()
        server.stdin.close()
        server.stdout.close()
        self._log.close()

    def close(self):
        server = self.server
        if server is None:
            return
        server.stdin.close()
        try:
            server.wait(HANG)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()
        self._log.close()
        self.server = None


@pytest.fixture(scope="session")
def warm_python():
    """One fork server per outer session (per xdist worker), started with the
    first inner run."""
    server = WarmPython()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _inner_runs_forked(request):
    """Every ``pytester.runpytest_subprocess`` of a test runs forked from the
    warm Python, but in a test marked ``fresh_python`` (it judges what a run
    imports, or when: there, each run starts its interpreter as users do)."""
    if "pytester" not in request.fixturenames or request.node.get_closest_marker(
            "fresh_python"):
        yield
        return
    pytester = request.getfixturevalue("pytester")
    warm = request.getfixturevalue("warm_python")
    fresh = pytester.runpytest_subprocess

    def runpytest_subprocess(*args, timeout=None):
        __tracebackhide__ = True
        result = warm.runpytest(pytester, *args, timeout=timeout)
        return fresh(*args, timeout=timeout) if result is None else result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pytester, "runpytest_subprocess", runpytest_subprocess)
        yield


@pytest.fixture(scope="session")
def shared_pg_url():
    """One ephemeral PostgreSQL for the whole outer session; inner runs create
    and drop their own throwaway databases on it (no initdb per inner run)."""
    server = EphemeralPostgres(find_pg_ctl(None))
    info = server.start()
    try:
        yield f"postgresql://{info.user}@{info.host}:{info.port}/{info.maintenance_db}"
    finally:
        ended = server.ended()
        server.stop()
    # Every inner run after it met "Connection refused": say how it ended.
    assert ended is None, f"the shared PostgreSQL went away during the session: {ended}"


@pytest.fixture(scope="session")
def shared_moto():
    """One moto server for the inner runs of this session, one after another:
    each resets it as it starts (no run pays for starting moto)."""
    from pytest_cadasta.services.sqs import MotoServer

    server = MotoServer().start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def run_inner(pytester, shared_pg_url, shared_moto):
    """Run pytest as a user would, in a subprocess, on files copied from
    tests/examples; the result database goes on the shared server unless
    ``own_db=True``, SQS on the shared moto server unless ``own_moto=True``
    (by default, with ``own_db``: a run that needs a server of its own needs
    both; and a run with xdist, whose workers would each reset it)."""

    def run(*args, examples=(), own_db=False, own_moto=None, env=None, timeout=240):
        for example in examples:
            pytester.copy_example(example)
        if not own_db:
            args = (f"--cadasta-result-db={shared_pg_url}", *args)
        if not (own_db if own_moto is None else own_moto) and "-n" not in args:
            args = (f"--cadasta-moto-endpoint={shared_moto}", *args)
        with pytest.MonkeyPatch.context() as patch:
            # Run in GitHub Actions, an inner run would add to the job's summary.
            patch.delenv("GITHUB_STEP_SUMMARY", raising=False)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                                 timeout=timeout)

    return run


@pytest.fixture
def open_tmpdir():
    """A TMPDIR every user can reach (the unprivileged PostgreSQL must)."""
    path = tempfile.mkdtemp(prefix="cadasta-test-tmp-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _children():
    """pid -> 'state name' of this process's children. The outer session is a
    subreaper (it started PostgreSQL): whatever an inner run leaves running, or
    dead and unreaped, ends up here."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
        state, ppid = rest.split()[:2]
        if int(ppid) == os.getpid():
            found[int(entry)] = f"{state} {name}"
    return found


@pytest.fixture
def leftovers(open_tmpdir, shared_pg_url, shared_moto, warm_python):
    """What an inner run given ``TMPDIR=open_tmpdir`` left behind, as a dict,
    empty when it left nothing: files in its TMPDIR, processes naming that
    directory, and processes reparented to this one, alive or zombies (the
    shared PostgreSQL made this session a subreaper: an inner run's orphans,
    '[postgres] <defunct>' included, come here, not to PID 1). The session's
    own fork server, started with its first inner run, is no leftover."""
    children = set(_children())

    def find():
        processes = subprocess.run(["pgrep", "-af", open_tmpdir], capture_output=True,
                                   text=True).stdout.strip()
        ours = children | ({warm_python.server.pid} if warm_python.server else set())
        found = {"temp files": sorted(os.listdir(open_tmpdir)),
                 "processes using them": processes,
                 "children left": {pid: what for pid, what in _children().items()
                                   if pid not in ours}}
        return {what: which for what, which in found.items() if which}

    return find


#: A safety net against a hang only: what a run leaves is waited for as the
#: event it is (nothing left), however busy the machine.
HANG = 120.0


def _wait_for(condition, what, timeout=HANG):
    """Until ``condition()`` holds (the event); ``timeout`` only against a hang.
    ``what`` says what went wrong (called then, if it is a callable)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"{said} after {timeout:.0f} s (the safety net against a hang)")
        time.sleep(0.05)


def _reap_zombies():
    """Collect the run's processes that died and were handed to this session
    (a subreaper: it started PostgreSQL) as init would collect them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture
def left_nothing(leftovers):
    """Wait until the inner runs left nothing (``leftovers``), the processes
    they left dead collected as init would; fail saying what is left."""

    def wait():
        def nothing_left():
            _reap_zombies()
            return leftovers() == {}

        _wait_for(nothing_left, lambda: f"something was left: {leftovers()}")

    return wait


@pytest.fixture
def wait_for():
    """``wait_for(condition, what)``: until ``condition()`` holds, failing with
    ``what`` only after the hang net (``HANG``)."""
    return _wait_for
