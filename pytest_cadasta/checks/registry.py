"""The registry of checks: each check says its group, its phase, whether it
runs once per work queue, whether it applies to an app that only produces and
whether it audits a deployment (``--cadasta-audit``) rather than checks an
app's conformance; the running order comes from those, never from where a
check is defined."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pytest_cadasta.basics.ids import ALL_GROUPS, AUDIT_GROUPS, SYSTEM

#: How a check's docstring opens the paragraph saying what it looks at.
EVIDENCE = "Evidence:"


class Phase(enum.IntEnum):
    """When a check runs within its group."""

    #: Reads settings and the broker: needs no worker.
    BEFORE_WORKER = 0
    #: Watches the in-process worker run tasks (skipped for a producer-only app).
    WITH_WORKER = 1


#: A check: called with the state it stands on (an ``AppState``, or for the
#: system's a ``SystemState``; an audit's ``AppAudit`` or ``SystemAudit``) and
#: its queue (None unless per queue); it may return lines it reports without
#: judging them.
CheckFunction = Callable[[Any, Any], Any]


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
    #: Judges what the apps of a deployment share (the monitor queue): with
    #: several apps it runs once, among the system's checks, on their state.
    shared: bool = False
    #: A check of the audit of a deployment (--cadasta-audit): it runs in an
    #: audit, and only there.
    audit: bool = False

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
        paragraphs = self._paragraphs()
        return paragraphs[0] if paragraphs else ""

    @property
    def evidence(self) -> str:
        """What the check looks at: its docstring's paragraph that opens with
        ``Evidence:``, on one line, without that word ('' if it has none). The
        manual's reference of the checks is made of this and ``doc``."""
        for paragraph in self._paragraphs():
            if paragraph.startswith(EVIDENCE):
                return paragraph[len(EVIDENCE):].strip()
        return ""

    def _paragraphs(self) -> list[str]:
        text = inspect.cleandoc(self.func.__doc__ or "")
        return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]

    def order(self) -> tuple[int, int]:
        rank = len(ALL_GROUPS) if self.group == SYSTEM else ALL_GROUPS.index(self.group)
        return rank, self.phase


_REGISTERED: list[Check] = []


def check(group: str, phase: Phase = Phase.BEFORE_WORKER, per_queue: bool = False,
          judges_worker: bool = False, applies: Callable[[list[Any]], bool] | None = None,
          shared: bool = False, audit: bool = False,
          ) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as a check of ``group`` (a check of an
    audit group audits; a system check of an audit says ``audit=True``)."""
    if group not in (*ALL_GROUPS, SYSTEM):
        raise ValueError(f"unknown check group {group!r}; expected one of {ALL_GROUPS} "
                         f"or {SYSTEM!r}")
    audit = audit or group in AUDIT_GROUPS

    def register(func: CheckFunction) -> CheckFunction:
        _REGISTERED.append(Check(group, func.__name__, func, phase, per_queue, judges_worker,
                                 applies, shared, audit))
        return func
    return register


def every_check() -> list[Check]:
    """Every registered check, of every kind, in running order (the manual's
    reference lists them all)."""
    return sorted(_REGISTERED, key=lambda c: (c.audit, *c.order()))


def all_checks(audit: bool = False) -> list[Check]:
    """Every check of one app, in running order: by group, then phase (stable
    otherwise); those of an audit with ``audit``, else the conformance suite's."""
    return sorted((c for c in _REGISTERED if c.group != SYSTEM and c.audit == audit),
                  key=Check.order)


def system_checks(apps: list[Any], audit: bool = False) -> list[Check]:
    """Every check across ``apps`` (the run's ``LoadedApp``s) that applies to
    them, in running order: with ``audit``, the audit's system checks and its
    checks of what the apps share."""
    return sorted((c for c in _REGISTERED if c.audit == audit
                   and ((c.group == SYSTEM and (c.applies is None or c.applies(apps)))
                        or (audit and c.shared))), key=Check.order)


def iter_checks(work_queues: tuple[str, ...], audit: bool = False,
                shared: bool = True) -> Iterator[tuple[Check, str | None]]:
    """(check, queue or None) for each test to run, in running order (the
    audit's with ``audit``; without ``shared``, leaving out the checks of what
    several apps share, which the system's run once)."""
    for item in all_checks(audit):
        if item.shared and not shared:
            continue
        if item.per_queue:
            for queue in work_queues:
                yield item, queue
        else:
            yield item, None
