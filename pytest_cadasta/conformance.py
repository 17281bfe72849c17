"""What every check stands on: the wired app, its probes, and ways to see what
really happened (messages in SQS, rows in the result table)."""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_cadasta.errors import CadastaError, InfrastructureError, one_line
from pytest_cadasta.events import DONE, RECEIVED, UNKNOWN, TaskEvents
from pytest_cadasta.probes import HideProbeFailures, Probes, is_probe
from pytest_cadasta.topology import Topology
from pytest_cadasta.wiring import UNDELIVERABLE_WARNING

if TYPE_CHECKING:
    from pytest_cadasta.checks import Check
    from pytest_cadasta.harness import Harness
    from pytest_cadasta.messages import TaskMessage
    from pytest_cadasta.resultdb import ResultDatabase
    from pytest_cadasta.worker import InProcessWorker

#: A safety net: a round trip ends as soon as the worker reports, long before.
ROUND_TRIP_TIMEOUT = 10.0
TOOLBOX = "cadasta_toolbox.config.Config"
PRODUCER_ONLY_REASON = "--cadasta-producer-only: the app runs no worker"


class CheckFailed(AssertionError):
    """A conformance check failed; the message is the review comment."""


class CheckSkipped(Exception):
    """A check that does not apply (e.g. it needs a worker, and there is none)."""


def run_check(check: Check, conformance: Conformance,
              queue: str | None) -> tuple[str | None, str | None]:
    """Run one check; return (failure message, skip reason), at most one set.

    Both runners (pytest items, unittest methods) report from this, outside
    any except block, so no exception chain reaches the report. A check that
    went wrong while a part of the infrastructure had gone away raises an
    ``InfrastructureError`` saying so: what it saw is no verdict on the app.
    """
    try:
        check.func(conformance, queue)
    except CheckSkipped as exc:
        return None, str(exc)
    except CadastaError:
        raise  # the plugin's own part failed: an error, not a verdict
    except Exception as exc:
        gone = conformance.harness.gone()
        if gone is not None:
            raise InfrastructureError(gone) from None
        if isinstance(exc, CheckFailed):
            return f"{check.doc}{exc}", None
        if user_frame(exc) is None:
            raise  # raised in the libraries or the plugin, not the app: an error
        return f"{check.doc}{raised_while_checking(exc)}", None
    return None, None


def raised_while_checking(exc: BaseException) -> str:
    """A check failure for an exception the app's own code (or a library it
    drives) raised: the exception in one line and where it was raised."""
    where = raised_at(exc)
    return (f"\n  saw:   {one_line(exc)} (raised at {where})"
            "\n  needs: the app's own code (its AMQP class, routers, signal handlers) to "
            "send and run tasks while the broker answers: here SQS is moto's server, "
            "listening since before the app was imported"
            f"\n  fix:   look at {where}; state kept from an earlier failure (a circuit "
            "breaker opened while the module was imported) must not outlive it")


def _library_dirs() -> tuple[str, ...]:
    import sysconfig
    from pathlib import Path

    import pytest_cadasta

    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(str(Path(pytest_cadasta.__file__).parent))
    return tuple(str(Path(d).resolve()) + "/" for d in dirs)


def user_frame(exc: BaseException) -> Any:
    """The innermost frame of ``exc``'s traceback outside the libraries and this
    plugin (a ``traceback.FrameSummary``), or None when there is none."""
    import os
    import traceback

    libraries = _library_dirs()
    own = [f for f in traceback.extract_tb(exc.__traceback__)
           if not os.path.realpath(f.filename).startswith(libraries)]
    return own[-1] if own else None


def raised_at(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame outside the libraries
    and this plugin (the innermost frame when all are library frames)."""
    import os
    import traceback

    frame = user_frame(exc)
    if frame is None:
        frames = traceback.extract_tb(exc.__traceback__)
        if not frames:
            return "an unknown place"
        frame = frames[-1]
    try:
        filename = os.path.relpath(frame.filename)
    except ValueError:
        filename = frame.filename
    if filename.startswith(".."):
        filename = frame.filename
    return f"{filename}:{frame.lineno} in {frame.name}"


def fail(saw: str, needs: str, fix: str) -> NoReturn:
    """Fail a check the way a reviewer would: what was seen, what is needed, the fix."""
    __tracebackhide__ = True
    raise CheckFailed(f"\n  saw:   {saw}\n  needs: {needs}\n  fix:   {fix}")


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


@contextmanager
def undeliverable() -> Iterator[list[str]]:
    """Collect, into the list it yields, kombu's word for each message published
    in this thread (inside the block) that reached no queue. Warnings of other
    threads (the worker's) and other warnings go on as they would have."""
    found: list[str] = []
    me = threading.get_ident()
    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=UNDELIVERABLE_WARNING)
        shown = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int,
                 file: Any = None, line: Any = None) -> None:
            text = str(message).strip()
            if threading.get_ident() == me and text.startswith(UNDELIVERABLE_WARNING):
                found.append(text)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield found


