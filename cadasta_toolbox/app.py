"""Set-up a Cadasta worker (or producer) runs before it handles tasks."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["exclude_platform_queue", "setup_app"]

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
