"""What the toolbox does as a worker starts: the platform queue is never consumed,
0.6.0's log files, Sentry.

First at signal level, then on a real ``celery worker`` started without ``-Q``
(as production may start one) against moto's SQS server on 127.0.0.1: fake
credentials, no real AWS, the process stopped and gone after the module.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from celery import Celery
from celery.signals import celeryd_after_setup, celeryd_init
from kombu import Exchange, Queue

from cadasta_toolbox.config import Config

REGION = "us-west-2"
PREFIX = "toolbox-"
KEY, SECRET = "toolbox-test-key", "toolbox-test-secret"
WORK_QUEUES = {"celery", "msg", "export"}
#: Safety nets: each wait ends as soon as the worker prints what it waits for.
START_TIMEOUT = 60.0
TASK_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SENTRY_INSTALLED = importlib.util.find_spec("sentry_sdk") is not None
SENTRY = {"SENTRY_DSN": "http://public@127.0.0.1:9/1",
          "SENTRY_ENVIRONMENT": "toolbox-test", "SENTRY_RELEASE": "toolbox@1",
          "SENTRY_NAME": "toolbox-worker"}


def config_app(**settings):
    app = Celery("queues", set_as_current=False)
    app.config_from_object(Config(broker_url="memory://", broker_transport=None,
                                  result_backend=None, **settings))
    return app


def after_setup(app):
    """Send celeryd_after_setup as the worker program does once -Q is applied."""
    celeryd_after_setup.send(sender="toolbox@localhost", instance=SimpleNamespace(app=app),
                             conf=app.conf)
    return set(app.amqp.queues.consume_from)


def test_without_q_celery_would_consume_the_platform_queue_until_set_up():
    app = config_app()
    assert set(app.amqp.queues.consume_from) == WORK_QUEUES | {"platform.fifo"}
    assert after_setup(app) == WORK_QUEUES


def test_a_q_selection_naming_the_platform_queue_loses_it():
    app = config_app(PLATFORM_QUEUE_NAME="monitor.fifo")
    app.amqp.queues.select(["export", "monitor.fifo"])
    assert after_setup(app) == {"export"}


def test_an_app_not_built_with_config_is_left_alone():
    exchange = Exchange("task_exchange", type="topic")
    app = Celery("handwritten", set_as_current=False)
    app.conf.update(PLATFORM_QUEUE_NAME="platform.fifo", task_queues=[
        Queue("export", exchange, routing_key="export"),
        Queue("platform.fifo", exchange, routing_key="#")])
    assert after_setup(app) == {"export", "platform.fifo"}


@pytest.mark.parametrize(("queues", "warned"), [
    (["export", "platform.fifo"], True), ("export,platform.fifo", True),
    (["export"], False), (None, False)])
def test_q_naming_the_platform_queue_is_warned(caplog, queues, warned):
    app = config_app()
    celeryd_init.send(sender="toolbox@localhost", instance=SimpleNamespace(app=app),
                      conf=app.conf, options={"queues": queues})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert bool(warnings) is warned
    if warned:
        assert "-Q names platform.fifo" in warnings[0]


# -- a real `celery worker` ---------------------------------------------------


class Output:
    """A process's output, read as it comes; ``wait_for`` returns when a line
    matches (or the process has ended)."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def matching(self, pattern: str) -> list[str]:
        with self._changed:
            return [line for line in self.lines if re.search(pattern, line)]

    def wait_for(self, pattern: str, timeout: float) -> str:
        with self._changed:
            self._changed.wait_for(lambda: self.ended or any(
                re.search(pattern, line) for line in self.lines), timeout)
        found = self.matching(pattern)
        if not found:
            pytest.fail(f"the worker never printed {pattern!r} (safety net {timeout:.0f} s"
                        f"{', it exited' if self.ended else ''}); its output:\n"
                        + "\n".join(self.lines), pytrace=False)
        return found[0]

    def join(self) -> None:
        self._reader.join(STOP_TIMEOUT)


