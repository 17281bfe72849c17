"""pytest-cadasta's fixtures: the users' (``cadasta_app``, ``cadasta_sqs``,
``cadasta_result_db``, ``cadasta_worker`` and the several-app ones) and the
checks' own, each providing its part from the run's harnesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_cadasta.basics.errors import CadastaError
from pytest_cadasta.basics.ids import SYSTEM, not_for_a_producer

if TYPE_CHECKING:
    from pytest_cadasta.audit.state import AuditRun
    from pytest_cadasta.basics.protocol import CheckState
    from pytest_cadasta.model.platform_view import Platform
    from pytest_cadasta.running.harness import Harness
    from pytest_cadasta.running.run import Run
    from pytest_cadasta.services.resultdb import ResultDatabase
    from pytest_cadasta.services.sqs import MockSQS
    from pytest_cadasta.services.worker import InProcessWorker

T = TypeVar("T")

__all__ = ["_cadasta_checks_worker", "_cadasta_harness", "_cadasta_run", "_cadasta_state",
           "_cadasta_wired_app", "cadasta_app", "cadasta_apps", "cadasta_platform",
           "cadasta_result_db", "cadasta_sqs", "cadasta_worker", "cadasta_workers"]


def provide(what: str, make: Callable[..., T], *args: Any) -> T:
    """``make(*args)``; a failure of the plugin's own parts or settings fails the
    test with the one-line reason, not a traceback. The one place a fixture
    catches pytest-cadasta's errors."""
    __tracebackhide__ = True
    try:
        return make(*args)
    except CadastaError as exc:
        reason = f"pytest-cadasta could not {what}: {exc}"
    pytest.fail(reason, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture(scope="session")
def _cadasta_run(pytestconfig: pytest.Config) -> Iterator[Run | AuditRun]:
    """The run's harnesses and check states (an audit's: ``AuditRun``, which
    only the checks ask for: an audit collects no test of the project)."""
    from pytest_cadasta.session import CadastaSession

    session = CadastaSession.of(pytestconfig)
    run = session.start_run()
    try:
        yield run
    finally:
        with session.interrupts.held() as held:  # a signal waits until all is stopped
            before = len(held.received)
            try:
                provide("stop what it started", session.end_run)
            finally:
                if len(held.received) > before:
                    raise KeyboardInterrupt(f"signal {held.name}")


@pytest.fixture(scope="session")
def _cadasta_harness(_cadasta_run: Run) -> Harness:
    return _cadasta_run.harness()


@pytest.fixture
def cadasta_sqs(_cadasta_harness: Harness) -> MockSQS:
    """The moto SQS server every client is pinned to; emptied before each test."""
    sqs = provide("provide SQS", _cadasta_harness.sqs)
    sqs.purge()
    return sqs


@pytest.fixture(scope="session")
def cadasta_result_db(_cadasta_harness: Harness) -> ResultDatabase:
    """The throwaway PostgreSQL database holding the result schema."""
    return provide("provide the result database", _cadasta_harness.result_db)


@pytest.fixture(scope="session")
def _cadasta_wired_app(_cadasta_harness: Harness) -> Any:
    return provide("provide the app", _cadasta_harness.app)


@pytest.fixture
def cadasta_app(_cadasta_wired_app: Any, cadasta_sqs: MockSQS) -> Any:
    """The user's app (the first worker's, with several), wired to the mocked SQS
    and the result database."""
    return _cadasta_wired_app


@pytest.fixture
def cadasta_apps(_cadasta_run: Run, cadasta_sqs: MockSQS) -> dict[str, Any]:
    """Every app of the run, by label, each wired to the mocked SQS and the
    result database."""
    return {label: provide(f"provide the app {label}", _cadasta_run.harness(label).app)
            for label in _cadasta_run.apps}


@pytest.fixture
def cadasta_platform(_cadasta_run: Run, cadasta_sqs: MockSQS) -> Platform:
    """The platform's view of the run: its sync-tasks recording what reaches
    the monitor queue (the producer's, else the first app's) into its Task
    table, and each task as the platform shows it, joined to its result."""
    return provide("provide the platform", _cadasta_run.platform)


@pytest.fixture
def cadasta_worker(_cadasta_run: Run, _cadasta_harness: Harness,
                   cadasta_app: Any) -> InProcessWorker:
    """An in-process worker consuming the queues the production worker consumes
    (--cadasta-queues, else every work queue; never the monitor)."""
    if not _cadasta_run.workers:
        first = _cadasta_run.loaded(_cadasta_run.first)
        pytest.skip(not_for_a_producer(_cadasta_run.settings.producer_spelled(first.entry)))
    return provide("provide the worker", _cadasta_harness.worker)


@pytest.fixture
def cadasta_workers(_cadasta_run: Run, cadasta_apps: dict[str, Any]) -> dict[str, InProcessWorker]:
    """An in-process worker per worker app, by label, each consuming the queues
    its production worker consumes."""
    return {loaded.label: provide(f"provide the worker of {loaded.label}",
                                  _cadasta_run.harness(loaded.label).worker)
            for loaded in _cadasta_run.workers}


@pytest.fixture
def _cadasta_state(_cadasta_run: Run | AuditRun, request: pytest.FixtureRequest) -> CheckState:
    """What the requesting check stands on: its app's state, or the system's."""
    label = request.node.cadasta_app
    if label == SYSTEM:
        return provide("set up the system checks", _cadasta_run.system)
    return provide("set up the checks", _cadasta_run.state, label)


@pytest.fixture
def _cadasta_checks_worker(_cadasta_state: Any, request: pytest.FixtureRequest) -> Any:
    """The worker(s) a check that needs one stands on: its app's (with the result
    database), or, for the system's, one per worker app. With its
    infrastructure gone, none: the check is an error saying so."""
    gone = _cadasta_state.gone(quick=True)
    if gone is not None:
        from pytest_cadasta.basics.errors import gone_key

        request.node.stash[gone_key] = gone
        return None
    return provide(f"start {_cadasta_state.WORKERS}", _cadasta_state.start_workers)
