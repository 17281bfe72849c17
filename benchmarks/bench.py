"""Benchmarks of pytest-cadasta, each comparison measured in the same run as
its reference and reported as a ratio of medians.

    .venv/bin/python benchmarks/bench.py [--repeat N] [--only NAME ...] [--rst]

--list names the benchmarks; --only NAME also selects NAME-* (``--only
failing`` is four rows) and measures what their references need, e.g.
``--only scale-50q`` runs the 3- and 50-queue workers but not the 200.

Every figure is the wall time of a ``python -m pytest`` subprocess (except the
throughput figures, in tasks per second). The runs go round-robin: each round
runs every selected workload once, so a figure and its reference share the
machine's conditions; the table shows medians over the rounds (5 by default).

  floor         pytest + pytest-postgresql's process fixture (initdb + start) +
                a moto server, each touched once, without the plugin
  suite         the example worker's suite (conformance checks and its own
                tests) / floor
  failing-*     the conformance suite on a sample app that fails checks (a
                router that does not declare its bindings; no monitor queue) /
                floor; and per app, the slowest failing check's call time minus
                the slowest passing check's
  idle          20 unrelated trivial tests with the plugin loaded but unused /
                the same with -p no:cadasta
  scale-*       the conformance suite on toolbox workers with 3, 50 and 200
                work queues and 1,000 tasks, with its verdict; 50q/3q, 200q/3q
  calls-per-queue
                SQS calls of the conformance run per work queue: a toolbox
                worker at 3 and at 200 queues on the plugin's own moto server,
                which counts each action; (200q - 3q) / 197, by action
  throughput    1,000 tasks through the plugin's fixtures (send to SUCCESS row;
                every row and monitor copy checked) / a bare boto3 loop on moto
                making the same SQS calls per task
  result-db     the example worker's suite with --cadasta-result-db (a running
                PostgreSQL) / the same spawning its own
  tests         pytest-cadasta's own test suite, the README's test command
                (only with --only tests: minutes a round)
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab import Lab
from report import machine_lines, quantity, table
from workloads import SECONDS, WORKLOADS, Sample, Workload

DEFAULT_REPEAT = 5
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Figure:
    """A workload's figure (``detail=None``) or one of its details, in seconds."""

    workload: str
    detail: str | None = None

    @property
    def unit(self) -> str:
        return WORKLOADS[self.workload].unit if self.detail is None else SECONDS

    def median(self, samples: dict[str, list[Sample]]) -> float | None:
        values = [s.value if self.detail is None else s.details.get(self.detail)
                  for s in samples.get(self.workload, []) if s.problem is None]
        found = [v for v in values if v is not None]
        return statistics.median(found) if found else None


@dataclass(frozen=True)
class Outcome:
    """A benchmark's medians, their comparison, and what its runs reported."""

    value: float | None
    reference: float | None
    comparison: float | None
    samples: list[Sample]

    def details(self, key: str) -> list:
        """``key`` of every run that gave a figure."""
        return [s.details[key] for s in self.samples
                if s.problem is None and key in s.details]


@dataclass(frozen=True)
class Target:
    """A bound on the comparison, and what else the runs must have shown."""

    bound: float
    at_least: bool = False
    text: str = ""
    also: Callable[[Outcome], bool] | None = None
    #: Bound the figure itself, not its comparison with a reference.
    absolute: bool = False

    def __str__(self) -> str:
        return self.text or f"{'>=' if self.at_least else '<='} {self.bound}"

    def met(self, outcome: Outcome) -> bool:
        comparison = outcome.value if self.absolute else outcome.comparison
        if comparison is None:
            return False
        within = comparison >= self.bound if self.at_least else comparison <= self.bound
        return within and (self.also is None or self.also(outcome))


@dataclass(frozen=True)
class Benchmark:
    name: str
    figure: Figure
    reference: Figure | None = None
    target: Target | None = None
    difference: bool = False  # compare as figure - reference, not figure / reference

    def outcome(self, samples: dict[str, list[Sample]]) -> Outcome:
        value = self.figure.median(samples)
        reference = None if self.reference is None else self.reference.median(samples)
        comparison = None
        if value is not None and reference:
            comparison = value - reference if self.difference else value / reference
        return Outcome(value, reference, comparison, samples.get(self.figure.workload, []))

    def workloads(self) -> set[str]:
        return {f.workload for f in (self.figure, self.reference) if f is not None}


