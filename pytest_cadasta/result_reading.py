"""The platform's read of a result row (Cadasta/cadasta-platform, its tasks
app's ``PickledObjectField``): ``pickle.loads`` of ``celery_taskmeta.result``,
in the platform's own process, which can import its own code and the libraries
it runs on, never the worker's. A row it cannot read fails whatever loads it:
the task's page and its status.

The model decides from the row's bytes alone (``judge_result``), running
nothing of it, as the platform's ``pickle.loads`` would decide; what it needs
of a row's value it loads as data only (``cadasta_toolbox.results.load_data``).
``would_run`` names what a row would call in the platform as it is read: a
pickle can call any importable callable, ``os.system`` among them."""

from __future__ import annotations

import builtins
import json
import pickletools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cadasta_toolbox.results import (
    ResultRefused,
    is_data_type,
    load_data,
    platform_can_import,
    python3_name,
)

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


def _refuse_foreign(module: str, name: str) -> None:
    # Python 2's names (__builtin__.set) count as pickle maps them.
    if not platform_can_import(python3_name(module, name)[0]):
        raise _ForeignClass(module, name)


@dataclass(frozen=True)
class Withheld:
    """A value the platform can read that is more than data (an exception
    pickled as itself): the model does not load it. ``what`` says what the
    loader refused."""

    what: str


def read_result(raw: bytes | memoryview) -> Any:
    """The value the platform reads from a result row's ``result`` bytes, or
    ``Unreadable`` (saying what the bytes are) when its read fails: decided
    from the bytes, nothing of them run; the value loaded as data only
    (``Withheld`` when it is more than data)."""
    raw = bytes(raw)
    judge_result(raw)
    try:
        return load_data(raw)
    except ResultRefused as exc:
        return Withheld(str(exc))
    except Exception:  # a pickle's structure, but not its values (as pickle.loads fails)
        raise Unreadable(_what_it_is(raw), _sample(raw)) from None


def _sample(raw: bytes) -> bytes:
    return raw[:SHOWN_BYTES] + (b"..." if len(raw) > SHOWN_BYTES else b"")


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
    try:
        for module, name in _globals(raw):
            if module != EXTENSION:
                _refuse_foreign(module, name)
    except _ForeignClass as exc:
        raise Unreadable(f"a pickled {exc.module}.{exc.name}, a class of the worker's code "
                         "that the platform cannot import", _sample(raw)) from None
    except ValueError:  # genops: an opcode pickle does not know, or no end
        raise Unreadable(_what_it_is(raw), _sample(raw)) from None


#: The opcodes that call into the extension registry (copyreg's codes).
_EXTENSIONS = frozenset({"EXT1", "EXT2", "EXT4"})
#: The module ``_globals`` gives an extension code.
EXTENSION = "copyreg extension"


def _globals(raw: bytes) -> list[tuple[str, str]]:
    """Every global a pickle names, as (module, name), as Python's pickler
    writes them (one it cannot follow is left out); an extension code as
    (EXTENSION, its number). ``ValueError`` for bytes that are no pickle."""
    names: list[tuple[str, str]] = []
    memo: dict[int, Any] = {}
    last: tuple[Any, Any] = (None, None)
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
            module, _, qualified = arg.partition(" ")
            names.append((module, qualified))
        elif name == "STACK_GLOBAL" and all(isinstance(v, str) for v in last):
            names.append((last[0], last[1]))
        elif name in _EXTENSIONS:
            names.append((EXTENSION, str(arg)))
        last = (last[1], value)
    return names


def _harmless(module: str, name: str) -> bool:
    """A data type, or a built-in exception (Celery's ``pickle`` serializer
    stores a failure as its exception: built as plain data, and nothing
    else runs)."""
    if is_data_type(module, name):
        return True
    mapped, name = python3_name(module, name)
    found = getattr(builtins, name, None) if mapped == "builtins" else None
    return isinstance(found, type) and issubclass(found, BaseException)


def would_run(raw: bytes | memoryview) -> list[str]:
    """What reading ``raw`` with ``pickle.loads`` would import or call that is
    no data type ('module.name' each, in order; empty: data only). Decided
    from the bytes: nothing is loaded. Bytes that are no pickle run nothing."""
    try:
        names = _globals(bytes(raw))
    except ValueError:
        return []
    return list(dict.fromkeys(f"{module} {name}" if module == EXTENSION else
                              f"{module}.{name}" for module, name in names
                              if not _harmless(module, name)))


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
