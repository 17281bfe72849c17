"""Both spellings of each setting, their precedence, and bad values."""

import json

import pytest

from pytest_cadasta.basics.errors import NotConfigured
from pytest_cadasta.services import postgres


@pytest.fixture
def project(pytester):
    pytester.copy_example("apps/toolbox_app.py")
    pytester.makepyfile(test_nothing="def test_nothing(): pass")
    return pytester


@pytest.fixture
def run(shared_moto):
    """A run that only reports (the header, usage errors): no checks executed.
    One given an app on the command line uses the session's shared moto server
    (each run resets it): no test here judges how moto starts, and a run given
    no --cadasta-* option stays one that does not use the plugin."""

    def run_(pytester, *args):
        if any(arg.startswith("--cadasta-app=") for arg in args):
            args = (f"--cadasta-moto-endpoint={shared_moto}", *args)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", *args)
    return run_


@pytest.mark.parametrize("spelling", ["option", "ini"])
def test_producer_only_in_both_spellings(project, spelling, run):
    args = ["--cadasta-app=toolbox_app:app", "--cadasta-result-db=postgresql://u@h/p"]
    if spelling == "option":
        args.append("--cadasta-producer-only")
    else:
        project.makeini("[pytest]\ncadasta_producer_only = true\n")
    result = run(project, *args)
    result.stdout.fnmatch_lines(["*role: producer only (worker checks skipped)"])


@pytest.mark.parametrize("spelling", ["option", "ini"])
def test_reports_in_both_spellings_each_file_in_the_format_its_extension_names(project,
                                                                                spelling, run):
    args = ["--cadasta-app=toolbox_app:app", "--cadasta-result-db=postgresql://u@h/p"]
    if spelling == "option":
        args += ["--cadasta-report=verdict.json", "--cadasta-report=verdict.md"]
    else:
        project.makeini("[pytest]\ncadasta_report =\n    verdict.json\n    verdict.md\n")
    result = run(project, *args)
    assert result.ret == 0
    assert json.loads((project.path / "verdict.json").read_text())["verdict"] == {
        "kind": "not-judged", "text": "not judged (no check ran)"}
    markdown = (project.path / "verdict.md").read_text()
    assert markdown.startswith("## ⚠️ Cadasta conformance: not judged (no check ran)\n")


def test_header_names_queues_and_masks_the_database_password(project, run):
    result = run(project, "--cadasta-app=toolbox_app:app",
                 "--cadasta-result-db=postgresql://admin:hunter2@db.example:5432/postgres")
    result.stdout.fnmatch_lines([
        "cadasta: app toolbox_app:app (toolbox_app), role: worker",
        "cadasta: work queues celery, msg, export; platform queue platform.fifo",
        "cadasta: SQS: moto server on 127.0.0.1*",
        "cadasta: result database: postgresql://admin:**@db.example:5432/postgres*",
    ])
    assert "hunter2" not in result.stdout.str()


def test_no_header_and_no_checks_without_an_app(project, run):
    result = run(project)
    assert "cadasta:" not in result.stdout.str()
    result.stdout.fnmatch_lines(["collected 1 item", "*<Function test_nothing>"])
    assert "cadasta::" not in result.stdout.str()


@pytest.mark.parametrize(("args", "expected"), [
    (["--cadasta-result-schema=nowhere.sql"],
     "ERROR: --cadasta-result-schema='nowhere.sql': no such file*"),
    (["--cadasta-app=toolbox_app:app", "--cadasta-pg-ctl=/nonexistent/pg_ctl"],
     "ERROR: --cadasta-pg-ctl='/nonexistent/pg_ctl': not an executable file"),
])
def test_bad_values_are_usage_errors(project, args, expected, run):
    result = run(project, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_a_bad_database_url_is_a_usage_error_that_hides_its_password(project, run):
    result = run(project, "--cadasta-result-db=mysql://root:hunter2@db/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --cadasta-result-db='mysql://root:**@db/x': expected a PostgreSQL URL*"])
    assert "hunter2" not in result.stdout.str() + result.stderr.str()


def test_schema_file_from_the_ini_is_relative_to_the_ini(project, run_inner):
    sub = project.mkdir("platform")
    (sub / "results.sql").write_text(
        _platform_ddl())
    project.makeini("[pytest]\ncadasta_result_schema = platform/results.sql\n")
    project.makepyfile(test_schema="""
        def test_platform_ddl_is_used(cadasta_result_db):
            with cadasta_result_db.admin_connection() as c:
                cols = [r[0] for r in c.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'celery_taskmeta'")]
            assert "platform_note" in cols
    """)
    result = run_inner("--cadasta-app=toolbox_app:app", "-m", "not cadasta")
    result.assert_outcomes(passed=2)


def _platform_ddl():
    from cadasta_toolbox.schema import SCHEMA_SQL

    return SCHEMA_SQL + (
        "\nALTER TABLE celery_taskmeta ADD COLUMN IF NOT EXISTS platform_note TEXT;\n")


