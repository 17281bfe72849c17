"""The check protocol: how a check fails (saw, needs, fix) or skips, and how
both runners (pytest items, unittest methods) run one and read its outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn, Protocol

from pytest_cadasta.basics.errors import CadastaError, InfrastructureError
from pytest_cadasta.basics.forensics import (
    raised_by_the_libraries,
    raised_while_checking,
    user_frame,
)

#: The one-line fix most failures name.
TOOLBOX = "cadasta_toolbox.config.Config"


class CheckFailed(AssertionError):
    """A conformance check failed; the message is the review comment.
    ``explained``: it names the cause the worker's log shows at length (the
    report leaves that log out). ``blamed``: the labels of the apps whose code
    holds the fault, when a check of several apps knows (its report points
    there)."""

    def __init__(self, message: str, explained: bool = False,
                 blamed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.explained = explained
        self.blamed = blamed


class Outcome(NamedTuple):
    """What running a check came to: a failure message or a skip reason (at most
    one), whether the failure explains the worker's log (left out), and what a
    passing check reports without judging it (its lines)."""

    failure: str | None = None
    skipped: str | None = None
    explained: bool = False
    notes: tuple[str, ...] = ()
    blamed: tuple[str, ...] = ()


class CheckSkipped(Exception):
    """A check that does not apply (e.g. it needs a worker, and there is none)."""


class CheckState(Protocol):
    """What a check stands on: one app's state (``AppState``) or the system's
    (``SystemState``); in an audit, ``AppAudit`` or ``SystemAudit``."""

    #: What ``start_workers`` starts, for a message ("the worker").
    WORKERS: str

    def start_workers(self) -> Any:
        """Start what a check that needs a worker stands on."""

    def gone(self, quick: bool = False) -> str | None:
        """What of the infrastructure no longer answers, in one line (None: all
        of it answers); ``quick``: only what can be known without a session
        (a process of the run's own that ended), for asking before each check."""


class Runnable(Protocol):
    """A check as the registry keeps it (``checks.registry.Check``)."""

    #: Called with the state it stands on and its queue (None unless per queue);
    #: returns the lines it reports without judging them, if any.
    func: Callable[[Any, Any], Any]

    @property
    def doc(self) -> str:
        """What fails in production without it, in one line."""


def fail(saw: str, needs: str, fix: str, explained: bool = False,
         blamed: tuple[str, ...] = ()) -> NoReturn:
    """Fail a check the way a reviewer would: what was seen, what is needed, the
    fix; ``explained`` when that names the cause of the errors the worker logged;
    ``blamed``: the apps (labels) whose code the fix is in, for a system check."""
    __tracebackhide__ = True
    raise CheckFailed(f"\n  saw:   {saw}\n  needs: {needs}\n  fix:   {fix}", explained,
                      blamed)


def run_check(check: Runnable, state: Any, queue: str | None) -> Outcome:
    """Run one check; return its ``Outcome``.

    Both runners report from this, outside any except block, so no exception
    chain reaches the report. A check that went wrong while a part of the
    infrastructure had gone away raises an ``InfrastructureError`` saying so:
    what it saw is no verdict on the app.
    """
    try:
        notes = check.func(state, queue)
    except CheckSkipped as exc:
        return Outcome(skipped=str(exc))
    except CadastaError:
        raise  # the plugin's own part failed: an error, not a verdict
    except Exception as exc:
        gone = state.gone()
        if gone is not None:
            raise InfrastructureError(gone) from None
        if isinstance(exc, CheckFailed):
            return Outcome(failure=f"{check.doc}{exc}", explained=exc.explained,
                           blamed=exc.blamed)
        if user_frame(exc) is not None:
            return Outcome(failure=f"{check.doc}{raised_while_checking(exc)}")
        theirs = raised_by_the_libraries(exc)  # an EncodeError of the app's serializer
        if theirs is None:
            raise  # raised in the plugin, not by the app's settings: an error
        return Outcome(failure=f"{check.doc}{theirs}", explained=True)
    return Outcome(notes=tuple(notes or ()))
