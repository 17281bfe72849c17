"""The state one app's checks stand on: the wired app, its probes, the task
events, and ways to see what really happened (messages in SQS, result rows)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.probes import HideProbeFailures, Probes, is_probe
from pytest_cadasta.apps.routes import route, routed_queue
from pytest_cadasta.apps.sending import send_delivered, undeliverable, undeliverable_by_thread
from pytest_cadasta.basics.ids import not_for_a_producer
from pytest_cadasta.basics.protocol import TOOLBOX, CheckSkipped, fail
from pytest_cadasta.services import events
from pytest_cadasta.services.events import DONE, RECEIVED, UNKNOWN, TaskEvents
from pytest_cadasta.services.sqs import QueueLog

if TYPE_CHECKING:
    from pytest_cadasta.basics.messages import TaskMessage
    from pytest_cadasta.basics.topology import Topology
    from pytest_cadasta.model.result_table import Fault
    from pytest_cadasta.running.harness import Harness
    from pytest_cadasta.services.resultdb import ResultDatabase
    from pytest_cadasta.services.worker import InProcessWorker


#: How many probes go to the monitor between two reads of it.
MONITOR_BATCH = 20
#: The most threads that send the probes of many queues and read them back.
LANDING_THREADS = 4


@dataclass(frozen=True)
class Landing:
    """Where a task sent from the fresh connection landed."""

    name: str
    task_id: str
    #: Its copies in its work queue (read there, or taken by the worker).
    in_queue: list
    in_monitor: list
    #: kombu's word for each copy it could route to no queue.
    lost: list[str]


class AppState:
    """The state shared by one app's checks: the wired app, its probes, the
    task events, and ways to see what really happened (messages in SQS, rows
    in the result table). ``producer`` is how the user said the app runs no
    worker (None: it runs one)."""

    #: What ``start_workers`` starts, for a message.
    WORKERS = "the worker"

    def __init__(self, harness: Harness, producer: str | None = None) -> None:
        self.harness = harness
        self.producer = producer
        self.topology: Topology = harness.topology
        self.probes = Probes.for_topology(self.topology)
        self.probes.install(harness.user_app)
        worker = harness.running_worker
        if worker is not None and worker.running:  # started by a test of the user's
            worker.learn_tasks()
        #: The queues the worker-side checks need consumed: the probes' own
        #: queue, and celery (chord_unlock) when the worker consumes it in
        #: production.
        self.worker_queues = tuple(dict.fromkeys(
            q for q in (self.probes.home, "celery") if q in self.topology.consumed))
        self.events = TaskEvents().connect()
        harness.on_close(self.events.disconnect)
        hide = HideProbeFailures()
        for name in ("celery.app.trace", "celery.app.builtins"):  # tasks, chord_unlock
            log = logging.getLogger(name)
            log.addFilter(hide)
            harness.on_close(log.removeFilter, hide)
        # The checks that only publish run before PostgreSQL is needed (it
        # starts meanwhile); the first that reads results waits for it.
        self.app = harness.broker_app()
        self.original = harness.original
        self.sqs = harness.sqs()
        self._monitor = QueueLog(self.sqs, self.topology.platform_queue)
        #: The platform reading this app's monitor queue (its sync-tasks, its
        #: Task table, its view of each task).
        self.platform = harness.platform()
        self._declared: Any = None
        self._fresh: Any = None
        self._landings: dict[str, Landing] | None = None
        self._fault: Fault | None | bool = False  # not worked out yet

    def gone(self, quick: bool = False) -> str | None:
        """What of the infrastructure no longer answers (``Infrastructure.gone``)."""
        return self.harness.gone(quick)

    # -- infrastructure on demand ------------------------------------------
    @property
    def result_db(self) -> ResultDatabase:
        """The result database, the app's results wired to it."""
        self.harness.app()
        return self.harness.result_db()

    def result_table_fault(self) -> Fault | None:
        """What in the result tables stops this app's results from landing
        (a column, a table, a sequence), or None; worked out once (the tables
        do not change while the checks run)."""
        if self._fault is False:
            from pytest_cadasta.model.result_table import fault

            database = self.result_db
            self._fault = fault(self.app, database.columns, database.exists, database.role)
        return self._fault

    def fail_if_results_cannot_land(self) -> None:
        """Fail the check, naming what is missing and the SQL that adds it, when
        the result tables cannot take this app's results."""
        __tracebackhide__ = True
        found = self.result_table_fault()
        if found is not None:
            fail(saw=found.saw,
                 needs="every result the worker stores written to the platform's Result "
                       "table as it is, under the restricted role",
                 fix=found.fix, explained=True)

    def library_fix(self, task_id: str) -> str | None:
        """The fix for the exception kombu or Celery raised as the worker ran
        ``task_id`` (the app's serializer, say), or None."""
        from pytest_cadasta.basics.forensics import library_fix
        from pytest_cadasta.services.events import FAILED

        for event in self.events.of(task_id, (FAILED,)):
            exc = event.info.get("exception")
            if exc is not None and (fix := library_fix(exc)) is not None:
                return fix
        return None

    def sent_by_checks(self) -> list[Any]:
        """The first publish of each task the checks caused: the probes, from the
        checks and from inside the worker, and Celery's own tasks (chords)."""
        first: dict[str, Any] = {}
        for event in self.events.published():
            name = event.name or ""
            if (is_probe(name) or name.startswith("celery.")) and event.task_id not in first:
                first[event.task_id] = event
        return list(first.values())

    def sends_of(self, task_id: str) -> list[Any]:
        """Every publish of ``task_id``, first to last: a task that retries
        (``celery.chord_unlock`` while its chord runs) is sent again under its
        own id, with itself as parent."""
        return [event for event in self.events.published() if event.task_id == task_id]

    def require_worker_app(self) -> None:
        """Skip a check that judges the app as a worker when it only produces."""
        if self.producer is not None:
            raise CheckSkipped(not_for_a_producer(self.producer))

    def require_worker(self) -> InProcessWorker:
        """The in-process worker, consuming (at least) ``worker_queues``."""
        self.require_worker_app()
        return self.harness.worker(self.worker_queues)

    def start_workers(self) -> InProcessWorker:
        """What a check that needs a worker stands on: ``require_worker``."""
        return self.require_worker()

    def own_tasks(self) -> list[str]:
        """The tasks the app registers itself: not Celery's, not the probes, not
        those of pytest's plugins (pytest-celery's shared tasks)."""
        tooling = self.harness.tooling_modules
        return sorted(name for name, task in self.app.tasks.items()
                      if not name.startswith("celery.") and not is_probe(name)
                      and task.__module__ not in tooling)

    def consumed_queues(self) -> list[str]:
        """The queues the in-process worker consumes now (none if not started)."""
        worker = self.harness.running_worker
        return [] if worker is None else list(worker.queues)

    def declared_channel(self) -> Any:
        """A channel on a connection of its own where the exchange of every queue
        of the app was declared as that queue declares it, once for the run
        (kombu keeps exchanges in memory, per connection: this costs no SQS
        call, whatever the number of queues)."""
        if self._declared is None:
            connection = self.app.connection_for_write()
            self.harness.on_close(connection.close)
            channel = connection.default_channel
            declared = set()
            for queue in self.app.amqp.queues.values():
                exchange = queue.exchange
                if exchange is None or not exchange.name:
                    continue
                # Queues share their exchange: one declaration of each form.
                form = (exchange.name, exchange.type, exchange.durable, exchange.auto_delete,
                        repr(sorted((exchange.arguments or {}).items())))
                if form not in declared:
                    declared.add(form)
                    exchange(channel).declare()
            self._declared = channel
        return self._declared

    # -- sending --------------------------------------------------------------
    def send_fresh(self, name: str, args: tuple = (), **options: Any) -> tuple[Any, list[str]]:
        """Send ``name`` as the app would, from a connection on which nothing but
        these sends ever declared anything (kombu's exchange bindings live per
        connection). One connection serves every send of the run: a new one per
        send would cost a new SQS client each."""
        if self._fresh is None:
            self._fresh = self.app.connection_for_write()
            self.harness.on_close(self._fresh.close)
        with undeliverable() as lost:
            result = self.app.send_task(name, args=args, connection=self._fresh, **options)
        return result, lost

    def landing(self, queue: str) -> Landing:
        """Where the probe of ``queue``, sent from a fresh connection, landed.

        The first call sends the probe of every work queue and reads the monitor
        and each queue once: every per-queue check then reads its own answer, so
        a queue costs its two publishes and one read, not a pass of its own.
        A queue SQS would refuse to create is not sent to (its check says so).
        Publishing is synchronous and moto consistent: every copy is where it will
        ever be, now. Only a worker consuming a queue can take a copy first, and
        then it says so (task_received).
        """
        if self._landings is None:
            consumed = set(self.consumed_queues())
            queues = [q for q in self.topology.work_queues if self.sqs.refused(q) is None
                      and self.topology.undefined(q) is None]
            sent = self._send_probes(queues)
            monitor = self.monitor()
            found = self._in_parallel(lambda q: self.take(q, sent[q][0].id), queues)
            self._landings = {}
            for q, (result, lost) in sent.items():
                in_queue = found[q] + self.received_from(q, result.id)
                if q in consumed and not in_queue:
                    self.events.wait_for(result.id, (RECEIVED, UNKNOWN))
                    in_queue = self.received_from(q, result.id)
                self._landings[q] = Landing(self.probes.probe(q), result.id, in_queue,
                                            [m for m in monitor if m.id == result.id], lost)
        return self._landings[queue]

    def _threads_for(self, count: int) -> int:
        """How many threads serve ``count`` independent SQS requests: one up to a
        batch (a thread of its own costs a connection), a few beyond."""
        return max(1, min(LANDING_THREADS, count // MONITOR_BATCH))

    def _in_parallel(self, call: Callable[[str], Any], queues: list[str]) -> dict[str, Any]:
        """``call(queue)`` for each queue, in a few threads when there are many:
        moto answers in a process of its own, so requests in flight together
        use both cores."""
        threads = self._threads_for(len(queues))
        if threads == 1:
            return {q: call(q) for q in queues}
        with ThreadPoolExecutor(threads, thread_name_prefix="cadasta-probe") as pool:
            return dict(zip(queues, pool.map(call, queues)))

    def _send_probes(self, queues: list[str]) -> dict[str, tuple[Any, list[str]]]:
        """Send the probe of each queue, each thread from a fresh connection of
        its own, the monitor read every ``MONITOR_BATCH`` probes (moto's FIFO
        queue grows slower to write and read with every message it holds)."""
        local = threading.local()
        workers: set[int] = set()

        def send(q: str, lost_by_thread: dict[int, list[str]]) -> tuple[Any, list[str]]:
            if getattr(local, "connection", None) is None:
                local.connection = self.app.connection_for_write()
                self.harness.on_close(local.connection.close)
                workers.add(threading.get_ident())
            lost = lost_by_thread[threading.get_ident()]
            before = len(lost)
            result = self.app.send_task(self.probes.probe(q), args=("fan-out",),
                                        kwargs={"probe": True}, connection=local.connection)
            return result, lost[before:]

        threads = self._threads_for(len(queues))
        sent: dict[str, tuple[Any, list[str]]] = {}
        with undeliverable_by_thread(lambda ident: ident in workers) as lost_by_thread:
            if threads == 1:
                for q in queues:
                    sent[q] = send(q, lost_by_thread)
                    if len(sent) % MONITOR_BATCH == 0:
                        self.monitor()
            else:
                with ThreadPoolExecutor(threads, thread_name_prefix="cadasta-probe") as pool:
                    futures = {pool.submit(send, q, lost_by_thread): q for q in queues}
                    for done, future in enumerate(as_completed(futures), start=1):
                        sent[futures[future]] = future.result()
                        if done % MONITOR_BATCH == 0:
                            self.monitor()
        return {q: sent[q] for q in queues}

    def route(self, name: str) -> dict:
        """The route the app's own router gives ``name`` (Celery's Router)."""
        return route(self.app, name)

    def routed_queue(self, name: str) -> str | None:
        """The queue a message of ``name`` goes to, by the app's own router."""
        return routed_queue(self.app, name)

    def run_in_worker(self, name: str, args: tuple = (), **options: Any) -> tuple[Any, Any]:
        """Send probe ``name`` through the app's producer and return (its
        AsyncResult, the event that ended its run) as soon as the worker has run
        it, its outcome stored. A probe that cannot reach the worker fails the
        check at once, saying where it went."""
        __tracebackhide__ = True
        worker = self.require_worker()
        # A probe whose result cannot be stored would only show Celery's retries.
        self.fail_if_results_cannot_land()
        result = send_delivered(
            self.app, name, "probe",
            needs="every task message delivered to the queue of its name's prefix",
            fix=f"make the router declare the task's queue (the router of {TOOLBOX} does)",
            args=args, **options)
        # Publishing is synchronous and moto consistent: where the message went
        # is known now.
        target = self.routed_queue(name)
        if target not in worker.queues:
            fail(saw=f"probe {name!r} routes to queue {target!r}; the worker consumes "
                     f"{', '.join(worker.queues)}",
                 needs="tasks routed by their name's first segment to the queue of that name",
                 fix=f"route by the name's first segment (the router of {TOOLBOX})")
        sent = time.monotonic()
        ended = self.events.wait_for(result.id, DONE)
        if ended is None:
            waited = time.monotonic() - sent
            saw = (f"after {waited:.1f} s, probe {name!r} had not ended: "
                   f"{self.events.story(result.id)}")
            # The safety net ran out (the wait ends early when the worker fails
            # another task) with the worker inside a task: it is stuck there.
            stuck = worker.running_task() if waited >= events.ROUND_TRIP_TIMEOUT else None
            if stuck is not None:
                running = f"task {stuck.name!r} ({stuck.id}), which never returned"
                worker.give_up(f"it is stuck in {running}")
                fail(saw=f"{saw}; the worker is still running {running}",
                     needs="tasks, and task signal handlers, that return: a worker process "
                           "runs nothing else meanwhile",
                     fix=f"find where {stuck.name!r} waits (py-spy dump --pid "
                         f"{os.getpid()} while it hangs)")
            fail(saw=saw, needs="the worker to receive and run the probe",
                 fix="run with -rA and see the worker's log")
        return result, ended

    # -- observing ------------------------------------------------------------
    def monitor(self) -> list[TaskMessage]:
        """Every message the monitor queue has received so far in this run."""
        return self._monitor.messages()

    def in_monitor(self, task_id: str) -> list[TaskMessage]:
        return self._monitor.of(task_id)

    def take(self, queue: str, task_id: str) -> list[TaskMessage]:
        """Copies of ``task_id`` now in ``queue`` (read and deleted, with
        everything else in it)."""
        return [m for m in self.sqs.messages(queue) if m.id == task_id]

    def received_from(self, queue: str, task_id: str) -> list[Any]:
        """Times the in-process worker took ``task_id`` from ``queue``."""
        sqs_name = self.sqs.sqs_name(queue)
        return [e for e in self.events.of(task_id, (RECEIVED, UNKNOWN))
                if e.info.get("queue") == sqs_name]

    def row(self, task_id: str) -> dict | None:
        """The result row of ``task_id`` now (the worker stored it before its
        run ended)."""
        rows = self.result_db.rows(task_id)
        return rows[0] if rows else None

    def where_is(self, task_id: str) -> dict[str, int]:
        """SQS queue name -> how many copies of ``task_id`` it holds (read and deleted)."""
        return {sqs_name: sum(1 for m in self.sqs.read(url, sqs_name) if m.id == task_id)
                for sqs_name, url in self.sqs.queues().items()}
