"""What the system checks stand on: every app's checks, a worker per worker
app consuming its production queues, and probes that live in one worker only,
so a task that crosses from one worker to another shows who ran it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_cadasta.conformance import ROUND_TRIP_TIMEOUT, fail, undeliverable
from pytest_cadasta.events import DONE, RECEIVED, UNKNOWN, TaskEvents

if TYPE_CHECKING:
    from pytest_cadasta.conformance import Conformance
    from pytest_cadasta.messages import TaskMessage
    from pytest_cadasta.resultdb import ResultDatabase
    from pytest_cadasta.run import LoadedApp, Run
    from pytest_cadasta.worker import InProcessWorker

#: Probes of the system checks, each registered on one worker app only.
FOLLOWUP = "cadasta_system_followup"
ERRBACK = "cadasta_system_errback"
SENDS = "cadasta_system_sends"


def _returns(self: Any, *args: Any, **kwargs: Any) -> dict:
    """Say which worker ran it."""
    return {"args": list(args), "worker": self.request.hostname}


def _sends(self: Any, name: str) -> str:
    """Send task ``name`` from inside the worker, as a follow-up; return its id."""
    return self.app.send_task(name, args=(f"follow-up from {self.request.hostname}",)).id


class SystemConformance:
    """The state of the system checks: every app's ``Conformance``, the task
    events, the monitor queue as the run has seen it since the system checks
    began."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.apps: list[LoadedApp] = list(run.apps.values())
        self.workers: list[LoadedApp] = run.workers
        self.producers = [loaded for loaded in self.apps if not loaded.entry.is_worker]
        self.conformances = {loaded.label: run.conformance(loaded.label) for loaded in self.apps}
        first = run.harness()
        self.events = TaskEvents().connect()
        first.on_close(self.events.disconnect)
        for loaded in self.workers:
            home = self.home(loaded)
            for name, fun in ((f"{home}.{FOLLOWUP}", _returns), (f"{home}.{ERRBACK}", _returns),
                              (f"{home}.{SENDS}", _sends)):
                if name not in loaded.app.tasks:
                    loaded.app.task(name=name, bind=True, shared=False, lazy=False)(fun)
        self._monitor: list[TaskMessage] = []
        self._workers: dict[str, InProcessWorker] | None = None

    @property
    def harness(self) -> Any:
        """The first app's harness: what run_check asks of the infrastructure."""
        return self.run.harness()

    def of(self, loaded: LoadedApp) -> Conformance:
        return self.conformances[loaded.label]

    def home(self, loaded: LoadedApp) -> str:
        """The queue where ``loaded``'s system probes live: its checks' home."""
        return self.of(loaded).probes.home

    # -- infrastructure ---------------------------------------------------------
    @property
    def result_db(self) -> ResultDatabase:
        return self.run.infra.result_db()

    def require_workers(self) -> dict[str, InProcessWorker]:
        """A worker per worker app, each consuming what it consumes in
        production, started together on empty queues (what the apps' own checks
        left unread goes first)."""
        if self._workers is None:
            self.run.harness().sqs().purge({loaded.topology.region for loaded in self.apps})
            self._workers = {loaded.label: self.run.harness(loaded.label).worker()
                             for loaded in self.workers}
        return self._workers

    # -- observing --------------------------------------------------------------
    def monitor(self) -> list[TaskMessage]:
        """Every message the monitor queue received since the system checks began."""
        first = self.of(self.apps[0])
        self._monitor += first.sqs.messages(first.topology.platform_queue)
        return list(self._monitor)

    def receivers(self, task_id: str) -> list[str]:
        """The workers (their labels) that took ``task_id`` from a queue."""
        names = {loaded.hostname: loaded.label for loaded in self.workers}
        return [names.get(e.info.get("worker"), str(e.info.get("worker")))
                for e in self.events.of(task_id, (RECEIVED, UNKNOWN))]

    def send(self, sender: LoadedApp, name: str, **options: Any) -> Any:
        """Send ``name`` from ``sender``'s own app (its router, its connection);
        fail at once if kombu could route it to no queue."""
        __tracebackhide__ = True
        with undeliverable() as lost:
            result = sender.app.send_task(name, **options)
        if lost:
            fail(saw=f"{sender.label} sent {name!r}, and it reached no queue: {lost[0]}",
                 needs="every task an app sends delivered to the queue of its name's prefix",
                 fix="declare that queue in the app's QUEUES (the same in every app)")
        return result

    def wait_done(self, task_id: str) -> bool:
        return self.events.wait_for(task_id, DONE, ROUND_TRIP_TIMEOUT) is not None
