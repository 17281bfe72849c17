"""The audit of a real deployment (--cadasta-audit), as an operator runs it: a
"deployment" made by the test (a moto server in a process of its own, reached
through AWS_ENDPOINT_URL_SQS as a real endpoint would be; the shared
PostgreSQL with the platform's result tables and a worker role), set up right
and wrong. A right one passes, each wrong one fails its own check naming the
queue, the column or the privilege, nothing in either is changed by the audit,
and no credential reaches any output."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import psycopg
import pytest

from cadasta_toolbox.schema import SCHEMA_SQL, apply_result_schema
from pytest_cadasta.checks import iter_checks, system_checks
from pytest_cadasta.services.sqs import MotoServer

REGION = "us-west-2"
PREFIX = "staging"
QUEUES = ("celery", "export", "msg")
CHECKS = list(iter_checks(QUEUES, audit=True))
ALL = len(CHECKS)
#: The secrets of the deployment: none may appear in any output.
AWS_SECRET = "aws-secret-9d3e"
ROLE_PASSWORD = "role-pw-5c1a"
SCHEMAS = Path(__file__).parents[1] / "examples" / "schemas"


def _writes_children():
    """Whether this Celery writes a children column (5.7 and later)."""
    from celery.backends.database.models import Task

    return "children" in Task.__table__.c


# -- what needs no deployment: the plugin's reading of settings, its guard, its verdict --


@pytest.mark.parametrize(("backend", "expected"), [
    ("db+postgresql://worker:pw-1@db.internal:6432/cadasta?sslmode=require",
     {"host": "db.internal", "port": 6432, "database": "cadasta", "role": "worker",
      "options": {"sslmode": "require"}, "problem": None}),
    ("db+postgresql+psycopg2://worker:pw-1@db/cadasta",
     {"host": "db", "port": 5432, "database": "cadasta", "role": "worker", "problem": None}),
    ("db+sqlite:///results.db",
     {"problem": "result_backend = 'db+sqlite:///results.db' is a sqlite database, not "
                 "PostgreSQL"}),
    ("redis://:pw-1@cache/0",
     {"problem": "result_backend = 'redis://:**@cache/0' is not Celery's database backend "
                 "(db+postgresql://...)"}),
    (None, {"problem": "result_backend = 'None' is not Celery's database backend "
                       "(db+postgresql://...)"}),
])
def test_the_result_database_is_read_from_the_backend_alone(backend, expected):
    from celery import Celery

    from pytest_cadasta.audit.target import database_target

    app = Celery("read_alone")
    app.conf.result_backend = backend
    target = database_target(app)
    assert {name: getattr(target, name) for name in expected} == expected
    assert "pw-1" not in repr(target) + target.backend


@pytest.fixture
def closed_port():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listening:
        return listening.getsockname()[1]


def test_the_guard_refuses_every_change_before_it_leaves_and_lets_reads_out(closed_port):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError

    from pytest_cadasta.audit.guard import read_only_aws
    from pytest_cadasta.basics.errors import WouldChange

    def client():
        return boto3.session.Session().client(
            "sqs", region_name=REGION, endpoint_url=f"http://127.0.0.1:{closed_port}",
            aws_access_key_id="a", aws_secret_access_key="b",
            config=Config(retries={"total_max_attempts": 1}))

    url = f"http://127.0.0.1:{closed_port}/123456789012/{PREFIX}-export"
    with read_only_aws():
        guarded = client()
        changes = {
            "CreateQueue": lambda: guarded.create_queue(QueueName=f"{PREFIX}-export"),
            "SendMessage": lambda: guarded.send_message(QueueUrl=url, MessageBody="x"),
            "ReceiveMessage": lambda: guarded.receive_message(QueueUrl=url),
            "SetQueueAttributes": lambda: guarded.set_queue_attributes(
                QueueUrl=url, Attributes={"VisibilityTimeout": "1"}),
            "PurgeQueue": lambda: guarded.purge_queue(QueueUrl=url),
            "DeleteQueue": lambda: guarded.delete_queue(QueueUrl=url),
        }
        for name, change in changes.items():
            with pytest.raises(WouldChange, match=f"refused SQS {name}"):
                change()
        with pytest.raises(EndpointConnectionError):  # a read went out (and found no one)
            guarded.get_queue_attributes(QueueUrl=url)
    with pytest.raises(EndpointConnectionError):  # the guard is gone with the run
        client().create_queue(QueueName=f"{PREFIX}-export")


def test_an_audits_verdict_says_it_judged_a_deployment_and_keeps_what_was_reported():
    from types import SimpleNamespace

    from pytest_cadasta.basics.ids import NOTE
    from pytest_cadasta.reporting.verdict import Outcomes

    outcomes = Outcomes(["worker"], set(), audit=True)
    ids = ["cadasta::deployment::monitor_queue_exists",
           "cadasta::deployment::role_is_not_a_superuser"]
    outcomes.expect(ids)
    for nodeid in ids:
        outcomes.record(SimpleNamespace(nodeid=nodeid, when="call", outcome="passed",
                                        longrepr=None, user_properties=[(NOTE, "kept")]))
    assert outcomes.verdict() == ("conforms", "deployment conforms")
    assert outcomes.lines() == [("deployment 2 passed", {"red": False})]
    assert outcomes.notes == {nodeid: ["kept"] for nodeid in ids}


class Deployment:
    """A moto server set up as an operator would set up SQS, and what the
    audit must leave exactly as it found it."""

    def __init__(self, server: MotoServer) -> None:
        self.server = server
        self.client = server.client(REGION)

    def create(self, name: str, **attributes: str) -> str:
        return self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def right(self, skip: str = "", **changed: dict) -> None:
        """The queues a right deployment has (but ``skip``; ``changed``: other
        attributes for a queue), one message waiting in the export queue."""
        dead = self.create(f"{PREFIX}-dead")
        dead_arn = self.client.get_queue_attributes(
            QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues = {
            f"{PREFIX}-celery": {"VisibilityTimeout": "1800"},
            f"{PREFIX}-export": {"VisibilityTimeout": "3600", "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"})},
            f"{PREFIX}-msg": {"VisibilityTimeout": "120"},
            f"{PREFIX}-platform.fifo": {"FifoQueue": "true"},
        }
        for name, attributes in queues.items():
            if name != skip:
                self.create(name, **changed.get(name, attributes))
        self.client.send_message(QueueUrl=self.client.get_queue_url(
            QueueName=f"{PREFIX}-celery")["QueueUrl"], MessageBody="a task in flight")

    def snapshot(self) -> dict:
        """Every queue in every region the apps use, with every attribute."""
        found = {}
        for region in (REGION, "us-east-1"):
            client = self.server.client(region)
            for url in client.list_queues().get("QueueUrls", []):
                found[url] = client.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return found

    @property
    def environment(self) -> dict[str, str]:
        """What a worker's environment holds in production, pointed here."""
        return {"AWS_ENDPOINT_URL_SQS": self.server.endpoint,
                "AWS_ACCESS_KEY_ID": "AKIADEPLOYEDWORKER01", "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true", "QUEUE_PREFIX": PREFIX}


