"""Collect a problem's sweep shards into the tables the claims and figures read.

A summary folder holds ``tuned.parquet`` (tuned point and T*(B) per method and batch
size, over the grid's runs inside the method's deterministic stability region),
``grid.parquet`` (iterations-to-eps of every grid run and whether its point is in that
region: what the bootstrap intervals re-tune), ``tuned_runs.parquet`` (T at the tuned point per
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

from minibatch_momentum.analysis.tuning import (
    KEYS,
    deterministic_iters,
    grid_rows,
    mark_stable,
    rule_results,
    tune,
)
from minibatch_momentum.grid import Grid, grid_scale
from minibatch_momentum.io import read_json, read_metadata, write_json, write_parquet
from minibatch_momentum.problems.system import Problem
from minibatch_momentum.theory.common import stable_region

TABLES = ("tuned", "tuned_runs", "rule", "rule_runs", "curves", "grid")


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
    runs = mark_stable(runs, grid_scale(problem, str(runs["sampler"].iloc[0])))
    light = runs.drop(columns=["curve_step", "curve_loss"])
    tuned, tuned_runs = tune(light)
    grid_runs = grid_rows(light)[KEYS + ["eta", "beta", "seed", "iters_to_eps", "stable"]]
    rule, rule_runs = rule_results(light)
    curves = grid_rows(runs).merge(tuned[KEYS + ["eta", "beta"]], on=KEYS + ["eta", "beta"])[
        KEYS + ["eta", "beta", "seed", "curve_step", "curve_loss"]
    ]
    e0 = problem.eigvecs.T @ (0.0 - problem.x_star)
    deterministic, excluded = {}, {}
    for method in sorted(set(runs["method"])):
        # the full-batch count is over H's spectrum (eta in units of its L)
        Lh = float(problem.eigvals[-1])
        eta, beta = grid.points(method, Lh)
        ok = stable_region(method, eta * Lh, beta)
        T = deterministic_iters(
            problem.eigvals, e0, method, eta[ok], beta[ok], stop["eps"], stop["t_max"]
        )
        deterministic[method] = float(np.min(T))
        excluded[method] = {"grid_points": int(eta.size), "outside_stability": int((~ok).sum())}
    meta = problem.spectral_summary()
    return {
        "tuned": tuned,
        "tuned_runs": tuned_runs,
        "rule": rule,
        "rule_runs": rule_runs,
        "curves": curves,
        "grid": grid_runs,
        "summary": {
            "problem": meta,
            "eps": stop["eps"],
            "stop": stop,
            "grid": specs[0]["grid"],
            "deterministic_T": deterministic,
            "grid_points": excluded,
            "tuned_on_grid_edge": tuned.loc[tuned["on_grid_edge"], ["method", "batch_size"]]
            .astype({"batch_size": int})
            .to_dict("records"),
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
