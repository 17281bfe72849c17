"""The platform, played inside the run: its sync-tasks recording what reaches
its monitor queue into its Task table, and each task as it shows it (its row
joined to its result row)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_cadasta.basics.errors import InfrastructureError, first_line
from pytest_cadasta.basics.messages import CHORD_UNLOCK
from pytest_cadasta.model.sync_rules import Refusal, read
from pytest_cadasta.model.task_table import store, view_query

if TYPE_CHECKING:
    from pytest_cadasta.basics.messages import TaskMessage
    from pytest_cadasta.services.events import TaskEvents
    from pytest_cadasta.services.resultdb import ResultDatabase
    from pytest_cadasta.services.sqs import Tap



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
    #: The result row's ``result`` as Celery stored it (bytes, in the app's
    #: result serializer), and its traceback.
    result: bytes | None
    traceback: str | None
    #: Whether a result row joins it.
    has_result: bool


def family_status(statuses: list[str | None]) -> str:
    """A family's status as the platform works it out from its members' result
    statuses (None: no result row yet), ``celery.chord_unlock`` left out
    before: one status is the family's (none: PENDING, where the platform's
    own code would fail on an empty family); several are FAILURE if one
    failed, else STARTED."""
    distinct = set(statuses)
    if len(distinct) > 1:
        return "FAILURE" if "FAILURE" in distinct else "STARTED"
    only = next(iter(distinct), None)
    return only or "PENDING"


class Platform:
    """The platform's sync-tasks over one monitor queue, and its view of what it
    recorded in its Task table (in the run's result database).

    Every message read from the monitor (by anyone: the checks, the users'
    tests through ``cadasta_sqs``, a purge) comes here through the queue's tap
    as it is read; ``sync()`` reads what is still in the queue and records all
    it received, in order, each message in a transaction of its own as the
    platform does. Recording waits until the platform's view is asked for, so
    the checks that only publish never wait for PostgreSQL. ``events`` (Celery's
    signals) say what was published: a task the platform was never sent, and
    when a wait may end."""

    def __init__(self, tap: Tap, database: Callable[[], ResultDatabase],
                 events: TaskEvents) -> None:
        self.tap = tap
        self.monitor = tap.label
        self._database = database
        self._events = events
        self._received: list[TaskMessage] = []  # appended by the tap, in any thread
        self._refusals: list[Refusal] = []
        self._lock = threading.RLock()
        self._connection: Any = None
        tap.consumers.append(self._received.extend)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

    # -- recording ------------------------------------------------------------------
    def sync(self) -> None:
        """Record every message the monitor queue received so far. A database
        that went away keeps what was not recorded for a later try, as the
        platform does, and says so (``InfrastructureError``)."""
        import psycopg

        with self._lock:
            self.tap.drain()
            received = self._received[:]
            del self._received[:len(received)]
            done = 0
            try:
                for message in received:
                    found = read(message)
                    if not isinstance(found, Refusal):
                        found = store(self._connect(), found, self._was_published)
                    if found is not None:
                        self._refusals.append(found)
                    done += 1
            except psycopg.OperationalError as exc:
                raise InfrastructureError(
                    f"the result database went away: {first_line(exc)}") from None
            finally:
                self._received[:0] = received[done:]

    def _was_published(self, task_id: str) -> bool:
        from pytest_cadasta.services.events import PUBLISHED

        return bool(self._events.of(task_id, (PUBLISHED,)))

    def _connect(self) -> Any:
        if self._connection is None or self._connection.closed:
            self._connection = self._database().admin_connection_open()
        return self._connection

    # -- the platform's view ------------------------------------------------------------
    def lost(self) -> list[Refusal]:
        """Every task message of the run the platform could not record, with why."""
        self.sync()
        return list(self._refusals)

    def refusal(self, task_id: str) -> Refusal | None:
        return next((r for r in self.lost() if r.task_id == task_id), None)

    def _select(self, where: str = "", params: tuple = ()) -> list[PlatformTask]:
        import psycopg

        with self._lock:
            self.sync()
            query = view_query(self._database().columns("celery_taskmeta"), where)
            try:
                rows = self._connect().execute(query, params).fetchall()
            except psycopg.OperationalError as exc:
                raise InfrastructureError(
                    f"the result database went away: {first_line(exc)}") from None
        return [PlatformTask(*row[:6], status=row[6] or "PENDING", result=row[7],
                             traceback=row[8], has_result=row[6] is not None)
                for row in rows]

    def task(self, task_id: str) -> PlatformTask | None:
        """The task as the platform shows it (None: never recorded)."""
        found = self._select("WHERE t.task_id = %s", (task_id,))
        return found[0] if found else None

    def tasks(self) -> list[PlatformTask]:
        """Every task of the run the platform recorded, in the order it did."""
        return self._select()

    def family(self, root_id: str) -> list[PlatformTask]:
        """The tasks of one family (one root), as the platform groups them."""
        return self._select("WHERE t.root_id = %s", (root_id,))

    def family_status(self, root_id: str) -> str:
        """The status the platform shows for a family: ``family_status`` of its
        members' statuses, ``celery.chord_unlock`` left out."""
        return family_status([t.status if t.has_result else None
                              for t in self.family(root_id) if t.type != CHORD_UNLOCK])

    def wait_for(self, task_id: str, timeout: float = 60.0) -> PlatformTask | None:
        """The task once the platform recorded it; None if it was refused (see
        ``refusal``) or not published within ``timeout``. Known from Celery's
        publish signal: the copy is in the monitor queue as the publish
        returns, so one look after it says all."""
        from pytest_cadasta.services.events import PUBLISHED

        found = self.task(task_id)
        if found is not None or self.refusal(task_id) is not None:
            return found
        deadline = time.monotonic() + timeout
        self._events.wait_for(task_id, (PUBLISHED,), timeout=max(0.0, deadline -
                                                                   time.monotonic()))
        return self.task(task_id)
