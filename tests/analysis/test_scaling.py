"""Batch-scaling quantities (critical batch, efficiency, speedups, bootstrap) on curves with
a known answer, and the claims they feed: C1-C3 and C7 must PASS on the exact theory's
own curves (the definitions agree with the model they come from) and FAIL on a curve
whose SGD still scales."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from minibatch_momentum.analysis import scaling
from minibatch_momentum.problems.system import spectrum
from minibatch_momentum.report.curves import measured_curves
from minibatch_momentum.report.records import FAIL, PASS, verdict
from minibatch_momentum.report.scaling_claims import (
    PairData,
    Tolerances,
    claim_c1,
    claim_c2,
    claim_c3,
    claim_t2,
)
from minibatch_momentum.report.sweep_claims import claim_c7
from minibatch_momentum.theory.common import (
    deterministic_optimum,
    iterations_from_rate,
    stable_region,
)
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.tuning import batch_scaling

B = 2.0 ** np.arange(0, 14)


def hyperbolic(T_det, B_noise, Bs=B):
    """McCandlish's model T(B) = T_det (1 + B_noise / B)."""
    return T_det * (1 + B_noise / np.asarray(Bs, float))


def test_critical_batch_of_a_hyperbolic_curve_is_its_noise_scale():
    T = hyperbolic(100.0, 64.0)
    # E = min_B B T(B) = T_det (B + B_noise) at the smallest B = 1
    assert scaling.samples_to_eps(B, T) == pytest.approx(100.0 * 65.0)
    assert scaling.critical_batch(B, T, 100.0) == pytest.approx(65.0)
    eff = scaling.efficiency(B, T)
    assert eff[0] == 1.0
    # exactly 1/2 where B = B_noise + 2 B_ref ... in the model eff(B) = (1 + Bn)/(B + Bn)
    assert eff == pytest.approx((1 + 64.0) / (B + 64.0))
    assert eff[B == 64][0] == pytest.approx(65 / 128)


def test_acceleration_is_one_where_the_speedup_grows_as_b():
    B_sgd = 8.0
    T_sgd = hyperbolic(1000.0, B_sgd)
    T_hb = hyperbolic(1000.0 / 32, 32 * B_sgd)  # same E, critical batch 32x larger
    ratio = T_sgd / T_hb
    b_crit = scaling.critical_batch(B, T_sgd, 1000.0)
    A = scaling.acceleration(B, ratio[None, :], np.array([b_crit]))[0]
    # between B*_SGD and B_sat the speedup is ~ B / B*_SGD, so A ~ 1
    window = (B >= 4 * B_sgd) & (B <= 32 * B_sgd / 4)
    assert np.all((A[window] > 0.5) & (A[window] < 2.0))


def test_tuning_never_chooses_a_point_outside_the_stability_region():
    # two grid points, three seeds: the unstable one is faster on every seed
    log_T = np.log(np.array([[100.0, 110.0, 90.0], [50.0, 55.0, 45.0]]))
    w = scaling.seed_weights(3, n_boot=50)
    free = scaling.tuned_log_counts(log_T, np.array([True, True]), w)
    kept = scaling.tuned_log_counts(log_T, np.array([True, False]), w)
    assert np.exp(free[0]) == pytest.approx((50 * 55 * 45) ** (1 / 3))
    assert np.exp(kept[0]) == pytest.approx((100 * 110 * 90) ** (1 / 3))
    assert np.all(kept >= np.log(90) - 1e-12)


def test_stable_region_boundaries():
    assert stable_region("sgd", [1.99, 2.0, 2.004], 0.0).tolist() == [True, False, False]
    assert stable_region("hb", [3.9, 4.0], 0.99).tolist() == [True, False]
    beta = 0.5  # Nesterov: eta L < 2 (1 + beta) / (1 + 2 beta) = 1.5
    assert stable_region("nag", [1.49, 1.51], beta).tolist() == [True, False]


def test_an_unconverged_seed_makes_the_point_infinite_only_when_drawn():
    log_T = np.array([[np.log(10.0), np.inf]])
    w = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    out = scaling.tuned_log_counts(log_T, np.array([True]), w)
    assert np.isinf(out[0]) and out[1] == pytest.approx(np.log(10.0)) and np.isinf(out[2])


def _grid_table(T_by_method: dict, seeds=3, spread=0.05, stable_fast=None):
    """A summary's grid table: per method and B, one good point (T times seed noise) and a
    slow one; ``stable_fast`` adds an unstable point that would win if allowed."""
    rng = np.random.default_rng(0)
    rows = []
    for method, T in T_by_method.items():
        for b, t in zip(B, T, strict=True):
            for seed in range(seeds):
                noise = float(np.exp(spread * rng.standard_normal()))
                rows.append((method, b, 0.1, 0.5, seed, t * noise, True))
                rows.append((method, b, 0.01, 0.5, seed, 10 * t, True))
                if stable_fast:
                    rows.append((method, b, 9.0, 0.5, seed, t / stable_fast, False))
    cols = ["method", "batch_size", "eta", "beta", "seed", "iters_to_eps", "stable"]
    return pd.DataFrame(rows, columns=cols)


