"""Every wrong --cadasta-app gets its own message, exit code 4, no traceback."""

import pytest


@pytest.fixture
def apps(pytester):
    for name in ("toolbox_app", "raises_on_import", "no_app_here",
                 "needs_missing_dependency"):
        pytester.copy_example(f"apps/{name}.py")
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


@pytest.mark.parametrize(("value", "expected"), [
    ("toolbox_app", "*--cadasta-app='toolbox_app': expected 'module:attribute', "
                    "e.g. 'worker.celery:app'*"),
    (":app", "*--cadasta-app=':app': expected 'module:attribute'*"),
    ("toolbox_app:", "*--cadasta-app='toolbox_app:': expected 'module:attribute'*"),
    ("no_such_module:app", "*no module named 'no_such_module' (looked in *"),
    ("toolbox_app.sub:app", "*no module named 'toolbox_app.sub'*"),
    ("raises_on_import:app", "*importing 'raises_on_import' raised KeyError: "
                             "'broker_url'; reproduce with: "
                             "python -c 'import raises_on_import'*"),
    ("needs_missing_dependency:app",
     "*importing 'needs_missing_dependency' raised ModuleNotFoundError: "
     "No module named 'cadasta_no_such_dependency'*"),
    ("no_app_here:app", "*module 'no_app_here' has no attribute 'app'; "
                        "Celery apps in no_app_here: other_app, worker_app*"),
    ("toolbox_app:missing", "*has no attribute 'missing'; Celery apps in "
                            "toolbox_app: app*"),
    ("no_app_here:not_an_app", "*'not_an_app' is a int, not a Celery app*"),
    ("no_app_here:app_factory", "*'app_factory' is a type, not a Celery app*"),
])
def test_bad_app_is_a_usage_error(apps, value, expected):
    result = run(apps, f"--cadasta-app={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_good_app_from_the_ini_file(apps):
    apps.makeini("[pytest]\ncadasta_app = no_app_here:worker_app\n")
    apps.makepyfile(test_header="def test_nothing(): pass")
    result = run(apps, "--cadasta-result-db=postgresql://u@localhost/postgres",
                 "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["cadasta: app no_app_here:worker_app (one), role: worker"])


def test_command_line_beats_the_ini_file(apps):
    apps.makeini("[pytest]\ncadasta_app = no_app_here:not_an_app\n")
    apps.makepyfile(test_header="def test_nothing(): pass")
    result = run(apps, "--cadasta-app=no_app_here:other_app",
                 "--cadasta-result-db=postgresql://u@localhost/postgres", "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["cadasta: app no_app_here:other_app (two)*"])


def test_ini_value_is_checked_like_the_option(apps):
    apps.makeini("[pytest]\ncadasta_app = toolbox_app\n")
    result = run(apps)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cadasta_app (ini)='toolbox_app': expected*"])


def test_an_ini_app_that_fails_says_it_came_from_the_ini(apps):
    apps.makeini("[pytest]\ncadasta_app = no_app_here:missing\n")
    result = run(apps)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cadasta_app (ini)='no_app_here:missing': module*"])
