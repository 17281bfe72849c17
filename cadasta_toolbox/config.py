"""The Celery configuration a Cadasta worker (or producer) needs.

``Config`` supplies the difference between Celery's defaults and what the
platform's asynchronous architecture needs: an SQS broker, a topic exchange that
copies every task message to the ``platform.fifo`` monitor queue, routing by
task-name prefix, and results in the platform's PostgreSQL result table::

    app = Celery('worker')
    app.config_from_object(Config(QUEUES=('export',)))
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery.signals import before_task_publish, celeryd_after_setup, celeryd_init, worker_init
from celery.utils.text import str_to_list
from kombu import Exchange, Queue

from cadasta_toolbox.app import (
    DEFAULT_CHORD_UNLOCK_MAX_RETRIES,
    adopt_into_family,
    exclude_platform_queue,
    setup_app,
)
from cadasta_toolbox.logs import WorkerLogsError, start_worker_logs
from cadasta_toolbox.masking import mask_secrets
from cadasta_toolbox.results import RESULT_SERIALIZER

#: The database backend Config selects for ``db+`` result URLs.
RESULT_BACKEND_CLASS = "cadasta_toolbox.backend:ResultBackend"

__all__ = ["DEFAULT_QUEUES", "Config", "TaskRouter", "configured_by_config",
           "routing_key_for"]

logger = logging.getLogger(__name__)

DEFAULT_QUEUES = ("msg", "export")

#: Internal variables: UPPERCASE, each from a keyword, else the environment
#: variable of the same name, else this default.
INTERNAL_DEFAULTS: dict[str, Any] = {
    "QUEUES": DEFAULT_QUEUES,
    "PLATFORM_QUEUE_NAME": "platform.fifo",
    "QUEUE_PREFIX": "dev",
    "RESULT_DB_USER": "cadasta",
    "RESULT_DB_PASS": "cadasta",
    "RESULT_DB_HOST": "localhost",
    "RESULT_DB_PORT": "5432",
    "RESULT_DB_NAME": "cadasta",
    "CHORD_UNLOCK_MAX_RETRIES": DEFAULT_CHORD_UNLOCK_MAX_RETRIES,
    # Names cadasta-workertoolbox 0.6.0 took; a migrating worker passes them.
    # Both act when a `celery worker` starts (cadasta_toolbox.logs).
    "SETUP_FILE_LOGGING": False,
    "SETUP_SENTRY_LOGGING": False,
    # Where SETUP_FILE_LOGGING writes app.info.log and app.error.log; '' means
    # the worker's current directory.
    "LOG_DIR": "",
}

RESULT_BACKEND_TEMPLATE = (
    "db+postgresql://{0.RESULT_DB_USER}:{0.RESULT_DB_PASS}"
    "@{0.RESULT_DB_HOST}:{0.RESULT_DB_PORT}/{0.RESULT_DB_NAME}"
)

#: Long polling keeps an idle worker cheap; the visibility timeout outlasts
#: an export task.
POLLING_OPTIONS = {
    "polling_interval": 1,
    "wait_time_seconds": 10,
    "visibility_timeout": 3600,
}

ENV_PREFIX = "CELERY_"


def routing_key_for(task_name: str) -> str:
    """The routing key of a task: its name up to the first dot."""
    return task_name.split(".", 1)[0]


class TaskRouter:
    """Route each task to the queue named by its prefix, on the topic exchange.

    SQS has no exchanges: kombu emulates them in memory, per connection, so a
    producer whose connection never declared the bindings delivers to nothing,
    silently. Every route therefore carries ``declare``: kombu declares (once
    per connection) the work queue and the platform queue with their bindings
    on whichever connection publishes. The route names the ``queue`` too:
    Celery's database backend reads it to dispatch ``celery.chord_unlock``.
    """

    def __init__(self, exchange: Exchange, platform_queue: Queue) -> None:
        self.exchange = exchange
        self.platform_queue = platform_queue

    def queue_for(self, task_name: str) -> Queue:
        key = routing_key_for(task_name)
        return Queue(key, self.exchange, routing_key=key)

    def __call__(self, name: str, args: Any = None, kwargs: Any = None,
                 options: Any = None, task: Any = None, **kw: Any) -> dict:
        queue = self.queue_for(name)
        return {
            "queue": queue,
            "exchange": self.exchange.name,
            "routing_key": queue.routing_key,
            "declare": [queue, self.platform_queue],
        }

    def __repr__(self) -> str:
        return f"<TaskRouter exchange={self.exchange.name!r}>"


def _celery_option_types() -> dict[str, str]:
    from celery.app.defaults import NAMESPACES, flatten

    return {key: option.type for key, option in flatten(NAMESPACES)}


def _from_environment(variable: str, raw: str, as_literal: bool,
                      strict: bool = True) -> Any:
    if not as_literal:
        return raw
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        if not strict:
            return raw
        raise ValueError(
            f"environment variable {variable}={raw!r} is not a Python literal"
            f" ({exc.__class__.__name__}); write it as one, e.g. "
            f"{variable}=\"('msg', 'export')\" or {variable}=10"
        ) from None


class Config(Mapping):
    """Celery settings for a Cadasta worker; pass it to ``config_from_object``.

    Lowercase keywords are Celery settings; UPPERCASE keywords are the internal
    variables in ``INTERNAL_DEFAULTS``. Precedence: keyword, then environment
    (``NAME`` for internal variables, ``CELERY_<SETTING>`` for settings), then
    the default.
    """

    def __init__(self, **settings: Any) -> None:
        environ = os.environ
        unknown = [k for k in settings if k.isupper() and k not in INTERNAL_DEFAULTS]
        if unknown:
            raise TypeError(
                f"unknown internal variable(s) {', '.join(sorted(unknown))}; "
                f"expected one of {', '.join(INTERNAL_DEFAULTS)} or a lowercase "
                "Celery setting"
            )
        internal: dict[str, Any] = {}
        for name, default in INTERNAL_DEFAULTS.items():
            if name in settings:
                internal[name] = settings.pop(name)
            elif name in environ:
                internal[name] = _from_environment(
                    name, environ[name], not isinstance(default, str))
            else:
                internal[name] = default
        internal["QUEUES"] = tuple(internal["QUEUES"])
        for name, value in internal.items():
            object.__setattr__(self, name, value)

        defaults = self._defaults()
        types = _celery_option_types()
        values = dict(defaults)
        for variable, raw in environ.items():
            if not variable.startswith(ENV_PREFIX):
                continue
            setting = variable[len(ENV_PREFIX):].lower()
            if setting in defaults:
                as_literal, strict = not isinstance(defaults[setting], str), True
            elif setting in types:
                as_literal = types[setting] != "string"
                strict = types[setting] != "any"
            else:
                continue
            values[setting] = _from_environment(variable, raw, as_literal, strict)
        values.update(settings)

        backend = values.get("result_backend")
        if isinstance(backend, str):
            values["result_backend"] = self._render(backend)
        object.__setattr__(self, "_settings", values)

    def _defaults(self) -> dict[str, Any]:
        exchange = Exchange("task_exchange", type="topic")
        platform_queue = Queue(self.PLATFORM_QUEUE_NAME, exchange, routing_key="#")
        work_queues = [Queue(name, exchange, routing_key=name)
                       for name in self.QUEUES if name != "celery"]
        # Celery must keep the root handlers the toolbox installs at start.
        logging_defaults = ({"worker_hijack_root_logger": False}
                            if self.SETUP_FILE_LOGGING else {})
        return {
            "broker_transport": "sqs",
            "broker_transport_options": {
                "region": "us-west-2",
                "queue_name_prefix": f"{self.QUEUE_PREFIX}-",
                **POLLING_OPTIONS,
            },
            "result_backend": RESULT_BACKEND_TEMPLATE,
            "task_default_exchange": exchange.name,
            "task_default_exchange_type": exchange.type,
            "task_queues": [Queue("celery", exchange, routing_key="celery"),
                            platform_queue, *work_queues],
            "task_routes": (TaskRouter(exchange, platform_queue),),
            "task_track_started": True,
            # The platform reads each result with pickle (cadasta_toolbox.results).
            "result_serializer": RESULT_SERIALIZER,
            "result_accept_content": ["json", RESULT_SERIALIZER],
            # ...and the worker reads them back as data only, never with a bare
            # pickle.loads (cadasta_toolbox.backend).
            "override_backends": {"db": RESULT_BACKEND_CLASS},
            **logging_defaults,
        }

    def _render(self, template: str) -> str:
        try:
            return template.format(self)
        except (KeyError, AttributeError, IndexError, ValueError) as exc:
            raise ValueError(
                f"result_backend template {template!r} cannot be rendered: "
                f"{exc.__class__.__name__}: {exc}; placeholders take the form "
                "{0.RESULT_DB_USER}"
            ) from None

    # Mapping protocol, so Celery reads exactly these keys.
    def __getitem__(self, key: str) -> Any:
        if key in self._settings:
            return self._settings[key]
        if key in INTERNAL_DEFAULTS:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from self._settings
        yield from INTERNAL_DEFAULTS

    def __len__(self) -> int:
        return len(self._settings) + len(INTERNAL_DEFAULTS)

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("_settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is read-only; pass settings as keywords")

    def __repr__(self) -> str:
        body = ", ".join(f"{key}={mask_secrets(key, value)!r}"
                         for key, value in sorted(self._settings.items()))
        return f"Config({body})"


# What the toolbox does as a worker starts, for apps configured by Config only.


def configured_by_config(app: Any) -> bool:
    """Whether ``app`` takes its settings from a ``Config``: its routes hold
    the ``TaskRouter``. Every worker hook below asks this, and only this."""
    routes = app.conf.get("task_routes") if app is not None else None
    return isinstance(routes, (list, tuple)) and any(
        isinstance(route, TaskRouter) for route in routes)


@worker_init.connect(weak=False)
def _setup_on_worker_init(sender: Any = None, **kwargs: Any) -> None:
    """Run ``setup_app`` in every worker (the program or one embedded in a test)."""
    app = getattr(sender, "app", None)
    if configured_by_config(app):
        setup_app(app, throw=False)


@celeryd_init.connect(weak=False)
def _start_worker_logs(sender: Any = None, instance: Any = None,
                       options: Any = None, **kwargs: Any) -> None:
    """As a worker starts, before ``-Q`` is applied: the worker program's logs
    and Sentry, and a warning if ``-Q`` names the platform queue.

    Logs and Sentry go where Celery sets up its own logging: in its worker
    program (``celery.apps.worker.Worker``, what ``celery worker`` runs), just
    before it does so, so it keeps the toolbox's root handlers (see
    ``_defaults``). A worker embedded in a test run gets neither: no log files,
    nothing reported. A program that asked for what it cannot have refuses to
    start, with the reason, rather than run blind.
    """
    from celery.apps.worker import Worker

    app = getattr(instance, "app", None)
    if not configured_by_config(app):
        return
    if isinstance(instance, Worker):
        try:
            start_worker_logs(app.conf)
        except WorkerLogsError as exc:
            # Celery logs and swallows a handler's Exception; this stops the worker.
            raise SystemExit(f"cadasta_toolbox: {exc}") from exc
    platform_queue = app.conf.PLATFORM_QUEUE_NAME
    if platform_queue in str_to_list((options or {}).get("queues") or []):
        logger.warning(
            "celery worker -Q names %s, the platform's monitor queue: a Cadasta "
            "worker never consumes it (it would delete the platform's copies); "
            "it is left out", platform_queue)


@celeryd_after_setup.connect(weak=False)
def _exclude_platform_queue(sender: Any = None, instance: Any = None,
                            **kwargs: Any) -> None:
    """After ``-Q`` is applied: the platform queue is not consumed, whatever
    was selected (without ``-Q`` Celery consumes every queue in ``task_queues``)."""
    app = getattr(instance, "app", None)
    if configured_by_config(app):
        exclude_platform_queue(app)


@before_task_publish.connect(weak=False)
def _keep_tasks_in_a_recorded_family(sender: Any = None, headers: Any = None,
                                     **kwargs: Any) -> None:
    """A task sent from inside a task of a Config app whose parent and root the
    platform never saw (a failed chord's errbacks) is sent in its sender's
    family instead, so the platform's sync-tasks can record it."""
    from celery import current_task

    if current_task and configured_by_config(current_task.app):
        adopt_into_family(headers, current_task.request)
