"""What the platform reads from an app about its queues, computed once when the
app is loaded and handed to everything that needs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_PLATFORM_QUEUE = "platform.fifo"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Topology:
    """One app's queues, exchange and SQS naming, as the platform sees them."""

    #: ``celery`` first, then ``QUEUES`` when the app sets it, else every queue
    #: in ``task_queues`` but the platform queue.
    work_queues: tuple[str, ...]
    #: ``PLATFORM_QUEUE_NAME`` when the app sets it, else platform.fifo.
    platform_queue: str
    #: The default exchange's name and type, as Celery settles them.
    exchange: str
    exchange_type: str
    #: Where the app's SQS queues live, and the prefix kombu gives their names.
    region: str
    queue_name_prefix: str
    #: What ``celery worker -Q`` names in production (--cadasta-queues); None:
    #: no -Q, Celery's default (every queue in ``task_queues``).
    production_queues: tuple[str, ...] | None = None

    @property
    def consumed(self) -> tuple[str, ...]:
        """The queues the worker's probes run in: the -Q queues, else the work
        queues (the platform queue never)."""
        queues = self.work_queues if self.production_queues is None else self.production_queues
        return tuple(q for q in queues if q != self.platform_queue)

    @classmethod
    def of(cls, app: Any, production_queues: tuple[str, ...] | None = None) -> Topology:
        conf = app.conf
        platform = conf.get("PLATFORM_QUEUE_NAME")
        platform = DEFAULT_PLATFORM_QUEUE if platform is None else platform
        declared = conf.get("QUEUES")
        if declared is None:
            declared = [name for name in app.amqp.queues if name != platform]
        work = ["celery"]
        work += [name for name in declared if name not in work and name != platform]
        options = dict(conf.broker_transport_options or {})
        return cls(
            work_queues=tuple(work),
            platform_queue=platform,
            exchange=conf.task_default_exchange or conf.task_default_queue,
            exchange_type=conf.task_default_exchange_type or "direct",
            region=options.get("region") or DEFAULT_REGION,
            queue_name_prefix=options.get("queue_name_prefix") or "",
            production_queues=production_queues,
        )
