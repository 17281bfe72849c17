"""monitor: the platform's monitor queue gets a copy of every task message, from
producers and from inside the worker."""

from __future__ import annotations

from typing import Any

from pytest_cadasta.checks.common import (
    TOOLBOX,
    add_platform_queue_fix,
    describe,
    monitor_fix,
    routed_queue,
    row_text,
)
from pytest_cadasta.checks.registry import Phase, check
from pytest_cadasta.conformance import Conformance, fail
from pytest_cadasta.probes import ELSEWHERE_ERRBACK

PLATFORM_HEADERS = ("id", "task", "root_id", "parent_id")


@check("monitor")
def platform_queue_is_a_fifo_queue_bound_with_hash(c: Conformance, _: Any) -> None:
    """Without the monitor queue, bound with '#', the platform's sync-tasks never
    sees the tasks and the Task table stays empty."""
    name = c.topology.exchange
    platform = c.topology.platform_queue
    queue = c.app.amqp.queues.get(platform)
    add = add_platform_queue_fix(c)
    if queue is None:
        fail(saw=f"no queue {platform!r} among the app's queues "
                 f"({', '.join(c.app.amqp.queues) or 'none'})",
             needs=f"the platform's monitor queue {platform!r}, bound on the default "
                   "exchange with '#'",
             fix=add)
    if not platform.endswith(".fifo"):
        fail(saw=f"the monitor queue is named {platform!r}",
             needs="a FIFO queue (name ending in '.fifo'): sync-tasks reads tasks in order",
             fix="PLATFORM_QUEUE_NAME = 'platform.fifo'")
    if queue.routing_key != "#" or queue.exchange is None or queue.exchange.name != name:
        bound = queue.exchange.name if queue.exchange is not None else None
        fail(saw=f"{platform!r} is bound to exchange {bound!r} with key "
                 f"{queue.routing_key!r}",
             needs=f"{platform!r} bound to the default exchange {name!r} with '#' "
                   "(every routing key)",
             fix=add)
    with c.app.connection_for_write() as connection:
        queue(connection.default_channel).declare()
    attributes = c.sqs.attributes(platform)
    if attributes.get("FifoQueue") != "true":
        fail(saw=f"SQS queue {c.sqs.sqs_name(platform)!r} has FifoQueue="
                 f"{attributes.get('FifoQueue')!r}",
             needs="a FIFO queue on SQS", fix="PLATFORM_QUEUE_NAME = 'platform.fifo'")


@check("monitor", per_queue=True)
def task_lands_once_in_its_queue_and_once_in_the_monitor(c: Conformance, queue: str) -> None:
    """A task message missing from the monitor is a task the platform never tracks;
    one missing from its queue never runs; a duplicate runs twice."""
    c.fresh_start()
    name = c.probes.probe(queue)
    result = c.send_fresh(name, args=("fan-out",), kwargs={"probe": True})

    def mine(message: Any) -> bool:
        return message.id == result.id

    # Publishing is synchronous and moto consistent: a short wait suffices.
    in_monitor = c.wait_for_messages(c.topology.platform_queue, mine, timeout=0.5)
    if c.harness.worker_started:
        # The worker may take the message first: count its consumptions instead.
        in_queue = c.consumptions(result.id, queue)
    else:
        in_queue = c.wait_for_messages(queue, mine, timeout=0.5)
    if len(in_queue) != 1 or len(in_monitor) != 1:
        elsewhere = {sqs_name: count for sqs_name, count in c.where_is(result.id).items()
                     if count}
        also = (f"; elsewhere: {', '.join(f'{k} {v}' for k, v in elsewhere.items())}"
                if elsewhere else "")
        fail(saw=f"{c.topology.platform_queue} received {describe(in_monitor)} of 1; {queue} "
                 f"received {describe(in_queue)} (task {name!r} sent from a fresh "
                 f"connection){also}",
             needs=f"each task message exactly once in its work queue ({queue}) and "
                   f"exactly once in the monitor queue ({c.topology.platform_queue})",
             fix=monitor_fix(c, queue))
    message = in_monitor[0]
    missing = [h for h in PLATFORM_HEADERS if h not in message.headers]
    if missing or message.task != name:
        fail(saw=f"the monitor's copy has headers {sorted(message.headers)} and task "
                 f"{message.task!r}",
             needs=f"task protocol 2 headers {', '.join(PLATFORM_HEADERS)} (sync-tasks "
                   "reads them)",
             fix="task_protocol = 2 (Celery's default)")
    body = message.decode_error or (message.args, message.kwargs)
    if message.decode_error or message.args != ["fan-out"] or message.kwargs != {"probe": True}:
        fail(saw=f"the monitor's copy has body {body}",
             needs="a JSON body decoding to (args, kwargs, embed)",
             fix="task_serializer = 'json' and task_protocol = 2 (Celery's defaults)")


