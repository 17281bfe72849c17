"""The apps of a run and what each stands on: one moto server and one result
database for all, one harness (wired app, in-process worker) and one set of
checks per app, and the system's checks across them."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_cadasta.errors import NotConfigured
from pytest_cadasta.harness import Harness, Infrastructure
from pytest_cadasta.settings import AppEntry, Settings
from pytest_cadasta.topology import Topology

if TYPE_CHECKING:
    from pytest_cadasta.conformance import Conformance
    from pytest_cadasta.postgres import StartingPostgres
    from pytest_cadasta.sqs import MotoServer
    from pytest_cadasta.system import SystemConformance


@dataclass(frozen=True)
class LoadedApp:
    """An app of the run, loaded: what the user named, the app, its queues."""

    entry: AppEntry
    app: Any
    topology: Topology

    @property
    def label(self) -> str:
        return self.entry.label

    @property
    def hostname(self) -> str:
        """Its in-process worker's name, as Celery's events and logs show it."""
        return f"cadasta-{self.label}@localhost"


class Run:
    """Harnesses and checks per app label, made on first request; ``close()``
    stops every app's parts, then the shared server and database."""

    def __init__(self, settings: Settings, apps: list[LoadedApp],
                 server: MotoServer | None = None,
                 postgres: StartingPostgres | None = None,
                 tooling_modules: frozenset[str] = frozenset()) -> None:
        self.settings = settings
        self.tooling_modules = tooling_modules
        self.apps = {loaded.label: loaded for loaded in apps}
        self.infra = Infrastructure(settings, server, postgres)
        self._harnesses: dict[str | None, Harness] = {}
        self._conformances: dict[str, Conformance] = {}
        self._system: SystemConformance | None = None

    @property
    def first(self) -> str | None:
        """The label of the first app (the first worker, when there is one)."""
        return next(iter(self.apps), None)

    @property
    def workers(self) -> list[LoadedApp]:
        return [loaded for loaded in self.apps.values() if loaded.entry.is_worker]

    def loaded(self, label: str) -> LoadedApp:
        try:
            return self.apps[label]
        except KeyError:
            raise NotConfigured(f"no app labelled {label!r} in this run") from None

    def harness(self, label: str | None = None) -> Harness:
        """The harness of app ``label`` (default: the first app; with no app, a
        harness that provides SQS alone)."""
        label = self.first if label is None else label
        if label not in self._harnesses:
            if label is None:
                harness = Harness(self.settings, infra=self.infra)
            else:
                loaded = self.loaded(label)
                harness = Harness(self.settings, loaded.app, loaded.topology, self.infra,
                                  hostname=loaded.hostname,
                                  tooling_modules=self.tooling_modules)
            self._harnesses[label] = harness
        return self._harnesses[label]

    def conformance(self, label: str) -> Conformance:
        """The checks' state for app ``label``."""
        if label not in self._conformances:
            from pytest_cadasta.conformance import Conformance

            self._conformances[label] = Conformance(self.harness(label),
                                                    self.loaded(label).entry.is_worker)
        return self._conformances[label]

    def system(self) -> SystemConformance:
        """The system checks' state, over every app's checks."""
        if self._system is None:
            from pytest_cadasta.system import SystemConformance

            self._system = SystemConformance(self)
        return self._system

    def finish_app(self, label: str) -> None:
        """The checks of ``label`` are done: stop its worker, so the next app's
        checks see only their own worker, as when that app is judged alone."""
        harness = self._harnesses.get(label)
        worker = harness.running_worker if harness is not None else None
        if harness is not None and worker is not None:
            consumed = list(worker.queues)
            harness.stop_worker()
            harness.sqs().release(consumed)

    def close(self) -> None:
        """Close every harness (the last made first), then the shared parts; one
        that fails to close does not keep the others open."""
        with ExitStack() as stack:
            stack.callback(self.infra.close)
            for harness in self._harnesses.values():
                stack.callback(harness.close)
            self._harnesses = {}
            self._conformances = {}
            self._system = None
