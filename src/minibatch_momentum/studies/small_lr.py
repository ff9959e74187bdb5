r"""Seed system S3: at small batch sizes, SGDM(eta, beta) runs like SGD(eta / (1 - beta)).

Wang et al. (2024; Kidambi et al. 2018 for least squares) show that with a small
learning rate in the small-batch (noise-dominated) regime, heavy-ball SGD with momentum
``beta`` follows plain SGD with the *effective* step ``eta / (1 - beta)``: momentum buys
nothing a larger step would not. The primary paper's claim C2 ("speedup about 1 below
B*_SGD") is the tuned version of this statement; S3 checks it configuration by
configuration, from the data the sweeps already hold (nothing is run here).

The comparison. For one problem and sampler, the sweep shards give, for every batch size
``B``, every grid point's iterations-to-eps per seed (grid rows only; common mini-batches
across methods). Per grid point ``T`` is the geometric mean over the seeds (``inf`` if a
seed did not converge). For a momentum configuration ``(eta, beta)`` with finite ``T``:

- its effective step is ``eta_eff = eta / (1 - beta)``;
- SGD's count at ``eta_eff`` is *interpolated*: linearly in ``(log eta, log T)`` between
  the two neighbouring SGD grid steps around ``eta_eff``, which must both have a finite
  ``T`` (no extrapolation, no nearest-point rounding; the SGD grid is log-spaced);
- the pair is *comparable* when both counts exist. SGD runs that are censored (slower
  than ``censor_factor`` times the grid's first converged count) or diverge have no
  count, so the comparison covers the configurations where both methods converge within
  the sweep's horizon, i.e. near their optimum;
- the statistic is ``r = T_momentum / T_SGD(eta_eff)``, reported per batch size as the
  median of ``|log r|`` over the comparable configurations.

Claim: at every batch size ``B <= max_batch_factor * B*_SGD`` with at least ``min_pairs``
comparable configurations, ``exp(median |log r|) <= tolerance`` (default 1.25: a typical
configuration within 25%). The same numbers at larger ``B`` are reported beside it: there
momentum converges at effective steps where SGD no longer does, and the comparison runs
out of pairs, which is where the equivalence ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from minibatch_momentum.analysis.tuning import gmean
from minibatch_momentum.checks import distinct_names, integer, number
from minibatch_momentum.report.records import claim_record
from minibatch_momentum.studies.base import StudyConfig

__all__ = [
    "SmallLRConfig",
    "compare_effective_step",
    "analyze_small_lr",
    "claim_s3",
    "S3_FIGURE",
    "S3_SOURCE",
]

S3_FIGURE = "figures/seeds/small_lr_equivalence.pdf"
S3_SOURCE = "results/seeds/small_lr.parquet"
MOMENTUM_METHODS = ("hb", "nag")

S3_STATEMENT = (
    "Small-learning-rate equivalence: in the small-batch regime SGD with momentum "
    "(eta, beta) needs the same iterations as plain SGD with the effective step "
    "eta / (1 - beta) (Wang et al. 2024; Kidambi et al. 2018)."
)
S3_DEFINITION = (
    "r = T_momentum(eta, beta) / T_SGD(eta / (1 - beta)), T the seeds' geometric-mean "
    "iterations-to-eps at a grid point; T_SGD interpolated linearly in (log eta, log T) "
    "between the two neighbouring SGD grid steps (both converged); pairs where both "
    "converged within the sweep's horizon"
)


@dataclass(frozen=True)
class SmallLRConfig(StudyConfig):
    """Everything that determines the S3 verdict (the data come from the sweeps).

    Attributes:
        methods: momentum methods compared with SGD (``hb`` is SGDM, the seed's method;
            ``nag`` may be added).
        max_batch_factor: the small-batch regime is ``B <= max_batch_factor * B*_SGD``.
        tolerance: pass when ``exp(median |log r|) <= tolerance`` at every judged ``B``.
        min_pairs: a batch size needs this many comparable configurations to be judged.
    """

    methods: tuple[str, ...] = ("hb",)
    max_batch_factor: float = 0.5
    tolerance: float = 1.25
    min_pairs: int = 5

    NAME = "small_lr"
    RULES = {
        "methods": distinct_names(MOMENTUM_METHODS),
        "max_batch_factor": number("> 0"),
        "tolerance": number("> 1"),
        "min_pairs": integer(1),
    }


def _grid_means(runs: pd.DataFrame) -> pd.DataFrame:
    if "source" in runs:
        runs = runs[runs["source"] == "grid"]
    return (
        runs.groupby(["method", "batch_size", "eta", "beta"], sort=True)["iters_to_eps"]
        .agg(gmean)
        .rename("T")
        .reset_index()
    )


def _interpolate(log_eta: np.ndarray, log_T: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``log T`` at ``x`` by linear interpolation between the neighbouring grid points;
    ``nan`` outside the grid or next to a point without a count (``log T = inf``)."""
    out = np.full(x.shape, np.nan)
    if log_eta.size < 2:
        return out
    i = np.searchsorted(log_eta, x, side="right")
    inside = (i > 0) & (i < log_eta.size)
    exact = np.isin(x, log_eta)  # on a grid point: that point's count
    i = np.clip(i, 1, log_eta.size - 1)
    lo, hi = log_eta[i - 1], log_eta[i]
    w = (x - lo) / (hi - lo)
    ok = inside & np.isfinite(log_T[i - 1]) & np.isfinite(log_T[i])
    with np.errstate(invalid="ignore"):
        out[ok] = (log_T[i - 1] * (1 - w) + log_T[i] * w)[ok]
    if exact.any():
        j = np.searchsorted(log_eta, x[exact])
        vals = log_T[j]
        out[np.flatnonzero(exact)] = np.where(np.isfinite(vals), vals, np.nan)
    return out


