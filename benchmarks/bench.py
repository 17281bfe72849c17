"""Benchmarks of pytest-cadasta: what it costs when unused, what each part of
its infrastructure costs, and the wall time of the whole conformance suite on
the example worker. Run: .venv/bin/python benchmarks/bench.py [--repeat N]

Figures are wall-clock seconds on this machine; quote the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "worker"


def timed_run(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 5):
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}")
    return elapsed


def series(label: str, args: list[str], cwd: Path, repeat: int) -> float:
    times = [timed_run(args, cwd) for _ in range(repeat)]
    median = statistics.median(times)
    print(f"{label:<58} median {median:6.2f} s  (min {min(times):.2f}, n={repeat})")
    return median


def unused_plugin_cost(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        without = series("pytest, one trivial test, plugin disabled", [*base, "-p", "no:cadasta"],
                         Path(tmp), repeat)
        with_plugin = series("pytest, one trivial test, plugin loaded (no app)", base,
                             Path(tmp), repeat)
        print(f"{'  -> cost of the unused plugin':<58} {with_plugin - without:+.3f} s")


def parts() -> None:
    """Each piece of infrastructure, started once in this process."""
    from celery import Celery

    from cadasta_toolbox.config import Config
    from pytest_cadasta.harness import Harness
    from pytest_cadasta.settings import Settings

    app = Celery("bench")
    app.config_from_object(Config())

    @app.task(name="export.bench")
    def bench(n):
        return n

    settings = Settings(app=None, producer_only=False, result_db=None, result_schema=None,
                        pg_ctl=None)
    harness = Harness(settings, app)
    try:
        for label, step in (("moto SQS server start", harness.sqs),
                            ("ephemeral PostgreSQL (initdb + start + schema)",
                             harness.result_db),
                            ("wiring the app", harness.app),
                            ("in-process worker start", harness.worker)):
            start = time.perf_counter()
            step()
            print(f"{label:<58} {time.perf_counter() - start:6.2f} s")
        trips = []
        for i in range(10):
            start = time.perf_counter()
            result = app.send_task("export.bench", args=(i,))
            harness.result_db().wait_for_row(result.id, timeout=10)
            trips.append(time.perf_counter() - start)
        print(f"{'send -> run -> SUCCESS row, median of 10':<58} "
              f"{statistics.median(trips):6.2f} s  (max {max(trips):.2f})")
    finally:
        start = time.perf_counter()
        harness.close()
        print(f"{'teardown (worker, database, server)':<58} {time.perf_counter() - start:6.2f} s")


def suite(repeat: int) -> None:
    python = sys.executable
    series("conformance suite + 3 own tests, example worker (wall)",
           [python, "-m", "pytest", "-q", "--cadasta-app=worker.celery:app"], EXAMPLE, repeat)
    series("conformance suite only, example worker (wall)",
           [python, "-m", "pytest", "-q", "--cadasta-app=worker.celery:app", "-m", "cadasta"],
           EXAMPLE, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    unused_plugin_cost(max(args.repeat, 5))
    parts()
    suite(args.repeat)


if __name__ == "__main__":
    main()
