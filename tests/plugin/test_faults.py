"""Faults in the middle of a run: the infrastructure the plugin started goes
away, a task never returns, the run is interrupted at each phase. Each run
must end (the inner run's timeout is only a net against a hang; how long it
takes is bench.py's to measure), say what went wrong in a line, and leave
nothing behind (no PostgreSQL, no zombie, no temporary directory).

The faults are injected by tests/examples/inner_faults/conftest.py, at a
chosen check or hook: no sleep races the run."""

import importlib.metadata

import psycopg
import pytest

from pytest_cadasta.checks import iter_checks

#: kombu's version: before 5.7 a worker whose broker went away is slow to stop.
KOMBU = tuple(int(part) for part in importlib.metadata.version("kombu").split(".")[:2])

APP = "--cadasta-app=toolbox_app:app"
CHECKS = list(iter_checks(("celery", "msg", "export")))
ALL = len(CHECKS)
#: The first check that needs the result database (the worker runs by then).
FIRST_RESULT_CHECK = "success_leaves_a_success_row"
#: The checks from there on.
AFTER = CHECKS[[check.name for check, _ in CHECKS].index(FIRST_RESULT_CHECK):]
#: The checks that need what either fault takes away: every check of a worker
#: from there on (its worker's infrastructure is gone: not judged, whatever the
#: worker still does), and the platform's that reads the monitor (SQS) into its
#: Task table (PostgreSQL).
GONE = [check.name for check, _ in AFTER if check.needs_worker] + [
    "every_task_sent_is_recorded_by_the_platform"]


@pytest.fixture
def run_with_fault(run_inner, pytester, open_tmpdir):
    """Run the checks (on the toolbox app unless ``args`` say otherwise) with
    ``fault`` injected at ``at``, on a PostgreSQL of the run's own (unless
    ``own_db=False``: the shared one), with TMPDIR in ``open_tmpdir``; return
    the result. The checks' safety net is an hour unless ``env`` says
    otherwise: a check that waited for it, rather than ending on what it
    knows, would hang the run (past the inner run's timeout), however fast
    or busy the machine."""

    def run(fault, at, *args, env=None, own_db=True):
        pytester.copy_example("apps/toolbox_app.py")
        pytester.copy_example("inner_faults/conftest.py")
        return run_inner(*(args or [APP]), own_db=own_db,
                         env={"TMPDIR": open_tmpdir, "FAULT": fault, "FAULT_AT": at,
                              "ROUND_TRIP_TIMEOUT": "3600", **(env or {})})

    return run


@pytest.mark.parametrize(("fault", "says"), [
    ("kill_database", "the result database went away: *"),
    ("stop_moto", "moto's SQS server (http://127.0.0.1:*) went away*"),
])
def test_infrastructure_gone_mid_run_is_an_error_per_check_that_needs_it(
        run_with_fault, leftovers, fault, says):
    if fault == "stop_moto" and KOMBU < (5, 7):
        pytest.skip("kombu < 5.7 retries a broker that went away outside the worker's loop, "
                    "for over a minute: the run ends, not in bounded time")
    result = run_with_fault(fault, FIRST_RESULT_CHECK)
    out = result.stdout.str()
    gone = GONE
    # The checks that ran before, and those that need neither, still report.
    result.assert_outcomes(passed=ALL - len(gone), errors=len(gone))
    for name in gone:
        result.stdout.fnmatch_lines([f"*ERROR at call of cadasta::*::{name} *",
                                     f"pytest-cadasta could not run the check: {says}"],
                                    consecutive=True)
    result.stdout.fnmatch_lines([
        f"verdict: not judged: {len(gone)} checks could not run (see the errors above)"])
    assert "Traceback" not in out + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert leftovers() == {}


WITH_WORKER = [check.name for check, _ in CHECKS if check.needs_worker]


@pytest.mark.slow
def test_a_task_that_never_returns_fails_its_check_and_the_worker_is_given_up(
        run_with_fault, pytester, leftovers):
    """The safety net (shortened here) ends the check that waits for the task,
    naming it and what was awaited; the checks after it need the worker and
    say at once why it cannot serve; the run ends, the stuck thread with it."""
    pytester.copy_example("apps/hangs.py")
    result = run_with_fault("", "", "--cadasta-app=hangs:app",
                                  env={"ROUND_TRIP_TIMEOUT": "2"})
    result.assert_outcomes(passed=ALL - len(WITH_WORKER), failed=1,
                           errors=len(WITH_WORKER) - 1)
    stuck = "'*.cadasta_probe_schedules' (*)"
    result.stdout.fnmatch_lines([  # errors first, then failures
        f"pytest-cadasta could not start the worker: the in-process worker was given up: "
        f"it is stuck in task {stuck}, which never returned",
        "*saw:   after 2.0 s, probe '*.cadasta_probe_schedules' had not ended: *received "
        f"from dev-*; the worker is still running task {stuck}, which never returned",
        "*needs: tasks, and task signal handlers, that return*"], consecutive=False)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert leftovers() == {}


def test_a_task_of_the_users_own_that_never_returns_leaves_the_worker_behind_at_teardown(
        run_with_fault, pytester, leftovers):
    pytester.copy_example("apps/hangs.py")
    pytester.makepyfile(test_own="""
        import pytest
        from celery.exceptions import TimeoutError

        def test_export(cadasta_app, cadasta_worker):
            result = cadasta_app.send_task("export.project", args=(2,))
            with pytest.raises(TimeoutError):
                result.get(timeout=0.5, interval=0.05)
    """)
    result = run_with_fault("", "", "--cadasta-app=hangs:app", "-m", "not cadasta",
                                  env={"STOP_TIMEOUT": "1"})
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_export*",
        "pytest-cadasta could not stop what it started: the in-process worker was given up: "
        "it did not stop within 1 s: task 'export.project' (*) never returned"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert leftovers() == {}


#: Where a signal comes, and which: start-up (PostgreSQL starting in the
#: background while pytest collects), the checks (while the worker runs a
#: task), teardown (as the session's fixtures drop the throwaway database on the
#: shared server, as pytest_unconfigure stops PostgreSQL, where SIGTERM's own
#: handler is put back midway). SIGTERM is handled as Ctrl-C is while the run
#: holds anything: both are tried where they part. (Ctrl-C and SIGTERM in a
#: user's own test: test_fixtures.py.)
SIGNALS_AT = [("postgres start", "terminate"), ("first task", "interrupt"),
              ("database drop", "terminate"), ("postgres stop", "interrupt"),
              ("postgres stop", "terminate")]


@pytest.fixture
def throwaway_databases(shared_pg_url):
    """The throwaway databases and roles on the shared server now."""

    def find():
        with psycopg.connect(shared_pg_url) as connection:
            return set(connection.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'cadasta_results_%' "
                "UNION SELECT rolname FROM pg_roles WHERE rolname LIKE 'cadasta_worker_%'"
            ).fetchall())

    return find


@pytest.mark.slow
@pytest.mark.parametrize(("at", "fault"), SIGNALS_AT)
def test_a_signal_at_any_phase_stops_everything_started_and_removes_its_files(
        run_with_fault, leftovers, throwaway_databases, at, fault):
    before = throwaway_databases()
    result = run_with_fault(fault, at, APP, "-k", FIRST_RESULT_CHECK,
                                  own_db=at != "database drop")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stderr.str()
    assert leftovers() == {}
    assert throwaway_databases() == before
