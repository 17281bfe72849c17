"""Faults injected into an inner run at a chosen moment, with no sleep racing
the run: $FAULT names what breaks, $FAULT_AT the check where (before it
runs), or one of MOMENTS.

The infrastructure is reached the way a user's own conftest would reach it,
through the plugin's public fixtures; the moments inside the plugin's own
start and stop, by wrapping the call that marks them."""

import os
import signal
import time
from pathlib import Path

import pytest
from _pytest import junitxml  # the JUnit writer's class, to pause it

from pytest_cadasta.services import events, postgres, resultdb, worker

FAULT = os.environ.get("FAULT", "")
AT = os.environ.get("FAULT_AT", "")
# The safety nets, shortened for the test.
if "ROUND_TRIP_TIMEOUT" in os.environ:
    events.ROUND_TRIP_TIMEOUT = float(os.environ["ROUND_TRIP_TIMEOUT"])
if "STOP_TIMEOUT" in os.environ:
    worker.STOP_TIMEOUT = float(os.environ["STOP_TIMEOUT"])


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


def interrupt(request=None):
    """Ctrl-C."""
    os.kill(os.getpid(), signal.SIGINT)


def terminate(request=None):
    """A CI job's timeout, a container stopping."""
    os.kill(os.getpid(), signal.SIGTERM)


def pause(request=None):
    """Stop here (forever, as far as the run goes), saying so in $PAUSED_FILE:
    the outer test kills the run now. Once: a process that takes over (an
    xdist worker replacing the one killed) goes on."""
    paused = Path(os.environ["PAUSED_FILE"])
    once = paused.with_name(paused.name + ".once")
    if once.exists():
        return
    once.touch()
    # Whole or absent: the outer test reads the pid as soon as the file exists.
    writing = paused.with_name(paused.name + ".writing")
    writing.write_text(str(os.getpid()))
    os.replace(writing, paused)
    time.sleep(600)


FAULTS = {f.__name__: f for f in (kill_database, stop_moto, interrupt, terminate, pause)}


def before(owner, name):
    """The fault as ``owner.name`` is first called, whatever thread calls it."""
    original = getattr(owner, name)

    def injected(*args, **kwargs):
        setattr(owner, name, original)
        FAULTS[FAULT]()
        return original(*args, **kwargs)

    setattr(owner, name, injected)


def on_first_task():
    """The fault as the worker starts its first task, in the worker's thread."""
    from celery.signals import task_prerun

    def fault(**kwargs):
        task_prerun.disconnect(fault)
        FAULTS[FAULT]()

    task_prerun.connect(fault, weak=False)


MOMENTS = {
    # In the background, while PostgreSQL starts (pytest configures, collects).
    "postgres start": lambda: before(postgres, "_wait_until_ready"),
    # As the worker starts its first task, while the check waits for it.
    "first task": on_first_task,
    # Teardown: as the session's fixtures drop the throwaway database...
    "database drop": lambda: before(resultdb.ResultDatabase, "drop"),
    # ...and as pytest_unconfigure stops PostgreSQL.
    "postgres stop": lambda: before(postgres.EphemeralPostgres, "stop"),
    # As pytest's JUnit XML writer is about to write its file.
    "junit write": lambda: before(junitxml.LogXML, "pytest_sessionfinish"),
}
if AT in MOMENTS:
    MOMENTS[AT]()


@pytest.fixture(autouse=True)
def _fault(request):
    """Before the check named $FAULT_AT."""
    if request.node.name == AT:
        FAULTS[FAULT](request)
