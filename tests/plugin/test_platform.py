"""The platform's own view, as users run it: its sync-tasks records every task
the checks send, results join their tasks, a result schema the platform really
has is taken as it is, and the cadasta_platform fixture shows each task as the
platform does."""

import base64
import json
import pickle

import pytest

from pytest_cadasta.basics.messages import decode
from pytest_cadasta.checks import all_checks
from pytest_cadasta.model.platform_view import family_status
from pytest_cadasta.model.sync_rules import Record, Refusal, read
from pytest_cadasta.result_reading import (
    Unreadable,
    Withheld,
    judge_result,
    read_result,
    would_run,
)

APP = "--cadasta-app=toolbox_app:app"
SCHEMAS = "schemas"


def _celery_result_model():
    """Whether this Celery pickles every result into celery_taskmeta whatever
    result_serializer says, and whether it writes a children column (before
    5.7: the first, not the second)."""
    from celery.backends.database.models import Task
    from sqlalchemy.types import PickleType

    return isinstance(Task.__table__.c.result.type, PickleType), "children" in Task.__table__.c


PICKLES_EVERY_RESULT, WRITES_CHILDREN = _celery_result_model()


class WorkersOwn(Exception):
    """An exception class of the worker's code (a module the platform lacks)."""


def _message(body, content_type="application/json", headers=None, properties=None):
    encoded = pickle.dumps(body) if content_type.endswith("serialize") else (
        json.dumps(body).encode() if content_type.endswith("json") else str(body).encode())
    envelope = {"body": base64.b64encode(encoded).decode(), "content-type": content_type,
                "content-encoding": "utf-8" if content_type.endswith("json") else "binary",
                "headers": {"id": "t1", "task": "export.project", "parent_id": None,
                            "root_id": "t1", **(headers or {})},
                "properties": {"body_encoding": "base64", **(properties or {})}}
    return decode("platform.fifo", json.dumps(envelope))


@pytest.mark.parametrize("content_type", ["application/json",
                                          "application/x-python-serialize"])
def test_sync_tasks_records_json_and_pickle_with_the_headers_it_copies(content_type):
    found = read(_message([[1, "a"], {"k": 2}, {}], content_type,
                          headers={"retries": 0, "eta": None, "timelimit": [None, None],
                                   "expires": "2026-12-01T00:00:00"},
                          properties={"creator_id": 7}))
    assert isinstance(found, Record)
    assert (found.task_id, found.type, found.input) == (
        "t1", "export.project", {"args": [1, "a"], "kwargs": {"k": 2}})
    assert found.options["retries"] == 0 and found.options["expires"] == "2026-12-01T00:00:00"
    assert "eta" not in found.options and "timelimit" not in found.options
    assert (found.root_id, found.parent_id, found.creator_id) == ("t1", None, 7)


@pytest.mark.parametrize(("message", "reason", "fix"), [
    (_message("a: 1", "application/x-yaml"), "'application/x-yaml', which the platform's "
     "consumer does not accept (json and pickle only)", "task_serializer = 'json'"),
    (_message([[], {}, {}], headers={"root_id": None}), "root_id is None", "task_protocol"),
    (_message({"args": []}), "body is not [args, kwargs, embed]", "task_protocol = 2"),
    (_message([{}, {}, {}]), "its input is args dict, kwargs dict", "list or tuple"),
])
def test_sync_tasks_refuses_what_the_platform_would_lose_saying_why(message, reason, fix):
    found = read(message)
    assert isinstance(found, Refusal)
    assert reason in found.reason and fix in found.fix


@pytest.mark.parametrize(("headers", "properties", "says"), [
    ({"task": "export." + "x" * 130}, {}, "its type (the task's name) has 137 characters; "
     "the Task table holds 128"),
    ({"id": "i" * 160}, {}, "its task_id has 160 characters; the Task table holds 155"),
    ({}, {"related_object_id": "o" * 30}, "its related_object_id has 30 characters"),
])
def test_a_value_longer_than_its_column_is_named(headers, properties, says):
    found = read(_message([[], {}, {}], headers=headers, properties=properties))
    assert isinstance(found, Refusal) and says in found.reason


