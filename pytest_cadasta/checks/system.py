"""system: the apps of a run (several workers, the platform) work together:
they agree on the broker's shape, every queue has one consumer, a task name
means one route, and tasks cross from one app to another as the platform needs.

These run only when a run judges several apps; each takes the
``SystemState`` of the run."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.deployment import AGREED
from pytest_cadasta.apps.probes import FAILING
from pytest_cadasta.apps.routes import effective_route
from pytest_cadasta.basics.ids import SYSTEM
from pytest_cadasta.basics.protocol import TOOLBOX, fail
from pytest_cadasta.checks.common import row_text
from pytest_cadasta.checks.registry import Phase, check
from pytest_cadasta.running.system_state import ERRBACK, FOLLOWUP, SENDS

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.running.system_state import SystemState



@check(SYSTEM)
def apps_agree_on_exchange_queues_and_region(s: SystemState, _: Any) -> None:
    """Apps that disagree on the exchange, the platform queue, the region, the
    queue name prefix or QUEUES send tasks where no worker of the others looks,
    and the platform's monitor misses them ("every task consumer is aware of all
    queues available").

    Evidence: each app's exchange (name, type), platform queue, region, SQS queue name
    prefix and ``QUEUES``; names the app that differs and its value."""
    differ = []
    blamed: list[str] = []
    for what, value in AGREED:
        values = {loaded.label: value(loaded.topology) for loaded in s.apps}
        counts = Counter(values.values())
        if len(counts) == 1:
            continue
        usual, _ = counts.most_common(1)[0]
        odd = [f"{label} has {v!r}" for label, v in values.items() if v != usual]
        blamed += [label for label, v in values.items() if v != usual and label not in blamed]
        differ.append(f"{what}: {'; '.join(odd)} (the others: {usual!r})")
    if differ:
        fail(saw=" | ".join(differ),
             needs="every app of the system with the same exchange (name, type), platform "
                   "queue, region, queue name prefix and QUEUES",
             fix=f"configure every app from one {TOOLBOX} with the same QUEUES (a queue used "
                 "by any worker listed in every app)", blamed=tuple(blamed))


#: Hosts that are one place (the machine itself).
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _results_at(loaded: LoadedApp, s: SystemState) -> str | None:
    """Where ``loaded`` writes its results, as the platform would look for them:
    host, port, database and table (its own settings, the password masked);
    None without a database backend."""
    from sqlalchemy.engine import make_url

    from cadasta_toolbox.masking import mask_url

    backend = s.of(loaded).original.get("result_backend")
    table = (loaded.app.conf.database_table_names or {}).get("task", "celery_taskmeta")
    if not isinstance(backend, str) or not backend.startswith("db+"):
        return None
    try:
        url = make_url(backend[3:])
    except Exception:  # not a URL SQLAlchemy reads: shown as it is, masked
        return mask_url(backend)
    host = url.host or "localhost"
    host = "localhost" if host in LOOPBACK else host
    return f"{host}:{url.port or 5432}/{url.database or ''}, table {table}"


@check(SYSTEM)
def every_app_writes_results_where_the_platform_reads_them(s: SystemState, _: Any) -> None:
    """A worker whose results go to another database (or table) than the
    platform's leaves every one of its tasks PENDING in the platform's eyes;
    the run wires every app to one throwaway database, so only their own
    settings tell.

    Evidence: each app's own ``result_backend`` (host, port, database; the password
    masked) and result table, against the platform app's (with no producer, the other
    workers'); names the worker that differs. The run wires every app to one throwaway
    database, so only the apps' settings tell."""
    where = {loaded.label: _results_at(loaded, s) for loaded in s.apps}
    # The platform reads its Result table through its own database settings; a
    # producer with a Celery result backend on a database says where that is.
    readers = ([p.label for p in s.producers if where[p.label] is not None]
               or [w.label for w in s.workers if where[w.label] is not None])
    if not readers:
        return  # no app writes to a database: the result checks of each say so
    usual, _ = Counter(where[label] for label in readers).most_common(1)[0]
    apart = [loaded.label for loaded in s.workers if where[loaded.label] != usual]
    if apart:
        whose = "the platform's" if s.producers else "the other workers'"
        odd = [f"{label} writes to {where[label] or 'no database'}" for label in apart]
        fail(saw=f"{'; '.join(odd)}; {whose} results are read at {usual}",
             needs="every worker writing its results where the platform reads them: one "
                   "database and table, celery_taskmeta",
             fix="the same RESULT_DB_HOST, RESULT_DB_PORT and RESULT_DB_NAME (each worker "
                 f"with its own role) in every app ({TOOLBOX})", blamed=tuple(apart))


