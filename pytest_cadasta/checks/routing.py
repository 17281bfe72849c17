"""routing: task names route by their first segment, to queues that exist."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.routes import effective_route
from pytest_cadasta.basics.protocol import TOOLBOX, fail
from pytest_cadasta.checks.common import KOMBU_VISIBILITY_TIMEOUT, retry_delay
from pytest_cadasta.checks.registry import check

if TYPE_CHECKING:
    from pytest_cadasta.running.app_state import AppState

CELERY_TASKS = ("celery.chord_unlock", "celery.chord", "celery.group", "celery.chain",
                "celery.map", "celery.starmap", "celery.chunks", "celery.accumulate",
                "celery.backend_cleanup")


@check("routing")
def task_names_route_by_their_first_segment(c: AppState, _: Any) -> None:
    """A task that does not route by its prefix lands in another worker's queue, or
    in one nobody consumes.

    Evidence: the app's own router on ``<queue>.<task>``: the default exchange, routing
    key ``<queue>`` (a named queue must be bound with that key)."""
    default = c.topology.exchange
    problems = []
    for queue in c.topology.work_queues:
        name = f"{queue}.cadasta_any_task"
        exchange, key, routed = effective_route(c.app, name)
        if exchange != default or key != queue:
            problems.append(f"{name!r} goes to exchange {exchange!r} with routing key "
                            f"{key!r}" + (f" (queue {routed.name!r})" if routed else ""))
        elif routed is not None and (routed.routing_key != queue or routed.exchange is None
                                     or routed.exchange.name != default):
            problems.append(f"{name!r} names queue {routed.name!r}, bound with key "
                            f"{routed.routing_key!r}")
    if problems:
        fail(saw="; ".join(problems),
             needs=f"a task named '<queue>.<task>' published to {default!r} with routing "
                   "key '<queue>' (the name up to the first dot)",
             fix=f"task_routes = (<a router routing by the name's first segment>,) "
                 f"(the router of {TOOLBOX})")


@check("routing")
def every_registered_task_routes_to_an_existing_queue(c: AppState, _: Any) -> None:
    """A task routed to a queue that does not exist waits forever: no worker
    consumes it.

    Evidence: the route of every task the app registers (not Celery's, not those of
    pytest plugins such as pytest-celery's shared tasks); names the offenders, and says
    which of their prefixes no SQS queue can be named after."""
    lost = []
    unnamable = []  # prefixes no SQS queue can be named after
    for name in c.own_tasks():
        target = c.routed_queue(name)
        if target not in c.topology.work_queues:
            lost.append(f"{name!r} -> {target!r}")
            if isinstance(target, str) and c.sqs.refused(target) is not None:
                unnamable.append(repr(target))
    if lost:
        fix = ("add the queue to QUEUES (Config(QUEUES=(...))) or rename the task under "
               "an existing prefix")
        if unnamable:
            fix += (f"; {', '.join(dict.fromkeys(unnamable))} cannot name an SQS queue "
                    "(ASCII letters, digits, '-' and '_' only): rename those tasks")
        fail(saw=f"task {', '.join(lost)}: no such queue in this app "
                 f"(its queues: {', '.join(c.topology.work_queues)})",
             needs="every task the app registers routed to one of its queues",
             fix=fix)


@check("routing")
def celery_own_tasks_go_to_the_celery_queue(c: AppState, _: Any) -> None:
    """Celery's own tasks (chord_unlock, ...) routed anywhere else never run, and
    chords never finish.

    Evidence: the route of ``celery.chord_unlock`` and Celery's other tasks."""
    wrong = []
    for name in CELERY_TASKS:
        if name not in c.app.tasks:
            continue
        _exchange, key, queue = effective_route(c.app, name)
        target = queue.name if queue is not None else key
        if target != "celery" or key != "celery":
            wrong.append(f"{name!r} -> queue {target!r}, key {key!r}")
    if wrong:
        fail(saw="; ".join(wrong), needs="Celery's own tasks in the 'celery' queue",
             fix=f"route 'celery.*' by its prefix to 'celery' (the router of {TOOLBOX})")


@check("routing", judges_worker=True)
def worker_registers_tasks_of_its_own(c: AppState, _: Any) -> None:
    """A worker whose task modules were never imported rejects every task it is
    sent as unregistered; one whose task routes to a queue it does not consume
    leaves that task waiting for another worker.

    Evidence: *worker*: the tasks the app registers once its task modules are imported
    as ``celery worker`` imports them (``imports``, ``include``, autodiscovery), each
    routed to a queue the worker consumes."""
    own = c.own_tasks()
    if not own:
        modules = ", ".join(c.app.loader.default_modules) or "none"
        fail(saw=f"the app registers no tasks of its own once its task modules are "
                 f"imported as 'celery worker' imports them (imports/include: {modules})",
             needs="the worker's tasks registered when it starts",
             fix="imports = ('app.tasks',) (or include=[...]) naming the modules that define "
                 "the tasks; cadasta-workertoolbox 0.6.0's Config set imports=('app.tasks',) "
                 f"by itself, {TOOLBOX} does not")
    consumed = c.topology.consumed
    elsewhere = [f"{name!r} -> {target!r}" for name in own
                 if (target := c.routed_queue(name)) not in consumed]
    if elsewhere:
        fail(saw=f"task {', '.join(elsewhere)}: a queue this worker does not consume "
                 f"(it consumes {', '.join(consumed)})",
             needs="every task the worker registers routed to a queue it consumes",
             fix="consume that queue (-Q, --cadasta-queues) or move the task to a worker "
                 "that does")


def _delay(event: Any) -> float | None:
    """How far ahead of its publish a task's ETA lay, in seconds (None: none)."""
    from datetime import datetime

    eta = event.info.get("eta")
    if not eta:
        return None
    try:
        when = datetime.fromisoformat(str(eta))
    except ValueError:
        return None
    if when.tzinfo is None:  # Celery writes naive ETAs in UTC when told to
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() - event.info.get("sent_at", when.timestamp())


@check("routing")
def no_task_waits_longer_than_its_queues_visibility_timeout(c: AppState, _: Any) -> None:
    """SQS hands a message a worker holds to another worker once the queue's
    visibility timeout ends; kombu holds a task with an ETA, unacknowledged,
    until then. A countdown, an ETA or a retry delay beyond the visibility
    timeout is a task delivered twice, and run twice.

    Evidence: the retry delay of each of the app's tasks that retries (its own
    ``default_retry_delay``, or ``retry_backoff_max`` with ``autoretry_for``), and the
    ETA of every task published in the run so far, against the visibility timeout
    (``broker_transport_options['visibility_timeout']``, else kombu's 1,800 s)."""
    options = c.app.conf.broker_transport_options or {}
    limit = float(options.get("visibility_timeout") or KOMBU_VISIBILITY_TIMEOUT)
    too_far = [f"{name!r} retries after {delay:g} s ({how})" for name in c.own_tasks()
               for delay, how in [retry_delay(c.app.tasks[name])] if delay > limit]
    for event in c.events.published():
        delay = _delay(event)
        if delay is not None and delay > limit:
            too_far.append(f"{event.name!r} ({event.task_id}) sent with ETA "
                           f"{event.info['eta']}, {delay:.0f} s ahead")
    if too_far:
        where = ("broker_transport_options 'visibility_timeout'" if
                 options.get("visibility_timeout") else "kombu's default")
        fail(saw=f"{'; '.join(too_far)}; the visibility timeout is {limit:.0f} s ({where})",
             needs="every task due within its queue's visibility timeout of being received "
                   "(kombu's SQS caveat: otherwise SQS hands it to another worker while the "
                   "first still holds it)",
             fix="broker_transport_options 'visibility_timeout' above the longest delay "
                 "(and the queues' own VisibilityTimeout with it), or a shorter countdown, "
                 "ETA or default_retry_delay")
