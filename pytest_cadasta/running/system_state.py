"""The state the system checks stand on: every app's state, a worker per worker
app consuming its production queues, and probes that live in one worker only,
so a task that crosses from one worker to another shows who ran it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.sending import send_delivered
from pytest_cadasta.basics.protocol import TOOLBOX
from pytest_cadasta.services.events import DONE, RECEIVED, UNKNOWN, TaskEvents
from pytest_cadasta.services.sqs import QueueLog

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.basics.messages import TaskMessage
    from pytest_cadasta.running.app_state import AppState
    from pytest_cadasta.running.infrastructure import Infrastructure
    from pytest_cadasta.services.resultdb import ResultDatabase
    from pytest_cadasta.services.worker import InProcessWorker

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


class SystemState:
    """The state of the system checks: every app's ``AppState``, the task
    events, the monitor queue as the run has seen it since the system checks
    began. It is handed what it needs: the apps' states, a way to start an
    app's worker, the shared infrastructure, the queues served outside the
    run."""

    #: What ``start_workers`` starts, for a message.
    WORKERS = "the workers"

    def __init__(self, apps: list[LoadedApp], states: dict[str, AppState],
                 start_worker: Callable[[str], InProcessWorker], infra: Infrastructure,
                 external_queues: tuple[str, ...] = ()) -> None:
        self.apps = apps
        self.workers = [loaded for loaded in apps if loaded.entry.is_worker]
        self.producers = [loaded for loaded in apps if not loaded.entry.is_worker]
        self.states = states
        self.external_queues = external_queues
        self._start_worker = start_worker
        self._infra = infra
        self.events = TaskEvents().connect()
        for loaded in self.workers:
            home = self.home(loaded)
            for name, fun in ((f"{home}.{FOLLOWUP}", _returns), (f"{home}.{ERRBACK}", _returns),
                              (f"{home}.{SENDS}", _sends)):
                if name not in loaded.app.tasks:
                    loaded.app.task(name=name, bind=True, shared=False, lazy=False)(fun)
        first = self.of(apps[0])
        self._monitor = QueueLog(first.sqs, first.topology.platform_queue)
        self._workers: dict[str, InProcessWorker] | None = None

    def close(self) -> None:
        self.events.disconnect()

    def gone(self, quick: bool = False) -> str | None:
        """What of the shared infrastructure no longer answers."""
        return self._infra.gone(quick)

    def of(self, loaded: LoadedApp) -> AppState:
        return self.states[loaded.label]

    def home(self, loaded: LoadedApp) -> str:
        """The queue where ``loaded``'s system probes live: its checks' home."""
        return self.of(loaded).probes.home

    # -- infrastructure ---------------------------------------------------------
    @property
    def result_db(self) -> ResultDatabase:
        return self._infra.result_db()

    def start_workers(self) -> dict[str, InProcessWorker]:
        """A worker per worker app, each consuming what it consumes in
        production, started together on empty queues (what the apps' own checks
        left unread goes first)."""
        if self._workers is None:
            self.of(self.apps[0]).sqs.purge({loaded.topology.region for loaded in self.apps})
            self._workers = {loaded.label: self._start_worker(loaded.label)
                             for loaded in self.workers}
        return self._workers

    # -- observing --------------------------------------------------------------
    def monitor(self) -> list[TaskMessage]:
        """Every message the monitor queue received since the system checks began."""
        return self._monitor.messages()

    def receivers(self, task_id: str) -> list[str]:
        """The workers (their labels) that took ``task_id`` from a queue."""
        names = {loaded.hostname: loaded.label for loaded in self.workers}
        return [names.get(e.info.get("worker"), str(e.info.get("worker")))
                for e in self.events.of(task_id, (RECEIVED, UNKNOWN))]

    def send(self, sender: LoadedApp, name: str, **options: Any) -> Any:
        """Send ``name`` from ``sender``'s own app (its router, its connection);
        fail at once if kombu could route it to no queue."""
        __tracebackhide__ = True
        return send_delivered(
            sender.app, name, f"{sender.label}'s task",
            needs="every task an app sends delivered to the queue of its name's prefix",
            fix=f"declare that queue in the app's QUEUES, the same in every app ({TOOLBOX})",
            **options)

    def wait_done(self, task_id: str) -> bool:
        return self.events.wait_for(task_id, DONE) is not None
