"""The platform's result tables, and a worker role that may touch only them.

``celery_taskmeta`` is the platform's Result table (its migration's columns)
plus ``children``, which current Celery writes; it has none of the
``result_extended`` columns, as the platform has none. ``celery_tasksetmeta``
is as Celery creates it (chords with the database backend use it). Celery's
backend runs ``create_all`` on first use and then tries to add each column it
knows that a table lacks; under a restricted role that fails, and a store
that names a missing column fails with it.
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
    status VARCHAR(50) NOT NULL,
    result BYTEA,
    date_done TIMESTAMP WITH TIME ZONE,
    traceback TEXT,
    children BYTEA
);

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


def grant_sql(role: str, tables: tuple[str, ...] = RESULT_TABLES,
              sequences: tuple[str, ...] = RESULT_SEQUENCES) -> str:
    """SQL granting ``role`` SELECT/INSERT/UPDATE on the result tables, USAGE on
    their sequences, and nothing else."""
    _require_identifier(role)
    statements = []
    if tables:
        names = ", ".join(tables)
        statements += [f"REVOKE ALL ON {names} FROM {role};",
                       f"GRANT SELECT, INSERT, UPDATE ON {names} TO {role};"]
    if sequences:
        names = ", ".join(sequences)
        statements += [f"REVOKE ALL ON SEQUENCE {names} FROM {role};",
                       f"GRANT USAGE ON SEQUENCE {names} TO {role};"]
    return "".join(statement + "\n" for statement in statements)


def apply_result_schema(connection: Any, role: str, password: str,
                        schema_sql: str = SCHEMA_SQL) -> None:
    """Create the result tables and the worker role on a DB-API connection.

    Idempotent: running it twice changes nothing but the role's password.
    Grants only on the result tables and sequences ``schema_sql`` made (a
    platform's own DDL may lack one: Celery then says what it misses).
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
        existing = []
        for name in (*RESULT_TABLES, *RESULT_SEQUENCES):
            cursor.execute(f"SELECT to_regclass({_literal(name)})")
            existing.append(cursor.fetchone()[0] is not None)
        tables = tuple(n for n, e in zip(RESULT_TABLES, existing) if e)
        sequences = tuple(n for n, e in zip(RESULT_SEQUENCES, existing[len(RESULT_TABLES):])
                          if e)
        cursor.execute(grant_sql(role, tables, sequences))
        connection.commit()
    except Exception:
        connection.rollback()
        raise
    finally:
        cursor.close()
