"""deployment: the audit of a real deployment (``--cadasta-audit``), read-only:
its SQS queues and monitor under the app's prefix in its region, and the
worker's own role on its result database.

Each takes an ``AppAudit`` (the monitor's, with several apps, the
``SystemAudit``); a part that cannot be reached fails its own check (the
endpoint's, the connection's) and leaves the checks standing on it unjudged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.routes import routed_queue
from pytest_cadasta.audit.queues import days, redrive
from pytest_cadasta.basics.errors import NotReached
from pytest_cadasta.basics.ids import DEPLOYMENT, SYSTEM
from pytest_cadasta.basics.protocol import TOOLBOX, CheckSkipped, fail
from pytest_cadasta.checks.registry import check
from pytest_cadasta.model.result_table import GROUP_TABLE, TASK_TABLE, column_fault, written_columns
from pytest_cadasta.services.sqs import sqs_queue_name

if TYPE_CHECKING:
    from pytest_cadasta.audit.database import RoleFacts
    from pytest_cadasta.audit.queues import DeployedQueues
    from pytest_cadasta.audit.state import AppAudit, SystemAudit

#: How many objects a failure names before it counts the rest.
SHOWN = 12
#: The schema's SQL, for the fixes that create a result table.
SCHEMA = "cadasta_toolbox.schema.SCHEMA_SQL"


def _some(items: list[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _seconds(limit: float) -> int:
    """A time limit as whole seconds, rounded up (SQS takes integers)."""
    return int(-(-limit // 1))


def _queue_note(queues: DeployedQueues, sqs_name: str) -> str:
    attributes = queues.attributes(sqs_name)
    return (f"{sqs_name}: retention {days(attributes.get('MessageRetentionPeriod'))}, "
            f"{redrive(attributes)}, visibility timeout "
            f"{attributes.get('VisibilityTimeout', '?')} s")


def _missing_queue(queues: DeployedQueues, name: str, sqs_name: str) -> str:
    """What was seen of a queue that is not where the app looks for it."""
    listing = queues.listing()
    predefined = dict(queues.target.predefined)
    if predefined:  # kombu lists nothing: the app's own URLs are where it looks
        if sqs_name not in predefined:
            return (f"no entry {sqs_name!r} in the app's predefined_queues (kombu raises "
                    f"UndefinedQueueException for queue {name!r})")
        return (f"the predefined URL of {sqs_name}, {predefined[sqs_name]}, names no queue "
                f"{queues.where} answers for")
    prefix = queues.target.prefix
    under = (f"queues under the prefix {prefix!r}: {_some(sorted(listing))}" if listing
             else f"no queue at all under the prefix {prefix!r}")
    seen = f"no queue {sqs_name} at {queues.where} ({under})"
    elsewhere = queues.elsewhere(sqs_queue_name("", name)) if prefix else None
    if elsewhere is not None:
        seen += f"; a queue {elsewhere.rsplit('/', 1)[-1]} exists without the prefix"
    return seen


def _create_fix(queues: DeployedQueues, sqs_name: str, attributes: str = "") -> str:
    predefined = dict(queues.target.predefined)
    if predefined and sqs_name not in predefined:
        from pytest_cadasta.basics.topology import Predefined

        return (f"add {Predefined(tuple(predefined.items())).entry_for(sqs_name)} to "
                "broker_transport_options['predefined_queues'] (and create the queue at that "
                "URL if it does not exist)")
    if predefined:
        return (f"create the queue at {predefined[sqs_name]} (aws sqs create-queue --region "
                f"{queues.target.region} --queue-name {predefined[sqs_name].rsplit('/', 1)[-1]}"
                f"{attributes}), or correct its URL in predefined_queues")
    return (f"create it: aws sqs create-queue --region {queues.target.region} --queue-name "
            f"{sqs_name}{attributes} (or give the app the deployment's prefix and region: "
            "broker_transport_options 'queue_name_prefix' and 'region', Config's QUEUE_PREFIX)")


# -- SQS ---------------------------------------------------------------------------------


@check(DEPLOYMENT)
def sqs_endpoint_answers_the_workers_credentials(c: AppAudit, _: Any) -> None:
    """A worker whose broker is not SQS, or whose SQS endpoint does not answer
    its credentials in its region, consumes nothing the platform sends and
    sends nothing the platform's monitor sees.

    Evidence: the broker is SQS (else it fails naming the transport); one ``ListQueues``
    under the prefix, answered, with the worker's credentials."""
    sqs = c.target.sqs
    try:
        c.reach_queues()
    except NotReached as exc:
        if not sqs.is_sqs:
            fail(saw=f"broker {sqs.broker} (transport {sqs.transport!r})",
                 needs="SQS, where the platform's queues and its monitor are",
                 fix=f"broker_url = 'sqs://' ({TOOLBOX} sets broker_transport 'sqs')")
        fail(saw=str(exc),
             needs=f"the SQS endpoint answering the worker's credentials in region "
                   f"{sqs.region}, as the worker would reach it",
             fix="check the endpoint (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL or the broker "
                 "URL's host), the region (broker_transport_options 'region') and the "
                 "worker's credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the "
                 "broker URL's)")


