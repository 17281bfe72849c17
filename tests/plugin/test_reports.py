"""The reports as people and tools read them: --cadasta-report in JSON (checked
against the schema the package ships) and in Markdown, whose Mermaid picture of
the deployment is rendered in a real browser (headless Chromium, mermaid from
the npm registry); GitHub Actions' job summary; where a failure points."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from mermaid_browser import links_and_hidden

from pytest_cadasta.reporting.reports import SCHEMA_FILE

SYSTEM = ("--cadasta-app=export_worker", "--cadasta-app=msg_worker",
          "--cadasta-producer=platform_app", "--cadasta-queues=export_worker=export,celery",
          "--cadasta-queues=msg_worker=msg,celery")
#: The system sample with a worker whose QUEUES lists a queue the others lack.
DRIFTING = ("--cadasta-app=export_worker", "--cadasta-app=msg_worker_other_queues",
            "--cadasta-producer=platform_app", "--cadasta-queues=export_worker=export,celery",
            "--cadasta-queues=msg_worker_other_queues=msg,celery")
#: How a failure is drawn (markdown_report.FAILED_LINK and the class 'failed').
RED = "stroke:#c53030"


def valid(document: dict) -> dict:
    """``document``, after checking it against the JSON Schema the package ships."""
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft202012Validator(schema).iter_errors(document)]
    assert errors == []
    return document


def mermaid_block(markdown: str) -> str:
    """The one Mermaid block of a Markdown report, as GitHub would find it."""
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", markdown, re.S | re.M)
    assert len(blocks) == 1, markdown
    return blocks[0]


def links(source: str) -> dict[tuple[str, str], str]:
    """(start, end) -> the label of each arrow of a Mermaid flowchart."""
    found = {}
    for line in source.splitlines():
        match = (re.match(r'\s*(\w+) [-=.]+>\|"(.*)"\| (\w+)$', line)
                 or re.match(r'\s*(\w+) -\. "(.*)" \.-x (\w+)$', line))
        if match:
            found[(match.group(1), match.group(3))] = match.group(2)
    return found


def node_ids(source: str) -> dict[str, str]:
    """Node id -> its label's first line."""
    return {match.group(1): match.group(2) for match in
            re.finditer(r'^\s*(\w+)[\[({]+"([^"<]*)', source, re.M)}