def test_a_compressed_body_is_read_as_kombu_reads_it():
    import zlib  # kombu's "gzip" is zlib's format

    envelope = {"body": base64.b64encode(zlib.compress(json.dumps([[5], {}, {}]).encode()))
                .decode(), "content-type": "application/json", "content-encoding": "utf-8",
                "headers": {"id": "t1", "task": "export.project", "parent_id": None,
                            "root_id": "t1", "compression": "application/x-gzip"},
                "properties": {"body_encoding": "base64"}}
    found = read(decode("platform.fifo", json.dumps(envelope)))
    assert isinstance(found, Record) and found.input == {"args": [5], "kwargs": {}}


def test_a_missing_header_loses_the_task():
    message = _message([[], {}, {}])
    del message.headers["parent_id"]
    found = read(message)
    assert isinstance(found, Refusal) and "no header 'parent_id'" in found.reason


@pytest.mark.parametrize(("statuses", "shown"), [
    ([], "PENDING"), ([None, None], "PENDING"), (["SUCCESS", "SUCCESS"], "SUCCESS"),
    (["SUCCESS", None], "STARTED"), (["SUCCESS", "FAILURE", None], "FAILURE"),
    (["RETRY"], "RETRY"),
])
def test_a_familys_status_as_the_platform_works_it_out(statuses, shown):
    assert family_status(statuses) == shown


@pytest.mark.parametrize("value", [
    {"args": [1], "kwargs": {}}, "STARTED", None,
    {"exc_type": "ValueError", "exc_message": ["no"], "exc_module": "builtins"},
])
def test_the_platform_reads_pickles_of_what_its_own_process_can_import(value):
    assert read_result(pickle.dumps(value)) == value


def test_what_the_platform_reads_that_is_more_than_data_is_not_loaded():
    """A builtin exception pickled as itself: the platform reads it (its read
    would build it); the model says so, and loads data only."""
    read = read_result(pickle.dumps(ValueError("a builtin exception")))
    assert isinstance(read, Withheld) and "builtins.ValueError" in read.what


def test_what_a_row_would_run_in_the_platform_is_named_from_its_bytes(tmp_path):
    import os
    import subprocess

    marker = tmp_path / "ran"

    class Calls:
        def __init__(self, func, *args):
            self.reduced = (func, args)

        def __reduce__(self):
            return self.reduced

    assert would_run(pickle.dumps({"project": 7, "when": None})) == []
    assert would_run(pickle.dumps(ValueError("stored by the pickle serializer"))) == []
    assert would_run(pickle.dumps(Calls(os.system, f"touch {marker}"))) == ["posix.system"]
    assert would_run(pickle.dumps([Calls(subprocess.Popen, ["touch", str(marker)])])) == [
        "subprocess.Popen"]
    assert would_run(b"{not a pickle}") == []
    assert not marker.exists()


@pytest.mark.parametrize(("stored", "what"), [
    (b'{"args": [1]}', "json, not a pickle"),
    (b"\x00garbage", "bytes that are not a pickle"),
    (pickle.dumps(WorkersOwn("x")), "a pickled test_platform.WorkersOwn, a class of the "
                                     "worker's code that the platform cannot import"),
])
def test_a_result_the_platform_cannot_unpickle_says_what_it_holds(stored, what):
    with pytest.raises(Unreadable) as raised:
        read_result(stored)
    assert raised.value.what == what.replace("test_platform", __name__)
    assert raised.value.sample == stored[:40] + (b"..." if len(stored) > 40 else b"")


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("value", [
    {"args": [1], "kwargs": {}}, {1, 2}, ValueError("built in"), [WorkersOwn("a"), {3}],
    {"nested": (WorkersOwn("b"), WorkersOwn("c"))},
])
def test_the_audit_judges_a_row_from_its_bytes_as_the_platforms_read_would(value, protocol):
    """What a real deployment's rows are judged by, without unpickling them:
    the same verdict as the platform's read."""
    stored = pickle.dumps(value, protocol=protocol)
    try:
        read_result(stored)
    except Unreadable as exc:
        with pytest.raises(Unreadable) as judged:
            judge_result(stored)
        assert judged.value.what == exc.what
    else:
        judge_result(stored)


