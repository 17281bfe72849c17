"""A whole system in one run: several workers and the platform, one broker, one
result database, each app judged as alone and the system's checks across them.
The sample system lives in tests/examples/system: a platform and two workers
right, and apps wrong in one way each."""

import json
import sys

import pytest

from pytest_cadasta.basics.ids import SYSTEM
from pytest_cadasta.checks import all_checks, iter_checks, system_checks


class _Loaded:
    """What system_checks() reads of an app."""

    def __init__(self, is_worker):
        self.entry = type("Entry", (), {"is_worker": is_worker})()


QUEUES = ("celery", "export", "msg", "report")
PER_APP = len(list(iter_checks(QUEUES)))
WORKER_ONLY = sum(1 for check, _ in iter_checks(QUEUES) if not check.applies_to_producer)
#: The system checks of two workers and a producer: all of them.
SYSTEM_CHECKS = [check.name for check in system_checks(
    [_Loaded(True), _Loaded(True), _Loaded(False)])]
EXPORT = "--cadasta-queues=export_worker=export,celery"
MSG = "--cadasta-queues=msg_worker=msg,celery"
SYSTEM_APPS = ("--cadasta-app=export_worker", "--cadasta-app=msg_worker",
               "--cadasta-producer=platform_app", EXPORT, MSG)


def names(checks):
    return [check.name for check in checks]


def system_ids(result):
    return sorted(line.split()[1].split("::")[-1] for line in result.stdout.lines
                  if line.startswith(("FAILED cadasta::system::", "ERROR cadasta::system::")))


def test_every_system_check_has_its_place():
    """Two workers and a producer: every system check applies; one worker and
    no producer: neither of the two that need them."""
    every = names(system_checks([_Loaded(True), _Loaded(True), _Loaded(False)]))
    assert every == [
        "apps_agree_on_exchange_queues_and_region",
        "every_app_writes_results_where_the_platform_reads_them",
        "every_queue_has_exactly_one_consumer", "no_task_name_has_two_routes",
        "followups_and_errbacks_cross_workers", "producer_tasks_reach_a_worker"]
    assert names(system_checks([_Loaded(True), _Loaded(True)])) == every[:5]
    assert names(system_checks([_Loaded(True), _Loaded(False)])) == every[:4] + every[5:]
    assert not set(every) & set(names(all_checks()))


