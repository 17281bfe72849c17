"""The conformance suite as users run it: right apps pass, each wrong app fails
the group that guards against its defect, saying why and what to change."""

import json
import shutil
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pytest_cadasta.checks import GROUPS, iter_checks

EXAMPLE_WORKER = Path(__file__).parents[2] / "examples" / "worker"
#: The checks an app with the toolbox's default queues gets, in running order.
CHECKS = list(iter_checks(("celery", "msg", "export")))
ALL = len(CHECKS)
WORKER = sum(1 for check, _ in CHECKS if not check.applies_to_producer)
EXAMPLE_WORKER_OWN_TESTS = 3


def group_lines(outcome="passed"):
    """The summary's line per group when every check had ``outcome``."""
    counts = {group: sum(1 for check, _ in CHECKS if check.group == group)
              for group in GROUPS}
    return [f"{group:<9} {count} {outcome}" for group, count in counts.items()]


def test_the_registry_runs_each_group_together_and_worker_checks_last_within_it():
    groups = [check.group for check, _ in CHECKS]
    assert [g for i, g in enumerate(groups) if i == 0 or groups[i - 1] != g] == list(GROUPS)
    for group in GROUPS:
        phases = [check.phase for check, _ in CHECKS if check.group == group]
        assert phases == sorted(phases), group


def summary_lines(result):
    out = result.stdout.str()
    return out[out.index("cadasta conformance"):].splitlines()[1:]


@pytest.mark.parametrize("app", ["toolbox_app", "handwritten_ok", "pickle_serializer",
                                 "compressed", "predefined"])
def test_a_conforming_app_passes_every_check_in_an_empty_directory(run_inner, pytester, app):
    pytester.copy_example(f"apps/{app}.py")
    pytester.copy_example("apps/handwritten.py")
    result = run_inner(f"--cadasta-app={app}:app")
    result.assert_outcomes(passed=ALL)
    result.stdout.fnmatch_lines(["*= cadasta conformance =*", *group_lines(),
                                 "verdict: conforms"])


def test_the_example_worker_conforms_and_its_own_tests_pass(run_inner, pytester):
    shutil.copytree(EXAMPLE_WORKER, pytester.path, dirs_exist_ok=True)
    result = run_inner("--cadasta-app=worker.celery:app")
    result.assert_outcomes(passed=ALL + EXAMPLE_WORKER_OWN_TESTS)
    result.stdout.fnmatch_lines(["cadasta *", "tests/test_worker.py ...*", "verdict: conforms"])


def test_producer_only_skips_the_worker_checks_saying_why(run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "--cadasta-producer-only", "-rs")
    result.assert_outcomes(passed=ALL - WORKER, skipped=WORKER)
    result.stdout.fnmatch_lines([
        group_lines("skipped")[GROUPS.index("chord")],
        f"verdict: conforms as a producer; {WORKER} checks of a worker do not "
        "apply",
        f"SKIPPED [[]{WORKER}] cadasta: --cadasta-producer-only: the app runs no worker"])


