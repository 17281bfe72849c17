"""pytest-cadasta's hooks and fixtures. The work lives in the modules named for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from pytest_cadasta.settings import Settings, add_options, read_settings

settings_key = pytest.StashKey[Settings]()
app_key = pytest.StashKey[Any]()
server_key = pytest.StashKey[Any]()
stack_key = pytest.StashKey[ExitStack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cadasta: a Cadasta conformance check (pytest-cadasta)")
    from pytest_cadasta.worker import KOMBU_CURL_WARNINGS

    for message in KOMBU_CURL_WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")
    settings = read_settings(config)
    config.stash[settings_key] = settings
    if settings.app is not None:
        from pytest_cadasta import loader

        stack = config.stash[stack_key] = ExitStack()
        config.add_cleanup(stack.close)  # a backstop: pytest_unconfigure closes it
        loader.put_rootdir_on_path(config.rootpath, stack)
        loader.check_module_exists(settings.app, config.rootpath, settings.app_label)
        # Before the app is imported: whatever it does with its broker while being
        # imported (the platform sets itself up) must reach moto, never AWS.
        from pytest_cadasta.sqs import local_aws

        config.stash[server_key] = stack.enter_context(local_aws())
        config.stash[app_key] = loader.load_app(settings.app, config.rootpath,
                                                settings.app_label)
        if settings.result_db is None:
            from pytest_cadasta.postgres import find_pg_ctl

            find_pg_ctl(settings.pg_ctl)  # a missing PostgreSQL is a usage error now
        from pytest_cadasta.summary import Summary

        config.pluginmanager.register(Summary(), "cadasta-summary")


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop moto and put the environment back before any other plugin's
    unconfigure (a conftest reading the environment sees it restored)."""
    stack = config.stash.get(stack_key, None)
    if stack is not None:
        stack.close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(settings_key, None)
    app = config.stash.get(app_key, None)
    if settings is None or app is None:
        return None
    from pytest_cadasta.report import header_lines

    return header_lines(settings, app)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Put the conformance checks first (before -k/-m deselection runs)."""
    app = config.stash.get(app_key, None)
    if app is None:
        return
    from pytest_cadasta.collection import build_items

    items[:0] = build_items(session, app, config.stash[settings_key].producer_only)


@pytest.fixture(scope="session")
def _cadasta_harness(pytestconfig: pytest.Config) -> Iterator[Any]:
    from pytest_cadasta.harness import Harness

    harness = Harness(pytestconfig.stash[settings_key],
                      pytestconfig.stash.get(app_key, None),
                      pytestconfig.stash.get(server_key, None))
    try:
        yield harness
    finally:
        harness.close()


def _provide(what: str, make: Any, *args: Any) -> Any:
    """``make(*args)``; a failure of the plugin's own infrastructure fails the
    test with the one-line reason, not a traceback."""
    __tracebackhide__ = True
    from pytest_cadasta.errors import InfrastructureError

    try:
        return make(*args)
    except (InfrastructureError, LookupError, pytest.UsageError) as exc:
        pytest.fail(f"pytest-cadasta could not {what}: {exc}", pytrace=False)


def _use(harness: Any, part: str) -> Any:
    __tracebackhide__ = True
    return _provide(f"provide {part}", getattr(harness, part))


@pytest.fixture
def cadasta_sqs(_cadasta_harness: Any) -> Any:
    """The moto SQS server every client is pinned to; emptied before each test."""
    sqs = _use(_cadasta_harness, "sqs")
    sqs.purge()
    return sqs


@pytest.fixture(scope="session")
def cadasta_result_db(_cadasta_harness: Any) -> Any:
    """The throwaway PostgreSQL database holding the result schema."""
    return _use(_cadasta_harness, "result_db")


@pytest.fixture(scope="session")
def _cadasta_wired_app(_cadasta_harness: Any) -> Any:
    return _use(_cadasta_harness, "app")


@pytest.fixture
def cadasta_app(_cadasta_wired_app: Any, cadasta_sqs: Any) -> Any:
    """The user's app, wired to the mocked SQS and the result database."""
    return _cadasta_wired_app


@pytest.fixture(scope="session")
def _cadasta_session_worker(_cadasta_harness: Any, pytestconfig: pytest.Config) -> Any:
    if pytestconfig.stash[settings_key].producer_only:
        from pytest_cadasta.conformance import PRODUCER_ONLY_REASON

        pytest.skip(PRODUCER_ONLY_REASON)
    return _use(_cadasta_harness, "worker")


@pytest.fixture
def cadasta_worker(_cadasta_session_worker: Any, cadasta_app: Any) -> Any:
    """An in-process worker consuming the app's work queues (not the monitor)."""
    return _cadasta_session_worker


@pytest.fixture(scope="session")
def _cadasta_conformance(_cadasta_harness: Any, pytestconfig: pytest.Config) -> Any:
    __tracebackhide__ = True
    from pytest_cadasta.conformance import Conformance

    return _provide("set up the checks", Conformance, _cadasta_harness,
                    not pytestconfig.stash[settings_key].producer_only)