@pytest.fixture
def sqs():
    server = MotoServer().start()
    try:
        yield Deployment(server)
    finally:
        server.stop()


class ResultDatabase:
    """A database of its own on the shared PostgreSQL, with the platform's
    result tables, a table of the platform's own, and worker roles."""

    def __init__(self, admin_url: str) -> None:
        token = secrets.token_hex(4)
        self.admin_url = admin_url
        self.name = f"audited_{token}"
        self.roles: list[str] = []
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {self.name}")
        parsed = psycopg.conninfo.conninfo_to_dict(admin_url)
        self.host, self.port = parsed["host"], int(parsed["port"])

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, dbname=self.name, autocommit=True)

    def role(self, name: str, schema_sql: str = SCHEMA_SQL, *statements: str) -> str:
        """A worker role made as apply_result_schema makes it, then ``statements``
        ({role} is its name)."""
        role = f"{name}_{secrets.token_hex(3)}"
        self.roles.append(role)
        with psycopg.connect(self.admin_url, dbname=self.name) as connection:
            apply_result_schema(connection, role, ROLE_PASSWORD, schema_sql)
        with self.connect() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS orders (id integer, total numeric)")
            if not connection.execute("SELECT 1 FROM orders").fetchone():
                connection.execute("INSERT INTO orders VALUES (1, 9.5)")
                connection.execute("INSERT INTO celery_taskmeta (task_id, status) "
                                   "VALUES ('already-there', 'SUCCESS')")
            for statement in statements:
                connection.execute(statement.format(role=role))
        return role

    def environment(self, role: str) -> dict[str, str]:
        return {"RESULT_DB_USER": role, "RESULT_DB_PASS": ROLE_PASSWORD,
                "RESULT_DB_HOST": self.host, "RESULT_DB_PORT": str(self.port),
                "RESULT_DB_NAME": self.name}

    def snapshot(self) -> dict:
        """Every relation, every table's rows, every sequence's value, every role."""
        with self.connect() as connection:
            relations = connection.execute(
                "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1").fetchall()
            found: dict = {"relations": relations}
            for name, kind in relations:
                if kind == "r":
                    found[name] = connection.execute(
                        f"SELECT * FROM {name} ORDER BY 1").fetchall()
                elif kind == "S":
                    found[name] = connection.execute(
                        f"SELECT last_value, is_called FROM {name}").fetchone()
            found["roles"] = connection.execute(
                "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                "ORDER BY 1").fetchall()
            found["privileges"] = connection.execute(
                "SELECT relname, relacl::text FROM pg_class WHERE relacl IS NOT NULL "
                "ORDER BY 1").fetchall()
        return found

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            for role in self.roles:
                connection.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture
def results(shared_pg_url):
    database = ResultDatabase(shared_pg_url)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def audit(pytester, sqs, results):
    """Run the audit as an operator would, on sample apps in tests/examples/audit,
    with the deployment's environment; assert no secret reached the output."""

    def run(*args, apps=("audited",), env=None, timeout=120):
        for app in apps:
            pytester.copy_example(f"audit/{app}.py")
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {**sqs.environment, **(env or {})}.items():
                patch.setenv(name, value)
            result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                                   timeout=timeout)
        output = result.stdout.str() + result.stderr.str()
        for secret in (AWS_SECRET, ROLE_PASSWORD, "redis-pw-41c"):
            assert secret not in output, secret
        return result

    return run


