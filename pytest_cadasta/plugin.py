"""pytest-cadasta's hooks and fixtures. The work lives in the modules named for it.

To add a plugin option: ``settings.OPTIONS`` (and the ``Settings`` field it
fills); everything here reads the frozen ``Settings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_cadasta.errors import COULD_NOT_RUN, CadastaError, could_not_run_key
from pytest_cadasta.settings import Settings, add_options, read_settings

if TYPE_CHECKING:
    from pytest_cadasta.conformance import Conformance
    from pytest_cadasta.harness import Harness
    from pytest_cadasta.resultdb import ResultDatabase
    from pytest_cadasta.sqs import MockSQS
    from pytest_cadasta.worker import InProcessWorker

settings_key = pytest.StashKey[Settings]()
app_key = pytest.StashKey[Any]()
topology_key = pytest.StashKey["Topology"]()
server_key = pytest.StashKey["MotoServer"]()
stack_key = pytest.StashKey[ExitStack]()
postgres_key = pytest.StashKey["StartingPostgres"]()
session_key = pytest.StashKey[pytest.Session]()

T = TypeVar("T")
SUMMARY_PLUGIN = "cadasta-summary"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _session_stack(config: pytest.Config) -> ExitStack:
    """What the run started and must stop: closed by pytest_unconfigure (and, as
    a backstop, by pytest's cleanup, which runs even when configuring fails)."""
    if stack_key not in config.stash:
        config.stash[stack_key] = ExitStack()
        config.add_cleanup(config.stash[stack_key].close)
    return config.stash[stack_key]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Iterator[None]:
    """With an app to check, moto listens and the AWS environment is pinned before
    any conftest is imported: a conftest that imports the app (and an app that
    talks to its broker while imported, as the platform does) reaches moto, never
    AWS."""
    spec = getattr(early_config.known_args_namespace, "cadasta_app", None)
    if spec is None:
        try:
            spec = early_config.getini("cadasta_app") or None
        except ValueError:
            spec = None
    if spec:
        from pytest_cadasta.sqs import local_aws

        early_config.stash[server_key] = _session_stack(early_config).enter_context(
            local_aws())
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cadasta: a Cadasta conformance check (pytest-cadasta)")
    from pytest_cadasta.worker import KOMBU_CURL_WARNINGS

    for message in KOMBU_CURL_WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")
    settings = config.stash[settings_key] = read_settings(config)
    if settings.app_spec is None:
        return
    from pytest_cadasta import interrupts, loader
    from pytest_cadasta.sqs import local_aws
    from pytest_cadasta.summary import Summary
    from pytest_cadasta.topology import Topology

    stack = _session_stack(config)
    interrupts.stop_cleanly_on_sigterm(stack)
    label = settings.label("app")
    loader.put_rootdir_on_path(config.rootpath, stack)
    loader.check_module_exists(settings.app_spec, config.rootpath, label)
    if server_key not in config.stash:
        config.stash[server_key] = stack.enter_context(local_aws())
    app = config.stash[app_key] = loader.load_app(settings.app_spec, config.rootpath, label)
    loader.check_queues(app, settings.queues, settings.label("queues"))
    config.stash[topology_key] = Topology.of(app, settings.app_spec.split(".")[0].split(":")[0],
                                             settings.queues)
    if settings.result_db is None and settings.pg_ctl is not None \
            and not settings.producer_only and not config.option.collectonly:
        from pytest_cadasta.postgres import StartingPostgres

        # initdb (or a copy of the cached cluster) and pg_ctl start run while
        # pytest collects; the first check that needs the database waits.
        starting = config.stash[postgres_key] = StartingPostgres(settings.pg_ctl)
        stack.callback(starting.stop)
    from pytest_cadasta.wiring import UNDELIVERABLE_WARNING

    # kombu's warning exists because the harness set a dead-letter queue; the
    # checks read it themselves, and it must not fail a user's -W error run.
    config.addinivalue_line("filterwarnings", f"ignore:{UNDELIVERABLE_WARNING}")
    config.pluginmanager.register(Summary(settings, config.stash[topology_key]),
                                  SUMMARY_PLUGIN)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[session_key] = session  # for pytest_unconfigure


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop moto and put the environment back before any other plugin's
    unconfigure (a conftest reading the environment sees it restored). A
    signal meanwhile waits until all is stopped, and the run ends as
    interrupted."""
    stack = config.stash.get(stack_key, None)
    if stack is not None:
        import signal

        from pytest_cadasta.interrupts import HeldSignals

        with HeldSignals() as held:
            stack.close()
        session = config.stash.get(session_key, None)
        if held.received and session is not None:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                name = signal.Signals(held.received[0]).name
                reporter.write_line(f"pytest-cadasta: {name} while it stopped what it started: "
                                    "all of it stopped, the run ends as interrupted",
                                    yellow=True)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    topology = config.stash.get(topology_key, None)
    if topology is None:
        return None
    from pytest_cadasta.report import header_lines

    return header_lines(config.stash[settings_key], config.stash[app_key], topology)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> Iterator[None]:
    """Put the conformance checks first (before -k/-m deselection runs); then,
    after every other plugin (pytest-randomly, --ff ...), give them back their
    own running order among themselves, wherever the rest went."""
    topology = config.stash.get(topology_key, None)
    if topology is not None:
        from pytest_cadasta.collection import build_items

        checks = build_items(session, topology, config.stash[settings_key].producer_only)
        config.pluginmanager.get_plugin(SUMMARY_PLUGIN).expect(checks)
        items[:0] = checks
    result = yield
    if topology is not None:
        from pytest_cadasta.collection import keep_check_order

        keep_check_order(items)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[Any]:
    """The report of a check that could not run says so, for its status and the
    verdict; its line says why, so the worker's log of the same fault (a
    traceback per retry) is left out."""
    report = yield
    if call.when == "call" and item.stash.get(could_not_run_key, False):
        setattr(report, COULD_NOT_RUN, True)
        report.sections = [s for s in report.sections if not s[0].startswith("Captured log")]
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if getattr(report, COULD_NOT_RUN, False):
        return "error", "E", "ERROR"
    return None


def provide(what: str, make: Callable[..., T], *args: Any) -> T:
    """``make(*args)``; a failure of the plugin's own parts or settings fails the
    test with the one-line reason, not a traceback. The one place pytest-cadasta's
    errors are caught."""
    __tracebackhide__ = True
    try:
        return make(*args)
    except CadastaError as exc:
        reason = f"pytest-cadasta could not {what}: {exc}"
    pytest.fail(reason, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture(scope="session")
def _cadasta_harness(pytestconfig: pytest.Config) -> Iterator[Harness]:
    from pytest_cadasta.harness import Harness

    stash = pytestconfig.stash
    harness = Harness(stash[settings_key], stash.get(app_key, None),
                      stash.get(topology_key, None), stash.get(server_key, None),
                      stash.get(postgres_key, None))
    try:
        yield harness
    finally:
        from pytest_cadasta.interrupts import HeldSignals

        with HeldSignals() as held:  # a signal waits until all is stopped
            try:
                provide("stop what it started", harness.close)
            finally:
                if held.received:
                    raise KeyboardInterrupt(f"signal {held.received[0]}")


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
    """The user's app, wired to the mocked SQS and the result database."""
    return _cadasta_wired_app


