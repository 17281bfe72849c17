"""What several groups say: the usual fixes, and short descriptions of what was
seen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_cadasta.basics.protocol import TOOLBOX, fail
from pytest_cadasta.basics.topology import sqs_queue_name

if TYPE_CHECKING:
    from pytest_cadasta.running.app_state import AppState

__all__ = ["KOMBU_VISIBILITY_TIMEOUT", "add_platform_queue_fix", "describe", "monitor_fix",
           "retry_delay", "row_text"]

#: kombu's SQS transport's visibility timeout when the app sets none (it sets
#: it only on the queues it creates).
KOMBU_VISIBILITY_TIMEOUT = 1800


def add_platform_queue_fix(c: AppState) -> str:
    return (f"task_queues += [Queue({c.topology.platform_queue!r}, "
            f"Exchange({c.topology.exchange!r}, type='topic'), routing_key='#')] "
            f"(or {TOOLBOX})")


def monitor_fix(c: AppState, queue: str) -> str:
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
    return _router_fix(c, queue, route, declared)


def _router_fix(c: AppState, queue: str, route: dict, declared: list) -> str:
    """What to change in a router that declares the monitor, yet whose
    message missed a queue: the part of its route that is not as the
    architecture needs, named."""
    exchange = route.get("exchange")
    exchange = getattr(exchange, "name", exchange)
    if exchange not in (None, c.topology.exchange):
        return (f"make the router return 'exchange': {c.topology.exchange!r} (it returns "
                f"{exchange!r}): the monitor is bound on the default topic exchange")
    key = route.get("routing_key")
    if key not in (None, queue):
        return (f"make the router return 'routing_key': {queue!r} for {queue}.* tasks (it "
                f"returns {key!r}): the work queue is bound with its own name")
    if queue not in declared:
        return (f"make the router's 'declare' name the task's queue too: [Queue({queue!r}, "
                f"Exchange({c.topology.exchange!r}, type='topic'), routing_key={queue!r}), "
                f"<the {c.topology.platform_queue} queue>] (it declares "
                f"{', '.join(map(str, declared))})")
    return f"configure the app with {TOOLBOX}"


def fail_if_undefined(c: AppState, *queues: str) -> None:
    """Fail naming the first of ``queues`` the app's ``predefined_queues``
    lacks, and the entry to add: with them, kombu neither lists nor creates a
    queue, and raises UndefinedQueueException for any other."""
    __tracebackhide__ = True
    for queue in queues:
        why = c.topology.undefined(queue)
        if why is not None:
            name = sqs_queue_name(c.topology.queue_name_prefix, queue)
            fail(saw=why,
                 needs="every queue the app's tasks go to (the monitor's too) among its "
                       "predefined_queues: in production its publish raises, and a worker "
                       "consuming it cannot start",
                 fix=f"add {c.topology.predefined.entry_for(name)} to "
                     "broker_transport_options['predefined_queues']")


def describe(messages: list) -> str:
    return f"{len(messages)} message{'s' if len(messages) != 1 else ''}"


def row_text(row: dict | None) -> str:
    if row is None:
        return "no row"
    text = f"a {row['status']} row"
    if row.get("traceback"):
        text += f" ({row['traceback'].strip().splitlines()[-1]})"
    return text


def retry_delay(task: Any) -> tuple[float, str]:
    """The longest a task that retries waits before it runs again, and the
    setting that says so; 0 for a task with no sign of retrying (a delay of
    its own, or autoretry_for: Celery's default delay alone says nothing)."""
    from celery import Task

    explicit = task.default_retry_delay != Task.default_retry_delay
    if not explicit and not getattr(task, "autoretry_for", ()):
        return 0.0, ""
    if getattr(task, "retry_backoff", False):
        return float(getattr(task, "retry_backoff_max", 600) or 0), "retry_backoff_max"
    return float(task.default_retry_delay or 0), "default_retry_delay"