class Conformance:
    """The state shared by the checks of one run: the wired app, its probes,
    the task events, and ways to see what really happened (messages in SQS,
    rows in the result table)."""

    def __init__(self, harness: Harness, is_worker: bool = True) -> None:
        self.harness = harness
        self.is_worker = is_worker
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
        self._monitor: list[TaskMessage] = []
        self._declared: Any = None
        self._fresh: Any = None
        self._landings: dict[str, Landing] | None = None

    # -- infrastructure on demand ------------------------------------------
    @property
    def result_db(self) -> ResultDatabase:
        """The result database, the app's results wired to it."""
        self.harness.app()
        return self.harness.result_db()

    def require_worker(self) -> InProcessWorker:
        """The in-process worker, consuming (at least) ``worker_queues``."""
        if not self.is_worker:
            raise CheckSkipped(PRODUCER_ONLY_REASON)
        return self.harness.worker(self.worker_queues)

    def require_worker_app(self) -> None:
        """Skip a check that judges the app as a worker when it only produces."""
        if not self.is_worker:
            raise CheckSkipped(PRODUCER_ONLY_REASON)

    def own_tasks(self) -> list[str]:
        """The tasks the app registers itself: not Celery's, not the probes, not
        those of pytest's plugins (pytest-celery's shared tasks)."""
        tooling = self.harness.tooling_modules
        return sorted(name for name, task in self.app.tasks.items()
                      if not name.startswith("celery.") and not is_probe(name)
                      and task.__module__ not in tooling)

    def production_consumption(self) -> list[str]:
        """The queues 'celery worker' consumes as production starts it: those -Q
        names (--cadasta-queues), else Celery's default, every queue in
        task_queues; then less what the app's own ``celeryd_after_setup``
        handlers deselect (the signal fires once -Q is applied). Worked out on
        the app's own selection, put back afterwards."""
        from types import SimpleNamespace

        from celery.signals import celeryd_after_setup

        queues = self.app.amqp.queues
        before = list(queues.consume_from)
        wanted = self.topology.production_queues
        try:
            queues.select(list(queues) if wanted is None else list(wanted))
            hostname = "cadasta-production@localhost"
            celeryd_after_setup.send(sender=hostname, conf=self.app.conf,
                                     instance=SimpleNamespace(app=self.app, hostname=hostname))
            return list(queues.consume_from)
        finally:
            queues.select(before)

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
            for queue in self.app.amqp.queues.values():
                if queue.exchange is not None and queue.exchange.name:
                    queue.exchange(channel).declare()
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
        """Where the probe of ``queue``, sent from the fresh connection, landed.

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
            sent = {q: self.send_fresh(self.probes.probe(q), args=("fan-out",),
                                       kwargs={"probe": True})
                    for q in self.topology.work_queues if self.sqs.refused(q) is None}
            monitor = self.monitor()
            self._landings = {}
            for q, (result, lost) in sent.items():
                in_queue = self.take(q, result.id) + self.received_from(q, result.id)
                if q in consumed and not in_queue:
                    self.events.wait_for(result.id, (RECEIVED, UNKNOWN), ROUND_TRIP_TIMEOUT)
                    in_queue = self.received_from(q, result.id)
                self._landings[q] = Landing(self.probes.probe(q), result.id, in_queue,
                                            [m for m in monitor if m.id == result.id], lost)
        return self._landings[queue]

    def route(self, name: str) -> dict:
        """The route the app's own router gives ``name`` (Celery's Router)."""
        return self.app.amqp.router.route({}, name)

    def run_in_worker(self, name: str, args: tuple = (), **options: Any) -> tuple[Any, Any]:
        """Send probe ``name`` through the app's producer and return (its
        AsyncResult, the event that ended its run) as soon as the worker has run
        it, its outcome stored. A probe that cannot reach the worker fails the
        check at once, saying where it went."""
        __tracebackhide__ = True
        from pytest_cadasta.checks.common import routed_queue

        worker = self.require_worker()
        with undeliverable() as lost:
            result = self.app.send_task(name, args=args, **options)
        # Publishing is synchronous and moto consistent: where the message went
        # is known now.
        target = routed_queue(self, name)
        if lost:
            fail(saw=f"probe {name!r} reached no queue: {lost[0]}",
                 needs="every task message delivered to the queue of its name's prefix",
                 fix=f"make the router declare the task's queue (the router of {TOOLBOX} "
                     "does)")
        if target not in worker.queues:
            fail(saw=f"probe {name!r} routes to queue {target!r}; the worker consumes "
                     f"{', '.join(worker.queues)}",
                 needs="tasks routed by their name's first segment to the queue of that name",
                 fix=f"route by the name's first segment (the router of {TOOLBOX})")
        sent = time.monotonic()
        ended = self.events.wait_for(result.id, DONE, ROUND_TRIP_TIMEOUT)
        if ended is None:
            waited = time.monotonic() - sent
            saw = (f"after {waited:.1f} s, probe {name!r} had not ended: "
                   f"{self.events.story(result.id)}")
            # The safety net ran out (the wait ends early when the worker fails
            # another task) with the worker inside a task: it is stuck there.
            stuck = worker.running_task() if waited >= ROUND_TRIP_TIMEOUT else None
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
        """Every message the monitor queue has received so far in this run (read
        and deleted from SQS as it comes; kept here)."""
        self._monitor += self.sqs.messages(self.topology.platform_queue)
        return list(self._monitor)

    def in_monitor(self, task_id: str) -> list[TaskMessage]:
        return [m for m in self.monitor() if m.id == task_id]


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