# -- the reports ----------------------------------------------------------------------
def test_the_picture_of_the_system_shows_every_app_queue_and_the_monitor_in_a_browser(
        run_inner, pytester, browser):
    """The done-when of issue 21: the system sample, a report in each format; the
    picture shows the platform, both workers, the exchange, every queue and the
    monitor, nothing marked failed, and renders without a syntax error."""
    result = run_inner(*SYSTEM, "--cadasta-report=verdict.md", "--cadasta-report=verdict.json",
                       examples=["system"])
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"written to: {pytester.path / 'verdict.md'}, "
                                 f"{pytester.path / 'verdict.json'}"])
    document = valid(json.loads((pytester.path / "verdict.json").read_text()))
    markdown = (pytester.path / "verdict.md").read_text()
    assert markdown.splitlines()[0] == ("## ✅ Cadasta conformance: the system conforms "
                                        "(3 apps)")
    for title in ("export\\_worker: conforms", "msg\\_worker: conforms",
                  "platform\\_app: conforms as a producer", "system: conforms"):
        assert f"### ✅ {title}\n" in markdown
    assert "| group | passed |\n|---|---|\n| exchange | 2 |" in markdown
    assert "What failed" not in markdown
    source = mermaid_block(markdown)
    nodes = node_ids(source)
    assert sorted(nodes.values()) == sorted([
        "export_worker", "msg_worker", "platform_app", "task_exchange", "celery", "export",
        "msg", "report", "platform.fifo", "results", "export_worker's worker",
        "msg_worker's worker", "platform_app's sync-tasks"])
    named = {label: node for node, label in nodes.items()}
    arrows = links(source)
    assert arrows[(named["platform_app"], named["task_exchange"])] == "publishes"
    assert arrows[(named["task_exchange"], named["platform.fifo"])] == "#35;"
    assert arrows[(named["platform.fifo"], named["platform_app's sync-tasks"])] == (
        "read by sync-tasks")
    assert arrows[(named["export"], named["export_worker's worker"])] == "consumed"
    assert arrows[(named["msg"], named["msg_worker's worker"])] == "consumed"
    assert (named["msg"], named["export_worker's worker"]) not in arrows
    assert arrows[(named["export_worker's worker"], named["results"])] == "writes results"
    assert arrows[(named["platform_app's sync-tasks"], named["results"])] == "joins results"
    assert "no consumer in this run" in source  # 'report': no worker of the run takes it
    assert "✗" not in source and "failed" not in source.split("classDef")[0]

    shown = browser.render(source, "conforming")
    assert {"export_worker", "msg_worker", "platform_app", "task_exchange", "platform.fifo",
            "celery", "export", "msg", "report"} <= set(shown.text)
    # Drawn as the data flows: every arrow points right.
    assert len(links_and_hidden(source)) >= 15 and len(shown.x) == len(nodes)
    assert shown.backwards(source) == []
    assert set(nodes) <= set(shown.nodes)
    assert len(shown.edges) >= 15 and not [e for e, style in shown.edges.items() if RED in style]
    assert not [n for n, classes in shown.nodes.items() if "failed" in classes.split()]

    versions = document["versions"]
    assert versions["postgresql"] and versions["celery"] and versions["python"]
    durations = [check["duration"] for check in document["checks"]]
    assert None not in durations and sum(durations) > 1  # a worker ran tasks
    system = document["topology"]["system"]
    assert system["drift"] == {}
    export = next(q for q in system["queues"] if q["name"] == "export")
    assert export["consumers"] == ["export_worker"] and export["sqs_name"] == "dev-export"
    monitor = next(q for q in system["queues"] if q["monitor"])
    assert monitor["read_by"] == ["platform_app"]
    assert [b["routing_key"] for b in monitor["bindings"]] == ["#"]
    assert system["results"] == [{
        "backend": "db+postgresql://cadasta:**@localhost:5432/cadasta",
        "database": "localhost:5432/cadasta", "table": "celery_taskmeta",
        "writers": ["export_worker", "msg_worker"], "readers": ["platform_app"]}]


