"""The names a check goes by: the suite, its groups, the system's label, the
shape of a check's id, and the one reason a check is skipped by design.

Light on purpose: the summary and xdist's scheduler read ids with this alone,
without the machinery that runs checks."""

from __future__ import annotations

#: The root of every check's id, and the marker they carry.
SUITE = "cadasta"
#: The groups of one app's checks, in the order they run and are reported.
GROUPS = ("exchange", "monitor", "routing", "result", "chord", "platform")
#: The group of the audit of a real deployment (--cadasta-audit): its checks
#: run instead of the groups above, never with them.
DEPLOYMENT = "deployment"
AUDIT_GROUPS = (DEPLOYMENT,)
#: Every group, in the order they are reported.
ALL_GROUPS = GROUPS + AUDIT_GROUPS
#: The label of the checks across the apps of a run (no app may take it), and
#: their group.
SYSTEM = "system"
#: The name of what a check reports without judging it (an audited queue's
#: retention and redrive policy), one user property per line of its report.
NOTE = "cadasta_note"
#: Why a check of a worker is skipped on an app that runs none: the one
#: wording, after how the user said so (``--cadasta-producer``, ...).
NOT_FOR_A_PRODUCER = "the app runs no worker"


def not_for_a_producer(how: str) -> str:
    """The reason a check of a worker is skipped on an app that only produces."""
    return f"{how}: {NOT_FOR_A_PRODUCER}"


def skipped_by_design(reason: str) -> bool:
    """Whether a check's skip reason is ``not_for_a_producer``'s."""
    return reason.endswith(f": {NOT_FOR_A_PRODUCER}")


def read_check_id(nodeid: str, several: bool) -> tuple[str | None, str, str] | None:
    """What a check's id says: (its app's label, None with one app; its group,
    ``system`` for the system checks; the check's name, without its queue), or
    None for a test that is not a check."""
    parts = nodeid.split("::")
    if parts[0] != SUITE or len(parts) < 3:
        return None
    return (parts[1] if several else None), parts[-2], parts[-1].partition("[")[0]


def unit_of(nodeid: str, several: bool) -> str | None:
    """The unit of work a check's id belongs to: its app (``system`` for the
    system checks) with several apps, the suite with one; None for a test that
    is not a check."""
    read = read_check_id(nodeid, several)
    if read is None:
        return None
    return SUITE if read[0] is None else f"{SUITE}::{read[0]}"