def outcomes_by_check(result) -> dict[str, str]:
    """check name[queue] -> PASSED/FAILED/SKIPPED, from a -v run."""
    found = {}
    for line in result.stdout.lines:
        if line.startswith("cadasta::") and " " in line:
            nodeid, outcome = line.split(" ")[:2]
            found[nodeid.rpartition("::")[2]] = outcome
    return found


def test_a_right_deployment_passes_and_the_audit_changes_nothing(sqs, results, audit,
                                                                pytester):
    from test_reports import valid

    sqs.right()
    role = results.role("export_worker")
    queues_before, database_before = sqs.snapshot(), results.snapshot()
    result = audit("--cadasta-app=audited:app", "--cadasta-audit", "-v",
                   "--cadasta-report=report.json", env=results.environment(role))
    report = valid(json.loads((pytester.path / "report.json").read_text()))
    assert report["mode"] == "audit" and report["verdict"]["kind"] == "conforms"
    result.stdout.fnmatch_lines([
        "cadasta: audit of a real deployment, read-only: no message sent, no queue created*",
        f"cadasta: SQS {sqs.server.endpoint} (region {REGION}, credentials: boto3's chain*): "
        f"queues {PREFIX}-celery, {PREFIX}-export, {PREFIX}-msg; monitor {PREFIX}-platform.fifo",
        f"cadasta: result database {results.host}:{results.port}/{results.name} as role "
        f"'{role}' (db+postgresql://{role}:**@*)",
        f"*collected {ALL} items",
    ])
    result.assert_outcomes(passed=ALL)
    result.stdout.fnmatch_lines([
        "*= cadasta deployment audit =*",
        f"deployment {ALL} passed",
        "reported, not judged:",
        f"  deployment::work_queue_exists_under_the_prefix[[]export]: {PREFIX}-export: "
        f"retention 4 days (345600 s), redrive to {PREFIX}-dead after 5 receives, "
        "visibility timeout 3600 s",
        f"  deployment::work_queue_exists_under_the_prefix[[]msg]: {PREFIX}-msg: retention "
        "4 days (345600 s), no redrive policy, visibility timeout 120 s",
        f"  deployment::monitor_queue_exists: {PREFIX}-platform.fifo: *",
        f"  deployment::visibility_timeout_outlasts_acks_late_time_limits[[]export]: "
        f"{PREFIX}-export: visibility timeout 3600 s >= the longest acks_late time limit, 600 s",
        "verdict: deployment conforms",
    ], consecutive=False)
    assert result.ret == 0
    assert sqs.snapshot() == queues_before
    assert results.snapshot() == database_before


