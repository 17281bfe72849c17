"""The platform's result tables, and a worker role that may touch only them.

Celery's database result backend runs ``create_all`` on first use; under a
restricted role that only succeeds when every table, sequence and column it
knows already exists, ``result_extended`` columns included.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["RESULT_TABLES", "RESULT_SEQUENCES", "SCHEMA_SQL", "grant_sql",
           "apply_result_schema"]

RESULT_TABLES = ("celery_taskmeta", "celery_tasksetmeta")
RESULT_SEQUENCES = ("task_id_sequence", "taskset_id_sequence")

SCHEMA_SQL = """
CREATE SEQUENCE IF NOT EXISTS task_id_sequence;
CREATE SEQUENCE IF NOT EXISTS taskset_id_sequence;

CREATE TABLE IF NOT EXISTS celery_taskmeta (
    id INTEGER NOT NULL DEFAULT nextval('task_id_sequence') PRIMARY KEY,
    task_id VARCHAR(155) UNIQUE,
    status VARCHAR(50),
    result BYTEA,
    date_done TIMESTAMP WITHOUT TIME ZONE,
    traceback TEXT,
    children BYTEA,
    name VARCHAR(155),
    args BYTEA,
    kwargs BYTEA,
    worker VARCHAR(155),
    retries INTEGER,
    queue VARCHAR(155),
    stamps BYTEA
);
CREATE INDEX IF NOT EXISTS ix_celery_taskmeta_date_done
    ON celery_taskmeta (date_done);

CREATE TABLE IF NOT EXISTS celery_tasksetmeta (
    id INTEGER NOT NULL DEFAULT nextval('taskset_id_sequence') PRIMARY KEY,
    taskset_id VARCHAR(155) UNIQUE,
    result BYTEA,
    date_done TIMESTAMP WITHOUT TIME ZONE
);
CREATE INDEX IF NOT EXISTS ix_celery_tasksetmeta_date_done
    ON celery_tasksetmeta (date_done);
"""

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _require_identifier(role: str) -> None:
    if not IDENTIFIER.match(role):
        raise ValueError(f"role name {role!r} is not a plain SQL identifier")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def grant_sql(role: str) -> str:
    """SQL granting ``role`` SELECT/INSERT/UPDATE on the result tables, USAGE on
    their sequences, and nothing else."""
    _require_identifier(role)
    tables = ", ".join(RESULT_TABLES)
    sequences = ", ".join(RESULT_SEQUENCES)
    return (
        f"REVOKE ALL ON {tables} FROM {role};\n"
        f"GRANT SELECT, INSERT, UPDATE ON {tables} TO {role};\n"
        f"REVOKE ALL ON SEQUENCE {sequences} FROM {role};\n"
        f"GRANT USAGE ON SEQUENCE {sequences} TO {role};\n"
    )


def apply_result_schema(connection: Any, role: str, password: str,
                        schema_sql: str = SCHEMA_SQL) -> None:
    """Create the result tables and the worker role on a DB-API connection.

    Idempotent: running it twice changes nothing but the role's password.
    Commits on success.
    """
    _require_identifier(role)
    cursor = connection.cursor()
    try:
        cursor.execute(schema_sql)
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = " + _literal(role))
        verb = "ALTER" if cursor.fetchone() else "CREATE"
        cursor.execute(
            f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"PASSWORD {_literal(password)}")
        cursor.execute(grant_sql(role))
        connection.commit()
    except Exception:
        connection.rollback()
        raise
    finally:
        cursor.close()
