"""Pointing the user's app at the mocked SQS and the throwaway result database.

Only where messages and results go changes; every other setting stays exactly
as the user wrote it, since that is what is being judged. ``unwire`` puts the
changed settings back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_cadasta.resultdb import ResultDatabase
from pytest_cadasta.sqs import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, MockSQS

#: Fast polling for tests: a worker sees a message within ~0.1 s and stops
#: within a second.
TEST_POLLING = {"polling_interval": 0.05, "wait_time_seconds": 1}

_MISSING = object()


@dataclass(frozen=True)
class OriginalSettings:
    """What the user configured, kept for the checks and for ``unwire``."""

    values: dict

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key, _MISSING)
        return default if value is _MISSING else value


def snapshot(app: Any, keys: tuple[str, ...]) -> OriginalSettings:
    conf = app.conf
    return OriginalSettings({key: conf[key] if key in conf else _MISSING for key in keys})


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


def wire(app: Any, sqs: MockSQS, database: ResultDatabase | None) -> OriginalSettings:
    """Point ``app`` at ``sqs`` (and ``database``); return what it had."""
    original = snapshot(app, WIRED_KEYS)
    conf = app.conf
    options = dict(conf.broker_transport_options or {})
    options.update(TEST_POLLING)
    options["is_secure"] = False
    options.pop("endpoint_url", None)
    predefined = options.get("predefined_queues")
    if predefined:
        options["predefined_queues"] = {
            name: {**spec, "url": f"{sqs.endpoint}/123456789012/{spec['url'].rsplit('/', 1)[-1]}",
                   "access_key_id": FAKE_ACCESS_KEY, "secret_access_key": FAKE_SECRET_KEY}
            for name, spec in predefined.items()}
    conf.broker_url = sqs.broker_url
    conf.broker_read_url = None
    conf.broker_write_url = None
    conf.broker_transport = None
    conf.broker_transport_options = options
    conf.broker_connection_retry_on_startup = False
    conf.broker_connection_max_retries = 1
    if database is not None:
        conf.result_backend = "db+" + database.worker_url(
            result_driver(original.get("result_backend")))
    _forget_connections(app)
    return original


def unwire(app: Any, original: OriginalSettings) -> None:
    conf = app.conf
    for key, value in original.values.items():
        if value is _MISSING:
            conf.pop(key, None)
        else:
            conf[key] = value
    _forget_connections(app)


def _forget_connections(app: Any) -> None:
    """Drop the app's cached broker pool and result backend, built from the old
    settings. Celery has no public call for the backend cache."""
    import kombu.pools

    app.close()
    app.amqp._producer_pool = None
    app._backend_cache = None
    vars(app._local).pop("backend", None)
    kombu.pools.reset()
