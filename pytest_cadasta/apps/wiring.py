"""Pointing the user's app at the mocked SQS and the throwaway result database.

Only where messages and results go changes; every other setting stays exactly
as the user wrote it, since that is what is being judged. ``unwire`` puts the
changed settings back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_cadasta.apps.probes import ELSEWHERE_QUEUE
from pytest_cadasta.basics.messages import CHORD_UNLOCK
from pytest_cadasta.services.resultdb import ResultDatabase
from pytest_cadasta.services.sqs import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, MockSQS

#: Polling for tests: a long poll hands the worker a message as it arrives (the
#: worker is stopped through its event loop, not by waiting the poll out).
TEST_POLLING = {"polling_interval": 0.05, "wait_time_seconds": 1}

#: With a dead-letter queue set, kombu warns (UndeliverableWarning) when it can
#: route a message to no queue, instead of dropping it in silence: the evidence
#: of an undeliverable task, known as it is published. (A topic exchange puts
#: nothing in that queue; a direct one delivers there instead of dropping.)
DEAD_LETTER_QUEUE = "cadasta-undeliverable"
#: The queues of the harness's own that an app may send to: with
#: ``predefined_queues`` they are added to the app's (kombu would refuse them).
HARNESS_QUEUES = (DEAD_LETTER_QUEUE, ELSEWHERE_QUEUE)
#: kombu's options for signing with an assumed role: left out for the run
#: (moto's SQS takes any credentials; STS would be asked for nothing of use).
STS_OPTIONS = ("sts_role_arn", "sts_token_timeout", "sts_token_buffer_time")
#: The transport option that gives each wired app pooled connections of its own.
POOL_KEY = "cadasta_app"

#: Inside the harness only, celery.chord_unlock polls a chord's parts every
#: 50 ms, and its first poll is not held back a second; the chord checks report
#: the app's own settings.
CHORD_UNLOCK_TEST_DELAY = 0.05

_MISSING = object()


@dataclass(frozen=True)
class OriginalSettings:
    """What the user configured, kept for the checks and for ``unwire``."""

    values: dict
    #: celery.chord_unlock's own retry delay, put back by ``unwire``.
    chord_unlock_delay: Any = _MISSING

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key, _MISSING)
        return default if value is _MISSING else value


def snapshot(app: Any, keys: tuple[str, ...]) -> OriginalSettings:
    conf = app.conf
    unlock = app.tasks.get(CHORD_UNLOCK)
    return OriginalSettings(
        {key: conf[key] if key in conf else _MISSING for key in keys},
        _MISSING if unlock is None else unlock.default_retry_delay)


WIRED_KEYS = ("broker_url", "broker_read_url", "broker_write_url", "broker_transport",
              "broker_transport_options", "result_backend", "broker_connection_retry",
              "broker_connection_max_retries", "broker_connection_retry_on_startup")


def result_driver(original_backend: Any) -> str:
    """Keep the user's PostgreSQL driver; default to psycopg2."""
    if isinstance(original_backend, str) and original_backend.startswith("db+postgresql+"):
        return original_backend.split("+", 2)[2].split(":", 1)[0]
    if isinstance(original_backend, str) and original_backend.startswith("db+postgresql:"):
        return "psycopg"
    return "psycopg2"


def wire(app: Any, sqs: MockSQS) -> OriginalSettings:
    """Point ``app``'s broker at ``sqs``; return what it had. Until
    ``wire_results`` runs, results go nowhere (no backend), never to the app's
    own result store."""
    original = snapshot(app, WIRED_KEYS)
    conf = app.conf
    options = dict(conf.broker_transport_options or {})
    options.update(TEST_POLLING)
    options["is_secure"] = False
    options["deadletter_queue"] = DEAD_LETTER_QUEUE
    # kombu pools connections (and producers) by what the connection is, its
    # transport options included: two apps on the same server with the same
    # options would share one, and the exchange bindings one declared. A key of
    # its own (the SQS transport reads no such option) keeps each app apart, as
    # its own process keeps it in production.
    options[POOL_KEY] = f"{app.main or 'app'}-{id(app):x}"
    options.pop("endpoint_url", None)
    for key in STS_OPTIONS:
        options.pop(key, None)
    predefined = options.get("predefined_queues")
    if predefined:
        # The same queues, at moto's: each URL's account and host are moto's,
        # its queue name the app's own (the run made them under those names).
        local = {name: {**spec, "url": sqs.moto_url(str(spec.get("url", name))),
                        "access_key_id": FAKE_ACCESS_KEY, "secret_access_key": FAKE_SECRET_KEY}
                 for name, spec in predefined.items()}
        # The harness's own queues too (kombu would refuse them): its
        # dead-letter queue, the queue of the other worker its probes name.
        for queue in HARNESS_QUEUES:
            local.setdefault(sqs.sqs_name(queue), {
                "url": sqs.moto_url(sqs.sqs_name(queue)),
                "access_key_id": FAKE_ACCESS_KEY, "secret_access_key": FAKE_SECRET_KEY})
        options["predefined_queues"] = local
    conf.broker_url = sqs.broker_url
    conf.broker_read_url = None
    conf.broker_write_url = None
    conf.broker_transport = None
    conf.broker_transport_options = options
    conf.broker_connection_retry_on_startup = False
    conf.broker_connection_max_retries = 1
    conf.result_backend = None
    _forget_connections(app)
    _quicken_chord_unlock(app)
    return original


