"""What an audit will contact, worked out from each app's own settings (and the
environment, as its worker reads them) before anything is contacted: the SQS
endpoint, region, credentials and queue names; the result database's host,
database and role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cadasta_toolbox.masking import mask_url
from pytest_cadasta.basics.topology import DEFAULT_REGION
from pytest_cadasta.services.sqs import sqs_queue_name

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp

#: How long the audit waits for an endpoint or a database to answer, in
#: seconds, and how often it asks (once: not the clients' default retries).
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 5


@dataclass(frozen=True)
class SqsTarget:
    """Where an app's broker is, as kombu's SQS transport would reach it."""

    #: The transport kombu would use ('sqs', or what the app names instead).
    transport: str
    #: The broker URL, password masked.
    broker: str
    #: The endpoint the broker URL names (kombu's rule), None: boto3's own
    #: (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, else AWS's for the region).
    given_endpoint: str | None = None
    #: The endpoint every request goes to, resolved as boto3 resolves it.
    endpoint: str = ""
    region: str = DEFAULT_REGION
    prefix: str = ""
    use_ssl: bool = True
    #: The broker URL's credentials (None: boto3's chain, from the environment).
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    #: kombu's 'client-config' transport option (botocore's Config).
    client_config: dict = field(default_factory=dict)
    #: (kombu name, SQS name) of each work queue, and of the monitor.
    queues: tuple[tuple[str, str], ...] = ()
    monitor: tuple[str, str] = ("", "")
    #: kombu's ``predefined_queues`` (SQS name -> URL): the worker then lists
    #: no queue, and reaches each at its URL.
    predefined: tuple[tuple[str, str], ...] = ()
    #: kombu's ``sts_role_arn``: the worker assumes it, and signs with what
    #: STS hands back.
    sts_role_arn: str | None = None

    @property
    def is_sqs(self) -> bool:
        from kombu.transport import resolve_transport

        try:
            return resolve_transport(self.transport) == resolve_transport("sqs")
        except Exception:
            return False

    @property
    def credentials(self) -> str:
        """Where the credentials come from, for the header (never what they are)."""
        first = ("the broker URL's" if self.access_key_id else
                 "boto3's chain (the environment, a profile or the instance's role)")
        if self.sts_role_arn:
            return f"role {self.sts_role_arn} assumed with {first}"
        return first

    def client(self) -> Any:
        """A boto3 SQS client as the worker's, with short timeouts and no retry."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=self.region,
                                        aws_access_key_id=self.access_key_id or None,
                                        aws_secret_access_key=self.secret_access_key or None)
        config = Config(**self.client_config).merge(Config(
            connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": 1}))
        if self.sts_role_arn:
            # As kombu does: the role assumed (a read of STS, nothing changed),
            # every SQS request signed with the credentials it hands back.
            granted = session.client("sts", config=config).assume_role(
                RoleArn=self.sts_role_arn, RoleSessionName="Celery")["Credentials"]
            session = boto3.session.Session(
                region_name=self.region, aws_access_key_id=granted["AccessKeyId"],
                aws_secret_access_key=granted["SecretAccessKey"],
                aws_session_token=granted["SessionToken"])
        return session.client("sqs", endpoint_url=self.given_endpoint, use_ssl=self.use_ssl,
                              config=config)


@dataclass(frozen=True)
class DatabaseTarget:
    """Where an app's results go, as its result_backend names it."""

    #: The result backend, password masked.
    backend: str
    #: Why it is not a PostgreSQL database the audit can connect to (None: it is).
    problem: str | None = None
    host: str = ""
    port: int = 5432
    database: str = ""
    role: str = ""
    password: str | None = field(default=None, repr=False)
    #: libpq parameters from the URL's query (sslmode, ...).
    options: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class AppTarget:
    """What the audit of one app contacts."""

    label: str
    sqs: SqsTarget
    database: DatabaseTarget


def _region(options: dict) -> str:
    """kombu's: the transport option, else boto3's (the environment or a
    profile), else us-east-1."""
    if options.get("region"):
        return options["region"]
    try:
        import boto3

        return boto3.session.Session().region_name or DEFAULT_REGION
    except Exception:  # a profile named that does not exist: kombu would fail too
        return DEFAULT_REGION


def _resolved_endpoint(target: SqsTarget) -> str:
    """The endpoint boto3 sends the worker's requests to (an unsigned client:
    no credential is looked up, nothing is contacted)."""
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        client = boto3.session.Session().client(
            "sqs", region_name=target.region, endpoint_url=target.given_endpoint,
            use_ssl=target.use_ssl, config=Config(signature_version=UNSIGNED))
        return client.meta.endpoint_url
    except Exception as exc:
        return f"<none: boto3 could not make an SQS client: {type(exc).__name__}>"


def sqs_target(loaded: LoadedApp) -> SqsTarget:
    """Where ``loaded``'s broker is: read from its settings, contacting nothing."""
    from dataclasses import replace

    conf = loaded.app.conf
    url = conf.broker_write_url or conf.broker_url or ""
    url = (url[0] if isinstance(url, (list, tuple)) and url else str(url)).split(";")[0]
    # Celery's own precedence: broker_transport, else the URL's scheme (made
    # into a connection only for SQS: kombu imports the transport it names).
    transport = str(conf.broker_transport or url.partition("://")[0] or "amqp")
    target = SqsTarget(transport=transport, broker=mask_url(url or transport))
    if not target.is_sqs:
        return target
    connection = loaded.app.connection_for_write()
    options = dict(connection.transport_options or {})
    is_secure = options.get("is_secure")
    given = None
    if connection.hostname:  # kombu's endpoint_url: http unless is_secure
        port = f":{connection.port}" if connection.port else ""
        given = f"{'https' if is_secure else 'http'}://{connection.hostname}{port}"
    topology = loaded.topology
    prefix = options.get("queue_name_prefix") or ""
    target = replace(
        target, given_endpoint=given, region=_region(options), prefix=prefix,
        use_ssl=is_secure if is_secure is not None else True,
        access_key_id=connection.userid or None, secret_access_key=connection.password or None,
        client_config=dict(options.get("client-config") or {}),
        queues=tuple((q, sqs_queue_name(prefix, q)) for q in topology.work_queues),
        monitor=(topology.platform_queue, sqs_queue_name(prefix, topology.platform_queue)),
        predefined=topology.predefined.urls, sts_role_arn=options.get("sts_role_arn") or None)
    return replace(target, endpoint=_resolved_endpoint(target))


def database_target(app: Any) -> DatabaseTarget:
    """Where ``app``'s results go: read from its result_backend, contacting nothing."""
    backend = app.conf.result_backend
    shown = mask_url(backend) if isinstance(backend, str) else repr(backend)
    if not isinstance(backend, str) or not backend.startswith("db+"):
        return DatabaseTarget(shown, problem=f"result_backend = {shown!r} is not Celery's "
                                             "database backend (db+postgresql://...)")
    from sqlalchemy.engine import make_url

    try:
        url = make_url(backend[3:])
    except Exception:
        return DatabaseTarget(shown, problem=f"result_backend = {shown!r} is not a URL "
                                             "SQLAlchemy reads")
    if url.drivername.split("+")[0] != "postgresql":
        return DatabaseTarget(shown, problem=f"result_backend = {shown!r} is a "
                                             f"{url.drivername.split('+')[0]} database, not "
                                             "PostgreSQL")
    options = {key: value if isinstance(value, str) else value[-1]
               for key, value in url.query.items()}
    return DatabaseTarget(shown, host=url.host or "localhost", port=url.port or 5432,
                          database=url.database or "", role=url.username or "",
                          password=url.password, options=options)


def target_of(loaded: LoadedApp) -> AppTarget:
    return AppTarget(loaded.label, sqs_target(loaded), database_target(loaded.app))


def header_lines(targets: list[AppTarget], workers: set[str]) -> list[str]:
    """What the audit will contact, said before anything is: per app, its SQS
    endpoint, region and queues, and (for a worker) its database and role."""
    several = len(targets) > 1
    lines = ["cadasta: audit of a real deployment, read-only: no message sent, no queue "
             "created or changed, no row committed, no schema changed; the conformance "
             "checks and the project's own tests do not run"]
    for target in targets:
        who = f"{target.label}: " if several else ""
        sqs = target.sqs
        if sqs.is_sqs:
            queues = ", ".join(name for _, name in sqs.queues)
            lines.append(f"cadasta: {who}SQS {sqs.endpoint} (region {sqs.region}, "
                         f"credentials: {sqs.credentials}): queues {queues}; monitor "
                         f"{sqs.monitor[1]}")
        else:
            lines.append(f"cadasta: {who}broker {sqs.broker} is not SQS: nothing of it "
                         "is contacted")
        database = target.database
        if target.label not in workers:
            continue
        if database.problem is None:
            lines.append(f"cadasta: {who}result database {database.where} as role "
                         f"{database.role!r} ({database.backend})")
        else:
            lines.append(f"cadasta: {who}result database: none contacted: {database.problem}")
    return lines
