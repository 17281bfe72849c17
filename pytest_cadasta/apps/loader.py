"""Loading the user's Celery apps as 'celery -A' loads them, task modules and
all, each app apart from the others as its own process would have it."""

from __future__ import annotations

import importlib
import importlib.util
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_cadasta.basics.errors import UsageError, WouldChange, one_line
from pytest_cadasta.basics.topology import Topology
from pytest_cadasta.settings import AppEntry, Settings


def _is_celery_app(obj: Any) -> bool:
    from celery import Celery

    return isinstance(obj, Celery)


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


def _no_module(label: str, spec: str, missing: str, root: str) -> UsageError:
    return UsageError(
        f"{label}={spec!r}: no module named {missing!r} "
        f"(looked in {root} and sys.path); check the module path, "
        "or run pytest from your project's root")


def load_app(spec: str, rootdir: Path, label: str = "--cadasta-app") -> Any:
    """The app ``spec`` names, found as ``celery -A`` finds it (``proj``,
    ``proj.celery``, ``proj:app``, ``proj.celery:app``; Celery's own finder),
    with ``rootdir`` already on sys.path, and its task modules imported as the
    worker imports them (``imports``, ``include``, autodiscovery).

    Every way this can go wrong is a ``UsageError`` naming what failed;
    ``label`` says where the value came from (the option or the ini key).
    """
    from celery.app.utils import find_app

    module_name, colon, attribute = spec.partition(":")
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
        app = find_app(spec, imp=lambda name, package=None: importlib.import_module(name))
    except (AttributeError, ImportError) as exc:
        failed = _failed_submodule(exc, module_name)
        if failed is not None:  # a module find_app imported (proj.celery) raised
            raise _import_failed(label, spec, failed, exc) from None
        if not colon:
            _submodule_fails(label, spec, module_name, module)
        apps = sorted(name for name, value in vars(module).items()
                      if not name.startswith("__") and _is_celery_app(value))
        hint = (f"Celery apps in {module_name}: {', '.join(apps)}" if apps
                else f"{module_name} defines no Celery app")
        what = (f"module {module_name!r} has no attribute {attribute!r}" if colon else
                f"no Celery app in module {module_name!r} (looked for 'app', 'celery', a "
                "'celery' submodule, then any Celery app in it)")
        raise UsageError(f"{label}={spec!r}: {what}; {hint}") from None
    except (Exception, SystemExit) as exc:  # a module find_app imported raised
        raise _import_failed(label, spec, f"{module_name}.celery", exc) from None
    if not _is_celery_app(app):
        raise UsageError(
            f"{label}={spec!r}: {attribute!r} is a {type(app).__name__}, "
            "not a Celery app (expected celery.Celery)")
    _import_task_modules(app, label, spec)
    return app


def _submodule_fails(label: str, spec: str, module_name: str, module: Any) -> None:
    """Celery's finder swallows what importing a package's ``celery`` module
    raised, and says it found no app: a ``celery.py`` that fails to import is
    the fault to name, with its line."""
    if not hasattr(module, "__path__"):
        return
    submodule = f"{module_name}.celery"
    try:
        importlib.import_module(submodule)
    except ModuleNotFoundError as exc:
        if exc.name != submodule:
            raise _import_failed(label, spec, submodule, exc) from None
    except (Exception, SystemExit) as exc:
        raise _import_failed(label, spec, submodule, exc) from None


def _failed_submodule(exc: BaseException, module_name: str) -> str | None:
    """Where the app's own code raised ``exc`` inside Celery's finder (a module
    it imported, such as proj/celery.py), if that is what happened, rather than
    the finder finding no app."""
    if isinstance(exc, ModuleNotFoundError):
        missing = exc.name or ""
        return None if missing.startswith(module_name) else f"{module_name}.celery"
    from pytest_cadasta.basics.forensics import raised_at, user_frame

    return raised_at(exc) if user_frame(exc) is not None else None


def _import_task_modules(app: Any, label: str, spec: str) -> None:
    """Import the app's task modules as ``celery worker`` does at start-up."""
    try:
        app.loader.import_default_modules()
    except (Exception, SystemExit) as exc:
        modules = ", ".join(app.loader.default_modules) or "autodiscovered modules"
        raise UsageError(
            f"{label}={spec!r}: importing the app's task modules ({modules}; from "
            f"imports, include or autodiscovery) raised {one_line(exc)}") from None


def _import_failed(label: str, spec: str, module_name: str,
                   exc: BaseException) -> UsageError:
    if isinstance(exc, WouldChange):  # an audit: importing it would change the deployment
        return UsageError(
            f"{label}={spec!r}: importing {module_name!r} would change the deployment: "
            f"{exc}; the app declares its queues as it is imported, and one is missing: "
            "create it (the audit names each queue the app needs), then audit again")
    from pytest_cadasta.basics.forensics import raised_at, user_frame

    command = f"python -c {shlex.quote('import ' + module_name)}"
    where = f" at {raised_at(exc)}" if user_frame(exc) is not None else ""
    return UsageError(
        f"{label}={spec!r}: importing {module_name!r} raised "
        f"{one_line(exc)}{where}; reproduce with: {command}")


