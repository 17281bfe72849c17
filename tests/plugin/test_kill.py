"""A run killed with SIGKILL at any moment (a CI job's hard timeout, the OOM
killer) leaves nothing behind: its PostgreSQL stops and its files go (how soon
is bench.py's to measure), its moto server with it; the next run, and a run
beside it, conform.

The runs are real: a subprocess pausing at a chosen moment (through
tests/examples/inner_faults/conftest.py), then SIGKILLed."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

APP = "--cadasta-app=toolbox_app:app"
@pytest.fixture
def start_run(pytester, open_tmpdir):
    """Start a run of the checks (own PostgreSQL, TMPDIR in ``open_tmpdir``),
    pausing at ``at`` if given; return the process and the file it writes
    when it pauses."""
    pytester.copy_example("apps/toolbox_app.py")
    pytester.copy_example("inner_faults/conftest.py")
    started = []

    def start(at="", name="run", args=()):
        paused = pytester.path / f"{name}.paused"
        env = {**os.environ, "TMPDIR": open_tmpdir, "FAULT": "pause" if at else "",
               "FAULT_AT": at, "PAUSED_FILE": str(paused)}
        with (pytester.path / f"{name}.log").open("w") as log:
            process = subprocess.Popen([sys.executable, "-m", "pytest", "-p",
                                        "no:cacheprovider", APP, *args], cwd=pytester.path,
                                       env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process, paused

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _kill_when_paused(process, paused, wait_for):
    wait_for(lambda: paused.exists() or process.poll() is not None,
             "the run never reached the moment to kill it")
    assert process.poll() is None, "the run ended before the moment to kill it"
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("at", ["postgres start", "success_leaves_a_success_row",
                                "postgres stop"])
def test_a_run_killed_leaves_nothing_and_the_next_run_conforms(start_run, left_nothing, wait_for,
                                                               open_tmpdir, at):
    process, paused = start_run(at)
    _kill_when_paused(process, paused, wait_for)

    left_nothing()
    assert not any(Path(open_tmpdir).iterdir())
    process, _ = start_run(name="next")
    assert process.wait(240) == 0, Path(process.args[0]).name


@pytest.mark.slow
def test_two_runs_at_once_one_killed_the_other_conforms(start_run, left_nothing, wait_for,
                                                       pytester):
    killed, paused = start_run("success_leaves_a_success_row", name="killed")
    other, _ = start_run(name="other")
    _kill_when_paused(killed, paused, wait_for)
    assert other.wait(120) == 0, (pytester.path / "other.log").read_text()[-3000:]
    assert "verdict: conforms" in (pytester.path / "other.log").read_text()

    left_nothing()


def test_the_next_run_removes_what_a_dead_run_left_and_never_a_live_runs(
        start_run, open_tmpdir):
    """When the watchdog died with its run (the whole process group killed),
    the next run stops the dead run's server and removes its files; a live
    run's are left alone."""
    from pytest_cadasta.services.pg_watchdog import OWNER_FILE, start_time

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = Path(open_tmpdir, "pytest-cadasta-pg-deadrun")
    (dead / "run").mkdir(parents=True)
    (dead / OWNER_FILE).write_text(f"{gone.pid} 12345\n")
    (dead / "run" / "postgresql.log").write_text("a dead run's log\n")
    live = Path(open_tmpdir, "pytest-cadasta-pg-liverun")
    live.mkdir()
    (live / OWNER_FILE).write_text(f"{os.getpid()} {start_time(os.getpid())}\n")
    process, _ = start_run(name="next")
    assert process.wait(120) == 0
    assert not dead.exists()
    assert live.exists()


