"""The four fixtures, used the way a worker's team uses them in its own tests."""

import json
import os

import pytest

APP = "--cadasta-app=toolbox_app:app"
ONLY_OWN = ("-m", "not cadasta")  # the user's tests, not the conformance checks
TOOLBOX_APP = "apps/toolbox_app.py"


def test_round_trip_through_worker_queue_monitor_and_result_table(run_inner):
    result = run_inner(APP, *ONLY_OWN, examples=[TOOLBOX_APP, "inner/test_roundtrip.py"])
    result.assert_outcomes(passed=2)


OUTCOMES = {
    "passing": ("assert True", {"passed": 1}),
    "failing": ("assert False", {"failed": 1}),
    # Ctrl-C while the database and the worker are up.
    "interrupted": ("os.kill(os.getpid(), signal.SIGINT); time.sleep(5)", {}),
    # A CI job's timeout, a container stopping.
    "terminated": ("os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)", {}),
    # Ctrl-C whose KeyboardInterrupt is lost: raised in a finalizer (Python
    # prints it and drops it), or caught by code that catches everything.
    "interrupted in a finalizer": ("Finalizer(); time.sleep(5)", {}),
    "interrupted and caught": ("try:\n"
                               "                os.kill(os.getpid(), signal.SIGINT)\n"
                               "                time.sleep(5)\n"
                               "            except BaseException:\n"
                               "                pass", {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_own_postgres_leaves_nothing_behind(run_inner, pytester, open_tmpdir, leftovers,
                                            outcome):
    body, expected = OUTCOMES[outcome]
    pytester.copy_example(TOOLBOX_APP)
    pytester.makepyfile(test_own=f"""
        import os, signal, time

        class Finalizer:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGINT)

        def test_uses_the_database(cadasta_result_db, cadasta_worker):
            assert cadasta_result_db.rows() == []
            {body}

        def test_after_it():
            pass
    """)
    result = run_inner(APP, *ONLY_OWN, own_db=True, env={"TMPDIR": open_tmpdir})
    if expected:  # and the test after it passes
        result.assert_outcomes(**{**expected, "passed": expected.get("passed", 0) + 1})
    else:
        assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()[-2000:]
        assert "test_after_it" not in result.stdout.str()  # the run stopped there
    assert leftovers() == {}


def test_queues_are_empty_at_the_start_of_each_test(run_inner):
    result = run_inner(APP, *ONLY_OWN, examples=[TOOLBOX_APP, "inner/test_isolation.py"])
    result.assert_outcomes(passed=2)


def test_nothing_reaches_aws_and_the_environment_is_restored(run_inner, pytester):
    outside = {
        "AWS_ACCESS_KEY_ID": "AKIAREALLOOKINGKEY01",
        "AWS_SECRET_ACCESS_KEY": "real/looking/secret/key/0123456789abcdef",
        "AWS_SESSION_TOKEN": "real-looking-session-token",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }
    result = run_inner(APP, *ONLY_OWN, examples=[TOOLBOX_APP, "inner_env"], env=outside)
    result.assert_outcomes(passed=1)
    after = json.loads((pytester.path / "env_after.json").read_text())
    assert after == {k: v for k, v in {**os.environ, **outside}.items()
                     if k.startswith("AWS_")}


@pytest.mark.fresh_python
def test_what_the_run_imported_is_kept_out_of_every_collection(run_inner, pytester):
    """Celery, kombu, boto3 and the app live as long as the run: no collection
    of the run walks them (a fifth of a conformance run's CPU went to that)."""
    pytester.makepyfile(test_kept="""
        import gc

        def test_the_app_is_not_walked(cadasta_app):
            made_here = type("MadeHere", (), {})()
            walked = gc.get_objects()
            assert any(found is made_here for found in walked)
            assert not any(found is cadasta_app for found in walked)
    """)
    result = run_inner(APP, *ONLY_OWN, examples=[TOOLBOX_APP])
    result.assert_outcomes(passed=1)


@pytest.mark.fresh_python
def test_plugin_installed_and_unused_imports_only_what_registers_its_options(pytester):
    """Every pytest run of a project that has the plugin installed pays for it:
    with no --cadasta-* option or ini key, only the options' and fixtures'
    modules are imported."""
    pytester.copy_example("inner/test_lightweight.py")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_fixture_without_app_says_how_to_give_one(run_inner, pytester):
    pytester.makepyfile(test_needs_app="""
        def test_it(cadasta_app):
            pass
    """)
    result = run_inner()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no app: give --cadasta-app=module:attribute*"])
    # Once in the error's section (the short summary, in full under CI, repeats it).
    section = result.stdout.str().split("short test summary")[0]
    assert section.count("no app: give --cadasta-app") == 1
    assert "During handling of the above exception" not in result.stdout.str()


def test_the_harness_quickens_chord_unlock_and_puts_the_apps_own_setting_back(shared_pg_url):
    from celery import Celery
    from celery.signals import before_task_publish

    from cadasta_toolbox.config import Config
    from pytest_cadasta.apps.wiring import CHORD_UNLOCK_TEST_DELAY
    from pytest_cadasta.running.harness import Harness
    from pytest_cadasta.settings import Settings

    app = Celery("chords", set_as_current=False)
    app.config_from_object(Config())
    unlock = app.tasks["celery.chord_unlock"]
    own = unlock.default_retry_delay
    own_settings = (app.conf.broker_url, app.conf.broker_transport, app.conf.result_backend)

    def published_eta():
        headers = {"eta": "2026-11-24T00:00:01", "retries": 0}
        before_task_publish.send(sender="celery.chord_unlock", headers=headers)
        return headers["eta"]

    harness = Harness(Settings(result_db=shared_pg_url), app)
    try:
        harness.app()
        assert unlock.default_retry_delay == CHORD_UNLOCK_TEST_DELAY != own
        assert published_eta() is None  # chord_unlock's first run is at once
        assert "127.0.0.1" in app.conf.broker_url
    finally:
        harness.close()
    assert unlock.default_retry_delay == own
    assert published_eta() is not None
    assert (app.conf.broker_url, app.conf.broker_transport, app.conf.result_backend) == own_settings


def test_single_task_chords_keep_their_callbacks_and_errbacks(run_inner):
    result = run_inner(APP, *ONLY_OWN,
                       examples=[TOOLBOX_APP, "inner/test_single_task_chords.py"])
    result.assert_outcomes(passed=2)


def test_a_moto_endpoint_given_is_reset_used_and_left_running(run_inner, shared_moto):
    """--cadasta-moto-endpoint: the run empties the server it is given (what an
    earlier run left is gone), puts its queues there, and leaves it running."""
    import boto3

    client = boto3.client("sqs", endpoint_url=shared_moto, region_name="us-west-2",
                          aws_access_key_id="outer", aws_secret_access_key="outer")
    client.create_queue(QueueName="left-by-an-earlier-run")
    result = run_inner(APP, *ONLY_OWN, examples=[TOOLBOX_APP, "inner/test_isolation.py"])
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["cadasta: SQS: moto server on 127.0.0.1:* "
                                 "(--cadasta-moto-endpoint, reset; fake credentials)*"])
    names = [url.rsplit("/", 1)[1] for url in client.list_queues().get("QueueUrls", [])]
    client.close()
    assert "left-by-an-earlier-run" not in names
    assert any(name.startswith("dev-") for name in names)


@pytest.mark.parametrize("endpoint", [
    "http://sqs.us-west-2.amazonaws.com", "https://127.0.0.1:5000", "http://10.0.0.1:5000",
    "http://127.0.0.1", "127.0.0.1:5000"])
def test_a_moto_endpoint_off_this_machine_is_a_usage_error(pytester, endpoint):
    """Refused before anything starts: no moto process for a run that ends in
    its usage error, and AWS pinned to loopback while conftests are imported."""
    pytester.copy_example(TOOLBOX_APP)
    pytester.makeconftest(CONFTEST_SEEING_MOTO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", APP,
                                           f"--cadasta-moto-endpoint={endpoint}",
                                           "--cadasta-result-db=postgresql://u@h/p")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --cadasta-moto-endpoint={endpoint!r}: expected "
                                 "http://127.0.0.1:PORT (or localhost): a moto server on this "
                                 "machine, never AWS"])
    moto_processes, aws = (pytester.path / "seen").read_text().split()
    assert moto_processes == "0"
    assert aws.startswith("http://127.0.0.1:")


