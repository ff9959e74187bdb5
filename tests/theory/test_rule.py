"""The momentum rule and its spectrum-free variant, judged by the exact theory."""

from __future__ import annotations

import numpy as np
import pytest

from minibatch_momentum.problems.system import spectrum
from minibatch_momentum.theory import rule
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.tuning import optimal_parameters


def summary(lam):
    return lam.max(), lam.min(), lam.sum()


@pytest.mark.parametrize("method", ["sgd", "hb", "nag"])
@pytest.mark.parametrize("form", ["harmonic", "min"])
def test_rule_returns_sane_values(method, form):
    lam = spectrum(100, 1e4)
    L, mu, tr = summary(lam)
    Bs = 2.0 ** np.arange(21)
    eta, beta = np.array([rule.momentum_rule(method, B, L, mu, tr, form=form) for B in Bs]).T
    assert np.all(np.isfinite(eta) & (eta > 0))
    assert np.all((beta >= 0) & (beta < 1)) and np.all(beta == beta[0])
    assert (beta[0] == 0) == (method == "sgd")
    assert np.all(np.diff(eta) >= 0)  # more batch, never a smaller step
    # Saturation: the step stops at the ceiling, a fixed fraction of the deterministic one.
    ceiling = (
        rule.RULE_CONSTANTS[(method, "trace")].ceil
        * rule._deterministic_effective_step(method, L, mu)
        * (1 - beta[0])
    )
    assert np.all(eta <= ceiling * (1 + 1e-12)) and eta[-1] > 0.97 * ceiling
    # No noise at B = n without replacement: straight to the ceiling.
    full = rule.momentum_rule(method, 500, L, mu, tr, n=500, replace=False, form=form)
    assert full[0] == pytest.approx(ceiling) and full[1] == beta[0]


@pytest.mark.parametrize("method", ["hb", "nag"])
def test_eta_grows_in_proportion_to_B_below_saturation(method):
    lam = spectrum(100, 1e6)
    L, mu, tr = summary(lam)
    B_sat = rule.saturation_batch(method, L, mu, tr)
    assert 0.2 * tr / np.sqrt(L * mu) < B_sat < 2 * tr / np.sqrt(L * mu)
    Bs = np.array([1.0, 2, 4, 8, 16])
    assert Bs[-1] < B_sat / 100
    eta = np.array([rule.momentum_rule(method, B, L, mu, tr)[0] for B in Bs])
    np.testing.assert_allclose(eta / Bs, eta[0] / Bs[0], rtol=0.02)
    # The literal min form: exactly linear below B_sat, flat above.
    low = np.array([rule.momentum_rule(method, B, L, mu, tr, form="min")[0] for B in Bs])
    np.testing.assert_allclose(low / Bs, low[0] / Bs[0], rtol=1e-12)
    high = [rule.momentum_rule(method, f * B_sat, L, mu, tr, form="min")[0] for f in (1.01, 4)]
    assert high[0] == pytest.approx(high[1], rel=1e-12)
    # The harmonic blend is at half its ceiling exactly at B_sat.
    eta_sat = rule.momentum_rule(method, B_sat, L, mu, tr)[0]
    eta_inf = rule.momentum_rule(method, 1e12 * B_sat, L, mu, tr)[0]
    assert eta_sat == pytest.approx(eta_inf / 2, rel=1e-9)


def ratios_to_exact_optimum(lam, method, Bs, **kw):
    L, mu, tr = summary(lam)
    out = []
    for B in Bs:
        eta, beta = rule.momentum_rule(method, B, L, mu, tr, **kw)
        rho_rule = Gaussian(lam).rate(method, B, eta, beta)
        rho_opt = optimal_parameters(Gaussian(lam), method, B).rho
        out.append(np.log(rho_opt) / np.log(rho_rule) if rho_rule < 1 else np.inf)
    return np.array(out)


@pytest.mark.parametrize(
    "profile,kappa",
    [("geometric", 3e3), ("power", 3e4)],  # not in the calibration set
)
def test_rule_is_within_1_5x_of_the_exact_optimum_on_held_out_spectra(profile, kappa):
    lam = spectrum(80, kappa, profile)
    Bs = 4.0 ** np.arange(9)
    hb = ratios_to_exact_optimum(lam, "hb", Bs)
    assert np.all(hb < 1.5), hb
    nag = ratios_to_exact_optimum(lam, "nag", Bs, eigvals=lam)
    assert np.all(nag < 1.6), nag


def test_design_literal_min_form_overshoots_at_the_corner():
    """Why the default blend is harmonic: with the same constants, min(.) puts the step on
    the noise line right where it meets the ceiling, and there the exact rate is >= 1."""
    lam = spectrum(200, 1e4)
    L, mu, tr = summary(lam)
    B_sat = rule.saturation_batch("hb", L, mu, tr)
    eta, beta = rule.momentum_rule("hb", B_sat, L, mu, tr, form="min")
    assert Gaussian(lam).rate("hb", B_sat, eta, beta) >= 1
    eta, beta = rule.momentum_rule("hb", B_sat, L, mu, tr)
    assert Gaussian(lam).rate("hb", B_sat, eta, beta) < 1


