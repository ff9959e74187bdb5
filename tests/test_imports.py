"""The package's import graph: one way (no cycle, counting the imports inside functions,
which would otherwise hide one), and PyTorch only in the modules that step the engine."""

from __future__ import annotations

import ast
import subprocess

from conftest import PYTHON, REPO_ROOT, subprocess_env

PKG = REPO_ROOT / "src" / "minibatch_momentum"


def _name(path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (relative imports
    and absolute ``minibatch_momentum.*`` ones)."""
    modules = {_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = base[: len(base) - node.level + 1] + ([node.module] if node.module else [])
                stem = ".".join(target)
                deps |= {stem} if node.module else {f"{stem}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "minibatch_momentum.cli" in graph and graph["minibatch_momentum.sweep"]
    assert cycles(graph) == []


def test_only_the_engine_side_imports_torch():
    """Summaries, theory, claims, figures and the config checks (and so the Snakefile)
    run without importing PyTorch: its ~3 s start-up is paid by the jobs that need it."""
    light = [
        "cli",
        "config",
        "plan",
        "grid",
        "samplers",
        "io",
        "theory",
        "exact",
        "rule",
        "summary",
        "analysis",
        "scaling",
        "claims",
        "plots",
        "seeds",
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {light!r}: importlib.import_module('minibatch_momentum.' + m)\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [PYTHON, "-c", code], env=subprocess_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    heavy = "import sys, minibatch_momentum.sweep; print('torch' in sys.modules)"
    out = subprocess.run(
        [PYTHON, "-c", heavy], env=subprocess_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"  # the check can fail
