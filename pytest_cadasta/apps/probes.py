"""The plugin's own probe tasks, registered on the user's app in each work
queue's namespace, so the checks never run a user task with side effects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_cadasta.basics.topology import Topology

PROBE = "cadasta_probe"
FAILING = "cadasta_probe_fails"
STARTED = "cadasta_probe_started"
SCHEDULER = "cadasta_probe_schedules"
#: An errback for a task that lives in another worker: registered nowhere here.
ELSEWHERE_ERRBACK = "cadasta_elsewhere.cadasta_probe_errback"
#: The queue of that other worker (its name's prefix, as routers route).
ELSEWHERE_QUEUE = ELSEWHERE_ERRBACK.split(".", 1)[0]

PROBE_FAILURE_MESSAGE = "cadasta probe failed on purpose"
#: What the last segment of every probe's name starts with (the app's checks'
#: and the system checks').
PROBE_PREFIXES = ("cadasta_probe", "cadasta_system_")


def is_probe(name: str) -> bool:
    """Whether task ``name`` is one of the plugin's probes, not the app's."""
    return name.rpartition(".")[2].startswith(PROBE_PREFIXES)


class ProbeFailure(Exception):
    """Raised by the failing probe."""


@dataclass(frozen=True)
class Probes:
    """Names of the probe tasks of each work queue; ``install`` registers them
    on the app. ``home`` is the queue the worker-side probes run in."""

    queues: tuple[str, ...]
    home: str

    @classmethod
    def for_topology(cls, topology: Topology) -> Probes:
        """Probes for every work queue; at home in the first queue the worker
        consumes in production that is not celery and that SQS can name (celery
        if there is none)."""
        from pytest_cadasta.services.sqs import refused_queue_name

        own = [q for q in topology.consumed if q != "celery"
               and refused_queue_name(topology.queue_name_prefix, q) is None]
        return cls(topology.work_queues, own[0] if own else "celery")

    def probe(self, queue: str) -> str:
        return f"{queue}.{PROBE}"

    def failing(self, queue: str) -> str:
        return f"{queue}.{FAILING}"

    def started(self, queue: str) -> str:
        return f"{queue}.{STARTED}"

    def scheduler(self, queue: str) -> str:
        return f"{queue}.{SCHEDULER}"

    def install(self, app: Any) -> None:
        """The probe of every work queue (each queue's landing is checked); the
        others in ``home`` only, where the worker-side checks run them."""
        for queue in self.queues:
            _register(app, self.probe(queue), _probe)
        _register(app, self.failing(self.home), _fails)
        _register(app, self.started(self.home), _started)
        _register(app, self.scheduler(self.home), _make_scheduler(self, self.home))


def _register(app: Any, name: str, fun: Any) -> None:
    if name not in app.tasks:
        app.task(name=name, bind=True, shared=False, lazy=False)(fun)


def _probe(self: Any, *args: Any, **kwargs: Any) -> dict:
    """Return what it was called with."""
    info = self.request.delivery_info or {}
    return {"args": list(args), "kwargs": kwargs,
            "routing_key": info.get("routing_key"), "exchange": info.get("exchange")}


def _fails(self: Any, *args: Any, **kwargs: Any) -> None:
    raise ProbeFailure(PROBE_FAILURE_MESSAGE)


def _started(self: Any) -> str | None:
    """Report the state the result backend holds for this task while it runs."""
    return self.backend.get_task_meta(self.request.id).get("status")


def _make_scheduler(probes: Probes, queue: str) -> Any:
    def _schedules(self: Any) -> dict:
        """Schedule, from inside the worker, a follow-up task and a chord."""
        from celery import chord, signature

        app = self.app
        probe = probes.probe(queue)
        followup = app.send_task(probe, args=("follow-up",))
        body = signature(probe, args=("chord body",), app=app)
        header = [signature(probe, args=(f"chord part {i}",), app=app) for i in range(2)]
        joined = chord(header, app=app)(body)
        return {"followup": followup.id, "chord": joined.id}

    return _schedules


class HideProbeFailures:
    """A logging filter dropping the worker's error log for the probe that fails
    on purpose, so it does not read like a problem in the report."""

    def filter(self, record: Any) -> bool:
        message = record.getMessage()
        return FAILING not in message and PROBE_FAILURE_MESSAGE not in message
