"""pytest-cadasta: conformance checks for Cadasta platform Celery workers.

Importing this package stays cheap: pytest loads it for every run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_functional_tests"]


def build_functional_tests(app: Any, is_worker: bool = True) -> Any:
    """A ``unittest.TestCase`` class running the conformance checks on ``app``."""
    from pytest_cadasta.unittest_suite import build_functional_tests as build

    return build(app, is_worker=is_worker)
