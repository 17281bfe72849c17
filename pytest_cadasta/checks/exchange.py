"""exchange: the default exchange is a topic exchange, and every queue is bound to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_cadasta.basics.protocol import TOOLBOX, fail
from pytest_cadasta.checks.registry import check

if TYPE_CHECKING:
    from pytest_cadasta.running.app_state import AppState


@check("exchange")
def default_exchange_is_topic(c: AppState, _: Any) -> None:
    """Without a topic exchange the monitor queue's '#' binding matches nothing: the
    platform never learns of the worker's tasks.

    Evidence: the setting, and the type the exchange gets on a broker connection when
    the app's queues are declared."""
    name, kind = c.topology.exchange, c.topology.exchange_type
    if kind != "topic":
        fail(saw=f"the default exchange {name!r} is a {kind!r} exchange "
                 f"(task_default_exchange_type = {kind!r})",
             needs="a topic exchange, so the monitor queue bound with '#' gets a copy of "
                   "every task message",
             fix=f"task_default_exchange_type = 'topic' (or configure with {TOOLBOX})")
    channel = c.declared_channel()
    on_broker = channel.typeof(name).type if name in channel.state.exchanges else None
    if on_broker != "topic":
        fail(saw=f"declaring the app's queues creates exchange {name!r} as "
                 f"{on_broker!r} on the broker",
             needs="the default exchange declared as a topic exchange by every queue "
                   "bound to it",
             fix=f"bind every queue on Exchange({name!r}, type='topic') (or {TOOLBOX})")


@check("exchange")
def queues_are_bound_to_the_default_exchange(c: AppState, _: Any) -> None:
    """A queue bound elsewhere gets nothing the app sends through the default
    exchange: its tasks never run, or never reach the monitor.

    Evidence: the exchange of each work queue and of the monitor queue."""
    name = c.topology.exchange
    queues = c.app.amqp.queues
    problems = []
    for queue_name in (*c.topology.work_queues, c.topology.platform_queue):
        queue = queues.get(queue_name)
        if queue is None and queue_name == c.topology.platform_queue:
            continue  # a missing monitor queue is the monitor group's to report
        if queue is None:
            problems.append(f"{queue_name!r} is not in task_queues")
        elif queue.exchange is None or queue.exchange.name != name:
            bound = queue.exchange.name if queue.exchange is not None else None
            problems.append(f"{queue_name!r} is bound to exchange {bound!r}")
    if problems:
        fail(saw="; ".join(problems),
             needs=f"every work queue and the monitor queue bound to the default exchange "
                   f"{name!r}, each work queue with its own name as routing key",
             fix=f"task_queues = [Queue(name, Exchange({name!r}, type='topic'), "
                 f"routing_key=name) ...] plus the monitor queue with '#' (or {TOOLBOX})")
