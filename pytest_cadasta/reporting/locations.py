"""Where in the user's code an app is built and routed: the file and line a
failing check's report points at, so that editors and CI annotations (such as
pytest-github-actions-annotate-failures) put its message there."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

#: The packages whose code is never the user's: a router or an app built there
#: points at the user's module that uses it instead.
NOT_THE_USERS = ("celery", "kombu", "cadasta_toolbox", "pytest_cadasta")


class Location(NamedTuple):
    """A file and a line in it, counted from 0 as pytest's ``reportinfo``."""

    path: str
    line: int


def _package_dirs() -> list[Path]:
    found = []
    for name in NOT_THE_USERS:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if file:
            found.append(Path(file).resolve().parent)
    return found


def is_users(path: str) -> bool:
    """Whether ``path`` is the user's code (not Celery's, kombu's or ours)."""
    resolved = Path(path).resolve()
    return not any(resolved.is_relative_to(package) for package in _package_dirs())


def _assigned_at(path: str, names: set[str]) -> int | None:
    """The line (from 0) where the module at ``path`` assigns one of ``names``
    at its top level (``app = Celery(...)``), None if it does not."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                   else [])
        for target in targets:
            if any(isinstance(t, ast.Name) and t.id in names for t in ast.walk(target)):
                return node.lineno - 1
    return None


def app_location(app: Any, modules: Iterable[str]) -> Location | None:
    """Where ``app`` is built: the first of ``modules`` (the one named, its
    ``celery`` submodule, the app's ``main``) that assigns it at its top level,
    at that line; else the first that holds it, at its top."""
    holding = None
    for name in dict.fromkeys(modules):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if not file or not is_users(file):
            continue
        names = {key for key, value in vars(module).items() if value is app}
        if not names:
            continue
        line = _assigned_at(file, names)
        if line is not None:
            return Location(file, line)
        holding = holding or Location(file, 0)
    return holding


def _code(router: Any) -> Any:
    """The code object of a router (a function, a partial, an object with a
    ``__call__``), None for a mapping or a name."""
    while hasattr(router, "func") and callable(router):  # functools.partial
        router = router.func
    code = getattr(router, "__code__", None)
    if code is None and callable(router) and not isinstance(router, type):
        code = getattr(type(router).__call__, "__code__", None)
    return code


def router_location(app: Any) -> Location | None:
    """Where the app's own router is written: the first router of
    ``task_routes`` that is a function of the user's, at its ``def`` line."""
    routes = app.conf.task_routes
    routers = routes if isinstance(routes, (list, tuple)) else [routes]
    for router in routers:
        code = _code(router)
        if code is not None and is_users(code.co_filename):
            return Location(code.co_filename, code.co_firstlineno - 1)
    return None


@dataclass(frozen=True)
class AppLocations:
    """Where one app's faults are: the module that builds it, and its router
    (None: the app's own module holds what routes its tasks)."""

    app: Location | None
    router: Location | None

    @classmethod
    def of(cls, app: Any, module: str) -> AppLocations:
        return cls(app_location(app, [module, f"{module}.celery", app.main or ""]),
                   router_location(app))

    def for_group(self, group: str) -> Location | None:
        """Where a failure of a check of ``group`` points: the router for the
        routing checks, the app's module for the others."""
        if group == "routing" and self.router is not None:
            return self.router
        return self.app
