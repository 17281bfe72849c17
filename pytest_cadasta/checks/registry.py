"""The registry of conformance checks: each check says its group, its phase,
whether it runs once per work queue and whether it applies to an app that only
produces; the running order comes from those, never from where a check is
defined."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pytest_cadasta.ids import GROUPS, SYSTEM


class Phase(enum.IntEnum):
    """When a check runs within its group."""

    #: Reads settings and the broker: needs no worker.
    BEFORE_WORKER = 0
    #: Watches the in-process worker run tasks (skipped for a producer-only app).
    WITH_WORKER = 1


#: A check: called with the state it stands on (an ``AppState``, or for the
#: system's a ``SystemState``) and its queue (None unless per queue).
CheckFunction = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Check:
    group: str
    name: str
    func: CheckFunction
    phase: Phase
    per_queue: bool
    #: Judges the app as a worker, without running one (False: any app).
    judges_worker: bool = False
    #: A system check: whether it applies to the run's apps (None: always).
    applies: Callable[[list[Any]], bool] | None = None

    @property
    def needs_worker(self) -> bool:
        return self.phase is Phase.WITH_WORKER

    @property
    def applies_to_producer(self) -> bool:
        """Whether it judges an app that only produces (the platform): a check
        that needs a worker, or judges the app as one, does not (skipped, with
        ``ids.not_for_a_producer``'s reason)."""
        return not (self.needs_worker or self.judges_worker)

    @property
    def doc(self) -> str:
        """The docstring's first paragraph, on one line: the failure in
        production the check protects against."""
        paragraph = (self.func.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(paragraph.split())

    def order(self) -> tuple[int, int]:
        rank = len(GROUPS) if self.group == SYSTEM else GROUPS.index(self.group)
        return rank, self.phase


_REGISTERED: list[Check] = []


def check(group: str, phase: Phase = Phase.BEFORE_WORKER, per_queue: bool = False,
          judges_worker: bool = False, applies: Callable[[list[Any]], bool] | None = None,
          ) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as a check of ``group``."""
    if group not in (*GROUPS, SYSTEM):
        raise ValueError(f"unknown check group {group!r}; expected one of {GROUPS} "
                         f"or {SYSTEM!r}")

    def register(func: CheckFunction) -> CheckFunction:
        _REGISTERED.append(Check(group, func.__name__, func, phase, per_queue, judges_worker,
                                 applies))
        return func
    return register


def all_checks() -> list[Check]:
    """Every check of one app, in running order: by group, then phase (stable
    otherwise)."""
    return sorted((c for c in _REGISTERED if c.group != SYSTEM), key=Check.order)


def system_checks(apps: list[Any]) -> list[Check]:
    """Every check across ``apps`` (the run's ``LoadedApp``s) that applies to
    them, in running order."""
    return sorted((c for c in _REGISTERED if c.group == SYSTEM
                   and (c.applies is None or c.applies(apps))), key=Check.order)


def iter_checks(work_queues: tuple[str, ...]) -> Iterator[tuple[Check, str | None]]:
    """(check, queue or None) for each test to run, in running order."""
    for item in all_checks():
        if item.per_queue:
            for queue in work_queues:
                yield item, queue
        else:
            yield item, None
