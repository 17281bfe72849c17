"""The router's whole reason to be: every publish reaches the monitor queue.

Runs against moto's in-process mock (producing only needs boto3, which it
patches); kombu's per-connection exchange emulation is what is exercised.
"""

import boto3
import kombu.pools
import pytest
from celery import Celery
from kombu.transport import SQS
from moto import mock_aws

from cadasta_toolbox.config import Config

REGION = "us-west-2"


@pytest.fixture
def sqs(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        forget_queue_urls()
        yield boto3.client("sqs", region_name=REGION)
        forget_queue_urls()


def forget_queue_urls():
    """Drop pooled connections and what they know of queues: mock_aws forgets
    the queues themselves at the end of each test."""
    kombu.pools.reset()
    # kombu < 5.7 keeps one queue-URL cache, a dict on the Channel class, for
    # every connection; later versions keep one per channel.
    cache = vars(SQS.Channel).get("_queue_cache")
    if isinstance(cache, dict):
        cache.clear()


def drain(client, suffix):
    """Every message body now in the queue whose name ends with ``suffix``."""
    urls = [u for u in client.list_queues().get("QueueUrls", [])
            if u.endswith("-" + suffix)]
    if not urls:
        return []
    bodies = []
    while True:
        batch = client.receive_message(QueueUrl=urls[0], MaxNumberOfMessages=10)
        messages = batch.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            client.delete_message(QueueUrl=urls[0],
                                  ReceiptHandle=message["ReceiptHandle"])


def make_app(**settings):
    app = Celery("fanout", set_as_current=False)
    app.config_from_object(Config(broker_url="sqs://", result_backend=None,
                                  **settings))
    return app


def send_each_from_a_fresh_connection(app, names):
    for name in names:
        with app.connection_for_write() as connection:
            app.send_task(name, args=(1,), connection=connection)


def test_each_task_lands_once_in_its_queue_and_once_in_the_monitor(sqs):
    app = make_app()
    send_each_from_a_fresh_connection(app, ["export.project", "msg.email"])
    assert len(drain(sqs, "export")) == 1
    assert len(drain(sqs, "msg")) == 1
    assert len(drain(sqs, "platform.fifo")) == 2


def test_monitor_queue_is_a_fifo_queue(sqs):
    send_each_from_a_fresh_connection(make_app(), ["export.project"])
    (url,) = [u for u in sqs.list_queues()["QueueUrls"] if u.endswith(".fifo")]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert attributes["Attributes"]["FifoQueue"] == "true"


def test_a_router_that_does_not_declare_loses_the_monitor_copy(sqs):
    def naive_router(name, args, kwargs, options, task=None, **kw):
        key = name.split(".", 1)[0]
        return {"queue": key, "exchange": "task_exchange", "routing_key": key}

    app = make_app(task_routes=(naive_router,))
    send_each_from_a_fresh_connection(app, ["export.project", "msg.email"])
    # Delivered to the work queues (Celery declares the route's queue) ...
    assert len(drain(sqs, "export")) == 1
    assert len(drain(sqs, "msg")) == 1
    # ... but the publishing connection never bound the monitor queue.
    assert not any(u.endswith(".fifo") for u in sqs.list_queues().get("QueueUrls", []))
