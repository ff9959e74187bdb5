"""Collect a problem's sweep shards into the tables the claims and figures read.

A summary folder holds ``tuned.parquet`` (tuned point and T*(B) per method and batch
size, over the grid's runs only), ``tuned_runs.parquet`` (T at the tuned point per
seed), ``rule.parquet`` and ``rule_runs.parquet`` (the same for the momentum rule's
point, run beside the grid), ``curves.parquet`` (loss curves at the tuned points) and
``summary.json`` (the problem's spectral quantities, the stopping rule, and the exact
full-batch counts the plateau is compared with).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .analysis import KEYS, deterministic_iters, grid_rows, rule_results, tune
from .io import read_json, write_json
from .problems import Problem
from .sweep import Grid, read_metadata, write_parquet

TABLES = ("tuned", "tuned_runs", "rule", "rule_runs", "curves")


def load_runs(paths) -> tuple[pd.DataFrame, list[dict]]:
    """Concatenate shard files; returns the runs and each shard's metadata."""
    paths = list(paths)
    if not paths:
        raise ValueError("no sweep shards given")
    frames = [pq.read_table(p).to_pandas() for p in paths]
    return pd.concat(frames, ignore_index=True), [read_metadata(p) for p in paths]


def summarize(problem: Problem, runs: pd.DataFrame, shard_meta: list[dict]) -> dict:
    """The summary tables and numbers for one problem (see module docstring)."""
    specs = [m["spec"] for m in shard_meta]
    eps = {s["stop"]["eps"] for s in specs}
    if len(eps) != 1:
        raise ValueError(f"shards of one summary must share eps, got {sorted(eps)}")
    stop = specs[0]["stop"]
    grid = Grid(**specs[0]["grid"])
    if "source" not in runs:
        runs = runs.assign(source="grid")
    light = runs.drop(columns=["curve_step", "curve_loss"])
    tuned, tuned_runs = tune(light)
    rule, rule_runs = rule_results(light)
    curves = grid_rows(runs).merge(tuned[KEYS + ["eta", "beta"]], on=KEYS + ["eta", "beta"])[
        KEYS + ["eta", "beta", "seed", "curve_step", "curve_loss"]
    ]
    e0 = problem.eigvecs.T @ (0.0 - problem.x_star)
    L = float(problem.eigvals[-1])
    deterministic = {}
    for method in sorted(set(runs["method"])):
        eta, beta = grid.points(method, L)
        T = deterministic_iters(problem.eigvals, e0, method, eta, beta, stop["eps"], stop["t_max"])
        deterministic[method] = float(np.min(T))
    meta = problem.spectral_summary()
    return {
        "tuned": tuned,
        "tuned_runs": tuned_runs,
        "rule": rule,
        "rule_runs": rule_runs,
        "curves": curves,
        "summary": {
            "problem": meta,
            "eps": stop["eps"],
            "stop": stop,
            "grid": specs[0]["grid"],
            "deterministic_T": deterministic,
            "rule": {s["method"]: s.get("rule") for s in specs},
            "shards": len(specs),
        },
    }


def write_summary(result: dict, out_dir: str | os.PathLike) -> None:
    out_dir = Path(out_dir)
    meta = {"summary": result["summary"]}
    for name in TABLES:
        write_parquet(result[name], out_dir / f"{name}.parquet", meta)
    write_json(result["summary"], out_dir / "summary.json")


def read_summary(out_dir: str | os.PathLike) -> dict:
    out_dir = Path(out_dir)
    # rule tables are absent from summaries written before the rule ran in the sweeps
    out = {
        n: pd.read_parquet(out_dir / f"{n}.parquet")
        if (out_dir / f"{n}.parquet").exists() or n not in ("rule", "rule_runs")
        else pd.DataFrame()
        for n in TABLES
    }
    out["summary"] = read_json(out_dir / "summary.json")
    return out