def test_missing_pg_ctl_says_where_it_looked_and_what_to_do(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(postgres, "PG_CTL_GLOBS", ("/nonexistent/*/pg_ctl",))
    with pytest.raises(NotConfigured) as excinfo:
        postgres.find_pg_ctl(None)
    message = str(excinfo.value)
    assert "/nonexistent/*/pg_ctl" in message
    assert "--cadasta-pg-ctl" in message and "--cadasta-result-db" in message


def test_pg_ctl_prefers_path_then_the_newest_install(monkeypatch, tmp_path):
    for version in ("9.6", "15", "13"):
        binary = tmp_path / version / "bin" / "pg_ctl"
        binary.parent.mkdir(parents=True)
        binary.write_text("")
        binary.chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(postgres, "PG_CTL_GLOBS", (str(tmp_path / "*/bin/pg_ctl"),))
    assert postgres.find_pg_ctl(None) == str(tmp_path / "15/bin/pg_ctl")
    monkeypatch.setenv("PATH", str(tmp_path / "9.6" / "bin"))
    assert postgres.find_pg_ctl(None) == str(tmp_path / "9.6/bin/pg_ctl")


@pytest.mark.parametrize(("ini", "expected"), [
    ("cadasta_result_db = mysql://root:pw@db/x",
     "ERROR: cadasta_result_db (ini)='mysql://root:**@db/x': expected a PostgreSQL URL*"),
    ("cadasta_result_schema = nowhere.sql",
     "ERROR: cadasta_result_schema (ini)='nowhere.sql': no such file*"),
    ("cadasta_app = toolbox_app:app\ncadasta_pg_ctl = /nonexistent/pg_ctl",
     "ERROR: cadasta_pg_ctl (ini)='/nonexistent/pg_ctl': not an executable file"),
])
def test_ini_spellings_are_checked_too(project, ini, expected, run):
    project.makeini(f"[pytest]\n{ini}\n")
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_schema_option_is_relative_to_the_invocation_directory(project):
    sql = project.mkdir("ddl") / "results.sql"
    sql.write_text(_platform_ddl())
    sub = project.mkdir("elsewhere")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(sub)
        ok = project.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only",
                                          "--cadasta-result-schema=../ddl/results.sql",
                                          str(project.path))
        missing = project.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only",
                                               "--cadasta-result-schema=ddl/results.sql",
                                               str(project.path))
    assert ok.ret == pytest.ExitCode.OK
    assert missing.ret == pytest.ExitCode.USAGE_ERROR


def test_a_broker_other_than_sqs_is_replaced_and_the_header_says_so(project, run):
    project.makepyfile(amqp_app="""
        from celery import Celery

        from cadasta_toolbox.config import Config

        app = Celery("amqp_app")
        app.config_from_object(Config(broker_url="amqp://guest:pw-rabbit@rabbit:5672//",
                                      broker_transport=None))
    """)
    result = run(project, "--cadasta-app=amqp_app",
                 "--cadasta-result-db=postgresql://u@h/p")
    result.stdout.fnmatch_lines([
        "cadasta: the app's broker (amqp://guest:**@rabbit:5672//) is not SQS: replaced by "
        "the moto server for the run*"])
    assert "pw-rabbit" not in result.stdout.str()


def test_a_result_schema_with_an_sql_error_names_the_file_and_the_line(run_inner, project):
    (project.path / "results.sql").write_text(
        "CREATE SEQUENCE IF NOT EXISTS task_id_sequence;\n"
        "CREATE TABLE celery_taskmeta (\n"
        "    id INTEGER PRIMARY KEY,\n"
        "    task_id VARCHAR(155) UNIQUE,\n"
        "    status VARCHAR(50)\n"
        "    result BYTEA\n"
        ");\n")
    project.makepyfile(test_db="""
        def test_uses_results(cadasta_result_db):
            pass
    """)
    result = run_inner("--cadasta-app=toolbox_app:app", "--cadasta-result-schema=results.sql",
                       "-m", "not cadasta", "-k", "uses_results")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*could not provide the result database: the result schema */results.sql:6: "
        "syntax error at or near \"result\""])
    assert "CREATEDB" not in result.stdout.str()


@pytest.mark.parametrize(("queues", "problem"), [
    ("", "no queue named"),
    (",,", "no queue named"),
    ("export,,celery", "an empty queue name"),
    ("export,celery,", "an empty queue name"),
    ("export,export", "'export' is named twice"),
    ("export, celery", "' celery' has a space in it, and 'celery worker -Q' would consume "
                       "a queue of that very name"),
    ("export celery", "'export celery' has a space in it*"),
])
def test_malformed_production_queues_are_usage_errors(project, queues, problem, run):
    result = run(project, "--cadasta-app=toolbox_app:app",
                 "--cadasta-result-db=postgresql://u@h/p", f"--cadasta-queues={queues}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: --cadasta-queues={queues!r}: {problem}; name each queue once, separated by "
        "commas alone, as 'celery worker -Q' takes them, e.g. 'export,celery'"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_malformed_queues_in_the_ini_say_they_came_from_the_ini(project, run):
    project.makeini("[pytest]\ncadasta_app = toolbox_app:app\n"
                    "cadasta_result_db = postgresql://u@h/p\ncadasta_queues = msg,msg\n")
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cadasta_queues (ini)='msg,msg': 'msg' is named twice*"])