def _consumers(s: SystemState) -> dict[str, list[str]]:
    """Queue -> the worker apps consuming it in production."""
    consumers: dict[str, list[str]] = {}
    for loaded in s.workers:
        for queue in loaded.topology.in_production:
            if queue != loaded.topology.platform_queue:
                consumers.setdefault(queue, []).append(loaded.label)
    return consumers


@check(SYSTEM)
def every_queue_has_exactly_one_consumer(s: SystemState, _: Any) -> None:
    """A task routed to a queue that no worker consumes waits forever; one routed
    to a queue two workers consume runs in whichever takes it first, where it may
    not be registered.

    Evidence: the route of every task each app registers, against the queues each worker
    consumes as production starts it. ``celery`` may have several consumers (Celery's
    own tasks run anywhere); a queue served outside the run is named with
    ``--cadasta-external-queues``."""
    consumers = _consumers(s)
    external = set(s.external_queues)
    routed: dict[str, list[str]] = {}
    for loaded in s.apps:
        c = s.of(loaded)
        for name in c.own_tasks():
            queue = c.routed_queue(name)
            if queue is not None:
                routed.setdefault(queue, []).append(f"{loaded.label}'s {name!r}")
    problems = []
    for queue, tasks in sorted(routed.items()):
        if queue in external:
            continue
        takers = consumers.get(queue, [])
        if len(takers) != 1:
            who = ", ".join(takers) if takers else "no worker"
            problems.append(f"queue {queue!r} (for {', '.join(tasks[:3])}"
                            f"{', ...' if len(tasks) > 3 else ''}) is consumed by {who}")
    for queue, takers in sorted(consumers.items()):
        # Celery's own tasks (chord_unlock) run in any worker: 'celery' may be
        # consumed by several.
        if len(takers) > 1 and queue not in routed and queue not in external \
                and queue != "celery":
            problems.append(f"queue {queue!r} is consumed by {', '.join(takers)}")
    if problems:
        shown = ", ".join(f"{label}: {', '.join(queues)}" for label, queues in
                          ((w.label, [q for q, t in consumers.items() if w.label in t])
                           for w in s.workers))
        fail(saw="; ".join(problems) + f" (the workers consume: {shown})",
             needs="every queue the apps route their tasks to consumed by exactly one "
                   "worker of the system",
             fix="start each worker with -Q naming its own queues (--cadasta-queues="
                 "LABEL=QUEUES), add the worker that consumes the queue to the run "
                 "(--cadasta-app), or name a queue consumed outside it with "
                 "--cadasta-external-queues")


def _route_text(route: tuple[Any, Any, Any]) -> str:
    exchange, key, queue = route
    name = getattr(queue, "name", None)
    return f"queue {name!r} (exchange {exchange!r}, key {key!r})"


@check(SYSTEM)
def no_task_name_has_two_routes(s: SystemState, _: Any) -> None:
    """A task registered by two apps that route it differently goes to one queue
    when one app sends it and to another when the other does: its follow-ups and
    errbacks get lost.

    Evidence: every task name registered by two apps, with each app's route."""
    routes: dict[str, dict[str, str]] = {}
    for loaded in s.apps:
        c = s.of(loaded)
        for name in c.own_tasks():
            routes.setdefault(name, {})[loaded.label] = _route_text(effective_route(c.app, name))
    clashes = [f"{name!r}: " + "; ".join(f"{label} sends it to {route}"
                                          for label, route in by_app.items())
               for name, by_app in sorted(routes.items()) if len(set(by_app.values())) > 1]
    if clashes:
        fail(saw=" | ".join(clashes),
             needs="a task name routed the same way by every app that registers it",
             fix=f"route by the name's first segment in every app (the router of {TOOLBOX}), "
                 "without task_routes entries of one app's own")


def _pairs(s: SystemState) -> list[tuple[LoadedApp, LoadedApp]]:
    """Each worker with the next, in a ring: every worker sends and receives."""
    workers = s.workers
    if len(workers) == 2:
        return [(workers[0], workers[1]), (workers[1], workers[0])]
    return [(w, workers[(i + 1) % len(workers)]) for i, w in enumerate(workers)]


def _sqs(loaded: LoadedApp, queue: str | None) -> str:
    """Where ``loaded`` puts (or reads) ``queue``: its SQS name and region."""
    from pytest_cadasta.services.sqs import sqs_queue_name

    topology = loaded.topology
    name = sqs_queue_name(topology.queue_name_prefix, queue or "")
    return f"{name} ({topology.region})"


def _delivered(s: SystemState, sender: LoadedApp, receiver: LoadedApp,
               name: str, what: str) -> None:
    """Fail at once if ``sender`` puts ``name`` in an SQS queue ``receiver`` does
    not read (nothing would ever run it there)."""
    __tracebackhide__ = True
    target = s.of(sender).routed_queue(name)
    consumed = s.start_workers()[receiver.label].queues
    where = _sqs(sender, target)
    read = [_sqs(receiver, queue) for queue in consumed]
    if where not in read:
        fail(saw=f"{sender.label} sends {what} {name!r} (living in {receiver.label}) to "
                 f"queue {target!r}, SQS queue {where}; {receiver.label} reads "
                 f"{', '.join(read)}",
             needs="a task of another app sent to the SQS queue that app's worker reads",
             fix=f"the same QUEUES, QUEUE_PREFIX and region in every app (one {TOOLBOX} "
                 "configuration), and each worker started with -Q naming its own queues")