@check(DEPLOYMENT, per_queue=True)
def work_queue_exists_under_the_prefix(c: AppAudit, queue: str) -> list[str]:
    """A work queue missing from the deployment is made by whichever worker or
    producer declares it first, with kombu's defaults (a 30-minute visibility
    timeout, no redrive policy), and only if its credentials may create
    queues; otherwise every task routed there is lost.

    Evidence: each work queue's SQS name (kombu's: prefix, dots to dashes) among the
    queues listed; a miss names the queues there are and a queue of the same name
    without the prefix. Reports its retention, redrive policy and visibility timeout."""
    queues = c.queues()
    sqs_name = dict(c.target.sqs.queues)[queue]
    if queues.url(sqs_name) is None:
        limits = [limit for routed, limit in _acks_late(c).values()
                  if routed == queue and limit is not None]
        fail(saw=_missing_queue(queues, queue, sqs_name),
             needs=f"work queue {queue!r} deployed as {sqs_name} in region "
                   f"{c.target.sqs.region}",
             fix=_create_fix(queues, sqs_name, f" --attributes VisibilityTimeout="
                             f"{_seconds(max(limits))}" if limits else ""))
    return [_queue_note(queues, sqs_name)]


@check(DEPLOYMENT, shared=True)
def monitor_queue_exists(c: AppAudit | SystemAudit, _: Any) -> list[str]:
    """Without the monitor queue, the platform's sync-tasks reads nothing: no
    task sent is ever recorded, and the platform shows none of them.

    Evidence: the monitor's SQS name among the queues listed (with several apps, each
    distinct monitor once). Reports its retention and redrive policy."""
    missing, notes = [], []
    for monitor in c.monitors():
        if monitor.queues.url(monitor.sqs_name) is None:
            missing.append((monitor, _missing_queue(monitor.queues, monitor.name,
                                                    monitor.sqs_name)))
        else:
            notes.append(_queue_note(monitor.queues, monitor.sqs_name))
    if missing:
        monitor = missing[0][0]
        fail(saw="; ".join(seen for _, seen in missing),
             needs="the platform's monitor queue, a FIFO queue, under the apps' prefix in "
                   "their region",
             fix=_create_fix(monitor.queues, monitor.sqs_name,
                             " --attributes FifoQueue=true"))
    return notes


@check(DEPLOYMENT, shared=True)
def monitor_queue_is_fifo(c: AppAudit | SystemAudit, _: Any) -> None:
    """A monitor that is not a FIFO queue hands sync-tasks a task's messages
    out of order and, at times, twice: a follow-up recorded before its parent,
    a task recorded twice.

    Evidence: the monitor's ``FifoQueue`` attribute."""
    present = [m for m in c.monitors() if m.queues.url(m.sqs_name) is not None]
    if not present:
        raise CheckSkipped("not judged: no monitor queue (see monitor_queue_exists)")
    standard = [m for m in present
                if m.queues.attributes(m.sqs_name).get("FifoQueue", "false").lower() != "true"]
    if standard:
        monitor = standard[0]
        named = ", ".join(m.sqs_name for m in standard)
        fix = (f"delete it and create it again as a FIFO queue (SQS cannot change a queue's "
               f"type): aws sqs create-queue --region {monitor.queues.target.region} "
               f"--queue-name {monitor.sqs_name} --attributes FifoQueue=true")
        if not monitor.sqs_name.endswith(".fifo"):
            fix = (f"name the monitor so it ends in '.fifo' (PLATFORM_QUEUE_NAME = "
                   f"'platform.fifo', as {TOOLBOX} does), then create that queue with "
                   "--attributes FifoQueue=true")
        fail(saw=f"{named} is a standard queue (its FifoQueue attribute is not true)",
             needs="the monitor queue a FIFO queue",
             fix=fix)


