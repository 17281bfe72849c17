"""Running under pytest-xdist: which process is the controller, and the
scheduler that spreads the apps (each app's checks on one xdist worker)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_cadasta.basics.ids import unit_of


def is_xdist_worker(config: pytest.Config) -> bool:
    """An xdist worker: it runs tests; its controlling process reports."""
    return hasattr(config, "workerinput")


def is_xdist_controller(config: pytest.Config) -> bool:
    """pytest-xdist's controlling process: it runs no test (its workers do, each
    with infrastructure of its own), so it starts no database."""
    return (not is_xdist_worker(config)
            and config.getoption("dist", "no") not in (None, "no")
            and bool(config.getoption("numprocesses", None)))


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
