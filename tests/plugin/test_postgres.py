"""The ephemeral PostgreSQL: it starts (as root too, under any TMPDIR), survives
a taken port, and leaves nothing behind however it ends."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from pytest_cadasta.basics.errors import PortTaken
from pytest_cadasta.services import pg_watchdog, postgres


@pytest.fixture
def squatters():
    """Ports taken on loopback: listening (something answers there), or only
    bound (PostgreSQL's own bind fails)."""
    sockets = []

    def take(listen):
        squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sockets.append(squatter)
        squatter.bind(("127.0.0.1", 0))
        if listen:
            squatter.listen()
        return squatter.getsockname()[1]

    yield take
    for squatter in sockets:
        squatter.close()


@pytest.mark.parametrize("listen", [True, False], ids=["listening", "bound"])
def test_a_taken_port_costs_a_retry_not_the_run(monkeypatch, squatters, listen):
    taken = squatters(listen)
    ports = iter([taken, postgres.free_port()])
    monkeypatch.setattr(postgres, "free_port", lambda: next(ports))
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        info = server.start()
        assert info.port != taken
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        workdir = server.workdir
    finally:
        server.stop()
    assert not workdir.exists()


def test_a_long_tmpdir_is_no_obstacle(monkeypatch, open_tmpdir):
    """A Unix-domain socket's path may take 107 bytes; the server's directory
    under this TMPDIR is longer than that, and the server starts."""
    deep = Path(open_tmpdir, "a-temporary-directory-of-a-long-name" * 3)
    deep.mkdir(mode=0o755)
    assert len(str(deep)) > 107
    monkeypatch.setattr(postgres.tempfile, "tempdir", str(deep))
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        info = server.start()
        assert str(server.workdir).startswith(str(deep))
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert os.listdir(deep) == []


def _segments():
    """The ids of the System V shared memory segments."""
    rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {int(row.split()[1]) for row in rows}


@pytest.fixture
def killed_server():
    """A server SIGKILLed as it ran (the OOM killer, say), and the id of the
    System V segment it named; stopped after the test."""
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        server.start()
        (pidfile,) = server.workdir.glob("**/postmaster.pid")
        segment = int(pidfile.read_text().split("\n")[6].split()[1])
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(60)
        yield server, segment
    finally:
        server.stop()


@pytest.mark.skipif(not Path("/proc/sysvipc/shm").exists(), reason="Linux's /proc/sysvipc")
def test_a_killed_server_leaves_no_shared_memory_behind(killed_server):
    """A postmaster SIGKILLed never removes its shared memory; the run does,
    as it removes the server's directory."""
    server, segment = killed_server
    assert segment in _segments()  # the postmaster could not remove it
    (dynamic,) = server.workdir.glob("**/pg_dynshmem")
    assert os.listdir(dynamic)  # its dynamic shared memory: there, not in /dev/shm
    server.stop()
    assert segment not in _segments()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv")
                    or not Path("/proc/sysvipc/shm").exists(),
                    reason="root, util-linux's setpriv and Linux's /proc/sysvipc")
def test_root_without_cap_sys_admin_still_removes_a_killed_servers_segment(killed_server):
    """As a container's root, which may not remove the segment of PostgreSQL's
    unprivileged user: the segment's owner removes it."""
    server, segment = killed_server
    cleaning = ("import sys; from pathlib import Path; from pytest_cadasta.services."
                "pg_watchdog import release_shared_memory as r; r(Path(sys.argv[1]))")
    subprocess.run(["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin",
                    sys.executable, "-c", cleaning, str(server.workdir)],
                   check=True, timeout=60)
    assert segment not in _segments()


