"""The runtime package's import graph: no cycle among ``vampnet_ort`` modules (lazy, function-level imports count:
they are edges too), and no module imports another module's private (``_name``) functions or reaches for them as
``module._name``. Static (ast): nothing is imported. The installed package is assembled from three source folders
(setup.py): ``vampnet_ort/``, ``ops/`` (``vampnet_ort.ops``) and ``export/`` (``vampnet_ort.export``); all three are
checked, type-only (``TYPE_CHECKING``) imports included."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
# installed package name -> source folder (setup.py's PACKAGE_DIRS)
SOURCES = {"vampnet_ort": ROOT / "vampnet_ort", "vampnet_ort.ops": ROOT / "ops", "vampnet_ort.export": ROOT / "export"}


def _modules() -> Dict[str, Path]:
    found = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [*package.split("."), *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.setdefault(".".join(parts), path)
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str, path: Path, modules: Dict[str, Path]) -> Iterator[Tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import of a vampnet_ort module in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node)
            if not target.startswith("vampnet_ort"):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:  # `from . import audio`
                    yield submodule, "", node.lineno
                elif target in modules:
                    yield target, alias.name, node.lineno


def _graph() -> Dict[str, Set[str]]:
    modules = _modules()
    return {name: {m for m, _, _ in _imports(name, path, modules) if m != name} for name, path in modules.items()}


def test_no_import_cycle() -> None:
    graph = _graph()
    state: Dict[str, int] = {}
    stack: List[str] = []
    cycles: List[List[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_names() -> None:
    modules = _modules()
    offences = []
    for name, path in modules.items():
        aliases: Dict[str, str] = {}
        for target, imported, line in _imports(name, path, modules):
            if imported.startswith("_") and not imported.startswith("__") and target != name:
                offences.append(f"{path.name}:{line}: from {target} import {imported}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # `from . import masks` then `masks._librosa()`
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, path.name == "__init__.py", node)
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offences.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not offences, "private names used across modules: " + ", ".join(offences)


def test_the_graph_sees_the_imports() -> None:  # the checks above would pass vacuously on a broken parser
    graph = _graph()
    assert "vampnet_ort.options" in graph["vampnet_ort.cli"] | graph["vampnet_ort.frontend"]
    assert "vampnet_ort.frontend" in graph["vampnet_ort.batch.command"]
    assert "vampnet_ort.batch.command" in graph["vampnet_ort.cli"]
    assert "vampnet_ort.pipeline" in graph["vampnet_ort"]
    assert "vampnet_ort.export.graph_writer" in graph["vampnet_ort.export.quantize"]  # a TYPE_CHECKING import
    assert "vampnet_ort.ops.contract" in graph["vampnet_ort.ops"]
