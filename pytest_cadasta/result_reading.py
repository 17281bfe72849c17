"""The platform's read of a result row (Cadasta/cadasta-platform, its tasks
app's ``PickledObjectField``): ``pickle.loads`` of ``celery_taskmeta.result``,
in the platform's own process, which can import its own code and the libraries
it runs on, never the worker's. A row it cannot read fails whatever loads it:
the task's page and its status."""

from __future__ import annotations

import io
import json
import pickle
import sys
from typing import Any

#: What the platform's process can import besides the standard library: the
#: libraries it runs on (a result may hold their types).
PLATFORM_LIBRARIES = frozenset({"amqp", "billiard", "celery", "django", "kombu", "vine"})

#: How many of an unreadable row's bytes a failure shows.
SHOWN_BYTES = 40


class Unreadable(Exception):
    """A result the platform cannot read: ``what`` it holds instead of a
    pickle it can load, and the first of its bytes (``sample``)."""

    def __init__(self, what: str, sample: bytes) -> None:
        super().__init__(f"{what} ({sample!r})")
        self.what = what
        self.sample = sample


class _ForeignClass(Exception):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.module = module
        self.name = name


class _PlatformUnpickler(pickle.Unpickler):
    """``pickle.loads`` as the platform's process runs it: a class from a
    module it cannot import stops the read."""

    def find_class(self, module: str, name: str) -> Any:
        top = module.partition(".")[0]
        if top not in sys.stdlib_module_names and top not in PLATFORM_LIBRARIES:
            raise _ForeignClass(module, name)
        return super().find_class(module, name)


def read_result(raw: bytes | memoryview) -> Any:
    """The value the platform reads from a result row's ``result`` bytes;
    ``Unreadable`` (saying what the bytes are) when its read fails."""
    raw = bytes(raw)
    sample = raw[:SHOWN_BYTES] + (b"..." if len(raw) > SHOWN_BYTES else b"")
    try:
        return _PlatformUnpickler(io.BytesIO(raw)).load()
    except _ForeignClass as exc:
        raise Unreadable(f"a pickled {exc.module}.{exc.name}, a class of the worker's code "
                         "that the platform cannot import", sample) from None
    except Exception:  # whatever pickle raises on bytes that are no pickle
        raise Unreadable(_what_it_is(raw), sample) from None


def _what_it_is(raw: bytes) -> str:
    try:
        json.loads(raw)
    except ValueError:
        return "bytes that are not a pickle"
    return "json, not a pickle"