@pytest.mark.parametrize(("fault", "failing", "expected"), [
    ("missing queue", {"work_queue_exists_under_the_prefix[msg]"}, [
        f"*saw:   no queue {PREFIX}-msg at http://127.0.0.1:* (region {REGION}) (queues under "
        f"the prefix '{PREFIX}-': {PREFIX}-celery, {PREFIX}-dead, {PREFIX}-export, "
        f"{PREFIX}-platform.fifo); a queue msg exists without the prefix",
        f"*fix:   create it: aws sqs create-queue --region {REGION} --queue-name {PREFIX}-msg*"]),
    ("standard monitor", {"monitor_queue_is_fifo"}, [
        f"*saw:   {PREFIX}-platform.fifo is a standard queue (its FifoQueue attribute is not "
        "true)",
        "*fix:   delete it and create it again as a FIFO queue*--attributes FifoQueue=true"]),
    ("short visibility timeout", {"visibility_timeout_outlasts_acks_late_time_limits[export]"}, [
        f"*saw:   {PREFIX}-export has a visibility timeout of 300 s; acks_late tasks routed to "
        "it may run longer: export.project (600 s)",
        f"*fix:   aws sqs set-queue-attributes --region {REGION} --queue-url http://*/"
        f"{PREFIX}-export --attributes VisibilityTimeout=600*"]),
])
def test_each_wrong_queue_fails_its_own_check_and_none_is_created(
        sqs, results, audit, fault, failing, expected):
    if fault == "missing queue":
        sqs.right(skip=f"{PREFIX}-msg")
        sqs.create("msg")
    elif fault == "standard monitor":
        sqs.right(**{f"{PREFIX}-platform.fifo": {}})
    else:
        sqs.right(**{f"{PREFIX}-export": {"VisibilityTimeout": "300"}})
    role = results.role("export_worker")
    before = sqs.snapshot()
    result = audit("--cadasta-app=audited:app", "--cadasta-audit", "-v",
                   env=results.environment(role))
    outcomes = outcomes_by_check(result)
    assert {name for name, outcome in outcomes.items() if outcome == "FAILED"} == failing
    result.stdout.fnmatch_lines(expected, consecutive=False)
    result.stdout.fnmatch_lines(["verdict: deployment does not conform: 1 check failed"])
    assert sqs.snapshot() == before  # no queue created, none changed


def _without_group_table(sql: str) -> str:
    return sql[:sql.index("CREATE TABLE IF NOT EXISTS celery_tasksetmeta")]


@pytest.mark.parametrize(("fault", "schema", "statements", "failing", "expected"), [
    ("SELECT on another table", SCHEMA_SQL, ["GRANT SELECT ON orders TO {role}"],
     {"role_touches_nothing_but_the_result_tables"},
     ["*saw:   role '*' on *:*/audited_* can touch 1 other relation: table public.orders "
      "(SELECT)",
      "*fix:   REVOKE ALL ON TABLE public.orders FROM export_worker_* (a grant*"]),
    ("SELECT granted to PUBLIC", SCHEMA_SQL, ["CREATE SEQUENCE invoice_number",
                                              "GRANT SELECT ON orders TO PUBLIC",
                                              "GRANT USAGE ON SEQUENCE invoice_number TO {role}"],
     {"role_touches_nothing_but_the_result_tables"},
     ["*saw:   role '*' on * can touch 2 other relations: sequence public.invoice_number "
      "(USAGE), table public.orders (SELECT, granted to PUBLIC)",
      "*fix:   REVOKE ALL ON SEQUENCE public.invoice_number FROM export_worker_*; REVOKE ALL ON "
      "TABLE public.orders FROM PUBLIC*"]),
    ("a superuser", SCHEMA_SQL, ["ALTER ROLE {role} SUPERUSER"],
     {"role_is_not_a_superuser", "role_touches_nothing_but_the_result_tables",
      "role_creates_no_tables_schemas_or_roles"},
     ["*saw:   role 'export_worker_*' on *:*/audited_* is a superuser",
      "*fix:   ALTER ROLE export_worker_* NOSUPERUSER*"]),
    pytest.param(
        "a missing column", (SCHEMAS / "platform_results_no_children.sql").read_text(), [],
        {"result_table_has_every_column_celery_writes"},
        ["*saw:   on *:*/audited_*: celery_taskmeta has no column children, which this "
         "Celery writes with every result*",
         "*fix:   the platform's operator runs: ALTER TABLE celery_taskmeta ADD COLUMN "
         "children BYTEA"],
        marks=pytest.mark.skipif(not _writes_children(),
                                 reason="this Celery (before 5.7) writes no children")),
    ("results the platform cannot read", SCHEMA_SQL, [
        "INSERT INTO celery_taskmeta (task_id, status, result) VALUES ('stored-readable', "
        "'SUCCESS', '\\x80049510000000000000007d948c0770726f6a656374944b07732e'::bytea)",
        "INSERT INTO celery_taskmeta (task_id, status, result) VALUES ('stored-as-json', "
        "'SUCCESS', '\\x7b2270726f6a656374223a20377d'::bytea)"],
     {"stored_results_read_as_the_platform_unpickles_them"},
     ["*saw:   of the 2 newest results in celery_taskmeta on *, the platform cannot read 1: "
      "1 hold json, not a pickle (as stored-as-json (SUCCESS) stored b'{\"project\": 7}')",
      "*fix:   result_serializer = 'cadasta-pickle' and result_accept_content = *in every "
      "worker writing there*"]),
    ("no celery_tasksetmeta", _without_group_table(SCHEMA_SQL), [],
     {"group_table_and_its_sequence_are_usable"},
     ["*saw:   as role 'export_worker_*' on *: there is no table celery_tasksetmeta",
      "*fix:   the platform's operator runs: create celery_tasksetmeta as *"]),
    ("no INSERT", SCHEMA_SQL, ["REVOKE INSERT ON celery_taskmeta FROM {role}"],
     {"role_writes_and_reads_results"},
     ["*saw:   as role 'export_worker_*' on *, in a transaction rolled back: INSERT: "
      "permission denied for table celery_taskmeta",
      "*fix:   GRANT SELECT, INSERT, UPDATE ON celery_taskmeta TO export_worker_*"]),
    ("may create", SCHEMA_SQL, ["GRANT CREATE ON SCHEMA public TO {role}",
                                "ALTER ROLE {role} CREATEROLE"],
     {"role_creates_no_tables_schemas_or_roles"},
     ["*saw:   role 'export_worker_*' on * may create tables in schema public; create roles "
      "(CREATEROLE)",
      "*fix:   REVOKE CREATE ON SCHEMA public FROM export_worker_* (and from PUBLIC); "
      "ALTER ROLE export_worker_* NOCREATEROLE"]),
])
def test_each_wrong_role_fails_its_own_check_and_nothing_is_committed(
        sqs, results, audit, fault, schema, statements, failing, expected):
    sqs.right()
    role = results.role("export_worker", schema, *statements)
    before = results.snapshot()
    result = audit("--cadasta-app=audited:app", "--cadasta-audit", "-v",
                   env=results.environment(role))
    outcomes = outcomes_by_check(result)
    assert {name for name, outcome in outcomes.items() if outcome == "FAILED"} == failing
    result.stdout.fnmatch_lines(expected, consecutive=False)
    assert results.snapshot() == before  # no row, table or grant: nothing committed


