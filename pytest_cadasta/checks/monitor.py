"""monitor: the platform's monitor queue gets a copy of every task message, from
producers and from inside the worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.probes import ELSEWHERE_ERRBACK
from pytest_cadasta.basics.messages import SERIALIZER_FIX
from pytest_cadasta.basics.protocol import TOOLBOX, fail
from pytest_cadasta.checks.common import (
    add_platform_queue_fix,
    describe,
    fail_if_undefined,
    monitor_fix,
)
from pytest_cadasta.checks.registry import Phase, check

if TYPE_CHECKING:
    from pytest_cadasta.running.app_state import AppState

PLATFORM_HEADERS = ("id", "task", "root_id", "parent_id")


@check("monitor")
def platform_queue_is_a_fifo_queue_bound_with_hash(c: AppState, _: Any) -> None:
    """Without the monitor queue, bound with '#', the platform's sync-tasks never
    sees the tasks and the Task table stays empty.

    Evidence: the queue in ``task_queues`` (bound with ``#``), and the SQS queue's
    ``FifoQueue`` attribute."""
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
    fail_if_undefined(c, platform)
    queue(c.declared_channel()).declare()
    attributes = c.sqs.attributes(platform)
    if attributes.get("FifoQueue") != "true":
        fail(saw=f"SQS queue {c.sqs.sqs_name(platform)!r} has FifoQueue="
                 f"{attributes.get('FifoQueue')!r}",
             needs="a FIFO queue on SQS", fix="PLATFORM_QUEUE_NAME = 'platform.fifo'")


@check("monitor", judges_worker=True)
def worker_does_not_consume_the_monitor_queue(c: AppState, _: Any) -> None:
    """A worker that consumes the monitor queue deletes the platform's copies of
    the tasks and runs each of its own tasks a second time under the same id.

    Evidence: *worker*: the queues ``celery worker`` consumes as production starts it:
    the ``-Q`` queues (``--cadasta-queues``), else Celery's default (every queue in
    ``task_queues``), less what the app's ``celeryd_after_setup`` handlers deselect."""
    consumed = c.topology.in_production
    platform = c.topology.platform_queue
    if platform in consumed:
        how = ("-Q " + ",".join(c.topology.production_queues)
               if c.topology.production_queues is not None else "no -Q")
        fail(saw=f"'celery worker' started as in production ({how}) consumes "
                 f"{', '.join(consumed)}",
             needs=f"a worker that never consumes the monitor queue {platform!r} (only "
                   "the platform's sync-tasks does)",
             fix=f"start the worker with -Q naming its work queues, or configure it with "
                 f"{TOOLBOX} (it leaves {platform!r} out when the worker starts)")


@check("monitor", per_queue=True)
def task_lands_once_in_its_queue_and_once_in_the_monitor(c: AppState, queue: str) -> None:
    """A task message missing from the monitor is a task the platform never tracks;
    one missing from its queue never runs; a duplicate runs twice.

    Evidence: a probe per work queue sent from a fresh connection and read back from
    SQS: once in its queue, once in the monitor, with headers ``id``, ``task``,
    ``root_id``, ``parent_id`` and a body that decodes to (args, kwargs, embed). A queue
    whose SQS name SQS refuses (``QUEUES=('导出',)``: ASCII letters, digits, ``-`` and
    ``_`` only) fails here, unsent."""
    refused = c.sqs.refused(queue)
    if refused is not None:
        fail(saw=refused, needs="every work queue named as SQS names queues: a worker "
                                "fails declaring it, and every task sent to it is lost",
             fix=f"rename {queue!r} in QUEUES (or task_queues) with ASCII letters, digits, "
                 "'-' or '_', and the tasks it takes by prefix")
    fail_if_undefined(c, c.topology.platform_queue, queue)
    landing = c.landing(queue)
    name, in_queue, in_monitor, lost = (landing.name, landing.in_queue, landing.in_monitor,
                                        landing.lost)
    if len(in_queue) != 1 or len(in_monitor) != 1:
        elsewhere = {sqs_name: count for sqs_name, count in c.where_is(landing.task_id).items()
                     if count}
        also = (f"; elsewhere: {', '.join(f'{k} {v}' for k, v in elsewhere.items())}"
                if elsewhere else "")
        if lost:
            also += f"; kombu: {lost[0]}"
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
             needs="a body in json or pickle (what the platform's sync-tasks decodes), "
                   "decoding to (args, kwargs, embed)",
             fix=f"{SERIALIZER_FIX}; task_protocol = 2 (Celery's default)")


