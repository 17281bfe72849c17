"""Set-up a Cadasta worker (or producer) runs before it handles tasks."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["adopt_into_family", "exclude_platform_queue", "setup_app"]

logger = logging.getLogger(__name__)

#: Six hours at Celery's one-second retry delay (celery/celery#2725).
DEFAULT_CHORD_UNLOCK_MAX_RETRIES = 43200


def setup_app(app: Any, throw: bool = True) -> bool:
    """Declare the exchange and queues, and bound ``celery.chord_unlock`` retries.

    Returns whether set-up succeeded and records it as ``app.is_set_up``.
    With ``throw=False`` a failure is logged and set-up goes on with the rest.
    """
    ok = True
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in app.amqp.queues.values():
                queue(channel).declare()
    except Exception:
        ok = False
        if throw:
            app.is_set_up = False
            raise
        logger.exception("Cadasta set-up: declaring the exchange and queues failed")

    try:
        limit = app.conf.get("CHORD_UNLOCK_MAX_RETRIES")
        unlock = app.tasks["celery.chord_unlock"]
        if unlock.max_retries is None:
            unlock.max_retries = int(
                DEFAULT_CHORD_UNLOCK_MAX_RETRIES if limit is None else limit)
    except Exception:
        ok = False
        if throw:
            app.is_set_up = False
            raise
        logger.exception("Cadasta set-up: limiting celery.chord_unlock retries failed")

    app.is_set_up = ok
    return ok


def exclude_platform_queue(app: Any) -> bool:
    """Take the platform queue (``PLATFORM_QUEUE_NAME``) out of what this
    worker consumes; returns whether it was there.

    The platform's sync-tasks reads every task copy from that queue; a worker
    consuming it deletes those copies and runs its tasks a second time.
    """
    name = app.conf.PLATFORM_QUEUE_NAME
    queues = app.amqp.queues
    if name not in queues.consume_from:
        return False
    queues.deselect(name)
    logger.info("Cadasta set-up: not consuming %s, the platform's monitor queue", name)
    return True


def adopt_into_family(headers: Any, request: Any) -> bool:
    """Send a task message, published from inside the task of ``request``, as a
    child of that task when its headers name a parent and root outside the
    task's family; returns whether it did.

    Celery sends the errbacks of a chord whose part failed as children of the
    chord's body, which is never sent: its parent and root are the body's id.
    The platform's sync-tasks records a task only once it has recorded its
    parent and root, so it would lose those errbacks (the e-mail telling the
    user an export failed). Sent as children of the task that sends them
    (``celery.chord_unlock``), in its family, they are recorded.
    """
    if not isinstance(headers, dict) or request is None or not getattr(request, "id", None):
        return False
    root = getattr(request, "root_id", None) or request.id
    own_root = headers.get("root_id")
    if own_root in (None, root, headers.get("id")):
        return False
    logger.debug("Cadasta: %s (%s) sent in the family of %s, not of %s, which the platform "
                 "never recorded", headers.get("task"), headers.get("id"), root, own_root)
    headers["parent_id"] = request.id
    headers["root_id"] = root
    return True
