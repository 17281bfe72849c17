"""What every app of a run shares: moto's SQS server, the result database and
the platform played on them (one per monitor queue), each started on first
request and stopped once."""

from __future__ import annotations

import threading
import weakref
from contextlib import ExitStack
from typing import TYPE_CHECKING

from pytest_cadasta.basics.errors import InfrastructureError
from pytest_cadasta.model.task_table import TASK_TABLE_SQL
from pytest_cadasta.settings import Settings

if TYPE_CHECKING:
    from pytest_cadasta.basics.topology import Topology
    from pytest_cadasta.model.platform_view import Platform
    from pytest_cadasta.services.postgres import EphemeralPostgres, Server, StartingPostgres
    from pytest_cadasta.services.resultdb import ResultDatabase
    from pytest_cadasta.services.sqs import MotoServer, Tap


class Infrastructure:
    """moto's SQS server and the result database, each started on first
    request; ``close()`` stops what it started."""

    def __init__(self, settings: Settings, server: MotoServer | None = None,
                 postgres: StartingPostgres | None = None) -> None:
        self.settings = settings
        #: The moto server, when the caller started it (before importing the app).
        self._given_server = self._server = server
        #: PostgreSQL, when the caller started it already (in the background).
        self._starting_postgres = postgres
        #: The ephemeral PostgreSQL this run holds, the caller's or its own.
        self._postgres: StartingPostgres | EphemeralPostgres | None = postgres
        self._stack = ExitStack()
        self._database: ResultDatabase | None = None
        #: The result database being made in the background (``prepare``).
        self._preparing: threading.Thread | None = None
        self._prepare_error: BaseException | None = None
        #: (region, SQS name) -> the tap of a monitor queue, and its platform.
        self.taps: dict[tuple[str, str], Tap] = {}
        self._platforms: dict[tuple[str, str], Platform] = {}
        # A backstop for an interpreter that exits without teardown.
        weakref.finalize(self, ExitStack.close, self._stack)

    def server(self) -> MotoServer:
        if self._server is None:
            from pytest_cadasta.services.sqs import local_aws

            self._server = self._stack.enter_context(local_aws(self.settings.moto_endpoint))
        return self._server

    def prepare(self) -> None:
        """Make the result database in the background (what the worker's result
        backend will need imported first, here): wait for PostgreSQL, create the
        database. The
        checks that only publish run meanwhile; ``result_db()`` waits for it."""
        if self._preparing is not None or self._database is not None:
            return

        from pytest_cadasta.basics.imports import RESULT_DATABASE, before_threads

        before_threads(RESULT_DATABASE)  # SQLAlchemy: never by two threads at once

        def make() -> None:
            try:
                self._make_result_db()
            except BaseException as exc:  # handed to result_db()
                self._prepare_error = exc

        self._preparing = threading.Thread(target=make, name="cadasta-result-db", daemon=True)
        self._preparing.start()

    def result_db(self) -> ResultDatabase:
        preparing, self._preparing = self._preparing, None
        if preparing is not None:
            preparing.join()
            error, self._prepare_error = self._prepare_error, None
            if error is not None:
                raise error
        return self._make_result_db()

    def _make_result_db(self) -> ResultDatabase:
        if self._database is None:
            from pytest_cadasta.services.resultdb import ResultDatabase

            server = self._postgres_server()
            database = ResultDatabase(server, self.settings.result_schema,
                                      more_tables=(TASK_TABLE_SQL,))
            self._stack.callback(database.drop)
            try:
                database.create()
            except InfrastructureError:
                raise  # already says what went wrong (a bad --cadasta-result-schema)
            except Exception as exc:
                from pytest_cadasta.services.postgres import why_unusable

                given = self.settings.result_db is not None
                why = why_unusable(exc, server, self.settings.label("result_db") if given
                                   else None)
                raise InfrastructureError(
                    f"could not create the result database on {server.host}:"
                    f"{server.port} as {server.user!r}: {why}") from None
            self._database = database
        return self._database

    @property
    def postgresql_version(self) -> str | None:
        """The version of the PostgreSQL server holding the result database, once
        it is made (None before, and when no check needed it)."""
        return None if self._database is None else self._database.server_version

    def platform(self, topology: Topology) -> Platform:
        """The platform reading the monitor queue of ``topology`` (its region, its
        prefix, its platform queue): one per monitor queue, made on first
        request, hearing every message anyone reads from that queue."""
        from pytest_cadasta.services.sqs import Tap

        key = (topology.region, topology.sqs_name(topology.platform_queue))
        if key not in self._platforms:
            from pytest_cadasta.model.platform_view import Platform
            from pytest_cadasta.services.events import TaskEvents

            events = TaskEvents().connect()
            self._stack.callback(events.disconnect)
            tap = self.taps[key] = Tap(self.server(), *key)
            self._platforms[key] = Platform(tap, self.result_db, events)
        return self._platforms[key]

    def _postgres_server(self) -> Server:
        from pytest_cadasta.services import postgres

        if self.settings.result_db is not None:
            return postgres.server_from_url(self.settings.result_db)
        if self._starting_postgres is not None:
            return self._starting_postgres.server()
        pg_ctl = self.settings.pg_ctl or postgres.find_pg_ctl(None)
        pg = self._postgres = postgres.EphemeralPostgres(pg_ctl)
        self._stack.callback(pg.stop)
        return pg.start()

    def gone(self, quick: bool = False) -> str | None:
        """What of the infrastructure started so far no longer answers, in one
        line (None: all of it answers). A check that went wrong asks, so that
        a server gone away is reported as such, not as a verdict on the app.
        ``quick`` (asked before each check that needs the worker): the run's
        own PostgreSQL is asked of its process only; otherwise a session is
        opened too (a server up but refusing sessions has gone away as well)."""
        if self._server is not None and not self._server.answers():
            return (f"moto's SQS server ({self._server.endpoint}) went away: it refuses "
                    "connections")
        if self._database is not None:
            own = self._postgres if self.settings.result_db is None else None
            ended = None if own is None else own.ended()
            if ended is not None:
                return f"the result database went away: {ended}"
            if quick and own is not None:
                # Running: a session each time would be a backend PostgreSQL
                # forks and authenticates, before every check.
                return None
            reason = self._database.unreachable()
            if reason is not None:
                return f"the result database went away: {reason}"
        return None

    def close(self) -> None:
        if self._preparing is not None:
            self._preparing.join()  # what it made is on the stack by then
            self._preparing = None
        for platform in self._platforms.values():
            platform.close()  # before its database is dropped
        self._stack.close()
        self._database = None
        self._server = self._given_server
        self.taps.clear()
        self._platforms.clear()
