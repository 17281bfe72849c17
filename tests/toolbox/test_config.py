"""Config: defaults, environment overrides, precedence, errors, masking."""

import datetime
import uuid

import pytest
from celery import Celery
from kombu import Queue

from cadasta_toolbox.config import DEFAULT_QUEUES, Config, TaskRouter, routing_key_for

INTERNAL = ["QUEUES", "PLATFORM_QUEUE_NAME", "QUEUE_PREFIX", "RESULT_DB_USER",
            "RESULT_DB_PASS", "RESULT_DB_HOST", "RESULT_DB_PORT", "RESULT_DB_NAME",
            "CHORD_UNLOCK_MAX_RETRIES", "SETUP_FILE_LOGGING", "SETUP_SENTRY_LOGGING",
            "LOG_DIR"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No CELERY_* or internal variable of the developer's shell leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith("CELERY_") or name in INTERNAL:
            monkeypatch.delenv(name)


def queues_by_name(conf):
    return {queue.name: queue for queue in conf.task_queues}


def test_internal_defaults():
    conf = Config()
    assert conf.QUEUES == DEFAULT_QUEUES == ("msg", "export")
    assert conf.PLATFORM_QUEUE_NAME == "platform.fifo"
    assert conf.QUEUE_PREFIX == "dev"
    assert (conf.RESULT_DB_USER, conf.RESULT_DB_PASS) == ("cadasta", "cadasta")
    assert (conf.RESULT_DB_HOST, conf.RESULT_DB_PORT) == ("localhost", "5432")
    assert conf.RESULT_DB_NAME == "cadasta"
    assert conf.CHORD_UNLOCK_MAX_RETRIES == 43200
    assert (conf.SETUP_FILE_LOGGING, conf.SETUP_SENTRY_LOGGING) == (False, False)
    assert conf.LOG_DIR == ""


def test_the_names_a_workertoolbox_0_6_worker_passes_are_accepted():
    """The platform builds its Config with these two; they must not be refused."""
    app = Celery("platform", set_as_current=False)
    app.config_from_object(Config(SETUP_FILE_LOGGING=False, SETUP_SENTRY_LOGGING=True))
    assert app.conf.SETUP_FILE_LOGGING is False
    assert app.conf.SETUP_SENTRY_LOGGING is True


def test_celery_setting_defaults():
    conf = Config()
    assert conf.broker_transport == "sqs"
    assert conf.broker_transport_options["region"] == "us-west-2"
    assert conf.broker_transport_options["queue_name_prefix"] == "dev-"
    assert conf.result_backend == (
        "db+postgresql://cadasta:cadasta@localhost:5432/cadasta")
    assert conf.task_default_exchange == "task_exchange"
    assert conf.task_default_exchange_type == "topic"
    assert conf.task_track_started is True
    assert isinstance(conf.task_routes[0], TaskRouter)


def test_task_queues_bind_every_queue_on_the_topic_exchange():
    queues = queues_by_name(Config(QUEUES=("export", "msg", "import")))
    assert list(queues) == ["celery", "platform.fifo", "export", "msg", "import"]
    assert queues["platform.fifo"].routing_key == "#"
    for name in ("celery", "export", "msg", "import"):
        assert queues[name].routing_key == name
    assert {q.exchange.name for q in queues.values()} == {"task_exchange"}
    assert {q.exchange.type for q in queues.values()} == {"topic"}


def test_queue_prefix_and_platform_queue_follow_the_variables():
    conf = Config(QUEUE_PREFIX="prod", PLATFORM_QUEUE_NAME="monitor.fifo")
    assert conf.broker_transport_options["queue_name_prefix"] == "prod-"
    assert queues_by_name(conf)["monitor.fifo"].routing_key == "#"


@pytest.mark.parametrize(("variable", "raw", "expected"), [
    ("QUEUES", "('a', 'b')", ("a", "b")),
    ("QUEUES", "['a']", ("a",)),
    ("PLATFORM_QUEUE_NAME", "monitor.fifo", "monitor.fifo"),
    ("QUEUE_PREFIX", "staging", "staging"),
    ("RESULT_DB_USER", "worker", "worker"),
    ("RESULT_DB_PASS", "pw", "pw"),
    ("RESULT_DB_HOST", "db.internal", "db.internal"),
    ("RESULT_DB_PORT", "6543", "6543"),
    ("RESULT_DB_NAME", "results", "results"),
    ("CHORD_UNLOCK_MAX_RETRIES", "10", 10),
    ("SETUP_FILE_LOGGING", "True", True),
    ("SETUP_SENTRY_LOGGING", "True", True),
    ("LOG_DIR", "/var/log/worker", "/var/log/worker"),
])
def test_internal_variable_from_environment(monkeypatch, variable, raw, expected):
    monkeypatch.setenv(variable, raw)
    assert getattr(Config(), variable) == expected


def test_keyword_beats_environment(monkeypatch):
    monkeypatch.setenv("QUEUE_PREFIX", "from-env")
    monkeypatch.setenv("CELERY_TASK_TRACK_STARTED", "False")
    conf = Config(QUEUE_PREFIX="kw", task_track_started=True)
    assert conf.QUEUE_PREFIX == "kw"
    assert conf.task_track_started is True


def test_celery_settings_from_environment(monkeypatch):
    monkeypatch.setenv("CELERY_TASK_TRACK_STARTED", "False")
    monkeypatch.setenv("CELERY_BROKER_TRANSPORT_OPTIONS", "{'region': 'eu-west-1'}")
    monkeypatch.setenv("CELERY_WORKER_PREFETCH_MULTIPLIER", "4")
    monkeypatch.setenv("CELERY_BROKER_URL", "sqs://")
    conf = Config()
    assert conf.task_track_started is False
    assert conf.broker_transport_options == {"region": "eu-west-1"}
    assert conf.worker_prefetch_multiplier == 4
    assert conf.broker_url == "sqs://"


def test_environment_names_that_are_no_setting_are_ignored(monkeypatch):
    monkeypatch.setenv("CELERY_NOT_A_SETTING", "x")
    assert "not_a_setting" not in Config()


@pytest.mark.parametrize(("variable", "raw"), [
    ("CELERY_TASK_TRACK_STARTED", "yes please"),
    ("CELERY_BROKER_TRANSPORT_OPTIONS", "{region: 1"),
    ("QUEUES", "msg,export"),
    ("CHORD_UNLOCK_MAX_RETRIES", "six hours"),
])
def test_bad_environment_value_names_the_variable(monkeypatch, variable, raw):
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ValueError) as excinfo:
        Config()
    assert variable in str(excinfo.value)
    assert repr(raw) in str(excinfo.value)