@pytest.mark.skipif(not Path("/proc/sysvipc/shm").exists(), reason="Linux's /proc/sysvipc")
def test_a_pid_file_naming_a_segment_its_postmaster_did_not_make_removes_nothing(tmp_path):
    """A directory that looks like a dead run's (in a shared /tmp anyone may
    write one) cannot make the cleaning remove a segment of another program."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(0, 4096, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
    assert shmid >= 0
    try:
        datadir = tmp_path / "run" / "data"
        datadir.mkdir(parents=True)
        dead = 2 ** 22 + 1  # above Linux's highest pid_max: no process has it
        (datadir / "postmaster.pid").write_text(
            f"{dead}\n{datadir}\n0\n5432\n\n127.0.0.1\n        0 {shmid:9d}\nready\n")
        pg_watchdog.release_shared_memory(tmp_path)
        assert shmid in _segments()
    finally:
        libc.shmctl(shmid, 0, None)  # IPC_RMID
    assert shmid not in _segments()


def test_ports_taken_at_every_try_are_a_port_taken_error_naming_them(
        monkeypatch, squatters, open_tmpdir):
    monkeypatch.setattr(postgres.tempfile, "tempdir", open_tmpdir)
    taken = [squatters(listen) for listen in (True, False, True)]
    ports = iter(taken)
    monkeypatch.setattr(postgres, "free_port", lambda: next(ports))
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    with pytest.raises(PortTaken) as raised:
        server.start()
    assert str(raised.value).startswith(
        "the ephemeral PostgreSQL could not bind a port: each one chosen free was taken by "
        f"another process before it could bind it ({', '.join(map(str, taken))}); ")
    assert os.listdir(open_tmpdir) == []  # each try's cluster removed


def test_the_second_cluster_is_a_copy_of_the_cached_template(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_CADASTA_CACHE_DIR", str(tmp_path / "cache"))
    first = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    second = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        first.start()
        info = second.start()
        assert (first.from_template, second.from_template) == (False, True)
        # A cluster of its own, with the template's pg_hba.conf: passwords required.
        assert second.workdir != first.workdir
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        first.stop()
        second.stop()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        postgres.ClusterTemplate(postgres.find_pg_ctl(None), postgres.SUPERUSER,
                                 tmp_path / "cache").path.name]


def test_runs_starting_at_once_share_one_template_and_leave_no_half_built_one(
        monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_CADASTA_CACHE_DIR", str(tmp_path / "cache"))
    servers = [postgres.EphemeralPostgres(postgres.find_pg_ctl(None)) for _ in range(2)]
    errors = []

    def start(server):
        try:
            server.start()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(server,)) for server in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.stop()
    assert errors == []
    entries = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len(entries) == 1 and entries[0].startswith("cluster-")


def test_a_broken_template_is_dropped_and_the_cluster_starts_from_initdb(
        monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_CADASTA_CACHE_DIR", str(tmp_path / "cache"))
    template = postgres.ClusterTemplate(postgres.find_pg_ctl(None), postgres.SUPERUSER)
    template.path.mkdir(parents=True)
    (template.path / "PG_VERSION").write_text("not a cluster\n")
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        info = server.start()
        assert server.from_template is False
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert (template.path / "PG_VERSION").read_text() != "not a cluster\n"


def _processes_of(server):
    """The postmaster and every process it started."""
    pids = {server.process.pid}
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == server.process.pid:
            pids.add(int(entry))
    return pids


def test_no_process_of_the_server_carries_a_mark_mirakurus_exit_sweep_reads(
        monkeypatch):
    """mirakuru, imported by pytest-postgresql's plugin in every pytest run,
    SIGKILLs at exit each process whose mirakuru_uuid contains the exiting
    pid's digits: the shared PostgreSQL that vanished mid-run without a word
    in its log. The server's processes carry no such variable, even when this
    process does (a run started by a mirakuru executor)."""
    monkeypatch.setenv("mirakuru_uuid", f"{os.getpid()}:inherited")
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        info = server.start()
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            connection.execute("SELECT 1")
            mine = _processes_of(server)
            assert len(mine) > 1  # the postmaster, its background processes, a backend
            for pid in mine:
                assert b"mirakuru_uuid=" not in Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        server.stop()


SWEEP = """
import os, subprocess, sys, time
import mirakuru.base
from pytest_cadasta.services import mirakuru_sweep

quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
own = subprocess.Popen(["sleep", "60"], env={"mirakuru_uuid": f"{os.getpid()}:own"}, **quiet)
# Another run's server, whose mark holds this pid's digits (pids wrap).
other = subprocess.Popen(["sleep", "60"], start_new_session=True,
                         env={"mirakuru_uuid": f"9{os.getpid()}9:other"}, **quiet)
mirakuru_sweep.narrow()
print(own.pid, other.pid, flush=True)
"""


def _sigkill_pending(pid):
    """Whether a SIGKILL was sent to ``pid`` that it has not died of yet (the
    kernel marks it pending until the process is next scheduled)."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    masks = [int(line.split()[1], 16) for line in status
             if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (signal.SIGKILL - 1)) for mask in masks)


def test_a_run_ending_kills_only_what_its_own_mirakuru_started(wait_for):
    from pytest_cadasta.basics.process_handle import alive

    done = subprocess.run([sys.executable, "-c", SWEEP], capture_output=True, text=True,
                          timeout=60)
    own, other = map(int, done.stdout.split())
    try:
        # Signalled as the run ended: it dies when it is next scheduled, which a
        # busy machine may put off.
        wait_for(lambda: not alive(own), "mirakuru's sweep no longer ends what it started")
        assert alive(other) and not _sigkill_pending(other), \
            "a process of another run was killed as this one ended"
    finally:
        for pid in (own, other):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _server_with_pid(pid, pg_ctl, monkeypatch):
    """A server whose postmaster has ``pid``, as the kernel would give it once
    pids come round again: as root, by setting the last pid given out just
    before the postmaster starts; a process forking meanwhile may take it
    first, so a few tries."""
    launch = postgres.EphemeralPostgres._launch

    def launch_as_pid(self, *args):
        with open("/proc/sys/kernel/ns_last_pid", "w") as last:
            last.write(str(pid - 1))
        launch(self, *args)

    monkeypatch.setattr(postgres.EphemeralPostgres, "_launch", launch_as_pid)
    for _ in range(20):
        server = postgres.EphemeralPostgres(pg_ctl)
        server.start()
        if server.process.pid == pid:
            monkeypatch.undo()
            return server
        server.stop()
    pytest.skip(f"pid {pid} kept being taken by other processes")


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/proc/sys/kernel/ns_last_pid"),
                    reason="giving a chosen pid to a new process needs root (ns_last_pid)")
def test_a_server_that_took_a_dead_servers_pid_survives_that_servers_stop_and_cleaning(
        open_tmpdir, monkeypatch):
    """A server dies (SIGKILL, as by the OOM killer); another run's server is
    started with its pid. Stopping the dead one, its watchdog's cleaning and a
    later run's removal of dead runs signal only the dead server's own
    processes: the one that took its pid keeps answering."""
    import signal

    from pytest_cadasta.services.pg_watchdog import OWNER_FILE

    monkeypatch.setattr(postgres.tempfile, "tempdir", open_tmpdir)
    pg_ctl = postgres.find_pg_ctl(None)
    dead = postgres.EphemeralPostgres(pg_ctl)
    dead.start()
    workdir, pid = dead.workdir, dead.process.pid
    os.kill(pid, signal.SIGKILL)
    dead.process.wait()  # collected: its pid is free for the next process
    other = _server_with_pid(pid, pg_ctl, monkeypatch)
    try:
        info = other.server
        # A later run finds the dead run's directory (its owner gone).
        (workdir / OWNER_FILE).write_text("1 0\n")
        postgres.remove_dead_runs(workdir.parent)
        dead.stop()
        assert not workdir.exists()
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        assert other.ended() is None
    finally:
        other.stop()

