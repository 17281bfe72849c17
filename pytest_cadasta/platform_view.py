"""The platform, played inside the run: its Task table beside the result
tables, its sync-tasks recording what reaches the monitor queue, and its view
of each task (its row joined to its result row, as the platform shows it)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_cadasta.errors import InfrastructureError
from pytest_cadasta.sync_rules import RELATED_OBJECT_ID_LENGTH, Record, Refusal, read

if TYPE_CHECKING:
    from pytest_cadasta.events import TaskEvents
    from pytest_cadasta.messages import TaskMessage
    from pytest_cadasta.resultdb import ResultDatabase
    from pytest_cadasta.sqs import Tap

#: The platform's random ids: 24 characters, letters and digits without the
#: ones that look alike.
ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
#: Celery's own task the platform leaves out of a family's status (it stores no
#: result).
CHORD_UNLOCK = "celery.chord_unlock"


def _random_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(RELATED_OBJECT_ID_LENGTH))


@dataclass(frozen=True)
class PlatformTask:
    """A task as the platform shows it: its Task row and, joined by task_id,
    its result row (none yet: PENDING)."""

    task_id: str
    type: str
    input: dict
    options: dict
    parent_id: str | None
    root_id: str
    #: The result row's status, else PENDING.
    status: str
    #: The result row's ``result`` as stored (bytes), and its traceback.
    result: bytes | None
    traceback: str | None
    #: Whether a result row joins it.
    has_result: bool


def family_status(statuses: list[str | None]) -> str:
    """A family's status as the platform works it out from its members' result
    statuses (None: no result row yet), ``celery.chord_unlock`` left out
    before: one status is the family's (none at all: PENDING); several are
    FAILURE if one failed, else STARTED."""
    distinct = set(statuses)
    if len(distinct) > 1:
        return "FAILURE" if "FAILURE" in distinct else "STARTED"
    only = next(iter(distinct), None)
    return only or "PENDING"


class Platform:
    """The platform's sync-tasks over one monitor queue, recording into its Task
    table in the result database; and the platform's view of what it recorded.

    Every message read from the monitor (by anyone: the checks, the users'
    tests through ``cadasta_sqs``, a purge) comes here through the queue's tap
    as it is read; ``sync()`` reads what is still in the queue and records
    everything received, in order, each message in its own transaction as the
    platform does. Recording waits until the platform's view is asked for, so
    the checks that only publish never wait for PostgreSQL."""

    def __init__(self, tap: Tap, database: Callable[[], ResultDatabase],
                 events: TaskEvents | None = None) -> None:
        self.tap = tap
        self.monitor = tap.label
        self._database = database
        self._events = events
        self._received: list[TaskMessage] = []
        self._refusals: list[Refusal] = []
        self._lock = threading.RLock()
        self._connection: Any = None
        tap.consumers.append(self.receive)

    def receive(self, messages: list[TaskMessage]) -> None:
        """Messages read from the monitor queue, to record."""
        with self._lock:
            self._received += messages

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    # -- recording ------------------------------------------------------------------
    def sync(self) -> None:
        """Record every message the monitor queue received so far."""
        with self._lock:
            self.tap.drain()
            received, self._received = self._received, []
            for index, message in enumerate(received):
                try:
                    refusal = self._record(message)
                except InfrastructureError:
                    self._received = received[index:] + self._received  # a later try
                    raise
                if refusal is not None:
                    self._refusals.append(refusal)

    def _connect(self) -> Any:
        if self._connection is None or self._connection.closed:
            database = self._database()
            self._connection = database.admin_connection_open()
        return self._connection

    def _record(self, message: TaskMessage) -> Refusal | None:
        """Get-or-create the Task row of ``message``, as sync-tasks does; a
        refusal (the task lost to the platform) says why."""
        import psycopg

        found = read(message)
        if isinstance(found, Refusal):
            return found
        try:
            values = _row_values(found)
        except (TypeError, ValueError) as exc:
            return Refusal(found.task_id, found.type,
                           f"its input or options hold a value JSON cannot store ({exc})",
                           "pass only JSON values in a task's args, kwargs and options "
                           "(ids, not objects)")
        connection = self._connect()
        try:
            with connection.transaction():
                cursor = connection.execute(
                    "SELECT 1 FROM tasks_backgroundtask WHERE task_id = %s", (found.task_id,))
                if cursor.fetchone() is None:
                    connection.execute(
                        "INSERT INTO tasks_backgroundtask (id, task_id, type, created_date, "
                        "last_updated, input, options, related_object_id, creator_id, "
                        "parent_id, related_content_type_id, root_id) VALUES (%s, %s, %s, "
                        "now(), now(), %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s)", values)
        except psycopg.OperationalError as exc:
            raise InfrastructureError(f"the platform's Task table went away: {exc}") from None
        except psycopg.Error as exc:
            return Refusal(found.task_id, found.type, _refused_by_table(exc, found),
                           _fix_for(exc, found))
        return None

    # -- the platform's view ------------------------------------------------------------
    def lost(self) -> list[Refusal]:
        """Every task message the platform could not record, with why."""
        self.sync()
        return list(self._refusals)

    def refusal(self, task_id: str) -> Refusal | None:
        return next((r for r in self.lost() if r.task_id == task_id), None)

    def _select(self, where: str = "", params: tuple = ()) -> list[PlatformTask]:
        self.sync()
        columns = self._database().columns("celery_taskmeta")
        result = [f"r.{c}" if c in columns else "NULL" for c in ("status", "result", "traceback")]
        query = ("SELECT t.task_id, t.type, t.input, t.options, t.parent_id, t.root_id, "
                 f"{', '.join(result)} FROM tasks_backgroundtask t LEFT JOIN celery_taskmeta r "
                 f"ON r.task_id = t.task_id {where} ORDER BY t.created_date, t.task_id")
        connection = self._connect()
        rows = connection.execute(query, params).fetchall()
        return [PlatformTask(*row[:6], status=row[6] or "PENDING", result=row[7],
                             traceback=row[8], has_result=row[6] is not None)
                for row in rows]

    def task(self, task_id: str) -> PlatformTask | None:
        """The task as the platform shows it (None: never recorded)."""
        found = self._select("WHERE t.task_id = %s", (task_id,))
        return found[0] if found else None

    def tasks(self) -> list[PlatformTask]:
        """Every task the platform recorded, in the order it recorded them."""
        return self._select()

    def family(self, root_id: str) -> list[PlatformTask]:
        """The tasks of one family (one root), as the platform groups them."""
        return self._select("WHERE t.root_id = %s", (root_id,))

    def family_status(self, root_id: str) -> str:
        """The status the platform shows for a family: ``family_status`` of its
        members' statuses, ``celery.chord_unlock`` left out."""
        return family_status([t.status if t.has_result else None
                              for t in self.family(root_id) if t.type != CHORD_UNLOCK])

    def wait_for(self, task_id: str, timeout: float = 10.0) -> PlatformTask | None:
        """The task once the platform recorded it; None if it was refused (see
        ``refusal``) or never reached the monitor within ``timeout``. Known from
        Celery's publish signal where this process published it: the copy is in
        the monitor queue as the publish returns."""
        from pytest_cadasta.events import PUBLISHED

        deadline = time.monotonic() + timeout
        while True:
            found = self.task(task_id)
            if found is not None or self.refusal(task_id) is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self._events is not None:
                if self._events.of(task_id, (PUBLISHED,)):
                    return self.task(task_id)  # published: in the monitor now, or never
                self._events.wait_for(task_id, (PUBLISHED,), timeout=left)
            else:
                time.sleep(min(left, 0.05))