def _acks_late(c: AppAudit) -> dict[str, tuple[str | None, Any]]:
    """The app's own acks_late tasks (Celery's own left out): name -> (the
    queue it is routed to, its hard time limit or None)."""
    found = {}
    for name in sorted(c.app.tasks):
        task = c.app.tasks[name]
        if name.startswith("celery.") or not getattr(task, "acks_late", False):
            continue
        limit = task.time_limit if task.time_limit is not None else c.app.conf.task_time_limit
        found[name] = (routed_queue(c.app, name), limit)
    return found


def _deployed_visibility_timeout(c: AppAudit, queue: str) -> tuple[Any, str, int]:
    """The deployed queues, the SQS name of the app's queue ``queue``, and that
    queue's own VisibilityTimeout (what counts: kombu sets the app's only on
    the queues it creates); not judged when there is no such queue."""
    queues = c.queues()
    sqs_name = dict(c.target.sqs.queues)[queue]
    if queues.url(sqs_name) is None:
        raise CheckSkipped(f"not judged: no queue {sqs_name} (see "
                           "work_queue_exists_under_the_prefix)")
    return queues, sqs_name, int(queues.attributes(sqs_name).get("VisibilityTimeout", 0))


@check(DEPLOYMENT, per_queue=True, judges_worker=True)
def visibility_timeout_outlasts_acks_late_time_limits(c: AppAudit, queue: str) -> list[str]:
    """An acks_late task still running when its queue's visibility timeout ends
    is handed to another worker and runs twice (kombu sets the timeout only
    when it creates a queue: the deployed queue's own attribute is what
    counts).

    Evidence: *worker*: the queue's own ``VisibilityTimeout`` (kombu sets it only when
    it creates a queue) against the longest hard time limit (``time_limit``, else
    ``task_time_limit``) of the app's ``acks_late`` tasks routed there (Celery's own
    left out)."""
    tasks = {name: limit for name, (routed, limit) in _acks_late(c).items()
             if routed == queue and limit is not None}
    if not tasks:
        return []
    queues, sqs_name, timeout = _deployed_visibility_timeout(c, queue)
    longest = max(tasks.values())
    if timeout < longest:
        over = [f"{name} ({limit:g} s)" for name, limit in sorted(tasks.items())
                if limit > timeout]
        fail(saw=f"{sqs_name} has a visibility timeout of {timeout} s; acks_late tasks routed "
                 f"to it may run longer: {_some(over)}",
             needs=f"the visibility timeout of {sqs_name} at least the longest time limit of "
                   "the acks_late tasks routed to it",
             fix=f"aws sqs set-queue-attributes --region {c.target.sqs.region} --queue-url "
                 f"{queues.url(sqs_name)} --attributes VisibilityTimeout={_seconds(longest)}"
                 " (or shorter time limits)")
    return [f"{sqs_name}: visibility timeout {timeout} s >= the longest acks_late time limit, "
            f"{longest:g} s"]


@check(DEPLOYMENT, per_queue=True, judges_worker=True)
def visibility_timeout_outlasts_the_retry_delays(c: AppAudit, queue: str) -> list[str]:
    """A task that retries later than its queue's visibility timeout is handed
    to another worker while the first still holds it, and runs twice. kombu
    sets a queue's visibility timeout only when it creates the queue: a
    deployed queue keeps its own, whatever the app's ``visibility_timeout``
    says (reported beside the queue's).

    Evidence: *worker*, per work queue: the queue's own ``VisibilityTimeout``
    (``GetQueueAttributes``) against the retry delay of each task routed to it that
    retries; the app's ``visibility_timeout`` reported beside it when it differs (kombu
    applies it only to the queues it creates)."""
    from pytest_cadasta.checks.common import retry_delay

    queues, sqs_name, timeout = _deployed_visibility_timeout(c, queue)
    delays = {name: delay for name in sorted(c.app.tasks)
              if not name.startswith("celery.") and routed_queue(c.app, name) == queue
              for delay, _how in [retry_delay(c.app.tasks[name])] if delay}
    late = [f"{name} retries after {delay:g} s" for name, delay in delays.items()
            if delay > timeout]
    if late:
        fail(saw=f"{sqs_name} has a visibility timeout of {timeout} s; {_some(late)}",
             needs=f"the visibility timeout of {sqs_name} at least the longest retry delay of "
                   "the tasks routed to it",
             fix=f"aws sqs set-queue-attributes --region {c.target.sqs.region} --queue-url "
                 f"{queues.url(sqs_name)} --attributes VisibilityTimeout="
                 f"{_seconds(max(delays.values()))} (or shorter retry delays)")
    expected = (c.app.conf.broker_transport_options or {}).get("visibility_timeout")
    if expected is None or float(expected) == timeout:
        return []
    return [f"{sqs_name}: visibility timeout {timeout} s, not the app's visibility_timeout "
            f"({float(expected):g} s): kombu applies that only to the queues it creates"]