def _after(s: SystemState, task_id: str, name: str, receiver: LoadedApp,
           monitor: list) -> list[str]:
    """What went wrong with ``task_id`` (``name``, to be run by ``receiver``)."""
    problems = []
    if not s.wait_done(task_id):
        problems.append(f"{name!r} did not run: {s.events.story(task_id)}")
        return problems
    takers = s.receivers(task_id)
    if takers != [receiver.label]:
        problems.append(f"{name!r} was taken by {', '.join(takers) or 'no worker'}, not "
                        f"{receiver.label} alone")
    copies = sum(1 for m in monitor if m.id == task_id)
    if copies != 1:
        problems.append(f"the monitor saw {name!r} {copies} times")
    row = s.result_db.rows(task_id)
    if not row or row[0]["status"] != "SUCCESS":
        problems.append(f"{name!r} left {row_text(row[0] if row else None)} in the result "
                        "table")
    return problems


@check(SYSTEM, phase=Phase.WITH_WORKER,
       applies=lambda apps: sum(loaded.entry.is_worker for loaded in apps) > 1)
def followups_and_errbacks_cross_workers(s: SystemState, _: Any) -> None:
    """A worker's follow-up or errback that lives in another worker must run
    there, once, seen by the monitor, its result where the platform reads it;
    run in the wrong worker it is lost as NotRegistered.

    Evidence: *two workers or more*: each worker, in a ring, schedules from inside a
    task a follow-up that lives in the next worker only, and fails a task whose errback
    lives there; the next worker (and only it) takes both, the monitor sees each once,
    and each leaves a SUCCESS row."""
    from celery import signature

    problems = []
    for sender, receiver in _pairs(s):
        followup = f"{s.home(receiver)}.{FOLLOWUP}"
        errback = f"{s.home(receiver)}.{ERRBACK}"
        _delivered(s, sender, receiver, followup, "the follow-up")
        _delivered(s, sender, receiver, errback, "the errback")
        sends = s.send(sender, f"{s.home(sender)}.{SENDS}", args=(followup,))
        link = signature(errback, app=sender.app)
        errback_id = link.freeze().id
        failing = s.send(sender, f"{s.home(sender)}.{FAILING}", link_error=link)
        if not s.wait_done(sends.id) or not s.wait_done(failing.id):
            problems.append(f"{sender.label} did not run its own probes: "
                            f"{s.events.story(sends.id)}")
            continue
        # The follow-up was published (synchronously) before its sender ended.
        followup_id = next((e.task_id for e in s.events.published_by(sends.id)), None)
        if followup_id is None:
            problems.append(f"{sender.label} sent no follow-up: {s.events.story(sends.id)}")
            continue
        found = (_after(s, followup_id, followup, receiver, s.monitor())
                 + _after(s, errback_id, errback, receiver, s.monitor()))
        problems += [f"{sender.label} -> {receiver.label}: {p}" for p in found]
    if problems:
        fail(saw="; ".join(problems),
             needs="a follow-up and an errback sent by one worker to a task of another run "
                   "by that other worker alone, copied once to the monitor, with a SUCCESS "
                   "row in the result table",
             fix=f"configure every app with {TOOLBOX} (the same QUEUES), and start each "
                 "worker with -Q naming its own queues")


@check(SYSTEM, phase=Phase.WITH_WORKER,
       applies=lambda apps: len({loaded.entry.is_worker for loaded in apps}) == 2)
def producer_tasks_reach_a_worker(s: SystemState, _: Any) -> None:
    """A task the platform sends that no worker runs, or whose result is not
    where the platform reads it, is a request that never completes.

    Evidence: *with a producer*: a task each producer sends to each worker, run there
    once, seen once by the monitor, with its SUCCESS row."""
    problems = []
    for producer in s.producers:
        for worker in s.workers:
            name = f"{s.home(worker)}.{FOLLOWUP}"
            _delivered(s, producer, worker, name, "the task")
            sent = s.send(producer, name, args=(f"from {producer.label}",))
            found = _after(s, sent.id, name, worker, s.monitor())
            problems += [f"{producer.label} -> {worker.label}: {p}" for p in found]
    if problems:
        fail(saw="; ".join(problems),
             needs="every task the producer sends run by the worker of its queue, copied "
                   "once to the monitor, with its row in the result table",
             fix=f"configure the producer with {TOOLBOX} and the same QUEUES as the workers")