FAILURES = {
    "direct_exchange": (["exchange", "monitor"], [
        "*saw:   the default exchange 'tasks' is a 'direct' exchange*",
        "*saw:   platform.fifo received 0 messages of 1; export received 1 message*",
        "*fix:   task_default_exchange_type = 'topic'*"]),
    "no_monitor_queue": (["monitor"], [
        "*saw:   no queue 'platform.fifo' among the app's queues (celery, export, msg)",
        "*fix:   task_queues += [[]Queue('platform.fifo', *routing_key='#')]*"]),
    "monitor_wrong_key": (["monitor"], [
        "*saw:   'platform.fifo' is bound to exchange 'tasks' with key 'platform'",
        "*needs: 'platform.fifo' bound to the default exchange 'tasks' with '#'*"]),
    "no_router": (["routing"], [
        "*saw:   'export.cadasta_any_task' goes to exchange 'tasks' with routing key "
        "'celery' (queue 'celery'); 'msg.cadasta_any_task' goes to*",
        "*fix:   task_routes = *"]),
    "unroutable_task": (["routing"], [
        "*saw:   task 'report.generate' -> 'report': no such queue in this app "
        "(its queues: celery, export, msg)",
        "*fix:   add the queue to QUEUES*"]),
    "eats_monitor": (["monitor"], [
        "*saw:   'celery worker' started as in production (no -Q) consumes celery, export, "
        "msg, platform.fifo",
        "*fix:   start the worker with -Q naming its work queues*"]),
    "forgot_imports": (["routing"], [
        "*saw:   the app registers no tasks of its own once its task modules are imported "
        "as 'celery worker' imports them (imports/include: none)",
        "*fix:   imports = ('app.tasks',) (or include=[[]...]) naming the modules*"]),
    "no_tasks": (["routing"], [
        "*saw:   the app registers no tasks of its own once its task modules are imported "
        "as 'celery worker' imports them (imports/include: none)"]),
    "redis_backend": (["result"], [
        "*saw:   result_backend = 'redis://:**@cache.internal:6379/0'",
        "*fix:   result_backend = 'db+postgresql://*"]),
    "forgetful_router": (["monitor", "chord"], [
        "*saw:   platform.fifo received 0 messages of 1; export received 1 message*",
        "*fix:   make the router return 'declare': *",
        "*saw:   celery.chord_unlock was published with routing key 'celery' and reached "
        "no queue*"]),
    # The platform's own rules (its sync-tasks, its Task and Result tables).
    "result_extended": (["result", "platform"], [
        "*saw:   result_extended = True: Celery writes name, args, kwargs, worker, retries, "
        "queue*to celery_taskmeta, columns the platform's Result table does not have*",
        "*fix:   result_extended = False (Celery's default)*"]),
    "ignores_a_result": (["platform"], [
        "*saw:   1 of the worker's tasks store no result (ignore_result=True): 'msg.email'",
        "*fix:   remove ignore_result=True from those tasks"]),
    "long_task_name": (["platform"], [
        "*saw:   task names longer than 128 characters: 'export.project_with_every_layer_and"
        "_ever'... (159 characters)",
        "*fix:   rename those tasks within 128 characters"]),
    "yaml_serializer": (["monitor", "chord", "platform"], [
        "*saw:   the monitor's copy has body content type 'application/x-yaml' is neither "
        "json nor pickle",
        "*saw:   EncodeError: *",
        "*its body is 'application/x-yaml', which the platform's consumer does not accept*",
        "*fix:   task_serializer = 'json' (Celery's default) or 'pickle', the two the "
        "platform's sync-tasks accepts*"]),
    "task_in_yaml": (["platform"], [
        "*saw:   tasks sent in what sync-tasks cannot decode: 'msg.email' (serializer "
        "'yaml')",
        "*fix:   task_serializer = 'json' (Celery's default) or 'pickle'*; drop serializer= "
        "from those tasks*"]),
    # What real SQS does that moto forgives: order only within a message group.
    "split_groups": (["monitor"], [
        "*saw:   * copies on platform.fifo in another message group than their family's: "
        "'*' (*) in group '*', its parent (*) in group 'export.*'*",
        "*fix:   no MessageGroupId of the app's own in its routes or apply_async calls*"],
        "each_task_family"),
    "own_results_schema": (["result"], [
        "*saw:   database_table_schemas = {'task': 'worker_results', 'group': "
        "'worker_results'}: results go to worker_results.celery_taskmeta",
        "*fix:   remove database_table_schemas"], "backend_is_postgresql"),
    # A hand-written router is told what to change in it.
    "declares_only_the_monitor": (["monitor"], [
        "*saw:   platform.fifo received 1 message of 1; export received 0 messages*",
        "*fix:   make the router's 'declare' name the task's queue too: [[]Queue('export', "
        "Exchange('tasks', type='topic'), routing_key='export'), <the platform.fifo queue>] "
        "(it declares platform.fifo)"], "lands"),
    "retries_beyond_visibility": (["routing"], [
        "*saw:   'export.project' retries after 600 s (default_retry_delay); the visibility "
        "timeout is 300 s (broker_transport_options 'visibility_timeout')",
        "*fix:   broker_transport_options 'visibility_timeout' above the longest delay*"]),
    # Least privilege on SQS: the queues kombu may use are the ones it names.
    "predefined_no_monitor": (["monitor"], [
        "*saw:   queue 'platform.fifo' (SQS name 'dev-platform.fifo') is not in the app's "
        "broker_transport_options[[]'predefined_queues'] (kombu raises "
        "UndefinedQueueException for it)",
        "*fix:   add 'dev-platform.fifo': {'url': 'https://sqs.us-west-2.amazonaws.com/"
        "210987654321/dev-platform.fifo'} to broker_transport_options[[]'predefined_queues']"]),
    # The errback is the chord group's (it passes): the platform loses it.
    "orphaned_errbacks": (["platform"], [
        "*saw:   of * tasks the checks sent, the platform did not record 1 as sent: "
        "'cadasta_elsewhere.cadasta_probe_errback' (*): its parent * was never recorded*",
        "*fix:   a failed chord's errbacks go out as children of its body*"], "chord or platform"),
}


