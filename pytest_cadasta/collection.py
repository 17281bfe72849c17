"""Turning the checks into pytest items: ``cadasta::<group>::<check>[queue]``,
marked ``cadasta``, collected once per session whatever paths pytest got."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_cadasta.checks import Check, iter_checks
from pytest_cadasta.conformance import PRODUCER_ONLY_REASON, run_check
from pytest_cadasta.errors import CadastaError, could_not_run_key

if TYPE_CHECKING:
    from pytest_cadasta.conformance import Conformance
    from pytest_cadasta.topology import Topology

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

    def reportinfo(self) -> tuple[str, int, str]:
        return SUITE, 0, self.nodeid


def _test_function(check: Check, queue: str | None) -> Any:
    def test(request: pytest.FixtureRequest, _cadasta_verdict: None,
             _cadasta_conformance: Conformance) -> None:
        error = None
        try:
            failure, skipped = run_check(check, _cadasta_conformance, queue)
        except CadastaError as exc:
            error = f"pytest-cadasta could not run the check: {exc}"
        if error is not None:
            request.node.stash[could_not_run_key] = True
            pytest.fail(error, pytrace=False)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        if skipped is not None:
            pytest.skip(skipped)

    def test_with_worker(request: pytest.FixtureRequest, _cadasta_verdict: None,
                         _cadasta_conformance: Conformance, _cadasta_checks_worker: Any) -> None:
        # The worker (and the result database) come as a fixture: if they
        # cannot be provided, the check is an error, not a verdict.
        test(request, _cadasta_verdict, _cadasta_conformance)

    chosen = test_with_worker if check.needs_worker else test
    chosen.__doc__ = check.doc
    return chosen


def build_items(session: pytest.Session, topology: Topology,
                producer_only: bool) -> list[CheckItem]:
    """One item per check (per queue where it applies), in running order; each
    group's items together, so every group shows once."""
    suite = CheckNode.from_parent(session, name=SUITE, nodeid=SUITE)
    groups: dict[str, CheckNode] = {}
    items = []
    for check, queue in iter_checks(topology.work_queues):
        if check.group not in groups:
            groups[check.group] = CheckNode.from_parent(suite, name=check.group)
            suite.children.append(groups[check.group])
        name = check.name if queue is None else f"{check.name}[{queue}]"
        item = CheckItem.from_parent(groups[check.group], name=name,
                                     callobj=_test_function(check, queue))
        item.running_order = len(items)
        item.add_marker("cadasta")
        item.add_marker(pytest.mark.filterwarnings(INTERNAL_ERROR_WARNING))
        if producer_only and check.for_workers_only:
            item.add_marker(pytest.mark.skip(reason=PRODUCER_ONLY_REASON))
        groups[check.group].children.append(item)
        items.append(item)
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
