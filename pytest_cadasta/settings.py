"""The plugin's settings: each a command-line option and an ini key, read once
into a frozen value. To add a setting: an entry in ``OPTIONS``, a field in
``Settings``, its check in ``read_settings`` (the manual's settings page is
written from ``OPTIONS``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pytest_cadasta.basics.errors import NotConfigured, UsageError
from pytest_cadasta.basics.ids import SYSTEM

#: name -> (help, ini type). The option is --cadasta-<name with dashes>,
#: its dest and ini key cadasta_<name>; one help text serves both.
OPTIONS: dict[str, tuple[str, str]] = {
    "app": (
        "a Celery worker app to check, as 'celery -A' takes it: 'proj', 'proj.celery', "
        "'proj:app' or 'proj.celery:app'; give it once per worker to judge a whole "
        "system (ini: one per line)", "linelist"),
    "producer": (
        "an app that only produces tasks, such as the platform, judged with the "
        "workers (repeatable; ini: one per line)", "linelist"),
    "producer_only": (
        "the app only produces tasks (like the platform): skip the checks that "
        "need a worker", "bool"),
    "result_db": (
        "URL of an existing PostgreSQL server where a throwaway result database may "
        "be created and dropped, e.g. postgresql://admin:pw@db:5432/postgres "
        "(default: start an ephemeral server)", "string"),
    "result_schema": (
        "a SQL file creating the result tables, used instead of the toolbox's "
        "schema (test against your platform's real DDL); it must create "
        "celery_taskmeta with task_id", "string"),
    "queues": (
        "the queues the worker consumes in production, as 'celery worker -Q' takes "
        "them, e.g. 'export,celery' (default: no -Q, Celery's default: every queue in "
        "task_queues); with several workers, LABEL=QUEUES per worker, repeatable, "
        "e.g. 'export_worker=export,celery' (ini: one per line)", "linelist"),
    "external_queues": (
        "queues consumed by workers outside this run, e.g. 'search,geo': the system "
        "checks do not ask for a consumer of theirs among the apps judged", "string"),
    "report": (
        "write the verdict to this file, its format by the extension: .json (each "
        "check's outcome, message and duration, the versions judged under, the "
        "topology; for CI tools) or .md (Markdown with a Mermaid picture of the "
        "topology, for people); repeatable (ini: one per line)", "linelist"),
    "no_job_summary": (
        "in GitHub Actions (GITHUB_STEP_SUMMARY set), do not add the Markdown report "
        "to the job's summary (added by default)", "bool"),
    "pg_ctl": (
        "path of the pg_ctl of the PostgreSQL to start (its initdb and postgres are run; "
        "default: PATH, then /usr/lib/postgresql/*/bin)", "string"),
    "moto_endpoint": (
        "a moto server already running on this machine, e.g. http://127.0.0.1:5000 "
        "(loopback only: never AWS), used instead of starting one; it is reset as the "
        "run starts and left running after it: one run at a time on it, so not with -n",
        "string"),
    "audit": (
        "audit the real deployment the apps' own settings name, read-only: their SQS "
        "queues and monitor, each worker's own result-database role (nothing is sent, "
        "created, changed or committed; the conformance checks do not run)", "bool"),
}

#: The settings only the default mode uses (it starts the infrastructure);
#: an audit reads the deployment's own.
NOT_FOR_AN_AUDIT = ("result_db", "result_schema", "pg_ctl")


#: The formats --cadasta-report writes, by the file's extension.
REPORT_FORMATS = {".json": "JSON, for tools", ".md": "Markdown, for people"}


#: The hosts --cadasta-moto-endpoint may name: this machine, never AWS.
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def moto_endpoint_problem(value: str) -> str | None:
    """Why ``value`` cannot be a moto server's endpoint on this machine (None:
    it can): http, a loopback host, a port."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "not a URL"
    if parts.scheme != "http" or parts.netloc.rsplit(":", 1)[0] not in LOOPBACK \
            or port is None or parts.path not in ("", "/"):
        return ("expected http://127.0.0.1:PORT (or localhost): a moto server on this "
                "machine, never AWS")
    return None


def shared_by_xdist(config: pytest.Config) -> str | None:
    """Why a moto server of the user's cannot serve this run: with ``-n``,
    each xdist worker would reset it and read the others' queues (None: it
    can)."""
    processes = getattr(config.known_args_namespace, "numprocesses", None)
    if not processes:  # xdist distributes whenever -n is more than 0
        return None
    return (f"one run at a time on a moto server (each resets it as it starts), and -n "
            f"{processes} makes a run per xdist worker; leave it out with -n (each worker "
            "then starts a moto server of its own), or run without -n")


