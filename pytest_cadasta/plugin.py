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
from pytest_cadasta.settings import AppEntry, Settings, add_options, read_settings

if TYPE_CHECKING:
    from pytest_cadasta.conformance import Conformance
    from pytest_cadasta.harness import Harness
    from pytest_cadasta.resultdb import ResultDatabase
    from pytest_cadasta.run import LoadedApp, Run
    from pytest_cadasta.sqs import MockSQS
    from pytest_cadasta.system import SystemConformance
    from pytest_cadasta.worker import InProcessWorker

settings_key = pytest.StashKey[Settings]()
apps_key = pytest.StashKey[list["LoadedApp"]]()
server_key = pytest.StashKey["MotoServer"]()
stack_key = pytest.StashKey[ExitStack]()
postgres_key = pytest.StashKey["StartingPostgres"]()
run_key = pytest.StashKey["Run"]()
#: The threads alive, and the modules imported, before any of the project's
#: code was imported: pytest's and its plugins'.
threads_key = pytest.StashKey[frozenset]()
tooling_key = pytest.StashKey[frozenset]()
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
    args = early_config.known_args_namespace
    given = bool(getattr(args, "cadasta_app", None) or getattr(args, "cadasta_producer", None))
    for key in ("cadasta_app", "cadasta_producer"):
        try:
            given = given or bool(early_config.getini(key))
        except ValueError:
            pass
    if given:
        import sys
        import threading

        from pytest_cadasta.sqs import local_aws

        early_config.stash[threads_key] = frozenset(threading.enumerate())
        early_config.stash[tooling_key] = frozenset(sys.modules)
        early_config.stash[server_key] = _session_stack(early_config).enter_context(
            local_aws())
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Iterator[int | pytest.ExitCode]:
    """When the run is over (everything the plugin started stopped), a
    non-daemon thread the project's code left running would keep the process
    from exiting: the process ends anyway, with the run's exit code."""
    exit_code: int | pytest.ExitCode = pytest.ExitCode.INTERNAL_ERROR
    try:
        exit_code = yield
        return exit_code
    except pytest.UsageError:
        exit_code = pytest.ExitCode.USAGE_ERROR
        raise
    finally:
        before = config.stash.get(threads_key, None)
        if before is not None:
            from pytest_cadasta import threads

            lingering = threads.lingering(before)
            if lingering:
                threads.end_despite(lingering, exit_code)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cadasta: a Cadasta conformance check (pytest-cadasta)")
    from pytest_cadasta.worker import KOMBU_CURL_WARNINGS

    for message in KOMBU_CURL_WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")
    settings = config.stash[settings_key] = read_settings(config)
    if not settings.apps:
        return
    from pytest_cadasta import interrupts, loader
    from pytest_cadasta.run import LoadedApp
    from pytest_cadasta.sqs import local_aws
    from pytest_cadasta.summary import Summary
    from pytest_cadasta.topology import Topology

    stack = _session_stack(config)
    interrupts.stop_cleanly_on_sigterm(stack)
    loader.put_rootdir_on_path(config.rootpath, stack)
    for entry in settings.apps:
        loader.check_module_exists(entry.spec, config.rootpath, entry.spelled)
    if server_key not in config.stash:
        config.stash[server_key] = stack.enter_context(local_aws())
    loaded = []
    with loader.tasks_apart() as load:
        for entry in settings.apps:
            def make(entry: AppEntry = entry) -> Any:
                return loader.load_app(entry.spec, config.rootpath, entry.spelled)

            app = load(entry.module, make) if settings.is_system else make()
            loader.check_queues(app, entry.queues, settings.label("queues"))
            loaded.append(LoadedApp(entry, app, Topology.of(app, entry.label, entry.queues)))
    config.stash[apps_key] = loaded
    workers = [entry for entry in settings.apps if entry.is_worker]
    if settings.result_db is None and settings.pg_ctl is not None \
            and workers and not config.option.collectonly and not is_xdist_controller(config):
        from pytest_cadasta.postgres import StartingPostgres

        # initdb (or a copy of the cached cluster) and pg_ctl start run while
        # pytest collects; the first check that needs the database waits.
        starting = config.stash[postgres_key] = StartingPostgres(settings.pg_ctl)
        stack.callback(starting.stop)
    from pytest_cadasta.wiring import UNDELIVERABLE_WARNING

    # kombu's warning exists because the harness set a dead-letter queue; the
    # checks read it themselves, and it must not fail a user's -W error run.
    config.addinivalue_line("filterwarnings", f"ignore:{UNDELIVERABLE_WARNING}")
    config.pluginmanager.register(Summary(settings, loaded), SUMMARY_PLUGIN)