#: A conftest writing, as it is imported, how many moto processes the run has
#: started, and where AWS is.
CONFTEST_SEEING_MOTO = """
import os
from pathlib import Path

def _moto_processes():
    found = 0
    for entry in os.listdir("/proc"):
        try:
            stat = Path("/proc", entry, "stat").read_text()
            command = Path("/proc", entry, "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        found += parent == os.getpid() and b"moto_process" in command
    return found

Path("seen").write_text(f"{_moto_processes()} {os.environ.get('AWS_ENDPOINT_URL')}")
"""


def test_a_moto_endpoint_with_xdist_is_a_usage_error_and_is_left_as_it_was(pytester,
                                                                            shared_moto):
    """Each xdist worker would reset the one server and read the others'
    queues (the platform hearing copies twice, or never): refused, before
    anything touched the server."""
    import boto3

    client = boto3.client("sqs", endpoint_url=shared_moto, region_name="us-west-2",
                          aws_access_key_id="outer", aws_secret_access_key="outer")
    client.create_queue(QueueName="kept-by-another-run")
    before = client.list_queues().get("QueueUrls", [])
    pytester.copy_example(TOOLBOX_APP)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", APP,
                                           "-n", "2", f"--cadasta-moto-endpoint={shared_moto}")
    after = client.list_queues().get("QueueUrls", [])
    client.close()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: --cadasta-moto-endpoint={shared_moto!r}: one run at a time on a moto "
        "server (each resets it as it starts), and -n 2 makes a run per xdist worker; *"])
    assert after == before and any(url.endswith("/kept-by-another-run") for url in after)
