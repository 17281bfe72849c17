"""The conformance summary at the end of the run: a line per group, then the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_cadasta.checks.registry import GROUPS
from pytest_cadasta.collection import SUITE

RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
OUTCOME_ORDER = ("passed", "failed", "error", "skipped")


class Summary:
    """A plugin object: collects each check's outcome, writes the summary."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith(SUITE + "::"):
            return
        outcome = report.outcome
        if report.when != "call" and outcome == "failed":
            outcome = "error"  # the check could not run: not a verdict on the app
        if report.when != "call" and outcome == "passed":
            outcome = self.outcomes.get(report.nodeid, "passed")
        previous = self.outcomes.get(report.nodeid)
        if previous is None or RANK[outcome] > RANK[previous]:
            self.outcomes[report.nodeid] = outcome

    def lines(self) -> list[tuple[str, dict]]:
        counts: dict[str, dict[str, int]] = {group: {} for group in GROUPS}
        for nodeid, outcome in self.outcomes.items():
            group = nodeid.split("::")[1]
            counts[group][outcome] = counts[group].get(outcome, 0) + 1
        rows = []
        for group, by_outcome in counts.items():
            if not by_outcome:
                continue
            text = ", ".join(f"{by_outcome[o]} {o}" for o in OUTCOME_ORDER
                             if by_outcome.get(o))
            bad = by_outcome.get("failed") or by_outcome.get("error")
            rows.append((f"{group:<9} {text}", {"red": bool(bad)}))
        return rows

    def verdict(self) -> tuple[str, dict]:
        failed = sum(1 for o in self.outcomes.values() if o == "failed")
        passed = sum(1 for o in self.outcomes.values() if o == "passed")
        errors = sum(1 for o in self.outcomes.values() if o == "error")
        if errors:
            return (f"verdict: not judged: {errors} check{'s' if errors > 1 else ''} could "
                    "not run (see the errors above)", {"yellow": True, "bold": True})
        if failed:
            return (f"verdict: does not conform: {failed} check{'s' if failed > 1 else ''} "
                    "failed", {"red": True, "bold": True})
        if passed:
            return "verdict: conforms", {"green": True, "bold": True}
        return "verdict: not judged (no check ran)", {"yellow": True, "bold": True}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.outcomes:
            return
        terminal = terminalreporter
        terminal.section("cadasta conformance")
        for text, markup in self.lines():
            terminal.write_line(text, **markup)
        text, markup = self.verdict()
        terminal.write_line(text, **markup)
