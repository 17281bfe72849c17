"""platform: every task and result as the Cadasta platform records them: its
sync-tasks on the monitor queue, its Task table, its Result table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pytest_cadasta.basics.messages import ACCEPTED, SERIALIZER_FIX
from pytest_cadasta.basics.protocol import fail
from pytest_cadasta.checks.common import monitor_fix
from pytest_cadasta.checks.registry import Phase, check
from pytest_cadasta.model.sync_rules import TYPE_LENGTH
from pytest_cadasta.result_reading import Unreadable, read_result, unread
from pytest_cadasta.services.events import FINISHED

if TYPE_CHECKING:
    from pytest_cadasta.running.app_state import AppState

#: How many problems a failure lists before it counts the rest.
SHOWN = 5


def _listed(problems: list[str]) -> str:
    more = len(problems) - SHOWN
    return "; ".join(problems[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _as_json(value: Any) -> Any:
    """``value`` as the Task table's jsonb gives it back (tuples become lists)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return value


@check("platform")
def every_task_sent_is_recorded_by_the_platform(c: AppState, _: Any) -> None:
    """A task the platform's sync-tasks cannot record (a body it may not decode,
    a name too long for its Task table, a parent it never saw) is lost to the
    platform for good: its consumer logs the failure and acknowledges the
    message; no Task row, nothing for its result to join.

    Evidence: what the run's own sync-tasks recorded in the platform's Task table
    (``tasks_backgroundtask``) from the monitor queue: every task the checks sent, from
    the test and from inside the worker (follow-ups, chord parts and bodies,
    ``celery.chord_unlock``, errbacks), recorded once with its name, input, parent and
    root as sent; a task it could not record is named with the platform's reason (a body
    neither json nor pickle, a missing header, a name too long, a parent or root it
    never recorded) and the fix."""
    for queue in c.topology.work_queues:
        if c.sqs.refused(queue) is None:
            c.landing(queue)  # the probes from a fresh connection, sent once for the run
    sent = c.sent_by_checks()
    recorded = {task.task_id: task for task in c.platform.tasks()}
    refused = {refusal.task_id: refusal for refusal in c.platform.lost()}
    problems: list[str] = []
    fixes: list[str] = []
    for event in sent:
        name = event.name
        task = recorded.get(event.task_id)
        if task is None:
            refusal = refused.get(event.task_id)
            if refusal is not None:
                problems.append(f"{name!r} ({event.task_id}): {refusal.reason}")
                fixes.append(refusal.fix)
            else:
                problems.append(f"{name!r} ({event.task_id}) never reached "
                                f"{c.platform.monitor}")
                fixes.append(monitor_fix(c, c.probes.home))
            continue
        got = {"type": task.type, "parent": task.parent_id, "root": task.root_id,
               "input": task.input}
        # The platform records the first copy it reads; a retry sent under the
        # same id may overtake the first send in the monitor (they are sent by
        # two threads, or two processes, each a moment apart): either is right.
        wrongs = [_differences(got, send) for send in c.sends_of(event.task_id)]
        wrong = wrongs[0] if wrongs and all(wrongs) else []
        if wrong:
            problems.append(f"{name!r} ({event.task_id}) recorded with {', '.join(wrong)}")
            fixes.append("task_protocol = 2 (Celery's default), sent by Celery as it is")
    if problems:
        fail(saw=f"of {len(sent)} tasks the checks sent, the platform did not record "
                 f"{len(problems)} as sent: {_listed(problems)}",
             needs=f"every task message recorded once by the platform's sync-tasks (reading "
                   f"{c.platform.monitor}), with its name, input, parent and root",
             fix="; ".join(dict.fromkeys(fixes)))


def _serializer_fix() -> str:
    """The fix for results the platform cannot read."""
    from cadasta_toolbox.results import RESULT_SERIALIZER

    return (f"result_serializer = {RESULT_SERIALIZER!r} and result_accept_content = "
            f"['json', {RESULT_SERIALIZER!r}] (cadasta_toolbox.config.Config's defaults; "
            "a plain Celery app imports cadasta_toolbox.results first)")


#: The fix for each kind of row that does not join its task as stored.
_JOIN_FIXES = {
    "status": "result_backend on the platform's database, table celery_taskmeta "
              "(cadasta_toolbox.config.Config's RESULT_DB_*)",
    "traceback": "result_backend on the platform's database (Celery's database backend "
                 "stores a failure's traceback beside it)",
    "started": "task_track_started = True (cadasta_toolbox.config.Config's default)",
}


def _differences(got: dict[str, Any], send: Any) -> list[str]:
    """How the platform's record ``got`` differs from one publish of its task
    (``send``: its name, Celery's headers and body), each as 'key recorded
    (sent ...)'."""
    info = send.info
    expected = {"type": send.name, "parent": info.get("parent_id"),
                "root": info.get("root_id"),
                "input": {"args": _as_json(list(info.get("args") or ())),
                          "kwargs": _as_json(info.get("kwargs") or {})}}
    return [f"{key} {got[key]!r} (sent {expected[key]!r})" for key in expected
            if info.get("args") is not None or key != "input"
            if got[key] != expected[key]]


