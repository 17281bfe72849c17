"""The result schema on a real PostgreSQL: idempotent, and a worker role that
may touch the result tables and nothing else."""

import psycopg
import pytest

from cadasta_toolbox.schema import SCHEMA_SQL, apply_result_schema
from pytest_cadasta.model.task_table import TASK_TABLE_SQL
from pytest_cadasta.services.postgres import server_from_url
from pytest_cadasta.services.resultdb import ResultDatabase


@pytest.fixture
def database(shared_pg_url):
    db = ResultDatabase(server_from_url(shared_pg_url), more_tables=(TASK_TABLE_SQL,)).create()
    yield db
    db.drop()


def worker_connection(db):
    server = db.server
    return psycopg.connect(host=server.host, port=server.port, user=db.role,
                           password=db.password, dbname=db.dbname, autocommit=True)


def test_worker_role_holds_exactly_the_result_privileges(database):
    assert database.role_privileges() == {
        (table, privilege)
        for table in ("celery_taskmeta", "celery_tasksetmeta")
        for privilege in ("SELECT", "INSERT", "UPDATE")}


def test_applying_twice_changes_nothing_but_the_password(database):
    with database.admin_connection() as connection:
        apply_result_schema(connection, database.role, "second-password", SCHEMA_SQL)
    assert len(database.role_privileges()) == 6
    database.password = "second-password"
    with worker_connection(database) as connection:
        assert connection.execute("SELECT count(*) FROM celery_taskmeta").fetchone() == (0,)


def test_worker_role_can_write_results_but_not_create_or_delete(database):
    with worker_connection(database) as connection:
        connection.execute(
            "INSERT INTO celery_taskmeta (task_id, status) VALUES ('t1', 'SUCCESS')")
        connection.execute("UPDATE celery_taskmeta SET status = 'FAILURE' WHERE task_id = 't1'")
        for forbidden in ("CREATE TABLE stolen (x int)",
                          "DELETE FROM celery_taskmeta",
                          "DROP TABLE celery_taskmeta"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(forbidden)


def test_worker_role_needs_its_password(database):
    database.password = "wrong"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        worker_connection(database)


def test_celery_writes_its_results_and_groups_under_the_role(database):
    """Celery's create_all finds everything it needs without result_extended,
    and under the role stores a result and a chord's group."""
    from celery import Celery

    app = Celery("schema", set_as_current=False)
    app.conf.result_backend = "db+" + database.worker_url()
    app.backend.store_result("t2", {"ok": True}, "SUCCESS")
    assert app.backend.get_task_meta("t2")["status"] == "SUCCESS"
    app.backend.save_group("g1", app.GroupResult("g1", []))
    assert database.rows("t2")[0]["status"] == "SUCCESS"


def test_the_default_result_table_is_the_platforms_without_the_extended_columns(database):
    """The platform's Result table plus children: Celery's result_extended
    columns are missing, as on the platform, so an app that sets it cannot store."""
    from celery import Celery

    assert database.columns("celery_taskmeta") == (
        "id", "task_id", "status", "result", "date_done", "traceback", "children")
    app = Celery("schema", set_as_current=False)
    app.conf.result_backend = "db+" + database.worker_url()
    app.conf.result_extended = True
    app.conf.result_backend_always_retry = False
    with pytest.raises(Exception, match="celery_taskmeta.name"):
        app.backend.store_result("t3", {"ok": True}, "SUCCESS")


def test_the_platforms_task_table_stands_beside_and_the_worker_role_may_not_touch_it(database):
    with database.admin_connection() as connection:
        columns = [name for (name,) in connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'tasks_backgroundtask' ORDER BY ordinal_position")]
    assert columns[:7] == ["id", "task_id", "type", "created_date", "last_updated", "input",
                           "options"]
    with worker_connection(database) as connection:
        for forbidden in ("SELECT count(*) FROM tasks_backgroundtask",
                          "INSERT INTO tasks_backgroundtask (id) VALUES ('x')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(forbidden)
