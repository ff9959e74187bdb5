"""The exact-theory tables beside the sweeps (exact.py): each column against the theory
function it comes from, the batched curve counts against one-at-a-time counts, and the
T1 table against the engine."""

from __future__ import annotations

import numpy as np
import pytest

from minibatch_momentum import exact, theory
from minibatch_momentum.problems import gaussian_system, spectrum
from minibatch_momentum.rule import rule_for_spectrum


@pytest.fixture(scope="module")
def problem():
    return gaussian_system(d=8, n=400, kappa=50.0, seed=2)


@pytest.mark.parametrize("replace", [True, False])
def test_gaussian_iterations_many_equals_one_at_a_time(replace):
    lam = spectrum(12, 200.0)
    w = 1.0 / lam
    cases = [("hb", 1, 0.02, 0.9), ("hb", 16, 0.3, 0.8), ("hb", 4, 3.0, 0.1)]  # last diverges
    many = theory.gaussian_iterations_many(
        lam,
        w,
        "hb",
        [c[1] for c in cases],
        [c[2] for c in cases],
        [c[3] for c in cases],
        1e-4,
        n=500,
        replace=replace,
        t_max=20000,
    )
    one = [
        theory.gaussian_iterations(lam, w, m, B, e, b, 1e-4, n=500, replace=replace, t_max=20000)
        for m, B, e, b in cases
    ]
    np.testing.assert_array_equal(many, one)
    assert np.isinf(many[-1]) and np.all(np.isfinite(many[:-1]))
    # "dist" and a scalar batch size broadcast against arrays of parameters
    d = theory.gaussian_iterations_many(
        lam, w, "nag", 8, [0.1, 0.2], [0.8, 0.7], 1e-3, measure="dist"
    )
    assert list(d) == [
        theory.gaussian_iterations(lam, w, "nag", 8, e, b, 1e-3, measure="dist")
        for e, b in [(0.1, 0.8), (0.2, 0.7)]
    ]


def test_batch_scaling_table_columns_come_from_the_theory(problem):
    lam, n = problem.eigvals, problem.n
    w = exact.initial_weights(problem)
    np.testing.assert_allclose(w, (problem.eigvecs.T @ problem.x_star) ** 2)
    Bs = [1, 4, 32]
    rule = {"hb": {"noise_line": "trace", "form": "harmonic"}}
    df = exact.batch_scaling_table(lam, w, ["sgd", "hb"], Bs, 1e-3, n=n, replace=False, rule=rule)
    assert list(df["method"]) == ["sgd"] * 3 + ["hb"] * 3
    hb = df[df["method"] == "hb"].reset_index(drop=True)
    ref = theory.batch_scaling(lam, "hb", Bs, eps=1e-3, n=n, replace=False)
    np.testing.assert_allclose(hb["rho"], ref.rho, rtol=1e-12)
    np.testing.assert_allclose(hb["T_rate"], ref.iterations, rtol=1e-12)
    for i, B in enumerate(Bs):
        assert hb["T_curve"][i] == theory.gaussian_iterations(
            lam, w, "hb", B, hb["eta"][i], hb["beta"][i], 1e-3, n=n, replace=False
        )
        e, b = rule_for_spectrum("hb", B, lam, n=n, replace=False)
        assert (hb["rule_eta"][i], hb["rule_beta"][i]) == (e, b)
        assert hb["rule_rho"][i] == theory.gaussian_rate(lam, "hb", B, e, b, n=n, replace=False)
    # the rate-optimal point's asymptotic count is never beaten by the rule's
    assert np.all(hb["rule_T_rate"] >= hb["T_rate"] * (1 - 1e-9))
    assert df.loc[df["method"] == "sgd", "rule_eta"].isna().all()  # no rule asked for sgd


def test_knees_and_heatmap_batches(problem):
    k = exact.knees(problem.eigvals, ["sgd", "hb"], n=problem.n, replace=False)
    assert k["sgd"] == theory.knee_batch(problem.eigvals, "sgd", n=problem.n, replace=False)
    assert set(k) == {"sgd", "hb"}
    Bs = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    assert exact.heatmap_batches(Bs, 8.08, 517.0) == [8, 128, 2048]
    assert exact.heatmap_batches(Bs, 8.08, 517.0, targets=[3, 3.1]) == [4]
    assert exact.heatmap_batches([1, 2], 50.0, 500.0) == [2]


def test_rate_map_table(problem):
    df = exact.rate_map_table(
        problem.eigvals,
        "hb",
        [2, 16],
        eta_min=0.01,
        eta_max=3.0,
        num_eta=4,
        one_minus_beta_min=0.01,
        one_minus_beta_max=1.0,
        num_beta=3,
        n=problem.n,
        replace=False,
    )
    assert len(df) == 2 * 4 * 3 and set(df["batch_size"]) == {2, 16}
    L = problem.eigvals[-1]
    np.testing.assert_allclose(np.unique(df["eta"] * L), np.geomspace(0.01, 3.0, 4))
    assert df["beta"].min() == 0.0  # 1 - beta up to 1: heavy ball at beta = 0 is SGD
    row = df.iloc[5]
    assert row["rho"] == theory.gaussian_rate(
        problem.eigvals,
        "hb",
        row["batch_size"],
        row["eta"],
        row["beta"],
        n=problem.n,
        replace=False,
    )
    assert (df["rho"] >= 1).any() and (df["rho"] < 1).any()


def test_exact_vs_monte_carlo_table(problem):
    B, runs, steps = 4, 300, 60
    eta, beta = rule_for_spectrum("hb", B, problem.eigvals, n=problem.n, replace=False)
    df = exact.exact_vs_monte_carlo(
        problem, "hb", B, eta, beta, runs=runs, steps=steps, seed=3, confidence=0.99
    )
    assert list(df["step"]) == list(range(steps + 1)) and (df["runs"] == runs).all()
    ref = theory.dense_curve(problem.A, problem.x_star, "hb", B, eta, beta, steps, replace=False)
    np.testing.assert_allclose(df["exact"], ref.loss / ref.loss[0], rtol=1e-12)
    assert df["exact"][0] == df["mc_mean"][0] == 1.0
    z = 2.5758293035489004
    np.testing.assert_allclose(df["upper"] - df["mc_mean"], z * df["mc_stderr"], rtol=1e-12)
    # the exact curve lies in the band; the noise-free control (with this much noise) does not
    inside = (df["exact"] >= df["lower"]) & (df["exact"] <= df["upper"])
    assert inside[1:].mean() >= 0.9
    outside = (df["noise_free"] < df["lower"]) | (df["noise_free"] > df["upper"])
    assert outside[1:].mean() > 0.5
    assert np.max(np.abs(df["gaussian"] / df["exact"] - 1)) < 0.2
