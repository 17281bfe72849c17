"""result: results reach the platform's PostgreSQL result table, written by the
restricted worker role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cadasta_toolbox.masking import mask_url
from pytest_cadasta.apps.probes import PROBE_FAILURE_MESSAGE
from pytest_cadasta.basics.protocol import TOOLBOX, fail
from pytest_cadasta.checks.common import row_text
from pytest_cadasta.checks.registry import Phase, check

if TYPE_CHECKING:
    from pytest_cadasta.running.app_state import AppState


@check("result")
def backend_is_postgresql_through_the_database_backend(c: AppState, _: Any) -> None:
    """Results written anywhere but the platform's PostgreSQL result table are
    results the platform never shows (its Result model reads celery_taskmeta
    where its search path finds it).

    Evidence: your ``result_backend`` (shown with the password masked),
    ``database_table_names`` and ``database_table_schemas``."""
    backend = c.original.get("result_backend")
    shown = mask_url(backend) if isinstance(backend, str) else backend
    if not (isinstance(backend, str) and backend.startswith(("db+postgresql", "db+postgres:"))):
        fail(saw=f"result_backend = {shown!r}",
             needs="Celery's database backend on the platform's PostgreSQL "
                   "(table celery_taskmeta)",
             fix="result_backend = 'db+postgresql://USER:PASS@HOST:PORT/NAME' "
                 f"({TOOLBOX} builds it from RESULT_DB_*)")
    tables = c.app.conf.database_table_names or {}
    if tables.get("task", "celery_taskmeta") != "celery_taskmeta":
        fail(saw=f"database_table_names = {tables!r}",
             needs="results in celery_taskmeta, the table the platform reads",
             fix="remove database_table_names")
    schemas = c.app.conf.get("database_table_schemas") or {}
    if schemas.get("task") or schemas.get("group"):
        fail(saw=f"database_table_schemas = {schemas!r}: results go to "
                 f"{schemas.get('task') or 'public'}.celery_taskmeta",
             needs="results in celery_taskmeta of the schema the platform's Result model "
                   "reads (its database user's search path: public)",
             fix="remove database_table_schemas")


@check("result", phase=Phase.WITH_WORKER)
def success_leaves_a_success_row(c: AppState, _: Any) -> None:
    """A worker that cannot write its results (privileges, missing columns, a
    foreign key to the Task table) leaves the platform showing tasks that never
    finish.

    Evidence: *worker*: a probe run by the worker leaves a SUCCESS row in
    ``celery_taskmeta``, written as the restricted role, with no Task row present."""
    result, _ended = c.run_in_worker(c.probes.probe(c.probes.home), args=("result",))
    row = c.row(result.id)
    if row is None or row["status"] != "SUCCESS":
        fail(saw=f"celery_taskmeta holds {row_text(row)} for a task that succeeded "
                 f"(written as role {c.result_db.role!r}, no Task row present): "
                 f"{c.events.story(result.id)}",
             needs="a SUCCESS row per task, written with credentials limited to the "
                   "result tables",
             fix="result_backend on the platform's database (Config's RESULT_DB_*); "
                 "run with -rA and see the worker's log for the error")


@check("result", phase=Phase.WITH_WORKER)
def failure_leaves_a_failure_row_with_traceback(c: AppState, _: Any) -> None:
    """A failure the platform cannot see is a user waiting forever for an export.

    Evidence: *worker*: a failing probe leaves a FAILURE row with its traceback."""
    result, _ended = c.run_in_worker(c.probes.failing(c.probes.home))
    row = c.row(result.id)
    if row is None or row["status"] != "FAILURE" or PROBE_FAILURE_MESSAGE not in (
            row["traceback"] or ""):
        fail(saw=f"celery_taskmeta holds {row_text(row)} for a task that raised",
             needs="a FAILURE row carrying the traceback",
             fix="result_backend on the platform's database; do not set "
                 "task_ignore_result or task_store_errors_even_if_ignored=False")


@check("result", phase=Phase.WITH_WORKER)
def started_state_is_tracked(c: AppState, _: Any) -> None:
    """Without STARTED the platform cannot tell a running export from a queued one.

    Evidence: *worker*: while it runs, a probe reads STARTED in its own row."""
    if not c.app.conf.task_track_started:
        fail(saw="task_track_started = False",
             needs="STARTED written when a task begins", fix="task_track_started = True")
    result, ended = c.run_in_worker(c.probes.started(c.probes.home))
    # The probe returns the status its own row held while it ran.
    seen = result.result if ended.info.get("state") == "SUCCESS" else None
    if seen != "STARTED":
        fail(saw=f"while running, the task's own row said {seen!r} "
                 f"({c.events.story(result.id)})",
             needs="status STARTED while the task runs", fix="task_track_started = True")
