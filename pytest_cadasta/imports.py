"""What the run's own threads will import, imported before they start, by the
thread starting them: two threads importing one package at once can each find
it half made (``ImportError: cannot import name 'AdaptedConnection' from
partially initialized module 'sqlalchemy.engine'``)."""

from __future__ import annotations

import importlib

#: The result database's thread: Celery's database backend (SQLAlchemy).
RESULT_DATABASE = ("celery.backends.database",)
#: The in-process worker's thread: kombu's HTTP client for SQS (pycurl).
WORKER = ("kombu.asynchronous.http.curl", "importlib.readers")


def before_threads(modules: tuple[str, ...]) -> None:
    """Import ``modules`` now (one that cannot be imported is left to fail
    where it is used, in its own words)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
