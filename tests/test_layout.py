"""The house's layout rules, checked on the source with `ast` (imports inside functions count too):

- layers import one way: configs < resources < tasks < flows; agents use resources and configs; nothing in
  configs/ or resources/ imports agents/, tasks/ or flows/;
- no import cycles between the studio's modules;
- `studio.*` is the only import root, and every package folder is listed in pyproject.toml.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

from support.env import REPO

ROOTS = {"studio": "studio", "flows": "studio.flows", "tasks": "studio.tasks", "agents": "studio.agents",
         "resources": "studio.resources", "configs": "studio.configs", "deployments": "studio.deployments"}
# What each layer may import from the studio (besides itself). The CLI (studio/) and deployments sit on top.
ALLOWED = {
    "configs": {"configs"},
    "resources": {"configs", "resources"},
    "agents": {"configs", "resources", "agents"},
    "tasks": {"configs", "resources", "agents", "tasks"},
    "flows": {"configs", "resources", "agents", "tasks", "flows"},
    "deployments": {"configs", "resources", "tasks", "flows", "deployments"},
    "studio": set(ROOTS),
}


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, pkg in ROOTS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [pkg, *path.relative_to(REPO / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ROOTS and parts[1] != "studio":
        return parts[1]
    return "studio"  # the CLI package (studio/, studio/commands/)


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, mods: dict[str, Path]) -> set[str]:
    """Studio modules that `path` imports anywhere in its body (functions included)."""
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("studio"):
                # `from pkg import sub` depends on the submodule when `sub` is one, else on `pkg` itself
                found |= {_resolve(f"{node.module}.{a.name}", mods) for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {_resolve(a.name, mods) for a in node.names if a.name.startswith("studio")}
    return {m for m in found if m}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for mod, path in mods.items():
        # a package's __init__ being imported on the way to its submodule is not a dependency on it
        graph[mod] = {m for m in _imports(path, mods) if m != mod and not mod.startswith(m + ".")}
    return graph


def test_no_relative_imports_and_one_import_root():
    offenders = []
    for mod, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                offenders.append(f"{mod}: relative import")
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            offenders += [f"{mod}: imports {n}" for n in names
                          if n.split(".")[0] in ("flows", "tasks", "agents", "resources", "configs")]
    assert not offenders, "\n".join(offenders)


def test_layers_import_one_way():
    wrong = [f"{mod} ({_layer(mod)}) imports {dep} ({_layer(dep)})"
             for mod, deps in _graph().items() for dep in deps if _layer(dep) not in ALLOWED[_layer(mod)]]
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    folders = defaultdict(list)
    for m, p in _modules().items():
        folders[p.parent].append(m)
    missing_init = [str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists()]
    assert not missing_init, f"package folders without __init__.py: {missing_init}"
    assert packages <= listed, f"add to pyproject's packages: {sorted(packages - listed)}"


def test_no_test_folder_shadows_the_package():
    """tests/ is on sys.path (pytest's pythonpath): a folder there named like the import root would be imported
    instead of the installed package (the mirrored folders, tests/resources etc., are harmless: code imports
    only `studio.*`, which the first test enforces)."""
    clashes = [p.name for p in (REPO / "tests").iterdir() if p.is_dir() and p.name == "studio"]
    assert not clashes, f"rename these test folders: {clashes}"