def compare_effective_step(runs: pd.DataFrame, methods=MOMENTUM_METHODS) -> pd.DataFrame:
    """Every momentum grid point against SGD at its effective step (see module docstring).

    ``runs``: sweep rows (columns ``method, batch_size, seed, eta, beta, iters_to_eps`` and
    optionally ``source``) of SGD and the momentum methods, one problem and sampler.

    Returns one row per grid point of SGD and of each momentum method in ``methods``:
    ``method, batch_size, eta, beta, eta_eff`` (``eta / (1 - beta)``; ``eta`` for SGD),
    ``T`` (geometric mean over seeds), ``T_sgd_at_eta_eff`` (interpolated; nan when not
    comparable), ``ratio`` and ``comparable``.
    """
    g = _grid_means(runs)
    frames = []
    sgd = g[g["method"] == "sgd"]
    if not sgd.empty:
        s = sgd.assign(eta_eff=sgd["eta"], T_sgd_at_eta_eff=sgd["T"], ratio=1.0)
        s["comparable"] = False
        frames.append(s)
    for method in methods:
        m = g[g["method"] == method].copy()
        if m.empty:
            continue
        m["eta_eff"] = m["eta"] / (1.0 - m["beta"])
        m["T_sgd_at_eta_eff"] = np.nan
        for B, rows in m.groupby("batch_size"):
            s = sgd[sgd["batch_size"] == B].sort_values("eta")
            with np.errstate(divide="ignore"):
                log_T = np.log(s["T"].to_numpy(float))
            x = np.log(rows["eta_eff"].to_numpy(float))
            T = np.exp(_interpolate(np.log(s["eta"].to_numpy(float)), log_T, x))
            m.loc[rows.index, "T_sgd_at_eta_eff"] = T
        m["comparable"] = np.isfinite(m["T"]) & np.isfinite(m["T_sgd_at_eta_eff"])
        m["ratio"] = np.where(m["comparable"], m["T"] / m["T_sgd_at_eta_eff"], np.nan)
        frames.append(m)
    cols = [
        "method",
        "batch_size",
        "eta",
        "beta",
        "eta_eff",
        "T",
        "T_sgd_at_eta_eff",
        "ratio",
        "comparable",
    ]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)[cols]
    out["comparable"] = out["comparable"].astype(bool)
    return out.sort_values(["method", "batch_size", "eta", "beta"], ignore_index=True)


