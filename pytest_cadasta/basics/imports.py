"""What the run's own threads will import, imported before they start, by the
thread starting them: two threads importing one package at once can each find
it half made (``ImportError: cannot import name 'AdaptedConnection' from
partially initialized module 'sqlalchemy.engine'``)."""

from __future__ import annotations

import gc
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


#: Whether this process froze what it had imported (see keep_what_is_imported).
_frozen = False


def keep_what_is_imported() -> None:
    """Take what is alive now out of the cyclic collector's walks
    (``gc.freeze``), before any test of the run: the modules imported so far
    and what importing them made (Celery, kombu, boto3, SQLAlchemy, the apps: a
    hundred thousand objects) live as long as the run, yet every full
    collection would walk them all, pytest's own as the run ends and the
    interpreter's at exit included (a fifth of a conformance run's CPU). They
    stay out until the process ends, or until another run of the plugin starts
    in the same process (``pytest.main`` again): ``release`` gives them back
    then and collects what the earlier run left. (Frozen objects are not in
    ``gc.get_objects()``.)"""
    global _frozen
    gc.freeze()
    _frozen = True


def release() -> None:
    """Undo ``keep_what_is_imported`` if this process did it, and collect the
    garbage it kept (a freeze of the caller's own made before goes back too:
    there is one frozen generation)."""
    global _frozen
    if _frozen:
        gc.unfreeze()
        _frozen = False
        gc.collect()
