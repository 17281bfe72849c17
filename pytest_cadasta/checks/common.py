"""What several groups need: the route a task name really gets, the usual
fixes, and short descriptions of what was seen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_cadasta.conformance import TOOLBOX

if TYPE_CHECKING:
    from pytest_cadasta.conformance import Conformance

__all__ = ["TOOLBOX", "Unroutable", "add_platform_queue_fix", "describe", "effective_route",
           "monitor_fix", "routed_queue", "row_text"]


@dataclass(frozen=True)
class Unroutable:
    """Stands for the queue of a name the app's router could not route."""

    name: str
    routing_key: None = None
    exchange: None = None


def effective_route(c: Conformance, name: str) -> tuple[str | None, str | None, Any]:
    """(exchange, routing key, queue) a message of ``name`` is published with,
    as Celery's send_task_message settles them."""
    try:
        route = c.route(name)
    except Exception as exc:  # e.g. QueueNotFound from Celery's router
        return None, None, Unroutable(f"<{type(exc).__name__}: {exc}>")
    queue = route.get("queue")
    exchange = route.get("exchange")
    key = route.get("routing_key")
    exchange = getattr(exchange, "name", exchange)
    if queue is not None:
        if exchange is None:
            exchange = queue.exchange.name if queue.exchange is not None else ""
        if key is None:
            key = queue.routing_key
    return exchange, key, queue


def routed_queue(c: Conformance, name: str) -> str | None:
    """The queue a message of ``name`` goes to: the route's queue, else its key."""
    _exchange, key, queue = effective_route(c, name)
    return queue.name if queue is not None else key


def add_platform_queue_fix(c: Conformance) -> str:
    return (f"task_queues += [Queue({c.topology.platform_queue!r}, "
            f"Exchange({c.topology.exchange!r}, type='topic'), routing_key='#')] "
            f"(or {TOOLBOX})")


def monitor_fix(c: Conformance, queue: str) -> str:
    """The most likely one-line fix for a message that missed the monitor."""
    platform_queue = c.topology.platform_queue
    platform = c.app.amqp.queues.get(platform_queue)
    if c.topology.exchange_type != "topic":
        return f"task_default_exchange_type = 'topic' (or configure with {TOOLBOX})"
    if platform is None or platform.routing_key != "#":
        return add_platform_queue_fix(c)
    if not c.app.conf.task_routes:
        return (f"task_routes = (<a router routing by the name's first segment and "
                f"declaring the task's queue and {platform_queue}>,) (the router of "
                f"{TOOLBOX})")
    try:
        route = c.route(c.probes.probe(queue))
    except Exception:
        route = {}
    declared = [getattr(q, "name", q) for q in route.get("declare") or []]
    if platform_queue not in declared:
        return (f"make the router return 'declare': [<the task's queue>, <the "
                f"{platform_queue} queue>] so each publishing connection binds both "
                f"(the router of {TOOLBOX} does)")
    return f"configure the app with {TOOLBOX}"


def describe(messages: list) -> str:
    return f"{len(messages)} message{'s' if len(messages) != 1 else ''}"


def row_text(row: dict | None) -> str:
    if row is None:
        return "no row"
    text = f"a {row['status']} row"
    if row.get("traceback"):
        text += f" ({row['traceback'].strip().splitlines()[-1]})"
    return text
