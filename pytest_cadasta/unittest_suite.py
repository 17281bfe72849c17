"""The conformance checks as a ``unittest.TestCase``, for projects on unittest."""

from __future__ import annotations

import os
import unittest
import warnings
from typing import Any

from pytest_cadasta.basics.ids import not_for_a_producer
from pytest_cadasta.basics.protocol import run_check
from pytest_cadasta.basics.topology import Topology
from pytest_cadasta.checks import Check, iter_checks
from pytest_cadasta.running.app_state import AppState
from pytest_cadasta.running.harness import Harness
from pytest_cadasta.services.worker import KOMBU_CURL_WARNINGS
from pytest_cadasta.settings import Settings

RESULT_DB_VARIABLE = "CADASTA_RESULT_DB"
#: How a unittest user says the app runs no worker.
PRODUCER = "is_worker=False"


def _restore_filters(saved: list) -> None:
    warnings.filters[:] = saved


def build_functional_tests(app: Any, is_worker: bool = True) -> type[unittest.TestCase]:
    """A TestCase class running every conformance check against ``app``.

    It starts its own infrastructure in ``setUpClass`` (moto's SQS server, an
    ephemeral PostgreSQL, or the server named by $CADASTA_RESULT_DB, and a worker
    when ``is_worker``) and tears it down in ``tearDownClass``.
    """
    settings = Settings(producer_only=not is_worker,
                        result_db=os.environ.get(RESULT_DB_VARIABLE) or None)
    topology = Topology.of(app)

    class CadastaFunctionalTests(unittest.TestCase):
        harness: Harness | None = None
        state: AppState | None = None

        @classmethod
        def setUpClass(cls) -> None:
            cls.harness = Harness(settings, app, topology)
            saved_filters = warnings.filters[:]
            for message in KOMBU_CURL_WARNINGS:
                warnings.filterwarnings("ignore", message=message,
                                        category=DeprecationWarning)
            cls.harness.on_close(_restore_filters, saved_filters)
            try:
                cls.state = AppState(cls.harness, None if is_worker else PRODUCER)
            except BaseException:
                cls.harness.close()
                raise

        @classmethod
        def tearDownClass(cls) -> None:
            if cls.harness is not None:
                cls.harness.close()

    checks = list(iter_checks(topology.work_queues))
    for number, (check, queue) in enumerate(checks, start=1):
        # Numbered, so unittest's alphabetical order is the running order.
        width = max(2, len(str(len(checks))))
        name = f"test_{number:0{width}d}_{check.group}_{check.name}" + (
            f"_{queue}" if queue else "")
        method = _method(check, queue)
        if not check.applies_to_producer and not is_worker:
            method = unittest.skip(not_for_a_producer(PRODUCER))(method)
        setattr(CadastaFunctionalTests, name.replace(".", "_"), method)
    return CadastaFunctionalTests


def _method(check: Check, queue: str | None) -> Any:
    def test(self: unittest.TestCase) -> None:
        outcome = run_check(check, self.state, queue)
        if outcome.failure is not None:
            self.fail(outcome.failure)
        if outcome.skipped is not None:
            self.skipTest(outcome.skipped)

    test.__doc__ = check.doc
    return test
