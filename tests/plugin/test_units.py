"""Pure logic, no infrastructure: names, envelopes, masking, queue topology."""

import base64
import json

import pytest
from celery import Celery
from kombu import Exchange, Queue

from cadasta_toolbox.config import Config
from cadasta_toolbox.masking import mask_secrets, mask_url
from pytest_cadasta.apps.wiring import result_driver
from pytest_cadasta.basics.messages import decode
from pytest_cadasta.basics.topology import Binding, Results, Topology
from pytest_cadasta.services.sqs import sqs_queue_name


@pytest.mark.parametrize(("prefix", "name", "expected"), [
    ("dev-", "platform.fifo", "dev-platform.fifo"),
    ("dev-", "export", "dev-export"),
    ("", "my.queue", "my-queue"),
    ("x-", "a.b.fifo", "x-a-b.fifo"),
    ("", "odd:name", "odd_name"),
])
def test_sqs_names_follow_kombu(prefix, name, expected):
    assert sqs_queue_name(prefix, name) == expected


def envelope(body, encode_outer=True, content_type="application/json"):
    inner = json.dumps({
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-type": content_type, "content-encoding": "utf-8",
        "headers": {"id": "t1", "task": "export.project", "root_id": "t1", "parent_id": None},
        "properties": {"body_encoding": "base64"},
    })
    return base64.b64encode(inner.encode()).decode() if encode_outer else inner


@pytest.mark.parametrize("encode_outer", [True, False])
def test_decode_reads_celerys_protocol_2_envelope(encode_outer):
    message = decode("export", envelope([[1], {"a": 2}, {"callbacks": None}], encode_outer))
    assert (message.task, message.id, message.args, message.kwargs) == (
        "export.project", "t1", [1], {"a": 2})
    assert message.decode_error is None


def test_decode_reports_what_it_could_not_read():
    assert "not [args, kwargs, embed]" in decode("q", envelope({"x": 1})).decode_error
    assert "is neither json nor pickle" in decode(
        "q", envelope([[], {}, {}], content_type="application/x-yaml")).decode_error
    assert "not a kombu envelope" in decode("q", "plain text").decode_error


def test_decode_reads_a_pickled_body_as_the_platform_does():
    import pickle

    inner = json.dumps({
        "body": base64.b64encode(pickle.dumps(((1, "a"), {"k": 2}, {}))).decode(),
        "content-type": "application/x-python-serialize", "content-encoding": "binary",
        "headers": {"id": "t1", "task": "export.project", "root_id": "t1", "parent_id": None},
        "properties": {"body_encoding": "base64"}})
    message = decode("export", inner)
    assert (message.args, message.kwargs, message.decode_error) == ([1, "a"], {"k": 2}, None)


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:secret@h:5432/d", "postgresql://u:**@h:5432/d"),
    ("redis://:secret@cache:6379/0", "redis://:**@cache:6379/0"),
    ("sqs://", "sqs://"),
    ("postgresql://u@h/d", "postgresql://u@h/d"),
])
def test_mask_url(url, expected):
    assert mask_url(url) == expected


def test_mask_secrets_masks_by_name_and_in_nested_urls():
    shown = mask_secrets("opts", {"aws_secret_access_key": "k", "url": "db://u:p@h/d",
                                  "region": "us-west-2"})
    assert shown == {"aws_secret_access_key": "**", "url": "db://u:**@h/d",
                     "region": "us-west-2"}


@pytest.mark.parametrize(("backend", "driver"), [
    ("db+postgresql+psycopg2://u:p@h/d", "psycopg2"),
    ("db+postgresql+psycopg://u:p@h/d", "psycopg"),
    ("db+postgresql://u:p@h/d", "psycopg"),
    ("redis://h", "psycopg2"),
    (None, "psycopg2"),
])
def test_result_driver_keeps_the_users_postgresql_driver(backend, driver):
    assert result_driver(backend) == driver


def test_topology_of_a_toolbox_app():
    app = Celery("t", set_as_current=False)
    app.config_from_object(Config(QUEUES=("export", "import"), QUEUE_PREFIX="prod",
                                  PLATFORM_QUEUE_NAME="monitor.fifo"))
    assert Topology.of(app) == Topology(
        work_queues=("celery", "export", "import"),
        platform_queue="monitor.fifo", exchange="task_exchange", exchange_type="topic",
        region="us-west-2", queue_name_prefix="prod-",
        bindings=tuple(Binding(queue, "task_exchange", "topic", key) for queue, key in (
            ("celery", "celery"), ("monitor.fifo", "#"), ("export", "export"),
            ("import", "import"))),
        results=Results("db+postgresql://cadasta:**@localhost:5432/cadasta",
                        "localhost:5432/cadasta", "celery_taskmeta"),
        # 'celery worker' without -Q: the toolbox leaves the monitor out as it starts.
        in_production=("celery", "export", "import"))


def test_topology_of_a_handwritten_app_reads_task_queues():
    exchange = Exchange("tasks", type="topic")
    app = Celery("t", set_as_current=False)
    app.conf.task_queues = [Queue("platform.fifo", exchange, routing_key="#"),
                            Queue("export", exchange, routing_key="export")]
    seen = Topology.of(app)
    assert seen.work_queues == ("celery", "export")
    assert seen.platform_queue == "platform.fifo"
    assert (seen.region, seen.queue_name_prefix) == ("us-east-1", "")
    assert (seen.exchange, seen.exchange_type) == ("celery", "direct")


def test_a_run_keeps_what_it_imported_out_of_the_collector_until_the_next_run():
    import gc

    from pytest_cadasta.basics import imports

    kept = object.__new__(type("Kept", (), {}))
    try:
        imports.release()
        assert gc.get_freeze_count() == 0
        imports.keep_what_is_imported()
        assert not any(found is kept for found in gc.get_objects())
        imports.release()
        assert any(found is kept for found in gc.get_objects())
        gc.freeze()  # a freeze of the caller's own: left as it is
        imports.release()
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        # What an earlier run left as garbage, frozen with it, is collected
        # when the next run releases it.
        import weakref

        cycle = type("Cycle", (), {})()
        cycle.me = cycle
        gone = weakref.ref(cycle)
        imports.keep_what_is_imported()
        del cycle
        imports.release()
        assert gone() is None
    finally:
        gc.unfreeze()
