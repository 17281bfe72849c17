"""What the benchmark measures: each workload is one timed run, set up in the
lab, giving one ``Sample`` per round."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lab import Lab, Run

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).resolve().parent / "samples"
EXAMPLE_WORKER = ROOT / "examples" / "worker"
SAMPLE_APPS = ROOT / "tests" / "examples" / "apps"
SAMPLE_SYSTEM = ROOT / "tests" / "examples" / "system"
#: The platform and two workers, as the system's tests run them.
SYSTEM_OPTIONS = ("--cadasta-app=export_worker", "--cadasta-app=msg_worker",
                  "--cadasta-producer=platform_app",
                  "--cadasta-queues=export_worker=export,celery",
                  "--cadasta-queues=msg_worker=msg,celery")

SECONDS = "s"
RATE = "tasks/s"
CALLS = "calls"
THROUGHPUT_TASKS = 1000
SCALE_TASKS = 1000
NO_CACHE = ("-p", "no:cacheprovider")
VERDICT = re.compile(r"^verdict: (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Sample:
    """One round's figure (None when the run failed), what went wrong, and the
    details a benchmark reads besides the figure."""

    value: float | None
    problem: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    name: str
    unit: str
    measure: Callable[[Lab], Sample]


def _sample(run: Run, ok: Sequence[int] = (0,), **details: Any) -> Sample:
    """The wall time of ``run`` and its ``details``, or the reason it is not a figure."""
    if run.timed_out:
        return Sample(None, f"timeout after {run.seconds:.0f} s")
    if run.returncode not in ok:
        _print_tail(run)
        return Sample(None, f"exit {run.returncode}")
    return Sample(run.seconds, None, {"cpu": run.cpu, **details})


def _print_tail(run: Run) -> None:
    """The failures' evidence (each saw line, which the tail may have lost) and
    the last lines of the run's output."""
    lines = run.output.splitlines()
    saw = [line for line in lines if line.lstrip().startswith("saw:")][:10]
    tail = "\n".join(lines[-30:])
    evidence = "".join(f"{line}\n" for line in saw)
    print(f"  exit {run.returncode}; what the failing checks saw:\n{evidence}"
          f"  last lines of its output:\n{tail}", file=sys.stderr)


def _verdict(run: Run) -> str | None:
    found = VERDICT.findall(run.output)
    return found[-1] if found else None


def _copy(sources: Mapping[str, Path], to: Path) -> Path:
    """Copy each source to ``to/<name>`` unless already there; returns ``to``."""
    for name, source in sources.items():
        if not (to / name).exists():
            shutil.copyfile(source, to / name)
    return to


def floor(lab: Lab) -> Sample:
    """pytest + pytest-postgresql's process fixture + a moto server, each touched once."""
    workdir = _copy({"test_floor.py": SAMPLES / "floor.py"}, lab.workdir("floor"))
    run = lab.pytest([*NO_CACHE, "-p", "no:cadasta", "-q", f"--basetemp={workdir / 'basetemp'}",
                      f"--postgresql-exec={lab.pg_ctl_for(workdir)}"], workdir)
    return _sample(run)


def example_suite(lab: Lab, *options: str) -> Sample:
    """The conformance suite and the example worker's own tests."""
    run = lab.pytest([*NO_CACHE, "--cadasta-app=worker.celery:app", *options], EXAMPLE_WORKER)
    return _sample(run, verdict=_verdict(run))


def result_db_suite(lab: Lab) -> Sample:
    return example_suite(lab, f"--cadasta-result-db={lab.postgres_url()}")


def failing_app(module: str, lab: Lab) -> Sample:
    """The conformance suite on a sample app that fails some checks (exit 1)."""
    workdir = _copy({name: SAMPLE_APPS / name for name in (f"{module}.py", "handwritten.py")},
                    lab.workdir(module))
    report = workdir / "junit.xml"
    run = lab.pytest([*NO_CACHE, f"--cadasta-app={module}:app", f"--junitxml={report}",
                      "-o", "junit_duration_report=call"], workdir)
    details: dict[str, Any] = {"verdict": _verdict(run)}
    if report.exists():
        details.update(_slowest_checks(report))
        report.unlink()
    return _sample(run, ok=(1,), **details)