@pytest.mark.parametrize("stored", [b'{"args": [1]}', b'"STARTED"', b"\x00garbage", b""])
def test_the_audit_judges_bytes_that_are_no_pickle_unreadable(stored):
    with pytest.raises(Unreadable):
        judge_result(stored)


@pytest.mark.parametrize("app", ["json_results", "pickled_exceptions"])
def test_results_the_platform_cannot_unpickle_fail_their_own_check(run_inner, pytester, app):
    """Exceptions pickled as themselves need the worker's code; json results
    are no pickle at all, from Celery 5.7 (earlier ones pickled every result
    whatever result_serializer said, and the same app conforms)."""
    pytester.copy_example(f"apps/{app}.py")
    result = run_inner(f"--cadasta-app={app}:app", "-k", "platform")
    if app == "json_results" and PICKLES_EVERY_RESULT:
        assert result.ret == 0, result.stdout.str()
        return
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    holds = ("json, not a pickle (as 'msg.cadasta_probe* stored b'{*"
             if app == "json_results" else
             "a pickled pytest_cadasta.apps.probes.ProbeFailure, a class of the worker's code that "
             "the platform cannot import (as 'msg.cadasta_probe_fails' (FAILURE) stored *")
    result.stdout.fnmatch_lines([
        "*_ cadasta::platform::every_result_reads_as_the_platform_unpickles_it _*",
        f"*saw:   of * result rows the worker stored, the platform cannot read *: * hold "
        f"{holds}",
        "*fix:   result_serializer = 'cadasta-pickle' and result_accept_content = "
        "[[]'json', 'cadasta-pickle'] (cadasta_toolbox.config.Config's defaults*",
        "platform  * passed, 1 failed"], consecutive=False)


def test_the_platform_fixture_shows_each_task_as_the_platform_does(run_inner, pytester):
    pytester.makepyfile(test_platform="""
        def test_a_task_and_its_family(cadasta_app, cadasta_worker, cadasta_platform):
            result = cadasta_app.send_task("export.project", args=(21,))
            assert result.get(timeout=60, interval=0.05) == 42
            task = cadasta_platform.wait_for(result.id)
            assert task is not None, cadasta_platform.lost()
            assert (task.type, task.input, task.parent_id, task.root_id, task.status) == (
                "export.project", {"args": [21], "kwargs": {}}, None, result.id, "SUCCESS")
            assert cadasta_platform.family_status(result.id) == "SUCCESS"
            assert [t.task_id for t in cadasta_platform.family(result.id)] == [result.id]
            broken = cadasta_app.send_task("export.broken")
            assert cadasta_platform.wait_for(broken.id).root_id == broken.id
            broken.get(timeout=60, interval=0.05, propagate=False)
            assert cadasta_platform.task(broken.id).status == "FAILURE"
            assert "the export broke" in cadasta_platform.task(broken.id).traceback
            assert cadasta_platform.lost() == []

        def test_the_platforms_own_producer_names_a_creator_and_an_object(
                cadasta_app, cadasta_platform):
            sent = cadasta_app.send_task("export.project", args=(3,), creator_id=7,
                                         related_content_type_id=12,
                                         related_object_id="abcdefghijkmnpqrstuvwxyz")
            task = cadasta_platform.wait_for(sent.id)
            assert task is not None, cadasta_platform.refusal(sent.id)
            assert task.options["creator_id"] == 7

        def test_the_monitor_still_shows_what_reached_it(cadasta_app, cadasta_sqs,
                                                         cadasta_platform):
            sent = cadasta_app.send_task("export.project", args=(1,))
            assert cadasta_platform.task(sent.id).type == "export.project"
            # The platform read the copy first; the test still sees it, once.
            assert [m.id for m in cadasta_sqs.messages("platform.fifo")] == [sent.id]
            assert cadasta_sqs.messages("platform.fifo") == []
            assert cadasta_platform.wait_for("never-sent", timeout=0.2) is None
    """)
    result = run_inner(APP, "-m", "not cadasta", examples=["apps/toolbox_app.py"])
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize("worker", ["toolbox_app", "example"])
def test_the_platforms_own_result_table_ddl_is_taken_as_it_is(run_inner, pytester, worker):
    """The platform's Result table (with children), given as the result schema:
    the bundled example and a conforming app still conform."""
    if worker == "example":
        import shutil
        from pathlib import Path

        shutil.copytree(Path(__file__).parents[2] / "examples" / "worker", pytester.path,
                        dirs_exist_ok=True)
        app = "--cadasta-app=worker.celery:app"
    else:
        pytester.copy_example("apps/toolbox_app.py")
        app = APP
    pytester.copy_example(f"{SCHEMAS}/platform_results.sql")
    result = run_inner(app, "--cadasta-result-schema=platform_results.sql")
    assert result.ret == 0, result.stdout.str()
    platform = sum(1 for check in all_checks() if check.group == "platform")
    result.stdout.fnmatch_lines([f"platform  {platform} passed", "verdict: conforms"])


