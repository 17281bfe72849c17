"""The plugin's settings: each a command-line option and an ini key, read once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: name -> (help, ini type). The option is --cadasta-<name with dashes>,
#: its dest and ini key cadasta_<name>; one help text serves both.
OPTIONS: dict[str, tuple[str, str]] = {
    "app": (
        "the Celery app to check, as 'module:attribute', e.g. 'worker.celery:app'",
        "string"),
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
    "pg_ctl": (
        "path of the pg_ctl to start the ephemeral PostgreSQL with (default: "
        "PATH, then /usr/lib/postgresql/*/bin)", "string"),
}


@dataclass(frozen=True)
class Settings:
    app: str | None
    producer_only: bool
    result_db: str | None
    result_schema: Path | None
    pg_ctl: str | None
    #: Where ``app`` came from, for messages: the option or the ini key.
    app_label: str = "--cadasta-app"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cadasta", "Cadasta worker conformance")
    for name, (help_text, ini_type) in OPTIONS.items():
        flag = "--cadasta-" + name.replace("_", "-")
        if ini_type == "bool":
            group.addoption(flag, action="store_true", default=None,
                            dest=f"cadasta_{name}", help=help_text)
        else:
            group.addoption(flag, action="store", default=None,
                            dest=f"cadasta_{name}", metavar=name.upper(),
                            help=help_text)
        parser.addini(f"cadasta_{name}", help_text, type=ini_type, default=None)


def label(config: pytest.Config, name: str) -> str:
    """How the user spelled the setting ``name``: the option, or the ini key."""
    if config.getoption(f"cadasta_{name}") is not None:
        return "--cadasta-" + name.replace("_", "-")
    return f"cadasta_{name} (ini)"


def _value(config: pytest.Config, name: str) -> Any:
    """Command line, else ini, else None."""
    value = config.getoption(f"cadasta_{name}")
    if value is None:
        value = config.getini(f"cadasta_{name}")
    if value == "" and OPTIONS[name][1] == "string":
        return None
    return value


def read_settings(config: pytest.Config) -> Settings:
    """The settings, validated; a bad value is a ``pytest.UsageError``."""
    app = _value(config, "app")
    if app is not None:
        module, sep, attribute = app.partition(":")
        if not sep or not module or not attribute or ":" in attribute:
            raise pytest.UsageError(
                f"{label(config, 'app')}={app!r}: expected 'module:attribute', "
                "e.g. 'worker.celery:app'")
    result_db = _value(config, "result_db")
    if result_db is not None and not result_db.startswith(
            ("postgresql://", "postgres://", "postgresql+")):
        from cadasta_toolbox.secrets import mask_url

        raise pytest.UsageError(
            f"{label(config, 'result_db')}={mask_url(result_db)!r}: expected a PostgreSQL "
            "URL, e.g. 'postgresql://admin:secret@localhost:5432/postgres'")
    schema = _value(config, "result_schema")
    schema_path = None
    if schema is not None:
        # A relative path is relative to where it was written: the invocation
        # directory for the option, the ini file's directory for the ini key.
        from_cli = config.getoption("cadasta_result_schema") is not None
        base = (config.invocation_params.dir if from_cli or config.inipath is None
                else config.inipath.parent)
        schema_path = Path(base, schema)
        if not schema_path.is_file():
            raise pytest.UsageError(
                f"{label(config, 'result_schema')}={schema!r}: no such file "
                f"({schema_path})")
    producer_only = _value(config, "producer_only")
    return Settings(
        app=app,
        producer_only=bool(producer_only) if producer_only is not None else False,
        result_db=result_db,
        result_schema=schema_path,
        pg_ctl=_value(config, "pg_ctl"),
        app_label=label(config, "app"),
    )