@pytest.mark.parametrize("app", sorted(FAILURES))
def test_each_defect_fails_its_group_and_says_why(run_inner, pytester, app):
    groups, messages, *select = FAILURES[app]
    pytester.copy_example("apps/handwritten.py")
    pytester.copy_example(f"apps/{app}.py")
    if app == "forgot_imports":
        pytester.copy_example("apps/forgot_imports_tasks.py")
    result = run_inner(f"--cadasta-app={app}:app", "-k", select[0] if select
                       else " or ".join(groups))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(messages, consecutive=False)
    lines = summary_lines(result)
    for group in groups:
        assert any(line.startswith(group) and "failed" in line for line in lines), lines
    assert any(line.startswith("verdict: does not conform: ") for line in lines), lines
    password = {"redis_backend": "s3cret", "forgot_imports": "cadasta:cadasta@"}.get(
        app, "hw-pass-7c1")
    assert password not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str()
    assert "--full-trace" not in result.stdout.str()


ODD_NAMES = {
    "odd_task_names": (2, [
        "*saw:   task 'cleanup' -> 'cleanup', '导出.任务' -> '导出': no such queue in this app "
        "(its queues: celery, msg, export)",
        "*fix:   add the queue to QUEUES (Config(QUEUES=(...))) or rename the task under an "
        "existing prefix; '导出' cannot name an SQS queue (ASCII letters, digits, '-' and "
        "'_' only): rename those tasks"]),
    "non_ascii_queue": (1, [
        "*saw:   queue '导出' is SQS queue 'dev-导出', a name SQS refuses (ASCII letters, "
        "digits, '-' and '_' only, at most 80 characters)",
        "*fix:   rename '导出' in QUEUES (or task_queues) with ASCII letters, digits, '-' or "
        "'_', and the tasks it takes by prefix"]),
}


@pytest.mark.parametrize("app", sorted(ODD_NAMES))
def test_task_and_queue_names_routing_by_prefix_cannot_serve_are_named(run_inner, pytester,
                                                                        app):
    """A name without a dot routes by the whole name; an accented one
    ('export.résumé') like any other; a prefix or queue no SQS queue can be
    named after fails its own check, and only that one."""
    failed, messages = ODD_NAMES[app]
    pytester.copy_example(f"apps/{app}.py")
    result = run_inner(f"--cadasta-app={app}:app")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=failed, passed=ALL - failed)  # three work queues each
    result.stdout.fnmatch_lines([*messages, f"verdict: does not conform: {failed} check*"],
                                consecutive=False)
    assert "résumé" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_the_header_says_how_least_privilege_sqs_is_run(run_inner, pytester):
    pytester.copy_example("apps/predefined.py")
    result = run_inner("--cadasta-app=predefined:app", "--collect-only")
    result.stdout.fnmatch_lines([
        "cadasta: the app's predefined_queues: made on the moto server under the names "
        "their URLs give, and reached at those URLs*",
        "cadasta: the app's sts_role_arn (arn:aws:iam::210987654321:role/cadasta-worker): "
        "not assumed in the run (moto's SQS takes any credentials; no STS call leaves the "
        "machine); --cadasta-audit assumes it as kombu would"])


