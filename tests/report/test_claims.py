"""Claim logic on hand-made inputs: C4 (the rule against the grid-best) and T1 (the exact
curve inside the Monte Carlo band), pass and fail, and the exact-theory details of C1-C3."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from minibatch_momentum.report.markdown import to_markdown
from minibatch_momentum.report.records import FAIL, INCONCLUSIVE, PASS, verdict
from minibatch_momentum.report.scaling_claims import Tolerances
from minibatch_momentum.report.sweep_claims import build_claims, claim_c4, claim_t1

INF = math.inf
BS = [1, 4, 16, 64, 256, 1024]
META = {
    "n": 4096,
    "d": 32,
    "kappa": 1e3,
    "stable_rank": 4.0,
    "B_sgd": 4.0,
    "B_sat": 256.0,
    "kappa_bar": 4e3,
    "L": 1.0,
}


def table(method, T, **extra):
    n = len(T)
    df = pd.DataFrame(
        {
            "problem": "p",
            "method": method,
            "sampler": "without_replacement",
            "batch_size": BS[:n],
            "eta": 0.1,
            "beta": 0.9,
            "T_gmean": np.asarray(T, float),
            "T_min": np.asarray(T, float),
            "T_max": np.asarray(T, float),
        }
    )
    for k, v in extra.items():
        df[k] = v
    return df


def exact_table(method, T, rule_T):
    return pd.DataFrame(
        {
            "method": method,
            "batch_size": BS[: len(T)],
            "T_curve": np.asarray(T, float),
            "rule_T_curve": np.asarray(rule_T, float),
        }
    )


# --------------------------------------------------------------------------- C4


def test_c4_passes_within_the_factor_at_every_batch_size():
    tuned = table("hb", [1000, 300, 100, 40, 20, 20])
    rule = table("hb", [1200, 330, 140, 59, 25, 21])  # worst 1.475
    exact = exact_table("hb", [900, 280, 90, 35, 18, 18], [1000, 300, 110, 40, 20, 19])
    c = claim_c4(tuned, rule, META, "hb", Tolerances(), exact, {"noise_line": "trace"})
    (ch,) = c["checks"]
    assert ch["pass"] is True and verdict(c["checks"]) == PASS
    assert ch["measured"] == pytest.approx(1.475)
    assert ch["predicted"] == pytest.approx(110 / 90)
    assert ch["failing_batch_sizes"] == [] and ch["unjudged_batch_sizes"] == []
    assert ch["ratios"] == pytest.approx([1.2, 1.1, 1.4, 1.475, 1.25, 1.05])
    assert ch["rule_variant"] == {"noise_line": "trace"}
    assert c["figure"] == "rule_vs_grid"


def test_c4_fails_at_one_batch_size_and_names_it():
    tuned = table("nag", [1000, 300, 100, 40, 20, 20])
    rule = table("nag", [1100, 310, 160, 41, 21, 20])  # 1.6 at B = 16
    c = claim_c4(tuned, rule, META, "nag", Tolerances())
    (ch,) = c["checks"]
    assert ch["pass"] is False and verdict(c["checks"]) == FAIL
    assert ch["measured"] == pytest.approx(1.6) and ch["failing_batch_sizes"] == [16]
    assert math.isnan(ch["predicted"])  # no exact table given
    # the tolerance comes from the config: 1.7 passes the same numbers
    assert claim_c4(tuned, rule, META, "nag", Tolerances(rule_factor=1.7))["checks"][0]["pass"]


def test_c4_rule_that_never_converged_fails_with_infinite_ratio():
    tuned = table("hb", [1000, 300, 100])
    rule = table("hb", [1000, INF, 100])  # censored or diverged on some seed
    (ch,) = claim_c4(tuned, rule, META, "hb", Tolerances())["checks"]
    assert ch["pass"] is False and ch["measured"] == INF and ch["failing_batch_sizes"] == [4]


def test_c4_batch_sizes_where_the_grid_never_converged_are_not_judged():
    tuned = table("hb", [1000, INF, 100])
    rule = table("hb", [1100, 500, 120])
    (ch,) = claim_c4(tuned, rule, META, "hb", Tolerances())["checks"]
    assert ch["pass"] is True and ch["unjudged_batch_sizes"] == [4]
    assert ch["measured"] == pytest.approx(1.2)
    tuned = table("hb", [INF, INF, INF])
    (ch,) = claim_c4(tuned, rule, META, "hb", Tolerances())["checks"]
    assert ch["pass"] is None and verdict([ch]) == INCONCLUSIVE


# --------------------------------------------------------------------------- T1


def mc_frame(exact, mean, stderr, method="hb", z=2.576):
    exact, mean = np.asarray(exact, float), np.asarray(mean, float)
    stderr = np.broadcast_to(np.asarray(stderr, float), exact.shape)
    return pd.DataFrame(
        {
            "method": method,
            "batch_size": 64,
            "eta": 0.5,
            "beta": 0.95,
            "runs": 400,
            "confidence": 0.99,
            "step": np.arange(exact.size),
            "exact": exact,
            "gaussian": exact * 1.01,
            "noise_free": exact * 0.5,
            "mc_mean": mean,
            "mc_stderr": stderr,
            "lower": mean - z * stderr,
            "upper": mean + z * stderr,
        }
    )


def test_t1_passes_when_the_exact_curve_is_mostly_inside_the_band():
    t = np.arange(101)
    exact = 0.98**t
    mean = exact * (1 + 0.01 * np.sin(t))  # within +/- 1%
    stderr = 0.01 * exact  # band +/- 2.6%
    # step 0 is not judged (the curves all start at 1)
    (ch,) = claim_t1(mc_frame(exact, mean, stderr), "hb", Tolerances())["checks"]
    assert ch["pass"] is True and ch["measured"] == 1.0 and ch["predicted"] == 0.99
    assert ch["noise_free_curve_share_inside"] == 0.0
    assert ch["gaussian_rows_curve_share_inside"] == 1.0
    assert ch["max_abs_z"] <= 1.0 + 1e-12 and ch["runs"] == 400


def test_t1_fails_below_the_tolerated_share_and_at_the_boundary():
    t = np.arange(101)
    exact = 0.98**t
    mean = exact.copy()
    mean[1:31] *= 1.1  # 30 of the 100 judged steps 10% off, 10 standard errors
    stderr = 0.01 * exact
    (ch,) = claim_t1(mc_frame(exact, mean, stderr), "hb", Tolerances())["checks"]
    assert ch["measured"] == pytest.approx(0.7) and ch["pass"] is False
    assert ch["max_abs_z"] == pytest.approx(10.0) and 1 <= ch["at_step"] <= 30
    # exactly at the tolerated share passes; just below fails
    assert claim_t1(mc_frame(exact, mean, stderr), "hb", Tolerances(t1_min_inside=0.7))["checks"][
        0
    ]["pass"]
    assert not claim_t1(mc_frame(exact, mean, stderr), "hb", Tolerances(t1_min_inside=0.71))[
        "checks"
    ][0]["pass"]


def test_t1_without_data_is_inconclusive():
    df = mc_frame([1.0, 0.5], [1.0, 0.5], 0.01, method="nag")
    c = claim_t1(df, "hb", Tolerances())
    assert verdict(c["checks"]) == INCONCLUSIVE


# --------------------------------------------------------------------------- build_claims


def _grid(T_by_method, seeds=2):
    rows = []
    for method, T in T_by_method.items():
        for b, t in zip(BS, T, strict=True):
            for seed in range(seeds):
                rows.append(("p", method, "without_replacement", b, 0.1, 0.9, seed, t, True))
    cols = ["problem", "method", "sampler", "batch_size", "eta", "beta", "seed"]
    return pd.DataFrame(rows, columns=cols + ["iters_to_eps", "stable"])


def test_build_claims_adds_c4_t1_t2_and_the_exact_predictions():
    T = {"sgd": [4000, 1200, 800, 700, 700, 700], "hb": [4000, 1000, 260, 70, 25, 20]}
    tuned = pd.concat([table(m, t) for m, t in T.items()], ignore_index=True)
    rule = table("hb", [4400, 1100, 300, 80, 30, 22])
    exact = pd.concat(
        [
            exact_table("sgd", [3800, 1100, 760, 690, 680, 680], [np.nan] * 6),
            exact_table("hb", [3900, 980, 245, 61, 20, 18], [4000, 1000, 260, 70, 22, 19]),
        ],
        ignore_index=True,
    )
    grid_exact = exact.rename(columns={"T_curve": "T_curve"})[["method", "batch_size", "T_curve"]]
    t = np.arange(51)
    mc = mc_frame(0.9**t, 0.9**t, 0.01 * 0.9**t)
    summary = {
        "tuned": tuned,
        "grid": _grid(T),
        "rule": rule,
        "summary": {
            "problem": META,
            "deterministic_T": {"sgd": 680.0, "hb": 18.0},
            "rule": {"hb": {"noise_line": "trace", "form": "harmonic"}},
        },
    }
    claims = build_claims(
        summary, Tolerances(), source="s", exact_grid=grid_exact, exact=exact, montecarlo=mc
    )
    assert [(c["id"], c["method"]) for c in claims] == [
        ("C1", "hb"),
        ("C2", "hb"),
        ("C3", "hb"),
        ("C4", "hb"),
        ("T2", "hb"),
        ("T2", "sgd"),
        ("T1", "hb"),
    ]
    by_id = {(c["id"], c["method"]): c for c in claims}
    assert by_id[("C4", "hb")]["verdict"] == PASS and by_id[("T1", "hb")]["verdict"] == PASS
    assert by_id[("C4", "hb")]["figure"].endswith("rule_vs_grid.pdf")
    assert by_id[("T1", "hb")]["figure"].endswith("exact_vs_monte_carlo.pdf")
    # T2: the worst ratio of measured to exact, here at B = 256 (25 / 20)
    t2 = by_id[("T2", "hb")]["checks"][0]
    assert t2["measured"] == pytest.approx(25 / 20) and t2["worst_at"] == 256
    # C3's prediction: the exact curve's B_crit = min_B B T(B) / T_det = 3900 / 18
    c3 = by_id[("C3", "hb")]["checks"][0]
    assert c3["predicted"] == pytest.approx(3900 / 18 / META["B_sat"])
    assert c3["measured"] == pytest.approx(4000 / 18 / META["B_sat"])
    md = to_markdown(claims, META, rule_variants={"hb": {"noise_line": "trace"}})
    assert "| C4 | hb | **PASS** |" in md and "| T1 | hb | **PASS** |" in md
    assert "hb: trace noise line" in md and "Gaussian-rows" in md
    # without the theory, C1-C3 still build (predictions nan) and C4, T1, T2 are absent
    plain = build_claims({**summary, "rule": None}, Tolerances(), source="s")
    assert [c["id"] for c in plain] == ["C1", "C2", "C3"]
    assert math.isnan(plain[2]["checks"][0]["predicted"])


def _pair_claim(cid, method, problem, sampler, verdict):
    ok = {"PASS": True, "FAIL": False, "INCONCLUSIVE": None}[verdict]
    return {
        "id": cid,
        "method": method,
        "problem": problem,
        "sampler": sampler,
        "verdict": verdict,
        "checks": [{"check": "x", "measured": 1.0, "predicted": 1.0, "tolerance": "", "pass": ok}],
    }


def test_coverage_gathers_c1_to_c4_per_sampler_and_per_problem():
    from minibatch_momentum.report.markdown import coverage_markdown
    from minibatch_momentum.report.sweep_claims import coverage_claims

    claims = [
        _pair_claim("C1", "hb", "gauss", "without_replacement", "PASS"),
        _pair_claim("C2", "hb", "gauss", "without_replacement", "PASS"),
        _pair_claim("C1", "hb", "heavy", "without_replacement", "FAIL"),
        _pair_claim("C1", "hb", "heavy", "kaczmarz", "PASS"),
        _pair_claim("C2", "hb", "heavy", "kaczmarz", "INCONCLUSIVE"),
        _pair_claim("T1", "hb", "heavy", "kaczmarz", "FAIL"),  # not one of C1-C4
    ]
    cov = {(c["id"], c["sampler"], c["problem"], c["method"]): c for c in coverage_claims(claims)}
    assert cov[("C5", "without_replacement", "all", "hb")]["verdict"] == "FAIL"
    assert cov[("C5", "kaczmarz", "all", "hb")]["verdict"] == "INCONCLUSIVE"
    assert cov[("C6", "all", "gauss", "hb")]["verdict"] == "PASS"
    assert cov[("C6", "all", "heavy", "hb")]["verdict"] == "FAIL"
    assert len(cov[("C6", "all", "heavy", "hb")]["checks"]) == 3  # T1 left out
    md = coverage_markdown(list(cov.values()))
    assert "| C6 | heavy | hb | **FAIL** | 1 | 1 | 1 | C1 on heavy / without_replacement |" in md


def test_coverage_needs_two_pairs():
    from minibatch_momentum.report.sweep_claims import coverage_claims

    one = [_pair_claim(c, "hb", "gauss", "without_replacement", "PASS") for c in ("C1", "C2")]
    assert coverage_claims(one) == []