@check("monitor", phase=Phase.WITH_WORKER)
def followups_scheduled_in_the_worker_reach_the_monitor(c: AppState, _: Any) -> None:
    """Tasks a worker schedules itself (follow-ups, chords) are invisible to the
    platform unless the worker's own connections fan out too.

    Evidence: *worker*: a probe schedules a follow-up task and a chord from inside the
    worker; all of them reach the monitor."""
    scheduler = c.probes.scheduler(c.probes.home)
    result, ended = c.run_in_worker(scheduler)
    if ended.info.get("state") != "SUCCESS":
        theirs = c.library_fix(result.id)  # e.g. the app's serializer cannot encode a chord
        fail(saw=f"the probe that schedules a follow-up and a chord inside the worker: "
                 f"{c.events.story(result.id)}",
             needs="tasks scheduled inside the worker sent like any other",
             fix=theirs or monitor_fix(c, c.probes.home), explained=theirs is not None)
    # Everything it scheduled was published (synchronously) before it ended.
    scheduled = {e.task_id: e.name for e in c.events.published_by(result.id)}
    copied = {m.id for m in c.monitor() if m.headers.get("parent_id") == result.id}
    missed = sorted(name or task_id for task_id, name in scheduled.items()
                    if task_id not in copied)
    if len(scheduled) < 3 or missed:
        fail(saw=f"the probe scheduled {len(scheduled)} tasks inside the worker "
                 f"({', '.join(sorted(n or '?' for n in scheduled.values()))}); "
                 f"{c.topology.platform_queue} got no copy of "
                 f"{', '.join(missed) or 'none'}",
             needs="every task scheduled inside the worker (a follow-up, each chord part) "
                   "copied to the monitor queue",
             fix=monitor_fix(c, c.probes.home))


@check("monitor", phase=Phase.WITH_WORKER)
def each_task_family_is_in_one_message_group_of_the_monitor(c: AppState, _: Any) -> None:
    """The platform's sync-tasks records a task only after its parent and root,
    reading the monitor in order; a FIFO queue keeps order only within one
    message group. A child sent in a group of its own can reach the platform
    before its parent on SQS (moto delivers in order regardless): lost for
    good.

    Evidence: *worker*: every copy the monitor received, as SQS handed it over with its
    attributes (``MessageGroupId``, ``SequenceNumber``), is in the same message group as
    its parent's and its root's (the follow-up probe's family when none has run yet)."""
    copies = c.monitor()
    if not any(m.headers.get("parent_id") for m in copies):  # run alone: a family now
        c.run_in_worker(c.probes.scheduler(c.probes.home))
        copies = c.monitor()
    groups = {m.id: m.group for m in copies}
    split = []
    for message in copies:
        for relation in ("parent_id", "root_id"):
            other = message.headers.get(relation)
            if other and other != message.id and other in groups \
                    and groups[other] != message.group:
                split.append(f"{message.task!r} ({message.id}) in group {message.group!r}, "
                             f"its {relation[:-3]} ({other}) in group {groups[other]!r}")
                break
    if split:
        fail(saw=f"{len(split)} copies on {c.topology.platform_queue} in another message "
                 f"group than their family's: {'; '.join(split[:3])}"
                 + (f"; and {len(split) - 3} more" if len(split) > 3 else ""),
             needs=f"every task of a family (a task, its parent, its root) in one message "
                   f"group of {c.topology.platform_queue}, so SQS hands them to the "
                   "platform in the order they were sent",
             fix="no MessageGroupId of the app's own in its routes or apply_async calls "
                 "(kombu sends every copy in the group 'default')")


@check("monitor", phase=Phase.WITH_WORKER)
def errback_for_another_worker_is_forwarded(c: AppState, _: Any) -> None:
    """An errback that lives in another worker must be sent there (and to the
    monitor), not run here and lost as NotRegistered (celery/celery#4022).

    Evidence: *worker*: a failing probe whose errback lives in another worker's queue:
    the errback reaches that queue and the monitor, and is not run here."""
    from celery import signature

    target = c.routed_queue(ELSEWHERE_ERRBACK)
    if target in c.topology.work_queues:
        fail(saw=f"the errback {ELSEWHERE_ERRBACK!r} routes to {target!r}, a queue this "
                 "worker consumes: it is run here, where it is not registered",
             needs="tasks of other workers routed to their own queues by prefix",
             fix=f"route by the name's first segment (the router of {TOOLBOX})")
    errback = signature(ELSEWHERE_ERRBACK, app=c.app)
    errback_id = errback.freeze().id
    c.run_in_worker(c.probes.failing(c.probes.home), link_error=errback)
    # The errback was published (synchronously) before the failing run ended.
    in_monitor = c.in_monitor(errback_id)
    in_queue = c.take(target, errback_id) if target is not None else []
    if len(in_monitor) != 1 or len(in_queue) != 1:
        fail(saw=f"the errback reached {c.topology.platform_queue} {len(in_monitor)} times and "
                 f"its queue {target!r} {len(in_queue)} times "
                 f"({c.events.story(errback_id)})",
             needs="the errback forwarded once to its own queue and once to the monitor",
             fix=monitor_fix(c, c.probes.home))