@pytest.mark.parametrize(("app", "failing", "expected"), [
    ("retries_late", {"visibility_timeout_outlasts_the_retry_delays[msg]"}, [
        f"*saw:   {PREFIX}-msg has a visibility timeout of 120 s; msg.digest retries after "
        "300 s",
        f"*fix:   aws sqs set-queue-attributes --region {REGION} --queue-url http://*/"
        f"{PREFIX}-msg --attributes VisibilityTimeout=300 (or shorter retry delays)"]),
    ("unbounded", {"acks_late_tasks_have_a_time_limit"}, [
        "*saw:   acks_late task with no time limit: export.archive (queue export)",
        "*fix:   @app.task(acks_late=True, time_limit=<seconds>) on each, or task_time_limit*"]),
    ("extended", {"result_table_has_every_column_celery_writes"}, [
        "*saw:   on *: result_extended = True: Celery writes name, args, kwargs, worker, "
        "retries, queue* to celery_taskmeta, columns the platform's Result table does not "
        "have (every result store fails)",
        "*fix:   result_extended = False (Celery's default)*"]),
])
def test_what_the_apps_own_settings_get_wrong_is_named(sqs, results, audit, app, failing,
                                                       expected):
    sqs.right()
    role = results.role("export_worker")
    result = audit(f"--cadasta-app={app}:app", "--cadasta-audit", "-v",
                   apps=("audited", app), env=results.environment(role))
    outcomes = outcomes_by_check(result)
    assert {name for name, outcome in outcomes.items() if outcome == "FAILED"} == failing
    result.stdout.fnmatch_lines(expected, consecutive=False)


