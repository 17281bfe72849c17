"""The verdict on the app: a line per group and the verdict at the end of the
run, the same as JUnit XML testsuite properties, and as JSON with
``--cadasta-report``. Honest: "conforms" only when every check ran and passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_cadasta.checks.registry import GROUPS
from pytest_cadasta.collection import SUITE
from pytest_cadasta.errors import COULD_NOT_RUN
from pytest_cadasta.settings import Settings
from pytest_cadasta.topology import Topology

RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
OUTCOME_ORDER = ("passed", "failed", "error", "skipped")


class Summary:
    """A plugin object: collects each check's outcome (and message), writes the
    summary, the JUnit properties and the JSON report."""

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self.settings = settings
        self.topology = topology
        #: Every check collected for this app: nodeid -> group.
        self.expected: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}

    def expect(self, items: list[Any]) -> None:
        self.expected = {item.nodeid: item.nodeid.split("::")[1] for item in items}

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
    def counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {group: {} for group in GROUPS}
        for nodeid, outcome in self.outcomes.items():
            group = counts.setdefault(nodeid.split("::")[1], {})
            group[outcome] = group.get(outcome, 0) + 1
        return counts

    def verdict(self) -> tuple[str, str]:
        """(kind, sentence): kind is conforms, conforms-as-producer, does-not-conform,
        not-judged or partial."""
        values = list(self.outcomes.values())
        errors, failed = values.count("error"), values.count("failed")
        passed, skipped = values.count("passed"), values.count("skipped")
        total, ran = len(self.expected), len(values)

        def checks(n: int) -> str:
            return f"{n} check{'s' if n != 1 else ''}"

        if errors:
            return "not-judged", (f"not judged: {checks(errors)} could not run (see the "
                                  "errors above)")
        if failed:
            return "does-not-conform", f"does not conform: {checks(failed)} failed"
        if not passed:
            return "not-judged", "not judged (no check ran)"
        if ran < total:
            return "partial", (f"not judged as a whole: {ran} of {checks(total)} ran, and "
                               "passed; run them all for a verdict")
        if skipped and self.settings.producer_only:
            return "conforms-as-producer", (f"conforms as a producer; {checks(skipped)} "
                                            "of a worker do not apply")
        if skipped:
            return "not-judged", (f"not judged as a whole: {checks(skipped)} skipped "
                                  "(see the reasons above)")
        return "conforms", "conforms"

    # -- reporting -----------------------------------------------------------------
    def lines(self) -> list[tuple[str, dict]]:
        rows = []
        for group, by_outcome in self.counts().items():
            if not by_outcome:
                continue
            text = ", ".join(f"{by_outcome[o]} {o}" for o in OUTCOME_ORDER
                             if by_outcome.get(o))
            bad = by_outcome.get("failed") or by_outcome.get("error")
            rows.append((f"{group:<9} {text}", {"red": bool(bad)}))
        return rows

    def properties(self) -> dict[str, str]:
        """The verdict and per-group counts, for JUnit XML testsuite properties."""
        kind, sentence = self.verdict()
        found = {"cadasta_app": self.settings.app_spec or "", "cadasta_verdict": kind,
                 "cadasta_verdict_text": sentence}
        for group, by_outcome in self.counts().items():
            for outcome in OUTCOME_ORDER:
                found[f"cadasta_{group}_{outcome}"] = str(by_outcome.get(outcome, 0))
        return found

    def report(self) -> dict[str, Any]:
        """What --cadasta-report writes: the app, the queues judged, each check's
        outcome and message, the verdict."""
        kind, sentence = self.verdict()
        topology = self.topology
        return {
            "app": self.settings.app_spec,
            "queues": {"work": list(topology.work_queues),
                       "platform": topology.platform_queue,
                       "consumed": (None if topology.production_queues is None
                                    else list(topology.production_queues))},
            "checks": [{"id": nodeid, "group": group,
                        "outcome": self.outcomes.get(nodeid, "not run"),
                        "message": self.messages.get(nodeid, "")}
                       for nodeid, group in self.expected.items()],
            "verdict": {"kind": kind, "text": sentence},
        }

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.outcomes:
            return
        terminal = terminalreporter
        terminal.section("cadasta conformance")
        for text, markup in self.lines():
            terminal.write_line(text, **markup)
        kind, sentence = self.verdict()
        colour = {"conforms": "green", "conforms-as-producer": "green",
                  "does-not-conform": "red"}.get(kind, "yellow")
        terminal.write_line(f"verdict: {sentence}", **{colour: True, "bold": True})

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = self.settings.report
        if path is not None:
            Path(path).write_text(json.dumps(self.report(), indent=2) + "\n")
