"""The route a task name really gets from an app's own router: the exchange,
routing key and queue its message is published with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Unroutable:
    """Stands for the queue of a name the app's router could not route."""

    name: str
    routing_key: None = None
    exchange: None = None


def route(app: Any, name: str) -> dict:
    """The route the app's own router gives ``name`` (Celery's Router)."""
    return app.amqp.router.route({}, name)


def effective_route(app: Any, name: str) -> tuple[str | None, str | None, Any]:
    """(exchange, routing key, queue) a message of ``name`` is published with,
    as Celery's send_task_message settles them."""
    try:
        found = route(app, name)
    except Exception as exc:  # e.g. QueueNotFound from Celery's router
        return None, None, Unroutable(f"<{type(exc).__name__}: {exc}>")
    queue = found.get("queue")
    exchange = found.get("exchange")
    key = found.get("routing_key")
    exchange = getattr(exchange, "name", exchange)
    if queue is not None:
        if exchange is None:
            exchange = queue.exchange.name if queue.exchange is not None else ""
        if key is None:
            key = queue.routing_key
    return exchange, key, queue


def routed_queue(app: Any, name: str) -> str | None:
    """The queue a message of ``name`` goes to: the route's queue, else its key."""
    _exchange, key, queue = effective_route(app, name)
    return queue.name if queue is not None else key
