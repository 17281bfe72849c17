"""pytest-cadasta's hooks; the fixtures come from ``fixtures``, the work from
the modules named for it (``session`` holds the run's state).

A run that gives no ``--cadasta-*`` option or ini key imports no more of the
plugin than this, ``settings`` (the options), ``using`` and the fixtures'
definitions: every hook asks ``using.state`` first, and the rest is imported
once the plugin is used.

To add a plugin option: ``settings.OPTIONS`` (and the ``Settings`` field it
fills); everything reads the frozen ``Settings``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_cadasta.basics.errors import COULD_NOT_RUN, could_not_run_key, explained_key
from pytest_cadasta.fixtures import *  # noqa: F403  (pytest finds the fixtures here)
from pytest_cadasta.settings import add_options
from pytest_cadasta.using import apps_given, given
from pytest_cadasta.using import state as run_state


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Iterator[None]:
    """With an app to check, moto listens and the AWS environment is pinned before
    any conftest is imported: a conftest that imports the app (and an app that
    talks to its broker while imported, as the platform does) reaches moto, never
    AWS. In an audit nothing is pinned: what would change the deployment is
    refused instead."""
    if apps_given(early_config):
        from pytest_cadasta.session import CadastaSession

        CadastaSession.of(early_config).guard_before_imports()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Iterator[int | pytest.ExitCode]:
    """The run's exit code says it was interrupted if a Ctrl-C or SIGTERM
    reached it, however that signal's KeyboardInterrupt fared. When the run is
    over (everything the plugin started stopped), a non-daemon thread the
    project's code left running would keep the process from exiting: the
    process ends anyway, with the run's exit code."""
    exit_code: int | pytest.ExitCode = pytest.ExitCode.INTERNAL_ERROR
    try:
        exit_code = yield
        session = run_state(config)
        if session is not None:
            exit_code = session.exit_code(exit_code)
        return exit_code
    except pytest.UsageError:
        exit_code = pytest.ExitCode.USAGE_ERROR
        raise
    finally:
        session = run_state(config)
        if session is not None:
            session.end_lingering_threads(exit_code)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if run_state(config) is None and not given(config):
        return  # not used: nothing more of the plugin is imported
    from pytest_cadasta.session import CadastaSession

    CadastaSession.of(config).configure()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``-n N`` (xdist's default distribution), the apps are what is spread
    over the xdist workers: each app's checks run together on one of them, the
    system's too; other tests go as by ``--dist loadscope``."""
    session = run_state(config)
    if session is None or not session.apps or config.getoption("dist") != "load":
        return None
    from pytest_cadasta.basics.distribution import scheduling_by_app

    return scheduling_by_app(config, log, session.settings.is_system)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = run_state(session.config)
    if state is not None:
        state.finished = session  # marked interrupted if a signal comes as it closes


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop moto and put the environment back before any other plugin's
    unconfigure (a conftest reading the environment sees it restored)."""
    session = run_state(config)
    if session is not None:
        session.close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    session = run_state(config)
    if session is None or not session.apps:
        return None
    from pytest_cadasta.header import header_lines

    return header_lines(session.settings, session.apps, session.targets)


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    """An audit collects none of the project's tests (they are the default
    mode's, and would run against the real environment)."""
    session = run_state(config)
    return True if session is not None and session.settings.audit else None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> Iterator[None]:
    """Put the conformance checks first (before -k/-m deselection runs); then,
    after every other plugin (pytest-randomly, --ff ...), give them back their
    own running order among themselves, wherever the rest went."""
    state = run_state(config)
    checking = state is not None and bool(state.apps)
    if checking:
        items[:0] = state.collect_checks(session)
    result = yield
    if checking:
        from pytest_cadasta.collection import keep_check_order, leave_out_the_rest

        if state.settings.audit:
            leave_out_the_rest(config, items)
        keep_check_order(items)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[Any]:
    """The report of a check that could not run says so, for its status and the
    verdict; its line says why, as does a failure that names its cause, so the
    worker's log of the same fault (a traceback per retry) is left out."""
    report = yield
    could_not_run = item.stash.get(could_not_run_key, False)
    if call.when == "call" and could_not_run:
        setattr(report, COULD_NOT_RUN, True)
    if call.when != "setup" and (could_not_run or item.stash.get(explained_key, False)):
        report.sections = [s for s in report.sections if not s[0].startswith("Captured log")]
    state = run_state(item.config)
    if state is not None and call.when == "call":
        state.describe_report(item, report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if getattr(report, COULD_NOT_RUN, False):
        return "error", "E", "ERROR"
    return None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    state = run_state(item.config)
    if state is not None:
        state.check_done(item, nextitem)
        state.stop_if_interrupted(item.session)
