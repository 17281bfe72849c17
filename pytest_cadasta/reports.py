"""The verdict written down for tools: the JSON document of
``--cadasta-report``, and the JUnit XML testsuite properties."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_cadasta.ids import SYSTEM
from pytest_cadasta.verdict import OUTCOME_ORDER, Outcomes

if TYPE_CHECKING:
    from pytest_cadasta.loader import LoadedApp


def properties(outcomes: Outcomes, apps: list[LoadedApp]) -> dict[str, str]:
    """The verdict and per-group counts, for JUnit XML testsuite properties."""
    kind, sentence = outcomes.verdict()
    found = {"cadasta_app": apps[0].entry.spec if apps else "", "cadasta_verdict": kind,
             "cadasta_verdict_text": sentence,
             "cadasta_mode": "audit" if outcomes.audit else "conformance"}
    for group, by_outcome in outcomes.counts().items():
        for outcome in OUTCOME_ORDER:
            found[f"cadasta_{group}_{outcome}"] = str(by_outcome.get(outcome, 0))
    if len(apps) > 1:
        found["cadasta_apps"] = ",".join(loaded.entry.spec for loaded in apps)
        for label in [loaded.label for loaded in apps] + [SYSTEM]:
            found[f"cadasta_{label}_verdict"] = outcomes.verdict(label)[0]
    return found


def _app(loaded: LoadedApp) -> dict[str, Any]:
    topology = loaded.topology
    return {"app": loaded.entry.spec,
            "role": "worker" if loaded.entry.is_worker else "producer",
            "queues": {"work": list(topology.work_queues),
                       "platform": topology.platform_queue,
                       "consumed": (None if topology.production_queues is None
                                    else list(topology.production_queues))}}


def document(outcomes: Outcomes, apps: list[LoadedApp]) -> dict[str, Any]:
    """What --cadasta-report writes: the app, the queues judged, each check's
    outcome and message, the verdict (and with several apps, each app's)."""
    kind, sentence = outcomes.verdict()
    found: dict[str, Any] = _app(apps[0]) if apps else {}
    found.pop("role", None)
    if len(apps) > 1:
        found["apps"] = {loaded.label: {**_app(loaded),
                                        "verdict": dict(zip(("kind", "text"),
                                                            outcomes.verdict(loaded.label)))}
                         for loaded in apps}
    found["mode"] = "audit" if outcomes.audit else "conformance"
    found["checks"] = [{"id": nodeid, "app": label, "group": group,
                        "outcome": outcomes.outcomes.get(nodeid, "not run"),
                        "message": outcomes.messages.get(nodeid, ""),
                        **({"notes": outcomes.notes[nodeid]} if nodeid in outcomes.notes
                           else {})}
                       for nodeid, (label, group) in outcomes.expected.items()]
    found["verdict"] = {"kind": kind, "text": sentence}
    return found


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that, whatever happens meanwhile (a kill),
    ``path`` holds the last complete document or none."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # as open() would have made it
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, outcomes: Outcomes, apps: list[LoadedApp]) -> None:
    write_atomically(path, json.dumps(document(outcomes, apps), indent=2) + "\n")
