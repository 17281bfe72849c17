"""Every wrong --cadasta-app gets its own message, exit code 4, no traceback."""

import shutil
from pathlib import Path

import pytest

from pytest_cadasta.checks import iter_checks

ALL_CHECKS_OF_PROJ = len(list(iter_checks(("celery", "export"))))
APPS = Path(__file__).parents[1] / "examples" / "apps"


def copy_package(pytester, name):
    """pytester.copy_example copies no package: copy apps/<name>/ as <name>/."""
    shutil.copytree(APPS / name, pytester.path / name)


@pytest.fixture
def apps(pytester):
    for name in ("toolbox_app", "raises_on_import", "no_app_here",
                 "needs_missing_dependency", "broken_task_module", "broken_task_module_tasks",
                 "no_celery_here", "exits_on_import"):
        pytester.copy_example(f"apps/{name}.py")
    copy_package(pytester, "proj")
    copy_package(pytester, "broken_celery_module")
    return pytester


@pytest.fixture
def run(apps, run_inner):
    """``run_inner`` among the sample apps: the session's moto server and
    PostgreSQL, as these runs judge the app given, not how either starts (a
    test's own --cadasta-result-db comes later and wins)."""
    return run_inner


@pytest.mark.parametrize(("value", "expected"), [
    (":app", "*--cadasta-app=':app': expected what 'celery -A' takes: 'proj', "
             "'proj.celery', 'proj:app' or 'proj.celery:app'"),
    ("toolbox_app:", "*--cadasta-app='toolbox_app:': expected what 'celery -A' takes*"),
    ("toolbox app", "*--cadasta-app='toolbox app': expected what 'celery -A' takes*"),
    ("toolbox_app:app:x", "*--cadasta-app='toolbox_app:app:x': expected what*"),
    ("a..b", "*--cadasta-app='a..b': expected what 'celery -A' takes*"),
    ("no_such_module:app", "*no module named 'no_such_module' (looked in *"),
    ("toolbox_app.sub:app", "*no module named 'toolbox_app.sub'*"),
    ("raises_on_import:app", "*importing 'raises_on_import' raised KeyError: "
                             "'broker_url' at raises_on_import.py:5 in <module>; reproduce "
                             "with: python -c 'import raises_on_import'*"),
    ("exits_on_import:app", "*importing 'exits_on_import' raised SystemExit: 3 at "
                            "exits_on_import.py:5 in <module>; reproduce with: python -c "
                            "'import exits_on_import'"),
    ("needs_missing_dependency:app",
     "*importing 'needs_missing_dependency' raised ModuleNotFoundError: "
     "No module named 'cadasta_no_such_dependency'*"),
    ("no_app_here:app", "*module 'no_app_here' has no attribute 'app'; "
                        "Celery apps in no_app_here: other_app, worker_app*"),
    ("toolbox_app:missing", "*has no attribute 'missing'; Celery apps in "
                            "toolbox_app: app*"),
    ("no_app_here:not_an_app", "*'not_an_app' is a int, not a Celery app*"),
    ("no_app_here:app_factory", "*'app_factory' is a type, not a Celery app*"),
    ("needs_missing_dependency", "*importing 'needs_missing_dependency' raised "
                                 "ModuleNotFoundError*"),
    ("no_celery_here", "*no Celery app in module 'no_celery_here' (looked for 'app', "
                       "'celery', a 'celery' submodule, then any Celery app in it); "
                       "no_celery_here defines no Celery app"),
    # Celery's finder swallows the error of a package's celery.py: it is named.
    ("broken_celery_module", "*--cadasta-app='broken_celery_module': importing "
                             "'broken_celery_module.celery' raised ImportError: cannot import "
                             "name 'NoSuchThing' from 'kombu' (*) at "
                             "broken_celery_module/celery.py:2 in <module>; reproduce with: "
                             "python -c 'import broken_celery_module.celery'"),
    ("broken_task_module", "*--cadasta-app='broken_task_module': importing the app's task "
                           "modules (broken_task_module_tasks; from imports, include or "
                           "autodiscovery) raised ModuleNotFoundError: No module named "
                           "'cadasta_not_installed'"),
])
def test_bad_app_is_a_usage_error(apps, run, value, expected):
    result = run(f"--cadasta-app={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_good_app_from_the_ini_file(apps, run):
    apps.makeini("[pytest]\ncadasta_app = no_app_here:worker_app\n")
    apps.makepyfile(test_header="def test_nothing(): pass")
    result = run("--cadasta-result-db=postgresql://u@localhost/postgres",
                 "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["cadasta: app no_app_here:worker_app (one), role: worker"])


def test_command_line_beats_the_ini_file(apps, run):
    apps.makeini("[pytest]\ncadasta_app = no_app_here:not_an_app\n")
    apps.makepyfile(test_header="def test_nothing(): pass")
    result = run("--cadasta-app=no_app_here:other_app",
                 "--cadasta-result-db=postgresql://u@localhost/postgres", "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["cadasta: app no_app_here:other_app (two)*"])


def test_ini_value_is_checked_like_the_option(apps, run):
    apps.makeini("[pytest]\ncadasta_app = toolbox app\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cadasta_app (ini)='toolbox app': expected*"])


def test_an_ini_app_that_fails_says_it_came_from_the_ini(apps, run):
    apps.makeini("[pytest]\ncadasta_app = no_app_here:missing\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cadasta_app (ini)='no_app_here:missing': module*"])


@pytest.mark.parametrize("spec", ["proj", "proj.celery", "proj:app", "proj.celery:app"])
def test_the_app_is_found_as_celery_a_finds_it(apps, run, spec):
    result = run(f"--cadasta-app={spec}",
                 "--cadasta-result-db=postgresql://u@localhost/postgres", "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"cadasta: app {spec} (proj), role: worker"])


def test_task_modules_are_imported_before_any_check_reads_the_tasks(run_inner, pytester):
    copy_package(pytester, "proj")
    pytester.makepyfile(test_tasks="""
        def test_the_task_module_was_imported(cadasta_app):
            assert "export.project" in cadasta_app.tasks
    """)
    result = run_inner("--cadasta-app=proj", "-m", "not cadasta")
    result.assert_outcomes(passed=1, deselected=ALL_CHECKS_OF_PROJ)


def test_an_app_that_prints_while_imported_is_judged_as_any_other(run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    pytester.copy_example("apps/prints_on_import.py")
    result = run_inner("--cadasta-app=prints_on_import:app")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["verdict: conforms"])


@pytest.mark.parametrize(("spec", "exit_code"), [
    ("thread_on_import:app", pytest.ExitCode.OK),
    ("thread_on_import:missing", pytest.ExitCode.USAGE_ERROR),
])
def test_a_thread_the_app_leaves_running_does_not_keep_the_run_from_ending(
        run_inner, pytester, spec, exit_code):
    """Python waits for every non-daemon thread before it exits: without the
    plugin's help the run would print its verdict and hang."""
    pytester.copy_example("apps/toolbox_app.py")
    pytester.copy_example("apps/thread_on_import.py")
    result = run_inner(f"--cadasta-app={spec}", "-k", "routing", timeout=60)
    assert result.ret == exit_code
    result.stderr.fnmatch_lines([
        "pytest-cadasta: non-daemon threads still running now the run is over: "
        "'metrics-flusher' (started by the project's code: the app, a conftest or a test); "
        "Python would wait for them forever, as 'celery worker' would at shutdown: the "
        "process ends here (make them daemon threads, or stop them)"])