def _row_values(record: Record) -> tuple:
    return (_random_id(), record.task_id, record.type,
            json.dumps(record.input), json.dumps(record.options),
            record.related_object_id, record.creator_id, record.parent_id,
            record.related_content_type_id, record.root_id)


def _refused_by_table(exc: Any, record: Record) -> str:
    """Why the Task table refused ``record``, in the platform's terms."""
    import psycopg

    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return (f"its parent {record.parent_id!r} or root {record.root_id!r} was never "
                f"recorded ({detail}): sync-tasks records a task only after its parent "
                "and its root")
    if isinstance(exc, psycopg.errors.StringDataRightTruncation):
        return (f"a value is too long for its column ({detail}): task_id holds 155 "
                f"characters, type (the task's name, {len(record.type)} here) 128, "
                f"related_object_id {RELATED_OBJECT_ID_LENGTH}")
    return f"the Task table refused it: {detail}"


def _fix_for(exc: Any, record: Record) -> str:
    import psycopg

    if isinstance(exc, psycopg.errors.ForeignKeyViolation) and record.parent_id == record.root_id:
        return ("a failed chord's errbacks go out as children of its body, which is never "
                "sent: configure the worker with cadasta_toolbox.config.Config (it sends them "
                "in the family of the task that sends them), or call "
                "cadasta_toolbox.app.adopt_into_family(headers, current_task.request) in a "
                "before_task_publish handler")
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return ("make every task message reach the monitor queue, the parent's first "
                "(the router of cadasta_toolbox.config.Config)")
    if isinstance(exc, psycopg.errors.StringDataRightTruncation):
        return f"rename {record.type[:40]!r}... within 128 characters"
    return "see the platform's Task table (tasks_backgroundtask)"
