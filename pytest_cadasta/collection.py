"""Turning the checks into pytest items, marked ``cadasta``, collected once per
session whatever paths pytest got: ``cadasta::<group>::<check>[queue]`` for one
app; with several, ``cadasta::<label>::<group>::<check>[queue]`` per app and
``cadasta::system::<check>`` for the system."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_cadasta.checks import Check, iter_checks, system_checks
from pytest_cadasta.conformance import PRODUCER_ONLY_REASON, run_check
from pytest_cadasta.errors import CadastaError, could_not_run_key
from pytest_cadasta.settings import SYSTEM

if TYPE_CHECKING:
    from pytest_cadasta.conformance import Conformance
    from pytest_cadasta.run import LoadedApp

SUITE = "cadasta"
#: Celery warns, with a traceback, of each task the worker could not run or
#: record; a check tells it from its events, in one line with its cause.
INTERNAL_ERROR_WARNING = "ignore:Exception raised outside body:RuntimeWarning"


class CheckNode(pytest.Collector):
    """The suite, or one of its groups: made by ``build_items``, not by pytest's
    collection, so ``collect`` returns what was made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.children: list[Any] = []

    def collect(self) -> list[Any]:
        return list(self.children)


class CheckItem(pytest.Function):
    """A check, run as a test function over the session's conformance state."""

    #: Its place in the running order (set by ``build_items``).
    running_order: int = 0
    #: The label of the app it judges ("system" for the system checks).
    cadasta_app: str = ""
    #: Its group (the label "system" for the system checks).
    cadasta_group: str = ""
    #: Skipped by design: a check of a worker, on an app that only produces.
    skip_expected: bool = False

    def reportinfo(self) -> tuple[str, int, str]:
        return SUITE, 0, self.nodeid


def _judge(request: pytest.FixtureRequest, check: Check, state: Any,
           queue: str | None) -> None:
    """Run ``check`` on ``state`` (a Conformance, or the SystemConformance) as a
    test: a failure without a traceback, or a skip with its reason; when the
    plugin's own parts gave way, a failure marked as "could not run" (an error,
    not a verdict)."""
    error = None
    try:
        failure, skipped = run_check(check, state, queue)
    except CadastaError as exc:
        error = f"pytest-cadasta could not run the check: {exc}"
    if error is not None:
        request.node.stash[could_not_run_key] = True
        pytest.fail(error, pytrace=False)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    if skipped is not None:
        pytest.skip(skipped)


# The infrastructure a check needs comes as a fixture: if it cannot be
# provided, the check is an error (not judged), not a verdict.
def _test_function(check: Check, queue: str | None) -> Any:
    def test(request: pytest.FixtureRequest, _cadasta_verdict: None,
             _cadasta_conformance: Conformance) -> None:
        _judge(request, check, _cadasta_conformance, queue)

    def test_with_worker(request: pytest.FixtureRequest, _cadasta_verdict: None,
                         _cadasta_conformance: Conformance, _cadasta_checks_worker: Any) -> None:
        _judge(request, check, _cadasta_conformance, queue)

    chosen = test_with_worker if check.needs_worker else test
    chosen.__doc__ = check.doc
    return chosen


def _system_test_function(check: Check) -> Any:
    def test(request: pytest.FixtureRequest, _cadasta_verdict: None,
             _cadasta_system: Any) -> None:
        _judge(request, check, _cadasta_system, None)

    def test_with_workers(request: pytest.FixtureRequest, _cadasta_verdict: None,
                          _cadasta_system: Any, _cadasta_system_workers: Any) -> None:
        _judge(request, check, _cadasta_system, None)

    chosen = test_with_workers if check.needs_worker else test
    chosen.__doc__ = check.doc
    return chosen


def _child(parent: Any, name: str) -> CheckNode:
    node = CheckNode.from_parent(parent, name=name)
    parent.children.append(node)
    return node


def build_items(session: pytest.Session, apps: list[LoadedApp],
                producer_only: bool = False) -> list[CheckItem]:
    """One item per check (per queue where it applies) of each app, then the
    system's checks when there are several apps, in running order; each group's
    items together, so every group shows once."""
    suite = CheckNode.from_parent(session, name=SUITE, nodeid=SUITE)
    items: list[CheckItem] = []

    def add(parent: CheckNode, name: str, function: Any, label: str, group: str,
            skip: str | None = None) -> None:
        item = CheckItem.from_parent(parent, name=name, callobj=function)
        item.running_order = len(items)
        item.cadasta_app, item.cadasta_group = label, group
        item.add_marker("cadasta")
        item.add_marker(pytest.mark.filterwarnings(INTERNAL_ERROR_WARNING))
        if skip is not None:
            item.skip_expected = True
            item.add_marker(pytest.mark.skip(reason=skip))
        parent.children.append(item)
        items.append(item)

    for loaded in apps:
        top = suite if len(apps) == 1 else _child(suite, loaded.label)
        groups: dict[str, CheckNode] = {}
        for check, queue in iter_checks(loaded.topology.work_queues):
            if check.group not in groups:
                groups[check.group] = _child(top, check.group)
            skip = None
            if not loaded.entry.is_worker and check.for_workers_only:
                skip = (PRODUCER_ONLY_REASON if producer_only
                        else f"{loaded.entry.spelled}: the app runs no worker")
            add(groups[check.group], check.name if queue is None else f"{check.name}[{queue}]",
                _test_function(check, queue), loaded.label, check.group, skip)
    if len(apps) > 1:
        system = _child(suite, SYSTEM)
        for check in system_checks(apps):
            add(system, check.name, _system_test_function(check), SYSTEM, SYSTEM)
    session.config.hook.pytest_collectreport(
        report=pytest.CollectReport(SUITE, "passed", None, items))
    return items


def keep_check_order(items: list[Any]) -> None:
    """Put the checks among ``items`` back in their running order, in the places
    they hold now (the other items stay where they are)."""
    places = [i for i, item in enumerate(items) if isinstance(item, CheckItem)]
    ordered = sorted((items[i] for i in places), key=lambda item: item.running_order)
    for place, item in zip(places, ordered):
        items[place] = item


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


def scheduling_by_app(config: pytest.Config, log: Any, several: bool) -> Any:
    """pytest-xdist's scope distribution with the apps as the scopes, and every
    other test a scope of its own (spread one by one, as ``-n`` spreads them)."""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        # xdist's own --dist loadfile overrides this (private) method the same
        # way; xdist has no public hook for the unit of distribution.
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid, several) or nodeid

    return Scheduling(config, log)
