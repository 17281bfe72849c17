"""pytest-cadasta's errors, one family: raised where the fault is, caught in one
place. A ``UsageError`` is a bad setting, raised while pytest configures (pytest
reports it, exit code 4); everything else is caught where a fixture provides
its part (``fixtures.provide``), or where a check runs (``COULD_NOT_RUN``), and
makes that test an error with the one-line reason. A verdict on the app is
never an error: a check that finds a defect fails."""

from __future__ import annotations

import pytest


class CadastaError(Exception):
    """Anything pytest-cadasta reports about its own settings or parts."""


class UsageError(CadastaError, pytest.UsageError):
    """A bad setting: the message quotes the value and says what would do."""


class NotConfigured(CadastaError):
    """A fixture needs a setting that was not given (e.g. no app)."""


class InfrastructureError(CadastaError):
    """SQS, PostgreSQL or the in-process worker could not be provided."""


class PortTaken(InfrastructureError):
    """The port chosen for PostgreSQL was taken before it could bind it (moto
    has no such window: the system chooses its port as it binds)."""


class WorkerFailed(InfrastructureError):
    """The in-process worker did not start or stop."""


class NotReached(CadastaError):
    """An audit could not read a deployment's part: its SQS endpoint or result
    database did not answer, or refused the worker's credentials (one line,
    no password). The check of that part fails saying so; the checks that
    stand on it are skipped."""


class WouldChange(CadastaError):
    """An audit refused a call that would change the deployment (a message
    sent, a queue created, changed or deleted)."""


#: A check whose infrastructure failed under it (a server gone away) is marked
#: so in its item's stash, then by an attribute of this name on its report:
#: pytest reports an error, not a failure, and the verdict says the app was
#: not judged.
COULD_NOT_RUN = "cadasta_could_not_run"
could_not_run_key = pytest.StashKey[bool]()
#: What of a check's infrastructure had gone away when its worker was asked
#: for: the check is an error saying so, whatever the worker still does.
gone_key = pytest.StashKey[str]()
#: A failing check whose message names the cause of what the worker logged (a
#: traceback per retry): its report leaves that log out.
explained_key = pytest.StashKey[bool]()
#: The apps a failing system check blames (labels): its report points at the
#: first one's code.
blamed_key = pytest.StashKey[tuple[str, ...]]()


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type's name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for a message that shows an exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