def option_name(name: str) -> str:
    return "--cadasta-" + name.replace("_", "-")


def ini_name(name: str) -> str:
    """The setting's ini key, which is also its option's dest."""
    return f"cadasta_{name}"


@dataclass(frozen=True)
class AppEntry:
    """One app of the run, as the user named it."""

    #: As 'celery -A' takes it.
    spec: str
    #: How the app is named in test ids, the header and the summary: its module
    #: path's first segment, the whole module path where two apps share one.
    label: str
    #: A worker (--cadasta-app) or an app that only produces (--cadasta-producer,
    #: --cadasta-producer-only).
    is_worker: bool = True
    #: What 'celery worker -Q' names in production (None: no -Q).
    queues: tuple[str, ...] | None = None
    #: How the user gave it: the option or the ini key.
    spelled: str = "--cadasta-app"

    @property
    def module(self) -> str:
        return self.spec.partition(":")[0]


@dataclass(frozen=True)
class Settings:
    #: Every app of the run: the workers first, in the order given, then the
    #: producers (empty: no checks).
    apps: tuple[AppEntry, ...] = ()
    producer_only: bool = False
    result_db: str | None = None
    result_schema: Path | None = None
    #: The pg_ctl to start PostgreSQL with, found at configure time when needed.
    pg_ctl: str | None = None
    #: --cadasta-external-queues: consumed by workers outside the run.
    external_queues: tuple[str, ...] = ()
    #: --cadasta-report: the files to write the verdict to, each in the format
    #: its extension names (``REPORT_FORMATS``).
    reports: tuple[Path, ...] = ()
    #: --cadasta-no-job-summary: leave GitHub Actions' job summary alone.
    no_job_summary: bool = False
    #: --cadasta-moto-endpoint: a moto server of the user's to use (None: start one).
    moto_endpoint: str | None = None
    #: --cadasta-audit: audit the deployment the apps name, read-only, instead
    #: of checking the apps on infrastructure the run starts.
    audit: bool = False
    #: Setting name -> how the user spelled it (the option, or the ini key).
    spelled: dict[str, str] = field(default_factory=dict, compare=False)

    def label(self, name: str) -> str:
        """How the user gave the setting ``name``, for messages."""
        return self.spelled.get(name, option_name(name))

    def producer_spelled(self, entry: AppEntry) -> str:
        """How the user said app ``entry`` only produces, for the reason its
        worker checks are skipped."""
        return self.label("producer_only") if self.producer_only else entry.spelled

    @property
    def is_system(self) -> bool:
        """Several apps, judged one by one and as a system."""
        return len(self.apps) > 1


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cadasta", "Cadasta worker conformance")
    for name, (help_text, ini_type) in OPTIONS.items():
        if ini_type == "bool":
            group.addoption(option_name(name), action="store_true", default=None,
                            dest=ini_name(name), help=help_text)
        elif ini_type == "linelist":
            group.addoption(option_name(name), action="append", default=None,
                            dest=ini_name(name), metavar=name.upper(),
                            help=help_text)
        else:
            group.addoption(option_name(name), action="store", default=None,
                            dest=ini_name(name), metavar=name.upper(),
                            help=help_text)
        parser.addini(ini_name(name), help_text, type=ini_type, default=None)


def _read(config: pytest.Config, name: str) -> tuple[Any, str]:
    """(value, spelling): command line, else ini, else (None, the option)."""
    value = config.getoption(ini_name(name))
    if value is not None:
        return value, option_name(name)
    value = config.getini(ini_name(name))
    if value == "" or value == []:
        value = None
    return value, f"{ini_name(name)} (ini)"


def _where_written(config: pytest.Config, name: str, value: str) -> Path:
    """A relative path is relative to where it was written: the invocation
    directory for the option, the ini file's directory for the ini key."""
    from_cli = config.getoption(ini_name(name)) is not None
    base = (config.invocation_params.dir if from_cli or config.inipath is None
            else config.inipath.parent)
    return Path(base, value)


