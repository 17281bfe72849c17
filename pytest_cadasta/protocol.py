"""The check protocol: how a check fails (saw, needs, fix) or skips, and how
both runners (pytest items, unittest methods) run one and read its outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from pytest_cadasta.errors import CadastaError, InfrastructureError
from pytest_cadasta.forensics import raised_while_checking, user_frame

#: The one-line fix most failures name.
TOOLBOX = "cadasta_toolbox.config.Config"


class CheckFailed(AssertionError):
    """A conformance check failed; the message is the review comment."""


class CheckSkipped(Exception):
    """A check that does not apply (e.g. it needs a worker, and there is none)."""


class CheckState(Protocol):
    """What a check stands on: one app's state (``AppState``) or the system's
    (``SystemState``)."""

    #: What ``start_workers`` starts, for a message ("the worker").
    WORKERS: str

    def start_workers(self) -> Any:
        """Start what a check that needs a worker stands on."""

    def gone(self) -> str | None:
        """What of the infrastructure no longer answers, in one line (None: all
        of it answers)."""


class Runnable(Protocol):
    """A check as the registry keeps it (``checks.registry.Check``)."""

    #: Called with the state it stands on and its queue (None unless per queue).
    func: Callable[[Any, Any], None]

    @property
    def doc(self) -> str:
        """What fails in production without it, in one line."""


def fail(saw: str, needs: str, fix: str) -> NoReturn:
    """Fail a check the way a reviewer would: what was seen, what is needed, the fix."""
    __tracebackhide__ = True
    raise CheckFailed(f"\n  saw:   {saw}\n  needs: {needs}\n  fix:   {fix}")


def run_check(check: Runnable, state: Any, queue: str | None) -> tuple[str | None, str | None]:
    """Run one check; return (failure message, skip reason), at most one set.

    Both runners report from this, outside any except block, so no exception
    chain reaches the report. A check that went wrong while a part of the
    infrastructure had gone away raises an ``InfrastructureError`` saying so:
    what it saw is no verdict on the app.
    """
    try:
        check.func(state, queue)
    except CheckSkipped as exc:
        return None, str(exc)
    except CadastaError:
        raise  # the plugin's own part failed: an error, not a verdict
    except Exception as exc:
        gone = state.gone()
        if gone is not None:
            raise InfrastructureError(gone) from None
        if isinstance(exc, CheckFailed):
            return f"{check.doc}{exc}", None
        if user_frame(exc) is None:
            raise  # raised in the libraries or the plugin, not the app: an error
        return f"{check.doc}{raised_while_checking(exc)}", None
    return None, None