def test_a_broker_that_is_not_sqs_and_a_backend_that_is_not_postgresql_fail_saying_so(audit):
    result = audit("--cadasta-app=not_sqs:app", "--cadasta-audit", "-v", "-rs",
                   apps=("not_sqs",))
    result.stdout.fnmatch_lines([
        "cadasta: broker redis://:**@cache.internal:6379/0 is not SQS: nothing of it is "
        "contacted",
        "cadasta: result database: none contacted: result_backend = "
        "'redis://:**@cache.internal:6379/1' is not Celery's database backend*",
    ])
    outcomes = outcomes_by_check(result)
    assert {name for name, outcome in outcomes.items() if outcome == "FAILED"} == {
        "sqs_endpoint_answers_the_workers_credentials",
        "result_database_accepts_the_workers_role"}
    result.stdout.fnmatch_lines([
        "*saw:   broker redis://:**@cache.internal:6379/0 (transport 'redis')",
        "*fix:   broker_url = 'sqs://'*",
        "*saw:   result_backend = 'redis://:**@cache.internal:6379/1' is not Celery's "
        "database backend (db+postgresql://...)",
        "verdict: deployment does not conform: 2 checks failed",
        "SKIPPED *not judged: the broker redis://:**@cache.internal:6379/0 is not SQS*",
    ], consecutive=False)


class SilentPort:
    """A port that accepts connections and never answers (a firewall that
    drops, a server hung): the kernel completes each connection into the
    listening queue, and nothing ever reads it. ``connections()`` counts
    those asked for so far."""

    def __init__(self):
        import socket

        self.listening = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listening.setblocking(False)
        self.port = self.listening.getsockname()[1]

    def connections(self):
        taken = []
        try:
            while True:
                taken.append(self.listening.accept()[0])
        except BlockingIOError:
            pass
        for connection in taken:
            connection.close()
        return len(taken)


@pytest.fixture
def silent():
    port = SilentPort()
    try:
        yield port
    finally:
        port.listening.close()


def test_an_endpoint_and_a_database_that_do_not_answer_are_one_line_each_asked_once(
        sqs, results, audit, silent):
    silent_port = silent.port
    role = results.role("export_worker")
    env = {**results.environment(role), "RESULT_DB_PORT": str(silent_port),
           "AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{silent_port}"}
    result = audit("--cadasta-app=audited:app", "--cadasta-audit", "-v", "-rs", env=env)
    outcomes = outcomes_by_check(result)
    assert {name for name, outcome in outcomes.items() if outcome == "FAILED"} == {
        "sqs_endpoint_answers_the_workers_credentials",
        "result_database_accepts_the_workers_role"}
    assert list(outcomes.values()).count("SKIPPED") == ALL - 4  # but the app's own tasks'
    result.stdout.fnmatch_lines([
        f"*saw:   the SQS endpoint http://127.0.0.1:{silent_port} (region {REGION}) did not "
        f"answer ListQueues (prefix '{PREFIX}-'): ReadTimeoutError: *",
        f"*saw:   the result database 127.0.0.1:{silent_port}/{results.name} as role '{role}' "
        "refused or did not answer: *timeout*",
    ], consecutive=False)
    # Each part is asked once (its wait a few seconds, bench.py's to measure),
    # not once per retry of its client.
    assert silent.connections() == 2


@pytest.mark.parametrize(("args", "expected"), [
    (["--cadasta-result-db=postgresql://admin:hunter2@db.example/postgres"],
     "ERROR: --cadasta-audit with --cadasta-result-db: an audit reads the deployment's own "
     "result database (each app's result_backend) and starts none; --cadasta-result-db is "
     "the default mode's: leave them out, or leave out the audit"),
    (["--cadasta-result-schema=results.sql", "--cadasta-pg-ctl=/usr/bin/pg_ctl"],
     "ERROR: --cadasta-audit with --cadasta-result-schema, --cadasta-pg-ctl: an audit *; "
     "--cadasta-result-schema, --cadasta-pg-ctl are the default mode's*"),
])
def test_the_default_modes_infrastructure_options_are_usage_errors_in_an_audit(
        pytester, args, expected):
    pytester.copy_example("audit/audited.py")
    result = pytester.runpytest_subprocess("--cadasta-app=audited:app", "--cadasta-audit",
                                           *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "hunter2" not in result.stdout.str() + result.stderr.str()


def test_an_audit_without_an_app_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\ncadasta_audit = true\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: cadasta_audit (ini): audits the deployment an app's own settings name; give "
        "the app, e.g. --cadasta-app=worker.celery:app --cadasta-audit"])


def test_the_ini_spelling_audits_too_and_the_projects_own_tests_are_left_out(
        sqs, results, audit, pytester):
    pytester.makeini("[pytest]\ncadasta_app = audited:app\ncadasta_audit = true\n")
    pytester.makepyfile(test_mine="def test_mine(cadasta_sqs):\n    raise SystemExit('ran')\n")
    result = audit("--collect-only", env=results.environment(results.role("export_worker")))
    result.stdout.fnmatch_lines([
        "cadasta: audit of a real deployment, read-only: *",
        f"collected {ALL} items",
        "<CheckNode cadasta>",
        "  <CheckNode deployment>",
        "    <CheckItem sqs_endpoint_answers_the_workers_credentials>",
    ])
    assert "test_mine" not in result.stdout.str()
    assert result.ret == 0