def test_a_worker_whose_queue_is_not_predefined_is_decided_once_at_once(run_inner, pytester):
    """kombu refuses a queue predefined_queues lacks, and a worker consuming it
    never starts (its consumer raises and restarts for ever): each check and
    fixture that needs it errors at once with why, none waits for it."""
    pytester.makepyfile(no_export=(
        (Path(__file__).parents[1] / "examples/apps/predefined.py").read_text()
        .replace('"dev-export", ', "")))
    pytester.makepyfile(test_own="def test_it(cadasta_worker):\n    pass\n")
    result = run_inner("--cadasta-app=no_export:app", "--cadasta-queues=export",
                       "-k", "result or test_it")
    why = ("no worker can consume a queue kombu refuses: queue 'export' (SQS name "
           "'dev-export') is not in the app's broker_transport_options[[]"
           "'predefined_queues'] (kombu raises UndefinedQueueException for it)")
    result.stdout.fnmatch_lines([f"pytest-cadasta could not start the worker: {why}",
                                 f"pytest-cadasta could not provide the worker: {why}"],
                                consecutive=False)
    assert "did not start within" not in result.stdout.str()


def test_the_worker_fixture_says_it_cannot_consume_a_queue_sqs_refuses(run_inner, pytester):
    pytester.copy_example("apps/non_ascii_queue.py")
    pytester.makepyfile(test_own="def test_it(cadasta_worker):\n    pass\n")
    result = run_inner("--cadasta-app=non_ascii_queue:app", "-m", "not cadasta")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "pytest-cadasta could not provide the worker: no worker can consume what SQS cannot "
        "create: queue '导出' is SQS queue 'dev-导出', a name SQS refuses*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_two_hundred_queues_conform(run_inner, pytester):
    """The benchmark's generated worker, 200 work queues and a task in each:
    every per-queue check runs, and the verdict is the same as for three."""
    shutil.copy(Path(__file__).parents[2] / "benchmarks" / "samples" / "genapp.py",
                pytester.path)
    checks = list(iter_checks(("celery", *(f"q{n}" for n in range(200)))))
    monitor = sum(1 for check, _ in checks if check.group == "monitor")
    result = run_inner("--cadasta-app=genapp:app",
                       env={"CADASTA_BENCH_QUEUES": "200", "CADASTA_BENCH_TASKS": "200"})
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=len(checks))
    result.stdout.fnmatch_lines([f"monitor   {monitor} passed", "verdict: conforms"])


def test_checks_are_items_with_group_ids_and_the_cadasta_marker(run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if line.startswith("cadasta::")]
    assert ids == [f"cadasta::{check.group}::{check.name}" + (f"[{queue}]" if queue else "")
                   for check, queue in CHECKS]
    assert "cadasta::monitor::task_lands_once_in_its_queue_and_once_in_the_monitor[export]" in ids
    result.stdout.fnmatch_lines([f"{ALL} tests collected*"])


def test_collect_only_shows_each_group_once(run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "--collect-only")
    for group in GROUPS:
        assert result.stdout.str().count(f"<CheckNode {group}>") == 1, group