@pytest.fixture(scope="session")
def _cadasta_session_worker(_cadasta_harness: Harness,
                            pytestconfig: pytest.Config) -> InProcessWorker:
    if pytestconfig.stash[settings_key].producer_only:
        from pytest_cadasta.conformance import PRODUCER_ONLY_REASON

        pytest.skip(PRODUCER_ONLY_REASON)
    return provide("provide the worker", _cadasta_harness.worker)


@pytest.fixture
def cadasta_worker(_cadasta_session_worker: InProcessWorker,
                   cadasta_app: Any) -> InProcessWorker:
    """An in-process worker consuming the queues the production worker consumes
    (--cadasta-queues, else every work queue; never the monitor)."""
    return _cadasta_session_worker


@pytest.fixture(scope="session")
def _cadasta_conformance(_cadasta_harness: Harness, pytestconfig: pytest.Config) -> Conformance:
    from pytest_cadasta.conformance import Conformance

    return provide("set up the checks", Conformance, _cadasta_harness,
                   not pytestconfig.stash[settings_key].producer_only)


@pytest.fixture(scope="session")
def _cadasta_checks_worker(_cadasta_conformance: Conformance) -> InProcessWorker:
    """The worker the worker-side checks need, with the result database."""
    return provide("start the worker", _cadasta_conformance.require_worker)


@pytest.fixture(scope="session")
def _cadasta_verdict(request: pytest.FixtureRequest) -> Iterator[None]:
    """Hands the verdict and the per-group counts to JUnit XML as testsuite
    properties (pytest's record_testsuite_property) when the checks are done."""
    record = (request.getfixturevalue("record_testsuite_property")
              if request.config.getoption("xmlpath", None) else None)
    yield
    summary = request.config.pluginmanager.get_plugin(SUMMARY_PLUGIN)
    if record is not None and summary is not None:
        for name, value in summary.properties().items():
            record(name, value)