def test_bootstrap_intervals_are_identical_across_runs_and_contain_the_point():
    grid = _grid_table({"sgd": hyperbolic(1000, 8), "hb": hyperbolic(30, 300)})
    det = {"sgd": 1000.0, "hb": 30.0}
    a = measured_curves(grid, det).quantities("hb")
    b = measured_curves(grid, det).quantities("hb")
    np.testing.assert_array_equal(a["B_crit"], b["B_crit"])
    lo, hi = scaling.interval(a["B_crit"])
    assert lo <= a["B_crit"][0] <= hi and lo < hi


def test_an_unstable_winner_is_not_chosen_by_the_claims_either():
    det = {"sgd": 1000.0, "hb": 30.0}
    clean = measured_curves(_grid_table({"sgd": hyperbolic(1000, 8)}), det)
    trap = measured_curves(_grid_table({"sgd": hyperbolic(1000, 8)}, stable_fast=3.0), det)
    np.testing.assert_allclose(clean.T["sgd"][0], trap.T["sgd"][0])


META = {"B_sgd": 8.0, "B_sat": 256.0, "kappa": 1024.0}


def _pair(T_sgd, T_hb, det, exact=None, meta=META):
    curves = scaling.Curves(
        {"sgd": B, "hb": B}, {"sgd": T_sgd[None, :], "hb": T_hb[None, :]}, det
    )
    return PairData(curves, exact or curves, meta)


def test_model_curves_pass_c1_to_c3_and_a_still_scaling_sgd_fails_c1():
    det = {"sgd": 1000.0, "hb": 1000.0 / 32}
    T_sgd, T_hb = hyperbolic(1000, 8), hyperbolic(1000 / 32, 256)
    pair = _pair(T_sgd, T_hb, det)
    tol = Tolerances()
    for claim in (claim_c1, claim_c2, claim_c3):
        assert verdict(claim(pair, "hb", tol)["checks"]) == PASS, claim(pair, "hb", tol)
    # SGD still at efficiency ~0.9 at 4 B*_SGD: its critical batch is 8x larger
    slow = _pair(hyperbolic(1000, 300), T_hb, det)
    c1 = claim_c1(slow, "hb", tol)
    assert c1["checks"][1]["measured"] > 0.85 and verdict(c1["checks"]) == FAIL


def test_a_short_batch_grid_leaves_the_plateau_check_inconclusive():
    det = {"sgd": 1000.0, "hb": 1000.0 / 32}
    short = B[B <= 512]
    curves = scaling.Curves(
        {"sgd": short, "hb": short},
        {"sgd": hyperbolic(1000, 8, short)[None], "hb": hyperbolic(1000 / 32, 256, short)[None]},
        det,
    )
    c3 = claim_c3(PairData(curves, curves, META), "hb", Tolerances())
    assert c3["checks"][1]["pass"] is None and "undecided" in c3["checks"][1]


def test_t2_and_marginal_marking():
    det = {"sgd": 1000.0, "hb": 1000.0 / 32}
    T_sgd, T_hb = hyperbolic(1000, 8), hyperbolic(1000 / 32, 256)
    exact = scaling.Curves({"sgd": B, "hb": B}, {"sgd": T_sgd[None], "hb": T_hb[None]}, det)
    # measured: replicates straddling the 1.5x band at one batch size
    reps = np.tile(T_hb, (5, 1))
    reps[:, 3] *= np.array([1.45, 1.2, 1.6, 1.7, 1.3])
    measured = scaling.Curves({"sgd": B, "hb": B}, {"sgd": np.tile(T_sgd, (5, 1)), "hb": reps}, det)
    ch = claim_t2(PairData(measured, exact, META), "hb", Tolerances())["checks"][0]
    assert ch["pass"] is True and ch["marginal"] is True
    assert ch["measured"] == pytest.approx(1.45)


# ------------------------------------------------------------ the exact theory's own curves


def _exact_pair(kappa: float):
    lam = spectrum(64, kappa)
    L, mu, tr = lam.max(), lam.min(), lam.sum()
    Bs = 2.0 ** np.arange(0, int(np.ceil(np.log2(8 * tr / np.sqrt(L * mu)))) + 1)
    T, det = {}, {}
    for m in ("sgd", "hb"):
        T[m] = batch_scaling(Gaussian(lam), m, Bs, eps=1e-4).iterations[None, :]
        det[m] = float(iterations_from_rate(deterministic_optimum(m, L, mu)[2], 1e-4))
    meta = {"B_sgd": tr / L, "B_sat": tr / np.sqrt(L * mu), "kappa": kappa}
    curves = scaling.Curves({"sgd": Bs, "hb": Bs}, T, det)
    return PairData(curves, curves, meta)


@pytest.mark.slow
@pytest.mark.parametrize("kappa", [4096.0, 1e5])
def test_heavy_ball_claims_pass_on_the_exact_theory(kappa):
    pair = _exact_pair(kappa)
    tol = Tolerances()
    for claim in (claim_c1, claim_c2, claim_c3):
        c = claim(pair, "hb", tol)
        assert verdict(c["checks"]) == PASS, c["checks"]


@pytest.mark.slow
def test_c7_passes_on_the_exact_kappa_scan():
    from minibatch_momentum.theory.exact import kappa_scan

    scan = kappa_scan([1e2, 1e3, 1e4, 1e5, 1e6], 64)
    c7 = claim_c7(scan, None, Tolerances())
    assert verdict(c7["checks"]) == PASS, c7["checks"]
    assert c7["checks"][0]["measured"] == pytest.approx(0.5, abs=0.1)
