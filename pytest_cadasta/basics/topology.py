"""What the platform reads from an app about its queues, computed once when the
app is loaded and handed to everything that needs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PLATFORM_QUEUE = "platform.fifo"
DEFAULT_REGION = "us-east-1"
#: The result table Celery's database backend writes, unless the app renames it.
DEFAULT_RESULT_TABLE = "celery_taskmeta"
#: Host names that are one place (the machine itself).
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def sqs_queue_name(prefix: str, name: str) -> str:
    """The SQS name kombu gives a queue: prefixed, translated with kombu's own
    table (dots to dashes, punctuation to underscores), '.fifo' kept."""
    from kombu.transport.SQS import CHARS_REPLACE_TABLE

    full = prefix + name
    suffix = ".fifo" if full.endswith(".fifo") else ""
    return full[: len(full) - len(suffix)].translate(CHARS_REPLACE_TABLE) + suffix


@dataclass(frozen=True)
class Predefined:
    """kombu's ``predefined_queues``: each SQS name (prefix included) the app's
    transport may use, and the URL it uses for it. With them kombu neither
    lists nor creates a queue, and refuses any other name."""

    #: SQS name -> URL, as the app gives them.
    urls: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, options: dict) -> Predefined:
        given = options.get("predefined_queues") or {}
        return cls(tuple((str(name), str((spec or {}).get("url", "")))
                         for name, spec in given.items()))

    def __bool__(self) -> bool:
        return bool(self.urls)

    def url(self, sqs_name: str) -> str | None:
        return dict(self.urls).get(sqs_name)

    def sqs_name(self, prefix: str, queue: str) -> str:
        """The name of the SQS queue behind ``queue``: kombu's name for it, or,
        when predefined, the name its URL ends with."""
        name = sqs_queue_name(prefix, queue)
        url = self.url(name)
        return name if not url else url.rstrip("/").rsplit("/", 1)[-1]

    def entry_for(self, sqs_name: str) -> str:
        """The entry to add for ``sqs_name``: its URL in the account (and
        region) the app's other entries name."""
        base = next((url.rsplit("/", 1)[0] for _, url in self.urls if "/" in url),
                    "https://sqs.<region>.amazonaws.com/<account>")
        return f"{sqs_name!r}: {{'url': '{base}/{sqs_name}'}}"


@dataclass(frozen=True)
class Binding:
    """A queue of the app's ``task_queues``, bound to an exchange with a key."""

    queue: str
    exchange: str
    exchange_type: str
    routing_key: str


@dataclass(frozen=True)
class Results:
    """Where the app writes its results, as its own settings say (before the run
    points them at the throwaway database); never with a password."""

    #: ``result_backend`` with its password masked (None: no backend set).
    backend: str | None
    #: ``host:port/database`` of a database backend (``db+...``), loopback
    #: spelled ``localhost``; None for any other backend.
    database: str | None
    #: The table task results go to.
    table: str

    @classmethod
    def of(cls, conf: Any) -> Results:
        from cadasta_toolbox.masking import mask_url

        backend = conf.result_backend
        table = (conf.database_table_names or {}).get("task", DEFAULT_RESULT_TABLE)
        if not isinstance(backend, str):
            return cls(None if backend is None else type(backend).__name__, None, table)
        masked = mask_url(backend)
        database = None
        if masked.startswith("db+"):
            try:
                parts = urlsplit(masked[3:])
                host = parts.hostname or "localhost"
                port = parts.port or 5432
            except ValueError:  # not a URL: told as it is (masked)
                pass
            else:
                host = "localhost" if host in LOOPBACK else host
                database = f"{host}:{port}/{parts.path.lstrip('/')}"
        return cls(masked, database, table)


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
    #: Every binding of the queues the app declares (``task_queues``).
    bindings: tuple[Binding, ...] = ()
    #: Where the app writes its results (None: not read, an app made by hand).
    results: Results | None = None
    #: kombu's ``predefined_queues`` (empty: kombu lists and creates queues).
    predefined: Predefined = Predefined()
    #: What 'celery worker' consumes as production starts it: the -Q queues
    #: (else every queue in ``task_queues``), less what the app's own
    #: ``celeryd_after_setup`` handlers deselect once -Q is applied. The one
    #: account the check, the header, the reports and the picture all read.
    in_production: tuple[str, ...] = ()

    @property
    def consumed(self) -> tuple[str, ...]:
        """The queues the worker's probes run in: the -Q queues, else the work
        queues (the platform queue never)."""
        queues = self.work_queues if self.production_queues is None else self.production_queues
        return tuple(q for q in queues if q != self.platform_queue)

    def sqs_name(self, queue: str) -> str:
        """The name of the SQS queue behind the app's queue ``queue``: kombu's
        name for it (its prefix given), or, when predefined, the name its URL
        ends with."""
        return self.predefined.sqs_name(self.queue_name_prefix, queue)

    def undefined(self, queue: str) -> str | None:
        """Why kombu would refuse the app's queue ``queue`` for want of a
        ``predefined_queues`` entry (None: it would not)."""
        name = sqs_queue_name(self.queue_name_prefix, queue)
        if not self.predefined or self.predefined.url(name) is not None:
            return None
        return (f"queue {queue!r} (SQS name {name!r}) is not in the app's "
                "broker_transport_options['predefined_queues'] (kombu raises "
                "UndefinedQueueException for it)")

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
            bindings=tuple(_bindings(app)),
            results=Results.of(conf),
            predefined=Predefined.of(options),
            in_production=tuple(production_consumption(app, production_queues)),
        )

    @property
    def dropped_at_start(self) -> tuple[str, ...]:
        """The -Q queues the app leaves out as its worker starts (the toolbox
        drops the monitor): named by -Q, not consumed."""
        if self.production_queues is None:
            return ()
        return tuple(q for q in self.production_queues if q not in self.in_production)


def production_consumption(app: Any, production_queues: tuple[str, ...] | None) -> list[str]:
    """The queues 'celery worker' consumes as production starts ``app``: those
    -Q names, else Celery's default, every queue in task_queues; then less
    what the app's own ``celeryd_after_setup`` handlers deselect (the signal
    fires once -Q is applied). Worked out on the app's own selection, put back
    afterwards."""
    from types import SimpleNamespace

    from celery.signals import celeryd_after_setup

    queues = app.amqp.queues
    before = list(queues.consume_from)
    try:
        queues.select(list(queues) if production_queues is None else list(production_queues))
        hostname = "cadasta-production@localhost"
        celeryd_after_setup.send(sender=hostname, conf=app.conf,
                                 instance=SimpleNamespace(app=app, hostname=hostname))
        return list(queues.consume_from)
    finally:
        queues.select(before)


def _bindings(app: Any) -> list[Binding]:
    """Each queue of ``task_queues`` with the exchange and key it is bound with
    (a queue with several bindings gives one of each)."""
    found = []
    for queue in app.amqp.queues.values():
        pairs = ([(b.exchange, b.routing_key) for b in queue.bindings] if queue.bindings
                 else [(queue.exchange, queue.routing_key)])
        for exchange, key in pairs:
            name = getattr(exchange, "name", exchange) or ""
            kind = getattr(exchange, "type", None) or "direct"
            found.append(Binding(queue.name, name, kind, key or ""))
    return found