def wire_results(app: Any, database: ResultDatabase, original: OriginalSettings) -> None:
    """Point ``app``'s results at ``database``, as its restricted worker role
    (with the PostgreSQL driver the app chose)."""
    app.conf.result_backend = "db+" + database.worker_url(
        result_driver(original.get("result_backend")))
    _forget_connections(app)
    pool_result_connections(app)


def unwire(app: Any, original: OriginalSettings) -> None:
    from celery.signals import before_task_publish

    before_task_publish.disconnect(_publish_chord_unlock_now, sender=CHORD_UNLOCK)
    unlock = app.tasks.get(CHORD_UNLOCK)
    if unlock is not None and original.chord_unlock_delay is not _MISSING:
        unlock.default_retry_delay = original.chord_unlock_delay
    conf = app.conf
    for key, value in original.values.items():
        if value is _MISSING:
            conf.pop(key, None)
        else:
            conf[key] = value
    _forget_connections(app)


def _quicken_chord_unlock(app: Any) -> None:
    from celery.signals import before_task_publish

    unlock = app.tasks.get(CHORD_UNLOCK)
    if unlock is not None:
        unlock.default_retry_delay = CHORD_UNLOCK_TEST_DELAY
    before_task_publish.connect(_publish_chord_unlock_now, sender=CHORD_UNLOCK, weak=False)


def _publish_chord_unlock_now(sender: Any = None, headers: Any = None, **kwargs: Any) -> None:
    """The database backend sends chord_unlock with a one-second countdown;
    in the harness its first run is at once (its retries then keep their 50 ms
    countdown)."""
    if headers is not None and headers.get("eta") and not headers.get("retries"):
        headers["eta"] = None


def _forget_connections(app: Any) -> None:
    """Drop the app's cached broker pool and result backend, built from the old
    settings (an app that sent a task while imported has one). Celery has no
    public call for the backend cache."""
    import kombu.pools
    from kombu.utils.collections import eqhash

    close_result_connections(app)
    # kombu's process-wide pools hold the connections and producers of the
    # app's old settings: those of this app alone go (kombu.pools.reset() would
    # close every other app's too).
    key = eqhash(app.connection_for_write())  # how kombu's pool groups key it
    for group in (kombu.pools.producers, kombu.pools.connections):
        pool = dict.pop(group, key, None)
        if pool is not None:
            pool.force_close_all()
    # Not app.close(): it also unregisters the app, and shared tasks imported
    # afterwards would never be bound to it. Celery has no public call to drop
    # the broker pool alone.
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    vars(app._local).pop("backend", None)


def pool_result_connections(app: Any) -> None:
    """Give this thread's result backend the connections of a production worker.

    A production worker's pool children are forked processes, and Celery's
    database backend keeps a connection pool in each; in a process that never
    forked (the in-process worker's) it opens, and authenticates, a new
    connection for every state it stores, which halves the worker's pace. The
    harness marks the backend's session manager as a forked child's, the state
    Celery's own after-fork hook sets; ``close_result_connections`` closes the
    pool. (Celery keeps a backend per thread unless it is thread-safe.)
    """
    manager = getattr(app.backend, "session_manager", None)
    if manager is not None and hasattr(manager, "forked"):
        manager.forked = True


def close_result_connections(app: Any) -> None:
    """Close the pooled result connections of this thread's backend, if any."""
    backend = getattr(app, "_backend_cache", None) or getattr(app._local, "backend", None)
    manager = getattr(backend, "session_manager", None)
    if manager is None:
        return
    if hasattr(manager, "invalidate"):
        manager.invalidate(backend.url)
        return
    # Celery < 5.6.3 has no SessionManager.invalidate; this is its body.
    manager._sessions.pop(backend.url, None)
    engine = manager._engines.pop(backend.url, None)
    if engine is not None:
        engine.dispose()