def _failing(app: str) -> list[Benchmark]:
    return [
        Benchmark(f"failing-{app}", Figure(app), Figure("floor"), Target(2.0)),
        Benchmark(f"failing-{app}-checks", Figure(app, "slowest_failing"),
                  Figure(app, "slowest_passing"), Target(0.5, text="diff <= 0.5 s"),
                  difference=True),
    ]


BENCHMARKS = (
    Benchmark("floor", Figure("floor")),
    Benchmark("suite", Figure("example-suite"), Figure("floor"),
              Target(1.10)),
    # CPU seconds (user + system) of the run's whole process tree.
    Benchmark("suite-cpu", Figure("example-suite", "cpu"), Figure("floor", "cpu")),
    *_failing("forgetful-router"),
    *_failing("no-monitor-queue"),
    Benchmark("idle", Figure("idle-plugin"), Figure("idle-no-plugin"), Target(1.03)),
    Benchmark("scale-3q", Figure("scale-3q")),
    Benchmark("scale-50q", Figure("scale-50q"), Figure("scale-3q")),
    Benchmark("scale-200q", Figure("scale-200q"), Figure("scale-3q"),
              Target(1.8, text="<= 1.8, conforms",
                     also=lambda o: set(o.details("verdict")) == {"conforms"})),
    # SQS calls per work queue (at 3 and at 200 queues; the notes break them down).
    Benchmark("calls-per-queue", Figure("calls")),
    Benchmark("throughput", Figure("throughput-plugin"), Figure("throughput-bare"),
              Target(0.7, at_least=True, text=">= 0.7, 0 lost",
                     also=lambda o: max(o.details("lost"), default=1) == 0)),
    Benchmark("result-db", Figure("example-suite-result-db"), Figure("example-suite")),
    Benchmark("system", Figure("system"), Figure("floor")),
    Benchmark("system-n2", Figure("system-n2"), Figure("system"),
              Target(0.99, text="< 1.0 (faster with -n 2)")),
    # Not among the defaults (minutes a round): --only tests.
    Benchmark("tests", Figure("tests"), target=Target(200.0, text="<= 200 s", absolute=True)),
    Benchmark("tests-cpu", Figure("tests", "cpu")),
)
#: Benchmarks run only when named with --only.
ON_REQUEST = ("tests", "tests-cpu")

HEADER = ("benchmark", "median", "reference", "ref. median", "ratio", "target", "met?",
          "notes")


def _selects(name: str, benchmark: Benchmark) -> bool:
    return benchmark.name == name or benchmark.name.startswith(name + "-")


def select(names: Sequence[str] | None) -> list[Benchmark]:
    """The benchmarks named, or those whose name starts with a name and a dash."""
    if not names:
        return [b for b in BENCHMARKS if b.name not in ON_REQUEST]
    return [b for b in BENCHMARKS if any(_selects(n, b) for n in names)]


def measure(benchmarks: Sequence[Benchmark], repeat: int, timeout: float
            ) -> tuple[dict[str, list[Sample]], str | None]:
    """Every workload the benchmarks need, once per round, round after round;
    on Ctrl-C, what was measured so far and a note saying so."""
    needed = set().union(*(b.workloads() for b in benchmarks))
    order = [w for w in WORKLOADS.values() if w.name in needed]
    samples: dict[str, list[Sample]] = {w.name: [] for w in order}
    with Lab(timeout) as lab:
        try:
            for round_number in range(1, repeat + 1):
                for workload in order:
                    print(f"[round {round_number}/{repeat}] {workload.name} ...",
                          end=" ", flush=True, file=sys.stderr)
                    sample = _measure_once(workload, lab)
                    samples[workload.name].append(sample)
                    print(sample.problem or quantity(sample.value, workload.unit),
                          file=sys.stderr)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return samples, f"interrupted in round {round_number} of {repeat}"
    return samples, None


def _measure_once(workload: Workload, lab: Lab) -> Sample:
    """One sample; a workload that breaks is a failed run, not the end of the benchmark."""
    try:
        return workload.measure(lab)
    except Exception as exc:
        traceback.print_exc()
        return Sample(None, f"error: {type(exc).__name__}")


