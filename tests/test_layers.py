"""The import graph of src/lucidrec: no cycle, and no layer imports from a layer above it.

Every import counts, at module level or inside a function: an import placed in a function still makes
the module depend on the other one, so moving it there cannot hide a cycle or a layer breach.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lucidrec

ROOT = Path(lucidrec.__file__).parent

#: Top-level packages and modules, lowest layer first (docs/architecture.md). A module may import its
#: own layer and the layers under it; "core" holds models/ and embeddings/ (embeddings below models:
#: a backbone composes an item embedding and a state hook).
LAYERS = [
    {"errors", "registry", "settings", "files", "locks", "config", "__init__"},
    {"data"},
    {"lm"},
    {"embeddings"},
    {"models"},
    {"eval"},
    {"train"},
    {"explain", "interpret"},
    {"methods"},
    {"experiments"},
    {"cli", "serve", "__main__"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name refers to: itself, else its longest importable prefix."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from package import submodule`` depends on the submodule, else on the module itself
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for target in targets:
                if target.startswith("lucidrec"):
                    resolved = _resolve(target, modules)
                    if resolved and resolved != name:
                        graph[name].add(resolved)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour and (found := visit(node)):
            return found
    return None


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for rank, members in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{module}: its top-level package '{top}' has no layer in LAYERS (add it)")


def layer_breaches(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def test_the_import_graph_has_no_cycle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_no_layer_imports_from_a_layer_above_it():
    assert layer_breaches(import_graph()) == []


def test_embeddings_and_models_import_nothing_from_train_or_methods():
    graph = import_graph()
    upward = [f"{a} -> {b}" for a, targets in graph.items() if a.startswith(("lucidrec.embeddings", "lucidrec.models"))
              for b in targets if b.startswith(("lucidrec.train", "lucidrec.methods", "lucidrec.eval", "lucidrec.explain"))]
    assert upward == []


@pytest.mark.parametrize("source, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
])
def test_the_cycle_finder_finds_cycles(source, expected):
    assert find_cycle(source) == expected


def test_the_checks_see_function_level_imports(tmp_path, monkeypatch):
    # A breach hidden inside a function is still a breach.
    package = tmp_path / "lucidrec"
    (package / "embeddings").mkdir(parents=True)
    (package / "train").mkdir()
    (package / "__init__.py").write_text("")
    (package / "embeddings" / "__init__.py").write_text("def build():\n    from lucidrec.train import run\n")
    (package / "train" / "__init__.py").write_text("")
    (package / "train" / "run.py").write_text("from lucidrec.embeddings import build\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", package)
    graph = import_graph()
    assert graph["lucidrec.embeddings"] == {"lucidrec.train.run"}
    assert layer_breaches(graph) == ["lucidrec.embeddings -> lucidrec.train.run"]
    assert find_cycle(graph) is not None
