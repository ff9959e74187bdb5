"""S7 as ``mbm seed search-noise`` runs it: both parts run (:func:`run_search_noise`), the
noise levels and their fits (:func:`analyze_search_noise`) and the claims S7a-c."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from minibatch_momentum.report.records import check_record, claim_record
from minibatch_momentum.studies.digits import derive_seed, load_digits_split
from minibatch_momentum.studies.search_noise.config import MOMENTUM_FORMS, SearchNoiseConfig
from minibatch_momentum.studies.search_noise.theory import frozen_noise_ratio, predicted_slope
from minibatch_momentum.studies.search_noise.train import run_digits, run_quadratic

S7_FIGURE = "figures/seeds/search_noise.pdf"
S7_SOURCE = "results/seeds/search_noise.parquet"
QUAD_Z = 2.576  # the quadratic check's 99% two-sided normal interval

S7A_STATEMENT = (
    "The search-direction noise ||d_t - grad f(x_t)|| of mini-batch SGD falls as "
    "1/sqrt(B) (Sato & Iiduka, arXiv 2402.02325); on the quadratics the derived closed "
    "form of E||d_t - grad f(x_t)||^2 for SGD, SHB and NSHB matches the measurement."
)
S7B_STATEMENT = (
    "At equal effective step, momentum lowers the search-direction noise level (the "
    "earlier versions of Sato & Iiduka, arXiv 2402.02325v1-v3; v4 concludes that it does "
    "not). PASS: the data support the earlier versions; FAIL: they support v4."
)
S7C_STATEMENT = (
    "The search-direction noise level dominates generalizability: across configurations "
    "(optimizer, effective step, batch size, momentum) the noise level late in training "
    "and the test accuracy are negatively correlated (Sato & Iiduka, arXiv 2402.02325v2/v3)."
)


def run_search_noise(
    config: SearchNoiseConfig, progress: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """Both parts in one tidy frame (``part`` = ``quadratic`` or ``digits``); the
    columns a part does not have are NaN (``predicted_sq`` exists on the quadratic only,
    ``test_acc``/``status`` on the digits only)."""
    quad = run_quadratic(config)
    if progress:
        progress(f"search_noise quadratic: {len(quad)} steps")
    digits = run_digits(config, progress)
    df = pd.concat([quad, digits], ignore_index=True)
    df["status"] = df["status"].fillna("ok").astype(str)
    df.attrs["n_train"] = digits.attrs["n_train"]
    return df


# --------------------------------------------------------------------------- analysis


def _percentile_ci(samples: np.ndarray, level: float) -> list[float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return [math.nan, math.nan]
    q = 100 * (1 - level) / 2
    return [float(np.percentile(samples, q)), float(np.percentile(samples, 100 - q))]


def _bootstrap_mean(values: np.ndarray, config: SearchNoiseConfig, key: int) -> list[float]:
    """Percentile interval of the mean of ``values`` (one per seed), resampling them."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return [math.nan, math.nan]
    rng = np.random.default_rng(derive_seed(key, values.size, 2402))
    idx = rng.integers(0, values.size, size=(config.n_boot, values.size))
    return _percentile_ci(values[idx].mean(axis=1), config.ci_level)


def run_levels(df: pd.DataFrame, config: SearchNoiseConfig) -> pd.DataFrame:
    """One row per digits run: ``level`` (RMS ``||omega||`` over the window),
    ``grad_level`` (RMS ``||grad f||`` there), final ``test_acc``, ``loss`` and
    ``status``."""
    d = df[df["part"] == "digits"]
    keys = ["method", "beta", "eff_lr", "batch_size", "seed"]
    win = d[(d["step"] >= config.window_start()) & (d["step"] < config.steps)]
    levels = win.groupby(keys).agg(noise=("noise_sq", "mean"), grad=("grad_sq", "mean"))
    end = d[d["step"] == config.steps].set_index(keys)[["test_acc", "loss", "status"]]
    out = end.join(levels, how="left").reset_index()
    out["level"] = np.sqrt(out.pop("noise"))
    out["grad_level"] = np.sqrt(out.pop("grad"))
    bad = out["status"] != "ok"
    out.loc[bad, ["level", "grad_level"]] = math.nan
    return out


def _slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _b_slopes(runs: pd.DataFrame, method: str, beta: float) -> pd.DataFrame:
    """Per (seed, eta_eff): the slope of log level against log B of one variant."""
    g = runs[(runs["method"] == method) & (runs["beta"] == beta)]
    rows = []
    for (seed, eff), h in g.groupby(["seed", "eff_lr"]):
        h = h.sort_values("batch_size")
        if h["level"].notna().all() and len(h) >= 2:
            rows.append({"seed": seed, "eff_lr": eff, "slope": _slope(h["batch_size"], h["level"])})
    return pd.DataFrame(rows, columns=["seed", "eff_lr", "slope"])