def _slowest_checks(report: Path) -> dict[str, float]:
    """The call time of the slowest passing and of the slowest failing check."""
    slowest = {"slowest_passing": 0.0, "slowest_failing": 0.0}
    for case in ElementTree.parse(report).iter("testcase"):
        if case.find("skipped") is not None:
            continue
        failed = case.find("failure") is not None or case.find("error") is not None
        key = "slowest_failing" if failed else "slowest_passing"
        slowest[key] = max(slowest[key], float(case.get("time", 0)))
    return slowest


def idle(plugin: bool, lab: Lab) -> Sample:
    """20 trivial tests, with pytest-cadasta loaded but unused, or disabled."""
    workdir = _copy({"test_idle.py": SAMPLES / "idle.py"}, lab.workdir("idle"))
    disable = () if plugin else ("-p", "no:cadasta")
    return _sample(lab.pytest([*NO_CACHE, *disable, "-q"], workdir))


def _genapp_env(queues: int, tasks: int) -> dict[str, str]:
    return {"CADASTA_BENCH_QUEUES": str(queues), "CADASTA_BENCH_TASKS": str(tasks)}


def scale(queues: int, lab: Lab) -> Sample:
    """The conformance suite on a toolbox worker with ``queues`` work queues and
    1,000 tasks spread over them; a verdict other than 'conforms' is a detail,
    not a failed run."""
    workdir = _copy({"genapp.py": SAMPLES / "genapp.py"}, lab.workdir(f"scale-{queues}"))
    run = lab.pytest([*NO_CACHE, "--cadasta-app=genapp:app"], workdir,
                     env=_genapp_env(queues, SCALE_TASKS))
    return _sample(run, ok=(0, 1), verdict=_verdict(run))


#: The work queues of the two runs whose SQS calls are compared.
CALLS_QUEUES = (3, 200)


def calls_per_queue(lab: Lab) -> Sample:
    """SQS calls the conformance run makes per work queue: the toolbox worker
    of ``scale`` at 3 and at 200 queues on the plugin's counting moto server,
    (calls at 200 - calls at 3) / 197. Details: each run's calls, and the
    actions' share of the difference per queue."""
    counts = {}
    for queues in CALLS_QUEUES:
        workdir = _copy({"genapp.py": SAMPLES / "genapp.py"},
                        lab.workdir(f"calls-{queues}"))
        before = lab.calls()
        run = lab.pytest([*NO_CACHE, "--cadasta-app=genapp:app",
                          f"--cadasta-moto-endpoint={lab.counted_moto()}"], workdir,
                         env=_genapp_env(queues, SCALE_TASKS))
        if run.timed_out or run.returncode not in (0, 1):
            return _sample(run, ok=(0, 1))
        after = lab.calls()
        counts[queues] = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    few, many = CALLS_QUEUES
    added = many - few
    per_action = {name: (counts[many].get(name, 0) - counts[few].get(name, 0)) / added
                  for name in set(counts[few]) | set(counts[many])}
    value = sum(per_action.values())
    return Sample(value, None, {f"calls-{q}q": sum(c.values()) for q, c in counts.items()}
                  | {"per_action": {k: round(v, 2) for k, v in per_action.items() if v}})


def system(options: tuple[str, ...], lab: Lab) -> Sample:
    """The conformance suite on a system of three apps (the platform and two
    workers), each app's checks and the system's."""
    names = ("system_base.py", "platform_app.py", "export_worker.py", "msg_worker.py")
    workdir = _copy({name: SAMPLE_SYSTEM / name for name in names}, lab.workdir("system"))
    run = lab.pytest([*NO_CACHE, *SYSTEM_OPTIONS, "-q", *options], workdir)
    return _sample(run, verdict=_verdict(run))


