"""What the benchmark prints: the machine it ran on, and one table."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from workloads import SECONDS


def machine_lines(pg_ctl: str | None) -> list[str]:
    """nproc, CPU model, load, Python, PostgreSQL and the checkout."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"machine:    {cores} cores, {_cpu_model()}, load {_load()}",
        f"python:     {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        f"postgresql: {_output([pg_ctl, '--version']) if pg_ctl else 'not found'}",
        f"checkout:   {_output(['git', 'describe', '--always', '--dirty'], _checkout())}",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _checkout() -> Path:
    return Path(__file__).resolve().parents[1]


def _output(command: Sequence[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip() or "unknown"


def quantity(value: float | None, unit: str) -> str | None:
    if value is None:
        return None
    return f"{value:.2f} {unit}" if unit == SECONDS else f"{value:.1f} {unit}"


def table(header: Sequence[str], rows: Sequence[Sequence[str | None]], rst: bool = False) -> str:
    """An aligned text table, or a reStructuredText simple table; a None cell
    reads '-' (empty in reStructuredText, where '-' would be a bullet)."""
    cells = [list(header), *([("" if rst else "-") if c is None else c for c in row]
                             for row in rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*cells)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()

    rule = "  ".join(("=" if rst else "-") * width for width in widths)
    lines = [line(cells[0]), rule, *(line(row) for row in cells[1:])]
    return "\n".join([rule, *lines, rule] if rst else lines)
