"""Results stored the way the platform reads them.

The platform's Result model reads ``celery_taskmeta.result`` with
``pickle.loads`` and nothing else, in its own process: it can import the
standard library and the libraries it runs on, never the worker's code. Celery
before 5.7 pickled every result into that column whatever ``result_serializer``
said; Celery 5.7 stores the bytes of ``result_serializer`` instead (json by
default), which the platform cannot read at all.

``RESULT_SERIALIZER`` stores what the platform can read: a pickle holding no
class or function of the worker's code. Celery prepares an exception for it as
for any serializer but ``pickle`` (its type, module and arguments, an argument
this serializer refuses replaced by its ``repr``); from Celery 5.7, a return
value it refuses fails the task with an ``EncodeError`` naming the class,
rather than storing a row the platform cannot show. Importing this module
registers it with kombu.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from typing import Any

from kombu.serialization import register

__all__ = ["PLATFORM_LIBRARIES", "RESULT_CONTENT_TYPE", "RESULT_SERIALIZER",
           "platform_can_import"]

#: The serializer's name, for ``result_serializer`` and ``result_accept_content``.
RESULT_SERIALIZER = "cadasta-pickle"
#: Its content type: its own, so kombu's ``pickle`` (and whatever accepts it)
#: stays as it is.
RESULT_CONTENT_TYPE = "application/x-cadasta-result"
#: What the platform's process can import besides the standard library: the
#: libraries it runs on.
PLATFORM_LIBRARIES = frozenset({"amqp", "billiard", "celery", "django", "kombu", "vine"})
#: Protocol 4: read by every Python 3 the platform has run on (3.4 and later),
#: and without Python 2's names for the built-ins.
PROTOCOL = 4


def platform_can_import(module: str) -> bool:
    """Whether the platform's process can import ``module``."""
    top = module.partition(".")[0]
    return top in sys.stdlib_module_names or top in PLATFORM_LIBRARIES


class _PlatformPickler(pickle.Pickler):
    """A pickler that refuses the worker's own classes and functions (every
    object of such a class needs its class pickled, so that covers them too)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            module = getattr(obj, "__module__", None) or "__main__"
            if not platform_can_import(module):
                raise pickle.PicklingError(
                    f"{module}.{getattr(obj, '__qualname__', obj)} is of the worker's code, "
                    "which the platform cannot import to read this result")
        return NotImplemented


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _PlatformPickler(buffer, protocol=PROTOCOL).dump(value)
    return buffer.getvalue()


class _PlatformUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if not platform_can_import(module):
            raise pickle.UnpicklingError(f"{module}.{name} is of the worker's code")
        return super().find_class(module, name)


def _loads(data: bytes) -> Any:
    """What the worker reads back (chords, ``AsyncResult``): what the platform
    could read, nothing more."""
    return _PlatformUnpickler(io.BytesIO(data)).load()


register(RESULT_SERIALIZER, _dumps, _loads, content_type=RESULT_CONTENT_TYPE,
         content_encoding="binary")
