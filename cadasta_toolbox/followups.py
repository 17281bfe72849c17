"""Handing a task's own follow-ups on to the tasks it schedules."""

from __future__ import annotations

from typing import Any

__all__ = ["extract_followups"]


def extract_followups(task: Any) -> dict[str, Any]:
    """Take the callbacks and errbacks of a running bound task, to pass them on.

    A task that schedules other tasks finishes before they do; its own
    ``link``/``link_error`` belong after the last of them::

        chord(parts)(combine.s().set(**extract_followups(self)))

    Returns ``{'link': ..., 'link_error': ...}`` and clears only the task's
    callbacks, so the worker does not also run them when this task returns. Its
    errbacks stay: if the task fails after handing on, the platform still hears
    of it (as with cadasta-workertoolbox 0.6.0).
    """
    request = task.request
    followups = {"link": request.callbacks, "link_error": request.errbacks}
    request.callbacks = None
    return followups
