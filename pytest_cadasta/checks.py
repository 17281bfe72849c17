"""The conformance checks: each one a thing the platform relies on, judged by
what the app really does. Each docstring's first line says what failure in
production the check protects against (the README quotes them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cadasta_toolbox.secrets import mask_url
from pytest_cadasta.conformance import Conformance, fail
from pytest_cadasta.probes import ELSEWHERE_ERRBACK, PROBE_FAILURE_MESSAGE

GROUPS = ("exchange", "monitor", "routing", "result", "chord")
PLATFORM_HEADERS = ("id", "task", "root_id", "parent_id")
CELERY_TASKS = ("celery.chord_unlock", "celery.chord", "celery.group", "celery.chain",
                "celery.map", "celery.starmap", "celery.chunks", "celery.accumulate",
                "celery.backend_cleanup")
TOOLBOX = "cadasta_toolbox.config.Config"


@dataclass(frozen=True)
class Check:
    group: str
    name: str
    func: Callable[[Conformance, Any], None]
    needs_worker: bool
    per_queue: bool

    @property
    def doc(self) -> str:
        """The docstring's first paragraph, on one line."""
        paragraph = (self.func.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(paragraph.split())


CHECKS: list[Check] = []


def check(group: str, needs_worker: bool = False, per_queue: bool = False) -> Callable:
    def register(func: Callable) -> Callable:
        CHECKS.append(Check(group, func.__name__, func, needs_worker, per_queue))
        return func
    return register


def iter_checks(work_queues: tuple[str, ...]) -> Iterator[tuple[Check, str | None]]:
    """(check, queue or None) in running order: the checks that only look at
    settings and the broker first, then the ones that need the worker."""
    for wants_worker in (False, True):
        for item in CHECKS:
            if item.needs_worker is not wants_worker:
                continue
            if item.per_queue:
                for queue in work_queues:
                    yield item, queue
            else:
                yield item, None


# -- helpers ----------------------------------------------------------------
@dataclass(frozen=True)
class _Unroutable:
    """Stands for the queue of a name the app's router could not route."""

    name: str
    routing_key: None = None
    exchange: None = None


def default_exchange(c: Conformance) -> tuple[str, str]:
    conf = c.app.conf
    name = conf.task_default_exchange or conf.task_default_queue
    return name, conf.task_default_exchange_type or "direct"


def effective_route(c: Conformance, name: str) -> tuple[str | None, str | None, Any]:
    """(exchange, routing key, queue) a message of ``name`` is published with,
    as Celery's send_task_message settles them."""
    try:
        route = c.route(name)
    except Exception as exc:  # e.g. QueueNotFound from Celery's router
        return None, None, _Unroutable(f"<{type(exc).__name__}: {exc}>")
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
    name, _kind = default_exchange(c)
    return (f"task_queues += [Queue({c.platform_queue!r}, Exchange({name!r}, "
            f"type='topic'), routing_key='#')] (or {TOOLBOX})")


def monitor_fix(c: Conformance, queue: str) -> str:
    """The most likely one-line fix for a message that missed the monitor."""
    _name, kind = default_exchange(c)
    platform = c.app.amqp.queues.get(c.platform_queue)
    if kind != "topic":
        return f"task_default_exchange_type = 'topic' (or configure with {TOOLBOX})"
    if platform is None or platform.routing_key != "#":
        return add_platform_queue_fix(c)
    if not c.app.conf.task_routes:
        return (f"task_routes = (<a router routing by the name's first segment and "
                f"declaring the task's queue and {c.platform_queue}>,) (the router of "
                f"{TOOLBOX})")
    try:
        route = c.route(c.probes.probe(queue))
    except Exception:
        route = {}
    declared = [getattr(q, "name", q) for q in route.get("declare") or []]
    if c.platform_queue not in declared:
        return (f"make the router return 'declare': [<the task's queue>, <the "
                f"{c.platform_queue} queue>] so each publishing connection binds both "
                f"(the router of {TOOLBOX} does)")
    return f"configure the app with {TOOLBOX}"


def describe(messages: list) -> str:
    return f"{len(messages)} message{'s' if len(messages) != 1 else ''}"


# -- exchange ---------------------------------------------------------------
@check("exchange")
def default_exchange_is_topic(c: Conformance, _: Any) -> None:
    """Without a topic exchange the monitor queue's '#' binding matches nothing: the
    platform never learns of the worker's tasks."""
    name, kind = default_exchange(c)
    if kind != "topic":
        fail(saw=f"the default exchange {name!r} is a {kind!r} exchange "
                 f"(task_default_exchange_type = {kind!r})",
             needs="a topic exchange, so the monitor queue bound with '#' gets a copy of "
                   "every task message",
             fix=f"task_default_exchange_type = 'topic' (or configure with {TOOLBOX})")
    with c.app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in c.app.amqp.queues.values():
            queue(channel).declare()
        try:
            on_broker = channel.typeof(name).type
        except KeyError:
            on_broker = None
    if on_broker != "topic":
        fail(saw=f"declaring the app's queues creates exchange {name!r} as "
                 f"{on_broker!r} on the broker",
             needs="the default exchange declared as a topic exchange by every queue "
                   "bound to it",
             fix=f"bind every queue on Exchange({name!r}, type='topic') (or {TOOLBOX})")


@check("exchange")
def queues_are_bound_to_the_default_exchange(c: Conformance, _: Any) -> None:
    """A queue bound elsewhere gets nothing the app sends through the default
    exchange: its tasks never run, or never reach the monitor."""
    name, _kind = default_exchange(c)
    queues = c.app.amqp.queues
    problems = []
    for queue_name in (*c.work_queues, c.platform_queue):
        queue = queues.get(queue_name)
        if queue is None and queue_name == c.platform_queue:
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


# -- monitor ----------------------------------------------------------------
@check("monitor")
def platform_queue_is_a_fifo_queue_bound_with_hash(c: Conformance, _: Any) -> None:
    """Without the monitor queue, bound with '#', the platform's sync-tasks never
    sees the tasks and the Task table stays empty."""
    name, _kind = default_exchange(c)
    platform = c.platform_queue
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
    in_monitor = c.wait_for_messages(c.platform_queue, mine, timeout=0.5)
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
        fail(saw=f"{c.platform_queue} received {describe(in_monitor)} of 1; {queue} "
                 f"received {describe(in_queue)} (task {name!r} sent from a fresh "
                 f"connection){also}",
             needs=f"each task message exactly once in its work queue ({queue}) and "
                   f"exactly once in the monitor queue ({c.platform_queue})",
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


# -- routing ------------------------------------------------------------------
@check("routing")
def task_names_route_by_their_first_segment(c: Conformance, _: Any) -> None:
    """A task that does not route by its prefix lands in another worker's queue, or
    in one nobody consumes."""
    default, _kind = default_exchange(c)
    problems = []
    for queue in c.work_queues:
        name = f"{queue}.cadasta_any_task"
        exchange, key, routed = effective_route(c, name)
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
def every_registered_task_routes_to_an_existing_queue(c: Conformance, _: Any) -> None:
    """A task routed to a queue that does not exist waits forever: no worker
    consumes it."""
    probes = c.probes.names()
    lost = []
    for name in sorted(c.app.tasks):
        if name.startswith("celery.") or name in probes:
            continue
        target = routed_queue(c, name)
        if target not in c.work_queues:
            lost.append(f"{name!r} -> {target!r}")
    if lost:
        fail(saw=f"task {', '.join(lost)}: no such queue in this app "
                 f"(its queues: {', '.join(c.work_queues)})",
             needs="every task the app registers routed to one of its queues",
             fix="add the queue to QUEUES (Config(QUEUES=(...))) or rename the task under "
                 "an existing prefix")


@check("routing")
def celery_own_tasks_go_to_the_celery_queue(c: Conformance, _: Any) -> None:
    """Celery's own tasks (chord_unlock, ...) routed anywhere else never run, and
    chords never finish."""
    wrong = []
    for name in CELERY_TASKS:
        if name not in c.app.tasks:
            continue
        _exchange, key, queue = effective_route(c, name)
        target = queue.name if queue is not None else key
        if target != "celery" or key != "celery":
            wrong.append(f"{name!r} -> queue {target!r}, key {key!r}")
    if wrong:
        fail(saw="; ".join(wrong), needs="Celery's own tasks in the 'celery' queue",
             fix=f"route 'celery.*' by its prefix to 'celery' (the router of {TOOLBOX})")


# -- result -------------------------------------------------------------------
@check("result")
def backend_is_postgresql_through_the_database_backend(c: Conformance, _: Any) -> None:
    """Results written anywhere but the platform's PostgreSQL result table are
    results the platform never shows."""
    backend = c.original.get("result_backend")
    shown = mask_url(backend) if isinstance(backend, str) else backend
    if not (isinstance(backend, str) and backend.startswith(("db+postgresql", "db+postgres:"))):
        fail(saw=f"result_backend = {shown!r}",
             needs="Celery's database backend on the platform's PostgreSQL "
                   "(table celery_taskmeta)",
             fix="result_backend = 'db+postgresql://USER:PASS@HOST:PORT/NAME' "
                 f"({TOOLBOX} builds it from RESULT_DB_*)")
    tables = c.app.conf.database_table_names or {}
    if tables.get("task", "celery_taskmeta") != "celery_taskmeta":
        fail(saw=f"database_table_names = {tables!r}",
             needs="results in celery_taskmeta, the table the platform reads",
             fix="remove database_table_names")


@check("result", needs_worker=True)
def success_leaves_a_success_row(c: Conformance, _: Any) -> None:
    """A worker that cannot write its results (privileges, missing columns) leaves
    the platform showing tasks that never finish."""
    c.require_worker()
    result = c.send_fresh(c.probes.probe(c.probes.home), args=("result",))
    row = c.wait_for_row(result.id)
    if row is None or row["status"] != "SUCCESS":
        fail(saw=f"celery_taskmeta holds {row_text(row)} for a task that succeeded "
                 f"(written as role {c.result_db.role!r}, no Task row present)",
             needs="a SUCCESS row per task, written with credentials limited to the "
                   "result tables",
             fix="result_backend on the platform's database (Config's RESULT_DB_*); "
                 "run with -rA and see the worker's log for the error")


@check("result", needs_worker=True)
def failure_leaves_a_failure_row_with_traceback(c: Conformance, _: Any) -> None:
    """A failure the platform cannot see is a user waiting forever for an export."""
    c.require_worker()
    result = c.send_fresh(c.probes.failing(c.probes.home))
    row = c.wait_for_row(result.id)
    if row is None or row["status"] != "FAILURE" or PROBE_FAILURE_MESSAGE not in (
            row["traceback"] or ""):
        fail(saw=f"celery_taskmeta holds {row_text(row)} for a task that raised",
             needs="a FAILURE row carrying the traceback",
             fix="result_backend on the platform's database; do not set "
                 "task_ignore_result or task_store_errors_even_if_ignored=False")


@check("result", needs_worker=True)
def started_state_is_tracked(c: Conformance, _: Any) -> None:
    """Without STARTED the platform cannot tell a running export from a queued one."""
    c.require_worker()
    if not c.app.conf.task_track_started:
        fail(saw="task_track_started = False",
             needs="STARTED written when a task begins", fix="task_track_started = True")
    result = c.send_fresh(c.probes.started(c.probes.home))
    row = c.wait_for_row(result.id)
    seen = result.get(timeout=5, interval=0.05, propagate=False) if row else None
    if seen != "STARTED":
        fail(saw=f"while running, the task's own row said {seen!r}",
             needs="status STARTED while the task runs", fix="task_track_started = True")


# -- monitor, inside the worker -------------------------------------------
@check("monitor", needs_worker=True)
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
        c.platform_queue, lambda m: m.headers.get("parent_id") == result.id, count=3,
        timeout=1.0)  # published before the probe's SUCCESS row was written
    names = sorted(m.task for m in children)
    if len(children) < 3:
        fail(saw=f"{c.platform_queue} received {describe(children)} scheduled by the "
                 f"probe ({', '.join(names) or 'none'}); expected a follow-up and two "
                 "chord parts",
             needs="every task scheduled inside the worker copied to the monitor queue",
             fix=monitor_fix(c, c.probes.home))


@check("monitor", needs_worker=True)
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

    in_monitor = c.wait_for_messages(c.platform_queue, is_errback, timeout=1.5)
    if target in c.work_queues:
        fail(saw=f"the errback {ELSEWHERE_ERRBACK!r} routes to {target!r}, a queue this "
                 "worker consumes: it is run here, where it is not registered",
             needs="tasks of other workers routed to their own queues by prefix",
             fix=f"route by the name's first segment (the router of {TOOLBOX})")
    in_queue = c.wait_for_messages(target, is_errback, timeout=1.0)
    if len(in_monitor) != 1 or len(in_queue) != 1:
        fail(saw=f"the errback reached {c.platform_queue} {len(in_monitor)} times and "
                 f"its queue {target!r} {len(in_queue)} times",
             needs="the errback forwarded once to its own queue and once to the monitor",
             fix=monitor_fix(c, c.probes.home))


# -- chord --------------------------------------------------------------------
@check("chord", needs_worker=True)
def chord_unlock_retries_are_bounded(c: Conformance, _: Any) -> None:
    """Unbounded, celery.chord_unlock polls forever for a chord whose part was lost
    (celery/celery#2725)."""
    c.require_worker()
    limit = c.app.tasks["celery.chord_unlock"].max_retries
    if not isinstance(limit, int) or isinstance(limit, bool):
        fail(saw=f"celery.chord_unlock.max_retries = {limit!r} after the worker started",
             needs="an integer bound on chord_unlock's retries",
             fix="cadasta_toolbox.app.setup_app(app) at worker start (automatic with "
                 f"{TOOLBOX}); CHORD_UNLOCK_MAX_RETRIES sets the bound")


@check("chord", needs_worker=True)
def chord_completes(c: Conformance, _: Any) -> None:
    """With the database backend a chord needs its route's queue to send
    chord_unlock; without it every chord raises KeyError: 'queue'."""
    from celery import chord, signature

    c.require_worker()
    probe = c.probes.probe(c.probes.home)
    header = [signature(probe, args=(f"part {i}",), app=c.app) for i in range(2)]
    try:
        joined = chord(header, app=c.app)(signature(probe, args=("body",), app=c.app))
    except KeyError as exc:
        fail(saw=f"sending a chord raised KeyError: {exc} (the database backend reads the "
                 "route's 'queue' to send celery.chord_unlock)",
             needs="routes that name their queue",
             fix=f"return 'queue' from the router (the router of {TOOLBOX} does)")
    row = c.wait_for_row(joined.id, timeout=20.0)
    if row is None or row["status"] != "SUCCESS":
        fail(saw=f"the chord's body ended {row_text(row)} after 20 s",
             needs="chords that complete", fix=f"configure the app with {TOOLBOX}")


def row_text(row: dict | None) -> str:
    if row is None:
        return "no row"
    text = f"a {row['status']} row"
    if row.get("traceback"):
        text += f" ({row['traceback'].strip().splitlines()[-1]})"
    return text
