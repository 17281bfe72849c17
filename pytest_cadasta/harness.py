"""The infrastructure a check needs, started on first use and torn down once:
moto's SQS server, the result database, the wired app, the in-process worker.

The pytest fixtures and ``build_functional_tests`` both stand on this.
"""

from __future__ import annotations

import weakref
from contextlib import ExitStack
from typing import Any

from pytest_cadasta import topology
from pytest_cadasta.errors import InfrastructureError
from pytest_cadasta.settings import Settings
from pytest_cadasta.wiring import OriginalSettings


class Harness:
    """Starts each part on first request, in dependency order; ``close()`` stops
    everything it started, in reverse, and puts the environment back."""

    def __init__(self, settings: Settings, app: Any = None, server: Any = None) -> None:
        self.settings = settings
        self._app = app
        #: The moto server, when the caller started it (before importing the app).
        self._given_server = self._server = server
        self._stack = ExitStack()
        self._sqs: Any = None
        self._database: Any = None
        self._wired = False
        self.original: OriginalSettings | None = None
        self._worker: Any = None
        self.pg_server: Any = None
        # A backstop for an interpreter that exits without teardown.
        weakref.finalize(self, ExitStack.close, self._stack)

    @property
    def raw_app(self) -> Any:
        return self._app

    def sqs(self) -> Any:
        if self._sqs is None:
            from pytest_cadasta.sqs import MockSQS, local_aws

            if self._server is None:
                self._server = self._stack.enter_context(local_aws())
            if self._app is None:
                self._sqs = MockSQS(self._server)
            else:
                self._sqs = MockSQS(self._server, topology.region(self._app),
                                    topology.queue_name_prefix(self._app))
        return self._sqs

    def result_db(self) -> Any:
        if self._database is None:
            from pytest_cadasta.resultdb import ResultDatabase

            server = self._postgres_server()
            database = ResultDatabase(server, self.settings.result_schema)
            self._stack.callback(database.drop)
            try:
                database.create()
            except Exception as exc:
                detail = str(exc).strip()
                if server.password:
                    detail = detail.replace(server.password, "**")
                raise InfrastructureError(
                    f"could not create the result database on {server.host}:"
                    f"{server.port} as {server.user!r}: {type(exc).__name__}: "
                    f"{detail}; the role needs CREATEDB and CREATEROLE") from None
            self._database = database
        return self._database

    def _postgres_server(self) -> Any:
        from pytest_cadasta import postgres

        if self.settings.result_db is not None:
            self.pg_server = postgres.server_from_url(self.settings.result_db)
        else:
            pg = postgres.EphemeralPostgres(postgres.find_pg_ctl(self.settings.pg_ctl))
            self._stack.callback(pg.stop)
            try:
                self.pg_server = pg.start()
            except RuntimeError as exc:
                raise InfrastructureError(str(exc)) from None
        return self.pg_server

    def app(self) -> Any:
        """The user's app wired to the mocked SQS and the result database."""
        if not self._wired:
            from pytest_cadasta.wiring import unwire, wire

            if self._app is None:
                raise LookupError("no app: give --cadasta-app=module:attribute "
                                  "(ini: cadasta_app)")
            sqs = self.sqs()
            database = self.result_db()
            self.original = wire(self._app, sqs, database)
            self._stack.callback(unwire, self._app, self.original)
            self._wired = True
        return self._app

    def worker(self) -> Any:
        if self._worker is None:
            from pytest_cadasta.worker import InProcessWorker, WorkerFailed

            app = self.app()
            worker = InProcessWorker(app, topology.work_queue_names(app))
            self._stack.callback(worker.stop)
            try:
                worker.start()
            except WorkerFailed as exc:
                raise InfrastructureError(str(exc)) from None
            self._worker = worker
        return self._worker

    @property
    def worker_started(self) -> bool:
        return self._worker is not None

    def on_close(self, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` when the harness closes (last in, first out)."""
        self._stack.callback(callback, *args)

    def close(self) -> None:
        self._stack.close()
        self._sqs = self._database = self._worker = None
        self._server = self._given_server
        self._wired = False