def test_without_the_option_the_run_never_reaches_the_deployment(
        sqs, results, pytester, shared_pg_url):
    """The default mode, in the same environment: its checks publish and
    declare queues, on its own moto; the deployment sees nothing."""
    sqs.right()
    before = sqs.snapshot()
    pytester.copy_example("audit/audited.py")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in sqs.environment.items():
            patch.setenv(name, value)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--cadasta-app=audited:app",
            f"--cadasta-result-db={shared_pg_url}", "-k", "exchange or task_lands_once")
    result.stdout.fnmatch_lines(["cadasta: SQS: moto server on 127.0.0.1*"])
    assert result.parseoutcomes()["passed"] >= 4
    assert sqs.snapshot() == before


@pytest.mark.parametrize("deployed", ["right", "missing a queue"])
def test_an_app_that_declares_its_queues_while_imported_creates_none(sqs, audit, deployed):
    sqs.right(skip="" if deployed == "right" else f"{PREFIX}-msg")
    before = sqs.snapshot()
    result = audit("--cadasta-app=sets_up_on_import:app", "--cadasta-producer-only",
                   "--cadasta-audit", apps=("sets_up_on_import",))
    if deployed == "right":
        result.stdout.fnmatch_lines(["verdict: deployment conforms as a producer; * checks of "
                                     "a worker do not apply"])
        assert result.ret == 0
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([
            "ERROR: --cadasta-app='sets_up_on_import:app': importing 'sets_up_on_import' "
            f"would change the deployment: refused SQS CreateQueue (QueueName={PREFIX}-msg): "
            "--cadasta-audit reads the deployment and changes nothing (only List* and Get* "
            "calls go out); the app declares its queues as it is imported, and one is "
            "missing: create it*"])
    assert sqs.snapshot() == before


def test_several_apps_are_each_audited_and_their_monitor_once(sqs, results, audit, pytester):
    sqs.right()
    export_role, mail_role = results.role("export_worker"), results.role("mail_worker")
    env = {**results.environment(export_role), "MAIL_DB_USER": mail_role,
           "MAIL_DB_PASS": ROLE_PASSWORD}
    before = results.snapshot()
    result = audit("--cadasta-app=audited:app", "--cadasta-app=mail_worker:app",
                   "--cadasta-audit", "-v", "--cadasta-report=report.json",
                   "--junitxml=junit.xml", apps=("audited", "mail_worker"), env=env)
    shared = [check.name for check in system_checks([], audit=True) if check.shared]
    per_app = ALL - len(shared)
    system = len(system_checks([_Worker, _Worker], audit=True))
    result.assert_outcomes(passed=2 * per_app + system)
    result.stdout.fnmatch_lines([
        f"cadasta: audited: SQS {sqs.server.endpoint} (region {REGION}, *",
        f"cadasta: audited: result database * as role '{export_role}' *",
        f"cadasta: mail_worker: result database * as role '{mail_role}' *",
    ])
    result.stdout.fnmatch_lines([
        "cadasta::mail_worker::deployment::role_is_not_a_superuser PASSED*",
        *[f"cadasta::system::{name} PASSED*" for name in shared],
        "cadasta::system::workers_share_one_result_database PASSED*",
        "audited: conforms", "*", "mail_worker: conforms", "*", "system: conforms", "*",
        f"  system::monitor_queue_exists: {PREFIX}-platform.fifo: *",
        "verdict: the deployment conforms (2 apps)",
    ], consecutive=False)
    assert "cadasta::audited::deployment::monitor_queue_exists" not in result.stdout.str()
    assert results.snapshot() == before
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["mode"] == "audit" and report["verdict"]["kind"] == "conforms"
    notes = {check["id"]: check.get("notes") for check in report["checks"]}
    assert notes["cadasta::system::monitor_queue_exists"][0].startswith(
        f"{PREFIX}-platform.fifo: retention 4 days")
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="cadasta_mode" value="audit"' in junit
    assert 'name="cadasta_note"' in junit
    for secret in (AWS_SECRET, ROLE_PASSWORD):
        assert secret not in junit + json.dumps(report)


class _Worker:
    """What system_checks() reads of an app."""

    entry = type("Entry", (), {"is_worker": True})()


