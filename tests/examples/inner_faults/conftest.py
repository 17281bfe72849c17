"""Faults injected into an inner run at a chosen moment, with no sleep racing
the run: $FAULT names what breaks, $FAULT_AT the check (or the hook) where.

The infrastructure is reached the way a user's own conftest would reach it,
through the plugin's public fixtures."""

import os
import signal

import pytest

from pytest_cadasta import conformance

FAULT = os.environ.get("FAULT", "")
AT = os.environ.get("FAULT_AT", "")
if "ROUND_TRIP_TIMEOUT" in os.environ:  # the safety net, shortened for the test
    conformance.ROUND_TRIP_TIMEOUT = float(os.environ["ROUND_TRIP_TIMEOUT"])


def kill_database(request):
    """SIGKILL the result database's postmaster: no shutdown, its pid file and
    its children left behind, as after an OOM kill."""
    database = request.getfixturevalue("cadasta_result_db")
    with database.admin_connection() as connection:
        datadir = connection.execute("SHOW data_directory").fetchone()[0]
    with open(os.path.join(datadir, "postmaster.pid")) as pidfile:
        os.kill(int(pidfile.readline()), signal.SIGKILL)


def stop_moto(request):
    """moto's server goes away: its port refuses connections from now on."""
    request.getfixturevalue("cadasta_sqs").server.stop()


FAULTS = {f.__name__: f for f in (kill_database, stop_moto)}


@pytest.fixture(autouse=True)
def _fault(request):
    """Before the check named $FAULT_AT."""
    if request.node.name == AT:
        FAULTS[FAULT](request)