@check("monitor", phase=Phase.WITH_WORKER)
def followups_scheduled_in_the_worker_reach_the_monitor(c: Conformance, _: Any) -> None:
    """Tasks a worker schedules itself (follow-ups, chords) are invisible to the
    platform unless the worker's own connections fan out too."""
    c.require_worker()
    c.fresh_start()
    scheduler = c.probes.scheduler(c.probes.home)
    result = c.send_fresh(scheduler)
    row = c.wait_for_row(result.id)
    if row is None or row["status"] != "SUCCESS":
        fail(saw=f"the probe that schedules a follow-up and a chord inside the worker "
                 f"ended {row_text(row)}",
             needs="tasks scheduled inside the worker sent like any other",
             fix=monitor_fix(c, c.probes.home))
    children = c.wait_for_messages(
        c.topology.platform_queue, lambda m: m.headers.get("parent_id") == result.id, count=3,
        timeout=1.0)  # published before the probe's SUCCESS row was written
    names = sorted(m.task for m in children)
    if len(children) < 3:
        fail(saw=f"{c.topology.platform_queue} received {describe(children)} scheduled by the "
                 f"probe ({', '.join(names) or 'none'}); expected a follow-up and two "
                 "chord parts",
             needs="every task scheduled inside the worker copied to the monitor queue",
             fix=monitor_fix(c, c.probes.home))


@check("monitor", phase=Phase.WITH_WORKER)
def errback_for_another_worker_is_forwarded(c: Conformance, _: Any) -> None:
    """An errback that lives in another worker must be sent there (and to the
    monitor), not run here and lost as NotRegistered (celery/celery#4022)."""
    from celery import signature

    c.require_worker()
    c.fresh_start()
    errback = signature(ELSEWHERE_ERRBACK, app=c.app)
    result = c.send_fresh(c.probes.failing(c.probes.home), link_error=errback)
    c.wait_for_row(result.id)
    target = routed_queue(c, ELSEWHERE_ERRBACK)

    def is_errback(message: Any) -> bool:
        return message.task == ELSEWHERE_ERRBACK

    in_monitor = c.wait_for_messages(c.topology.platform_queue, is_errback, timeout=1.5)
    if target in c.topology.work_queues:
        fail(saw=f"the errback {ELSEWHERE_ERRBACK!r} routes to {target!r}, a queue this "
                 "worker consumes: it is run here, where it is not registered",
             needs="tasks of other workers routed to their own queues by prefix",
             fix=f"route by the name's first segment (the router of {TOOLBOX})")
    in_queue = c.wait_for_messages(target, is_errback, timeout=1.0)
    if len(in_monitor) != 1 or len(in_queue) != 1:
        fail(saw=f"the errback reached {c.topology.platform_queue} {len(in_monitor)} times and "
                 f"its queue {target!r} {len(in_queue)} times",
             needs="the errback forwarded once to its own queue and once to the monitor",
             fix=monitor_fix(c, c.probes.home))
