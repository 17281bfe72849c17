"""The verdict told where people look: a line per group and the verdict at the
end of the run, JUnit XML testsuite properties, ``--cadasta-report`` and, in
GitHub Actions, the job summary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_cadasta.basics.distribution import is_xdist_worker
from pytest_cadasta.reporting.verdict import Outcomes

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.settings import Settings

COLOURS = {"conforms": "green", "conforms-as-producer": "green", "does-not-conform": "red"}


def _junit_writer(config: pytest.Config) -> Any:
    """pytest's JUnit XML writer, when --junitxml asked for one: the plugin
    that takes testsuite properties (pytest has no public handle on it)."""
    return next((plugin for plugin in config.pluginmanager.get_plugins()
                 if callable(getattr(plugin, "add_global_property", None))), None)


class Summary:
    """A plugin object: learns which checks to expect (from this process's
    collection, or from xdist's workers'), reads each one's outcome from its
    reports, and tells the verdict once, in the process that reports."""

    def __init__(self, settings: Settings, apps: list[LoadedApp]) -> None:
        self.settings = settings
        self.apps = apps
        self.outcomes = Outcomes([loaded.label for loaded in apps],
                                 {loaded.label for loaded in apps if not loaded.entry.is_worker},
                                 audit=settings.audit)
        #: Where the verdict was written (the reports, the job summary), to say so.
        self.written: list[str] = []

    def expect(self, nodeids: list[str]) -> None:
        self.outcomes.expect(nodeids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under pytest-xdist the controlling process collects nothing itself: the
        checks to expect come from its workers' collections, as ids."""
        if not self.outcomes.expected:
            self.expect(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.outcomes.record(report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        outcomes = self.outcomes
        if not outcomes.outcomes:
            return
        terminal = terminalreporter
        terminal.section("cadasta deployment audit" if outcomes.audit else "cadasta conformance")
        if outcomes.several:
            for label, (kind, sentence) in outcomes.verdicts().items():
                terminal.write_line(f"{label}: {sentence}", **{COLOURS.get(kind, "yellow"): True})
                for text, markup in outcomes.lines(label, indent="  "):
                    terminal.write_line(text, **markup)
        else:
            for text, markup in outcomes.lines():
                terminal.write_line(text, **markup)
        if outcomes.notes:
            terminal.write_line("reported, not judged:")
            for nodeid, notes in outcomes.notes.items():
                for note in notes:
                    terminal.write_line(f"  {nodeid.partition('::')[2]}: {note}")
        kind, sentence = outcomes.verdict()
        terminal.write_line(f"verdict: {sentence}",
                            **{COLOURS.get(kind, "yellow"): True, "bold": True})
        if not outcomes.audit:
            from pytest_cadasta.apps.horizon import celery_series, later

            series = celery_series()
            if series is not None:
                terminal.write_line(f"judged on Celery {series}: the verdict holds for that "
                                    "series")
            for line in later(self.apps, outcomes.several):
                terminal.write_line(line, yellow=True)
        if self.written:
            terminal.write_line(f"written to: {', '.join(self.written)}")

    # The innermost wrapper: the file is in place before the terminal's summary
    # (itself a wrapper) names it.
    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_junit_xml(self, session: pytest.Session) -> Iterator[None]:
        """pytest's JUnit XML file, written atomically as the reports are: its
        writer writes a temporary file beside it, moved onto it once whole."""
        xml = _junit_writer(session.config)
        logfile = getattr(xml, "logfile", None)
        if is_xdist_worker(session.config) or not isinstance(logfile, str):
            return (yield)
        from contextlib import ExitStack
        from pathlib import Path

        from pytest_cadasta.reporting.reports import replaced_atomically

        with ExitStack() as stack:
            try:
                Path(logfile).parent.mkdir(parents=True, exist_ok=True)
                temporary = stack.enter_context(replaced_atomically(Path(logfile)))
            except OSError:
                return (yield)  # no temporary beside it: pytest writes the file itself
            xml.logfile = str(temporary)
            try:
                return (yield)
            finally:
                xml.logfile = logfile

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        if is_xdist_worker(config):
            return  # its controlling process reports
        from pytest_cadasta.reporting import reports

        xml = _junit_writer(config)
        if self.outcomes.outcomes and xml is not None:
            # One path for the JUnit properties, in the process that writes the
            # file (under xdist the checks ran in workers, where
            # record_testsuite_property has no file to write to).
            for name, value in reports.properties(self.outcomes, self.apps).items():
                xml.add_global_property(name, value)
        self._write()

    def _write(self) -> None:
        """The reports asked for (--cadasta-report) and, in GitHub Actions, the
        job summary (unless --cadasta-no-job-summary); where, for the terminal."""
        from pytest_cadasta.reporting import reports

        settings = self.settings
        job_summary = (bool(self.outcomes.outcomes) and not settings.no_job_summary
                       and bool(os.environ.get(reports.JOB_SUMMARY)))
        if not settings.reports and not job_summary:
            return
        found = reports.document(self.outcomes, self.apps, settings.external_queues)
        reports.write_reports(settings.reports, found)
        self.written = [str(path) for path in settings.reports]
        if job_summary:
            try:
                where = reports.add_to_job_summary(found)
            except OSError as exc:
                self.written.append(f"not the job summary ({exc})")
            else:
                self.written.append(f"the job summary ({where})")