def _ended(c: AppState) -> dict[str, tuple[str, str]]:
    """The tasks the checks sent that ran to their end, task_id -> (name, the
    state the worker stored): a task that succeeds and one that fails, of the
    check's own when none has run yet (a check run alone, -k). Celery's own
    tasks (chord_unlock) store no result: the platform skips them."""
    if not any(c.events.of(e.task_id, (FINISHED,)) for e in c.sent_by_checks()):
        c.run_in_worker(c.probes.probe(c.probes.home), args=("platform",))
        c.run_in_worker(c.probes.failing(c.probes.home))
    ended = {}
    for event in c.sent_by_checks():
        finished = c.events.of(event.task_id, (FINISHED,))
        if finished and not (event.name or "").startswith("celery."):
            ended[event.task_id] = (event.name, finished[-1].info.get("state"))
    return ended


@check("platform", phase=Phase.WITH_WORKER)
def results_join_their_tasks_as_the_worker_stored_them(c: AppState, _: Any) -> None:
    """The platform shows a task's status from the result row that joins its
    Task row by task_id (none: PENDING): a result stored where the platform
    does not join it is a task that never ends in its eyes.

    Evidence: *worker*: each task the worker ran, as the platform shows it (its Task row
    joined by ``task_id`` to its result row): the status the worker stored (SUCCESS;
    FAILURE with its traceback; STARTED while it ran, which the started probe read in
    that very row)."""
    c.fail_if_results_cannot_land()
    # The outcomes first, then the view: a row is stored before its run ends, so
    # the view read after holds every outcome read before.
    ended = _ended(c)
    recorded = {task.task_id: task for task in c.platform.tasks()}
    problems: list[str] = []
    fixes: list[str] = []  # each problem's own cause
    checked = 0
    for task_id, (name, state) in ended.items():
        task = recorded.get(task_id)
        if task is None or state not in ("SUCCESS", "FAILURE"):
            continue  # not recorded (the check above says why), or not run to its end
        checked += 1
        if task.status != state:
            problems.append(f"{name!r} ({task_id}): the worker stored {state}, the platform "
                            f"shows {task.status}")
            fixes.append(_JOIN_FIXES["status"])
        elif state == "FAILURE" and not task.traceback:
            problems.append(f"{name!r} ({task_id}): FAILURE without its traceback")
            fixes.append(_JOIN_FIXES["traceback"])
        elif name == c.probes.started(c.probes.home):
            try:
                seen = read_result(task.result) if task.result is not None else None
            except Unreadable as exc:
                problems.append(f"{name!r} ({task_id}): its result holds {exc.what}, which "
                                "the platform cannot read (see "
                                "every_result_reads_as_the_platform_unpickles_it)")
                fixes.append(_serializer_fix())
                continue
            if seen != "STARTED":
                problems.append(f"while it ran, {name!r} read {seen!r} in the row the "
                                "platform joins, not STARTED")
                fixes.append(_JOIN_FIXES["started"])
    if not checked and not problems:
        lost = c.platform.lost()
        fail(saw="the platform recorded none of the tasks the worker ran, so no result "
                 "joins a task" + (f": {lost[0].reason}" if lost else ""),
             needs="each task recorded by the platform, for its result row to join it",
             fix=lost[0].fix if lost else "see every_task_sent_is_recorded_by_the_platform")
    if problems:
        fail(saw=_listed(problems),
             needs="each result row joining its task's Task row by task_id, its status the "
                   "one the worker stored (STARTED while it runs, SUCCESS, FAILURE with its "
                   "traceback)",
             fix="; ".join(dict.fromkeys(fixes)))


@check("platform", phase=Phase.WITH_WORKER)
def every_result_reads_as_the_platform_unpickles_it(c: AppState, _: Any) -> None:
    """The platform reads each result row it loads with pickle, in a process
    that has its own code and not the worker's: a row it cannot read fails
    every page that shows the task, its status included. Celery 5.7 and later
    store a result in the app's result_serializer (json, by default: no
    pickle); an exception pickled as itself needs the worker's code to read.

    Evidence: *worker*: every result row the worker stored for the checks' tasks
    (values, a failure, the started probe's), read as the platform's Result model reads
    it: ``pickle.loads``, in a process that has the platform's code and libraries (the
    standard library, Celery, kombu, Django), never the worker's. Celery before 5.7
    pickled every result into that column; 5.7 and later store it in
    ``result_serializer``, so json results are no pickle at all, and ``pickle`` stores
    an exception as its own class. ``Config`` stores results in ``'cadasta-pickle'``
    (``cadasta_toolbox.results``): a pickle that holds no class or function of the
    worker's code. The check reads the rows of the probes' tasks, not your tasks': an
    argument of your exception that only your code can read is stored as its ``repr``,
    and (from Celery 5.7, which stores results through the serializer) a return value of
    a class of your own fails its task with an ``EncodeError`` naming the class."""
    c.fail_if_results_cannot_land()
    ended = _ended(c)
    stored = [task for task in c.platform.tasks()
              if task.task_id in ended and task.result is not None]
    found = unread(((f"{ended[task.task_id][0]!r} ({ended[task.task_id][1]})", task.result)
                    for task in stored), read_result)
    if found is not None:
        fail(saw=f"of {len(stored)} result rows the worker stored, the platform cannot read "
                 f"{found} (result_serializer "
                 f"{c.app.conf.result_serializer!r})",
             needs="every result row a pickle the platform can read without the worker's "
                   "code: values of the standard library's and Celery's types, an exception "
                   "as its type, module and arguments",
             fix=_serializer_fix())