@check(DEPLOYMENT, judges_worker=True)
def acks_late_tasks_have_a_time_limit(c: AppAudit, _: Any) -> None:
    """An acks_late task with no time limit can outlast any visibility timeout:
    a long run is handed to another worker and runs twice, again and again.

    Evidence: *worker*: each ``acks_late`` task of the app, and its time limit."""
    unbounded = [f"{name} (queue {routed})" for name, (routed, limit) in _acks_late(c).items()
                 if limit is None]
    if unbounded:
        fail(saw=f"acks_late task{'s' if len(unbounded) > 1 else ''} with no time limit: "
                 f"{_some(unbounded)}",
             needs="every acks_late task with a hard time limit below its queue's visibility "
                   "timeout",
             fix="@app.task(acks_late=True, time_limit=<seconds>) on each, or "
                 "task_time_limit = <seconds> for every task")


# -- the result database -----------------------------------------------------------------


@check(DEPLOYMENT, judges_worker=True)
def result_database_accepts_the_workers_role(c: AppAudit, _: Any) -> None:
    """A worker whose result_backend is not the platform's PostgreSQL, or whose
    role it does not let in, stores no result: every task stays PENDING in
    the platform's eyes.

    Evidence: *worker*: ``result_backend`` is Celery's database backend on PostgreSQL
    (else it fails naming it), and a connection as its role, host, database and role
    named."""
    database = c.target.database
    try:
        c.reach_role()
    except NotReached as exc:
        if database.problem is not None:
            fail(saw=database.problem,
                 needs="Celery's database backend on the platform's PostgreSQL",
                 fix="result_backend = 'db+postgresql://USER:PASS@HOST:PORT/NAME' "
                     f"({TOOLBOX} builds it from RESULT_DB_*)")
        fail(saw=str(exc),
             needs="the worker's own role let into the platform's database, from its "
                   "result_backend",
             fix="check RESULT_DB_HOST, RESULT_DB_PORT and RESULT_DB_NAME, the role and its "
                 "password (and that pg_hba.conf lets the role in from the worker's host)")


def _grant(privileges: str, what: str, role: str) -> str:
    return f"GRANT {privileges} ON {what} TO {role}"


def _sequence_usable(facts: RoleFacts, sequence: str) -> bool:
    held = facts.privileges.get(sequence, ())
    return "USAGE" in held or "UPDATE" in held