class _ImportGraph:
    """Which module's code imported which module, recorded while it is on
    (``builtins.__import__`` sees every import statement, of modules imported
    already too)."""

    def __init__(self) -> None:
        self.edges: dict[str, set[str]] = {}

    @contextmanager
    def recording(self) -> Iterator[None]:
        import builtins

        original = builtins.__import__

        def record(name: str, globals: Any = None, locals: Any = None,
                   fromlist: Any = (), level: int = 0) -> Any:
            module = original(name, globals, locals, fromlist, level)
            importer = (globals or {}).get("__name__")
            if importer:
                try:
                    target = (importlib.util.resolve_name("." * level + name,
                                                          globals.get("__package__"))
                              if level else name)
                except (ImportError, ValueError):
                    return module
                found = self.edges.setdefault(importer, set())
                found.add(target)
                found.update(f"{target}.{item}" for item in fromlist or ())
            return module

        builtins.__import__ = record
        try:
            yield
        finally:
            builtins.__import__ = original

    def reach(self, roots: set[str]) -> set[str]:
        """Every module ``roots`` import, directly or not, with their packages."""
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo += self.edges.get(name, ())
            todo += [name.rpartition(".")[0]] if "." in name else []
        return seen


@contextmanager
def tasks_apart() -> Iterator[Callable[[str, Callable[[], Any]], Any]]:
    """Load several apps in one process as if each had a process of its own.

    A task made with ``@app.task`` (or ``@shared_task``) is shared: Celery adds
    it to every app of the process. ``celery -A`` in production imports one app
    and what its modules import, so it registers the tasks of those modules
    only. Each app loaded with the ``load`` this yields is loaded apart (the
    other apps hidden, only Celery's own shared tasks offered), its imports
    recorded; when the block closes, each app also gets the shared tasks of
    the other apps' loads that live in modules it imports itself. An app whose
    module was imported before the block (by a conftest, say) keeps what Celery
    gave it: what it imports is not known. (Celery has no public call for any
    of this: its apps and its shared-task constructors are in ``celery._state``.)
    """
    import celery.app.builtins  # noqa: F401  (registers Celery's own tasks' constructors)
    from celery import _state

    finalizers = _state._on_app_finalizers
    common = set(finalizers)  # Celery's own, and any shared before the apps load
    before = set(sys.modules)
    graph = _ImportGraph()
    loaded: list[tuple[Any, set[str], set[Any]]] = []  # app, its roots, its shared tasks

    def load(module: str, make_app: Callable[[], Any]) -> Any:
        others = [app for app, _, _ in loaded if app in _state._apps]
        everyone = set(finalizers)
        modules = set(sys.modules)
        for app in others:
            _state._apps.discard(app)
        finalizers.clear()
        finalizers.update(common)
        try:
            app = make_app()
            app.finalize(auto=True)
        finally:
            own = set(finalizers) - common
            finalizers.clear()
            finalizers.update(everyone | own)
            for other in others:
                _state._apps.add(other)
        roots = (set(sys.modules) - modules) | set(app.loader.default_modules) | {module}
        loaded.append((app, roots, own))
        return app

    with graph.recording():
        yield load
    for app, roots, own in loaded:
        if roots & before:
            continue
        reached = graph.reach(roots)
        for _, _, shared in loaded:
            for make_task in shared - own:
                task = make_task(app)  # registers it, unless the name is taken
                name = getattr(task, "name", None)
                if name is not None and app.tasks.get(name) is task \
                        and getattr(task, "__module__", None) not in reached:
                    app.tasks.unregister(name)


def check_queues(app: Any, queues: tuple[str, ...] | None, label: str) -> None:
    """A ``UsageError`` for a -Q queue the app does not declare (Celery would
    make a queue of that name on a direct exchange, bound to nothing the app
    sends: a typo, most likely)."""
    if queues is None:
        return
    known = list(app.amqp.queues)
    unknown = [q for q in queues if q not in known]
    if unknown:
        raise UsageError(
            f"{label}={','.join(queues)!r}: {', '.join(map(repr, unknown))} "
            f"{'is' if len(unknown) == 1 else 'are'} not among the app's queues "
            f"({', '.join(known)})")


@dataclass(frozen=True)
class LoadedApp:
    """An app of the run, loaded: what the user named, the app, its queues."""

    entry: AppEntry
    app: Any
    topology: Topology

    @property
    def label(self) -> str:
        return self.entry.label

    @property
    def hostname(self) -> str:
        """Its in-process worker's name, as Celery's events and logs show it."""
        return f"cadasta-{self.label}@localhost"


def load_apps(settings: Settings, rootdir: Path, stack: ExitStack) -> list[LoadedApp]:
    """Every app of ``settings``, loaded as 'celery -A' loads it, from
    ``rootdir`` (put on sys.path until ``stack`` closes); several apps each as
    if in a process of its own (``tasks_apart``). Every fault is a
    ``UsageError`` naming it. The broker must be pinned to moto already: an
    app may talk to it while imported."""
    put_rootdir_on_path(rootdir, stack)
    for entry in settings.apps:
        check_module_exists(entry.spec, rootdir, entry.spelled)
    loaded = []
    with ExitStack() as apart:
        load = apart.enter_context(tasks_apart()) if settings.is_system else None
        for entry in settings.apps:
            def make(entry: AppEntry = entry) -> Any:
                return load_app(entry.spec, rootdir, entry.spelled)

            app = make() if load is None else load(entry.module, make)
            check_queues(app, entry.queues, settings.label("queues"))
            loaded.append(LoadedApp(entry, app, Topology.of(app, entry.queues)))
    return loaded
