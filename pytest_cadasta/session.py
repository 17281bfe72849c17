"""One pytest run with the plugin: its state, one object built as pytest
starts and configures, and closed once as it unconfigures."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

import pytest

from pytest_cadasta.basics.interrupts import Interrupts
from pytest_cadasta.reporting.verdict import POSTGRESQL_VERSION
from pytest_cadasta.settings import Settings, read_settings
from pytest_cadasta.using import STATE_KEY

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.audit.state import AuditRun
    from pytest_cadasta.audit.target import AppTarget
    from pytest_cadasta.reporting.summary import Summary
    from pytest_cadasta.running.run import Run
    from pytest_cadasta.services.postgres import StartingPostgres
    from pytest_cadasta.services.sqs import MotoServer

SUMMARY_PLUGIN = "cadasta-summary"


def moto_endpoint_given(config: pytest.Config) -> tuple[str | None, bool]:
    """The moto server the user named (--cadasta-moto-endpoint, or the ini key),
    read early like ``apps_given``, and whether it is refused (the settings say
    why, as pytest configures: a usage error)."""
    from pytest_cadasta.settings import moto_endpoint_problem, shared_by_xdist

    value = getattr(config.known_args_namespace, "cadasta_moto_endpoint", None)
    if value is None:
        try:
            value = config.getini("cadasta_moto_endpoint") or None
        except ValueError:
            value = None
    refused = value is not None and (moto_endpoint_problem(value) is not None
                                     or shared_by_xdist(config) is not None)
    return value, refused


def audit_given(config: pytest.Config) -> bool:
    """Whether the command line or the ini file asks for an audit (read early,
    like ``apps_given``: an audit pins nothing to moto)."""
    value = getattr(config.known_args_namespace, "cadasta_audit", None)
    if value is None:
        try:
            value = config.getini("cadasta_audit")
        except ValueError:
            value = None
    return bool(value)


class CadastaSession:
    """What the plugin holds for one pytest run: the settings, the apps loaded,
    what it started (moto, PostgreSQL starting, the run's harnesses) and the
    stack that stops it all. Reached with ``CadastaSession.of(config)``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: What the run started and must stop: closed by ``close`` (and, as a
        #: backstop, by pytest's cleanup, which runs even when configuring fails).
        self.stack = ExitStack()
        config.add_cleanup(self.stack.close)
        self.settings = Settings()
        self.apps: list[LoadedApp] = []
        self.server: MotoServer | None = None
        self.postgres: StartingPostgres | None = None
        self.run: Run | AuditRun | None = None
        #: In an audit, what each app's audit will contact, by label (worked
        #: out as the apps load, before anything is contacted).
        self.targets: dict[str, AppTarget] | None = None
        self.summary: Summary | None = None
        #: The threads alive, and the modules imported, before any of the
        #: project's code was imported: pytest's and its plugins'.
        self.threads_before: frozenset | None = None
        self.tooling_modules: frozenset[str] = frozenset()
        #: Calls that would change an audited deployment are refused (an audit).
        self.read_only = False
        #: The pytest session, once it finished (to mark it interrupted).
        self.finished: pytest.Session | None = None
        #: Every Ctrl-C and SIGTERM that reached the run while it held anything.
        self.interrupts = Interrupts()

    @classmethod
    def of(cls, config: pytest.Config) -> CadastaSession:
        if STATE_KEY not in config.stash:
            config.stash[STATE_KEY] = cls(config)
        return config.stash[STATE_KEY]

    # -- starting -----------------------------------------------------------------
    def guard_before_imports(self) -> None:
        """moto listens and the AWS environment is pinned, before any conftest
        (or app) is imported; what runs and is imported already is pytest's.
        An audit pins nothing (the apps load with the real environment, as
        their workers would): every call to SQS that would change the
        deployment is refused instead."""
        import sys
        import threading

        self.threads_before = frozenset(threading.enumerate())
        self.tooling_modules = frozenset(sys.modules)
        if audit_given(self.config):
            from pytest_cadasta.audit.guard import read_only_aws

            self.stack.enter_context(read_only_aws())
            self.read_only = True
            return
        from pytest_cadasta.services.sqs import NOWHERE, local_aws, pinned_aws_environment

        endpoint, refused = moto_endpoint_given(self.config)
        if refused:  # a usage error as pytest configures: no moto started for it
            self.stack.enter_context(pinned_aws_environment(NOWHERE))
            return
        self.server = self.stack.enter_context(local_aws(endpoint))

    def configure(self) -> None:
        """Read the settings; with apps to check, load them (moto listening),
        start PostgreSQL in the background, register the summary."""
        config = self.config
        config.addinivalue_line("markers",
                                "cadasta: a Cadasta conformance check (pytest-cadasta)")
        from pytest_cadasta.services.worker import KOMBU_CURL_WARNINGS

        for message in KOMBU_CURL_WARNINGS:
            config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")
        settings = self.settings = read_settings(config)
        from pytest_cadasta.basics import imports

        imports.release()  # what an earlier run in this process kept
        if not settings.apps:
            return
        from pytest_cadasta.apps import loader
        from pytest_cadasta.apps.sending import UNDELIVERABLE_WARNING
        from pytest_cadasta.basics.distribution import is_xdist_controller
        from pytest_cadasta.reporting.summary import Summary
        from pytest_cadasta.services import mirakuru_sweep
        from pytest_cadasta.services.sqs import local_aws

        self.interrupts.install()
        mirakuru_sweep.narrow()  # as this run ends, no one else's server is killed
        if settings.audit:
            self._configure_audit()
            return
        if self.server is None:
            self.server = self.stack.enter_context(local_aws(settings.moto_endpoint))
        self.apps = loader.load_apps(settings, config.rootpath, self.stack)
        runs_checks = not config.option.collectonly and not is_xdist_controller(config)
        if runs_checks:
            # What the result database's thread will import (SQLAlchemy): now,
            # by this thread, so the freeze below covers it too.
            imports.before_threads(imports.RESULT_DATABASE)
        # Before any test runs: nothing of a user's test is frozen with it.
        imports.keep_what_is_imported()
        # Every app needs the database: the workers for their results, every
        # app for the platform's Task table.
        if settings.result_db is None and settings.pg_ctl is not None and runs_checks:
            from pytest_cadasta.services.postgres import StartingPostgres

            # initdb (or a copy of the cached cluster) and pg_ctl start run while
            # pytest collects; the first check that needs the database waits.
            self.postgres = StartingPostgres(settings.pg_ctl)
            self.stack.callback(self.postgres.stop)
        # kombu's warning exists because the harness set a dead-letter queue; the
        # checks read it themselves, and it must not fail a user's -W error run.
        config.addinivalue_line("filterwarnings", f"ignore:{UNDELIVERABLE_WARNING}")
        self.summary = Summary(settings, self.apps)
        config.pluginmanager.register(self.summary, SUMMARY_PLUGIN)

    def _configure_audit(self) -> None:
        """An audit: the apps loaded with the real environment, what each audit
        will contact worked out; no moto, no PostgreSQL started."""
        from pytest_cadasta.apps import loader
        from pytest_cadasta.audit.guard import read_only_aws
        from pytest_cadasta.audit.target import target_of
        from pytest_cadasta.reporting.summary import Summary

        if not self.read_only:  # the option was not seen early
            self.stack.enter_context(read_only_aws())
            self.read_only = True
        self.apps = loader.load_apps(self.settings, self.config.rootpath, self.stack)
        self.targets = {loaded.label: target_of(loaded) for loaded in self.apps}
        self.summary = Summary(self.settings, self.apps)
        self.config.pluginmanager.register(self.summary, SUMMARY_PLUGIN)

    def collect_checks(self, session: pytest.Session) -> list[pytest.Item]:
        """The conformance checks as items, expected by the summary."""
        from pytest_cadasta.collection import build_items

        checks = build_items(session, self.apps, self.settings)
        if self.summary is not None:
            self.summary.expect([item.nodeid for item in checks])
        return checks

    # -- the run's harnesses (the session-scoped fixture's) ---------------------------
    def start_run(self) -> Run | AuditRun:
        if self.targets is not None:
            from pytest_cadasta.audit.state import AuditRun

            self.run = AuditRun(self.settings, self.apps, self.targets)
            return self.run
        from pytest_cadasta.running.run import Run

        self.run = Run(self.settings, self.apps, self.server, self.postgres,
                       self.tooling_modules)
        return self.run

    def end_run(self) -> None:
        run, self.run = self.run, None
        if run is not None:
            run.close()

    def check_done(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """With several apps, an app's worker stops when its checks are done: each
        app's checks see only its own worker, as when it is judged alone."""
        label = getattr(item, "cadasta_app", None)
        if label is None or not self.settings.is_system or self.run is None:
            return
        if getattr(nextitem, "cadasta_app", None) != label:
            self.run.finish_app(label)

    def describe_report(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """A check's call report points where its fault is (``place_report``),
        and carries what only the process that ran it knows, for the verdict's
        reports (under xdist, to the controlling process): the version of the
        PostgreSQL server its result database was on."""
        if getattr(item, "cadasta_app", None) is None:
            return
        from pytest_cadasta.collection import place_report

        place_report(item, report)
        version = None if self.run is None else self.run.postgresql_version
        if version is not None:
            setattr(report, POSTGRESQL_VERSION, version)

    # -- stopping -------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything started and put the environment back. A signal
        meanwhile waits until all is stopped; the run then ends as
        interrupted, as it does after any signal that reached it."""
        with self.interrupts.held():
            self.stack.close()
        self.interrupts.restore()
        if self.interrupts.received and self.finished is not None \
                and self.finished.exitstatus != pytest.ExitCode.INTERRUPTED:
            self.finished.exitstatus = pytest.ExitCode.INTERRUPTED
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"pytest-cadasta: {self.interrupts.name} came during the "
                                    "run: all it started is stopped, and the run ends as "
                                    "interrupted", yellow=True)

    def stop_if_interrupted(self, session: pytest.Session) -> None:
        """A signal whose KeyboardInterrupt was lost on its way (caught, or
        raised in a finalizer) still stops the run after the test at hand."""
        if self.interrupts.received and not session.shouldstop:
            session.shouldstop = f"interrupted ({self.interrupts.name})"

    def exit_code(self, code: int | pytest.ExitCode) -> int | pytest.ExitCode:
        """The run's exit code: interrupted if a signal reached it."""
        if self.interrupts.received and code not in (pytest.ExitCode.INTERRUPTED,
                                                     pytest.ExitCode.USAGE_ERROR):
            return pytest.ExitCode.INTERRUPTED
        return code

    def end_lingering_threads(self, exit_code: int) -> None:
        """A non-daemon thread the project's code left running would keep the
        process from exiting: end the process anyway, with the run's exit code."""
        if self.threads_before is None:
            return
        from pytest_cadasta.basics import threads

        lingering = threads.lingering(self.threads_before)
        if lingering:
            threads.end_despite(lingering, exit_code)
