"""Seed systems S3, S5 and S6 as library code: configs, the measurements on hand-made
data, and the claim logic on passing, failing and undecidable inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import assert_claim_shape
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.simulate.engine import StopRule
from minibatch_momentum.studies import baselines as bl
from minibatch_momentum.studies import small_lr as sl
from minibatch_momentum.studies import threshold as th

# --------------------------------------------------------------------------- S3


def synthetic_runs(ratio: float = 1.0, seeds=(0, 1), batch_sizes=(1, 2, 8, 64)) -> pd.DataFrame:
    """SGD with T(eta) = 100 / eta on a log grid; heavy ball with T = ratio * 100 / eta_eff
    at grid points whose effective step falls inside SGD's grid. At B = 64 SGD never
    converges (so nothing is comparable there)."""
    eta = np.geomspace(0.01, 1.0, 9)
    rows = []
    for B in batch_sizes:
        for s in seeds:
            for e in eta:
                T = 100 / e if B < 64 else math.inf
                rows.append(("sgd", B, s, e, 0.0, "grid", T))
            for e in eta[:5]:
                for beta in (0.5, 0.75, 0.9):
                    eff = e / (1 - beta)
                    rows.append(("hb", B, s, e, beta, "grid", ratio * 100 / eff))
            rows.append(("hb", B, s, 0.123, 0.5, "rule", 1.0))  # never compared
    return pd.DataFrame(
        rows, columns=["method", "batch_size", "seed", "eta", "beta", "source", "iters_to_eps"]
    )


META = {"B_sgd": 8.0, "B_sat": 100.0}


def test_small_lr_interpolates_sgd_at_the_effective_step():
    df = sl.compare_effective_step(synthetic_runs(1.0))
    hb = df[(df["method"] == "hb") & df["comparable"]]
    assert len(hb) > 0
    # log T is linear in log eta for the synthetic SGD, so interpolation is exact
    np.testing.assert_allclose(hb["T_sgd_at_eta_eff"], 100 / hb["eta_eff"], rtol=1e-10)
    np.testing.assert_allclose(hb["ratio"], 1.0, rtol=1e-10)
    # effective steps beyond SGD's grid (or where SGD did not converge) are not comparable
    out = df[(df["method"] == "hb") & ~df["comparable"]]
    assert ((out["eta_eff"] > 1.0) | (out["batch_size"] == 64)).all()
    assert 0.123 not in set(df["eta"])  # the rule's rows are not grid points


def test_interpolation_needs_both_neighbours_converged():
    log_eta = np.log([0.1, 0.2, 0.4])
    log_T = np.array([np.log(100.0), np.inf, np.log(25.0)])
    x = np.log([0.15, 0.3, 0.1, 0.4, 0.05, 0.5])
    got = sl._interpolate(log_eta, log_T, x)
    assert np.isnan(got[0]) and np.isnan(got[1])  # a neighbour without a count
    assert got[2] == pytest.approx(np.log(100.0)) and got[3] == pytest.approx(np.log(25.0))
    assert np.isnan(got[4]) and np.isnan(got[5])  # no extrapolation


@pytest.mark.parametrize(
    "ratio, verdict", [(1.0, "PASS"), (1.2, "PASS"), (1.3, "FAIL"), (0.7, "FAIL")]
)
def test_claim_s3_verdicts(ratio, verdict):
    cfg = sl.SmallLRConfig()
    df = sl.compare_effective_step(synthetic_runs(ratio))
    a = sl.analyze_small_lr(df, META, cfg)
    small = [p for p in a["per_batch"] if p["small"]]
    assert [p["batch_size"] for p in small] == [1, 2]  # B <= 0.5 * 8
    (c,) = sl.claim_s3(a, "p", "without_replacement")
    assert_claim_shape(c)
    assert c["id"] == "S3" and c["method"] == "hb" and c["verdict"] == verdict
    assert c["checks"][0]["measured"] == pytest.approx(max(ratio, 1 / ratio))
    assert c["checks"][0]["larger_batch_sizes"] == [8, 64]
    assert c["checks"][0]["larger_batch_pairs"][-1] == 0


def test_claim_s3_inconclusive_without_enough_pairs():
    cfg = sl.SmallLRConfig(min_pairs=1000)
    a = sl.analyze_small_lr(sl.compare_effective_step(synthetic_runs()), META, cfg)
    (c,) = sl.claim_s3(a, "p", "s")
    assert c["verdict"] == "INCONCLUSIVE" and "inconclusive_because" in c["checks"][0]


def test_small_lr_config_validation():
    assert sl.SmallLRConfig.preset("quick") == sl.SmallLRConfig()
    for bad, field in [
        ({"methods": ["sgd"]}, "methods"),
        ({"tolerance": 1.0}, "tolerance"),
        ({"max_batch_factor": 0}, "max_batch_factor"),
        ({"min_pairs": 0}, "min_pairs"),
        ({"colour": 1}, "unknown"),
    ]:
        with pytest.raises(ValueError, match=field):
            sl.SmallLRConfig.from_dict(bad)


# --------------------------------------------------------------------------- S5

TINY_T = th.ThresholdConfig(kappa_min=30.0, kappa_max=300.0, num_kappa=3, stable_rank=4.0)


@pytest.fixture(scope="module")
def tiny_threshold():
    return th.run_threshold(TINY_T)


def test_threshold_spectra_hold_the_stable_rank():
    for k in TINY_T.kappas:
        lam = th.threshold_spectrum(k, TINY_T)
        assert lam.max() == pytest.approx(1.0) and lam.min() == pytest.approx(1 / k)
        assert abs(lam.sum() - 4.0) < 0.5
    fixed = th.ThresholdConfig(family="fixed_d", d=20)
    assert th.threshold_spectrum(100.0, fixed).size == 20


def test_threshold_is_where_the_exact_speedup_reaches_the_factor(tiny_threshold):
    df = tiny_threshold
    assert list(df["kappa"]) == pytest.approx(list(TINY_T.kappas))
    for _, r in df.iterrows():
        lam = th.threshold_spectrum(r["kappa"], TINY_T)
        s, h = th.speedup_ratio(lam, r["b_speedup"])
        assert math.log(h) / math.log(s) == pytest.approx(2.0, rel=1e-4)
        # just below it the speedup is smaller: the smallest such B
        s, h = th.speedup_ratio(lam, r["b_speedup"] * 0.95)
        assert math.log(h) / math.log(s) < 2.0
        assert r["T_sgd_at_b_speedup"] / r["T_hb_at_b_speedup"] == pytest.approx(2.0, rel=1e-4)
        assert r["b_accel"] > r["b_speedup"]
        assert len(r["curve_B"]) == len(r["curve_T_sgd"]) == len(r["curve_T_hb"])


def test_threshold_analysis_and_claim(tiny_threshold):
    a = th.analyze_threshold(tiny_threshold, TINY_T)
    assert a["accel_slope"]["slope"] > 0.2
    c = th.claim_s5(a)
    assert_claim_shape(c)
    assert c["id"] == "S5" and [ch["pass"] for ch in c["checks"]][:2] == [True, True]


def _analysis(b_speedup, b_accel):
    k = [1e2, 1e3, 1e4]
    return {
        "kappa": k,
        "d": [10, 20, 30],
        "stable_rank": [4.0] * 3,
        "B_sgd": [4.0] * 3,
        "B_sat": [4 * math.sqrt(x) for x in k],
        "b_speedup": b_speedup,
        "b_accel": b_accel,
        "b_speedup_over_B_sgd": [b / 4 for b in b_speedup],
        "b_accel_over_B_sat": [1.0] * 3,
        "speedup_slope": th._slope(k, b_speedup),
        "accel_slope": th._slope(k, b_accel),
        "config": TINY_T.to_dict(),
    }


@pytest.mark.parametrize(
    "b_speedup, b_accel, verdict, failing",
    [
        ([8.0, 8.0, 8.0], [40.0, 130.0, 400.0], "PASS", []),
        ([8.0, 8.0, 8.0], [400.0, 130.0, 40.0], "FAIL", [1]),  # shrinks with kappa
        ([8.0, 16.0, 32.0], [40.0, 130.0, 400.0], "FAIL", [2]),  # the 2x threshold grows
        ([8.0, math.nan, 8.0], [40.0, 130.0, 400.0], "FAIL", [0]),  # never 2x at one kappa
    ],
)
def test_claim_s5_logic(b_speedup, b_accel, verdict, failing):
    c = th.claim_s5(_analysis(b_speedup, b_accel))
    assert c["verdict"] == verdict
    assert [i for i, ch in enumerate(c["checks"]) if ch["pass"] is False] == failing


def test_threshold_config_validation():
    assert th.ThresholdConfig.preset("quick") == th.ThresholdConfig()
    assert th.ThresholdConfig.preset("paper").kappa_max == 1e6
    for bad, field in [
        ({"kappa_min": 1.0}, "kappa_min"),
        ({"kappa_max": 10.0, "kappa_min": 100.0}, "kappa_max"),
        ({"num_kappa": 2}, "num_kappa"),
        ({"family": "power"}, "family"),
        ({"speedup": 1.0}, "speedup"),
        ({"bogus": 1}, "unknown"),
    ]:
        with pytest.raises(ValueError, match=field):
            th.ThresholdConfig.from_dict(bad)


# --------------------------------------------------------------------------- S6

TINY_GRIDS = {
    "sngm": {"batch_sizes": [4], "eta_min": 1e-3, "eta_max": 0.1, "num_eta": 3, "num_beta": 2},
    "asgd": {"batch_sizes": [1, 4], "num_eta": 3, "num_kappa": 2, "xi": [1.0, 10.0]},
    "mass": {"batch_sizes": [1, 4], "num_eta": 3, "num_beta": 2, "eta2_ratio": [0.0, 0.5]},
}


def test_grid_points_map_the_parameters():
    cfg = bl.BaselinesConfig.from_dict({**TINY_GRIDS, "seeds": 2})
    p = bl.grid_points(cfg.mass, L=2.0, distance=3.0)
    assert p["eta"].size == 3 * 2 * 2 and np.all(np.isnan(p["kappa"]))
    np.testing.assert_allclose(np.unique(p["eta2"] / p["eta"]), [0.0, 0.5])
    assert p["eta"].max() == pytest.approx(4.0 / 2.0)  # eta_max in units of 1/L
    s = bl.grid_points(cfg.sngm, L=2.0, distance=3.0)
    assert s["eta"].max() == pytest.approx(0.1 * 3.0)  # a length, in units of |x0 - x*|
    a = bl.grid_points(cfg.asgd, L=2.0, distance=3.0)
    assert np.all(a["beta"] == 0) and np.all(0.49 * a["xi"] <= a["kappa"])


def test_baseline_shard_runs_every_grid_point_and_seed():
    p = gaussian_system(d=5, n=40, kappa=20.0, seed=1)
    cfg = bl.BaselinesConfig.from_dict({**TINY_GRIDS, "seeds": 2})
    stop = StopRule(eps=1e-3, t_max=3000, check_every=10)
    for method in bl.BASELINE_METHODS:
        df = bl.run_baseline_shard(p, "tiny", method, 4, cfg, stop, device="cpu")
        n = bl.grid_points(cfg.grid(method), 1.0, 1.0)["eta"].size
        assert len(df) == 2 * n and set(df["seed"]) == {0, 1}
        assert set(df["config"]) == set(range(n))
        assert np.isfinite(df["iters_to_eps"]).any(), method


def synthetic_table(T: dict) -> pd.DataFrame:
    rows = [
        {"method": m, "batch_size": B, "T_gmean": t, "T_min": t, "T_max": t, "on_grid_edge": False}
        for (m, B), t in T.items()
    ]
    return pd.DataFrame(rows)


def test_tune_baselines_picks_the_best_geometric_mean_and_flags_edges():
    runs = pd.DataFrame(
        {
            "problem": "p",
            "method": "mass",
            "sampler": "s",
            "batch_size": 4,
            "seed": [0, 1] * 3,
            "config": [0, 0, 1, 1, 2, 2],
            "eta": [0.1, 0.1, 0.2, 0.2, 0.4, 0.4],
            "beta": [0.5] * 6,
            "kappa": np.nan,
            "xi": np.nan,
            "eta2": [0.0, 0.0, 0.1, 0.1, 0.36, 0.36],  # eta2 / eta = 0, 0.5, 0.9
            "iters_to_eps": [100.0, 400.0, 150.0, 170.0, np.inf, 50.0],
        }
    )
    t = bl.tune_baselines(runs).iloc[0]
    assert t["eta"] == 0.2 and t["T_gmean"] == pytest.approx(math.sqrt(150 * 170))
    assert not t["on_grid_edge"]
    assert t["converged_share"] == pytest.approx(5 / 6)
    runs.loc[runs["config"] == 0, "iters_to_eps"] = 10.0
    t = bl.tune_baselines(runs).iloc[0]
    assert t["eta"] == 0.1 and t["on_grid_edge"]


CLASSIC = {("sgd", 1): 1000.0, ("hb", 1): 900.0, ("nag", 1): 800.0}
CLASSIC |= {("sgd", 1024): 500.0, ("hb", 1024): 40.0, ("nag", 1024): 30.0}


@pytest.mark.parametrize(
    "base, verdict, failing",
    [
        (
            {("asgd", 1): 200.0, ("mass", 1): 300.0, ("sngm", 1024): 90.0, ("asgd", 1024): 28.0},
            "PASS",
            [],
        ),
        ({("asgd", 1): 900.0, ("mass", 1): 850.0, ("sngm", 1024): 90.0}, "FAIL", [0]),
        ({("asgd", 1): 200.0, ("asgd", 1024): 10.0}, "FAIL", [1]),
    ],
)
def test_claim_s6_logic(base, verdict, failing):
    table = synthetic_table({**CLASSIC, **base})
    cfg = bl.BaselinesConfig()
    a = bl.analyze_baselines(table, {"B_sgd": 8.0, "B_sat": 500.0}, cfg)
    c = bl.claim_s6(a, "p", "s")
    assert_claim_shape(c)
    assert c["id"] == "S6" and c["verdict"] == verdict
    assert [i for i, ch in enumerate(c["checks"]) if ch["pass"] is False] == failing


def test_claim_s6_inconclusive_without_a_large_batch():
    table = synthetic_table({**CLASSIC, ("asgd", 1): 200.0})
    a = bl.analyze_baselines(table, {"B_sgd": 8.0, "B_sat": 5000.0}, bl.BaselinesConfig())
    c = bl.claim_s6(a, "p", "s")
    assert c["verdict"] == "INCONCLUSIVE"
    assert c["checks"][1]["pass"] is None and "inconclusive_because" in c["checks"][1]


def test_baselines_config_validation_and_round_trip():
    cfg = bl.BaselinesConfig.preset("quick")
    assert bl.BaselinesConfig.from_dict(cfg.to_dict()) == cfg
    assert bl.BaselinesConfig.preset("paper").seeds == 10
    for bad, field in [
        ({"sngm": {"num_eta": 3}}, "batch_sizes"),
        ({"asgd": {"batch_sizes": [0]}}, "batch_sizes"),
        ({"mass": {"batch_sizes": [1], "eta_min": -1}}, "eta_min"),
        ({"asgd": {"batch_sizes": [1], "small_const": 2}}, "small_const"),
        ({"asgd": {"batch_sizes": [1], "gamma": 2}}, "unknown"),
        ({"seeds": 0}, "seeds"),
        ({"adam": {}}, "unknown"),
    ]:
        with pytest.raises(ValueError, match=field):
            bl.BaselinesConfig.from_dict(bad)