def is_xdist_controller(config: pytest.Config) -> bool:
    """pytest-xdist's controlling process: it runs no test (its workers do, each
    with infrastructure of its own), so it starts no database."""
    return (not hasattr(config, "workerinput")
            and config.getoption("dist", "no") not in (None, "no")
            and bool(config.getoption("numprocesses", None)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``-n N`` (xdist's default distribution), the apps are what is spread
    over the xdist workers: each app's checks run together on one of them, the
    system's too; other tests go as by ``--dist loadscope``."""
    if not config.stash.get(apps_key, None) or config.getoption("dist") != "load":
        return None
    from pytest_cadasta.collection import scheduling_by_app

    return scheduling_by_app(config, log, config.stash[settings_key].is_system)


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
    loaded = config.stash.get(apps_key, None)
    if not loaded:
        return None
    from pytest_cadasta.report import header_lines

    return header_lines(config.stash[settings_key], loaded)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> Iterator[None]:
    """Put the conformance checks first (before -k/-m deselection runs); then,
    after every other plugin (pytest-randomly, --ff ...), give them back their
    own running order among themselves, wherever the rest went."""
    loaded = config.stash.get(apps_key, None)
    if loaded:
        from pytest_cadasta.collection import build_items

        checks = build_items(session, loaded, config.stash[settings_key].producer_only)
        config.pluginmanager.get_plugin(SUMMARY_PLUGIN).expect(checks)
        items[:0] = checks
    result = yield
    if loaded:
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


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """With several apps, an app's worker stops when its checks are done: each
    app's checks see only its own worker, as when it is judged alone."""
    label = getattr(item, "cadasta_app", None)
    if label is None or not item.config.stash[settings_key].is_system:
        return
    if getattr(nextitem, "cadasta_app", None) != label:
        run = item.session.config.stash.get(run_key, None)
        if run is not None:
            run.finish_app(label)



@pytest.fixture(scope="session")
def _cadasta_run(pytestconfig: pytest.Config) -> Iterator[Run]:
    from pytest_cadasta.run import Run

    stash = pytestconfig.stash
    run = stash[run_key] = Run(stash[settings_key], stash.get(apps_key, []),
                               stash.get(server_key, None), stash.get(postgres_key, None),
                               stash.get(tooling_key, frozenset()))
    try:
        yield run
    finally:
        del stash[run_key]
        from pytest_cadasta.interrupts import HeldSignals

        with HeldSignals() as held:  # a signal waits until all is stopped
            try:
                provide("stop what it started", run.close)
            finally:
                if held.received:
                    raise KeyboardInterrupt(f"signal {held.received[0]}")


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


def _skip_without_worker(config: pytest.Config) -> None:
    if not any(entry.is_worker for entry in config.stash[settings_key].apps):
        from pytest_cadasta.conformance import PRODUCER_ONLY_REASON

        pytest.skip(PRODUCER_ONLY_REASON)


@pytest.fixture
def cadasta_worker(_cadasta_harness: Harness, cadasta_app: Any,
                   pytestconfig: pytest.Config) -> InProcessWorker:
    """An in-process worker consuming the queues the production worker consumes
    (--cadasta-queues, else every work queue; never the monitor)."""
    _skip_without_worker(pytestconfig)
    return provide("provide the worker", _cadasta_harness.worker)


@pytest.fixture
def cadasta_workers(_cadasta_run: Run, cadasta_apps: dict[str, Any]) -> dict[str, InProcessWorker]:
    """An in-process worker per worker app, by label, each consuming the queues
    its production worker consumes."""
    return {loaded.label: provide(f"provide the worker of {loaded.label}",
                                  _cadasta_run.harness(loaded.label).worker)
            for loaded in _cadasta_run.workers}


@pytest.fixture
def _cadasta_conformance(_cadasta_run: Run, request: pytest.FixtureRequest) -> Conformance:
    """The checks' state of the app the requesting check judges."""
    return provide("set up the checks", _cadasta_run.conformance, request.node.cadasta_app)


@pytest.fixture
def _cadasta_checks_worker(_cadasta_conformance: Conformance) -> InProcessWorker:
    """The worker the worker-side checks need, with the result database."""
    return provide("start the worker", _cadasta_conformance.require_worker)


@pytest.fixture
def _cadasta_system(_cadasta_run: Run) -> SystemConformance:
    return provide("set up the system checks", _cadasta_run.system)


@pytest.fixture
def _cadasta_system_workers(_cadasta_system: SystemConformance) -> Any:
    """Every worker app's worker, each consuming its production queues."""
    return provide("start the workers", _cadasta_system.require_workers)


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
