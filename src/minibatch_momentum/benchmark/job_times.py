"""Where a workflow run's time went: the Snakemake ``benchmark:`` files of its jobs,
summed per rule (:func:`job_times`; every ``mbm benchmark`` mode ends with it)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_BENCHMARKS = Path("results/benchmarks")


def job_times(root: str | os.PathLike = DEFAULT_BENCHMARKS, out=print) -> dict:
    """Where a workflow run's time went: the Snakemake ``benchmark:`` files under ``root``
    (:func:`~minibatch_momentum.report.paper.read_benchmarks`) summed per rule, largest first.

    Returns ``{rule: {"jobs", "total_s", "median_s", "max_s", "cpu_s", "share"}}`` and
    prints it: wall-clock seconds per job as Snakemake measured them (their sum is not the
    run's wall time when jobs ran in parallel) and the jobs' CPU seconds (``cpu_time``),
    which a busy machine inflates less than wall time.
    """
    from minibatch_momentum.report.paper import read_benchmarks

    bench = read_benchmarks(root)
    if bench.empty:
        out(f"job times: no benchmark files under {root}")
        return {}
    total = float(bench["seconds"].sum())
    g = bench.groupby("rule")
    table = g["seconds"].agg(jobs="count", total_s="sum", median_s="median", max_s="max")
    table["cpu_s"] = g["cpu_seconds"].sum(min_count=1)
    table = table.sort_values("total_s", ascending=False)
    out(f"job times by rule ({len(bench)} jobs, {total:.1f} s summed, from {root}):")
    out(
        f"  {'rule':<14} {'jobs':>5} {'total s':>9} {'share':>6} {'median s':>9} {'max s':>8}"
        f" {'CPU s':>8}"
    )
    result = {}
    for rule, row in table.iterrows():
        share = row["total_s"] / total
        out(
            f"  {rule:<14} {int(row['jobs']):>5} {row['total_s']:>9.1f} {share:>6.1%} "
            f"{row['median_s']:>9.2f} {row['max_s']:>8.2f} {row['cpu_s']:>8.1f}"
        )
        result[str(rule)] = {
            "jobs": int(row["jobs"]),
            "total_s": float(row["total_s"]),
            "median_s": float(row["median_s"]),
            "max_s": float(row["max_s"]),
            "cpu_s": float(row["cpu_s"]),
            "share": float(share),
        }
    return result