def _quadratic_check(df: pd.DataFrame) -> dict:
    """Mean measured / closed-form ratio of ``||omega_t||^2`` per (method, beta, B) and
    pooled. The per-step ratios have conditional mean 1 given the past, so they are
    uncorrelated and the standard error of their mean is ``sd / sqrt(N)``."""
    q = df[(df["part"] == "quadratic") & (df["predicted_sq"] > 0)].copy()
    q["ratio"] = q["noise_sq"] / q["predicted_sq"]
    cells = []
    for (m, beta, B), g in q.groupby(["method", "beta", "batch_size"]):
        r = g["ratio"].to_numpy()
        cells.append(
            {
                "method": m,
                "beta": float(beta),
                "batch_size": int(B),
                "ratio": float(r.mean()),
                "se": float(r.std(ddof=1) / math.sqrt(r.size)),
                "n": int(r.size),
            }
        )
    r = q["ratio"].to_numpy()
    se = float(r.std(ddof=1) / math.sqrt(r.size)) if r.size > 1 else math.nan
    return {
        "ratio": float(r.mean()) if r.size else math.nan,
        "se": se,
        "n": int(r.size),
        "worst_z": max(
            (abs(c["ratio"] - 1) / c["se"] for c in cells if c["se"] > 0), default=math.nan
        ),
        "cells": cells,
    }


def _b_slopes_by_variant(runs: pd.DataFrame, config: SearchNoiseConfig) -> list[dict]:
    """S7a: per ``(method, beta)`` the seed-mean slope of log level against log B, with its
    seed-bootstrap interval."""
    seeds = list(config.seeds)
    slopes = []
    for method, beta in config.variants():
        s = _b_slopes(runs, method, beta)
        per_seed = s.groupby("seed")["slope"].mean().reindex(seeds).dropna()
        by_eta = s.groupby("eff_lr")["slope"].mean()
        slopes.append(
            {
                "method": method,
                "beta": beta,
                "slope": float(per_seed.mean()) if len(per_seed) else math.nan,
                "ci": _bootstrap_mean(per_seed.to_numpy(), config, 1),
                "per_seed": [float(v) for v in per_seed],
                "by_eff_lr": {f"{k:g}": float(v) for k, v in by_eta.items()},
            }
        )
    return slopes


def _momentum_ratios(runs: pd.DataFrame, sgd: pd.DataFrame, config: SearchNoiseConfig) -> list:
    """S7b: per momentum form (and per beta) the geometric-mean ratio of its level to
    SGD's (``sgd``: SGD's runs) at equal effective step, paired by seed, B and eta_eff."""
    seeds = list(config.seeds)
    momentum = []
    base = sgd.set_index(["eff_lr", "batch_size", "seed"])["level"]
    for form in MOMENTUM_FORMS:
        if form not in config.methods:
            continue
        g = runs[runs["method"] == form].copy()
        g["log_ratio"] = np.log(g["level"].to_numpy()) - np.log(
            base.reindex(pd.MultiIndex.from_frame(g[["eff_lr", "batch_size", "seed"]])).to_numpy()
        )
        per_seed = g.groupby("seed")["log_ratio"].mean().reindex(seeds).dropna()
        ci = _bootstrap_mean(per_seed.to_numpy(), config, 2)
        by_beta = []
        for beta, h in g.groupby("beta"):
            ps = h.groupby("seed")["log_ratio"].mean().dropna()
            by_beta.append(
                {
                    "beta": float(beta),
                    "ratio": float(np.exp(ps.mean())),
                    "ci": [float(np.exp(v)) for v in _bootstrap_mean(ps.to_numpy(), config, 3)],
                    "frozen_noise_prediction": float(frozen_noise_ratio(form, beta)),
                    "by_eff_lr": {
                        f"{k:g}": float(np.exp(v))
                        for k, v in h.groupby("eff_lr")["log_ratio"].mean().items()
                    },
                }
            )
        momentum.append(
            {
                "method": form,
                "ratio": float(np.exp(per_seed.mean())) if len(per_seed) else math.nan,
                "ci": [float(np.exp(v)) for v in ci],
                "n_seeds": int(len(per_seed)),
                "n_missing": int(g["log_ratio"].isna().sum()),
                "by_beta": by_beta,
            }
        )
    return momentum