def read_settings(config: pytest.Config) -> Settings:
    """The settings, validated; a bad value is a ``UsageError``."""
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name in OPTIONS:
        values[name], spelled[name] = _read(config, name)

    apps = _read_apps(values, spelled)
    audit = bool(values["audit"])
    if audit:
        _check_audit(apps, values, spelled)
    result_db = values["result_db"]
    if result_db is not None and not result_db.startswith(
            ("postgresql://", "postgres://", "postgresql+")):
        from cadasta_toolbox.masking import mask_url

        raise UsageError(
            f"{spelled['result_db']}={mask_url(result_db)!r}: expected a PostgreSQL "
            "URL, e.g. 'postgresql://admin:secret@localhost:5432/postgres'")
    schema = values["result_schema"]
    schema_path = None
    if schema is not None:
        schema_path = _where_written(config, "result_schema", schema)
        if not schema_path.is_file():
            raise UsageError(f"{spelled['result_schema']}={schema!r}: no such file "
                             f"({schema_path})")
        from pytest_cadasta.model.result_table import schema_problem

        problem = schema_problem(schema_path.read_text(errors="replace"))
        if problem is not None:
            raise UsageError(f"{spelled['result_schema']}={schema!r}: {problem}; give the "
                             "DDL of the platform's Result table (the toolbox's is "
                             "cadasta_toolbox.schema.SCHEMA_SQL)")
    pg_ctl = values["pg_ctl"]
    if apps and result_db is None and not audit:
        from pytest_cadasta.services.postgres import find_pg_ctl

        try:  # a missing PostgreSQL is a usage error now, not a failure later
            pg_ctl = find_pg_ctl(pg_ctl, spelled["pg_ctl"])
        except NotConfigured as exc:
            raise UsageError(str(exc)) from None
    apps = _read_queues(apps, values["queues"], spelled["queues"])
    external = ()
    if values["external_queues"] is not None:
        external = _queue_list(values["external_queues"], spelled["external_queues"])
    reports = _read_reports(config, values["report"], spelled["report"])
    moto_endpoint = values["moto_endpoint"]
    if moto_endpoint is not None:
        problem = moto_endpoint_problem(moto_endpoint) or shared_by_xdist(config)
        if problem is not None:
            raise UsageError(f"{spelled['moto_endpoint']}={moto_endpoint!r}: {problem}")
    return Settings(
        apps=apps,
        producer_only=bool(values["producer_only"]),
        result_db=result_db,
        result_schema=schema_path,
        pg_ctl=pg_ctl,
        external_queues=external,
        reports=reports,
        no_job_summary=bool(values["no_job_summary"]),
        audit=audit,
        moto_endpoint=moto_endpoint,
        spelled=spelled,
    )


def _check_audit(apps: tuple[AppEntry, ...], values: dict[str, Any],
                 spelled: dict[str, str]) -> None:
    """An audit needs an app (its settings name the deployment) and takes none
    of the settings of the infrastructure the default mode starts."""
    if not apps:
        raise UsageError(
            f"{spelled['audit']}: audits the deployment an app's own settings name; give "
            f"the app, e.g. {option_name('app')}=worker.celery:app {option_name('audit')}")
    given = [spelled[name] for name in NOT_FOR_AN_AUDIT if values[name] is not None]
    if given:
        raise UsageError(
            f"{spelled['audit']} with {', '.join(given)}: an audit reads the deployment's "
            "own result database (each app's result_backend) and starts none; "
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} the default mode's: "
            "leave them out, or leave out the audit")


def _read_reports(config: pytest.Config, given: list[str] | None,
                  spelled: str) -> tuple[Path, ...]:
    """The report files, each with an extension ``REPORT_FORMATS`` knows, in a
    directory that exists, none named twice."""
    paths: list[Path] = []
    for text in given or ():
        value = text.strip()
        path = _where_written(config, "report", value)
        if path.suffix.lower() not in REPORT_FORMATS:
            valid = ", ".join(f"{suffix} ({what})" for suffix, what in REPORT_FORMATS.items())
            raise UsageError(f"{spelled}={value!r}: the extension names the report's format; "
                             f"expected one of {valid}, e.g. 'verdict.md'")
        if not path.parent.is_dir():
            raise UsageError(f"{spelled}={value!r}: no such directory ({path.parent})")
        if path in paths:
            raise UsageError(f"{spelled}={value!r}: the same file given twice")
        paths.append(path)
    return tuple(paths)


def _check_spec(spec: str, spelled: str) -> str:
    module, sep, attribute = spec.partition(":")
    if (not all(part.isidentifier() for part in module.split("."))
            or (sep and not attribute.isidentifier())):
        raise UsageError(
            f"{spelled}={spec!r}: expected what 'celery -A' takes: 'proj', "
            "'proj.celery', 'proj:app' or 'proj.celery:app'")
    return spec