def test_checks_run_once_beside_the_users_tests_with_several_paths(run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    for sub in ("a", "b"):
        pytester.mkpydir(sub)
        (pytester.path / sub / f"test_{sub}.py").write_text("def test_it():\n    pass\n")
    result = run_inner("--cadasta-app=toolbox_app:app", "a", "b", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["a/test_a.py::test_it", "b/test_b.py::test_it",
                                 f"{ALL + 2} tests collected*"])
    assert result.stdout.str().count("cadasta::exchange::default_exchange_is_topic") == 1


ROUTING = sum(1 for check, _ in CHECKS if check.group == "routing")


@pytest.mark.parametrize(("selection", "expected"), [
    (["-k", "routing"], f"{ROUTING}/{ALL} tests collected ({ALL - ROUTING} deselected)*"),
    (["-m", "cadasta"], f"{ALL} tests collected*"),
    (["-m", "not cadasta"], f"no tests collected ({ALL} deselected)*"),
    (["-k", "chord_unlock"], f"1/{ALL} tests collected ({ALL - 1} deselected)*"),
])
def test_checks_are_selectable(run_inner, pytester, selection, expected):
    pytester.copy_example("apps/toolbox_app.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "--collect-only", "-q", *selection)
    result.stdout.fnmatch_lines([expected])


@pytest.mark.parametrize(("is_worker", "expected"),
                         [(True, "OK"), (False, f"OK (skipped={WORKER})")])
def test_unittest_flavour_runs_the_same_checks(pytester, shared_pg_url, is_worker, expected):
    pytester.copy_example("apps/toolbox_app.py")
    pytester.makepyfile(test_functional=f"""
        from pytest_cadasta import build_functional_tests
        from toolbox_app import app

        CadastaChecks = build_functional_tests(app, is_worker={is_worker})
    """)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CADASTA_RESULT_DB", shared_pg_url)
        result = pytester.run(sys.executable, "-m", "unittest", "-v", "test_functional",
                              timeout=240)
    assert result.ret == 0, result.stderr.str()
    result.stderr.fnmatch_lines([
        "test_01_exchange_default_exchange_is_topic (*",
        "Without a topic exchange the monitor queue's '#' binding matches nothing*... ok",
        f"Ran {ALL} tests in *", expected])
    assert "DeprecationWarning" not in result.stderr.str()


@pytest.fixture
def result_db_urls(shared_pg_url):
    """--cadasta-result-db values that cannot work, with the line that says why:
    on the shared server, a role given the wrong password, and roles lacking
    CREATEDB or CREATEROLE (made here, dropped after)."""
    import psycopg

    server = urlsplit(shared_pg_url)
    roles = {"cadasta_t_pw": "CREATEDB CREATEROLE", "cadasta_t_nodb": "CREATEROLE",
             "cadasta_t_norole": "CREATEDB"}
    where = f"{server.hostname}:{server.port}"
    with psycopg.connect(shared_pg_url, autocommit=True) as admin:
        for role, rights in roles.items():
            admin.execute(f"CREATE ROLE {role} LOGIN {rights} PASSWORD 'pw-9f3e'")
        yield {
            "refused": ("postgresql://admin:pw-9f3e@127.0.0.1:1/postgres",
                        "on 127.0.0.1:1 as 'admin': Connection refused; is PostgreSQL "
                        "running there, accepting TCP/IP connections? Check the host and "
                        "port in --cadasta-result-db (or leave it out: the plugin starts a "
                        "PostgreSQL of its own)"),
            "wrong password": (f"postgresql://cadasta_t_pw:pw-wrong-9f3e@{where}/postgres",
                               f"on {where} as 'cadasta_t_pw': password authentication "
                               "failed for user \"cadasta_t_pw\"; check the user and "
                               "password in --cadasta-result-db"),
            "no createdb": (f"postgresql://cadasta_t_nodb:pw-9f3e@{where}/postgres",
                            f"on {where} as 'cadasta_t_nodb': permission denied to create "
                            "database; the role needs CREATEDB and CREATEROLE (as a "
                            "superuser: ALTER ROLE cadasta_t_nodb CREATEDB CREATEROLE), or "
                            "name a role that has them in --cadasta-result-db"),
            "no createrole": (f"postgresql://cadasta_t_norole:pw-9f3e@{where}/postgres",
                              f"on {where} as 'cadasta_t_norole': permission denied to "
                              "create role; the role needs CREATEDB and CREATEROLE*"),
        }
        for role in roles:
            admin.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("case", ["refused", "wrong password", "no createdb", "no createrole"])
def test_a_result_database_that_cannot_be_used_is_an_error_not_a_verdict(
        pytester, result_db_urls, case):
    url, why = result_db_urls[case]
    pytester.copy_example("apps/toolbox_app.py")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--cadasta-app=toolbox_app:app", "-k", "result and not platform",
        f"--cadasta-result-db={url}", timeout=120)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # The check of the settings needs no database; the three that run tasks do.
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines([
        f"pytest-cadasta could not start the worker: could not create the result "
        f"database {why}",
        "result    1 passed, 3 error",
        "verdict: not judged: 3 checks could not run (see the errors above)"],
        consecutive=False)
    output = result.stdout.str() + result.stderr.str()
    assert "pw-9f3e" not in output and "pw-wrong" not in output
    assert "Traceback" not in output and "During handling" not in output


def test_a_failing_check_ends_when_the_failure_is_known_not_after_a_timeout(run_inner, pytester):
    """A chord_unlock routed nowhere is known as it is published, and a follow-up
    missing from the monitor as the probe ends: no check waits for what cannot
    come. The checks' safety net is an hour here: a check that waited for it
    would hang the run, however fast the machine. (bench.py has the times.)"""
    pytester.copy_example("apps/handwritten.py")
    pytester.copy_example("apps/forgetful_router.py")
    pytester.copy_example("inner_faults/conftest.py")
    result = run_inner("--cadasta-app=forgetful_router:app",
                       "-k", "chord_completes or followups or errback_for",
                       env={"ROUND_TRIP_TIMEOUT": "3600"}, timeout=600)
    result.assert_outcomes(failed=3, deselected=ALL - 3)


def test_a_selection_is_not_a_verdict_and_says_how_many_ran(run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "-k", "routing")
    result.stdout.fnmatch_lines([
        f"verdict: not judged as a whole: {ROUTING} of {ALL} checks ran, and passed; run them "
        "all for a verdict"])


def test_the_verdict_reaches_junit_xml_and_the_json_report(run_inner, pytester):
    pytester.copy_example("apps/handwritten.py")
    pytester.copy_example("apps/no_monitor_queue.py")
    result = run_inner("--cadasta-app=no_monitor_queue:app", "--junitxml=junit.xml",
                       "--cadasta-report=report.json", "-k", "monitor or routing")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    root = ElementTree.parse(pytester.path / "junit.xml").getroot()
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["cadasta_verdict"] == "does-not-conform"
    assert properties["cadasta_app"] == "no_monitor_queue:app"
    assert int(properties["cadasta_monitor_failed"]) >= 1
    assert properties["cadasta_exchange_passed"] == "0"  # deselected: not run
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["verdict"]["kind"] == "does-not-conform"
    assert report["queues"] == {"work": ["celery", "export", "msg"],
                                "platform": "platform.fifo", "consumed": None}
    by_id = {check["id"]: check for check in report["checks"]}
    fifo = by_id["cadasta::monitor::platform_queue_is_a_fifo_queue_bound_with_hash"]
    assert fifo["outcome"] == "failed" and "no queue 'platform.fifo'" in fifo["message"]
    assert by_id["cadasta::exchange::default_exchange_is_topic"]["outcome"] == "not run"
    assert len(report["checks"]) == ALL


def test_production_queues_decide_where_probes_run_and_what_must_be_consumed(
        run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    result = run_inner("--cadasta-app=toolbox_app:app", "--cadasta-queues=export,celery",
                       "-rA", "-k", "routing or success_leaves")
    result.stdout.fnmatch_lines([
        "cadasta: the worker consumes export, celery (-Q export,celery, --cadasta-queues)",
        "*saw:   task 'msg.email' -> 'msg': a queue this worker does not consume (it "
        "consumes export, celery)"], consecutive=False)
    result.assert_outcomes(failed=1, passed=ROUTING, deselected=ALL - ROUTING - 1)


def test_an_unknown_production_queue_is_a_usage_error(pytester):
    pytester.copy_example("apps/toolbox_app.py")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--cadasta-app=toolbox_app:app",
                                           "--cadasta-queues=exprt,celery")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --cadasta-queues='exprt,celery': 'exprt' is not among the app's queues "
        "(celery, platform.fifo, msg, export)"])


