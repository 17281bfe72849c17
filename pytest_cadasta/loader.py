"""Loading the user's Celery app from 'module:attribute'."""

from __future__ import annotations

import importlib
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest


def _is_celery_app(obj: Any) -> bool:
    from celery import Celery

    return isinstance(obj, Celery)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_app(spec: str, rootdir: Path, label: str = "--cadasta-app",
             cleanups: list | None = None) -> Any:
    """Import ``module:attribute`` with ``rootdir`` importable; return the app.

    Every way this can go wrong is a ``pytest.UsageError`` naming what failed;
    ``label`` says where the value came from (the option or the ini key). The
    rootdir stays on ``sys.path`` (the worker imports the app's modules later);
    a callable that takes it off again is appended to ``cleanups``.
    """
    module_name, _, attribute = spec.partition(":")
    root = str(rootdir)
    if root not in sys.path:
        sys.path.insert(0, root)
        if cleanups is not None:
            cleanups.append(lambda: sys.path.remove(root) if root in sys.path else None)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if missing == module_name or module_name.startswith(missing + "."):
            raise pytest.UsageError(
                f"{label}={spec!r}: no module named {missing!r} "
                f"(looked in {root} and sys.path); check the module path, "
                "or run pytest from your project's root") from None
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