def _labels(specs: list[str]) -> list[str]:
    """Each app's label: its module path's first segment; the whole module path
    where two apps share one; the module path and attribute where two share
    that. With several apps, none may be "system" (the system checks' label)."""
    def first(spec: str) -> str:
        return spec.partition(":")[0].split(".")[0]

    def module(spec: str) -> str:
        return spec.partition(":")[0]

    several = len(specs) > 1
    labels = []
    for spec in specs:
        label = first(spec)
        if (several and label == SYSTEM) or sum(first(s) == label for s in specs) > 1:
            label = module(spec)
            if (several and label == SYSTEM) or sum(module(s) == label for s in specs) > 1:
                label = spec.replace(":", ".")
        labels.append(label)
    return labels


def _read_apps(values: dict[str, Any], spelled: dict[str, str]) -> tuple[AppEntry, ...]:
    """The apps to judge: --cadasta-app (workers), then --cadasta-producer."""
    workers = [_check_spec(spec.strip(), spelled["app"]) for spec in values["app"] or ()]
    producers = [_check_spec(spec.strip(), spelled["producer"])
                 for spec in values["producer"] or ()]
    if values["producer_only"] and (workers or producers):
        if len(workers) != 1 or producers:
            raise UsageError(
                f"{spelled['producer_only']} makes the one app of "
                f"{spelled['app']} a producer; with several apps, name those that only "
                f"produce with {option_name('producer')} instead")
        workers, producers = [], workers
    specs = workers + producers
    twice = sorted({spec for spec in specs if specs.count(spec) > 1})
    if twice:
        raise UsageError(f"{', '.join(twice)}: the same app given twice; give each app once")
    labels = _labels(specs)
    clash = sorted({label for label in labels if labels.count(label) > 1})
    if clash or (len(specs) > 1 and SYSTEM in labels):
        label = clash[0] if clash else SYSTEM
        named = ", ".join(spec for spec, other in zip(specs, labels) if other == label)
        raise UsageError(
            f"{named}: labelled {label!r}, " + ("like another app" if clash else
                                               "the label of the system checks")
            + "; an app's label is its module path (and attribute): give apps whose "
              "module paths differ")
    return tuple(
        AppEntry(spec, label, is_worker=i < len(workers),
                 spelled=spelled["app"] if i < len(workers) or values["producer_only"]
                 else spelled["producer"])
        for i, (spec, label) in enumerate(zip(specs, labels)))


def _queue_list(value: str, label: str) -> tuple[str, ...]:
    """The queues of ``value`` as 'celery worker -Q' reads them: split on commas,
    nothing stripped (-Q 'export, celery' names a queue ' celery')."""
    queues = tuple(value.split(","))
    spaced = [q for q in queues if any(c.isspace() for c in q)]
    twice = [q for q in queues if queues.count(q) > 1]
    problem = None
    if not all(queues):
        problem = "an empty queue name" if any(queues) else "no queue named"
    elif spaced:
        problem = (f"{spaced[0]!r} has a space in it, and 'celery worker -Q' would consume "
                   "a queue of that very name")
    elif twice:
        problem = f"{twice[0]!r} is named twice"
    if problem is not None:
        raise UsageError(f"{label}={value!r}: {problem}; name each queue once, separated "
                         "by commas alone, as 'celery worker -Q' takes them, e.g. "
                         "'export,celery'")
    return queues


def _read_queues(apps: tuple[AppEntry, ...], given: list[str] | None,
                 spelled: str) -> tuple[AppEntry, ...]:
    """The apps, each with its -Q queues: 'QUEUES' for the one app,
    'LABEL=QUEUES' for one of several."""
    chosen: dict[str, tuple[str, ...]] = {}
    workers = [entry.label for entry in apps if entry.is_worker]
    for text in given or ():
        label, sep, queues = text.strip().rpartition("=")
        if not sep:
            if len(apps) > 1:
                raise UsageError(
                    f"{spelled}={text!r}: with several apps, name the worker whose queues "
                    f"these are: LABEL=QUEUES (labels: {', '.join(workers) or 'none'})")
            label = apps[0].label if apps else ""
        elif label not in {entry.label for entry in apps}:
            raise UsageError(
                f"{spelled}={text!r}: no app labelled {label!r} (labels: "
                f"{', '.join(entry.label for entry in apps) or 'none: give --cadasta-app'})")
        elif label not in workers:
            raise UsageError(f"{spelled}={text!r}: {label!r} only produces; it consumes "
                             "no queue")
        if label in chosen:
            raise UsageError(f"{spelled}: the queues of {label!r} given twice")
        chosen[label] = _queue_list(queues, spelled)
    return tuple(replace(entry, queues=chosen.get(entry.label)) for entry in apps)