def _correlation(runs: pd.DataFrame, config: SearchNoiseConfig) -> tuple[pd.DataFrame, dict]:
    """S7c: the configurations (seed-mean level and test accuracy of the runs that did not
    diverge) and Spearman's rho between the two, overall and per method."""
    keys = ["method", "beta", "eff_lr", "batch_size"]
    ok = runs[runs["status"] == "ok"]
    conf = (
        ok.groupby(keys).agg(level=("level", "mean"), test_acc=("test_acc", "mean")).reset_index()
    )
    correlation = _spearman_bootstrap(conf, config)
    correlation["per_method"] = {}
    for m, g in conf.groupby("method"):
        if len(g) >= 3:
            correlation["per_method"][m] = float(stats.spearmanr(g["level"], g["test_acc"])[0])
    correlation["n_diverged_runs"] = int((runs["status"] != "ok").sum())
    return conf, correlation


def analyze_search_noise(df: pd.DataFrame, config: SearchNoiseConfig) -> dict:
    """Levels per run, the three claims' statistics and the figure's tables.

    Returns a JSON-serializable dict with ``runs`` (per-run levels and accuracies),
    ``slope`` (S7a on the digits: per-variant B slopes with seed-bootstrap intervals),
    ``quadratic`` (S7a's closed-form check), ``momentum`` (S7b: per form and per beta,
    level ratios to SGD at equal effective step), ``correlation`` (S7c) and ``config``.
    """
    runs = run_levels(df, config)
    n_train = int(df.attrs.get("n_train", 0)) or _n_train(config)
    slopes = _b_slopes_by_variant(runs, config)
    sgd = runs[runs["method"] == "sgd"]
    eta_slope = []
    for B, g in sgd.groupby("batch_size"):
        m = g.groupby("eff_lr")["level"].mean()
        if m.notna().all() and len(m) >= 2:
            eta_slope.append({"batch_size": int(B), "slope": _slope(m.index, m.to_numpy())})

    momentum = _momentum_ratios(runs, sgd, config)
    conf, correlation = _correlation(runs, config)

    return {
        "n_train": n_train,
        "predicted_slope": predicted_slope(n_train, config.batch_sizes),
        "slope_tolerance": config.slope_tolerance,
        "ci_level": config.ci_level,
        "slopes": slopes,
        "eta_slopes": eta_slope,
        "quadratic": _quadratic_check(df),
        "momentum": momentum,
        "correlation": correlation,
        "configurations": conf.to_dict(orient="list"),
        "runs": runs.drop(columns=["status"]).to_dict(orient="list"),
        "config": config.to_dict(),
    }


def _n_train(config: SearchNoiseConfig) -> int:
    return len(load_digits_split(config.digits_config())["y_train"])