@pytest.mark.slow
def test_a_right_system_conforms_with_each_app_judged_and_the_users_tests_using_every_app(
        run_inner, pytester):
    pytester.makepyfile(test_deployment="""
        def test_the_platform_sends_and_the_export_worker_answers(cadasta_apps, cadasta_workers):
            assert sorted(cadasta_apps) == ["export_worker", "msg_worker", "platform_app"]
            assert sorted(cadasta_workers) == ["export_worker", "msg_worker"]
            result = cadasta_apps["platform_app"].send_task("export.project", args=(21,))
            assert result.get(timeout=60) == 42

        def test_cadasta_app_is_the_first_worker(cadasta_app, cadasta_worker):
            assert cadasta_app.main == "export_worker"
            assert cadasta_worker.queues == ["export", "celery"]
    """)
    result = run_inner(*SYSTEM_APPS, "--cadasta-report=report.json", "-v",
                       examples=["system"])
    total = 3 * PER_APP + len(SYSTEM_CHECKS)
    result.assert_outcomes(passed=total - WORKER_ONLY + 2, skipped=WORKER_ONLY)
    result.stdout.fnmatch_lines([
        "cadasta: a system of 3 apps, one broker, one result database",
        "cadasta: export_worker: export_worker (export_worker), worker consuming export, "
        "celery (-Q export,celery, --cadasta-queues); *",
        "cadasta: msg_worker: msg_worker (msg_worker), worker consuming msg, celery *",
        "cadasta: platform_app: platform_app (platform), producer; *",
    ])
    result.stdout.fnmatch_lines([
        "cadasta::export_worker::exchange::* PASSED*",
        "cadasta::msg_worker::exchange::* PASSED*",
        "cadasta::platform_app::exchange::* PASSED*",
        *(f"cadasta::system::{name} PASSED*" for name in SYSTEM_CHECKS),
        "test_deployment.py::test_the_platform_sends_and_the_export_worker_answers PASSED*",
    ])
    result.stdout.fnmatch_lines([
        "*= cadasta conformance =*", "export_worker: conforms", "*", "msg_worker: conforms",
        "*", "platform_app: conforms as a producer", "*", "system: conforms",
        f"  system    {len(SYSTEM_CHECKS)} passed", "verdict: the system conforms (3 apps)"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["verdict"]["kind"] == "conforms"
    assert {label: app["verdict"]["kind"] for label, app in report["apps"].items()} == {
        "export_worker": "conforms", "msg_worker": "conforms",
        "platform_app": "conforms-as-producer"}
    assert report["apps"]["msg_worker"]["queues"]["consumed"] == ["msg", "celery"]


#: A sample wrong in one way -> (the apps, the system checks it fails). The two
#: checks that send tasks across apps fail with the check of what the apps
#: disagree on: on SQS, only a disagreement sends a task where nobody reads.
WRONG = {
    "a worker's QUEUES lists a queue the others lack": (
        ("--cadasta-app=msg_worker_other_queues", "--cadasta-queues=msg_worker_other_queues="
         "msg,celery"), ["apps_agree_on_exchange_queues_and_region"]),
    "the platform registers a task for a queue no worker consumes": (
        ("--cadasta-app=msg_worker", MSG, "--cadasta-producer=platform_reports"),
        ["every_queue_has_exactly_one_consumer"]),
    "the platform routes a worker's task elsewhere": (
        ("--cadasta-app=msg_worker", MSG, "--cadasta-producer=platform_own_route"),
        ["no_task_name_has_two_routes"]),
    "a worker's SQS queues carry another prefix": (
        ("--cadasta-app=msg_worker_staging", "--cadasta-queues=msg_worker_staging=msg,celery"),
        ["apps_agree_on_exchange_queues_and_region", "followups_and_errbacks_cross_workers"]),
    "a worker writes its results to a database of its own": (
        ("--cadasta-app=msg_worker_other_db", "--cadasta-queues=msg_worker_other_db=msg,celery"),
        ["every_app_writes_results_where_the_platform_reads_them"]),
    "the platform's SQS queues carry another prefix": (
        ("--cadasta-app=msg_worker", MSG, "--cadasta-producer=platform_staging"),
        ["apps_agree_on_exchange_queues_and_region", "producer_tasks_reach_a_worker"]),
}


@pytest.mark.parametrize("defect", list(WRONG))
def test_each_wrong_system_fails_its_own_system_checks_saying_why(run_inner, defect):
    apps, failing = WRONG[defect]
    result = run_inner("--cadasta-app=export_worker", EXPORT, *apps, "-k", SYSTEM,
                       examples=["system"])
    assert system_ids(result) == sorted(failing)
    result.stdout.fnmatch_lines(["*saw: *", "*needs: *", "*fix: *"])
    result.stdout.fnmatch_lines([f"system: does not conform: {len(failing)} check*failed"])


@pytest.mark.slow
def test_the_apps_of_a_wrong_system_still_conform_each_alone(run_inner):
    """The wrong samples are wrong only as a system: each app's own checks pass."""
    result = run_inner("--cadasta-app=export_worker", EXPORT,
                       "--cadasta-app=msg_worker_other_queues",
                       "--cadasta-queues=msg_worker_other_queues=msg,celery",
                       "--cadasta-producer=platform_own_route", "-k", "not system",
                       examples=["system"])
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["export_worker: conforms", "*",
                                 "msg_worker_other_queues: conforms", "*",
                                 "platform_own_route: conforms as a producer"])


def test_a_queue_consumed_outside_the_run_is_named_and_then_needs_no_consumer(run_inner):
    result = run_inner("--cadasta-app=export_worker", EXPORT, "--cadasta-app=msg_worker", MSG,
                       "--cadasta-producer=platform_reports", "--cadasta-external-queues=report",
                       "-k", SYSTEM, examples=["system"])
    assert system_ids(result) == []
    result.stdout.fnmatch_lines(["cadasta: consumed outside the run: report",
                                 "system: conforms"])


def test_the_ini_file_names_the_apps_one_per_line(pytester):
    pytester.copy_example("system")
    pytester.makeini("""
        [pytest]
        cadasta_app =
            export_worker
            msg_worker
        cadasta_producer = platform_app
        cadasta_queues =
            export_worker=export,celery
            msg_worker=msg,celery
        cadasta_result_db = postgresql://u@h/p
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "cadasta::export_worker::exchange::*", "cadasta::msg_worker::exchange::*",
        "cadasta::platform_app::exchange::*",
        *(f"cadasta::system::{name}" for name in SYSTEM_CHECKS)])
    assert result.ret == 0


@pytest.mark.parametrize(("args", "message"), [
    (("--cadasta-app=export_worker", "--cadasta-app=msg_worker", "--cadasta-queues=export"),
     "--cadasta-queues='export': with several apps, name the worker whose queues these are: "
     "LABEL=QUEUES (labels: export_worker, msg_worker)"),
    (("--cadasta-app=export_worker", "--cadasta-queues=msg_worker=msg"),
     "--cadasta-queues='msg_worker=msg': no app labelled 'msg_worker' (labels: export_worker)"),
    (("--cadasta-app=export_worker", "--cadasta-producer=platform_app",
      "--cadasta-queues=platform_app=export"),
     "--cadasta-queues='platform_app=export': 'platform_app' only produces; it consumes "
     "no queue"),
    (("--cadasta-app=export_worker", "--cadasta-queues=export_worker=export",
      "--cadasta-queues=export_worker=celery"),
     "--cadasta-queues: the queues of 'export_worker' given twice"),
    (("--cadasta-app=export_worker", "--cadasta-producer=export_worker"),
     "export_worker: the same app given twice; give each app once"),
    (("--cadasta-app=export_worker", "--cadasta-app=msg_worker", "--cadasta-producer-only"),
     "--cadasta-producer-only makes the one app of --cadasta-app a producer; with several "
     "apps, name those that only produce with --cadasta-producer instead"),
    (("--cadasta-app=export_worker", "--cadasta-producer=platform_app:nope"),
     "--cadasta-producer='platform_app:nope': module 'platform_app' has no attribute 'nope'*"),
])
def test_each_wrong_spelling_of_several_apps_is_a_usage_error(pytester, args, message):
    pytester.copy_example("system")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", *args,
                                           "--cadasta-result-db=postgresql://u@h/p")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()


def test_labels_fall_back_to_the_module_path_where_two_apps_share_a_first_segment():
    from pytest_cadasta.settings import _labels

    assert _labels(["export_worker", "msg_worker.celery:app"]) == ["export_worker", "msg_worker"]
    assert _labels(["proj.export", "proj.msg:app", "platform"]) == [
        "proj.export", "proj.msg", "platform"]
    assert _labels(["proj.celery:export", "proj.celery:msg"]) == [
        "proj.celery.export", "proj.celery.msg"]
    assert _labels(["system.celery"]) == ["system"]  # one app: no system checks
    assert _labels(["system.celery", "export_worker"]) == ["system.celery", "export_worker"]


def test_two_apps_with_one_label_are_a_usage_error(pytester):
    pytester.copy_example("system")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--collect-only", "--cadasta-app=export_worker",
        "--cadasta-app=export_worker:app", "--cadasta-app=export_worker.app",
        "--cadasta-result-db=postgresql://u@h/p")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: export_worker:app, export_worker.app: labelled "
                                 "'export_worker.app', like another app; *"])


def test_stopping_one_apps_worker_leaves_the_others_running(shared_pg_url, monkeypatch):
    """Celery's own test worker stops through a flag every worker of the process
    obeys; an app's worker stopping between apps must not stop another's."""
    from contextlib import ExitStack
    from pathlib import Path

    from pytest_cadasta.apps.loader import load_apps
    from pytest_cadasta.running.run import Run
    from pytest_cadasta.services.sqs import local_aws
    from pytest_cadasta.settings import AppEntry, Settings

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "examples" / "system"))
    for name in ("system_base", "export_worker", "msg_worker"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    entries = (AppEntry("export_worker", "export_worker", queues=("export", "celery")),
               AppEntry("msg_worker", "msg_worker", queues=("msg", "celery")))
    settings = Settings(apps=entries, result_db=shared_pg_url)
    with local_aws() as server, ExitStack() as stack:
        run = Run(settings, load_apps(settings, Path.cwd(), stack), server)
        try:
            for _ in range(12):  # the old way stopped the other about one time in 8
                other = run.harness("msg_worker").worker()
                run.harness("export_worker").worker()
                run.harness("export_worker").stop_worker()
                assert other.call(lambda: "alive") == "alive"
        finally:
            run.close()


@pytest.mark.slow
def test_with_xdist_the_apps_are_spread_and_the_system_checks_run_once(run_inner, pytester):
    """-n 2: each app's checks run together on one xdist worker, the system's
    checks once; the controlling process gives the verdict and writes the report
    and the JUnit properties once."""
    result = run_inner(*SYSTEM_APPS, "-n", "2", "-v", "--cadasta-report=report.json",
                       "--junitxml=junit.xml", examples=["system"])
    total = 3 * PER_APP + len(SYSTEM_CHECKS)
    result.assert_outcomes(passed=total - WORKER_ONLY, skipped=WORKER_ONLY)
    where: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        if line.startswith("[gw") and " cadasta::" in line:
            gw = line.split("]")[0][1:]
            where.setdefault(line.split(" cadasta::")[1].split("::")[0], set()).add(gw)
    assert sorted(where) == ["export_worker", "msg_worker", "platform_app", "system"]
    assert all(len(gws) == 1 for gws in where.values()), where
    assert len(set().union(*where.values())) == 2
    ran = [line for line in result.stdout.lines if "PASSED cadasta::system::" in line]
    assert len(ran) == len(SYSTEM_CHECKS)
    result.stdout.fnmatch_lines(["system: conforms", "*",
                                 "verdict: the system conforms (3 apps)"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["verdict"]["kind"] == "conforms"
    assert len(report["checks"]) == total
    assert all(check["outcome"] != "not run" for check in report["checks"])
    # What only the xdist workers knew reached the report.
    assert report["versions"]["postgresql"]
    assert all(check["duration"] is not None for check in report["checks"])
    assert 'name="cadasta_verdict" value="conforms"' in (pytester.path / "junit.xml").read_text()


@pytest.mark.slow
def test_two_runs_at_once_each_with_xdist_are_each_judged_right(pytester, open_tmpdir,
                                                                tmp_path, left_nothing):
    """A CI machine running two jobs at once, a developer running the suite
    while another runs: two runs, each -n 2, same user, same temporary
    directory, one template cache (empty: both build it at once). Neither
    stops, removes or reads what is the other's: both verdicts are right."""
    import os
    import subprocess

    pytester.copy_example("system")
    env = {**os.environ, "TMPDIR": open_tmpdir,
           "PYTEST_CADASTA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    runs = []
    for name in ("first", "second"):
        with (pytester.path / f"{name}.log").open("w") as log:
            runs.append(subprocess.Popen(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "xdist",
                 *SYSTEM_APPS, "-n", "2"], cwd=pytester.path, env=env, stdout=log,
                stderr=subprocess.STDOUT))
    try:
        codes = [run.wait(240) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    for name, code in zip(("first", "second"), codes):
        out = (pytester.path / f"{name}.log").read_text()
        assert code == 0, out[-3000:]
        assert "verdict: the system conforms (3 apps)" in out
        assert "went away" not in out
    left_nothing()


def test_each_app_registers_what_celery_a_would_register_in_its_own_process(run_inner, pytester):
    """Celery adds an @app.task of one app to every app of the process; each app
    here has what 'celery -A' would register: its own modules' tasks and those of
    the modules it imports (a library both import gives both its tasks), no other
    app's."""
    pytester.copy_example("system/system_base.py")
    pytester.makepyfile(
        mailer="""
            from celery import shared_task

            @shared_task(name="mail.send")
            def send(to):
                return to
        """,
        first_worker="""
            import mailer  # noqa: F401
            from system_base import make_app

            app = make_app("first_worker")

            @app.task(name="export.first")
            def first():
                return 1
        """,
        second_worker="""
            import mailer  # noqa: F401
            from system_base import make_app

            app = make_app("second_worker")

            @app.task(name="msg.second")
            def second():
                return 2
        """,
        test_registered="""
            def test_registered(cadasta_apps):
                own = {label: sorted(n for n in app.tasks if not n.startswith("celery.")
                                     and "cadasta_" not in n)
                       for label, app in cadasta_apps.items()}
                assert own == {"first_worker": ["export.first", "mail.send"],
                               "second_worker": ["mail.send", "msg.second"]}
        """)
    result = run_inner("--cadasta-app=first_worker", "--cadasta-app=second_worker",
                       "-m", "not cadasta", "test_registered.py")
    result.assert_outcomes(passed=1)