def test_result_backend_template_is_rendered_with_the_object():
    conf = Config(RESULT_DB_USER="w", RESULT_DB_HOST="db", RESULT_DB_PORT="1",
                  RESULT_DB_NAME="n", RESULT_DB_PASS="p",
                  result_backend="db+postgresql://{0.RESULT_DB_USER}@{0.RESULT_DB_HOST}")
    assert conf.result_backend == "db+postgresql://w@db"
    assert Config(RESULT_DB_HOST="db").result_backend.endswith("@db:5432/cadasta")


@pytest.mark.parametrize("template", [
    "db+postgresql://{0.NO_SUCH_VARIABLE}/x",
    "db+postgresql://{user}/x",
    "db+postgresql://{1}/x",
    "db+postgresql://{0.RESULT_DB_USER/x",
])
def test_bad_result_backend_template(template):
    with pytest.raises(ValueError) as excinfo:
        Config(result_backend=template)
    assert repr(template) in str(excinfo.value)


def test_repr_shows_settings_and_masks_passwords():
    text = repr(Config(RESULT_DB_PASS="hunter2",
                       broker_url="sqs://AKIAKEY:topsecret@sqs.example.com",
                       broker_transport_options={"aws_secret_access_key": "sk"}))
    assert "hunter2" not in text and "topsecret" not in text and "'sk'" not in text
    assert "db+postgresql://cadasta:**@localhost:5432/cadasta" in text
    assert "task_track_started=True" in text
    assert "RESULT_DB" not in text


def test_unknown_uppercase_keyword_is_refused():
    with pytest.raises(TypeError, match="QUEUE_NAMES"):
        Config(QUEUE_NAMES=("a",))


def test_config_is_read_only():
    with pytest.raises(AttributeError):
        Config().broker_transport = "redis"