def _spearman_bootstrap(conf: pd.DataFrame, config: SearchNoiseConfig) -> dict:
    """Spearman's rho of (level, test accuracy) over configurations and a percentile
    bootstrap interval resampling configurations (pairs)."""
    x, y = conf["level"].to_numpy(), conf["test_acc"].to_numpy()
    n = x.size
    if n < 3:
        return {"rho": math.nan, "ci": [math.nan, math.nan], "n_configurations": n}
    rho = float(stats.spearmanr(x, y)[0])
    rng = np.random.default_rng(derive_seed(n, 4, 2402))
    idx = rng.integers(0, n, size=(config.n_boot, n))
    rx = stats.rankdata(x[idx], axis=1)
    ry = stats.rankdata(y[idx], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (rx * ry).sum(axis=1) / den
    return {"rho": rho, "ci": _percentile_ci(boot, config.ci_level), "n_configurations": n}


# --------------------------------------------------------------------------- claims


def _entry(cid, statement, method, checks, source, figure) -> dict:
    return claim_record(
        cid,
        statement,
        method,
        "digits-mlp",
        "without_replacement",
        checks,
        figure,
        source,
        undecided_first=True,
    )


def claim_s7a(analysis: dict, source: str = S7_SOURCE, figure: str = S7_FIGURE) -> dict:
    """S7a: SGD's level falls as ``B^{-1/2}`` on the digits MLP, and the closed form
    holds on the quadratic.

    Check 1: the seed-mean slope of log level against log B (averaged over ``eta_eff``)
    within ``slope_tolerance`` of :func:`predicted_slope` (INCONCLUSIVE with fewer than
    two seeds). Check 2: the pooled mean of measured / closed-form ``||omega_t||^2`` on the
    quadratic, its 99% interval containing 1.
    """
    sgd = next(s for s in analysis["slopes"] if s["method"] == "sgd")
    pred, tol = analysis["predicted_slope"], analysis["slope_tolerance"]
    reasons = [] if len(sgd["per_seed"]) >= 2 else ["fewer than two seeds with a slope"]
    ok1 = (
        None if reasons or not np.isfinite(sgd["slope"]) else bool(abs(sgd["slope"] - pred) <= tol)
    )
    c1 = check_record(
        "digits MLP, SGD: slope of log noise level vs log B",
        sgd["slope"],
        pred,
        f"+/- {tol:g} (-1/2 with the without-replacement factor (n - B)/(n - 1))",
        ok1,
        reasons,
        ci=sgd["ci"],
        ci_level=analysis["ci_level"],
        per_seed=sgd["per_seed"],
        by_eff_lr=sgd["by_eff_lr"],
        momentum_slopes={
            f"{s['method']} beta={s['beta']:g}": s["slope"]
            for s in analysis["slopes"]
            if s["method"] != "sgd"
        },
        eta_slopes=analysis["eta_slopes"],
    )
    q = analysis["quadratic"]
    ok2 = None if not np.isfinite(q["se"]) else bool(abs(q["ratio"] - 1) <= QUAD_Z * q["se"])
    c2 = check_record(
        "quadratic: measured / closed-form E||d_t - grad f(x_t)||^2 (all methods, B)",
        q["ratio"],
        1.0,
        f"|ratio - 1| <= {QUAD_Z} standard errors (99%)",
        ok2,
        standard_error=q["se"],
        steps=q["n"],
        worst_cell_z=q["worst_z"],
    )
    return _entry("S7a", S7A_STATEMENT, "sgd", [c1, c2], source, figure)


def claim_s7b(analysis: dict, source: str = S7_SOURCE, figure: str = S7_FIGURE) -> list[dict]:
    """S7b, one entry per momentum form: the geometric-mean ratio of its level to SGD's
    at equal effective step (paired by seed, ``B``, ``eta_eff``; averaged over ``beta``).
    PASS (momentum lowers the noise: the earlier versions) when the seed-bootstrap
    interval lies below 1, FAIL (the data side with v4) otherwise; INCONCLUSIVE with
    fewer than two seeds."""
    out = []
    for m in analysis["momentum"]:
        lo, hi = m["ci"]
        reasons = [] if m["n_seeds"] >= 2 and np.isfinite(hi) else ["fewer than two seeds"]
        ok = None if reasons else bool(hi < 1)
        supports = (
            None
            if ok is None
            else ("v1-v3: momentum lowers the noise" if ok else "v4: it does not")
        )
        c = check_record(
            f"digits MLP: level({m['method'].upper()}) / level(SGD) at equal eta/(1 - beta)",
            m["ratio"],
            "< 1",
            f"{100 * analysis['ci_level']:g}% bootstrap interval below 1",
            ok,
            reasons,
            ci=m["ci"],
            supports=supports,
            by_beta=m["by_beta"],
            n_missing=m["n_missing"],
        )
        out.append(_entry("S7b", S7B_STATEMENT, m["method"], [c], source, figure))
    return out


def claim_s7c(analysis: dict, source: str = S7_SOURCE, figure: str = S7_FIGURE) -> dict:
    """S7c: Spearman's rho between noise level and test accuracy across configurations;
    PASS when its bootstrap interval lies below zero, FAIL otherwise, INCONCLUSIVE with
    fewer than five configurations."""
    c = analysis["correlation"]
    reasons = [] if c["n_configurations"] >= 5 else ["fewer than five configurations"]
    lo, hi = c["ci"]
    ok = None if reasons or not np.isfinite(hi) else bool(hi < 0)
    check = check_record(
        "digits MLP: Spearman rho(noise level, test accuracy) across configurations",
        c["rho"],
        "< 0",
        f"{100 * analysis['ci_level']:g}% bootstrap interval below 0",
        ok,
        reasons,
        ci=c["ci"],
        n_configurations=c["n_configurations"],
        per_method=c["per_method"],
        n_diverged_runs=c["n_diverged_runs"],
    )
    return _entry("S7c", S7C_STATEMENT, "all", [check], source, figure)


def claims_s7(analysis: dict, source: str = S7_SOURCE, figure: str = S7_FIGURE) -> list[dict]:
    """S7a, S7b (one per momentum form) and S7c."""
    return [
        claim_s7a(analysis, source, figure),
        *claim_s7b(analysis, source, figure),
        claim_s7c(analysis, source, figure),
    ]