def test_noise_line_worst_case_and_spectrum():
    lam = spectrum(50, 1e3)
    L, _, tr = summary(lam)
    nu = rule.noise_line("hb", 1 / 8, L, tr)
    assert nu == pytest.approx(16 / (tr + L))
    # The worst case (all the trace in copies of L) is below the actual spectrum's root,
    # and at that root the z = 1 secular sum is exactly 1.
    nu_spec = rule.noise_line("hb", 1 / 8, L, tr, eigvals=lam)
    t = nu_spec * lam / 16
    assert nu_spec > nu and np.sum(t / (1 - t)) == pytest.approx(1.0, abs=1e-8)
    # Nesterov's capped per-mode noise: with 2B > d no step is noise-unstable.
    assert rule.noise_line("nag", 1 / 8, L, tr, eigvals=lam) > nu_spec
    assert rule.noise_line("nag", 1 / 64, L, tr, eigvals=lam) == np.inf


def test_calibration_runs_and_does_not_get_worse():
    spectra = [spectrum(20, 1e3), spectrum(20, 1e3, "power")]
    Bs = [1.0, 16.0, 256.0, 4096.0]
    optimal = rule.optimal_iterations("hb", spectra, Bs)
    start = rule.RuleConstants(damp=2.5, ceil=0.8, noise=0.8)
    before = rule.rule_ratios("hb", spectra, Bs, start, optimal).max()
    k, worst = rule.calibrate_rule("hb", "trace", spectra, Bs, start=start, optimal=optimal)
    assert worst <= before and worst == pytest.approx(
        rule.rule_ratios("hb", spectra, Bs, k, optimal).max()
    )
    assert 1.0 <= worst < 1.5 and k.damp > 0 and k.ceil > 0 and k.noise > 0


# ------------------------------------------------------------------------------------
# Without a spectrum
# ------------------------------------------------------------------------------------


def minibatch_gradients(A, e, B, k, rng, replace=True):
    """``k`` independent mini-batch gradients ``A_S^T A_S e / B`` at error ``e``."""
    n = A.shape[0]
    if replace:
        idx = rng.integers(n, size=(k, B))
    else:
        idx = np.argsort(rng.random((k, n)), axis=1)[:, :B]
    r = A @ e  # residuals a_i . e
    return np.einsum("kb,kbj->kj", r[idx], A[idx]) / B


@pytest.mark.parametrize("replace", [True, False])
def test_gradient_noise_scale_recovers_the_exact_moments(replace):
    rng = np.random.default_rng(0)
    n, d = 60, 10
    A = rng.standard_normal((n, d)) * np.exp(rng.uniform(-1, 1, n))[:, None]
    e = rng.standard_normal(d)
    g_i = A * (A @ e)[:, None]  # per-example gradients
    G = g_i.mean(axis=0)
    trace_cov = np.mean(np.sum((g_i - G) ** 2, axis=1))
    kw = {"n": n, "replace": replace}
    est = rule.gradient_noise_scale(
        minibatch_gradients(A, e, 3, 40_000, rng, replace),
        minibatch_gradients(A, e, 30, 40_000, rng, replace),
        3,
        30,
        **kw,
    )
    assert est.trace_cov == pytest.approx(trace_cov, rel=0.03)
    assert est.grad_sq == pytest.approx(G @ G, rel=0.05)
    assert est.b_simple == pytest.approx(trace_cov / (G @ G), rel=0.08)


def test_noise_scale_rule_equals_the_spectral_rule_on_exact_gaussian_moments():
    """Along the top eigenvector the curvature estimate |G|^2 / 2f is exactly L, so with
    the exact Gaussian-rows moments both rules give the same (eta, beta)."""
    lam = spectrum(40, 1e3)
    L, mu, tr = summary(lam)
    loss, grad_sq = L / 2, L**2  # e = top unit eigenvector
    exact = rule.GradientNoise(grad_sq=grad_sq, trace_cov=2 * loss * tr + grad_sq)
    k = rule.RULE_CONSTANTS[("hb", "trace")]
    beta_full = 1 - k.damp * np.sqrt(mu / L)
    eta_full = rule._deterministic_effective_step("hb", L, mu) * (1 - beta_full)
    for B in (1, 10, 100, 1000, 10_000):
        got = rule.noise_scale_rule("hb", B, exact, loss, eta_full, beta_full)
        assert got == pytest.approx(rule.momentum_rule("hb", B, L, mu, tr), rel=1e-12)


# ------------------------------------------------------------------------------------
# For a problem given by its eigenvalues (what the sweeps and the theory job call)
# ------------------------------------------------------------------------------------


def test_rule_for_spectrum_is_the_rule_on_the_spectral_summary():
    lam = np.concatenate([[0.0, 1e-17], spectrum(30, 1e3)])  # null directions left out
    L, mu, tr = summary(lam[2:])
    assert rule.spectral_summary(lam) == pytest.approx((L, mu, tr), rel=1e-15)
    for method in ("sgd", "hb", "nag"):
        for B in (1, 7, 300):
            got = rule.rule_for_spectrum(method, B, lam, n=500, replace=False)
            assert got == rule.momentum_rule(method, B, L, mu, tr, n=500, replace=False)
            got = rule.rule_for_spectrum(method, B, lam, noise_line="spectrum", form="min")
            assert got == rule.momentum_rule(method, B, L, mu, tr, eigvals=lam[2:], form="min")
    with pytest.raises(ValueError, match="noise_line"):
        rule.rule_for_spectrum("hb", 4, lam, noise_line="eigen")