@pytest.fixture(scope="module")
def moto_sqs():
    """moto's server on 127.0.0.1, this process's AWS environment pinned to it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in aws_environment(endpoint).items():
                patch.setenv(name, value)
            yield endpoint
    finally:
        server.stop()


def aws_environment(endpoint: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_SQS": endpoint, "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def broker_settings(endpoint: str) -> dict[str, Any]:
    port = endpoint.rsplit(":", 1)[1]
    options = {"region": REGION, "queue_name_prefix": PREFIX, "is_secure": False,
               "wait_time_seconds": 1, "polling_interval": 0.1, "visibility_timeout": 60}
    return {"broker_url": f"sqs://{KEY}:{SECRET}@127.0.0.1:{port}",
            "broker_transport_options": options}


def worker_environment(build, endpoint: str, directory: Path) -> dict[str, str]:
    broker = broker_settings(endpoint)
    env = build(**aws_environment(endpoint),
                CELERY_BROKER_URL=broker["broker_url"],
                CELERY_BROKER_TRANSPORT_OPTIONS=repr(broker["broker_transport_options"]),
                SETUP_FILE_LOGGING="True", LOG_DIR=str(directory / "logs"))
    if SENTRY_INSTALLED:
        env.update(SENTRY, SETUP_SENTRY_LOGGING="True",
                   TOOLBOX_TEST_SENTRY_EVENTS=str(directory / "sentry.jsonl"))
    return env


@pytest.fixture(scope="module")
def worker(moto_sqs, tmp_path_factory, subprocess_environment):
    """``celery -A toolbox_worker worker`` without -Q, ready; stopped after."""
    directory = tmp_path_factory.mktemp("worker")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "toolbox_worker", "worker",
         "--pool", "solo", "--loglevel", "INFO", "--hostname", "toolbox@localhost",
         "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=directory, env=worker_environment(subprocess_environment, moto_sqs, directory),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    output = Output(process.stdout)
    try:
        output.wait_for(r"toolbox@localhost ready\.", START_TIMEOUT)
        yield SimpleNamespace(output=output, directory=directory, endpoint=moto_sqs)
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
        output.join()
        process.stdout.close()


@pytest.fixture(scope="module")
def ran(worker):
    """One task that succeeds and one that fails, sent as a producer sends
    them and run by the worker: their ids."""
    producer = Celery("producer", set_as_current=False)
    producer.config_from_object(Config(result_backend=None, **broker_settings(worker.endpoint)))
    try:
        ids = SimpleNamespace(succeeded=producer.send_task("export.succeed", args=(7,)).id,
                              failed=producer.send_task("export.fail").id)
    finally:
        producer.close()
    worker.output.wait_for(rf"Task export\.succeed\[{ids.succeeded}\] succeeded", TASK_TIMEOUT)
    worker.output.wait_for(rf"Task export\.fail\[{ids.failed}\] raised unexpected",
                           TASK_TIMEOUT)
    return ids


def test_a_worker_started_without_q_does_not_consume_the_platform_queue(worker):
    banner = {m.group(1) for line in worker.output.lines
              if (m := re.match(r"\s*\.> (\S+)\s+exchange=", line))}
    assert banner == WORK_QUEUES


def test_the_platform_keeps_its_copies_of_what_the_worker_ran(worker, ran):
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=worker.endpoint)
    url = sqs.get_queue_url(QueueName=f"{PREFIX}platform.fifo")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ids = {json.loads(base64.b64decode(m["Body"]))["headers"]["id"] for m in messages}
    assert ids == {ran.succeeded, ran.failed}


def _logged(path, text, timeout=TASK_TIMEOUT):
    """The file at ``path`` once it holds ``text`` (the worker prints a line
    before its file handler has written it), or as it is at the timeout."""
    deadline = time.monotonic() + timeout
    while text not in (found := path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)  # polls the file; the assertions decide
    return found


def test_file_logging_survives_celery_setting_up_its_own(worker, ran):
    logs = worker.directory / "logs"
    info = _logged(logs / "app.info.log", f"Task export.succeed[{ran.succeeded}] succeeded")
    error = _logged(logs / "app.error.log", "ValueError: export failed on purpose")
    assert "toolbox@localhost ready." in info
    assert f"Task export.succeed[{ran.succeeded}] succeeded" in info
    assert f"Task export.fail[{ran.failed}] raised unexpected" in error
    assert "ValueError: export failed on purpose" in error
    assert "ready." not in error and "succeeded" not in error


@pytest.mark.skipif(not SENTRY_INSTALLED,
                    reason="sentry-sdk is not installed (pip install 'pytest-cadasta[sentry]')")
def test_a_failing_task_is_reported_to_sentry(worker, ran):
    events = [json.loads(line) for line in
              (worker.directory / "sentry.jsonl").read_text().splitlines()]
    reported = [event for event in events
                for exception in event.get("exception", {}).get("values", [])
                if exception["type"] == "ValueError"
                and exception["value"] == "export failed on purpose"]
    assert reported, f"no Sentry event for the failing task among {events}"
    event = reported[0]
    assert (event["environment"], event["release"], event["server_name"]) == (
        "toolbox-test", "toolbox@1", "toolbox-worker")
    mechanisms = {e["mechanism"]["type"] for e in event["exception"]["values"]}
    assert mechanisms == {"celery"}
