"""From sweep runs to the quantities the claims are about.

- :func:`tune`: the grid-tuned ``(eta, beta)`` per (method, batch size) and its
  iterations-to-eps ``T*(B)`` per seed;
- :func:`loglog_slope`: least-squares slope of ``log T`` against ``log B`` in a window;
- :func:`fit_knee`: where a ``T(B)`` curve turns from falling to flat;
- :func:`speedup`: ``T_base / T_other`` per seed at equal batch size (the seeds share
  their mini-batches across methods, so the ratio is a paired comparison);
- :func:`deterministic_iters`: exact full-gradient iterations-to-eps, the plateau the
  stochastic methods saturate at.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["problem", "method", "sampler", "batch_size"]


def gmean(x) -> float:
    """Geometric mean of iteration counts; ``inf`` if any entry is ``inf`` (a run that
    never got there) or there are none (the study's one geometric mean)."""
    x = np.asarray(x, dtype=float)
    if x.size == 0 or np.any(~np.isfinite(x)):
        return float("inf")
    return float(np.exp(np.mean(np.log(x))))


def grid_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the (eta, beta) grid: rows whose ``source`` is ``"grid"`` (all rows of
    a table without a ``source`` column)."""
    return runs if "source" not in runs else runs[runs["source"] == "grid"]


def tune(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pick, per (problem, method, sampler, batch size), the grid point with the smallest
    geometric mean of iterations-to-eps over seeds.

    Only grid runs compete: rows with a ``source`` other than ``"grid"`` (the momentum
    rule's point, judged against this choice) are ignored, and so are rows whose
    ``stable`` column (when present, see :func:`mark_stable`) is False: a point outside
    the method's deterministic stability region may be run and drawn, never chosen.
    Ties go to the smaller step size, then the smaller momentum (the first in sort
    order). Returns ``(tuned, tuned_runs)``: one row per key with the tuned ``eta``,
    ``beta`` and ``T_gmean``, ``T_min``, ``T_max`` over seeds; and one row per key and seed
    with that seed's ``iters_to_eps`` at the tuned point.
    """
    runs = all_runs = grid_rows(runs)
    if "stable" in runs:
        runs = runs[runs["stable"]]
    score = (
        runs.groupby(KEYS + ["eta", "beta"], sort=True)["iters_to_eps"]
        .agg(gmean)
        .rename("T_gmean")
        .reset_index()
    )
    best = score.loc[score.groupby(KEYS, sort=True)["T_gmean"].idxmin()].reset_index(drop=True)
    per_seed = runs.merge(best[KEYS + ["eta", "beta"]], on=KEYS + ["eta", "beta"])
    tuned_runs = per_seed[KEYS + ["eta", "beta", "seed", "iters_to_eps"]].sort_values(
        KEYS + ["seed"], ignore_index=True
    )
    spread = tuned_runs.groupby(KEYS)["iters_to_eps"].agg(T_min="min", T_max="max", n_seeds="size")
    converged = (
        runs.assign(ok=np.isfinite(runs["iters_to_eps"]))
        .groupby(KEYS)["ok"]
        .mean()
        .rename("converged_share")
    )
    tuned = best.join(spread, on=KEYS).join(converged, on=KEYS)
    tuned["on_grid_edge"] = _on_edge(all_runs, tuned)
    return tuned, tuned_runs


def mark_stable(runs: pd.DataFrame, L: float) -> pd.DataFrame:
    """``runs`` with a ``stable`` column: whether each row's ``(eta, beta)`` lies in its
    method's deterministic stability region
    (:func:`~minibatch_momentum.theory.common.stable_region` with ``eta L``; ``L = 1`` for a
    projection sampler, whose ``eta`` is a relaxation)."""
    from minibatch_momentum.theory.common import stable_region

    stable = np.zeros(len(runs), bool)
    for method, idx in runs.groupby("method").indices.items():
        sel = runs.iloc[idx]
        stable[idx] = stable_region(
            method, sel["eta"].to_numpy() * L, sel["beta"].to_numpy()
        )
    return runs.assign(stable=stable)


def rule_results(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The momentum rule's runs (``source == "rule"``), shaped like :func:`tune`'s output.

    Returns ``(rule, rule_runs)``: one row per key with the rule's ``eta``, ``beta`` and
    ``T_gmean``, ``T_min``, ``T_max`` over seeds; and one row per key and seed. Both are
    empty when the runs hold no rule rows.
    """
    cols = KEYS + ["eta", "beta", "seed", "iters_to_eps"]
    if "source" not in runs:
        rule_runs = pd.DataFrame(columns=cols)
    else:
        rule_runs = runs.loc[runs["source"] == "rule", cols].sort_values(
            KEYS + ["seed"], ignore_index=True
        )
    g = rule_runs.groupby(KEYS, sort=True)
    rule = g.agg(
        eta=("eta", "first"),
        beta=("beta", "first"),
        T_gmean=("iters_to_eps", gmean),
        T_min=("iters_to_eps", "min"),
        T_max=("iters_to_eps", "max"),
        n_seeds=("iters_to_eps", "size"),
    ).reset_index()
    return rule, rule_runs


def _on_edge(runs: pd.DataFrame, tuned: pd.DataFrame) -> np.ndarray:
    # A tuned point on the boundary of the grid means the grid may be too small there.
    out = []
    for _, row in tuned.iterrows():
        sel = runs[(runs[KEYS] == row[KEYS]).all(axis=1)]
        edge_eta = row["eta"] in (sel["eta"].min(), sel["eta"].max())
        edge_beta = row["method"] != "sgd" and row["beta"] in (sel["beta"].min(), sel["beta"].max())
        out.append(bool(edge_eta or edge_beta))
    return np.array(out, dtype=bool)


def loglog_slope(B, T, lo: float, hi: float) -> dict:
    """Least-squares slope of ``log T`` on ``log B`` over the points with ``lo <= B <= hi``.

    Returns ``slope`` (nan with fewer than two finite points), its standard error
    ``stderr`` (nan with fewer than three) and the batch sizes used.
    """
    B, T = np.asarray(B, float), np.asarray(T, float)
    sel = (B >= lo) & (B <= hi) & np.isfinite(T) & (T > 0)
    x, y = np.log(B[sel]), np.log(T[sel])
    out = {"slope": float("nan"), "stderr": float("nan"), "batch_sizes": B[sel].tolist()}
    if x.size >= 2:
        (slope, icpt), res, *_ = np.polyfit(x, y, 1, full=True)
        out["slope"] = float(slope)
        if x.size >= 3:
            resid = y - (slope * x + icpt)
            s2 = resid @ resid / (x.size - 2)
            out["stderr"] = float(np.sqrt(s2 / np.sum((x - x.mean()) ** 2)))
    return out


def fit_knee(B, T) -> dict:
    """Fit ``log T = log c + s * max(0, log k - log B)``: a line of slope ``-s`` that
    meets a plateau ``c`` at the knee ``k``.

    The knee is searched on a fine log grid between the smallest and largest batch
    size; for each candidate the model is linear in ``(log c, s)`` and solved by least
    squares. Returns ``knee``, ``plateau`` and the falling part's ``slope`` (``-s``).
    """
    B, T = np.asarray(B, float), np.asarray(T, float)
    ok = np.isfinite(T) & (T > 0)
    x, y = np.log(B[ok]), np.log(T[ok])
    if x.size < 3:
        return {"knee": float("nan"), "plateau": float("nan"), "slope": float("nan")}
    best = (np.inf, None, None)
    for logk in np.linspace(x.min(), x.max(), 400):
        X = np.column_stack([np.ones_like(x), np.maximum(0.0, logk - x)])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        sse = float(np.sum((X @ coef - y) ** 2))
        if sse < best[0]:
            best = (sse, logk, coef)
    _, logk, (logc, s) = best
    return {"knee": float(np.exp(logk)), "plateau": float(np.exp(logc)), "slope": float(-s)}


def speedup(tuned_runs: pd.DataFrame, base: str, other: str) -> pd.DataFrame:
    """``T_base / T_other`` per (problem, sampler, batch size), paired by seed.

    Columns ``ratio`` (geometric mean over seeds), ``ratio_min``, ``ratio_max``.
    """
    keys = ["problem", "sampler", "batch_size", "seed"]
    a = tuned_runs[tuned_runs["method"] == base].set_index(keys)["iters_to_eps"]
    b = tuned_runs[tuned_runs["method"] == other].set_index(keys)["iters_to_eps"]
    r = (a / b).dropna().rename("r").reset_index()
    g = r.groupby(["problem", "sampler", "batch_size"])["r"]
    out = g.agg(ratio=gmean, ratio_min="min", ratio_max="max").reset_index()
    out.insert(1, "method", other)
    out.insert(2, "base", base)
    return out


def deterministic_iters(
    eigvals, e0, method: str, eta, beta, eps: float, t_max: int, censor_factor: float = 2.0
) -> np.ndarray:
    """Exact iterations-to-eps of full-gradient SGD/HB/NAG for each ``(eta[r], beta[r])``.

    With the whole batch there is no noise and the recursion decouples along the
    eigenvectors of ``H``: a 2-term recurrence per eigenvalue, ``O(d R)`` per step.
    ``e0`` is the initial error in the eigenbasis. Returns ``inf`` where ``eps`` is not
    reached within ``t_max`` steps.
    """
    lam = np.asarray(eigvals, float)[:, None]
    eta = np.atleast_1d(np.asarray(eta, float))[None, :]
    beta = np.atleast_1d(np.asarray(beta, float))[None, :]
    gamma = beta if method == "nag" else np.zeros_like(beta)
    e = np.repeat(np.asarray(e0, float)[:, None], eta.shape[1], axis=1)
    v = np.zeros_like(e)
    f0 = 0.5 * np.sum(lam[:, 0] * np.asarray(e0, float) ** 2)
    out = np.full(eta.shape[1], np.inf)
    alive = np.ones(eta.shape[1], bool)
    horizon = t_max
    for t in range(1, t_max + 1):
        y = e + gamma * v
        v = beta * v - eta * lam * y
        e = e + v
        rel = 0.5 * np.sum(lam * e * e, axis=0) / f0
        hit = alive & (rel <= eps)
        if hit.any() and horizon == t_max:
            horizon = min(t_max, int(np.ceil(censor_factor * t)))
        out[hit] = t
        alive &= ~hit & np.isfinite(rel) & (rel < 1e8)
        if not alive.any() or t >= horizon:
            break
    return out