def test_a_result_table_without_children_names_the_column_and_its_alter_table(run_inner,
                                                                              pytester):
    pytester.copy_example("apps/toolbox_app.py")
    pytester.copy_example(f"{SCHEMAS}/platform_results_no_children.sql")
    result = run_inner(APP, "--cadasta-result-schema=platform_results_no_children.sql",
                       "-k", "result")
    if not WRITES_CHILDREN:  # a Celery before 5.7: the platform's table serves it
        assert result.ret == 0, result.stdout.str()
        return
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*saw:   celery_taskmeta has no column children, which this Celery writes with "
        "every result*",
        "*fix:   the platform's operator runs: ALTER TABLE celery_taskmeta ADD COLUMN "
        "children BYTEA"], consecutive=False)
    out = result.stdout.str()
    assert "had not ended" not in out and "Traceback" not in out


@pytest.mark.parametrize(("ddl", "says"), [
    ("CREATE TABLE results (task_id varchar(155));",
     "no CREATE TABLE celery_taskmeta (the Result table Celery writes)"),
    ("CREATE TABLE celery_taskmeta (id serial PRIMARY KEY, status varchar(50));",
     "celery_taskmeta has no column task_id (Celery finds a task's result by it)"),
])
def test_a_result_schema_without_the_result_table_is_a_usage_error(pytester, ddl, says):
    pytester.copy_example("apps/toolbox_app.py")
    (pytester.path / "results.sql").write_text(ddl)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", APP,
                                           "--cadasta-result-schema=results.sql",
                                           "--cadasta-result-db=postgresql://u@h/p")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --cadasta-result-schema='results.sql': {says}; *"])


@pytest.mark.skipif(PICKLES_EVERY_RESULT, reason="this Celery (before 5.7) pickles every "
                                                 "result: json results join as stored")
def test_a_result_that_cannot_join_for_its_serializer_is_told_the_serializer_fix(
        run_inner, pytester):
    """The started probe's row holds json: the join check names the serializer,
    not the result backend or STARTED tracking (which are right)."""
    pytester.copy_example("apps/json_results.py")
    result = run_inner("--cadasta-app=json_results:app", "-k", "started_state or results_join")
    result.stdout.fnmatch_lines([
        "*saw:   'msg.cadasta_probe_started' (*): its result holds json, not a pickle, which "
        "the platform cannot read*",
        "*fix:   result_serializer = 'cadasta-pickle' and result_accept_content = "
        "[[]'json', 'cadasta-pickle'] (cadasta_toolbox.config.Config's defaults; a plain "
        "Celery app imports cadasta_toolbox.results first)"], consecutive=False)
    assert "task_track_started" not in result.stdout.str()
