"""The package's import graph, read from its source files (nothing is imported).

One fact, two users: the workflow makes each job depend on the source files of the
modules it runs and of every package module those import, directly or not (editing a
file re-runs exactly the jobs whose code includes it), and the tests check that the
graph has no cycle.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def import_graph(top_level: bool = False) -> dict[str, frozenset[str]]:
    """Module -> the package modules it imports anywhere in its body (relative imports
    and absolute ``minibatch_momentum.*`` ones; function-level imports included), or with
    ``top_level`` only those its import runs (statements at module level)."""
    modules = {_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(path.read_text())
        deps = set()
        for node in tree.body if top_level else ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = base[: len(base) - node.level + 1] + ([node.module] if node.module else [])
                stem = ".".join(target)
                deps |= {stem} if node.module else {f"{stem}.{a.name}" for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                # ``from pkg import mod`` names the submodule; the package runs anyway
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                deps |= subs or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = frozenset(d for d in deps if d in modules and d != name)
    return graph


def module_files(*modules: str) -> list[str]:
    """Source files, relative to the package's parent folder (``minibatch_momentum/...``),
    of ``modules`` (names under the package: ``"figures.pairs"``, ``"studies.small_lr"``) and of
    every package module they import, directly or not, with the ``__init__`` of each
    package on the way and what it imports when it runs; sorted."""
    graph, on_import = import_graph(), import_graph(top_level=True)
    todo = [f"{PACKAGE.name}.{m}" for m in modules]
    unknown = [m for m in todo if m not in graph]
    if unknown:
        raise ValueError(f"not modules of the package: {unknown}")
    seen, parents = set(), set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
            for k in range(1, m.count(".") + 1):
                parent = ".".join(m.split(".")[:k])
                if parent not in parents:  # an __init__ runs its module-level imports only
                    parents.add(parent)
                    todo.extend(on_import[parent])
    return sorted(str(_path(m)) for m in seen | parents)


def _path(module: str) -> Path:
    path = PACKAGE.parent / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return path.relative_to(PACKAGE.parent)