def row(benchmark: Benchmark, samples: dict[str, list[Sample]]) -> list[str | None]:
    """The benchmark's cells; None where it has nothing to show."""
    outcome = benchmark.outcome(samples)
    reference, target = benchmark.reference, benchmark.target
    comparison = None
    if outcome.comparison is not None:
        comparison = (f"diff {outcome.comparison:+.2f} s" if benchmark.difference
                      else f"{outcome.comparison:.2f}")
    return [
        benchmark.name,
        quantity(outcome.value, benchmark.figure.unit),
        None if reference is None else _label(reference),
        None if reference is None else quantity(outcome.reference, reference.unit),
        comparison,
        None if target is None else str(target),
        None if target is None else ("yes" if target.met(outcome) else "no"),
        _notes(benchmark, samples),
    ]


#: How a detail's figure is named, where it is not a check's time.
DETAIL_LABELS = {"cpu": "{workload}, CPU s"}


def _label(figure: Figure) -> str:
    if figure.detail is None:
        return figure.workload
    if figure.detail in DETAIL_LABELS:
        return DETAIL_LABELS[figure.detail].format(workload=figure.workload)
    return f"{figure.detail.replace('_', ' ')} check"


def _notes(benchmark: Benchmark, samples: dict[str, list[Sample]]) -> str | None:
    notes = []
    if benchmark.figure.detail is not None:
        notes.append(f"median: {_label(benchmark.figure)}")
    for workload in sorted(benchmark.workloads()):
        runs = samples.get(workload, [])
        failed = [s.problem for s in runs if s.problem is not None]
        if failed:
            notes.append(f"{workload}: {len(failed)}/{len(runs)} runs failed "
                         f"({', '.join(sorted(set(failed)))})")
    outcome = benchmark.outcome(samples)
    verdicts = sorted(set(outcome.details("verdict")) - {None})
    if verdicts and benchmark.figure.detail is None:
        notes.append("verdict: " + " / ".join(verdicts))
    lost = outcome.details("lost")
    if lost:
        notes.append(f"lost: {max(lost)}")
    for runs in outcome.details("per_action")[-1:]:  # the last round's breakdown
        notes.append(", ".join(f"{name} {n:g}" for name, n in
                               sorted(runs.items(), key=lambda item: -item[1])))
    return "; ".join(notes) or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"rounds; the table shows medians (default {DEFAULT_REPEAT})")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="only these benchmarks (a NAME also selects NAME-*)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds one run may take (default {DEFAULT_TIMEOUT:.0f})")
    parser.add_argument("--rst", action="store_true",
                        help="print the table as a reStructuredText simple table")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(b.name for b in BENCHMARKS))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    unknown = [n for n in args.only or () if not any(_selects(n, b) for b in BENCHMARKS)]
    if unknown:
        parser.error(f"--only {' '.join(unknown)}: no such benchmark; one of "
                     f"{', '.join(b.name for b in BENCHMARKS)}")
    benchmarks = select(args.only)
    _check_interpreter(parser)
    # A kill or a closing terminal ends the run the way Ctrl-C does, cleaned up;
    # and the children get SIGINT's default even when started in the background.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)

    print("\n".join(machine_lines(_pg_ctl())), flush=True)
    samples, interrupted = measure(benchmarks, args.repeat, args.timeout)
    rounds = max((len(s) for s in samples.values()), default=0)
    print(f"\nmedians of {rounds} run{'s' if rounds != 1 else ''} each"
          + (f" ({interrupted})" if interrupted else "") + "\n")
    print(table(HEADER, [row(b, samples) for b in benchmarks], rst=args.rst))
    return 130 if interrupted else 0


def _check_interpreter(parser: argparse.ArgumentParser) -> None:
    try:
        import pytest_cadasta  # noqa: F401
    except ImportError:
        parser.error(f"{sys.executable} cannot import pytest_cadasta; run the benchmark "
                     "with the project's virtualenv: .venv/bin/python benchmarks/bench.py")


def _pg_ctl() -> str | None:
    from pytest_cadasta.services.postgres import find_pg_ctl

    try:
        return find_pg_ctl(None)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
