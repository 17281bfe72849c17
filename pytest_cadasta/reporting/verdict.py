"""The verdict, from the checks' outcomes: per group, per app, for the run (of
the conformance checks, or of an audit: "deployment conforms"). Honest:
"conforms" only when every check ran and passed."""

from __future__ import annotations

from typing import Any

from pytest_cadasta.basics.errors import COULD_NOT_RUN
from pytest_cadasta.basics.ids import (
    AUDIT_GROUPS,
    GROUPS,
    NOTE,
    SUITE,
    SYSTEM,
    read_check_id,
    skipped_by_design,
)

RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
OUTCOME_ORDER = ("passed", "failed", "error", "skipped")
#: The attribute of a check's report naming the PostgreSQL server version the
#: run's result database had (set where the check ran: an xdist worker, say).
POSTGRESQL_VERSION = "cadasta_postgresql"


def _checks(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''}"


class Outcomes:
    """Each check's outcome (and message), read from test reports by id; the
    verdict of an app, of the system, and of the run from them. ``labels`` are
    the apps' labels in order; ``producers`` those that run no worker;
    ``audit``: the checks audit a deployment."""

    def __init__(self, labels: list[str], producers: set[str], audit: bool = False) -> None:
        self.labels = labels
        self.producers = producers
        self.audit = audit
        self.groups = AUDIT_GROUPS if audit else GROUPS
        #: Every check expected: nodeid -> (app label or "system", group).
        self.expected: dict[str, tuple[str, str]] = {}
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        #: What passing checks reported without judging it, by id.
        self.notes: dict[str, list[str]] = {}
        #: Seconds each check took, its phases (setup, call, teardown) added up.
        self.durations: dict[str, float] = {}
        #: The PostgreSQL server version of the result database (None: none used).
        self.postgresql_version: str | None = None

    @property
    def several(self) -> bool:
        return len(self.labels) > 1

    def expect(self, nodeids: list[str]) -> None:
        """The checks collected, by id (the other ids are left out)."""
        for nodeid in nodeids:
            read = read_check_id(nodeid, self.several)
            if read is not None:
                label, group, _name = read
                self.expected[nodeid] = (label or self.labels[0], group)

    def record(self, report: Any) -> None:
        """A check's test report (a phase of it): its outcome is the worst seen."""
        if not report.nodeid.startswith(SUITE + "::"):
            return
        self.durations[report.nodeid] = (self.durations.get(report.nodeid, 0.0)
                                         + (getattr(report, "duration", 0.0) or 0.0))
        version = getattr(report, POSTGRESQL_VERSION, None)
        if version is not None:
            self.postgresql_version = version
        if report.when == "call":
            notes = [str(value) for name, value in report.user_properties if name == NOTE]
            if notes:
                self.notes[report.nodeid] = notes
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

    def _of(self, label: str | None) -> list[str]:
        """The nodeids of app ``label``'s checks (None: every check)."""
        return [nodeid for nodeid, (app, _) in self.expected.items()
                if label is None or app == label]

    def _by_design(self, nodeid: str) -> bool:
        """Skipped because the check is a worker's and the app runs none."""
        return (self.outcomes.get(nodeid) == "skipped"
                and self.expected[nodeid][0] in self.producers
                and skipped_by_design(self.messages.get(nodeid, "")))

    def counts(self, label: str | None = None) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {group: {} for group in self.groups}
        for nodeid in self._of(label):
            outcome = self.outcomes.get(nodeid)
            if outcome is not None:
                group = counts.setdefault(self.expected[nodeid][1], {})
                group[outcome] = group.get(outcome, 0) + 1
        return counts

    def verdict(self, label: str | None = None) -> tuple[str, str]:
        """(kind, sentence) for app ``label``'s checks, or the run's (None): kind is
        conforms, conforms-as-producer, does-not-conform, not-judged or partial.
        An audit's run says what it judged: "deployment conforms"."""
        kind, sentence = self._verdict(label)
        if not self.audit or label is not None:
            return kind, sentence
        if sentence.startswith("the system "):
            return kind, "the deployment " + sentence[len("the system "):]
        return kind, "deployment " + sentence

    def _verdict(self, label: str | None) -> tuple[str, str]:
        nodeids = self._of(label)
        values = [self.outcomes[n] for n in nodeids if n in self.outcomes]
        errors, failed = values.count("error"), values.count("failed")
        passed = values.count("passed")
        by_design = sum(1 for n in nodeids if self._by_design(n))
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
        if by_design and not self.several:
            return "conforms-as-producer", (f"conforms as a producer; {_checks(by_design)} "
                                            "of a worker do not apply")
        if label is None and self.several:
            return "conforms", f"the system conforms ({len(self.labels)} apps)"
        if by_design:
            return "conforms-as-producer", "conforms as a producer"
        return "conforms", "conforms"

    def verdicts(self) -> dict[str, tuple[str, str]]:
        """With several apps, each app's verdict and the system's, by label."""
        return {label: self.verdict(label) for label in [*self.labels, SYSTEM]}

    def lines(self, label: str | None = None, indent: str = "") -> list[tuple[str, dict]]:
        """A line per group with its counts, and its markup (red with a failure)."""
        rows = []
        for group, by_outcome in self.counts(label).items():
            if not by_outcome:
                continue
            text = ", ".join(f"{by_outcome[o]} {o}" for o in OUTCOME_ORDER
                             if by_outcome.get(o))
            bad = by_outcome.get("failed") or by_outcome.get("error")
            rows.append((f"{indent}{group:<9} {text}", {"red": bool(bad)}))
        return rows