def analyze_small_lr(df: pd.DataFrame, meta: dict, config: SmallLRConfig) -> dict:
    """Per (method, batch size): comparable pairs, median and 90th percentile of
    ``|log r|``, median signed ``log r``, and whether ``B`` is in the small-batch regime.
    ``meta`` holds the problem's ``B_sgd`` and ``B_sat``. JSON-serializable."""
    limit = config.max_batch_factor * float(meta["B_sgd"])
    per_batch = []
    for method in config.methods:
        m = df[df["method"] == method]
        for B, rows in m.groupby("batch_size", sort=True):
            r = np.log(rows.loc[rows["comparable"], "ratio"].to_numpy(float))
            n = int(r.size)
            per_batch.append(
                {
                    "method": method,
                    "batch_size": int(B),
                    "small": bool(B <= limit),
                    "configs_converged": int(np.isfinite(rows["T"]).sum()),
                    "pairs": n,
                    "median_log_ratio": float(np.median(r)) if n else math.nan,
                    "median_abs_log_ratio": float(np.median(np.abs(r))) if n else math.nan,
                    "p90_abs_log_ratio": float(np.quantile(np.abs(r), 0.9)) if n else math.nan,
                    "typical_ratio": float(np.exp(np.median(np.abs(r)))) if n else math.nan,
                }
            )
    return {
        "per_batch": per_batch,
        "small_batch_limit": limit,
        "B_sgd": float(meta["B_sgd"]),
        "B_sat": float(meta["B_sat"]),
        "definition": S3_DEFINITION,
        "interpolation": "linear in (log eta, log T) between neighbouring SGD grid steps",
        "config": config.to_dict(),
    }


def claim_s3(
    analysis: dict,
    problem: str,
    sampler: str,
    source: str = S3_SOURCE,
    figure: str = S3_FIGURE,
) -> list[dict]:
    """One S3 entry per method: ``max over the judged small B of exp(median |log r|)``
    against ``tolerance``. INCONCLUSIVE when no small batch size has ``min_pairs`` pairs."""
    cfg = analysis["config"]
    tol, need = float(cfg["tolerance"]), int(cfg["min_pairs"])
    out = []
    for method in cfg["methods"]:
        rows = [p for p in analysis["per_batch"] if p["method"] == method]
        small = [p for p in rows if p["small"]]
        judged = [p for p in small if p["pairs"] >= need]
        large = [p for p in rows if not p["small"]]
        worst = max((p["typical_ratio"] for p in judged), default=math.nan)
        ok = None if not judged else bool(worst <= tol)
        check = {
            "check": f"max over B <= {analysis['small_batch_limit']:.3g} of exp(median |log r|), "
            f"r = T_{method}(eta, beta) / T_sgd(eta / (1 - beta))",
            "measured": worst,
            "predicted": 1.0,
            "tolerance": f"<= {tol:g} at every judged B (>= {need} comparable configurations)",
            "pass": ok,
            "batch_sizes": [p["batch_size"] for p in judged],
            "typical_ratios": [p["typical_ratio"] for p in judged],
            "median_signed_log_ratios": [p["median_log_ratio"] for p in judged],
            "p90_abs_log_ratios": [p["p90_abs_log_ratio"] for p in judged],
            "pairs": [p["pairs"] for p in judged],
            "unjudged_small_batch_sizes": [p["batch_size"] for p in small if p["pairs"] < need],
            "larger_batch_sizes": [p["batch_size"] for p in large],
            "larger_batch_pairs": [p["pairs"] for p in large],
            "larger_batch_typical_ratios": [p["typical_ratio"] for p in large],
            "definition": analysis.get("definition", S3_DEFINITION),
        }
        if ok is None:
            check["inconclusive_because"] = (
                f"no batch size <= {analysis['small_batch_limit']:.3g} has {need} comparable "
                "configurations"
            )
        out.append(
            claim_record("S3", S3_STATEMENT, method, problem, sampler, [check], figure, source)
        )
    return out
