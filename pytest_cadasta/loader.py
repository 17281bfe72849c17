"""Loading the user's Celery app from 'module:attribute'."""

from __future__ import annotations

import importlib
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest


def _is_celery_app(obj: Any) -> bool:
    from celery import Celery

    return isinstance(obj, Celery)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _find_spec(name: str, path: list[str] | None) -> Any:
    """The spec of module ``name`` as the import system would find it, with
    ``path`` its parent package's search path: no module code runs."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(name, path)
        if spec is not None:
            return spec
    return None


def put_rootdir_on_path(rootdir: Path, stack: ExitStack) -> None:
    """Make ``rootdir`` importable, as ``celery -A`` does with the current
    directory; it stays while the worker may import the app's modules, and
    ``stack`` takes it off again."""
    root = str(rootdir)
    if root not in sys.path:
        sys.path.insert(0, root)
        stack.callback(lambda: sys.path.remove(root) if root in sys.path else None)


def check_module_exists(spec: str, rootdir: Path, label: str = "--cadasta-app") -> None:
    """A ``pytest.UsageError`` now if the module of ``spec`` cannot be found;
    looked up as the import system would, without running any of its code (nor
    its parent packages')."""
    module_name = spec.partition(":")[0]
    path: list[str] | None = None  # the parent package's search path
    name = ""
    for part in module_name.split("."):
        name = f"{name}.{part}" if name else part
        module = sys.modules.get(name)
        found = getattr(module, "__spec__", None) if module else _find_spec(name, path)
        if found is None:
            raise _no_module(label, spec, name, str(rootdir))
        locations = found.submodule_search_locations
        path = list(locations) if locations is not None else []


def _no_module(label: str, spec: str, missing: str, root: str) -> pytest.UsageError:
    return pytest.UsageError(
        f"{label}={spec!r}: no module named {missing!r} "
        f"(looked in {root} and sys.path); check the module path, "
        "or run pytest from your project's root")


def load_app(spec: str, rootdir: Path, label: str = "--cadasta-app") -> Any:
    """Import ``module:attribute`` (``rootdir`` already on sys.path); return the app.

    Every way this can go wrong is a ``pytest.UsageError`` naming what failed;
    ``label`` says where the value came from (the option or the ini key).
    """
    module_name, _, attribute = spec.partition(":")
    root = str(rootdir)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if missing == module_name or module_name.startswith(missing + "."):
            raise _no_module(label, spec, missing, root) from None
        raise _import_failed(label, spec, module_name, exc) from None
    except Exception as exc:
        raise _import_failed(label, spec, module_name, exc) from None
    except SystemExit as exc:
        raise _import_failed(label, spec, module_name, exc) from None

    try:
        app = getattr(module, attribute)
    except AttributeError:
        apps = sorted(name for name, value in vars(module).items()
                      if not name.startswith("__") and _is_celery_app(value))
        hint = (f"Celery apps in {module_name}: {', '.join(apps)}" if apps
                else f"{module_name} defines no Celery app")
        raise pytest.UsageError(
            f"{label}={spec!r}: module {module_name!r} has no attribute "
            f"{attribute!r}; {hint}") from None
    if not _is_celery_app(app):
        raise pytest.UsageError(
            f"{label}={spec!r}: {attribute!r} is a {type(app).__name__}, "
            "not a Celery app (expected celery.Celery)")
    return app


def _import_failed(label: str, spec: str, module_name: str,
                   exc: BaseException) -> pytest.UsageError:
    command = f"python -c {shlex.quote('import ' + module_name)}"
    return pytest.UsageError(
        f"{label}={spec!r}: importing {module_name!r} raised "
        f"{_one_line(exc)}; reproduce with: {command}")