def test_everything_is_on_app_conf_after_config_from_object():
    conf = Config(QUEUES=("export",), RESULT_DB_PASS="pw")
    app = Celery("test", set_as_current=False)
    app.config_from_object(conf)
    for name in conf:
        assert app.conf[name] == conf[name], name
    assert app.conf.QUEUES == ("export",)
    assert app.conf.task_default_exchange_type == "topic"
    assert app.conf.broker_transport == "sqs"


@pytest.mark.parametrize(("name", "key"), [
    ("export.project", "export"),
    ("msg.email.send", "msg"),
    ("celery.chord_unlock", "celery"),
    ("standalone", "standalone"),
])
def test_routing_key_is_the_name_up_to_the_first_dot(name, key):
    assert routing_key_for(name) == key


@pytest.mark.parametrize(("name", "key"), [
    ("export.project", "export"), ("msg.email", "msg"), ("nodots", "nodots")])
def test_router_names_queue_exchange_key_and_declares_both_queues(name, key):
    route = Config().task_routes[0](name, (), {}, {})
    assert route["exchange"] == "task_exchange"
    assert route["routing_key"] == key
    queue = route["queue"]
    assert isinstance(queue, Queue)
    assert (queue.name, queue.routing_key, queue.exchange.name) == (
        key, key, "task_exchange")
    assert [(q.name, q.routing_key) for q in route["declare"]] == [
        (key, key), ("platform.fifo", "#")]


def test_celery_router_resolves_tasks_through_the_config():
    app = Celery("test", set_as_current=False)
    app.config_from_object(Config())
    route = app.amqp.router.route({}, "export.project")
    assert route["queue"].name == "export"
    assert route["routing_key"] == "export"


class ExportFailed(Exception):
    """An exception of the worker's code."""


class Layer:
    """A class of the worker's code: the platform cannot import it."""


@pytest.mark.parametrize("value", [{"project": 7, "layers": ["parcels"]}, "STARTED", None,
                                   {1, 2}, (1.5, complex(1, 2)), uuid.UUID(int=7),
                                   datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc)])
def test_results_are_stored_as_the_platform_reads_them(value):
    """The platform reads celery_taskmeta.result with pickle.loads, without the
    worker's code: what Config's serializer stores reads back as it was."""
    from celery.backends.base import BaseBackend

    from cadasta_toolbox.results import RESULT_SERIALIZER
    from pytest_cadasta.result_reading import read_result

    app = Celery("results", set_as_current=False)
    app.config_from_object(Config())
    assert (app.conf.result_serializer, app.conf.result_accept_content) == (
        RESULT_SERIALIZER, ["json", RESULT_SERIALIZER])
    backend = BaseBackend(app)  # the database backend's encoding, without its database
    stored = backend.encode(backend.encode_result(value, "SUCCESS"))
    for read in (read_result(stored), backend.decode(stored)):
        assert read == value


def test_a_failure_is_stored_without_the_workers_code():
    """An exception of the worker's code is stored as its type, module and
    arguments; an argument of a class of the worker's code as its repr."""
    from celery.backends.base import BaseBackend

    from pytest_cadasta.result_reading import read_result

    app = Celery("results", set_as_current=False)
    app.config_from_object(Config())
    backend = BaseBackend(app)
    stored = backend.encode(backend.encode_result(ExportFailed("no layers", Layer()),
                                                  "FAILURE"))
    read = read_result(stored)
    assert read["exc_type"] == "ExportFailed" and read["exc_module"] == __name__
    assert read["exc_message"][0] == "no layers"
    assert read["exc_message"][1].startswith("<") and "Layer object" in read["exc_message"][1]
    assert str(backend.exception_to_python(backend.decode(stored))) == str(
        ("no layers", read["exc_message"][1]))


def test_a_return_value_of_the_workers_code_is_refused_naming_its_class():
    """What Celery 5.7 and later store through the serializer (earlier ones
    pickle a return value into the column themselves)."""
    from celery.backends.base import BaseBackend
    from kombu.exceptions import EncodeError

    app = Celery("results", set_as_current=False)
    app.config_from_object(Config())
    with pytest.raises(EncodeError, match=r"Layer is of the worker's code, which the platform "
                                          r"cannot import"):
        BaseBackend(app).encode({"layer": Layer()})
