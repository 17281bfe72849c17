"""The monitor queue's tap: however many readers drain it at once (the checks,
a user's test, the platform's own wait, from any thread), every copy that
reached the queue is handed to the platform's sync-tasks exactly once."""

import json
import threading
import uuid

import pytest

from pytest_cadasta.services.moto_process import remembering_hosts
from pytest_cadasta.services.sqs import MotoServer, Tap

REGION = "us-west-2"
QUEUE = "dev-platform.fifo"


@pytest.fixture(scope="module")
def server():
    started = MotoServer().start()
    try:
        yield started
    finally:
        started.stop()


def _copy(task_id):
    """A monitor copy as kombu writes it (the fields the tap reads)."""
    return json.dumps({"headers": {"id": task_id, "task": "export.project",
                                   "root_id": task_id, "parent_id": None},
                       "properties": {}, "content-type": "application/json",
                       "content-encoding": "utf-8", "body": "[[], {}, {}]"})


def test_two_readers_draining_one_monitor_at_once_hand_each_copy_on_once(server):
    client = server.client(REGION)
    url = client.create_queue(QueueName=QUEUE, Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]
    tap = Tap(server, REGION, QUEUE)
    heard: list[str] = []
    tap.consumers.append(lambda messages: heard.extend(m.id for m in messages))
    sent = [str(uuid.uuid4()) for _ in range(60)]
    sending_done = threading.Event()

    def send():
        for task_id in sent:
            client.send_message(QueueUrl=url, MessageBody=_copy(task_id),
                                MessageGroupId="default", MessageDeduplicationId=task_id)
        sending_done.set()

    def read():
        while not sending_done.is_set():
            tap.drain()
        tap.drain()

    threads = [threading.Thread(target=f) for f in (send, read, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert heard == sent  # each once, in the order sent
    assert [m.id for m in tap.take()] == sent


def test_the_moto_process_counts_each_actions_requests(server):
    """benchmarks/bench.py's calls per queue come from the server itself."""
    before = server.calls()
    client = server.client(REGION)
    name = f"counted-{uuid.uuid4().hex[:8]}"
    url = client.create_queue(QueueName=name)["QueueUrl"]
    for _ in range(3):
        client.send_message(QueueUrl=url, MessageBody="x")
    after = server.calls()
    added = {action: after[action] - before.get(action, 0) for action in after
             if after[action] != before.get(action, 0)}
    assert added == {"CreateQueue": 1, "SendMessage": 3}


def test_the_moto_process_asks_moto_once_per_host_which_backend_serves_it():
    """moto's own lookup lists its package directory on every request; the
    moto process gives the same answers, asking once per host."""
    from moto.moto_server import werkzeug_app

    asked = []

    class Asked(werkzeug_app.DomainDispatcherApplication):
        def get_backend_for_host(self, host):
            asked.append(host)
            return super().get_backend_for_host(host)

    remembering = remembering_hosts(Asked)(werkzeug_app.create_backend_app)
    plain = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    hosts = [f"sqs.{REGION}.amazonaws.com", "moto_api", None] * 2
    answers = [remembering.get_backend_for_host(host) for host in hosts]
    assert answers == [plain.get_backend_for_host(host) for host in hosts]
    assert answers[0] == "sqs"
    assert asked == hosts[:3]
