"""The package's import graph: one way (no cycle, counting the imports inside functions,
which would otherwise hide one), and PyTorch only in the modules that step the engine."""

from __future__ import annotations

import subprocess

import pytest

from conftest import PYTHON, subprocess_env
from minibatch_momentum.sources import import_graph, module_files


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
    assert "minibatch_momentum.cli" in graph and graph["minibatch_momentum.simulate.sweep"]
    assert cycles(graph) == []


# The package's layers, each importing only the ones above it (docs/design.md,
# "Architecture", lists the modules in this order).
LAYERS = [
    "version",
    "io",
    "checks",
    "sources",
    "sampling",
    "grid",
    "problems",
    "config",
    "theory",
    "simulate",
    "analysis",
    "report",
    "curvature",
    "optim",
    "solver",
    "studies",
    "figures",
    "benchmark",
    "cli",
]


def upward_imports(graph: dict[str, set[str]], layers: list[str]) -> list[tuple[str, str]]:
    """``(module, import)`` pairs where a module imports from a layer below its own."""
    rank = {name: k for k, name in enumerate(layers)}

    def layer(module):
        parts = module.split(".")
        return rank.get(parts[1]) if len(parts) > 1 else None

    return sorted(
        (m, d)
        for m, deps in graph.items()
        for d in deps
        if layer(m) is not None and layer(d) is not None and layer(d) > layer(m)
    )


def test_imports_point_down_the_layers():
    graph = import_graph()
    tops = {m.split(".")[1] for m in graph if m.count(".")}
    assert tops - {"__main__"} == set(LAYERS)  # a new top-level module takes a place here
    assert upward_imports(graph, LAYERS) == []
    # the check can fail: theory/exact.py used to import the engine for T1's table
    bad = {**graph, "minibatch_momentum.theory.exact": {"minibatch_momentum.simulate.engine"}}
    assert upward_imports(bad, LAYERS) != []


def test_only_the_engine_side_imports_torch():
    """Summaries, theory, claims, figures and the config checks (and so the Snakefile)
    run without importing PyTorch: its ~3 s start-up is paid by the jobs that need it."""
    light = [
        "cli",
        "cli.seeds",
        "config",
        "benchmark.plan",
        "grid",
        "sampling.samplers",
        "io",
        "theory",
        "theory.exact",
        "theory.rule",
        "analysis.summary",
        "analysis.tuning",
        "analysis.scaling",
        "report.curves",
        "report.markdown",
        "report.records",
        "report.scaling_claims",
        "report.sweep_claims",
        "figures.pairs",
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
    heavy = "import sys, minibatch_momentum.simulate.sweep; print('torch' in sys.modules)"
    out = subprocess.run(
        [PYTHON, "-c", heavy], env=subprocess_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"  # the check can fail


def test_a_jobs_code_is_its_modules_and_what_they_import():
    """The workflow's `code()` inputs: a figure job's files include the style module that
    plots imports (so editing it re-runs the figures) and not the engine."""
    files = module_files("figures.pairs")
    assert "minibatch_momentum/figures/pairs.py" in files
    assert "minibatch_momentum/figures/style.py" in files
    assert "minibatch_momentum/__init__.py" in files  # every import runs it
    assert "minibatch_momentum/simulate/engine.py" not in files
    seeds = module_files("studies.small_lr")
    assert "minibatch_momentum/studies/__init__.py" in seeds
    assert "minibatch_momentum/analysis/tuning.py" in seeds  # its geometric mean
    with pytest.raises(ValueError, match="not modules"):
        module_files("plot")
