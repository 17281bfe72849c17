"""What the checks of an audit stand on: per app, its deployed queues and its
worker's role (``AppAudit``); across apps, the monitor they share
(``SystemAudit``); both made once per run by ``AuditRun``, each part
contacted on first use."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_cadasta.audit.database import RoleFacts, WorkerRole
from pytest_cadasta.audit.queues import DeployedQueues
from pytest_cadasta.audit.target import AppTarget, SqsTarget
from pytest_cadasta.basics.errors import NotConfigured, NotReached
from pytest_cadasta.basics.protocol import CheckSkipped

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.basics.topology import Topology
    from pytest_cadasta.settings import Settings

#: What an audit starts to stand on, for the check protocol's messages.
NO_WORKER = "no worker (an audit runs none)"


@dataclass(frozen=True)
class Monitor:
    """A monitor queue to audit: where it is, and the apps that publish to it."""

    queues: DeployedQueues
    name: str
    sqs_name: str
    apps: tuple[str, ...]


def _not_judged(exc: NotReached) -> CheckSkipped:
    return CheckSkipped(f"not judged: {exc}")


class AppAudit:
    """One app's deployment: its queues on its broker (None: the broker is not
    SQS) and its worker's role on its result database (None: the app only
    produces)."""

    WORKERS = NO_WORKER

    def __init__(self, loaded: LoadedApp, target: AppTarget, queues: DeployedQueues | None,
                 role: WorkerRole | None) -> None:
        self.loaded = loaded
        self.target = target
        self._queues = queues
        self._role = role

    @property
    def label(self) -> str:
        return self.loaded.label

    @property
    def app(self) -> Any:
        return self.loaded.app

    @property
    def topology(self) -> Topology:
        return self.loaded.topology

    def reach_queues(self) -> DeployedQueues:
        """The app's queues, listed; ``NotReached`` says why they cannot be."""
        if self._queues is None:
            raise NotReached(f"the broker {self.target.sqs.broker} is not SQS "
                             f"(transport {self.target.sqs.transport!r})")
        self._queues.listing()
        return self._queues

    def queues(self) -> DeployedQueues:
        """The app's queues, listed; a check that stands on them is not judged
        when they cannot be (the check of the endpoint fails saying why)."""
        try:
            return self.reach_queues()
        except NotReached as exc:
            raise _not_judged(exc) from None

    def reach_role(self) -> WorkerRole:
        """The worker's role, connected; ``NotReached`` says why it cannot be."""
        if self._role is None:
            raise NotConfigured(f"{self.label} only produces: it has no worker's role")
        self._role.connection()
        return self._role

    def role(self) -> tuple[WorkerRole, RoleFacts]:
        """The worker's role and what the catalogs say of it; a check that
        stands on it is not judged when it cannot connect (the check of the
        connection fails saying why)."""
        try:
            role = self.reach_role()
            return role, role.facts()
        except NotReached as exc:
            raise _not_judged(exc) from None

    def monitors(self) -> list[Monitor]:
        queues = self.queues()
        name, sqs_name = self.target.sqs.monitor
        return [Monitor(queues, name, sqs_name, (self.label,))]

    def start_workers(self) -> Any:
        raise NotConfigured("an audit runs no worker")

    def gone(self, quick: bool = False) -> str | None:
        return None

    def close(self) -> None:
        """Close the role's connection (the queues' client may serve other apps)."""
        if self._role is not None:
            self._role.close()


class SystemAudit:
    """The apps of an audit together: the monitors they publish to, each
    audited once."""

    WORKERS = NO_WORKER

    def __init__(self, audits: list[AppAudit]) -> None:
        self.audits = audits

    def monitors(self) -> list[Monitor]:
        """Each distinct monitor queue (endpoint, region, SQS name) the apps on
        SQS publish to, with the apps that do."""
        found: dict[tuple[str, str, str], Monitor] = {}
        unreached = []
        for audit in self.audits:
            try:
                queues = audit.reach_queues()
            except NotReached as exc:
                unreached.append(f"{audit.label}: {exc}")
                continue
            name, sqs_name = audit.target.sqs.monitor
            key = (audit.target.sqs.endpoint, audit.target.sqs.region, sqs_name)
            if key in found:
                monitor = found[key]
                found[key] = Monitor(monitor.queues, name, sqs_name, (*monitor.apps, audit.label))
            else:
                found[key] = Monitor(queues, name, sqs_name, (audit.label,))
        if not found:
            raise CheckSkipped(f"not judged: {'; '.join(unreached)}")
        return list(found.values())

    def start_workers(self) -> Any:
        raise NotConfigured("an audit runs no worker")

    def gone(self, quick: bool = False) -> str | None:
        return None


def _same_sqs(target: SqsTarget) -> tuple:
    """What makes two apps' SQS one listing: where, and as whom."""
    return (target.endpoint, target.given_endpoint, target.region, target.prefix,
            target.access_key_id, target.secret_access_key, target.use_ssl)


class AuditRun:
    """Every app's audit, made on first request from the targets worked out at
    load time; ``close()`` closes every client and connection."""

    def __init__(self, settings: Settings, apps: list[LoadedApp],
                 targets: dict[str, AppTarget]) -> None:
        self.settings = settings
        self.apps = {loaded.label: loaded for loaded in apps}
        self.targets = targets
        self._stack = ExitStack()
        self._queues: dict[tuple, DeployedQueues] = {}
        self._states: dict[str, AppAudit] = {}
        self._system: SystemAudit | None = None

    #: The run starts no result database: no version of one to report.
    postgresql_version: str | None = None

    def _deployed(self, target: SqsTarget) -> DeployedQueues | None:
        if not target.is_sqs:
            return None
        key = _same_sqs(target)
        if key not in self._queues:
            queues = self._queues[key] = DeployedQueues(target)
            self._stack.callback(queues.close)
        return self._queues[key]

    def state(self, label: str) -> AppAudit:
        if label not in self._states:
            try:
                loaded = self.apps[label]
            except KeyError:
                raise NotConfigured(f"no app labelled {label!r} in this run") from None
            target = self.targets[label]
            role = None
            if loaded.entry.is_worker:
                role = WorkerRole(target.database)
                self._stack.callback(role.close)
            self._states[label] = AppAudit(loaded, target, self._deployed(target.sqs), role)
        return self._states[label]

    def system(self) -> SystemAudit:
        if self._system is None:
            self._system = SystemAudit([self.state(label) for label in self.apps])
        return self._system

    def finish_app(self, label: str) -> None:
        """The checks of ``label`` are done: its role's connection closes."""
        state = self._states.get(label)
        if state is not None:
            state.close()

    def close(self) -> None:
        self._stack.close()
        self._queues.clear()
        self._states.clear()
        self._system = None
