"""pytest-cadasta beside other plugins: Celery's own, pytest-celery's shared
tasks, and pytest's --lf, --sw and -x."""

import pytest

from pytest_cadasta.checks import iter_checks

CHECKS = list(iter_checks(("celery", "msg", "export")))
ALL = len(CHECKS)


@pytest.mark.slow
def test_celery_contrib_pytest_fixtures_and_ours_in_one_run(run_inner, pytester):
    """celery.contrib.pytest's celery_worker stops every worker in the process
    when it stops, ours too: the checks after it still get a worker."""
    pytester.copy_example("apps/toolbox_app.py")
    pytester.copy_example("plugins/conftest.py")
    pytester.copy_example("plugins/test_celery_fixtures_beside_ours.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "-p", "celery.contrib.pytest", "-v")
    result.assert_outcomes(passed=ALL + 1)
    result.stdout.fnmatch_lines(["*::test_both_plugins_fixtures PASSED*",
                                 "cadasta::exchange::default_exchange_is_topic PASSED*",
                                 "verdict: conforms"], consecutive=False)


def test_shared_tasks_of_a_pytest_plugin_are_not_the_apps(run_inner, pytester):
    """pytest-celery's plugin defines shared tasks, which Celery adds to every
    app: they are not the worker's tasks, and its routes are none of its business."""
    pytester.copy_example("apps/toolbox_app.py")
    pytester.copy_example("plugins/shared_tasks_plugin.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "-p", "shared_tasks_plugin")
    result.assert_outcomes(passed=ALL)
    result.stdout.fnmatch_lines(["verdict: conforms"])


@pytest.fixture
def cached_run(pytester, shared_pg_url, shared_moto):
    """Runs with pytest's cache (--lf, --sw need it) on an app that fails one
    check until ``fix()`` is called; the session's PostgreSQL and moto server."""
    for example in ("apps/toolbox_app.py", "apps/no_monitor_queue.py", "apps/handwritten.py"):
        pytester.copy_example(example)
    app = pytester.path / "app_under_test.py"
    app.write_text("from no_monitor_queue import app  # noqa: F401\n")

    def run(*args):
        return pytester.runpytest_subprocess(
            "-p", "cacheprovider", f"--cadasta-result-db={shared_pg_url}",
            f"--cadasta-moto-endpoint={shared_moto}", "--cadasta-app=app_under_test:app",
            *args, timeout=240)

    run.fix = lambda: app.write_text("from toolbox_app import app  # noqa: F401\n")
    return run


@pytest.mark.slow
def test_x_then_lf_after_a_fix_say_what_they_judged(cached_run):
    """-x stops at the first failing check and says the app does not conform;
    --lf once the app is fixed reruns that check alone: no verdict."""
    first = cached_run("-x")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    first.assert_outcomes(failed=1, passed=2)
    first.stdout.fnmatch_lines(["verdict: does not conform: 1 check failed"])
    cached_run.fix()
    result = cached_run("--lf")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, deselected=ALL - 1)
    result.stdout.fnmatch_lines([
        f"verdict: not judged as a whole: 1 of {ALL} checks ran, and passed; run them all "
        "for a verdict"])


@pytest.mark.slow
def test_sw_goes_on_from_the_failed_check_and_is_no_verdict(cached_run):
    first = cached_run("--sw")
    assert first.ret == pytest.ExitCode.INTERRUPTED  # pytest's word for a --sw stop
    first.stdout.fnmatch_lines(["verdict: does not conform: 1 check failed"])
    cached_run.fix()
    result = cached_run("--sw")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=ALL - 2, deselected=2)
    result.stdout.fnmatch_lines([
        f"verdict: not judged as a whole: {ALL - 2} of {ALL} checks ran, and passed; run "
        "them all for a verdict"])