@check(DEPLOYMENT, judges_worker=True)
def role_writes_and_reads_results(c: AppAudit, _: Any) -> None:
    """A role that may not INSERT, UPDATE and SELECT celery_taskmeta (and
    number its rows) makes every result store fail: tasks run, and the
    platform shows them PENDING forever.

    Evidence: *worker*: SELECT, INSERT (of a row with every column this Celery writes)
    and UPDATE on ``celery_taskmeta``, each tried in one transaction that is rolled
    back; USAGE on ``task_id_sequence`` from the catalog."""
    role, facts = c.role()
    if TASK_TABLE not in facts.found:
        fail(saw=f"no table {TASK_TABLE} on the search path of {role.named}",
             needs=f"the platform's Result table, {TASK_TABLE}, where the role looks",
             fix=f"create the result tables as {SCHEMA} does (apply_result_schema grants "
                 "the role what it needs)")
    written = [name for name, _kind in written_columns(c.app)[0]]
    columns = tuple(name for name in written if name in facts.columns[TASK_TABLE])
    refused = {verb: why for verb, why in role.probe_writes(columns).items() if why}
    problems = [f"{verb}: {why}" for verb, why in refused.items()]
    if "task_id_sequence" not in facts.found:
        problems.append("there is no sequence task_id_sequence (Celery numbers rows with it)")
    elif not _sequence_usable(facts, "task_id_sequence"):
        problems.append("no USAGE on the sequence task_id_sequence (Celery numbers rows "
                        "with nextval)")
    if problems:
        fail(saw=f"as role {facts.role!r} on {role.target.where}, in a transaction rolled "
                 f"back: {'; '.join(problems)}",
             needs=f"SELECT, INSERT and UPDATE on {TASK_TABLE} and USAGE on its sequence",
             fix=f"{_grant('SELECT, INSERT, UPDATE', TASK_TABLE, facts.role)}; "
                 f"{_grant('USAGE', 'SEQUENCE task_id_sequence', facts.role)} "
                 "(cadasta_toolbox.schema.grant_sql)")


@check(DEPLOYMENT, judges_worker=True)
def result_table_has_every_column_celery_writes(c: AppAudit, _: Any) -> None:
    """A column this Celery writes that celery_taskmeta lacks makes every
    result store fail (the restricted role cannot add it).

    Evidence: *worker*: the columns of ``celery_taskmeta`` (from ``pg_attribute``)
    against those the app's Celery writes, ``children`` and the ``result_extended`` ones
    included; a missing one is named with its ``ALTER TABLE``."""
    role, facts = c.role()
    if TASK_TABLE not in facts.found:
        raise CheckSkipped(f"not judged: no table {TASK_TABLE} (see "
                           "role_writes_and_reads_results)")
    found = column_fault(c.app, facts.columns[TASK_TABLE])
    if found is not None:
        fail(saw=f"on {role.target.where}: {found.saw}",
             needs=f"every column this Celery writes in {TASK_TABLE}, and no "
                   "result_extended (the platform's Result table has none of its columns)",
             fix=found.fix)


def _stored_results(c: AppAudit) -> tuple[Any, list[tuple]]:
    """The role, and the newest result rows it may read (skipped when it may
    not): read-only, nothing unpickled."""
    role, facts = c.role()
    if TASK_TABLE not in facts.found or "SELECT" not in facts.privileges.get(TASK_TABLE, ()):
        raise CheckSkipped(f"not judged: the role cannot read {TASK_TABLE} (see "
                           "role_writes_and_reads_results)")
    try:
        return role, role.stored_results(facts.found[TASK_TABLE])
    except NotReached as exc:
        raise CheckSkipped(f"not judged: {exc}") from None


@check(DEPLOYMENT, judges_worker=True)
def stored_results_read_as_the_platform_unpickles_them(c: AppAudit, _: Any) -> None:
    """The platform reads every result row it shows with pickle, without the
    worker's code: rows already stored that it cannot read are tasks whose
    pages fail now (json results of Celery 5.7 and later, exceptions pickled
    as the worker's own classes). Judged from their bytes: nothing is
    unpickled.

    Evidence: *worker*: the 50 newest rows of ``celery_taskmeta`` that hold a result (a
    ``SELECT`` in a read-only transaction), judged from their bytes as the platform's
    ``pickle.loads`` would read them, without unpickling anything: json (Celery 5.7 and
    later store ``result_serializer``'s bytes), bytes that are no pickle, a class or
    function of a worker's code."""
    from pytest_cadasta.result_reading import judge_result, unread

    role, rows = _stored_results(c)
    found = unread(((f"{task_id} ({status})", result) for task_id, status, result in rows),
                   judge_result)
    if found is not None:
        from cadasta_toolbox.results import RESULT_SERIALIZER

        fail(saw=f"of the {len(rows)} newest results in {TASK_TABLE} on {role.target.where}, "
                 f"the platform cannot read {found}",
             needs="every result row a pickle the platform can read without the worker's "
                   "code",
             fix=f"result_serializer = {RESULT_SERIALIZER!r} and result_accept_content = "
                 f"['json', {RESULT_SERIALIZER!r}] in every worker writing there "
                 "(cadasta_toolbox.config.Config's defaults); the rows already stored stay "
                 "unreadable until their tasks run again")


