"""Where an exception was raised and whose it is: the innermost frame of the
user's own code, outside the libraries and this plugin, or kombu's and
Celery's (for load errors and check failures)."""

from __future__ import annotations

import os
import re
import sysconfig
import traceback
from pathlib import Path
from typing import Any

from pytest_cadasta.basics.errors import one_line
from pytest_cadasta.basics.messages import SERIALIZER_FIX

#: kombu's and Celery's exceptions for a body that cannot be (de)serialized.
SERIALIZATION_ERRORS = ("EncodeError", "DecodeError", "ContentDisallowed",
                        "SerializerNotInstalled")


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(str(Path(__file__).resolve().parents[1]))  # this plugin
    return tuple(str(Path(d).resolve()) + "/" for d in dirs)


def user_frame(exc: BaseException) -> Any:
    """The innermost frame of ``exc``'s traceback outside the libraries and this
    plugin (a ``traceback.FrameSummary``), or None when there is none."""
    libraries = _library_dirs()
    own = [f for f in traceback.extract_tb(exc.__traceback__)
           if not os.path.realpath(f.filename).startswith(libraries)]
    return own[-1] if own else None


def raised_at(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame outside the libraries
    and this plugin (the innermost frame when all are library frames)."""
    frame = user_frame(exc)
    if frame is None:
        frames = traceback.extract_tb(exc.__traceback__)
        if not frames:
            return "an unknown place"
        frame = frames[-1]
    try:
        filename = os.path.relpath(frame.filename)
    except ValueError:
        filename = frame.filename
    if filename.startswith(".."):
        filename = frame.filename
    return f"{filename}:{frame.lineno} in {frame.name}"


def raised_while_checking(exc: BaseException) -> str:
    """A check failure for an exception the app's own code (or a library it
    drives) raised: the exception in one line and where it was raised."""
    where = raised_at(exc)
    return (f"\n  saw:   {one_line(exc)} (raised at {where})"
            "\n  needs: the app's own code (its AMQP class, routers, signal handlers) to "
            "send and run tasks while the broker answers: here SQS is moto's server, "
            "listening since before the app was imported"
            f"\n  fix:   look at {where}; state kept from an earlier failure (a circuit "
            "breaker opened while the module was imported) must not outlive it")


def library_fix(exc: BaseException) -> str | None:
    """The fix for an exception kombu or Celery raised on the app's behalf
    (None: not theirs). Their serialization errors come from the app's
    serializer settings."""
    module = type(exc).__module__ or ""
    if not module.startswith(("kombu", "celery")):
        return None
    if type(exc).__name__ in SERIALIZATION_ERRORS:
        return SERIALIZER_FIX
    if type(exc).__name__ == "UndefinedQueueException":
        named = re.search(r"name '([^']+)'", str(exc))
        queue = repr(named.group(1)) if named else "the queue it names"
        return (f"add {queue}, with its queue's URL, to "
                "broker_transport_options['predefined_queues'] (kombu neither lists nor "
                "creates a queue when they are given)")
    return f"look at the app's Celery settings for what {type(exc).__name__} names"


def raised_by_the_libraries(exc: BaseException) -> str | None:
    """A check failure for an exception kombu or Celery raised while sending or
    running the app's tasks (an EncodeError of the app's serializer), or None
    when it is not theirs."""
    fix = library_fix(exc)
    if fix is None:
        return None
    return (f"\n  saw:   {one_line(exc)} (raised at {raised_at(exc)})"
            "\n  needs: Celery and kombu to encode, send and run the app's tasks with its "
            f"settings\n  fix:   {fix}")
