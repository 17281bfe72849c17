"""What happened to each task, learned from Celery's signals in this process.

The in-process worker and every producer the checks drive run here, so
Celery's signals report publishes, receipts, runs and their outcomes as they
happen; a check waits for the event it needs instead of polling to see. A
timeout stays only as a safety net, and then the message says what was still
awaited and what had happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pytest_cadasta.basics.errors import one_line

#: Event kinds, in the order they happen to a task.
PUBLISHED = "published"
RECEIVED = "received"
UNKNOWN = "unknown"  # the worker got a message for a task it does not know
STARTED = "started"
SUCCEEDED = "succeeded"
FAILED = "failed"
FINISHED = "finished"  # task_postrun: the outcome is stored by now
INTERNAL_ERROR = "internal error"

#: Kinds after which nothing more will happen to a run.
DONE = (FINISHED, INTERNAL_ERROR, UNKNOWN)

#: The safety net of every wait (read as each wait begins): a round trip ends as
#: soon as the worker reports, long before.
ROUND_TRIP_TIMEOUT = 60.0


@dataclass(frozen=True)
class TaskEvent:
    kind: str
    task_id: str
    name: str | None
    #: When, on the monotonic clock.
    at: float
    #: What the signal said that a check may need (routing key, queue, state...).
    info: dict = field(default_factory=dict)


def _sqs_queue(delivery_info: Any) -> str | None:
    url = (delivery_info or {}).get("sqs_queue") or ""
    return url.rsplit("/", 1)[-1] or None


def _receiver(method: Callable[..., None]) -> Callable[..., None]:
    """A receiver of its own for ``method``. Celery before 5.7 keys a bound
    method's connection by its function alone, so a second ``TaskEvents`` (one
    per app of a system) connecting the same methods would be taken for the
    first and never hear a signal."""
    def receive(*args: Any, **kwargs: Any) -> None:
        method(*args, **kwargs)

    return receive


class TaskEvents:
    """Records Celery's task signals per task id; ``wait_for`` returns as soon
    as an awaited event is recorded."""

    def __init__(self) -> None:
        self._by_task: dict[str, list[TaskEvent]] = {}
        self._by_parent: dict[str, list[TaskEvent]] = {}
        self._published: list[TaskEvent] = []
        #: When the worker last failed to run or record a task (monotonic).
        self._last_internal_error = float("-inf")
        self._changed = threading.Condition()
        self._handlers: list[tuple[Any, Any]] = []

    # -- recording -------------------------------------------------------------
    def _record(self, kind: str, task_id: str | None, name: str | None, **info: Any) -> None:
        if task_id is None:
            return
        event = TaskEvent(kind, task_id, name, time.monotonic(), info)
        with self._changed:
            self._by_task.setdefault(task_id, []).append(event)
            if kind == INTERNAL_ERROR:
                self._last_internal_error = event.at
            if kind == PUBLISHED:
                self._published.append(event)
                parent = info.get("parent_id")
                if parent is not None:
                    self._by_parent.setdefault(parent, []).append(event)
            self._changed.notify_all()

    def _on_publish(self, sender: Any = None, headers: Any = None, exchange: Any = None,
                    routing_key: Any = None, body: Any = None, **kwargs: Any) -> None:
        headers = headers or {}
        args, kwargs_sent = (body[0], body[1]) if isinstance(body, (list, tuple)) \
            and len(body) == 3 else (None, None)
        self._record(PUBLISHED, headers.get("id"), sender, exchange=exchange,
                     routing_key=routing_key, parent_id=headers.get("parent_id"),
                     root_id=headers.get("root_id"), args=args, kwargs=kwargs_sent,
                     eta=headers.get("eta"), sent_at=time.time())

    def _on_received(self, sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        message = getattr(request, "message", None)
        self._record(RECEIVED, request.id, request.name,
                     queue=_sqs_queue(getattr(message, "delivery_info", None)),
                     worker=getattr(sender, "hostname", None))

    def _on_unknown(self, sender: Any = None, name: Any = None, id: Any = None,
                    message: Any = None, **kwargs: Any) -> None:
        self._record(UNKNOWN, id, name,
                     queue=_sqs_queue(getattr(message, "delivery_info", None)),
                     worker=getattr(sender, "hostname", None))

    def _on_prerun(self, sender: Any = None, task_id: Any = None, task: Any = None,
                   **kwargs: Any) -> None:
        self._record(STARTED, task_id, getattr(task, "name", None))

    def _on_success(self, sender: Any = None, **kwargs: Any) -> None:
        request = getattr(sender, "request", None)
        self._record(SUCCEEDED, getattr(request, "id", None), getattr(sender, "name", None))

    def _on_failure(self, sender: Any = None, task_id: Any = None, exception: Any = None,
                    **kwargs: Any) -> None:
        self._record(FAILED, task_id, getattr(sender, "name", None), exception=exception)

    def _on_postrun(self, sender: Any = None, task_id: Any = None, task: Any = None,
                    state: Any = None, **kwargs: Any) -> None:
        self._record(FINISHED, task_id, getattr(task, "name", None), state=state)

    def _on_internal_error(self, sender: Any = None, task_id: Any = None,
                           exception: Any = None, **kwargs: Any) -> None:
        self._record(INTERNAL_ERROR, task_id, getattr(sender, "name", None),
                     exception=exception)

    def connect(self) -> TaskEvents:
        from celery import signals

        for signal, handler in (
                (signals.after_task_publish, self._on_publish),
                (signals.task_received, self._on_received),
                (signals.task_unknown, self._on_unknown),
                (signals.task_prerun, self._on_prerun),
                (signals.task_success, self._on_success),
                (signals.task_failure, self._on_failure),
                (signals.task_postrun, self._on_postrun),
                (signals.task_internal_error, self._on_internal_error)):
            receiver = _receiver(handler)
            signal.connect(receiver, weak=False)
            self._handlers.append((signal, receiver))
        return self

    def disconnect(self) -> None:
        for signal, handler in self._handlers:
            signal.disconnect(handler)
        self._handlers.clear()

    # -- reading -----------------------------------------------------------------
    def of(self, task_id: str, kinds: Iterable[str] | None = None) -> list[TaskEvent]:
        """The events of ``task_id`` so far (of ``kinds``, if given), oldest first."""
        wanted = None if kinds is None else set(kinds)
        with self._changed:
            return [e for e in self._by_task.get(task_id, ())
                    if wanted is None or e.kind in wanted]

    def published_by(self, parent_id: str) -> list[TaskEvent]:
        """The publishes of tasks whose parent is ``parent_id`` (scheduled by it)."""
        with self._changed:
            return list(self._by_parent.get(parent_id, ()))

    def published(self, name: str | None = None, since: float = 0.0) -> list[TaskEvent]:
        """The publishes of tasks named ``name`` (any name: None) since ``since``
        (monotonic), oldest first."""
        with self._changed:
            return [e for e in self._published
                    if (name is None or e.name == name) and e.at >= since]

    def _wait(self, find: Callable[[], TaskEvent | None],
              timeout: float | None) -> TaskEvent | None:
        """``find()`` once it finds something, re-asked at each new event, for at
        most ``timeout`` seconds (a safety net, ``ROUND_TRIP_TIMEOUT`` by
        default: None if nothing came). None at once when the worker fails to
        run or record a task meanwhile (its result database or broker failing):
        what is awaited may never come."""
        began = time.monotonic()
        deadline = began + (ROUND_TRIP_TIMEOUT if timeout is None else timeout)
        with self._changed:
            while True:
                found = find()
                left = deadline - time.monotonic()
                if found is not None or left <= 0 or self._last_internal_error >= began:
                    return found
                self._changed.wait(left)

    def wait_for_publish(self, name: str, since: float,
                         timeout: float | None = None) -> TaskEvent | None:
        """The first publish of a task named ``name`` since ``since``, waiting for
        it at most ``timeout`` seconds (a safety net: None if it never came)."""
        return self._wait(lambda: next((e for e in self._published
                                        if e.name == name and e.at >= since), None), timeout)

    def wait_for(self, task_id: str, kinds: Iterable[str], timeout: float | None = None,
                 since: float = 0.0) -> TaskEvent | None:
        """The first event of ``task_id`` among ``kinds`` (at or after ``since``),
        waiting for it at most ``timeout`` seconds (a safety net: None if it
        never came)."""
        wanted = set(kinds)
        return self._wait(lambda: next((e for e in self._by_task.get(task_id, ())
                                        if e.kind in wanted and e.at >= since), None), timeout)

    def story(self, task_id: str) -> str:
        """What happened to ``task_id``, for a message: 'published (routing key
        'export'), received from dev-export, finished (SUCCESS)'."""
        parts = []
        for event in self.of(task_id):
            detail = ""
            if event.kind == PUBLISHED:
                detail = f" (routing key {event.info.get('routing_key')!r})"
            elif event.kind in (RECEIVED, UNKNOWN) and event.info.get("queue"):
                detail = f" from {event.info['queue']}"
            elif event.kind == FINISHED:
                detail = f" ({event.info.get('state')})"
            elif event.kind in (FAILED, INTERNAL_ERROR):
                exc = event.info.get("exception")
                detail = f" ({one_line(exc)})" if exc is not None else ""
                cause = getattr(exc, "__cause__", None)
                if event.kind == INTERNAL_ERROR and cause is not None:
                    detail = f"{detail[:-1]}, from {one_line(cause)})"
            parts.append(event.kind + detail)
        return ", ".join(parts) or "nothing (never published)"
