"""The package's shape: no import cycles among its modules (imports written
inside functions counted; those under ``if TYPE_CHECKING:`` aside), its layers
as folders with no import from a layer up to a higher one (``TYPE_CHECKING``
imports counted too), no folder of more than twelve modules, each module's job
in the first line of its docstring, and ``plugin.py`` holding hooks only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pytest_cadasta", "cadasta_toolbox")

#: The layers, from the ground up: a module imports from its own layer and the
#: layers under it, never from one above. A folder is a layer; the few modules
#: at the top of ``pytest_cadasta`` are placed one by one (``result_reading`` is
#: a public module whose path users import, so it stays where it was).
LAYERS = (
    ("cadasta_toolbox",),
    ("pytest_cadasta.basics", "pytest_cadasta.result_reading"),
    ("pytest_cadasta.services",),
    ("pytest_cadasta.model",),
    ("pytest_cadasta.settings",),
    ("pytest_cadasta.apps",),
    ("pytest_cadasta.audit",),
    ("pytest_cadasta.reporting",),
    ("pytest_cadasta.running",),
    ("pytest_cadasta.checks",),
    ("pytest_cadasta.collection", "pytest_cadasta.unittest_suite", "pytest_cadasta.header",
     "pytest_cadasta.using"),
    ("pytest_cadasta.session",),
    ("pytest_cadasta", "pytest_cadasta.fixtures", "pytest_cadasta.plugin"),
)
#: The most modules a folder holds (its ``__init__.py`` counted).
MOST_MODULES = 12


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict[str, Path],
             type_checking: bool = False) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its code (and
    under ``if TYPE_CHECKING:`` when ``type_checking``)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    resolved = set()
    for target in found:
        # A name imported from a module is that module (or a submodule).
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # A package's __init__ runs whenever one of its modules is imported.
    for name in modules:
        parent = name.rpartition(".")[0]
        while parent:
            if parent in modules and parent != name:
                graph[name].add(parent)
            parent = parent.rpartition(".")[0]
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_module_of_the_package_imports_itself_back():
    graph = _graph()
    # A package's __init__ that imports its own modules (checks/ registers
    # them) is the one loop Python makes by design: leave it out.
    for name in list(graph):
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


#: The package itself: its ``__init__`` alone, not what is in it.
TOP = "pytest_cadasta"


def _layer(name: str) -> int:
    """The index in LAYERS of the layer holding module ``name`` (the longest
    place that names it: a folder holds what is in it; the package's own
    ``__init__`` is placed by its name alone, so a new module at the top of the
    package is in no layer until it is placed)."""
    best = (-1, -1)
    for index, layer in enumerate(LAYERS):
        for place in layer:
            if name == place or (place != TOP and name.startswith(place + ".")):
                best = max(best, (len(place), index))
    assert best[1] >= 0, f"{name} is in no layer: place it in LAYERS"
    return best[1]


def test_every_module_is_placed_in_a_layer():
    for name in _modules():
        _layer(name)


def test_no_module_imports_from_a_layer_above_its_own():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        for target in sorted(_imports(name, path, modules, type_checking=True)):
            if _layer(target) > _layer(name):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_each_layer_folder_holds_at_most_twelve_modules():
    crowded = {}
    for package in PACKAGES:
        folders = {path.parent for path in (ROOT / package).rglob("*.py")}
        for folder in sorted(folders):
            count = len(list(folder.glob("*.py")))
            if count > MOST_MODULES:
                crowded[str(folder.relative_to(ROOT))] = count
    assert not crowded, crowded


@pytest.mark.parametrize("name", sorted(_modules()))
def test_each_module_opens_with_a_docstring_saying_its_job(name):
    path = _modules()[name]
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring and docstring.split("\n")[0].strip(), (
        f"{path.relative_to(ROOT)} has no docstring")


def test_plugin_holds_hooks_only():
    tree = ast.parse((ROOT / "pytest_cadasta" / "plugin.py").read_text())
    functions = [node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert functions and all(name.startswith("pytest_") for name in functions), functions
