"""The verdict on the app: a line per group and the verdict at the end of the
run, the same as JUnit XML testsuite properties, and as JSON with
``--cadasta-report``. Honest: "conforms" only when every check ran and passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_cadasta.checks.registry import GROUPS
from pytest_cadasta.collection import SUITE, read_check_id
from pytest_cadasta.errors import COULD_NOT_RUN
from pytest_cadasta.settings import SYSTEM, Settings

if TYPE_CHECKING:
    from pytest_cadasta.run import LoadedApp

RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
OUTCOME_ORDER = ("passed", "failed", "error", "skipped")


def _checks(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''}"


class Summary:
    """A plugin object: collects each check's outcome (and message), writes the
    summary, the JUnit properties and the JSON report. With several apps: a
    verdict per app and one for the system, which is the run's."""

    def __init__(self, settings: Settings, apps: list[LoadedApp]) -> None:
        self.settings = settings
        self.apps = apps
        #: Every check collected: nodeid -> (app label or "system", group).
        self.expected: dict[str, tuple[str, str]] = {}
        #: The checks skipped by design (a worker's, on an app that only produces).
        self.skip_expected: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}

    def expect(self, items: list[Any]) -> None:
        self.expected = {item.nodeid: (item.cadasta_app, item.cadasta_group)
                         for item in items}
        self.skip_expected = {item.nodeid for item in items if item.skip_expected}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under pytest-xdist the controlling process collects nothing itself: the
        checks to expect come from its workers' collections, as ids."""
        if self.expected:
            return
        from pytest_cadasta.checks import all_checks

        workers_only = {check.name for check in all_checks() if check.for_workers_only}
        producers = {loaded.label for loaded in self.apps if not loaded.entry.is_worker}
        several = len(self.apps) > 1
        for nodeid in ids:
            read = read_check_id(nodeid, several)
            if read is None:
                continue
            label, group, name = read
            label = label or self.apps[0].label
            self.expected[nodeid] = (label, group)
            if label in producers and name in workers_only:
                self.skip_expected.add(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith(SUITE + "::"):
            return
        outcome = report.outcome
        if outcome == "failed" and (report.when != "call" or getattr(
                report, COULD_NOT_RUN, False)):
            outcome = "error"  # the check could not run: not a verdict on the app
        if report.when != "call" and outcome == "passed":
            outcome = self.outcomes.get(report.nodeid, "passed")
        previous = self.outcomes.get(report.nodeid)
        if previous is None or RANK[outcome] > RANK[previous]:
            self.outcomes[report.nodeid] = outcome
            if outcome == "skipped" and isinstance(report.longrepr, tuple):
                self.messages[report.nodeid] = str(report.longrepr[2])
            elif outcome != "passed":
                self.messages[report.nodeid] = report.longreprtext

    # -- the verdict -------------------------------------------------------------
    def _of(self, label: str | None) -> list[str]:
        """The nodeids of app ``label``'s checks (None: every check)."""
        return [nodeid for nodeid, (app, _) in self.expected.items()
                if label is None or app == label]

    def counts(self, label: str | None = None) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {group: {} for group in GROUPS}
        for nodeid in self._of(label):
            outcome = self.outcomes.get(nodeid)
            if outcome is not None:
                group = counts.setdefault(self.expected[nodeid][1], {})
                group[outcome] = group.get(outcome, 0) + 1
        return counts

    def verdict(self, label: str | None = None) -> tuple[str, str]:
        """(kind, sentence) for app ``label``'s checks, or the run's (None): kind is
        conforms, conforms-as-producer, does-not-conform, not-judged or partial."""
        nodeids = self._of(label)
        values = [self.outcomes[n] for n in nodeids if n in self.outcomes]
        errors, failed = values.count("error"), values.count("failed")
        passed = values.count("passed")
        by_design = sum(1 for n in nodeids if self.outcomes.get(n) == "skipped"
                        and n in self.skip_expected)
        skipped = values.count("skipped") - by_design
        total, ran = len(nodeids), len(values)
        if errors:
            return "not-judged", (f"not judged: {_checks(errors)} could not run (see the "
                                  "errors above)")
        if failed:
            return "does-not-conform", f"does not conform: {_checks(failed)} failed"
        if not passed:
            return "not-judged", "not judged (no check ran)"
        if ran < total:
            return "partial", (f"not judged as a whole: {ran} of {_checks(total)} ran, and "
                               "passed; run them all for a verdict")
        if skipped:
            return "not-judged", (f"not judged as a whole: {_checks(skipped)} skipped "
                                  "(see the reasons above)")
        if by_design and len(self.apps) == 1:
            return "conforms-as-producer", (f"conforms as a producer; {_checks(by_design)} "
                                            "of a worker do not apply")
        if label is None and len(self.apps) > 1:
            return "conforms", f"the system conforms ({len(self.apps)} apps)"
        if by_design:
            return "conforms-as-producer", "conforms as a producer"
        return "conforms", "conforms"

    # -- reporting -----------------------------------------------------------------
    def lines(self, label: str | None = None, indent: str = "") -> list[tuple[str, dict]]:
        rows = []
        for group, by_outcome in self.counts(label).items():
            if not by_outcome:
                continue
            text = ", ".join(f"{by_outcome[o]} {o}" for o in OUTCOME_ORDER
                             if by_outcome.get(o))
            bad = by_outcome.get("failed") or by_outcome.get("error")
            rows.append((f"{indent}{group:<9} {text}", {"red": bool(bad)}))
        return rows

    def properties(self) -> dict[str, str]:
        """The verdict and per-group counts, for JUnit XML testsuite properties."""
        kind, sentence = self.verdict()
        found = {"cadasta_app": self.settings.app_spec or "", "cadasta_verdict": kind,
                 "cadasta_verdict_text": sentence}
        for group, by_outcome in self.counts().items():
            for outcome in OUTCOME_ORDER:
                found[f"cadasta_{group}_{outcome}"] = str(by_outcome.get(outcome, 0))
        if len(self.apps) > 1:
            found["cadasta_apps"] = ",".join(loaded.entry.spec for loaded in self.apps)
            for label in [loaded.label for loaded in self.apps] + [SYSTEM]:
                found[f"cadasta_{label}_verdict"] = self.verdict(label)[0]
        return found

    def _app_report(self, loaded: LoadedApp) -> dict[str, Any]:
        topology = loaded.topology
        return {"app": loaded.entry.spec,
                "role": "worker" if loaded.entry.is_worker else "producer",
                "queues": {"work": list(topology.work_queues),
                           "platform": topology.platform_queue,
                           "consumed": (None if topology.production_queues is None
                                        else list(topology.production_queues))}}

    def report(self) -> dict[str, Any]:
        """What --cadasta-report writes: the app, the queues judged, each check's
        outcome and message, the verdict (and with several apps, each app's)."""
        kind, sentence = self.verdict()
        found: dict[str, Any] = self._app_report(self.apps[0]) if self.apps else {}
        found.pop("role", None)
        if len(self.apps) > 1:
            found["apps"] = {loaded.label: {**self._app_report(loaded),
                                            "verdict": dict(zip(("kind", "text"),
                                                                self.verdict(loaded.label)))}
                             for loaded in self.apps}
        found["checks"] = [{"id": nodeid, "app": label, "group": group,
                            "outcome": self.outcomes.get(nodeid, "not run"),
                            "message": self.messages.get(nodeid, "")}
                           for nodeid, (label, group) in self.expected.items()]
        found["verdict"] = {"kind": kind, "text": sentence}
        return found

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.outcomes:
            return
        terminal = terminalreporter
        terminal.section("cadasta conformance")
        colours = {"conforms": "green", "conforms-as-producer": "green",
                   "does-not-conform": "red"}
        if len(self.apps) > 1:
            for label in [loaded.label for loaded in self.apps] + [SYSTEM]:
                kind, sentence = self.verdict(label)
                terminal.write_line(f"{label}: {sentence}", **{colours.get(kind, "yellow"): True})
                for text, markup in self.lines(label, indent="  "):
                    terminal.write_line(text, **markup)
        else:
            for text, markup in self.lines():
                terminal.write_line(text, **markup)
        kind, sentence = self.verdict()
        terminal.write_line(f"verdict: {sentence}",
                            **{colours.get(kind, "yellow"): True, "bold": True})

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        if hasattr(config, "workerinput"):
            return  # a pytest-xdist worker: its controlling process reports
        from pytest_cadasta.plugin import is_xdist_controller

        if is_xdist_controller(config) and self.outcomes:
            # The checks ran in the workers, where record_testsuite_property has
            # no XML file to write to; here junitxml has it (pytest has no
            # public handle on it).
            from _pytest.junitxml import xml_key

            xml = config.stash.get(xml_key, None)
            if xml is not None:
                for name, value in self.properties().items():
                    xml.add_global_property(name, value)
        path = self.settings.report
        if path is not None:
            Path(path).write_text(json.dumps(self.report(), indent=2) + "\n")
