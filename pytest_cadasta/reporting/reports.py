"""The verdict written down: the document ``--cadasta-report`` writes (JSON,
or Markdown made from it), the JUnit XML testsuite properties, and GitHub
Actions' job summary."""

from __future__ import annotations

import glob
import json
import os
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.deployment import deployment
from pytest_cadasta.basics.ids import SYSTEM
from pytest_cadasta.basics.process_handle import alive
from pytest_cadasta.reporting.verdict import OUTCOME_ORDER, Outcomes

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp

#: The version of the JSON document's shape, its ``schema`` key: raised when a
#: key is taken away or changes meaning (new keys keep it).
SCHEMA_VERSION = 1
#: The JSON Schema of that document, shipped in the package.
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "report.schema.json"
#: Where GitHub Actions takes a job's summary from (Markdown, appended to).
JOB_SUMMARY = "GITHUB_STEP_SUMMARY"


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


def versions(postgresql: str | None) -> dict[str, str | None]:
    """What the run judged under: Python, Celery, kombu, moto, and the
    PostgreSQL server of the result database when one was used."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("celery", "kombu", "moto"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    found["postgresql"] = postgresql
    return found


def _duration(outcomes: Outcomes, nodeid: str) -> float | None:
    seconds = outcomes.durations.get(nodeid)
    return None if seconds is None else round(seconds, 6)


def document(outcomes: Outcomes, apps: list[LoadedApp],
             external_queues: Sequence[str] = ()) -> dict[str, Any]:
    """What --cadasta-report writes: the schema version, the verdict (and with
    several apps, each app's), the app and the queues judged, the versions
    judged under, each check's outcome, message and duration, the topology."""
    kind, sentence = outcomes.verdict()
    found: dict[str, Any] = {"schema": SCHEMA_VERSION, "verdict": {"kind": kind,
                                                                  "text": sentence}}
    first = _app(apps[0]) if apps else {}
    first.pop("role", None)
    found.update(first)
    if len(apps) > 1:
        found["apps"] = {loaded.label: {**_app(loaded),
                                        "verdict": dict(zip(("kind", "text"),
                                                            outcomes.verdict(loaded.label)))}
                         for loaded in apps}
        found["system"] = {"verdict": dict(zip(("kind", "text"), outcomes.verdict(SYSTEM)))}
    found["mode"] = "audit" if outcomes.audit else "conformance"
    found["versions"] = versions(outcomes.postgresql_version)
    if not outcomes.audit:
        from pytest_cadasta.apps.horizon import horizon

        found["horizon"] = horizon(apps, len(apps) > 1)
    found["checks"] = [{"id": nodeid, "app": label, "group": group,
                        "outcome": outcomes.outcomes.get(nodeid, "not run"),
                        "message": outcomes.messages.get(nodeid, ""),
                        "duration": _duration(outcomes, nodeid),
                        **({"notes": outcomes.notes[nodeid]} if nodeid in outcomes.notes
                           else {})}
                       for nodeid, (label, group) in outcomes.expected.items()]
    found["topology"] = deployment(apps, external_queues)
    return found


#: How the temporary file beside a document being written is named, after a
#: dot and the document's name: the writing run's machine and pid, so a later
#: run on that machine can tell one a killed run left from one a live run is
#: writing.
TEMPORARY_MARK = "cadasta-{host}-{pid}-"


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` (beside what it links to, if a link)
    for the caller to write, moved onto it once written (removed if the
    writing fails): whatever happens meanwhile (a kill), it holds the last
    complete document or none. What runs of this machine that died writing
    the same document left beside it is removed first."""
    path = path.resolve()
    _remove_dead_temporaries(path)
    mark = TEMPORARY_MARK.format(host=_host(), pid=os.getpid())
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.{mark}", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # as open() would have made it
        os.close(fd)
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "localhost"


def _remove_dead_temporaries(path: Path) -> None:
    """Best effort: a temporary another user's run left (a sticky directory)
    stays."""
    prefix = f".{path.name}.{TEMPORARY_MARK.partition('{pid}')[0].format(host=_host())}"
    for left in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid = left.name[len(prefix):].partition("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            try:
                left.unlink(missing_ok=True)
            except OSError:
                pass


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that, whatever happens meanwhile (a kill),
    ``path`` holds the last complete document or none."""
    with replaced_atomically(path) as temporary:
        temporary.write_text(text)


def render(path: Path, found: dict[str, Any]) -> str:
    """The document ``found`` in the format the extension of ``path`` names."""
    if path.suffix.lower() == ".md":
        from pytest_cadasta.reporting.markdown_report import markdown

        return markdown(found)
    return json.dumps(found, indent=2) + "\n"


def write_reports(paths: Sequence[Path], found: dict[str, Any]) -> None:
    """Each report file, in its format, written whole or not at all."""
    for path in paths:
        write_atomically(path, render(path, found))


def add_to_job_summary(found: dict[str, Any]) -> Path | None:
    """In GitHub Actions, the Markdown report appended to the job's summary
    (the file ``GITHUB_STEP_SUMMARY`` names); the file, or None elsewhere."""
    where = os.environ.get(JOB_SUMMARY)
    if not where:
        return None
    from pytest_cadasta.reporting.markdown_report import markdown

    with open(where, "a", encoding="utf-8") as summary:
        summary.write(markdown(found) + "\n")
    return Path(where)
