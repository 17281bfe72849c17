"""What every check stands on: the wired app, its probes, and ways to see what
really happened (messages in SQS, rows in the result table)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_cadasta.errors import CadastaError
from pytest_cadasta.probes import HideProbeFailures, Probes, ReceivedLog
from pytest_cadasta.topology import Topology

if TYPE_CHECKING:
    from pytest_cadasta.checks import Check
    from pytest_cadasta.harness import Harness

ROUND_TRIP_TIMEOUT = 15.0
PRODUCER_ONLY_REASON = "--cadasta-producer-only: the app runs no worker"


class CheckFailed(AssertionError):
    """A conformance check failed; the message is the review comment."""


class CheckSkipped(Exception):
    """A check that does not apply (e.g. it needs a worker, and there is none)."""


def run_check(check: Check, conformance: Conformance,
              queue: str | None) -> tuple[str | None, str | None]:
    """Run one check; return (failure message, skip reason), at most one set.

    Both runners (pytest items, unittest methods) report from this, outside
    any except block, so no exception chain reaches the report.
    """
    try:
        check.func(conformance, queue)
    except CheckFailed as exc:
        return f"{check.doc}{exc}", None
    except CheckSkipped as exc:
        return None, str(exc)
    except CadastaError:
        raise  # the plugin's own part failed: an error, not a verdict
    except Exception as exc:
        return f"{check.doc}{raised_while_checking(exc)}", None
    return None, None


def raised_while_checking(exc: BaseException) -> str:
    """A check failure for an exception the app's own code (or a library it
    drives) raised: the exception in one line and where it was raised."""
    where = raised_at(exc)
    text = str(exc).strip().splitlines()
    saw = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return (f"\n  saw:   {saw} (raised at {where})"
            "\n  needs: the app's own code (its AMQP class, routers, signal handlers) to "
            "send and run tasks while the broker answers: here SQS is moto's server, "
            "listening since before the app was imported"
            f"\n  fix:   look at {where}; state kept from an earlier failure (a circuit "
            "breaker opened while the module was imported) must not outlive it")


def _library_dirs() -> tuple[str, ...]:
    import sysconfig
    from pathlib import Path

    import pytest_cadasta

    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(str(Path(pytest_cadasta.__file__).parent))
    return tuple(str(Path(d).resolve()) + "/" for d in dirs)


def raised_at(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame outside the libraries
    and this plugin (the innermost frame when all are library frames)."""
    import os
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    libraries = _library_dirs()
    own = [f for f in frames if not os.path.realpath(f.filename).startswith(libraries)]
    frame = (own or frames)[-1]
    try:
        filename = os.path.relpath(frame.filename)
    except ValueError:
        filename = frame.filename
    if filename.startswith(".."):
        filename = frame.filename
    return f"{filename}:{frame.lineno} in {frame.name}"


def fail(saw: str, needs: str, fix: str) -> NoReturn:
    """Fail a check the way a reviewer would: what was seen, what is needed, the fix."""
    __tracebackhide__ = True
    raise CheckFailed(f"\n  saw:   {saw}\n  needs: {needs}\n  fix:   {fix}")


class Conformance:
    """The state shared by the checks of one run."""

    def __init__(self, harness: Harness, is_worker: bool = True) -> None:
        self.harness = harness
        self.is_worker = is_worker
        self.topology: Topology = harness.topology
        self.probes = Probes(self.topology.work_queues)
        self.probes.install(harness.user_app)
        self.received = ReceivedLog()
        from celery.signals import task_received

        task_received.connect(self.received.on_task_received, weak=False)
        harness.on_close(task_received.disconnect, self.received.on_task_received)
        trace_log = logging.getLogger("celery.app.trace")
        hide = HideProbeFailures()
        trace_log.addFilter(hide)
        harness.on_close(trace_log.removeFilter, hide)
        self.app = harness.app()
        self.original = harness.original
        self.sqs = harness.sqs()
        self.result_db = harness.result_db()

    # -- infrastructure on demand ------------------------------------------
    def require_worker(self) -> Any:
        if not self.is_worker:
            raise CheckSkipped(PRODUCER_ONLY_REASON)
        return self.harness.worker()

    def fresh_start(self) -> None:
        """Empty the queues, so a check counts only its own messages."""
        self.sqs.purge()

    # -- sending --------------------------------------------------------------
    def send_fresh(self, name: str, args: tuple = (), **options: Any) -> Any:
        """Send ``name`` as the app would, from a connection never used before
        (kombu's exchange bindings live per connection)."""
        with self.app.connection_for_write() as connection:
            return self.app.send_task(name, args=args, connection=connection, **options)

    def route(self, name: str) -> dict:
        """The route the app's own router gives ``name`` (Celery's Router)."""
        return self.app.amqp.router.route({}, name)

    # -- observing ------------------------------------------------------------
    def wait_for_messages(self, queue: str, predicate: Any, count: int = 1,
                          timeout: float = 3.0) -> list:
        """Messages of ``queue`` matching ``predicate``, read (and deleted) until
        ``count`` are seen or ``timeout`` passes."""
        seen: list = []
        deadline = time.monotonic() + timeout
        while True:
            seen += [m for m in self.sqs.messages(queue) if predicate(m)]
            if len(seen) >= count or time.monotonic() >= deadline:
                return seen
            time.sleep(0.05)

    def wait_for_row(self, task_id: str, statuses: tuple = ("SUCCESS", "FAILURE"),
                     timeout: float = ROUND_TRIP_TIMEOUT) -> dict | None:
        return self.result_db.wait_for_row(task_id, statuses, timeout)

    def consumptions(self, task_id: str, queue: str, timeout: float = 5.0) -> list[str]:
        """Times the in-process worker consumed the probe ``task_id`` from ``queue``'s
        SQS queue (waits for the first, then a moment for duplicates)."""
        deadline = time.monotonic() + timeout
        while not self.received.consumed_from(task_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        sqs_name = self.sqs.sqs_name(queue)
        return [q for q in self.received.consumed_from(task_id) if q == sqs_name]

    def where_is(self, task_id: str) -> dict[str, int]:
        """SQS queue name -> how many copies of ``task_id`` it holds (read and deleted)."""
        return {sqs_name: sum(1 for m in self.sqs.read(url, sqs_name) if m.id == task_id)
                for sqs_name, url in self.sqs.queues().items()}
