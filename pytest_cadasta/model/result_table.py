"""What an app's Celery needs of the result tables, against what a result
database (or a DDL) has: the columns, tables and sequences it would miss, and
the SQL the platform's operator runs to add each (or the setting that stops
needing it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TASK_TABLE = "celery_taskmeta"
GROUP_TABLE = "celery_tasksetmeta"


@dataclass(frozen=True)
class Fault:
    """Why results cannot land: what was seen, and the one-line fix."""

    saw: str
    fix: str


def written_columns(app: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """The columns (name, PostgreSQL type) the app's Celery writes to
    celery_taskmeta, and which of them only ``result_extended`` writes."""
    from celery.backends.database.models import Task, TaskExtended
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    extended = bool(app.conf.find_value_for_key("extended", "result"))
    model = TaskExtended if extended else Task
    base = {column.name for column in Task.__mapper__.columns}
    columns = [(column.name, column.type.compile(dialect=dialect))
               for column in model.__mapper__.columns]
    return columns, [name for name, _ in columns if name not in base]


def column_fault(app: Any, have: tuple[str, ...] | set[str]) -> Fault | None:
    """What stops ``app``'s Celery from writing a result into a celery_taskmeta
    that has the columns ``have``: a column it writes that is missing (named
    with the ALTER TABLE that adds it), or the ``result_extended`` columns the
    platform's table has none of; None when every column is there."""
    written, only_extended = written_columns(app)
    have = set(have)
    missing = [(name, kind) for name, kind in written if name not in have]
    extended = [name for name, _ in missing if name in only_extended]
    plain = [(name, kind) for name, kind in missing if name not in only_extended]
    saws, fixes = [], []
    if extended:
        saws.append(f"result_extended = True: Celery writes {', '.join(extended)} to "
                    f"{TASK_TABLE}, columns the platform's Result table does not have")
        fixes.append("result_extended = False (Celery's default): the platform reads none of "
                     "those columns")
    if plain:
        saws.append(f"{TASK_TABLE} has no column {', '.join(n for n, _ in plain)}, which this "
                    "Celery writes with every result (it cannot add it under the restricted "
                    "role)")
        fixes.append("the platform's operator runs: " + "; ".join(
            f"ALTER TABLE {TASK_TABLE} ADD COLUMN {name} {kind}" for name, kind in plain))
    if saws:
        return Fault(saw="; ".join(saws) + " (every result store fails)", fix="; and ".join(fixes))
    return None


def fault(app: Any, columns: Callable[[str], tuple[str, ...]], exists: Callable[[str], bool],
          role: str) -> Fault | None:
    """What stops ``app``'s results from landing in the result tables that
    ``columns`` (table -> its columns) and ``exists`` (a table or sequence)
    describe; None when nothing does. ``role`` is the worker's role, for the
    grants in a fix."""
    found = column_fault(app, columns(TASK_TABLE))
    if found is not None:
        return found
    if not columns(GROUP_TABLE):
        return Fault(
            saw=f"there is no table {GROUP_TABLE}: Celery's database backend saves every "
                "chord's group there",
            fix=f"create {GROUP_TABLE} as cadasta_toolbox.schema.SCHEMA_SQL does, and GRANT "
                f"SELECT, INSERT, UPDATE ON {GROUP_TABLE} TO {role}")
    for sequence, table in (("task_id_sequence", TASK_TABLE),
                            ("taskset_id_sequence", GROUP_TABLE)):
        if not exists(sequence):
            return Fault(
                saw=f"there is no sequence {sequence}: Celery numbers {table} rows with "
                    f"nextval('{sequence}')",
                fix=f"the platform's operator runs: CREATE SEQUENCE {sequence}; GRANT USAGE "
                    f"ON SEQUENCE {sequence} TO {role}")
    return None


def schema_problem(sql: str) -> str | None:
    """What a result schema's DDL lacks that the plugin needs: a table
    ``celery_taskmeta`` with a column ``task_id`` (None: it has both)."""
    table = re.search(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:\"?\w+\"?\.)?"
                      r"\"?celery_taskmeta\"?\s*\((.*?)\)\s*;", sql, re.IGNORECASE | re.DOTALL)
    if table is None:
        return "no CREATE TABLE celery_taskmeta (the Result table Celery writes)"
    if not re.search(r"(^|[\s(,\"])task_id[\s\"]", table.group(1), re.IGNORECASE):
        return "celery_taskmeta has no column task_id (Celery finds a task's result by it)"
    return None
