"""Where a worker's log records and errors go: a console, two rotating files, Sentry.

What cadasta-workertoolbox 0.6.0 did for a worker that asked
(``SETUP_FILE_LOGGING``, ``SETUP_SENTRY_LOGGING``). ``Config`` calls
``start_worker_logs`` when a ``celery worker`` starts, never when it is built,
so a producer that merely builds a ``Config`` gets no handlers, no files and no
Sentry. sentry-sdk is an optional extra, imported only when Sentry is asked for.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from logging.handlers import RotatingFileHandler
from typing import Any

from celery.platforms import isatty
from celery.utils.log import ColorFormatter

__all__ = ["WorkerLogsError", "setup_file_logging", "setup_sentry", "start_worker_logs"]

logger = logging.getLogger(__name__)

DEFAULT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 2
#: (handler name, file name, level): the files 0.6.0 wrote.
LOG_FILES = (
    ("cadasta.info_file", "app.info.log", logging.INFO),
    ("cadasta.error_file", "app.error.log", logging.ERROR),
)
CONSOLE = "cadasta.console"

SENTRY_EXTRA = "pip install 'pytest-cadasta[sentry]'"
#: ``sentry_sdk.init`` keyword -> the environment variable that gives it.
SENTRY_OPTIONS = {
    "environment": "SENTRY_ENVIRONMENT",
    "release": "SENTRY_RELEASE",
    "server_name": "SENTRY_NAME",
}


class WorkerLogsError(RuntimeError):
    """The worker asked for logs or Sentry it cannot have (no sentry-sdk, a
    ``LOG_DIR`` it cannot write)."""


def setup_file_logging(log_dir: str | os.PathLike[str] = "",
                       fmt: str = DEFAULT_FORMAT) -> list[logging.Handler]:
    """Give the root logger 0.6.0's handlers: a console at INFO (coloured on a
    terminal), ``app.info.log`` at INFO and ``app.error.log`` at ERROR, each
    rotating at 5 MiB with 2 backups, in ``log_dir`` (created if missing; ''
    is the current directory).

    Calling it again replaces these handlers rather than adding more. Celery
    keeps them when ``worker_hijack_root_logger`` is False (``Config`` sets it
    when ``SETUP_FILE_LOGGING`` is true); the root level stays Celery's
    ``--loglevel``.
    """
    handlers: list[logging.Handler] = []
    try:
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
        for _, filename, _ in LOG_FILES:
            handlers.append(RotatingFileHandler(
                os.path.join(log_dir, filename), maxBytes=MAX_BYTES,
                backupCount=BACKUP_COUNT, encoding="utf-8"))
    except OSError as exc:
        for handler in handlers:
            handler.close()
        raise WorkerLogsError(
            f"SETUP_FILE_LOGGING: cannot write log files in "
            f"LOG_DIR={os.fspath(log_dir)!r} ({exc}); set LOG_DIR to a "
            "writable directory") from exc
    for handler, (name, _, level) in zip(handlers, LOG_FILES):
        handler.set_name(name)
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter(fmt))
    console = logging.StreamHandler(sys.stderr)
    console.set_name(CONSOLE)
    console.setLevel(logging.INFO)
    console.setFormatter(ColorFormatter(fmt, use_color=isatty(sys.stderr)))
    handlers.insert(0, console)

    root = logging.getLogger()
    names = {handler.name for handler in handlers}
    for old in [h for h in root.handlers if h.name in names]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    return handlers


def setup_sentry(environ: Mapping[str, str] | None = None) -> bool:
    """Report errors and failing tasks to Sentry when ``SENTRY_DSN`` is set.

    Initialises sentry-sdk with its Celery integration; ``SENTRY_ENVIRONMENT``,
    ``SENTRY_RELEASE`` and ``SENTRY_NAME`` (the server name) are passed when
    set. Returns whether Sentry was initialised; without ``SENTRY_DSN`` nothing
    is imported.
    """
    environ = os.environ if environ is None else environ
    dsn = environ.get("SENTRY_DSN")
    if not dsn:
        return False
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
    except ImportError as exc:
        raise WorkerLogsError(
            "SENTRY_DSN is set and SETUP_SENTRY_LOGGING asks for Sentry, but "
            f"sentry-sdk cannot be imported ({exc}); install the extra: "
            f"{SENTRY_EXTRA}") from exc
    options = {keyword: environ[variable]
               for keyword, variable in SENTRY_OPTIONS.items() if environ.get(variable)}
    sentry_sdk.init(dsn=dsn, integrations=[CeleryIntegration()], **options)
    return True


def start_worker_logs(conf: Any) -> None:
    """What a starting worker sets up, as its ``Config`` asks."""
    if conf.get("SETUP_FILE_LOGGING"):
        setup_file_logging(conf.get("LOG_DIR") or "",
                           conf.get("worker_log_format") or DEFAULT_FORMAT)
    if conf.get("SETUP_SENTRY_LOGGING") and setup_sentry():
        logger.info("Cadasta: reporting errors to Sentry")
