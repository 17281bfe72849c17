"""setup_app, extract_followups, chords through the router, import cost."""

import subprocess
import sys

import pytest
from celery import Celery, chord

from cadasta_toolbox.app import setup_app
from cadasta_toolbox.config import Config
from cadasta_toolbox.followups import extract_followups


@pytest.fixture
def app(tmp_path):
    app = Celery("runtime", set_as_current=False)
    app.config_from_object(Config(
        broker_url="memory://", broker_transport=None,
        result_backend=f"db+sqlite:///{tmp_path / 'results.sqlite'}",
        CHORD_UNLOCK_MAX_RETRIES=7))
    yield app
    app.close()


def test_a_chord_is_dispatched_with_the_database_backend(app):
    @app.task(name="export.part", shared=False)
    def part(n):
        return n

    @app.task(name="export.combine", shared=False)
    def combine(results):
        return sum(results)

    sent = []
    app.amqp.send_task_message = lambda producer, name, message, **kw: sent.append(
        (name, kw))  # observe what is published; the broker is beside the point
    result = chord(part.s(i) for i in range(3))(combine.s())
    assert result.id
    names = [name for name, _ in sent]
    assert names.count("export.part") == 3
    unlock = [kw for name, kw in sent if name == "celery.chord_unlock"]
    assert unlock and unlock[0]["queue"].name == "export"


def test_setup_app_declares_queues_and_limits_chord_unlock(app):
    assert setup_app(app) is True
    assert app.is_set_up is True
    assert app.tasks["celery.chord_unlock"].max_retries == 7
    with app.connection_for_write() as connection:
        for name in ("celery", "platform.fifo", "msg", "export"):
            connection.default_channel.queue_declare(name, passive=True)


def test_setup_app_keeps_an_explicit_chord_unlock_limit(app):
    app.tasks["celery.chord_unlock"].max_retries = 3
    setup_app(app)
    assert app.tasks["celery.chord_unlock"].max_retries == 3


def test_setup_app_failure_raises_or_is_logged(app, caplog):
    app.conf.broker_url = "sqs://"
    app.conf.broker_transport = "no-such-transport"
    with pytest.raises(KeyError, match="no-such-transport"):
        setup_app(app)
    assert app.is_set_up is False
    assert setup_app(app, throw=False) is False
    assert app.is_set_up is False
    assert "declaring the exchange and queues failed" in caplog.text
    assert app.tasks["celery.chord_unlock"].max_retries == 7


def test_extract_followups_hands_on_and_clears_only_the_callbacks(app):
    seen = {}

    @app.task(bind=True, name="export.parent", shared=False)
    def parent(self):
        seen.update(extract_followups(self))
        seen["after"] = (self.request.callbacks, self.request.errbacks)

    link, error = {"task": "msg.done"}, {"task": "msg.failed"}
    parent.apply(link=[link], link_error=[error])
    assert seen == {"link": [link], "link_error": [error], "after": (None, [error])}


def test_a_parent_that_fails_after_handing_on_is_still_reported(app):
    """The errback hears of both failures: the child's (handed on) and the
    parent's own (kept)."""
    app.conf.task_always_eager = True
    ran = []

    @app.task(name="msg.failed", shared=False)
    def failed(request, exc, traceback):
        ran.append(("failed", request.task, str(exc)))

    @app.task(name="export.child", shared=False)
    def child():
        raise ValueError("child failed")

    @app.task(bind=True, name="export.parent", shared=False)
    def parent(self):
        child.s().set(**extract_followups(self)).delay()
        raise RuntimeError("parent failed after handing on")

    result = parent.apply_async(link_error=failed.s())
    assert result.failed()
    assert ran == [("failed", "export.child", "child failed"),
                   ("failed", "export.parent", "parent failed after handing on")]


def test_importing_the_toolbox_config_loads_no_test_machinery():
    code = ("import sys, cadasta_toolbox.config, cadasta_toolbox.app, "
            "cadasta_toolbox.followups, cadasta_toolbox.schema, cadasta_toolbox.logs;"
            "print(sorted(m for m in ('pytest', 'moto', 'pytest_postgresql', "
            "'pytest_cadasta', '_pytest') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