def test_a_run_killed_writing_its_junit_xml_leaves_the_last_whole_file(start_run, pytester,
                                                                     wait_for):
    """The JUnit XML file (the verdict's properties in it) is written beside
    itself and moved into place: a kill as it is written leaves the last whole
    file, and the next run removes the dead run's unfinished one."""
    import xml.etree.ElementTree as ElementTree

    junit = pytester.path / "out" / "junit.xml"
    args = (f"--junitxml={junit}", "-k", "exchange")
    first, _ = start_run(name="first", args=args)
    assert first.wait(120) == 0
    whole = junit.read_bytes()
    killed, paused = start_run("junit write", name="killed", args=args)
    _kill_when_paused(killed, paused, wait_for)
    assert junit.read_bytes() == whole
    left = [p.name for p in junit.parent.iterdir() if p.name != junit.name]
    assert left and all(name.startswith(".junit.xml.cadasta-") and f"-{killed.pid}-" in name
                        for name in left)
    following, _ = start_run(name="following", args=args)
    assert following.wait(120) == 0
    assert [p.name for p in junit.parent.iterdir()] == [junit.name]
    properties = ElementTree.parse(junit).getroot().iter("property")
    assert {"cadasta_verdict"} <= {p.get("name") for p in properties}


def test_a_dead_runs_stale_pid_file_never_stops_the_process_that_took_its_pid(open_tmpdir):
    """pids come round again (32768 of them, on many machines): the pid in a
    dead run's postmaster.pid may be any process's by now, another run's
    PostgreSQL included. Only the postmaster of that directory is stopped."""
    from pytest_cadasta.services.pg_watchdog import OWNER_FILE
    from pytest_cadasta.services.postgres import remove_dead_runs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = Path(open_tmpdir, "pytest-cadasta-pg-staleid")
        (dead / "run" / "data").mkdir(parents=True)
        (dead / OWNER_FILE).write_text(f"{gone.pid} 12345\n")
        (dead / "run" / "data" / "postmaster.pid").write_text(f"{unrelated.pid}\n")
        remove_dead_runs(Path(open_tmpdir))
        assert not dead.exists()
        assert unrelated.poll() is None, "a process that merely took a dead pid was stopped"
    finally:
        unrelated.kill()
        unrelated.wait()


def test_the_header_says_where_the_files_go_when_tmpdir_is_closed_to_postgres(pytester,
                                                                             tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    pytester.copy_example("apps/toolbox_app.py")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(closed))
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", APP, "--collect-only")
    if os.geteuid() == 0:
        result.stdout.fnmatch_lines([
            f"cadasta: the ephemeral PostgreSQL's files go under *: TMPDIR ({closed}) is not "
            "reachable by the unprivileged user it runs as"])
    else:  # not root: PostgreSQL runs as this user, and its files go under TMPDIR
        assert "files go under" not in result.stdout.str()


@pytest.mark.slow
def test_an_xdist_worker_killed_takes_its_postgresql_and_the_verdict_is_not_judged(
        pytester, open_tmpdir, left_nothing, wait_for):
    """-n 2: the xdist worker running the app's checks is killed in a check;
    its PostgreSQL goes with it, and the run says the app was not judged."""
    pytester.copy_example("apps/toolbox_app.py")
    pytester.copy_example("inner_faults/conftest.py")
    paused = pytester.path / "gw.paused"
    env = {**os.environ, "TMPDIR": open_tmpdir, "FAULT": "pause",
           "FAULT_AT": "success_leaves_a_success_row", "PAUSED_FILE": str(paused)}
    with (pytester.path / "run.log").open("w") as log:
        run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", APP,
                                "-p", "xdist", "-n", "2"], cwd=pytester.path, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: paused.exists() or run.poll() is not None,
                 "the run never reached the check")
        os.kill(int(paused.read_text()), signal.SIGKILL)
        run.wait(120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    out = (pytester.path / "run.log").read_text()
    assert "crashed while running 'cadasta::result::success_leaves_a_success_row'" in out
    assert "verdict: not judged" in out, out[-3000:]
    assert "verdict: conforms" not in out

    left_nothing()
