"""Turning the checks into pytest items: ``cadasta::<group>::<check>[queue]``,
marked ``cadasta``, collected once per session whatever paths pytest got."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_cadasta import topology
from pytest_cadasta.checks import GROUPS, Check, iter_checks
from pytest_cadasta.conformance import PRODUCER_ONLY_REASON, run_check

SUITE = "cadasta"


class CadastaSuite(pytest.Collector):
    """The conformance suite; its children are the check groups."""

    def collect(self) -> list[Any]:
        return [CheckGroup.from_parent(self, name=group) for group in GROUPS]


class CheckGroup(pytest.Collector):
    def collect(self) -> list[Any]:
        return []  # items are made by ``build_items``, in running order


class CheckItem(pytest.Function):
    """A check, run as a test function over the session's conformance state."""

    def reportinfo(self) -> tuple[str, int, str]:
        return SUITE, 0, self.nodeid


def _test_function(check: Check, queue: str | None) -> Any:
    def test(_cadasta_conformance: Any) -> None:
        failure, skipped = run_check(check, _cadasta_conformance, queue)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        if skipped is not None:
            pytest.skip(skipped)

    test.__doc__ = check.doc
    return test


def build_items(session: pytest.Session, app: Any, producer_only: bool) -> list[Any]:
    suite = CadastaSuite.from_parent(session, name=SUITE, nodeid=SUITE)
    groups = {group.name: group for group in suite.collect()}
    items = []
    for check, queue in iter_checks(tuple(topology.work_queue_names(app))):
        name = check.name if queue is None else f"{check.name}[{queue}]"
        item = CheckItem.from_parent(groups[check.group], name=name,
                                     callobj=_test_function(check, queue))
        item.add_marker("cadasta")
        if producer_only and check.needs_worker:
            item.add_marker(pytest.mark.skip(reason=PRODUCER_ONLY_REASON))
        items.append(item)
    session.config.hook.pytest_collectreport(
        report=pytest.CollectReport(SUITE, "passed", None, items))
    return items
