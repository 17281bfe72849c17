"""Celery's own pytest fixtures and pytest-cadasta's, in one test; it runs
before the checks (see the conftest)."""

import pytest


@pytest.fixture(scope="session")
def celery_config():
    # Celery's in-memory broker, polled often: the test need not wait a second.
    return {"broker_url": "memory://", "result_backend": "cache+memory://",
            "broker_transport_options": {"polling_interval": 0.05}}


def test_both_plugins_fixtures(celery_app, celery_worker, cadasta_app, cadasta_worker):
    @celery_app.task(name="mul")
    def mul(x, y):
        return x * y

    celery_worker.reload()
    assert celery_app is not cadasta_app
    assert mul.delay(4, 4).get(timeout=60, interval=0.05) == 16
    assert cadasta_app.send_task("export.project", args=(3,)).get(timeout=60,
                                                                   interval=0.05) == 6
