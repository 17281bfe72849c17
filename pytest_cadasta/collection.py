"""Turning the checks into pytest items, marked ``cadasta``, collected once per
session whatever paths pytest got: ``cadasta::<group>::<check>[queue]`` for one
app; with several, ``cadasta::<label>::<group>::<check>[queue]`` per app and
``cadasta::system::<check>`` for the system. An audit collects its own
checks, and those alone."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from pytest_cadasta.basics.errors import (
    COULD_NOT_RUN,
    CadastaError,
    blamed_key,
    could_not_run_key,
    explained_key,
    gone_key,
)
from pytest_cadasta.basics.ids import NOTE, SUITE, SYSTEM, not_for_a_producer
from pytest_cadasta.basics.protocol import run_check
from pytest_cadasta.checks import Check, iter_checks, system_checks
from pytest_cadasta.reporting.locations import AppLocations, Location

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.basics.protocol import CheckState
    from pytest_cadasta.settings import Settings

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
    """A check, run as a test function over the state its app's checks (or the
    system's) stand on."""

    #: Its place in the running order (set by ``build_items``).
    running_order: int = 0
    #: The label of the app it judges ("system" for the system checks).
    cadasta_app: str = ""
    #: Its group (the label "system" for the system checks).
    cadasta_group: str = ""
    #: Where its failure points in the user's code (None: nowhere in it, as for
    #: the system checks until one blames an app).
    cadasta_location: Location | None = None
    #: For a system check: where each app (by label) is built.
    cadasta_app_locations: dict[str, Location | None] | None = None

    def reportinfo(self) -> tuple[str, int, str]:
        return SUITE, 0, self.nodeid

    def fault_at(self, blamed: tuple[str, ...]) -> Location | None:
        """Where in the user's code its failure is: the first app it blames
        with a place in that code, else its own place (None: nowhere)."""
        for label in blamed:
            where = (self.cadasta_app_locations or {}).get(label)
            if where is not None:
                return where
        return self.cadasta_location


def place_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """A failing check's call report points where its fault is, for editors and
    annotation plugins: the router, the line that builds the app, the app a
    system check blames. A check that passed or was skipped points at the
    suite, as does one that could not run (the fault is not the user's). The
    check's id stays the headline."""
    if not isinstance(item, CheckItem) or not report.failed \
            or getattr(report, COULD_NOT_RUN, False):
        return
    where = item.fault_at(item.stash.get(blamed_key, ()))
    if where is not None:
        report.location = (os.path.relpath(where.path, item.config.rootpath), where.line,
                           item.nodeid)


def _judge(request: pytest.FixtureRequest, check: Check, state: CheckState,
           queue: str | None) -> None:
    """Run ``check`` on ``state`` as a test: a failure without a traceback, or a
    skip with its reason; when the plugin's own parts gave way, a failure marked
    as "could not run" (an error, not a verdict)."""
    error = request.node.stash.get(gone_key, None)  # seen as its worker was asked for
    if error is None:
        try:
            outcome = run_check(check, state, queue)
        except CadastaError as exc:
            error = str(exc)
    if error is not None:
        error = f"pytest-cadasta could not run the check: {error}"
    if error is not None:
        request.node.stash[could_not_run_key] = True
        pytest.fail(error, pytrace=False)
    if outcome.failure is not None:
        request.node.stash[explained_key] = outcome.explained
        request.node.stash[blamed_key] = outcome.blamed
        pytest.fail(outcome.failure, pytrace=False)
    if outcome.skipped is not None:
        pytest.skip(outcome.skipped)
    for note in outcome.notes:  # reported, not judged: the summary tells them
        request.node.user_properties.append((NOTE, note))


def _test_function(check: Check, queue: str | None) -> Any:
    """The test of ``check``: the state it stands on, and the worker when it
    needs one, come as fixtures: if one cannot be provided, the check is an
    error (not judged), not a verdict."""
    def test(request: pytest.FixtureRequest, _cadasta_state: CheckState) -> None:
        _judge(request, check, _cadasta_state, queue)

    def test_with_worker(request: pytest.FixtureRequest, _cadasta_state: CheckState,
                         _cadasta_checks_worker: Any) -> None:
        _judge(request, check, _cadasta_state, queue)

    chosen = test_with_worker if check.needs_worker else test
    chosen.__doc__ = check.doc
    return chosen


def _child(parent: Any, name: str) -> CheckNode:
    node = CheckNode.from_parent(parent, name=name)
    parent.children.append(node)
    return node


def build_items(session: pytest.Session, apps: list[LoadedApp],
                settings: Settings) -> list[CheckItem]:
    """One item per check (per queue where it applies) of each app, then the
    system's checks when there are several apps, in running order; each group's
    items together, so every group shows once."""
    suite = CheckNode.from_parent(session, name=SUITE, nodeid=SUITE)
    items: list[CheckItem] = []

    locations = {loaded.label: AppLocations.of(loaded.app, loaded.entry.module)
                 for loaded in apps}

    def add(parent: CheckNode, check: Check, queue: str | None, label: str,
            skip: str | None = None) -> None:
        name = check.name if queue is None else f"{check.name}[{queue}]"
        item = CheckItem.from_parent(parent, name=name, callobj=_test_function(check, queue))
        item.running_order = len(items)
        item.cadasta_app, item.cadasta_group = label, check.group
        if label == SYSTEM and len(apps) > 1:
            item.cadasta_app_locations = {app: where.app for app, where in locations.items()}
        else:
            item.cadasta_location = locations[label].for_group(check.group)
        item.add_marker(SUITE)
        item.add_marker(pytest.mark.filterwarnings(INTERNAL_ERROR_WARNING))
        if skip is not None:
            item.add_marker(pytest.mark.skip(reason=skip))
        parent.children.append(item)
        items.append(item)

    for loaded in apps:
        top = suite if len(apps) == 1 else _child(suite, loaded.label)
        groups: dict[str, CheckNode] = {}
        skip = (None if loaded.entry.is_worker
                else not_for_a_producer(settings.producer_spelled(loaded.entry)))
        checks = iter_checks(loaded.topology.work_queues, settings.audit,
                             shared=len(apps) == 1)
        for check, queue in checks:
            if check.group not in groups:
                groups[check.group] = _child(top, check.group)
            add(groups[check.group], check, queue, loaded.label,
                None if check.applies_to_producer else skip)
    if len(apps) > 1:
        system = _child(suite, SYSTEM)
        for check in system_checks(apps, settings.audit):
            add(system, check, None, SYSTEM)
    session.config.hook.pytest_collectreport(
        report=pytest.CollectReport(SUITE, "passed", None, items))
    return items


def leave_out_the_rest(config: pytest.Config, items: list[Any]) -> None:
    """An audit runs its checks alone: every other item (none, unless a path
    was given explicitly) is deselected, so no test of the project runs against
    the real environment."""
    others = [item for item in items if not isinstance(item, CheckItem)]
    if others:
        items[:] = [item for item in items if isinstance(item, CheckItem)]
        config.hook.pytest_deselected(items=others)


def keep_check_order(items: list[Any]) -> None:
    """Put the checks among ``items`` back in their running order, in the places
    they hold now (the other items stay where they are)."""
    places = [i for i, item in enumerate(items) if isinstance(item, CheckItem)]
    ordered = sorted((items[i] for i in places), key=lambda item: item.running_order)
    for place, item in zip(places, ordered):
        items[place] = item
