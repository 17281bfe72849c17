"""The plugin's settings: each a command-line option and an ini key, read once
into a frozen value. To add a setting: an entry in ``OPTIONS``, a field in
``Settings``, its check in ``read_settings``, a row in the README's table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_cadasta.errors import NotConfigured, UsageError

#: name -> (help, ini type). The option is --cadasta-<name with dashes>,
#: its dest and ini key cadasta_<name>; one help text serves both.
OPTIONS: dict[str, tuple[str, str]] = {
    "app": (
        "the Celery app to check, as 'celery -A' takes it: 'proj', 'proj.celery', "
        "'proj:app' or 'proj.celery:app'", "string"),
    "producer_only": (
        "the app only produces tasks (like the platform): skip the checks that "
        "need a worker", "bool"),
    "result_db": (
        "URL of an existing PostgreSQL server where a throwaway result database may "
        "be created and dropped, e.g. postgresql://admin:pw@db:5432/postgres "
        "(default: start an ephemeral server)", "string"),
    "result_schema": (
        "a SQL file creating the result tables, used instead of the toolbox's "
        "schema (test against your platform's real DDL)", "string"),
    "queues": (
        "the queues the worker consumes in production, as 'celery worker -Q' takes "
        "them, e.g. 'export,celery' (default: no -Q, Celery's default: every queue in "
        "task_queues)", "string"),
    "report": (
        "write the verdict, the queues judged and each check's outcome and message "
        "to this file as JSON, for CI tools", "string"),
    "pg_ctl": (
        "path of the pg_ctl to start the ephemeral PostgreSQL with (default: "
        "PATH, then /usr/lib/postgresql/*/bin)", "string"),
}


def option_name(name: str) -> str:
    return "--cadasta-" + name.replace("_", "-")


@dataclass(frozen=True)
class Settings:
    #: The app to check, 'module:attribute' (None: no checks).
    app_spec: str | None = None
    producer_only: bool = False
    result_db: str | None = None
    result_schema: Path | None = None
    #: The pg_ctl to start PostgreSQL with, found at configure time when needed.
    pg_ctl: str | None = None
    #: --cadasta-queues: what 'celery worker -Q' names (None: no -Q).
    queues: tuple[str, ...] | None = None
    #: --cadasta-report: where to write the JSON report (None: nowhere).
    report: Path | None = None
    #: Setting name -> how the user spelled it (the option, or the ini key).
    spelled: dict[str, str] = field(default_factory=dict, compare=False)

    def label(self, name: str) -> str:
        """How the user gave the setting ``name``, for messages."""
        return self.spelled.get(name, option_name(name))


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cadasta", "Cadasta worker conformance")
    for name, (help_text, ini_type) in OPTIONS.items():
        if ini_type == "bool":
            group.addoption(option_name(name), action="store_true", default=None,
                            dest=f"cadasta_{name}", help=help_text)
        else:
            group.addoption(option_name(name), action="store", default=None,
                            dest=f"cadasta_{name}", metavar=name.upper(),
                            help=help_text)
        parser.addini(f"cadasta_{name}", help_text, type=ini_type, default=None)


def _read(config: pytest.Config, name: str) -> tuple[Any, str]:
    """(value, spelling): command line, else ini, else (None, the option)."""
    value = config.getoption(f"cadasta_{name}")
    if value is not None:
        return value, option_name(name)
    value = config.getini(f"cadasta_{name}")
    if value == "" and OPTIONS[name][1] == "string":
        value = None
    return value, f"cadasta_{name} (ini)"


def _where_written(config: pytest.Config, name: str, value: str) -> Path:
    """A relative path is relative to where it was written: the invocation
    directory for the option, the ini file's directory for the ini key."""
    from_cli = config.getoption(f"cadasta_{name}") is not None
    base = (config.invocation_params.dir if from_cli or config.inipath is None
            else config.inipath.parent)
    return Path(base, value)


def _queue_names(value: str, label: str) -> tuple[str, ...]:
    """The queues of ``value`` as 'celery worker -Q' reads them: split on commas,
    nothing stripped (-Q 'export, celery' names a queue ' celery')."""
    queues = tuple(value.split(","))
    spaced = [q for q in queues if any(c.isspace() for c in q)]
    twice = [q for q in queues if queues.count(q) > 1]
    problem = None
    if not all(queues):
        problem = "an empty queue name" if any(queues) else "no queue named"
    elif spaced:
        problem = (f"{spaced[0]!r} has a space in it, and 'celery worker -Q' would consume "
                   "a queue of that very name")
    elif twice:
        problem = f"{twice[0]!r} is named twice"
    if problem is not None:
        raise UsageError(f"{label}={value!r}: {problem}; name each queue once, separated "
                         "by commas alone, as 'celery worker -Q' takes them, e.g. "
                         "'export,celery'")
    return queues


def read_settings(config: pytest.Config) -> Settings:
    """The settings, validated; a bad value is a ``UsageError``."""
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name in OPTIONS:
        values[name], spelled[name] = _read(config, name)

    app = values["app"]
    if app is not None:
        module, sep, attribute = app.partition(":")
        if (not all(part.isidentifier() for part in module.split("."))
                or (sep and not attribute.isidentifier())):
            raise UsageError(
                f"{spelled['app']}={app!r}: expected what 'celery -A' takes: 'proj', "
                "'proj.celery', 'proj:app' or 'proj.celery:app'")
    result_db = values["result_db"]
    if result_db is not None and not result_db.startswith(
            ("postgresql://", "postgres://", "postgresql+")):
        from cadasta_toolbox.masking import mask_url

        raise UsageError(
            f"{spelled['result_db']}={mask_url(result_db)!r}: expected a PostgreSQL "
            "URL, e.g. 'postgresql://admin:secret@localhost:5432/postgres'")
    schema = values["result_schema"]
    schema_path = None
    if schema is not None:
        schema_path = _where_written(config, "result_schema", schema)
        if not schema_path.is_file():
            raise UsageError(f"{spelled['result_schema']}={schema!r}: no such file "
                             f"({schema_path})")
    pg_ctl = values["pg_ctl"]
    if app is not None and result_db is None:
        from pytest_cadasta.postgres import find_pg_ctl

        try:  # a missing PostgreSQL is a usage error now, not a failure later
            pg_ctl = find_pg_ctl(pg_ctl, spelled["pg_ctl"])
        except NotConfigured as exc:
            raise UsageError(str(exc)) from None
    queues = None
    if values["queues"] is not None:
        if "=" in values["queues"]:
            raise UsageError(
                f"{spelled['queues']}={values['queues']!r}: 'LABEL=queues' names the queues "
                "of one of several apps, and this version checks one app: give the queues "
                "alone, e.g. 'export,celery'")
        queues = _queue_names(values["queues"], spelled["queues"])
    report = values["report"]
    report_path = None if report is None else _where_written(config, "report", report)
    if report_path is not None and not report_path.parent.is_dir():
        raise UsageError(f"{spelled['report']}={report!r}: no such directory "
                         f"({report_path.parent})")
    producer_only = values["producer_only"]
    return Settings(
        app_spec=app,
        producer_only=bool(producer_only) if producer_only is not None else False,
        result_db=result_db,
        result_schema=schema_path,
        pg_ctl=pg_ctl,
        queues=queues,
        report=report_path,
        spelled=spelled,
    )