def throughput(lab: Lab) -> Sample:
    """Tasks per second through the plugin's fixtures, as the inner test measured."""
    workdir = _copy({"genapp.py": SAMPLES / "genapp.py",
                     "test_throughput.py": SAMPLES / "throughput.py"},
                    lab.workdir("throughput"))
    figures_file = workdir / "figures.json"
    figures_file.unlink(missing_ok=True)
    env = {**_genapp_env(1, 1), "CADASTA_BENCH_SEND": str(THROUGHPUT_TASKS),
           "CADASTA_BENCH_OUT": str(figures_file)}
    run = lab.pytest([*NO_CACHE, "--cadasta-app=genapp:app", "-m", "not cadasta", "-q"],
                     workdir, env=env)
    wall = _sample(run, ok=(0, 1))  # 1: the inner test saw lost tasks
    if wall.problem is None and not figures_file.exists():
        _print_tail(run)
        wall = Sample(None, "no figures written")
    if wall.problem is not None:
        return wall
    figures = json.loads(figures_file.read_text())
    lost = figures["without_row"] + figures["not_once_in_monitor"]
    return Sample(figures["per_second"], None, {"lost": lost})


def bare_boto3(lab: Lab) -> Sample:
    """What the SQS transport must do per task, in a plain boto3 loop on a moto
    server in this process: send to the work queue and to the FIFO monitor,
    receive the work queue in batches of ten, delete each message."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-west-2", endpoint_url=lab.moto_endpoint(),
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    token = uuid.uuid4().hex[:8]
    work = sqs.create_queue(QueueName=f"bench-{token}")["QueueUrl"]
    monitor = sqs.create_queue(QueueName=f"bench-{token}-platform.fifo",
                               Attributes={"FifoQueue": "true"})["QueueUrl"]
    start = time.perf_counter()
    sent = done = 0
    while done < THROUGHPUT_TASKS:
        batch = range(sent, min(sent + 10, THROUGHPUT_TASKS))
        for i in batch:
            sqs.send_message(QueueUrl=work, MessageBody=f"task {i}")
            sqs.send_message(QueueUrl=monitor, MessageBody=f"task {i}",
                             MessageGroupId="default", MessageDeduplicationId=uuid.uuid4().hex)
        sent += len(batch)
        for message in sqs.receive_message(QueueUrl=work, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", []):
            sqs.delete_message(QueueUrl=work, ReceiptHandle=message["ReceiptHandle"])
            done += 1
    elapsed = time.perf_counter() - start
    for url in (work, monitor):
        sqs.delete_queue(QueueUrl=url)
    sqs.close()
    return Sample(THROUGHPUT_TASKS / elapsed)


def own_tests(lab: Lab) -> Sample:
    """pytest-cadasta's own test suite, as the README's test command runs it (the
    repository's setup.cfg: every test, spread over the cores; no TMPDIR, so the
    suite picks its own, as CONTRIBUTING.rst says)."""
    run = lab.pytest([], ROOT, lab_tmpdir=False)
    return _sample(run)


WORKLOADS = {w.name: w for w in (
    Workload("floor", SECONDS, floor),
    Workload("example-suite", SECONDS, example_suite),
    Workload("example-suite-result-db", SECONDS, result_db_suite),
    Workload("forgetful-router", SECONDS, partial(failing_app, "forgetful_router")),
    Workload("no-monitor-queue", SECONDS, partial(failing_app, "no_monitor_queue")),
    Workload("idle-no-plugin", SECONDS, partial(idle, False)),
    Workload("idle-plugin", SECONDS, partial(idle, True)),
    *(Workload(f"scale-{n}q", SECONDS, partial(scale, n)) for n in (3, 50, 200)),
    Workload("calls", CALLS, calls_per_queue),
    Workload("system", SECONDS, partial(system, ())),
    Workload("system-n2", SECONDS, partial(system, ("-n", "2"))),
    Workload("throughput-plugin", RATE, throughput),
    Workload("throughput-bare", RATE, bare_boto3),
    Workload("tests", SECONDS, own_tests),
)}
