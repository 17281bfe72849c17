"""The platform's read of a result row (Cadasta/cadasta-platform, its tasks
app's ``PickledObjectField``): ``pickle.loads`` of ``celery_taskmeta.result``,
in the platform's own process, which can import its own code and the libraries
it runs on, never the worker's. A row it cannot read fails whatever loads it:
the task's page and its status.

A model of the platform, not a safety boundary: like the platform, it runs
what a pickle of the standard library's names asks for. It reads only the rows
of the run's result database (its own, or the one ``--cadasta-result-db``
names)."""

from __future__ import annotations

import _compat_pickle  # pickle's own map of Python 2 names, as it applies it
import io
import json
import pickle
import pickletools
from collections.abc import Callable, Iterable
from typing import Any

from cadasta_toolbox.results import platform_can_import

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
        _refuse_foreign(module, name)
        return super().find_class(module, name)


def _refuse_foreign(module: str, name: str) -> None:
    # A pickle of protocol 0-2 may name the built-ins as Python 2 did
    # (__builtin__.set); pickle maps those names, so they count as mapped.
    mapped, _ = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    mapped = _compat_pickle.IMPORT_MAPPING.get(mapped, mapped)
    if not platform_can_import(mapped):
        raise _ForeignClass(module, name)


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


#: The opcodes that push a string, fetch from the memo, store into it.
_STRINGS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
                      "SHORT_BINUNICODE", "BINUNICODE8"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def judge_result(raw: bytes | memoryview) -> None:
    """``read_result``'s verdict without loading anything (for rows of a real
    deployment): ``Unreadable`` when the bytes are no pickle, or name a class
    or function the platform cannot import. It follows the names as Python's
    pickler writes them; a name it cannot follow counts as readable."""
    raw = bytes(raw)
    sample = raw[:SHOWN_BYTES] + (b"..." if len(raw) > SHOWN_BYTES else b"")
    memo: dict[int, Any] = {}
    last: tuple[Any, Any] = (None, None)  # the two values pushed last (None: not a string)
    try:
        for opcode, arg, _ in pickletools.genops(raw):
            name, value = opcode.name, None
            if name == "MEMOIZE" or name in _PUTS:
                memo[len(memo) if name == "MEMOIZE" else arg] = last[1]
                continue
            if name in _STRINGS:
                value = arg
            elif name in _GETS:
                value = memo.get(arg)
            elif name in ("GLOBAL", "INST"):
                _refuse_foreign(*arg.split(" ", 1))
            elif name == "STACK_GLOBAL" and all(isinstance(v, str) for v in last):
                _refuse_foreign(*last)
            last = (last[1], value)
    except _ForeignClass as exc:
        raise Unreadable(f"a pickled {exc.module}.{exc.name}, a class of the worker's code "
                         "that the platform cannot import", sample) from None
    except ValueError:  # genops: an opcode pickle does not know, or no end
        raise Unreadable(_what_it_is(raw), sample) from None


def _what_it_is(raw: bytes) -> str:
    try:
        json.loads(raw)
    except ValueError:
        return "bytes that are not a pickle"
    return "json, not a pickle"


def unread(rows: Iterable[tuple[str, Any]], read: Callable[[Any], Any]) -> str | None:
    """What the platform cannot read among ``rows`` (a label, a row's result
    bytes), read by ``read`` (``read_result``, or ``judge_result`` for a
    deployment's rows): 'N: k hold <what> (as <label> stored <bytes>); ...'
    grouped by what they hold, or None when it reads them all."""
    found: dict[str, list[tuple[str, Unreadable]]] = {}
    for label, result in rows:
        try:
            read(result)
        except Unreadable as exc:
            found.setdefault(exc.what, []).append((label, exc))
    if not found:
        return None
    kinds = [f"{len(rows)} hold {what} (as {rows[0][0]} stored {rows[0][1].sample!r})"
             for what, rows in found.items()]
    return f"{sum(len(rows) for rows in found.values())}: {'; '.join(kinds)}"