@check(DEPLOYMENT, judges_worker=True)
def group_table_and_its_sequence_are_usable(c: AppAudit, _: Any) -> None:
    """Without a usable celery_tasksetmeta and its sequence, every chord (and
    group result) the worker saves fails.

    Evidence: *worker*: ``celery_tasksetmeta`` exists with SELECT, INSERT and UPDATE,
    and ``taskset_id_sequence`` with USAGE."""
    role, facts = c.role()
    problems, fixes = [], []
    if GROUP_TABLE not in facts.found:
        problems.append(f"there is no table {GROUP_TABLE}")
        fixes.append(f"create {GROUP_TABLE} as {SCHEMA} does")
    else:
        lacking = [p for p in ("SELECT", "INSERT", "UPDATE")
                   if p not in facts.privileges.get(GROUP_TABLE, ())]
        if lacking:
            problems.append(f"no {', '.join(lacking)} on {GROUP_TABLE}")
    if "taskset_id_sequence" not in facts.found:
        problems.append("there is no sequence taskset_id_sequence")
        fixes.append("CREATE SEQUENCE taskset_id_sequence")
    elif not _sequence_usable(facts, "taskset_id_sequence"):
        problems.append("no USAGE on the sequence taskset_id_sequence")
    if problems:
        fixes += [_grant("SELECT, INSERT, UPDATE", GROUP_TABLE, facts.role),
                  _grant("USAGE", "SEQUENCE taskset_id_sequence", facts.role)]
        fail(saw=f"as role {facts.role!r} on {role.target.where}: {'; '.join(problems)}",
             needs=f"{GROUP_TABLE} with SELECT, INSERT and UPDATE, and USAGE on "
                   "taskset_id_sequence",
             fix="the platform's operator runs: " + "; ".join(fixes))


@check(DEPLOYMENT, judges_worker=True)
def role_touches_nothing_but_the_result_tables(c: AppAudit, _: Any) -> None:
    """A worker's credentials that reach other tables turn one leaked worker
    into a leaked platform: they must touch the result tables alone.

    Evidence: *worker*: every table, view and sequence of the database (the result
    tables and their own sequences aside) on which the role holds any privilege,
    directly, through a role it belongs to or through PUBLIC; each named with its
    privileges and the ``REVOKE`` that takes them away."""
    role, facts = c.role()
    if facts.others:
        seen = [f"{o.kind} {o.name} ({', '.join(o.privileges)}"
                + (", granted to PUBLIC)" if o.public else ")") for o in facts.others]
        revokes = [f"REVOKE ALL ON {'SEQUENCE' if o.kind == 'sequence' else 'TABLE'} "
                   f"{o.name} FROM {'PUBLIC' if o.public else facts.role}"
                   for o in facts.others]
        fail(saw=f"role {facts.role!r} on {role.target.where} can touch "
                 f"{len(seen)} other relation{'s' if len(seen) != 1 else ''}: {_some(seen)}",
             needs="a worker role that may touch the result tables and their sequences, "
                   "and nothing else",
             fix=f"{'; '.join(revokes[:SHOWN])}"
                 + ("; ..." if len(revokes) > SHOWN else "")
                 + " (a grant through another role is revoked from that role)")


@check(DEPLOYMENT, judges_worker=True)
def role_is_not_a_superuser(c: AppAudit, _: Any) -> None:
    """A superuser's password in every worker is the whole database in every
    worker: it may read, change and drop anything.

    Evidence: *worker*: ``rolsuper`` of the role."""
    role, facts = c.role()
    if facts.superuser:
        fail(saw=f"role {facts.role!r} on {role.target.where} is a superuser",
             needs="a worker role without superuser rights",
             fix=f"ALTER ROLE {facts.role} NOSUPERUSER, or give the worker a role of its own "
                 "(cadasta_toolbox.schema.apply_result_schema makes one)")


