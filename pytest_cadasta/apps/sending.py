"""Sending a task and knowing, as it is published, whether kombu delivered it
to any queue (kombu's undeliverable warning, caught per thread)."""

from __future__ import annotations

import threading
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pytest_cadasta.basics.protocol import fail

#: The start of kombu's warning for a message routed to no queue (a filter on
#: it imports nothing). kombu warns only when a dead-letter queue is set: the
#: wiring sets one.
UNDELIVERABLE_WARNING = "Message could not be delivered"


@contextmanager
def undeliverable_by_thread(threads: Callable[[int], bool]) -> Iterator[dict[int, list[str]]]:
    """Collect, by thread, kombu's word for each message published inside the
    block by a thread ``threads`` accepts (its id) that reached no queue.
    Warnings of other threads (the worker's) and other warnings go on as they
    would have. (Python's warning filters are the process's: one block at a
    time, entered by one thread for all it watches.)"""
    found: dict[int, list[str]] = defaultdict(list)
    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=UNDELIVERABLE_WARNING)
        shown = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int,
                 file: Any = None, line: Any = None) -> None:
            text = str(message).strip()
            ident = threading.get_ident()
            if threads(ident) and text.startswith(UNDELIVERABLE_WARNING):
                found[ident].append(text)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield found


@contextmanager
def undeliverable() -> Iterator[list[str]]:
    """Collect, into the list it yields, kombu's word for each message published
    in this thread (inside the block) that reached no queue."""
    me = threading.get_ident()
    with undeliverable_by_thread(lambda ident: ident == me) as found:
        yield found[me]


def send_delivered(app: Any, name: str, who: str, needs: str, fix: str,
                   **options: Any) -> Any:
    """``app.send_task(name, **options)``; the check fails at once, saying
    ``who`` sent it, if kombu could route the message to no queue."""
    __tracebackhide__ = True
    with undeliverable() as lost:
        result = app.send_task(name, **options)
    if lost:
        fail(saw=f"{who} {name!r} reached no queue: {lost[0]}", needs=needs, fix=fix)
    return result