def test_checks_keep_their_order_and_verdict_when_another_plugin_shuffles(run_inner, pytester):
    """The user's test, which starts the worker, runs first: the worker started
    before the checks registered their probes still runs them."""
    pytester.copy_example("apps/toolbox_app.py")
    pytester.makeconftest("""
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(items):
            items.reverse()  # as pytest-randomly might
    """)
    pytester.makepyfile(test_own="""
        def test_uses_the_worker(cadasta_app, cadasta_worker):
            assert cadasta_app.send_task("export.project", args=(3,)).get(timeout=60) == 6
    """)
    result = run_inner("--cadasta-app=toolbox_app:app", "-v")
    result.stdout.fnmatch_lines(["test_own.py::test_uses_the_worker PASSED*"])
    result.assert_outcomes(passed=ALL + 1)
    ran = [line.split(" ")[0] for line in result.stdout.lines if line.startswith("cadasta::")]
    assert ran == [f"cadasta::{check.group}::{check.name}" + (f"[{queue}]" if queue else "")
                   for check, queue in CHECKS]
    result.stdout.fnmatch_lines(["verdict: conforms"])


def test_a_conftest_fixture_of_the_same_name_wins(run_inner, pytester):
    pytester.copy_example("apps/toolbox_app.py")
    pytester.makeconftest("""
        import pytest

        @pytest.fixture
        def cadasta_sqs():
            return "the user's own"
    """)
    pytester.makepyfile(test_own="""
        def test_it(cadasta_sqs):
            assert cadasta_sqs == "the user's own"
    """)
    result = run_inner("--cadasta-app=toolbox_app:app", "-m", "not cadasta")
    result.assert_outcomes(passed=1, deselected=ALL)


