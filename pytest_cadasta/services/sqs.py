"""Where SQS comes from: moto in server mode on 127.0.0.1, and nothing else.

A real worker's consumer talks to SQS through kombu's own HTTP client, which
moto's in-process mock does not intercept; so the plugin runs moto's server
and points every client at it, with fake credentials pinned in the
environment so nothing can reach real AWS.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from pytest_cadasta.basics.errors import InfrastructureError
from pytest_cadasta.basics.messages import TaskMessage, decode
from pytest_cadasta.basics.topology import DEFAULT_REGION, Predefined, sqs_queue_name

FAKE_ACCESS_KEY = "cadasta-test-key"
FAKE_SECRET_KEY = "cadasta-test-secret"

#: Variables that could send a client elsewhere or sign with real credentials.
AWS_VARIABLES_CLEARED = (
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


#: The queue names SQS accepts (a FIFO queue's ends in '.fifo', counted too).
SQS_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo|[A-Za-z0-9_-]{1,80}")


def refused_queue_name(prefix: str, name: str) -> str | None:
    """Why SQS would refuse the queue kombu makes of ``name``; None if it would not."""
    sqs_name = sqs_queue_name(prefix, name)
    if SQS_QUEUE_NAME.fullmatch(sqs_name):
        return None
    return (f"queue {name!r} is SQS queue {sqs_name!r}, a name SQS refuses (ASCII letters, "
            "digits, '-' and '_' only, at most 80 characters)")


#: Hosts every HTTP client must reach directly, never through a proxy.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _no_proxy_with_loopback(current: str | None) -> str:
    entries = [e.strip() for e in (current or "").split(",") if e.strip()]
    return ",".join([*LOOPBACK_HOSTS, *(e for e in entries if e not in LOOPBACK_HOSTS)])


#: Where AWS is pinned while a run that is a usage error configures (no moto
#: started for it): loopback's discard port, never AWS.
NOWHERE = "http://127.0.0.1:9"


@contextmanager
def pinned_aws_environment(endpoint: str) -> Iterator[None]:
    """Fake credentials, every AWS endpoint pinned to ``endpoint`` (reached
    directly, not through a proxy), no profile or shared file read; the
    environment restored after."""
    with pytest.MonkeyPatch.context() as patch:
        for name in AWS_VARIABLES_CLEARED:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY)
        patch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_KEY)
        patch.setenv("AWS_DEFAULT_REGION", DEFAULT_REGION)
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in ("NO_PROXY", "no_proxy"):
            patch.setenv(name, _no_proxy_with_loopback(os.environ.get(name)))
        yield


#: The account moto's queue URLs name.
MOTO_ACCOUNT = "123456789012"

#: A safety net for ``MotoServer.settle``: a receive waits at most a worker's
#: long poll (TEST_POLLING's one second), and ``MockSQS.release`` ends it sooner.
SETTLE_TIMEOUT = 60.0
#: How long a stopped moto process may take to go before it is killed.
STOP_TIMEOUT = 5.0


class MotoServer:
    """moto in server mode on 127.0.0.1, in a process of its own
    (``moto_process``): every AWS service, every region, one store. The run
    binds the port (port 0, so nothing can take it meanwhile) and hands the
    socket over; the process dies with the run, however the run ends."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._lifeline: int | None = None
        self._clients: dict[str, Any] = {}
        #: A server this run did not start (--cadasta-moto-endpoint): left running.
        self.borrowed = False

    @classmethod
    def borrow(cls, endpoint: str) -> MotoServer:
        """A moto server already running on loopback at ``endpoint``: reset (every
        queue of every earlier run gone), used, and left running."""
        import http.client

        server = cls()
        server.port = int(endpoint.rsplit(":", 1)[1].rstrip("/"))
        server.borrowed = True
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request("POST", "/moto-api/reset")
            answered = connection.getresponse().status
        except OSError as exc:
            raise InfrastructureError(f"the moto server at {endpoint} does not answer: {exc}"
                                      ) from None
        finally:
            connection.close()
        if answered != 200:
            raise InfrastructureError(f"{endpoint} did not reset as moto's server does "
                                      f"(POST /moto-api/reset answered {answered})")
        return server

    def start(self) -> MotoServer:
        listening = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = listening.getsockname()[1]
        lifeline, self._lifeline = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pytest_cadasta.services.moto_process",
                 str(listening.fileno()), str(lifeline)],
                pass_fds=(listening.fileno(), lifeline), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, env=_moto_environment(), cwd="/",
                start_new_session=True)  # a Ctrl-C is the run's to handle, not moto's
        except BaseException:
            os.close(self._lifeline)
            self._lifeline = None
            raise
        finally:
            # Only moto's process holds them now: when it goes, the port refuses.
            listening.close()
            os.close(lifeline)
        return self

    def settle(self) -> bool:
        """Return once no request is in flight: a stopped worker's last long
        poll has been answered, so it can take no message sent from now on.
        False if one still was after SETTLE_TIMEOUT."""
        import http.client

        from pytest_cadasta.services.moto_process import SETTLE_PATH

        connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                timeout=SETTLE_TIMEOUT + 5)
        try:
            connection.request("GET", f"{SETTLE_PATH}?{SETTLE_TIMEOUT}")
            status = connection.getresponse().status
            # A moto server of another's knows no such path: nothing to wait on.
            return status in (200, 404)
        except OSError:
            return False
        finally:
            connection.close()

    def calls(self) -> dict[str, int]:
        """How many requests of each AWS action the server has answered (the
        plugin's own moto process counts them; benchmarks/bench.py reads it)."""
        import http.client
        import json

        from pytest_cadasta.services.moto_process import CALLS_PATH

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:  # http.client: no proxy of the environment's in the way
            connection.request("GET", CALLS_PATH)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.borrowed:
            return  # not this run's to stop
        process, self.process = self.process, None
        if self._lifeline is not None:
            os.close(self._lifeline)  # the process reads end-of-file and exits
            self._lifeline = None
        if process is None:
            return
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def answers(self) -> bool:
        """Whether the server still accepts connections."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def broker_url(self) -> str:
        """A kombu URL that reaches this server and only this server."""
        return f"sqs://{FAKE_ACCESS_KEY}:{FAKE_SECRET_KEY}@127.0.0.1:{self.port}"

    def client(self, region: str) -> Any:
        """A boto3 SQS client bound to this server, one per region."""
        if region not in self._clients:
            import boto3

            self._clients[region] = boto3.session.Session().client(
                "sqs", region_name=region, endpoint_url=self.endpoint,
                aws_access_key_id=FAKE_ACCESS_KEY,
                aws_secret_access_key=FAKE_SECRET_KEY)
        return self._clients[region]


def _moto_environment() -> dict[str, str]:
    """moto's process's environment: the run's, without anything that would let
    it (or a library it loads) reach AWS or a proxy."""
    keep = {name: value for name, value in os.environ.items()
            if not name.startswith("AWS_") and name.lower() not in (
                "http_proxy", "https_proxy", "all_proxy")}
    keep["AWS_EC2_METADATA_DISABLED"] = "true"
    return keep


@contextmanager
def one_botocore_loader() -> Iterator[None]:
    """Every botocore session made meanwhile shares one data loader (per data
    path), so the SQS service model is read from disk and parsed once for the
    run, not once per client: kombu makes a session per channel, and a run makes
    several (0.1 s each on two cores). botocore has no public switch for it:
    its sessions make their loader with ``botocore.session.create_loader``."""
    import botocore.session

    original = botocore.session.create_loader
    loaders: dict[Any, Any] = {}

    def shared(search_path_string: Any = None) -> Any:
        if search_path_string not in loaders:
            loaders[search_path_string] = original(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = shared
    try:
        yield
    finally:
        if botocore.session.create_loader is shared:
            botocore.session.create_loader = original


@contextmanager
def local_aws(endpoint: str | None = None) -> Iterator[MotoServer]:
    """A started moto server (or the one at ``endpoint``, reset) with the AWS
    environment pinned to it (and one botocore data loader for every client);
    on exit the server stops (one of its own) and the environment is as it
    was."""
    with ExitStack() as stack:
        server = MotoServer().start() if endpoint is None else MotoServer.borrow(endpoint)
        stack.callback(server.stop)
        stack.enter_context(pinned_aws_environment(server.endpoint))
        stack.enter_context(one_botocore_loader())
        yield server


class MockSQS:
    """What one app sees of the moto server: its region, its queue-name prefix,
    and helpers to look inside its queues."""

    def __init__(self, server: MotoServer, region: str = DEFAULT_REGION,
                 queue_name_prefix: str = "", taps: dict[tuple[str, str], Tap] | None = None,
                 predefined: Predefined | None = None) -> None:
        self.server = server
        self.region = region
        self.queue_name_prefix = queue_name_prefix
        #: The app's predefined queues (kombu name -> URL), if it has them.
        self.predefined = Predefined() if predefined is None else predefined
        #: (region, SQS name) -> the tap every read of that queue goes through
        #: (the monitor queues: the platform's sync-tasks hears each message).
        self.taps = {} if taps is None else taps
        self._regions_seen = {region}
        #: (region, SQS name) -> URL: an SQS queue's URL never changes.
        self._urls: dict[tuple[str, str], str] = {}

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def broker_url(self) -> str:
        return self.server.broker_url

    def client(self, region: str | None = None) -> Any:
        """A boto3 SQS client bound to the moto server (the app's region by default)."""
        region = region or self.region
        self._regions_seen.add(region)
        return self.server.client(region)

    def purge(self, regions: Iterable[str] = ()) -> None:
        """Empty every queue in every region the plugin has looked at (and in
        ``regions``), whatever its prefix; the queues (and a running worker's hold
        on them) stay. Reads and deletes, since SQS (and moto) allow one
        PurgeQueue a minute."""
        for region in sorted(self._regions_seen | set(regions)):
            for sqs_name, url in self.queues(region).items():
                self.read(url, sqs_name, region)

    def release(self, queues: list[str]) -> None:
        """End the long polls a stopped worker left waiting in moto on its
        ``queues``: such a poll would take, unseen, the first message sent there
        next. A message in each queue ends them at once; then the queues are
        emptied (what no poll took goes too)."""
        urls = {q: url for q in queues if (url := self.url(q)) is not None}
        client = self.client()
        for url in urls.values():
            if not url.endswith(".fifo"):
                client.send_message(QueueUrl=url, MessageBody="pytest-cadasta: wake up")
        if not self.server.settle():
            logging.getLogger(__name__).warning(
                "pytest-cadasta: a request to moto was still waiting %.0f s after a worker "
                "stopped; the next checks may miss a message it takes", SETTLE_TIMEOUT)
        for queue, url in urls.items():
            self.read(url, queue)

    def queues(self, region: str | None = None) -> dict[str, str]:
        """SQS queue name -> URL, for every queue in ``region``."""
        urls = self.client(region).list_queues().get("QueueUrls", [])
        return {url.rsplit("/", 1)[1]: url for url in urls}

    def sqs_name(self, queue: str) -> str:
        return self.predefined.sqs_name(self.queue_name_prefix, queue)

    def moto_url(self, url: str) -> str:
        """Where the queue at ``url`` (or named ``url``) is on this server."""
        return f"{self.endpoint}/{MOTO_ACCOUNT}/{url.rstrip('/').rsplit('/', 1)[-1]}"

    def make_predefined(self, extra: tuple[str, ...] = ()) -> None:
        """Make the app's predefined queues (and its queues ``extra``, by kombu
        name) on the server, as an operator made them in the account: kombu
        never creates one. A name ending in '.fifo' is a FIFO queue, as SQS
        requires."""
        names = [self.predefined.sqs_name("", name) for name, _ in self.predefined.urls]
        names += [self.sqs_name(queue) for queue in extra]
        client = self.client()
        for name in dict.fromkeys(names):
            attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
            client.create_queue(QueueName=name, Attributes=attributes)

    def refused(self, queue: str) -> str | None:
        """Why SQS would refuse the app's queue ``queue`` (None: it would not)."""
        return refused_queue_name(self.queue_name_prefix, queue)

    def url(self, queue: str, region: str | None = None) -> str | None:
        """The URL of the app's queue ``queue`` (a kombu name), or None."""
        region = region or self.region
        key = (region, self.sqs_name(queue))
        if key not in self._urls:  # one listing learns every queue there is now
            self._urls.update(((region, name), url)
                              for name, url in self.queues(region).items())
        return self._urls.get(key)

    def attributes(self, queue: str, region: str | None = None) -> dict[str, str]:
        url = self.url(queue, region)
        if url is None:
            return {}
        reply = self.client(region).get_queue_attributes(
            QueueUrl=url, AttributeNames=["All"])
        return reply.get("Attributes", {})

    def messages(self, queue: str, region: str | None = None,
                 delete: bool = True) -> list[TaskMessage]:
        """Every message now in the app's queue ``queue``, decoded.

        Deletes what it read unless ``delete=False`` (then it reads one batch and
        leaves it visible, so a FIFO queue's group is not blocked).
        """
        url = self.url(queue, region)
        return [] if url is None else self.read(url, queue, region, delete)

    def read(self, url: str, queue: str, region: str | None = None,
             delete: bool = True) -> list[TaskMessage]:
        """Every message now at the queue ``url``, decoded, read in batches of ten;
        each batch deleted once read unless ``delete=False``. A tapped queue (a
        monitor) is read through its tap: what came since this was last read
        there."""
        region = region or self.region
        tap = self.taps.get((region, url.rsplit("/", 1)[-1]))
        if tap is not None:
            return tap.take(delete)
        return receive_all(self.client(region), url, queue, delete)


def receive_all(client: Any, url: str, queue: str, delete: bool = True) -> list[TaskMessage]:
    """Every message now at the queue ``url``, decoded, read in batches of ten;
    each batch deleted once read unless ``delete=False`` (then one batch, left
    visible, so a FIFO queue's group is not blocked). moto hands over every
    visible message up to the batch size, so a short batch is the last."""
    found: list[TaskMessage] = []
    while True:
        batch = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"],
            VisibilityTimeout=30 if delete else 0).get("Messages", [])
        found += [decode(queue, message["Body"], sqs_attributes=message.get("Attributes"))
                  for message in batch]
        if batch and delete:
            client.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                for i, message in enumerate(batch)])
        if len(batch) < 10 or not delete:
            return found


