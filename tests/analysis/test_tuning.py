"""Analysis on hand-made data: tuning, slopes, knees, paired speedups, exact full-batch counts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from minibatch_momentum.analysis.tuning import (
    deterministic_iters,
    fit_knee,
    gmean,
    loglog_slope,
    rule_results,
    speedup,
    tune,
)
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.simulate.engine import StopRule, run_grid

INF = math.inf


def runs_frame(rows):
    """rows: (method, batch_size, eta, beta, seed, iters) -> a runs table like a shard's."""
    df = pd.DataFrame(rows, columns=["method", "batch_size", "eta", "beta", "seed", "iters_to_eps"])
    df.insert(0, "problem", "p")
    df.insert(2, "sampler", "without_replacement")
    return df


# --------------------------------------------------------------------------- gmean / tune


def test_gmean():
    assert gmean([4.0, 9.0]) == pytest.approx(6.0, rel=1e-15)
    assert gmean([2.0, 8.0, 4.0]) == pytest.approx(4.0, rel=1e-15)
    assert gmean([3.0, INF]) == INF


def test_tune_picks_smallest_geometric_mean_over_seeds():
    # Per (eta, beta) over seeds 0, 1 (B = 8):
    #   A (0.1, 0.9): 20, 500  -> gmean 100   (min 20, mean 260)
    #   B (0.2, 0.9): 90, 120  -> gmean 103.9 (mean 105: what an arithmetic mean would pick)
    #   C (0.1, 0.5): 15, inf  -> gmean inf   (min 15: what a best-seed rule would pick)
    #   D (0.2, 0.5): inf, inf
    # and at B = 16 a tie (gmean 50) that goes to the smaller eta.
    rows = []
    for seed, (a, b, c, d) in enumerate([(20, 90, 15, INF), (500, 120, INF, INF)]):
        rows += [
            ("hb", 8, 0.1, 0.9, seed, a),
            ("hb", 8, 0.2, 0.9, seed, b),
            ("hb", 8, 0.1, 0.5, seed, c),
            ("hb", 8, 0.2, 0.5, seed, d),
        ]
    rows += [
        ("hb", 16, 0.4, 0.9, 0, 25),
        ("hb", 16, 0.4, 0.9, 1, 100),
        ("hb", 16, 0.3, 0.9, 0, 50),
        ("hb", 16, 0.3, 0.9, 1, 50),
        ("hb", 16, 0.3, 0.5, 0, 60),
        ("hb", 16, 0.3, 0.5, 1, 60),
    ]
    runs = runs_frame(rows).sample(frac=1.0, random_state=0)  # order must not matter
    tuned, tuned_runs = tune(runs)
    tuned = tuned.set_index("batch_size")
    assert len(tuned) == 2
    row = tuned.loc[8]
    assert (row["eta"], row["beta"]) == (0.1, 0.9)
    assert row["T_gmean"] == pytest.approx(100.0, rel=1e-12)
    assert (row["T_min"], row["T_max"], row["n_seeds"]) == (20, 500, 2)
    assert row["converged_share"] == pytest.approx(5 / 8)
    row = tuned.loc[16]
    assert (row["eta"], row["beta"]) == (0.3, 0.9)
    assert row["T_gmean"] == pytest.approx(50.0, rel=1e-12)
    # the per-seed table holds the tuned point's own runs, seed by seed
    per = tuned_runs[tuned_runs["batch_size"] == 8].set_index("seed")["iters_to_eps"]
    assert per.to_dict() == {0: 20, 1: 500}
    per = tuned_runs[tuned_runs["batch_size"] == 16].set_index("seed")["iters_to_eps"]
    assert per.to_dict() == {0: 50, 1: 50}


def test_tune_ignores_rule_rows():
    # The rule's point is faster than every grid point and sits outside the grid: tuning
    # must neither pick it nor let it widen the grid's edges or change its converged share.
    rows = []
    for seed in (0, 1):
        for eta in (0.1, 0.2, 0.4):
            for beta in (0.5, 0.7, 0.9):
                rows.append(
                    ("hb", 4, eta, beta, seed, 100 + 100 * abs(eta - 0.2) + 10 * abs(beta - 0.7))
                )
    grid = runs_frame(rows).assign(source="grid")
    rule = runs_frame([("hb", 4, 0.8, 0.95, 0, 50.0), ("hb", 4, 0.8, 0.95, 1, INF)]).assign(
        source="rule"
    )
    tuned, tuned_runs = tune(pd.concat([grid, rule], ignore_index=True))
    alone, alone_runs = tune(grid)
    pd.testing.assert_frame_equal(tuned, alone)
    pd.testing.assert_frame_equal(tuned_runs, alone_runs)
    assert (tuned["eta"] == 0.2).all() and (tuned["beta"] == 0.7).all()
    assert not tuned["on_grid_edge"].any()
    assert tuned["converged_share"].iloc[0] == 1.0
    # a table without a source column is all grid (as before the rule ran in the sweeps)
    pd.testing.assert_frame_equal(tune(grid.drop(columns="source"))[0], alone)