@check("platform", judges_worker=True)
def every_task_of_the_worker_stores_its_result(c: AppState, _: Any) -> None:
    """A task that stores no result has no row for the platform to join: it
    shows PENDING forever, however it ended.

    Evidence: *worker*: ``ignore_result`` of every task the worker registers (app-wide:
    ``task_ignore_result``); names those that store nothing. Celery's own tasks
    (``celery.chord_unlock``) aside: the platform leaves them out of a family's status."""
    ignored = sorted(name for name in c.own_tasks() if c.app.tasks[name].ignore_result)
    if ignored:
        app_wide = bool(c.app.conf.task_ignore_result)
        fail(saw=f"{len(ignored)} of the worker's tasks store no result (ignore_result"
                 f"{' = True app-wide: task_ignore_result' if app_wide else '=True'}): "
                 f"{', '.join(map(repr, ignored[:SHOWN]))}"
                 + (f" and {len(ignored) - SHOWN} more" if len(ignored) > SHOWN else ""),
             needs="every task of the worker storing its result (Celery's own, like "
                   "celery.chord_unlock, aside: the platform leaves them out)",
             fix="task_ignore_result = False" if app_wide else
                 "remove ignore_result=True from those tasks")


@check("platform")
def every_task_is_sent_as_the_platform_decodes(c: AppState, _: Any) -> None:
    """A task whose own settings send it in a serializer the platform's
    sync-tasks does not accept (or compressed as kombu cannot undo) is lost
    to the platform with every message, whatever the app's defaults.

    Evidence: the serializer and compression of every task the app registers (its own
    ``serializer=``, ``task_annotations``, else the app's defaults)."""
    from kombu.compression import get_encoder

    def known(compression: str) -> bool:
        try:
            get_encoder(compression)
        except Exception:  # kombu: no such compression
            return False
        return True

    odd = []
    for name in c.own_tasks():
        task = c.app.tasks[name]
        serializer = getattr(task, "serializer", None) or c.app.conf.task_serializer
        compression = getattr(task, "compression", None) or c.app.conf.task_compression
        if serializer not in ACCEPTED.values():
            odd.append(f"{name!r} (serializer {serializer!r})")
        elif compression and not known(compression):
            odd.append(f"{name!r} (compression {compression!r})")
    if odd:
        fail(saw=f"tasks sent in what sync-tasks cannot decode: {_listed(odd)}",
             needs="every task message in json or pickle, the two the platform's sync-tasks "
                   "accepts",
             fix=f"{SERIALIZER_FIX}; drop serializer= from those tasks (and from "
                 "task_annotations)")


@check("platform")
def task_names_fit_the_task_table(c: AppState, _: Any) -> None:
    """A task whose name is longer than the Task table's type column is a task
    the platform can never record.

    Evidence: the length of every task name the app registers, against the Task table's
    ``type`` (128 characters)."""
    long = [name for name in c.own_tasks() if len(name) > TYPE_LENGTH]
    if long:
        shown = ", ".join(f"{name[:40]!r}... ({len(name)} characters)" for name in long[:SHOWN])
        fail(saw=f"task names longer than {TYPE_LENGTH} characters: {shown}",
             needs=f"every task name within {TYPE_LENGTH} characters (the platform's Task "
                   "table, tasks_backgroundtask.type)",
             fix=f"rename those tasks within {TYPE_LENGTH} characters")


@check("platform", judges_worker=True)
def results_fit_the_platforms_result_table(c: AppState, _: Any) -> None:
    """A result table that lacks a column this Celery writes (``children``, or
    the ``result_extended`` ones, which the platform's never had) fails every
    result store: every task stays PENDING on the platform.

    Evidence: *worker*: the columns the app's Celery writes to ``celery_taskmeta``
    (``children``; with ``result_extended``, six more) against the table the result
    schema made, ``celery_tasksetmeta`` and the sequences; names what is missing with
    the ``ALTER TABLE`` (or ``CREATE``) the platform's operator runs, or
    ``result_extended`` as the setting that asks for columns the platform never had. The
    worker checks that store results say the same at once instead of waiting for
    Celery's retries."""
    c.fail_if_results_cannot_land()