def sts(sqs):
    """The deployment's STS, where the worker's role is assumed (moto's too)."""
    return {"AWS_ENDPOINT_URL_STS": sqs.server.endpoint}


def test_a_least_privilege_worker_is_audited_at_its_urls_with_its_role(sqs, results, audit):
    """predefined_queues and sts_role_arn: the worker lists no queue and signs
    with a role it assumes; so does the audit (each URL read, the role
    assumed), and a queue not where its URL says is named with that URL."""
    sqs.right(skip=f"{PREFIX}-msg")
    role = results.role("export_worker")
    before = sqs.snapshot()
    result = audit("--cadasta-app=least_privilege:app", "--cadasta-audit", "-v",
                   apps=("least_privilege",), env={**results.environment(role), **sts(sqs)})
    result.stdout.fnmatch_lines([
        f"cadasta: SQS {sqs.server.endpoint} (region {REGION}, credentials: role "
        "arn:aws:iam::123456789012:role/cadasta-worker assumed with boto3's chain*"])
    outcomes = outcomes_by_check(result)
    assert {name for name, outcome in outcomes.items() if outcome == "FAILED"} == {
        "work_queue_exists_under_the_prefix[msg]"}
    result.stdout.fnmatch_lines([
        f"*saw:   the predefined URL of {PREFIX}-msg, {sqs.server.endpoint}/123456789012/"
        f"{PREFIX}-msg, names no queue http://127.0.0.1:* (region {REGION}) answers for",
        f"*fix:   create the queue at {sqs.server.endpoint}/123456789012/{PREFIX}-msg *"],
        consecutive=False)
    assert sqs.snapshot() == before


def test_a_queue_missing_from_predefined_queues_is_named_with_its_entry(sqs, results, audit):
    sqs.right()
    role = results.role("export_worker")
    result = audit("--cadasta-app=least_privilege:app", "--cadasta-audit", "-v",
                   apps=("least_privilege",),
                   env={**results.environment(role), **sts(sqs),
                        "PREDEFINED": "celery,export,msg"})
    outcomes = outcomes_by_check(result)
    assert "monitor_queue_exists" in {name for name, outcome in outcomes.items()
                                      if outcome == "FAILED"}
    result.stdout.fnmatch_lines([
        f"*saw:   no entry '{PREFIX}-platform.fifo' in the app's predefined_queues (kombu "
        "raises UndefinedQueueException for queue 'platform.fifo')",
        f"*fix:   add '{PREFIX}-platform.fifo': {{'url': '{sqs.server.endpoint}/123456789012/"
        f"{PREFIX}-platform.fifo'}} to broker_transport_options[[]'predefined_queues']*"],
        consecutive=False)


def test_a_poisoned_row_beside_clean_ones_is_named_and_nothing_of_it_runs(
        sqs, results, audit, tmp_path, pytester):
    """A row whose pickle would run os.system in the platform as it is read:
    named with its task id, from its bytes; nothing of it runs in the audit."""
    import os
    import pickle

    marker = tmp_path / "ran"

    class Calls:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    poisoned = pickle.dumps(Calls()).hex()
    clean = pickle.dumps({"project": 7}, protocol=4).hex()
    sqs.right()
    role = results.role(
        "export_worker", SCHEMA_SQL,
        "INSERT INTO celery_taskmeta (task_id, status, result) VALUES ('stored-clean', "
        f"'SUCCESS', '\\x{clean}'::bytea)",
        "INSERT INTO celery_taskmeta (task_id, status, result) VALUES ('stored-poisoned', "
        f"'SUCCESS', '\\x{poisoned}'::bytea)")
    result = audit("--cadasta-app=audited:app", "--cadasta-audit", "-v",
                   "--cadasta-report=report.json", env=results.environment(role))
    outcomes = outcomes_by_check(result)
    assert {name for name, outcome in outcomes.items() if outcome == "FAILED"} == {
        "stored_results_run_nothing_when_the_platform_reads_them"}
    from test_reports import valid  # a failing audit's report, checked against the schema

    report = valid(json.loads((pytester.path / "report.json").read_text()))
    assert report["verdict"]["kind"] == "does-not-conform"
    result.stdout.fnmatch_lines([
        "*saw:   of the 2 newest results in celery_taskmeta on *, 1 hold more than data: task "
        "stored-poisoned would run posix.system in the platform when read",
        "*fix:   as the platform's operator, before any page shows them: DELETE FROM "
        "celery_taskmeta WHERE task_id IN ('stored-poisoned'); *"], consecutive=False)
    assert not marker.exists()