def test_a_drifting_app_is_marked_in_the_picture_and_its_edge_drawn_red(
        run_inner, pytester, browser):
    """A worker whose QUEUES lists a queue the others lack: the system check that
    the apps agree fails; the picture marks that app, and its arrow to the
    exchange is red in the browser; the failure reads saw/needs/fix."""
    result = run_inner(*DRIFTING, "--cadasta-report=verdict.md", "--cadasta-report=verdict.json",
                       "-k", "system", examples=["system"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    document = valid(json.loads((pytester.path / "verdict.json").read_text()))
    assert document["topology"]["system"]["drift"] == {"msg_worker_other_queues": ["QUEUES"]}
    markdown = (pytester.path / "verdict.md").read_text()
    assert markdown.splitlines()[0] == ("## ❌ Cadasta conformance: does not conform: 1 check "
                                        "failed")
    failure = markdown[markdown.index("### What failed (1)"):]
    assert "#### ❌ `cadasta::system::apps_agree_on_exchange_queues_and_region`" in failure
    assert ("- **saw:** QUEUES: msg\\_worker\\_other\\_queues has 'celery,export,geo,msg,"
            "report'") in failure
    assert "- **needs:** every app of the system" in failure
    assert "- **fix:** configure every app from one cadasta\\_toolbox.config.Config" in failure

    source = mermaid_block(markdown)
    named = {label: node for node, label in node_ids(source).items()}
    drifting, exchange = named["msg_worker_other_queues"], named["task_exchange"]
    assert links(source)[(drifting, exchange)] == "✗ publishes: differs: QUEUES"
    assert "geo" in named  # its own queue, which no other app knows

    shown = browser.render(source, "drifting")
    red = sorted(edge for edge, style in shown.edges.items() if RED in style)
    assert red == [f"L_{drifting}_{exchange}_0"]
    assert [n for n, classes in shown.nodes.items() if "failed" in classes.split()] == [drifting]
    assert "✗ publishes: differs: QUEUES" in shown.text


def test_a_single_apps_reports_name_its_checks_versions_and_topology(run_inner, pytester):
    pytester.copy_example("apps/handwritten.py")
    pytester.copy_example("apps/no_monitor_queue.py")
    (pytester.path / "out").mkdir()
    result = run_inner("--cadasta-app=no_monitor_queue:app", "--cadasta-report=out/r.json",
                       "--cadasta-report=out/r.MD", "-k", "exchange or monitor")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    document = valid(json.loads((pytester.path / "out" / "r.json").read_text()))
    assert document["schema"] == 1
    (app,) = document["topology"]["apps"]
    assert app["label"] == "no_monitor_queue" and app["role"] == "worker"
    assert app["exchange"] == {"name": "tasks", "type": "topic"}
    assert app["monitor"] == {"queue": "platform.fifo", "sqs_name": "hand-platform.fifo",
                              "binding_keys": []}
    assert app["results"]["backend"] == ("db+postgresql+psycopg2://cadasta:**@localhost:5432/"
                                         "cadasta")
    failed = [c["id"] for c in document["checks"] if c["outcome"] == "failed"]
    assert "cadasta::monitor::platform_queue_is_a_fifo_queue_bound_with_hash" in failed
    markdown = (pytester.path / "out" / "r.MD").read_text()
    assert markdown.startswith("## ❌ Cadasta conformance: does not conform: 1 check failed\n")
    monitor = sum(1 for check in document["checks"] if check["group"] == "monitor")
    assert "| exchange | 2 |  |  |" in markdown
    assert f"| monitor | {monitor - 1} | **1** ❌ |  |" in markdown
    source = mermaid_block(markdown)
    named = {label: node for node, label in node_ids(source).items()}
    label = links(source)[(named["no_monitor_queue"], named["platform.fifo"])]
    assert label == "✗ no #35; binding (its keys: none)"
    assert "the platform's sync-tasks" in source  # no producer in the run
    assert "hw-pass" not in markdown and "hw-pass" not in json.dumps(document)


@pytest.mark.parametrize(("given", "message"), [
    ("verdict.html", "--cadasta-report='verdict.html': the extension names the report's "
     "format; expected one of .json (JSON, for tools), .md (Markdown, for people), e.g. "
     "'verdict.md'"),
    ("verdict", "--cadasta-report='verdict': the extension names the report's format; *"),
    ("out/verdict.md", "--cadasta-report='out/verdict.md': no such directory (*/out)"),
])
def test_a_report_that_cannot_be_written_as_asked_is_a_usage_error(pytester, given, message):
    pytester.copy_example("apps/toolbox_app.py")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only",
                                           "--cadasta-app=toolbox_app:app",
                                           "--cadasta-result-db=postgresql://u@h/p",
                                           "--cadasta-report=ok.json",
                                           f"--cadasta-report={given}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert not (pytester.path / "ok.json").exists()


@pytest.fixture
def job_summary(pytester) -> Path:
    """A GitHub Actions job summary that an earlier step already wrote to."""
    path = pytester.path / "step_summary.md"
    path.write_text("# an earlier step\n")
    return path


def test_in_github_actions_the_markdown_report_joins_the_job_summary(
        run_inner, pytester, job_summary):
    pytester.copy_example("apps/toolbox_app.py")
    before = set(pytester.path.iterdir())
    result = run_inner("--cadasta-app=toolbox_app:app", "-k", "exchange",
                       env={"GITHUB_STEP_SUMMARY": str(job_summary)})
    result.stdout.fnmatch_lines([f"written to: the job summary ({job_summary})"])
    text = job_summary.read_text()
    assert text.startswith("# an earlier step\n## ⚠️ Cadasta conformance: not judged as a "
                           "whole: 2 of ")
    assert "```mermaid\nflowchart LR\n" in text
    # Nothing else is written unasked (pytester keeps the run's output in files).
    assert [p.name for p in set(pytester.path.iterdir()) - before
            if p.name not in ("__pycache__", "stdout", "stderr")
            and not p.name.startswith("runpytest-")] == []


def test_the_job_summary_is_left_alone_when_asked_either_way(run_inner, pytester, job_summary):
    pytester.copy_example("apps/toolbox_app.py")
    env = {"GITHUB_STEP_SUMMARY": str(job_summary)}
    result = run_inner("--cadasta-app=toolbox_app:app", "-k", "exchange",
                       "--cadasta-no-job-summary", env=env)
    assert result.ret == 0 and "written to" not in result.stdout.str()
    assert job_summary.read_text() == "# an earlier step\n"
    pytester.makeini("""
        [pytest]
        cadasta_no_job_summary = true
        cadasta_report =
            verdict.json
            verdict.md
    """)
    result = run_inner("--cadasta-app=toolbox_app:app", "-k", "exchange", env=env)
    result.stdout.fnmatch_lines([f"written to: {pytester.path / 'verdict.json'}, "
                                 f"{pytester.path / 'verdict.md'}"])
    assert job_summary.read_text() == "# an earlier step\n"
    assert json.loads((pytester.path / "verdict.json").read_text())["schema"] == 1


# -- where a failure points -------------------------------------------------------------
#: What an annotation plugin (pytest-github-actions-annotate-failures) reads of
#: a failure: the report's location.
ANNOTATE = """
def pytest_runtest_logreport(report):
    if report.when == "call" and report.failed:
        path, line, _ = report.location
        print(f"::error file={path},line={line + 1}::{report.nodeid}")
"""


@pytest.mark.parametrize(("app", "check", "where"), [
    # The router is the user's function: the failure is on its def line.
    ("unroutable_task", "routing::every_registered_task_routes_to_an_existing_queue",
     "handwritten.py:def declaring_router"),
    # Any other check: the line that builds the app.
    ("no_monitor_queue", "monitor::platform_queue_is_a_fifo_queue_bound_with_hash",
     "no_monitor_queue.py:app = "),
])
def test_a_failure_points_at_the_code_that_holds_the_fault(run_inner, pytester, app, check,
                                                           where):
    """What an annotation plugin puts on a pull request's diff: the file and
    line of the report's location; the check's id stays the failure's headline."""
    pytester.copy_example("apps/handwritten.py")
    pytester.copy_example(f"apps/{app}.py")
    pytester.makeconftest(ANNOTATE)
    result = run_inner(f"--cadasta-app={app}:app", "-s", "-k", check.split("::")[1])
    path, _, start = where.partition(":")
    line = 1 + next(n for n, text in enumerate((pytester.path / path).read_text().splitlines())
                    if text.strip().startswith(start))
    result.stdout.fnmatch_lines([f"*::error file={path},line={line}::cadasta::{check}",
                                 f"*_ cadasta::{check} _*"], consecutive=False)


def test_a_system_failure_points_at_the_app_it_blames(run_inner, pytester):
    pytester.makeconftest(ANNOTATE)
    result = run_inner(*DRIFTING, "-s", "-k", "apps_agree", examples=["system"])
    result.stdout.fnmatch_lines([
        "*::error file=msg_worker_other_queues.py,line=6::"
        "cadasta::system::apps_agree_on_exchange_queues_and_region"])


# -- odd names ---------------------------------------------------------------------------
def _odd_document() -> dict:
    """A report of two apps whose names hold what Markdown and Mermaid give a
    meaning to, one of them failing: made by the functions the plugin uses."""
    from types import SimpleNamespace

    from pytest_cadasta.apps.deployment import deployment
    from pytest_cadasta.basics.topology import Binding, Results, Topology

    def app(label: str, queues: tuple[str, ...], is_worker: bool) -> SimpleNamespace:
        bindings = tuple(Binding(q, "tasks", "topic", q) for q in queues)
        topology = Topology(("celery", *queues), "platform.fifo", "tasks", "topic", "us-west-2",
                            "", production_queues=queues if is_worker else None,
                            bindings=(*bindings, Binding("platform.fifo", "tasks", "topic", "#")),
                            results=Results("db+postgresql://u:**@db:5432/r", "db:5432/r",
                                            "celery_taskmeta"))
        entry = SimpleNamespace(spec=f"{label}:app", is_worker=is_worker)
        return SimpleNamespace(label=label, entry=entry, topology=topology)

    apps = [app("end", ("mail#1", 'say "hi"'), True), app("x<y>|z", ("mail#1",), False)]
    message = ("A task that waits forever.\n  saw:   'mail#1' <the task's queue> | *none*\n"
               "  needs: `one` [consumer]\n  fix:   -Q mail#1")
    checks = [{"id": "cadasta::end::routing::every_registered_task_routes_to_an_existing_queue",
               "app": "end", "group": "routing", "outcome": "failed", "message": message,
               "duration": 0.5},
              {"id": "cadasta::system::apps_agree_on_exchange_queues_and_region",
               "app": "system", "group": "system", "outcome": "passed", "message": "",
               "duration": 0.1}]
    return {"schema": 1, "verdict": {"kind": "does-not-conform",
                                     "text": "does not conform: 1 check failed"},
            "apps": {a.label: {"verdict": {"kind": "conforms", "text": "conforms"}}
                     for a in apps},
            "versions": {"python": "3", "celery": None, "kombu": None, "moto": None,
                         "postgresql": None},
            "checks": checks, "topology": deployment(apps)}


def test_odd_names_are_shown_as_they_are_in_markdown_and_in_the_picture(browser):
    from pytest_cadasta.reporting.markdown_report import markdown

    text = markdown(_odd_document())
    failure = text[text.index("### What failed"):]
    assert ("- **saw:** 'mail#1' &lt;the task's queue&gt; \\| \\*none\\*") in failure
    assert "- **needs:** \\`one\\` \\[consumer\\]" in failure
    assert "### ✅ x&lt;y&gt;\\|z: conforms" in text
    source = mermaid_block(text)
    assert '[["say #quot;hi#quot;<br/>' in source and '"mail#35;1<br/>' in source
    shown = browser.render(source, "odd")
    assert {"end", "x<y>|z", "mail#1", 'say "hi"'} <= set(shown.text)
    red = [edge for edge, style in shown.edges.items() if RED in style]
    assert red == ["L_app_end_x_tasks_0"]  # its publishing: it routes astray


def test_the_schemas_groups_are_the_plugins():
    from pytest_cadasta.basics.ids import ALL_GROUPS, SYSTEM

    schema = json.loads(SCHEMA_FILE.read_text())
    groups = schema["properties"]["checks"]["items"]["properties"]["group"]["enum"]
    assert sorted(groups) == sorted((*ALL_GROUPS, SYSTEM))


@pytest.mark.parametrize(("examples", "args"), [
    (["apps/toolbox_app.py"], ("--cadasta-app=toolbox_app:app",)),
    (["apps/platform_producer.py", "apps/cadasta_platform.py"],
     ("--cadasta-producer=platform_producer:app",)),
], ids=["a conforming worker", "a producer"])
def test_the_reports_of_a_worker_and_of_a_producer_validate(run_inner, pytester, examples,
                                                            args):
    """With the failing worker's, the system's and the audit's (their own
    tests): every report the run can write fits the schema the package ships."""
    for example in examples:
        pytester.copy_example(example)
    run_inner(*args, "--cadasta-report=report.json")
    document = valid(json.loads((pytester.path / "report.json").read_text()))
    assert document["verdict"]["kind"] in ("conforms", "conforms-as-producer")
