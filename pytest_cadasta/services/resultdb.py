"""The throwaway result database: the platform's result tables (and any table
the caller adds, as the run adds the platform's Task table), a worker role that
may touch only the result tables, and helpers to read result rows."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cadasta_toolbox.schema import SCHEMA_SQL, apply_result_schema
from pytest_cadasta.basics.errors import InfrastructureError, first_line
from pytest_cadasta.services.postgres import Server

#: The columns ``rows()`` reads, those the table has (None for the others).
RESULT_COLUMNS = ("task_id", "status", "result", "traceback", "date_done", "name")

class ResultDatabase:
    """One throwaway database holding the result tables, dropped on ``drop()``."""

    def __init__(self, server: Server, schema_file: Path | None = None,
                 more_tables: tuple[str, ...] = ()) -> None:
        token = secrets.token_hex(4)
        self.server = server
        self.dbname = f"cadasta_results_{token}"
        self.role = f"cadasta_worker_{token}"
        self.password = secrets.token_urlsafe(18)
        self.schema_file = schema_file
        #: SQL of tables made beside the result tables, which the worker's
        #: role is given nothing of.
        self.more_tables = more_tables
        self._janitor: Any = None
        self._columns: dict[str, tuple[str, ...]] = {}
        #: The server's version, e.g. '15.14', once the database is made.
        self.server_version: str | None = None

    def create(self) -> ResultDatabase:
        import psycopg
        from pytest_postgresql.janitor import DatabaseJanitor

        server = self.server
        # One connection first, without the janitor's retries (they wait for a
        # server still starting): a refused connection or a wrong password is
        # known at once, in libpq's own words.
        self._connect(server.maintenance_db).close()
        janitor = DatabaseJanitor(
            user=server.user, host=server.host, port=server.port,
            password=server.password, dbname=self.dbname,
            maintenance_dbname=server.maintenance_db, connection_timeout=5)
        janitor.init()
        self._janitor = janitor  # only now is there something to drop
        schema = SCHEMA_SQL if self.schema_file is None else self.schema_file.read_text()
        with self.admin_connection() as connection:
            try:
                apply_result_schema(connection, self.role, self.password, schema)
            except psycopg.Error as exc:
                if self.schema_file is None:
                    raise
                raise InfrastructureError(_schema_error(self.schema_file, schema, exc)) from None
            for sql in self.more_tables:
                connection.execute(sql)
            connection.commit()
            version = connection.info.parameter_status("server_version") or ""
            self.server_version = version.split(" ")[0] or None
        if "task_id" not in self.columns("celery_taskmeta"):
            raise InfrastructureError(
                f"the result schema {self.schema_file} made no celery_taskmeta with a column "
                "task_id (the Result table Celery writes)")
        return self

    def drop(self) -> None:
        janitor, self._janitor = self._janitor, None
        if janitor is None or self.unreachable() is not None:
            return  # gone with its server (the janitor would retry for seconds)
        janitor.drop()
        # Roles belong to the server, not the database: drop ours too, if it was
        # made (a role without CREATEROLE may not even try to drop one).
        with janitor.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.role,))
            if cursor.fetchone():
                cursor.execute(f"DROP ROLE {self.role}")

    def unreachable(self) -> str | None:
        """Why the server refuses a session now (one line), or None."""
        import psycopg

        try:
            self._connect(self.server.maintenance_db, timeout=2).close()
        except psycopg.OperationalError as exc:
            return first_line(exc)
        return None

    def _connect(self, dbname: str, timeout: int = 10) -> Any:
        """A connection to ``dbname`` as the server's administrator."""
        import psycopg

        server = self.server
        return psycopg.connect(host=server.host, port=server.port, user=server.user,
                               password=server.password, dbname=dbname,
                               connect_timeout=timeout)

    def admin_connection_open(self) -> Any:
        """A connection to the database as the administrator, in autocommit
        (a ``transaction()`` block makes one); the caller closes it."""
        connection = self._connect(self.dbname)
        connection.autocommit = True
        return connection

    def columns(self, table: str) -> tuple[str, ...]:
        """The columns ``table`` has (none: no such table), read once."""
        if table not in self._columns:
            with self.admin_connection() as connection:
                found = connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "AND table_schema = current_schema() ORDER BY ordinal_position",
                    (table,)).fetchall()
            self._columns[table] = tuple(name for (name,) in found)
        return self._columns[table]

    def exists(self, name: str) -> bool:
        """Whether a table or sequence ``name`` exists (in the search path)."""
        with self.admin_connection() as connection:
            return connection.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None

    @contextmanager
    def admin_connection(self) -> Iterator[Any]:
        connection = self._connect(self.dbname)
        try:
            yield connection
        finally:
            connection.close()

    def worker_url(self, driver: str = "psycopg2") -> str:
        """The SQLAlchemy URL a worker writes results with (the restricted role)."""
        from sqlalchemy import URL

        url = URL.create(f"postgresql+{driver}", username=self.role,
                         password=self.password, host=self.server.host,
                         port=self.server.port, database=self.dbname)
        return url.render_as_string(hide_password=False)

    def rows(self, task_id: str | None = None) -> list[dict]:
        """Rows of ``celery_taskmeta`` (all, or the one of ``task_id``), oldest first;
        ``result`` and ``traceback`` as stored; a column the table lacks is None."""
        with self.admin_connection() as connection:
            return _select_rows(connection, task_id, self.columns("celery_taskmeta"))

    def wait_for_row(self, task_id: str, statuses: tuple[str, ...] = ("SUCCESS", "FAILURE"),
                     timeout: float = 60.0) -> dict | None:
        """The row of ``task_id`` once its status is one of ``statuses``, or the last
        row seen (None if none) when ``timeout`` runs out."""
        deadline = time.monotonic() + timeout
        # One connection for the whole wait, in autocommit so each poll sees the
        # worker's latest commit.
        with self.admin_connection() as connection:
            connection.autocommit = True
            while True:
                rows = _select_rows(connection, task_id, self.columns("celery_taskmeta"))
                row = rows[0] if rows else None
                if row is not None and row["status"] in statuses:
                    return row
                if time.monotonic() >= deadline:
                    return row
                time.sleep(0.05)

    def role_privileges(self) -> set[tuple[str, str]]:
        """(object, privilege) pairs the worker role holds, for the audit."""
        with self.admin_connection() as connection:
            cursor = connection.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s", (self.role,))
            return {(table, privilege) for table, privilege in cursor.fetchall()}


def _schema_error(path: Path, schema: str, exc: Any) -> str:
    """``path:line: the error``, the line found from PostgreSQL's position in
    the statement (the whole file is sent as one)."""
    position = getattr(getattr(exc, "diag", None), "statement_position", None)
    where = str(path)
    if position:
        where += f":{schema[:int(position)].count(chr(10)) + 1}"
    message = first_line(exc)
    return f"the result schema {where}: {message}"


def _select_rows(connection: Any, task_id: str | None, columns: tuple[str, ...]) -> list[dict]:
    present = [c for c in RESULT_COLUMNS if c in columns]
    query = f"SELECT {', '.join(present)} FROM celery_taskmeta"
    params: tuple = ()
    if task_id is not None:
        query += " WHERE task_id = %s"
        params = (task_id,)
    order = " ORDER BY id" if "id" in columns else ""
    cursor = connection.execute(query + order, params)
    return [{**dict.fromkeys(RESULT_COLUMNS), **dict(zip(present, row))}
            for row in cursor.fetchall()]
