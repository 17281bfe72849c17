"""The apps of a run and what each stands on: one moto server and one result
database for all, one harness (wired app, in-process worker) and one state
for the checks per app, and the system checks' state across them."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from pytest_cadasta.basics.errors import NotConfigured
from pytest_cadasta.running.harness import Harness
from pytest_cadasta.running.infrastructure import Infrastructure
from pytest_cadasta.settings import Settings

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.model.platform_view import Platform
    from pytest_cadasta.running.app_state import AppState
    from pytest_cadasta.running.system_state import SystemState
    from pytest_cadasta.services.postgres import StartingPostgres
    from pytest_cadasta.services.sqs import MotoServer
    from pytest_cadasta.services.worker import InProcessWorker


class Run:
    """Harnesses and check states per app label, made on first request;
    ``close()`` stops every app's parts, then the shared server and database."""

    def __init__(self, settings: Settings, apps: list[LoadedApp],
                 server: MotoServer | None = None,
                 postgres: StartingPostgres | None = None,
                 tooling_modules: frozenset[str] = frozenset()) -> None:
        self.settings = settings
        self.tooling_modules = tooling_modules
        self.apps = {loaded.label: loaded for loaded in apps}
        self.infra = Infrastructure(settings, server, postgres)
        if apps:  # the checks will need it (results, the platform's Task table)
            self.infra.prepare()
        self._harnesses: dict[str | None, Harness] = {}
        self._states: dict[str, AppState] = {}
        self._system: SystemState | None = None

    @property
    def postgresql_version(self) -> str | None:
        """The version of the PostgreSQL server the result database is on (None:
        no database made yet)."""
        return self.infra.postgresql_version

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

    def platform(self) -> Platform:
        """The platform reading the monitor of the producer (the platform app),
        else of the first app."""
        producers = [label for label, loaded in self.apps.items()
                     if not loaded.entry.is_worker]
        return self.harness(producers[0] if producers else None).platform()

    def state(self, label: str) -> AppState:
        """What app ``label``'s checks stand on."""
        if label not in self._states:
            from pytest_cadasta.running.app_state import AppState

            entry = self.loaded(label).entry
            producer = None if entry.is_worker else self.settings.producer_spelled(entry)
            self._states[label] = AppState(self.harness(label), producer)
        return self._states[label]

    def _start_worker(self, label: str) -> InProcessWorker:
        return self.harness(label).worker()

    def system(self) -> SystemState:
        """What the system checks stand on: every app's state."""
        if self._system is None:
            from pytest_cadasta.running.system_state import SystemState

            self._system = SystemState(
                list(self.apps.values()), {label: self.state(label) for label in self.apps},
                self._start_worker, self.infra, self.settings.external_queues)
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
        """Close the system's state, every harness (the last made first), then
        the shared parts; one that fails to close does not keep the others open."""
        with ExitStack() as stack:
            stack.callback(self.infra.close)
            for harness in self._harnesses.values():
                stack.callback(harness.close)
            if self._system is not None:
                stack.callback(self._system.close)
            self._harnesses = {}
            self._states = {}
            self._system = None