class Tap:
    """One queue read for everyone: drained from SQS whenever anyone reads it,
    each message handed to every consumer as it is read (the platform's
    sync-tasks), and kept for the readers until they take it. So the platform
    hears every message of its monitor queue, and a test reading that queue
    still sees what reached it."""

    def __init__(self, server: MotoServer, region: str, sqs_name: str) -> None:
        self.server = server
        self.region = region
        self.sqs_name = sqs_name
        self.label = f"{sqs_name} ({region})"
        self.consumers: list[Callable[[list[TaskMessage]], None]] = []
        self._url: str | None = None
        self._unread: list[TaskMessage] = []
        self._lock = threading.RLock()

    def drain(self) -> None:
        """Read (and delete) what the queue holds now; hand it on."""
        with self._lock:
            client = self.server.client(self.region)
            if self._url is None:
                try:
                    self._url = client.get_queue_url(QueueName=self.sqs_name)["QueueUrl"]
                except client.exceptions.QueueDoesNotExist:
                    return  # nothing was ever sent there
            messages = receive_all(client, self._url, self.sqs_name)
            if messages:
                for consume in self.consumers:
                    consume(messages)
                self._unread += messages

    def take(self, delete: bool = True) -> list[TaskMessage]:
        """What the queue received since it was last taken (all of it kept when
        ``delete=False``)."""
        with self._lock:
            self.drain()
            found = list(self._unread)
            if delete:
                self._unread.clear()
            return found


class QueueLog:
    """Every message one queue received since this began reading it: read and
    deleted from SQS as it comes (its FIFO group never blocks), kept here."""

    def __init__(self, sqs: MockSQS, queue: str) -> None:
        self.sqs = sqs
        self.queue = queue
        self._seen: list[TaskMessage] = []

    def messages(self) -> list[TaskMessage]:
        self._seen += self.sqs.messages(self.queue)
        return list(self._seen)

    def of(self, task_id: str) -> list[TaskMessage]:
        return [m for m in self.messages() if m.id == task_id]
