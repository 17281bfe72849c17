"""One app's parts, started on first use and torn down once: its view of SQS,
the app wired to it and to the result database, its in-process worker.

The pytest fixtures and ``build_functional_tests`` both stand on this.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING, Any

from pytest_cadasta.basics.errors import InfrastructureError, NotConfigured, WorkerFailed
from pytest_cadasta.basics.topology import Topology
from pytest_cadasta.running.infrastructure import Infrastructure
from pytest_cadasta.settings import Settings

if TYPE_CHECKING:
    from pytest_cadasta.apps.wiring import OriginalSettings
    from pytest_cadasta.model.platform_view import Platform
    from pytest_cadasta.services.resultdb import ResultDatabase
    from pytest_cadasta.services.sqs import MockSQS
    from pytest_cadasta.services.worker import InProcessWorker


class Harness:
    """One app's parts, started on first request, in dependency order; ``close()``
    stops everything it started, in reverse, and puts the app back.

    ``user_app`` is the user's app object; ``app()`` wires that same object to
    the mocked SQS and the result database (and ``close()`` unwires it). The
    server and the database come from ``infra``, shared by every app of the run
    (one of its own, closed with it, when none is given).
    """

    def __init__(self, settings: Settings, user_app: Any = None,
                 topology: Topology | None = None, infra: Infrastructure | None = None,
                 hostname: str = "cadasta-test@localhost",
                 tooling_modules: frozenset[str] = frozenset()) -> None:
        self.settings = settings
        self.user_app = user_app
        #: Modules imported before any of the project's code (pytest and its
        #: plugins): a task they define is not the app's, though Celery adds
        #: shared tasks (pytest-celery's) to every app.
        self.tooling_modules = tooling_modules
        if topology is None and user_app is not None:
            topology = Topology.of(user_app)
        self._topology = topology
        self.hostname = hostname
        self._stack = ExitStack()
        if infra is None:
            infra = Infrastructure(settings)
            self._stack.callback(infra.close)
        self.infra = infra
        self._sqs: MockSQS | None = None
        self._wired = False
        self.original: OriginalSettings | None = None
        self._worker: InProcessWorker | None = None
        self._worker_stack: ExitStack | None = None
        #: Why the worker could not start, once it could not: decided once,
        #: every later check that needs it errors at once with that reason.
        self._worker_failed: str | None = None
        # A backstop for an interpreter that exits without teardown.
        weakref.finalize(self, ExitStack.close, self._stack)

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            raise _no_app()
        return self._topology

    def sqs(self) -> MockSQS:
        if self._sqs is None:
            from pytest_cadasta.services.sqs import MockSQS

            server = self.infra.server()
            if self._topology is None:
                self._sqs = MockSQS(server, taps=self.infra.taps)
            else:
                self._sqs = MockSQS(server, self._topology.region,
                                    self._topology.queue_name_prefix, self.infra.taps,
                                    self._topology.predefined)
                if self._topology.predefined:
                    from pytest_cadasta.apps.wiring import HARNESS_QUEUES

                    self._sqs.make_predefined(HARNESS_QUEUES)
                self.platform()  # hears the monitor from the first read on
        return self._sqs

    def platform(self) -> Platform:
        """The platform reading this app's monitor queue."""
        return self.infra.platform(self.topology)

    def result_db(self) -> ResultDatabase:
        return self.infra.result_db()

    def broker_app(self) -> Any:
        """The user's app with its broker on the mocked SQS; no result backend
        yet (the checks that only publish need none, and need not wait for
        PostgreSQL to start)."""
        if self.original is None:
            from pytest_cadasta.apps.wiring import unwire, wire

            if self.user_app is None:
                raise _no_app()
            self.original = wire(self.user_app, self.sqs())
            self._stack.callback(unwire, self.user_app, self.original)
        return self.user_app

    def app(self) -> Any:
        """The user's app wired to the mocked SQS and the result database."""
        if not self._wired:
            from pytest_cadasta.apps.wiring import wire_results

            app = self.broker_app()
            assert self.original is not None
            wire_results(app, self.result_db(), self.original)
            self._wired = True
        return self.user_app

    def worker(self, queues: Iterable[str] | None = None) -> InProcessWorker:
        """The in-process worker, consuming at least ``queues`` (default: what the
        worker consumes in production, --cadasta-queues, else every work queue);
        started on first use, then told to consume what is missing."""
        if self._worker_failed is not None:
            raise WorkerFailed(self._worker_failed)
        wanted = list(self.topology.consumed if queues is None else queues)
        refused = [why for q in wanted if (why := self.sqs().refused(q)) is not None]
        if refused:  # a worker would retry declaring it forever
            raise WorkerFailed(f"no worker can consume what SQS cannot create: {refused[0]}")
        undefined = [why for q in wanted if (why := self.topology.undefined(q)) is not None]
        if undefined:  # its consumer would raise, and restart, for ever
            raise WorkerFailed(f"no worker can consume a queue kombu refuses: {undefined[0]}")
        if self._worker is not None and not self._worker.running:
            # Stopped by someone else: Celery's own test worker (the celery_worker
            # fixture of celery.contrib.pytest) stops every worker in the
            # process when it stops; or its broker went away. Start another.
            self.stop_worker()
        if self._worker is None:
            gone = self.infra.gone()
            if gone is not None:  # a worker would retry its broker for ever
                raise InfrastructureError(gone)
            from pytest_cadasta.apps.wiring import close_result_connections, pool_result_connections
            from pytest_cadasta.services.worker import InProcessWorker

            app = self.app()
            worker = InProcessWorker(app, wanted, self.hostname)
            stack = self._worker_stack = self._stack.enter_context(ExitStack())
            stack.callback(worker.stop)
            try:
                worker.start()
            except WorkerFailed as exc:
                self._worker_failed = str(exc)
                raise
            worker.call(partial(pool_result_connections, app))
            stack.callback(worker.call_if_running, partial(close_result_connections, app))
            self._worker = worker
        else:
            self._worker.consume(wanted)
        return self._worker

    def stop_worker(self) -> None:
        """Stop the worker, if it runs; ``worker()`` starts a new one."""
        stack, self._worker_stack = self._worker_stack, None
        self._worker = None
        if stack is not None:
            stack.close()

    @property
    def running_worker(self) -> InProcessWorker | None:
        """The worker if it started; asking starts nothing and changes nothing."""
        return self._worker

    def gone(self, quick: bool = False) -> str | None:
        """What of the shared infrastructure no longer answers (``Infrastructure.gone``)."""
        return self.infra.gone(quick)

    def on_close(self, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` when the harness closes (last in, first out)."""
        self._stack.callback(callback, *args)

    def close(self) -> None:
        self._stack.close()
        self._sqs = self._worker = self._worker_stack = None
        self._worker_failed = None
        self._wired = False
        self.original = None


def _no_app() -> NotConfigured:
    return NotConfigured("no app: give --cadasta-app=module:attribute (ini: cadasta_app)")