@check(DEPLOYMENT, judges_worker=True)
def role_creates_no_tables_schemas_or_roles(c: AppAudit, _: Any) -> None:
    """A worker role that may create tables, schemas, databases or roles lets a
    leaked worker change the platform's database (Celery's own create_all
    included).

    Evidence: *worker*: ``CREATE`` on each schema and on the database,
    ``rolcreaterole``, ``rolcreatedb`` (temporary tables, which every role may make by
    default, aside)."""
    role, facts = c.role()
    may, fixes = [], []
    if facts.create_in:
        may.append(f"create tables in schema{'s' if len(facts.create_in) > 1 else ''} "
                   f"{', '.join(facts.create_in)}")
        fixes += [f"REVOKE CREATE ON SCHEMA {schema} FROM {facts.role} (and from PUBLIC)"
                  for schema in facts.create_in]
    if facts.create_schema:
        may.append(f"create schemas in database {role.target.database}")
        fixes.append(f"REVOKE CREATE ON DATABASE {role.target.database} FROM {facts.role} "
                     "(and from PUBLIC)")
    attributes = {name: what for name, what, held in (
        ("CREATEROLE", "roles", facts.create_role), ("CREATEDB", "databases", facts.create_db))
        if held}
    if attributes:
        may.append(f"create {' and '.join(attributes.values())} ({', '.join(attributes)})")
        fixes.append(f"ALTER ROLE {facts.role} " + " ".join(f"NO{a}" for a in attributes))
    if facts.superuser:
        may.insert(0, "create anything, roles and databases included (a superuser)")
        fixes.insert(0, f"ALTER ROLE {facts.role} NOSUPERUSER")
    if may:
        fail(saw=f"role {facts.role!r} on {role.target.where} may {'; '.join(may)}",
             needs="a worker role that creates nothing",
             fix="; ".join(fixes))


# -- across the apps -------------------------------------------------------------------


def _several_workers(apps: list[Any]) -> bool:
    return sum(1 for loaded in apps if loaded.entry.is_worker) > 1


#: Hosts that are one place (the machine itself).
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@check(SYSTEM, audit=True, applies=_several_workers)
def workers_share_one_result_database(s: SystemAudit, _: Any) -> None:
    """Workers whose results go to different databases leave the tasks of all
    but one PENDING in the platform's eyes: the platform reads one Result
    table.

    Evidence: *two workers or more, in an audit*: each worker's result database (host,
    port, database) from its ``result_backend``."""
    where = {}
    for audit in s.audits:
        if not audit.loaded.entry.is_worker or audit.target.database.problem is not None:
            continue
        database = audit.target.database
        host = "localhost" if database.host in LOOPBACK else database.host
        where[audit.label] = f"{host}:{database.port}/{database.database}"
    if len(set(where.values())) > 1:
        fail(saw="; ".join(f"{label} writes to {at}" for label, at in where.items()),
             needs="every worker writing its results to the platform's one database",
             fix="the same RESULT_DB_HOST, RESULT_DB_PORT and RESULT_DB_NAME (each worker "
                 f"with its own role) in every app ({TOOLBOX})")


@check(DEPLOYMENT, judges_worker=True)
def stored_results_run_nothing_when_the_platform_reads_them(c: AppAudit, _: Any) -> None:
    """The platform reads each result row with pickle.loads, which calls
    whatever a row names as it loads: a row naming os.system runs it in the
    platform. Any role that may write the result table (every worker's, a
    leaked password) can store one. Judged from the rows' bytes: nothing is
    unpickled.

    Evidence: *worker*: the same rows, judged from their bytes without unpickling
    anything: each global a row's pickle names that is not a data type (or a built-in
    exception, as Celery's ``pickle`` serializer stores a failure) is named, with the
    row's task id ("would run ``posix.system`` in the platform when read")."""
    from pytest_cadasta.result_reading import would_run

    role, rows = _stored_results(c)
    poisoned = [(task_id, names) for task_id, _status, result in rows
                if (names := would_run(result))]
    if poisoned:
        shown = [f"task {task_id} would run {', '.join(f'{n}' for n in names[:3])} in the "
                 "platform when read" for task_id, names in poisoned[:SHOWN]]
        ids = ", ".join(f"'{task_id}'" for task_id, _ in poisoned)
        fail(saw=f"of the {len(rows)} newest results in {TASK_TABLE} on "
                 f"{role.target.where}, {len(poisoned)} hold more than data: "
                 f"{'; '.join(shown)}",
             needs="result rows of data only: the platform loads each with pickle.loads, "
                   "which runs what a row names",
             fix=f"as the platform's operator, before any page shows them: DELETE FROM "
                 f"{TASK_TABLE} WHERE task_id IN ({ids}); then find who wrote them (every "
                 "role that may write the table) and change the passwords of those roles")