def test_rule_results_summarize_the_rule_rows():
    rows = [("hb", 4, 0.1, 0.9, s, 100.0) for s in (0, 1)]
    grid = runs_frame(rows).assign(source="grid")
    rule = runs_frame(
        [
            ("hb", 4, 0.3, 0.95, 0, 40.0),
            ("hb", 4, 0.3, 0.95, 1, 90.0),
            ("hb", 8, 0.5, 0.95, 0, 30.0),
            ("hb", 8, 0.5, 0.95, 1, INF),
        ]
    ).assign(source="rule")
    summary, per_seed = rule_results(pd.concat([grid, rule], ignore_index=True))
    summary = summary.set_index("batch_size")
    assert summary.loc[4, "T_gmean"] == pytest.approx(60.0)
    assert (summary.loc[4, "eta"], summary.loc[4, "beta"]) == (0.3, 0.95)
    assert (summary.loc[4, "T_min"], summary.loc[4, "T_max"], summary.loc[4, "n_seeds"]) == (
        40,
        90,
        2,
    )
    assert summary.loc[8, "T_gmean"] == INF
    assert len(per_seed) == 4 and set(per_seed["eta"]) == {0.3, 0.5}
    empty, empty_runs = rule_results(grid)
    assert empty.empty and empty_runs.empty
    assert rule_results(grid.drop(columns="source"))[0].empty


def test_tune_flags_a_tuned_point_on_the_grid_edge():
    rows = []
    for seed in (0, 1):
        for eta in (0.1, 0.2, 0.4):
            for beta in (0.5, 0.7, 0.9):
                T = 100 + 10 * abs(eta - 0.2) * 10 + 10 * abs(beta - 0.7) * 10  # interior best
                rows.append(("hb", 4, eta, beta, seed, T))
                # at B = 8 the best is the largest step size: on the edge
                rows.append(("hb", 8, eta, beta, seed, 100 - 100 * eta + 10 * abs(beta - 0.7)))
    tuned, _ = tune(runs_frame(rows))
    tuned = tuned.set_index("batch_size")
    assert (tuned.loc[4, "eta"], tuned.loc[4, "beta"]) == (0.2, 0.7)
    assert not tuned.loc[4, "on_grid_edge"]
    assert tuned.loc[8, "eta"] == 0.4 and tuned.loc[8, "on_grid_edge"]


def test_tune_all_diverged_gives_inf():
    rows = [("sgd", 1, eta, 0.0, s, INF) for eta in (0.1, 0.2) for s in (0, 1)]
    tuned, _ = tune(runs_frame(rows))
    assert tuned["T_gmean"].iloc[0] == INF
    assert tuned["converged_share"].iloc[0] == 0.0


# --------------------------------------------------------------------------- loglog_slope


