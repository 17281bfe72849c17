"""A worker's own role on its result database, as its result_backend connects:
what the catalogs say it may do (read in a read-only transaction), and a
proof that it may write results (in a transaction that is rolled back).
Nothing is ever committed: the connection runs in autocommit mode and every
transaction this opens ends with ROLLBACK."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cadasta_toolbox.schema import RESULT_SEQUENCES, RESULT_TABLES
from pytest_cadasta.basics.errors import NotReached

if TYPE_CHECKING:
    from pytest_cadasta.audit.target import DatabaseTarget

#: What a statement may take (a live database: never wait on its locks).
STATEMENT_TIMEOUT = "5s"
LOCK_TIMEOUT = "2s"
#: Every privilege a relation can be granted, by kind.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES",
                    "TRIGGER")
#: Those that may be granted on columns alone (has_any_column_privilege sees both).
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")
KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "S": "sequence",
         "f": "foreign table"}
#: How many of the newest stored results the audit reads as the platform would.
STORED_RESULTS = 50
#: What Celery stores as the result of a task with none yet (pickle of None).
PICKLED_NONE = b"\x80\x04N."
#: Schemas of PostgreSQL itself (a condition on ``n``, pg_namespace).
SYSTEM_SCHEMAS = ("n.nspname NOT IN ('pg_catalog', 'information_schema') "
                  "AND n.nspname !~ '^pg_(toast|temp_)'")


@dataclass(frozen=True)
class Touchable:
    """A relation other than the result tables that the role may touch."""

    name: str
    kind: str
    privileges: tuple[str, ...]
    #: Granted to PUBLIC (every role), not to this one alone.
    public: bool


@dataclass(frozen=True)
class RoleFacts:
    """What the catalogs say of the role, read once."""

    role: str
    superuser: bool
    create_role: bool
    create_db: bool
    #: The database lets it create schemas.
    create_schema: bool
    #: Schemas in which it may create tables.
    create_in: tuple[str, ...]
    #: Table or sequence -> its qualified name (absent: no such relation on the
    #: search path).
    found: dict[str, str]
    #: Result table -> its columns.
    columns: dict[str, tuple[str, ...]]
    #: Result table or sequence -> the privileges the role has on it.
    privileges: dict[str, tuple[str, ...]]
    #: Every other table, view or sequence it may touch.
    others: tuple[Touchable, ...]


class WorkerRole:
    """One worker's role on its result database; connects on first use."""

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self._connection: Any = None
        #: Why it could not connect, once: asked again, the database is not
        #: waited for again.
        self._unreached: NotReached | None = None
        self._facts: RoleFacts | None = None
        self._probe: dict[str, str | None] | None = None

    @property
    def named(self) -> str:
        """The database and role, for messages (no password)."""
        return f"{self.target.where} as role {self.target.role!r}"

    def _why(self, exc: BaseException) -> str:
        from pytest_cadasta.services.postgres import Server, why_unusable

        target = self.target
        return why_unusable(exc, Server(target.host, target.port, target.role,
                                        target.password, target.database), None)

    def connection(self) -> Any:
        """A connection as the worker's role, in autocommit mode (every
        transaction here is opened, and rolled back, explicitly)."""
        if self._unreached is not None:
            raise NotReached(str(self._unreached))
        if self._connection is None:
            import psycopg

            from pytest_cadasta.audit.target import CONNECT_TIMEOUT

            target = self.target
            if target.problem is not None:
                raise NotReached(target.problem)
            params = {"connect_timeout": CONNECT_TIMEOUT,
                      "application_name": "pytest-cadasta audit", **target.options}
            try:
                connection = psycopg.connect(host=target.host, port=target.port,
                                             dbname=target.database, user=target.role,
                                             password=target.password, autocommit=True,
                                             **params)
            except Exception as exc:
                self._unreached = NotReached(f"the result database {self.named} refused or "
                                             f"did not answer: {self._why(exc)}")
                raise NotReached(str(self._unreached)) from None
            self._connection = connection
        return self._connection

    def _rows(self, cursor: Any, sql: str, args: tuple = ()) -> list[tuple]:
        return cursor.execute(sql, args).fetchall()

    @contextmanager
    def _read_only(self, failing: str) -> Iterator[Any]:
        """A cursor in a read-only transaction, rolled back at the end; a
        database error is ``NotReached``: the database ``failing`` (did not
        answer the catalogs, say) and why."""
        import psycopg

        connection = self.connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN READ ONLY")
                try:
                    yield cursor
                finally:
                    cursor.execute("ROLLBACK")
        except psycopg.Error as exc:
            raise NotReached(f"the result database {self.named} {failing}: "
                             f"{self._why(exc)}") from None

    def facts(self) -> RoleFacts:
        """The catalogs' word on the role, read in one read-only transaction."""
        if self._facts is None:
            with self._read_only("did not answer the catalogs") as cursor:
                self._facts = self._read_facts(cursor)
        return self._facts

    def _read_facts(self, cursor: Any) -> RoleFacts:
        cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        role, superuser, create_role, create_db, create_schema = self._rows(cursor, """
            SELECT rolname, rolsuper, rolcreaterole, rolcreatedb,
                   has_database_privilege(current_database(), 'CREATE')
            FROM pg_roles WHERE rolname = current_user""")[0]
        create_in = tuple(name for (name,) in self._rows(cursor, f"""
            SELECT n.nspname FROM pg_namespace n
            WHERE {SYSTEM_SCHEMAS} AND has_schema_privilege(n.oid, 'CREATE')
            ORDER BY n.nspname"""))
        found: dict[str, str] = {}
        oids: dict[str, int] = {}
        for name in (*RESULT_TABLES, *RESULT_SEQUENCES):
            for oid, qualified in self._rows(cursor, """
                    SELECT c.oid::int, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.oid = to_regclass(%s)""", (name,)):
                found[name], oids[name] = qualified, oid
        columns = {table: tuple(name for (name,) in self._rows(cursor, """
            SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0
            AND NOT attisdropped ORDER BY attnum""", (oids[table],)))
            for table in RESULT_TABLES if table in oids}
        privileges = {name: self._privileges(cursor, oids[name], name in RESULT_SEQUENCES)
                      for name in oids}
        others = self._others(cursor, tuple(oids.values()))
        return RoleFacts(role, superuser, create_role, create_db, create_schema, create_in,
                         found, columns, privileges, others)

    def _privileges(self, cursor: Any, oid: int, sequence: bool, who: str = "current_user",
                    ) -> tuple[str, ...]:
        if sequence:
            checks = [f"has_sequence_privilege({who}, %s::oid, '{p}')"
                      for p in SEQUENCE_PRIVILEGES]
            names = SEQUENCE_PRIVILEGES
        else:
            checks = [f"has_any_column_privilege({who}, %s::oid, '{p}')"
                      if p in COLUMN_PRIVILEGES else f"has_table_privilege({who}, %s::oid, '{p}')"
                      for p in TABLE_PRIVILEGES]
            names = TABLE_PRIVILEGES
        row = self._rows(cursor, f"SELECT {', '.join(checks)}", (oid,) * len(checks))[0]
        return tuple(name for name, held in zip(names, row) if held)

    def _others(self, cursor: Any, result_oids: tuple[int, ...]) -> tuple[Touchable, ...]:
        """Every table, view and sequence outside the result tables (and the
        sequences they own) on which the role holds any privilege."""
        relations = self._rows(cursor, f"""
            SELECT c.oid::int, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                   c.relkind::text
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {SYSTEM_SCHEMAS}
              AND NOT (c.oid = ANY(%s))
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.refobjid = ANY(%s)
                              AND d.deptype IN ('a', 'i'))
            ORDER BY 2""", (list(result_oids), list(result_oids)))
        found = []
        for oid, name, kind in relations:
            held = self._privileges(cursor, oid, kind == "S")
            if held:
                public = bool(self._privileges(cursor, oid, kind == "S", who="'public'"))
                found.append(Touchable(name, KINDS.get(kind, kind), held, public))
        return tuple(found)

    def probe_writes(self, columns: tuple[str, ...]) -> dict[str, str | None]:
        """Each of SELECT, INSERT and UPDATE on celery_taskmeta as Celery makes
        them (``columns``: those it writes that the table has), tried in one
        transaction that is rolled back: statement -> why it was refused (None:
        it was not). The row gets an id of its own, not the sequence's next
        value: a sequence is not rolled back."""
        if self._probe is None:
            import psycopg

            table = "celery_taskmeta"
            task_id = f"pytest-cadasta-audit-{secrets.token_hex(8)}"
            row_id = -secrets.randbelow(2**30) - 1
            values = {"id": row_id, "task_id": task_id, "status": "PENDING",
                      "result": PICKLED_NONE}
            given = [c for c in columns if c in values]
            rest = [c for c in columns if c not in values and c != "date_done"]
            inserted = given + rest + (["date_done"] if "date_done" in columns else [])
            placeholders = ", ".join(["%s"] * (len(given) + len(rest))
                                     + (["now()"] if "date_done" in columns else []))
            updated = ["status = 'SUCCESS'"] + [f"{c} = {c}" for c in rest + given
                                                if c not in ("id", "task_id", "status")]
            if "date_done" in columns:
                updated.append("date_done = now()")
            statements = {
                "SELECT": (f"SELECT {', '.join(columns)} FROM {table} WHERE task_id = %s",
                           (task_id,)),
                "INSERT": (f"INSERT INTO {table} ({', '.join(inserted)}) VALUES "
                           f"({placeholders})",
                           tuple(values[c] for c in given) + (None,) * len(rest)),
                "UPDATE": (f"UPDATE {table} SET {', '.join(updated)} WHERE task_id = %s",
                           (task_id,)),
            }
            refused: dict[str, str | None] = {}
            connection = self.connection()
            try:
                with connection.cursor() as cursor:
                    cursor.execute("BEGIN")
                    try:
                        cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
                        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                        for verb, (sql, args) in statements.items():
                            cursor.execute("SAVEPOINT cadasta_audit")
                            try:
                                cursor.execute(sql, args)
                                refused[verb] = None
                            except psycopg.Error as exc:
                                cursor.execute("ROLLBACK TO SAVEPOINT cadasta_audit")
                                refused[verb] = self._why(exc)
                    finally:
                        cursor.execute("ROLLBACK")
            except psycopg.OperationalError as exc:
                raise NotReached(f"the result database {self.named} went away: "
                                 f"{self._why(exc)}") from None
            self._probe = refused
        return self._probe

    def stored_results(self, table: str, limit: int = STORED_RESULTS) -> list[tuple]:
        """The last ``limit`` rows of ``table`` (celery_taskmeta, qualified)
        that hold a result, newest first, as (task_id, status, result): read
        in a read-only transaction."""
        with self._read_only("did not give its stored results") as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
            return self._rows(cursor, f"""
                SELECT task_id, status, result FROM {table}
                WHERE result IS NOT NULL ORDER BY id DESC LIMIT %s""", (limit,))

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
