"""The platform's Task table: its DDL, and one message's row stored as the
platform's sync-tasks stores it (get-or-create by task_id, in a transaction of
its own), what the table refuses said in the platform's terms."""

from __future__ import annotations

import json
import secrets
from typing import Any

from pytest_cadasta.basics.errors import first_line
from pytest_cadasta.model.sync_rules import RELATED_OBJECT_ID_LENGTH, Record, Refusal

#: The platform's Task table as its Django migration makes it (and the two
#: tables its foreign keys name, reduced to their keys). Owned by the
#: administrator: the worker role gets no privilege on any of it.
TASK_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS accounts_user (id SERIAL PRIMARY KEY);
CREATE TABLE IF NOT EXISTS django_content_type (
    id SERIAL PRIMARY KEY,
    app_label VARCHAR(100) NOT NULL,
    model VARCHAR(100) NOT NULL,
    UNIQUE (app_label, model)
);
CREATE TABLE IF NOT EXISTS tasks_backgroundtask (
    id VARCHAR(24) NOT NULL PRIMARY KEY,
    task_id VARCHAR(155) NOT NULL UNIQUE,
    type VARCHAR(128) NOT NULL,
    created_date TIMESTAMP WITH TIME ZONE NOT NULL,
    last_updated TIMESTAMP WITH TIME ZONE NOT NULL,
    input JSONB NOT NULL,
    options JSONB NOT NULL,
    related_object_id VARCHAR(24) NULL,
    immutable BOOLEAN NULL,
    creator_id INTEGER NULL
        REFERENCES accounts_user (id) DEFERRABLE INITIALLY DEFERRED,
    parent_id VARCHAR(155) NULL
        REFERENCES tasks_backgroundtask (task_id) DEFERRABLE INITIALLY DEFERRED,
    related_content_type_id INTEGER NULL
        REFERENCES django_content_type (id) DEFERRABLE INITIALLY DEFERRED,
    root_id VARCHAR(155) NOT NULL
        REFERENCES tasks_backgroundtask (task_id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX IF NOT EXISTS tasks_backgroundtask_root_id ON tasks_backgroundtask (root_id);
CREATE INDEX IF NOT EXISTS tasks_backgroundtask_parent_id ON tasks_backgroundtask (parent_id);
"""

#: The platform's random ids: 24 characters, letters and digits without the
#: ones that look alike.
ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
#: The columns of a task as the platform shows it: its row, joined by task_id
#: to its result row's status, result and traceback.
VIEW = ("t.task_id", "t.type", "t.input", "t.options", "t.parent_id", "t.root_id")
RESULT = ("status", "result", "traceback")


def _random_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(RELATED_OBJECT_ID_LENGTH))


def store(connection: Any, record: Record,
          was_published: Any = lambda task_id: True) -> Refusal | None:
    """Get-or-create the Task row of ``record`` on ``connection`` (autocommit),
    in a transaction of its own, as sync-tasks does; a refusal (the task lost
    to the platform) says why. The run has no users or content types: those a
    message names (the platform's producer sets ``creator_id`` and
    ``related_content_type_id``) are taken to exist. ``was_published`` tells a
    parent that was never sent (a failed chord's body) from one that was."""
    import psycopg

    try:
        values = (_random_id(), record.task_id, record.type, json.dumps(record.input),
                  json.dumps(record.options), record.related_object_id, record.creator_id,
                  record.parent_id, record.related_content_type_id, record.root_id)
    except (TypeError, ValueError) as exc:
        return Refusal(record.task_id, record.type,
                       f"its input or options hold a value JSON cannot store ({exc})",
                       "pass only JSON values in a task's args, kwargs and options "
                       "(ids, not objects)")
    try:
        with connection.transaction():
            if connection.execute("SELECT 1 FROM tasks_backgroundtask WHERE task_id = %s",
                                  (record.task_id,)).fetchone() is not None:
                return None  # recorded already (a retry resends its id): nothing changes
            _known(connection, record)
            connection.execute(
                "INSERT INTO tasks_backgroundtask (id, task_id, type, created_date, "
                "last_updated, input, options, related_object_id, creator_id, parent_id, "
                "related_content_type_id, root_id) VALUES (%s, %s, %s, now(), now(), "
                "%s::jsonb, %s::jsonb, %s, %s, %s, %s, %s)", values)
    except psycopg.OperationalError:
        raise  # the database went away: the caller keeps the message for a later try
    except psycopg.Error as exc:
        return _refused(exc, record, was_published)
    return None


def _known(connection: Any, record: Record) -> None:
    """The user and content type a message names, as rows of their tables."""
    if isinstance(record.creator_id, int):
        connection.execute("INSERT INTO accounts_user (id) VALUES (%s) ON CONFLICT DO NOTHING",
                           (record.creator_id,))
    kind = record.related_content_type_id
    if isinstance(kind, int):
        connection.execute("INSERT INTO django_content_type (id, app_label, model) VALUES "
                           "(%s, 'cadasta', %s) ON CONFLICT DO NOTHING", (kind, f"model{kind}"))


def _refused(exc: Any, record: Record, was_published: Any) -> Refusal:
    """What the Task table refused, in the platform's terms, with the fix."""
    import psycopg

    detail = first_line(exc)
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        missing = [f"{what} {task_id!r}" for what, task_id in
                   (("parent", record.parent_id), ("root", record.root_id)) if task_id]
        reason = (f"its {' or '.join(missing)} was never recorded ({detail}): sync-tasks "
                  "records a task only after its parent and its root")
        unsent = [task_id for task_id in {record.parent_id, record.root_id}
                  if task_id and not was_published(task_id)]
        if unsent:
            return Refusal(record.task_id, record.type,
                           f"{reason}; {unsent[0]!r} was never sent (a failed chord's body)",
                           "a failed chord's errbacks go out as children of its body, which "
                           "is never sent: configure the worker with "
                           "cadasta_toolbox.config.Config (it sends them in the family of the "
                           "task that sends them), or call cadasta_toolbox.app."
                           "adopt_into_family(headers, current_task.request) in a "
                           "before_task_publish handler")
        return Refusal(record.task_id, record.type, reason,
                       "make every task message reach the monitor queue, the parent's first "
                       "(the router of cadasta_toolbox.config.Config)")
    return Refusal(record.task_id, record.type, f"the Task table refused it: {detail}",
                   "see the platform's Task table (tasks_backgroundtask)")


def view_query(result_columns: tuple[str, ...], where: str = "") -> str:
    """The query of tasks as the platform shows them: ``VIEW`` and, of the result
    row joined by task_id, ``RESULT`` (NULL for a column the table lacks)."""
    result = [f"r.{c}" if c in result_columns else "NULL" for c in RESULT]
    return (f"SELECT {', '.join(VIEW)}, {', '.join(result)} FROM tasks_backgroundtask t "
            f"LEFT JOIN celery_taskmeta r ON r.task_id = t.task_id {where} "
            "ORDER BY t.created_date, t.task_id")