def test_the_plugin_disabled_with_the_ini_key_set_gives_pytests_usual_warning(pytester):
    pytester.copy_example("apps/toolbox_app.py")
    pytester.makeini("[pytest]\ncadasta_app = toolbox_app:app\n")
    pytester.makepyfile(test_plain="def test_plain(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:cadasta")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*Unknown config option: cadasta_app*"])
    assert "cadasta::" not in result.stdout.str()


def test_the_verdict_says_which_celery_series_it_holds_for_and_what_the_next_breaks(
        run_inner, pytester):
    """Judged on Celery 5.6, an app whose results are json conforms; on 5.7 the
    same results are unreadable to the platform: a verdict on 5.6 says so."""
    import importlib.metadata

    series = ".".join(importlib.metadata.version("celery").split(".")[:2])
    pytester.copy_example("apps/json_results.py")
    result = run_inner("--cadasta-app=json_results:app", "--cadasta-report=report.json",
                       "-k", "exchange")
    result.stdout.fnmatch_lines([f"judged on Celery {series}: the verdict holds for that "
                                 "series"])
    later = json.loads((pytester.path / "report.json").read_text())["horizon"]
    assert later["celery"] == series
    if tuple(map(int, series.split("."))) < (5, 7):
        result.stdout.fnmatch_lines([
            "on Celery 5.7 and later the app's results are stored in result_serializer "
            "'json', not as the pickle the platform reads: every task page fails*"])
        assert len(later["later"]) == 1
    else:
        assert later["later"] == []


@pytest.mark.parametrize(("app", "queues", "said"), [
    # A hand-configured worker without -Q: the monitor among what it consumes.
    ("eats_monitor", (), "cadasta: the worker consumes celery, export, msg, platform.fifo "
                         "('celery worker' without -Q: every queue in task_queues, less what "
                         "the app deselects at start-up)"),
    # -Q naming the monitor on a toolbox worker: the toolbox leaves it out, and says so.
    ("toolbox_app", ("--cadasta-queues=export,msg,celery,platform.fifo",),
     "cadasta: the worker consumes export, msg, celery (-Q export,msg,celery,platform.fifo, "
     "--cadasta-queues; the app leaves out platform.fifo as its worker starts (its "
     "celeryd_after_setup handlers: the toolbox's drops the monitor))"),
])
def test_what_the_worker_consumes_is_told_once_as_the_check_judges_it(
        run_inner, pytester, app, queues, said):
    """The header, the JSON report and its picture say what the monitor check
    judges: a consumed monitor among what the worker consumes, drawn red."""
    pytester.copy_example("apps/handwritten.py")
    pytester.copy_example(f"apps/{app}.py")
    result = run_inner(f"--cadasta-app={app}:app", *queues, "--cadasta-report=report.json",
                       "-k", "worker_does_not_consume_the_monitor_queue")
    result.stdout.fnmatch_lines([said])
    report = json.loads((pytester.path / "report.json").read_text())
    (topology,) = report["topology"]["apps"]
    consumed = said.split("consumes ", 1)[1].split(" (", 1)[0].split(", ")
    assert topology["consumes"] == consumed
    failed = "platform.fifo" in consumed
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK)
    from pytest_cadasta.reporting.markdown_report import picture

    drawn = picture(report)
    assert ("✗ consumed" in drawn) is failed
