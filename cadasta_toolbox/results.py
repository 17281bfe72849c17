"""Results stored the way the platform reads them, and read back as data.

The platform's Result model reads ``celery_taskmeta.result`` with
``pickle.loads`` and nothing else, in its own process: it can import the
standard library and the libraries it runs on, never the worker's code. Celery
before 5.7 pickled every result into that column whatever ``result_serializer``
said; Celery 5.7 stores the bytes of ``result_serializer`` instead (json by
default), which the platform cannot read at all.

``RESULT_SERIALIZER`` stores what the platform can read and nothing can run:
a pickle of data only, the types in ``DATA_TYPES`` (written down here, once,
for the writer and the reader alike). Celery prepares an exception for it as
for any serializer but ``pickle`` (its type, module and arguments, an argument
this serializer refuses replaced by its ``repr``); from Celery 5.7, a return
value it refuses fails the task with an ``EncodeError`` naming the type,
rather than storing a row the platform cannot show. Reading back (chords,
``AsyncResult.get``) loads the same types and nothing else: any other global a
row names is refused, by name, before anything of the row runs. A pickle can
call any importable callable as it loads (``os.system`` among them), and any
role that may write the result table may write such a row. Importing this
module registers the serializer with kombu.
"""

from __future__ import annotations

import _compat_pickle  # pickle's own map of Python 2 names, as it applies them
import io
import pickle
import sys
import types
from typing import Any

from kombu.serialization import register

__all__ = ["DATA_TYPES", "PLATFORM_LIBRARIES", "RESULT_CONTENT_TYPE", "RESULT_SERIALIZER",
           "ResultRefused", "is_data_type", "load_data", "platform_can_import",
           "python3_name"]

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
#: Every class a result may name: what Celery's results and its exception
#: dicts hold. None, booleans, numbers, strings, bytes, lists, tuples and dicts
#: are pickled without naming one; these are the rest, each a data type that
#: builds itself from plain values and runs nothing else.
DATA_TYPES = frozenset({
    ("builtins", "bytearray"), ("builtins", "complex"), ("builtins", "set"),
    ("builtins", "frozenset"),
    ("datetime", "date"), ("datetime", "time"), ("datetime", "datetime"),
    ("datetime", "timedelta"), ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("uuid", "UUID"), ("uuid", "SafeUUID"),
})


class ResultRefused(pickle.UnpicklingError):
    """A stored result names something that is not a data type: nothing of it
    was run."""


def platform_can_import(module: str) -> bool:
    """Whether the platform's process can import ``module``."""
    top = module.partition(".")[0]
    return top in sys.stdlib_module_names or top in PLATFORM_LIBRARIES


def python3_name(module: str, name: str) -> tuple[str, str]:
    """``module.name`` as a pickle names it, as ``pickle.loads`` looks it up: a
    pickle of protocol 0-2 may use Python 2's names (``__builtin__.set``,
    ``exceptions.ValueError``), which pickle maps to Python 3's."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def is_data_type(module: str, name: str) -> bool:
    """Whether ``module.name``, as a pickle names it, is one of ``DATA_TYPES``."""
    return python3_name(module, name) in DATA_TYPES


class _DataPickler(pickle.Pickler):
    """A pickler that writes data only: any class or function outside
    ``DATA_TYPES`` is refused (every object of another class needs its class
    pickled, so that covers them too), naming it."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType,
                            types.MethodType)):
            module = getattr(obj, "__module__", None) or "__main__"
            name = getattr(obj, "__qualname__", None) or repr(obj)
            if not is_data_type(module, name):
                if not platform_can_import(module):
                    raise pickle.PicklingError(
                        f"{module}.{name} is of the worker's code, which the platform cannot "
                        "import to read this result")
                raise pickle.PicklingError(
                    f"{module}.{name} is not a data type a result may hold (the data types: "
                    "cadasta_toolbox.results.DATA_TYPES); store plain values instead")
        return NotImplemented


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _DataPickler(buffer, protocol=PROTOCOL).dump(value)
    return buffer.getvalue()


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that loads data only: a row naming anything else is refused
    as the name is read, before any call of the row is made."""

    def find_class(self, module: str, name: str) -> Any:
        if not is_data_type(module, name):
            raise ResultRefused(
                f"refused to load a result naming {module}.{name}: results hold data "
                "only (cadasta_toolbox.results.DATA_TYPES); nothing of the row was run")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise ResultRefused("refused to load a result with a persistent id: results hold "
                            "data only")


def load_data(data: bytes) -> Any:
    """What a stored result holds, loaded as data: ``ResultRefused`` if it names
    anything but ``DATA_TYPES``."""
    return _DataUnpickler(io.BytesIO(data)).load()


register(RESULT_SERIALIZER, _dumps, load_data, content_type=RESULT_CONTENT_TYPE,
         content_encoding="binary")