def test_loglog_slope_recovers_a_power_law_in_the_window_only():
    B = 2.0 ** np.arange(0, 13)
    s, c = -0.8, 5e4
    T = np.where((B >= 4) & (B <= 256), c * B**s, 7.0)  # flat (slope 0) outside [4, 256]
    T[B == 2048] = INF  # a diverged point is ignored
    out = loglog_slope(B, T, 4, 256)
    assert out["slope"] == pytest.approx(s, abs=1e-12)
    assert out["stderr"] == pytest.approx(0.0, abs=1e-12)
    assert out["batch_sizes"] == [4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    # window bounds need not be batch sizes
    assert loglog_slope(B, T, 3.1, 300)["slope"] == pytest.approx(s, abs=1e-12)
    # a window reaching into the flat part no longer sees -0.8
    assert abs(loglog_slope(B, T, 4, 2048)["slope"] - s) > 0.1


def test_loglog_slope_stderr_and_degenerate_windows():
    B = np.array([1.0, 2.0, 4.0, 8.0])
    T = np.array([100.0, 60.0, 20.0, 13.0])
    out = loglog_slope(B, T, 1, 8)
    x, y = np.log(B), np.log(T)
    slope, icpt = np.polyfit(x, y, 1)
    resid = y - slope * x - icpt
    se = math.sqrt(resid @ resid / 2 / np.sum((x - x.mean()) ** 2))
    assert out["slope"] == pytest.approx(slope, rel=1e-12)
    assert out["stderr"] == pytest.approx(se, rel=1e-12)
    two = loglog_slope(B, T, 1, 2)
    assert two["slope"] == pytest.approx(math.log(0.6) / math.log(2)) and math.isnan(two["stderr"])
    assert math.isnan(loglog_slope(B, T, 3, 3.5)["slope"])
    assert math.isnan(loglog_slope(B, [100.0, INF, INF, 5.0], 1, 4)["slope"])


# --------------------------------------------------------------------------- fit_knee


@pytest.mark.parametrize("a,c", [(3000.0, 50.0), (2.0e5, 400.0), (800.0, 200.0)])
def test_fit_knee_recovers_a_planted_knee(a, c):
    B = 2.0 ** np.arange(0, 13)
    T = np.maximum(a / B, c)  # knee at a / c (not a batch size), slope -1, plateau c
    out = fit_knee(B, T)
    assert out["knee"] == pytest.approx(a / c, rel=0.04)
    assert out["plateau"] == pytest.approx(c, rel=0.04)
    assert out["slope"] == pytest.approx(-1.0, abs=0.05)


def test_fit_knee_with_noise_and_other_slope():
    rng = np.random.default_rng(0)
    B = 2.0 ** np.arange(0, 13)
    T = np.maximum(1e4 * B**-0.6, 300.0) * np.exp(0.02 * rng.standard_normal(B.size))
    out = fit_knee(B, T)
    knee = (1e4 / 300.0) ** (1 / 0.6)
    assert out["knee"] == pytest.approx(knee, rel=0.15)
    assert out["slope"] == pytest.approx(-0.6, abs=0.05)


def test_fit_knee_needs_three_finite_points():
    out = fit_knee([1, 2, 4, 8], [10.0, INF, INF, 1.0])
    assert all(math.isnan(v) for v in out.values())


# --------------------------------------------------------------------------- speedup


def test_speedup_pairs_seeds():
    rows = [
        ("sgd", 4, 0.1, 0.0, 0, 100),
        ("sgd", 4, 0.1, 0.0, 1, 400),
        ("sgd", 4, 0.1, 0.0, 2, 90),  # no hb partner: dropped
        ("hb", 4, 0.2, 0.9, 1, 100),
        ("hb", 4, 0.2, 0.9, 0, 50),
        ("sgd", 8, 0.2, 0.0, 0, 80),
        ("sgd", 8, 0.2, 0.0, 1, 80),
        ("hb", 8, 0.4, 0.9, 0, 10),
        ("hb", 8, 0.4, 0.9, 1, 40),
    ]
    sp = speedup(runs_frame(rows), "sgd", "hb").set_index("batch_size")
    # B = 4: ratios per seed 100/50 = 2 and 400/100 = 4 (unpaired would give 1 or 8)
    assert sp.loc[4, "ratio"] == pytest.approx(math.sqrt(8), rel=1e-12)
    assert (sp.loc[4, "ratio_min"], sp.loc[4, "ratio_max"]) == (2.0, 4.0)
    assert sp.loc[8, "ratio"] == pytest.approx(math.sqrt(8 * 2), rel=1e-12)
    assert (sp.loc[4, "method"], sp.loc[4, "base"]) == ("hb", "sgd")


# --------------------------------------------------------------------------- deterministic_iters


def test_deterministic_iters_gd_closed_form():
    # H = diag(1, 0.02), equal shares: rel(t) = ((1 - eta)^(2t) + (1 - 0.02 eta)^(2t)) / 2
    lam = np.array([0.02, 1.0])
    e0 = -1 / np.sqrt(lam)
    eta = np.array([1.0, 0.5, 1.5])
    got = deterministic_iters(
        lam, e0, "sgd", eta, 0.0 * eta, eps=1e-3, t_max=5000, censor_factor=10.0
    )
    want = [
        math.ceil(math.log(2e-3) / (2 * math.log(1 - 0.02 * e)))
        # the fast mode is below eps after one step for all three
        for e in eta
    ]
    assert list(got) == want == [154, 310, 103]


def test_deterministic_iters_censors_and_caps():
    lam = np.array([0.02, 1.0])
    e0 = -1 / np.sqrt(lam)
    got = deterministic_iters(
        lam, e0, "sgd", [1.0, 0.2, 2.5], [0, 0, 0], eps=1e-3, t_max=5000, censor_factor=2.0
    )
    assert got[0] == 154 and np.isinf(got[1]) and np.isinf(got[2])  # 0.2 needs 775 > 308
    got = deterministic_iters(lam, e0, "sgd", [0.2], [0.0], eps=1e-3, t_max=500)
    assert np.isinf(got[0])


@pytest.mark.parametrize("method", ["sgd", "hb", "nag"])
def test_deterministic_iters_agrees_with_run_grid_at_full_batch(method):
    p = gaussian_system(d=8, n=32, kappa=50.0, seed=2)
    L = p.eigvals[-1]
    eta = np.geomspace(0.05, 1.8, 6) / L
    if method == "sgd":
        eta, beta = eta, np.zeros_like(eta)
    else:
        e, b = np.meshgrid(eta, [0.0, 0.5, 0.8, 0.95], indexing="ij")
        eta, beta = e.ravel(), b.ravel()
    eps, t_max, cf = 1e-4, 3000, 3.0
    e0 = p.eigvecs.T @ (0.0 - p.x_star)
    want = deterministic_iters(p.eigvals, e0, method, eta, beta, eps, t_max, censor_factor=cf)
    stop = StopRule(eps=eps, t_max=t_max, check_every=1, censor_factor=cf)
    got = run_grid(p, method, p.n, eta, beta, seed=0, stop=stop, device="cpu")
    assert np.isfinite(want).sum() >= 2 and np.isinf(want).sum() >= 1  # a meaningful mix
    np.testing.assert_array_equal(got.iters_to_eps, want)
