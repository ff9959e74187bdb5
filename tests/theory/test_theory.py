"""The exact mean-square theory: operator, recursion, rates, tuning.

Ground truths, cheapest first: the noise operator against an enumeration of every
mini-batch; the dense recursion against Monte Carlo of the engine; the Gaussian closed
form against the dense operator built independently from Kronecker products; rates
against textbook values (gradient descent, Polyak, Nesterov) and against 40-digit
arithmetic; the tuner against a grid.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest
import torch

from conftest import THEORY_SETTINGS
from minibatch_momentum.problems.system import from_matrix, spectrum
from minibatch_momentum.sampling.batches import MiniBatches
from minibatch_momentum.sampling.samplers import noise_factor
from minibatch_momentum.simulate import engine
from minibatch_momentum.theory.common import (
    deterministic_optimum,
    iterations_from_rate,
    iterations_to_eps,
)
from minibatch_momentum.theory.dense import dense_curve, dense_operator, dense_rate, sampling_noise
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.tuning import benchmark_batch_scaling, knee_batch, optimal_parameters


def uneven_problem(d=8, n=40, seed=0):
    """Gaussian rows scaled by factors from e^-0.8 to e^0.8: uneven row norms."""
    rng = np.random.default_rng(seed)
    scale = np.exp(np.linspace(-0.8, 0.8, n))
    A = rng.standard_normal((n, d)) * scale[:, None]
    return from_matrix(A, rng.standard_normal(d))


def matrix_with_spectrum(lam, seed=0):
    """Some ``A`` (n = d) with ``A^T A / n = V diag(lam) V^T``, ``V`` random."""
    d = lam.size
    V, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return np.sqrt(d) * np.sqrt(lam)[:, None] * V.T, V


# ------------------------------------------------------------------------------------
# The noise operator
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("replace", [True, False])
def test_noise_operator_matches_enumeration_of_all_batches(replace):
    n, d, B = 6, 3, 3
    rng = np.random.default_rng(1)
    A = rng.standard_normal((n, d)) * rng.uniform(0.3, 2.0, n)[:, None]
    X = rng.standard_normal((d, d))
    X = X + X.T
    H = A.T @ A / n
    batches = (
        list(itertools.product(range(n), repeat=B))  # ordered i.i.d. draws
        if replace
        else list(itertools.combinations(range(n), B))  # uniform B-subsets
    )
    second = np.mean(
        [(A[list(S)].T @ A[list(S)] / B) @ X @ (A[list(S)].T @ A[list(S)] / B) for S in batches],
        axis=0,
    )
    expected = second - H @ X @ H
    got = sampling_noise(A, X, noise_factor(B, n, replace))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_noise_factor_values_and_zero_at_full_batch():
    assert noise_factor(4) == 0.25
    assert noise_factor(4, n=40, replace=False) == pytest.approx(36 / (4 * 39))
    assert noise_factor(40, n=40, replace=False) == 0.0
    with pytest.raises(ValueError):
        noise_factor(41, n=40, replace=False)


def test_full_batch_without_replacement_is_deterministic():
    """c_B = 0 at B = n: the exact curve is the single deterministic trajectory's."""
    prob = uneven_problem()
    T = 30
    batches = torch.arange(prob.n).repeat(T, 1)  # every step uses all rows
    for method, eta, beta in [("sgd", 0.1, 0.0), ("hb", 0.05, 0.6), ("nag", 0.05, 0.6)]:
        x, _ = engine.trajectory(prob.A, prob.x_star, np.zeros(prob.d), batches, eta, beta, method)
        e = (x[:, :, 0] - torch.as_tensor(prob.x_star)).numpy()
        loss = 0.5 * np.einsum("ti,ij,tj->t", e, prob.H, e)
        exact = dense_curve(prob.A, prob.x_star, method, prob.n, eta, beta, T, replace=False)
        np.testing.assert_allclose(exact.loss, loss, rtol=1e-10)


# ------------------------------------------------------------------------------------
# Exact recursion against Monte Carlo of the engine
# ------------------------------------------------------------------------------------

# 40k runs: the per-run loss at t <= 100 has a coefficient of variation of at most ~0.35
# here, so the MC standard error of the mean is <= 0.35 / sqrt(40000) = 0.18%, a fifth
# of the 1% tolerance (asserted below, not assumed). The noise moves the curve by >5%,
# so the check can tell the right noise operator from a wrong one.
MC_RUNS, MC_CHUNK, MC_STEPS, MC_BATCH = 40_000, 10_000, 100, 4


def monte_carlo(prob, method, eta, beta, replace, seed):
    """Mean and standard error of f(x_t) and ||x_t - x*||^2 over independent runs."""
    H = torch.as_tensor(prob.H)
    x_star = torch.as_tensor(prob.x_star)[None, :, None]
    stream = MiniBatches(prob.n, MC_BATCH, seed, replace=replace)
    sums = np.zeros((4, MC_STEPS + 1))
    for _ in range(MC_RUNS // MC_CHUNK):
        # Batches are i.i.d. across steps, so consecutive draws of one stream, reshaped,
        # give every (step, run) its own independent batch.
        need = MC_STEPS * MC_CHUNK
        idx = torch.cat([stream.take(4096) for _ in range(-(-need // 4096))])[:need]
        idx = idx.reshape(MC_STEPS, MC_CHUNK, MC_BATCH)
        R = np.full(MC_CHUNK, 1.0)
        x, _ = engine.trajectory(
            prob.A, prob.x_star, np.zeros(prob.d), idx, eta * R, beta * R, method
        )
        e = x - x_star
        f = 0.5 * (e * torch.matmul(H, e)).sum(dim=1).numpy()
        dist = (e * e).sum(dim=1).numpy()
        sums += [f.sum(1), (f * f).sum(1), dist.sum(1), (dist * dist).sum(1)]
    m = sums / MC_RUNS
    se_f, se_d = np.sqrt((m[1] - m[0] ** 2) / MC_RUNS), np.sqrt((m[3] - m[2] ** 2) / MC_RUNS)
    return m[0], se_f, m[2], se_d


@pytest.mark.parametrize("method", ["hb", "nag"])
@pytest.mark.parametrize("replace", [True, False])
def test_exact_recursion_matches_monte_carlo(method, replace):
    torch.set_num_threads(1)
    prob = uneven_problem()
    eta, beta = 0.01, 0.5
    exact = dense_curve(
        prob.A, prob.x_star, method, MC_BATCH, eta, beta, MC_STEPS, replace=replace
    )
    noiseless = dense_curve(
        prob.A, prob.x_star, method, prob.n, eta, beta, MC_STEPS, replace=False
    )
    seed = {("hb", True): 1, ("hb", False): 2, ("nag", True): 3, ("nag", False): 4}
    loss, se_loss, dist, se_dist = monte_carlo(
        prob, method, eta, beta, replace, seed[method, replace]
    )
    assert np.max(se_loss / exact.loss) < 0.0025 and np.max(se_dist / exact.dist) < 0.0025
    assert np.max(np.abs(noiseless.loss / exact.loss - 1)) > 0.05
    assert np.max(np.abs(loss / exact.loss - 1)) < 0.01
    assert np.max(np.abs(dist / exact.dist - 1)) < 0.01


# ------------------------------------------------------------------------------------
# Gaussian closed form against the dense operator
# ------------------------------------------------------------------------------------



@pytest.mark.parametrize("method,B,eta,beta", THEORY_SETTINGS)
def test_gaussian_closed_form_matches_dense_operator(method, B, eta, beta):
    lam = spectrum(5, 30.0)
    A, V = matrix_with_spectrum(lam)
    dense = dense_operator(A, method, B, eta, beta, noise="gaussian")
    dense_eigs = np.linalg.eigvals(dense)
    closed_eigs = np.linalg.eigvals(Gaussian(lam).operator(method, B, eta, beta))
    # The closed map is the dense one restricted to an invariant subspace.
    for z in closed_eigs:
        assert np.min(np.abs(dense_eigs - z)) < 1e-8 * max(1.0, abs(z))
    rho = Gaussian(lam).rate(method, B, eta, beta)
    assert rho == pytest.approx(np.max(np.abs(dense_eigs)), rel=1e-11)
    assert rho == pytest.approx(np.max(np.abs(closed_eigs)), rel=1e-11)

    x_star = V @ np.linspace(1.0, 2.0, lam.size)
    weights = (V.T @ x_star) ** 2
    curve = Gaussian(lam).curve(weights, method, B, eta, beta, 60)
    ref = dense_curve(A, x_star, method, B, eta, beta, 60, noise="gaussian")
    np.testing.assert_allclose(curve.loss, ref.loss, rtol=1e-9)
    np.testing.assert_allclose(curve.dist, ref.dist, rtol=1e-9)


def test_gaussian_curve_vectorizes_over_configurations():
    lam = spectrum(10, 100.0)
    w = 1.0 / lam
    eta, beta = np.array([0.1, 0.2, 0.05]), np.array([0.5, 0.0, 0.9])
    both = Gaussian(lam).curve(w, "hb", 4, eta, beta, 50)
    for r in range(3):
        one = Gaussian(lam).curve(w, "hb", 4, eta[r], beta[r], 50)
        np.testing.assert_allclose(both.loss[:, r], one.loss, rtol=1e-13)


def test_rate_is_the_curves_asymptotic_slope_and_iterations_agree():
    lam = spectrum(20, 100.0)
    w = 1.0 / lam
    rho = Gaussian(lam).rate("nag", 8, 0.1, 0.8)
    # The next eigenvalue is 0.9870: after 12000 steps its share is ~1e-14.
    curve = Gaussian(lam).curve(w, "nag", 8, 0.1, 0.8, 12000).loss
    assert curve[-1] / curve[-2] == pytest.approx(rho, rel=1e-9)
    t = Gaussian(lam).iterations(w, "nag", 8, 0.1, 0.8, 1e-6)
    assert t == iterations_to_eps(curve, 1e-6)
    assert iterations_to_eps(np.array([1.0, 0.5, 0.1, 0.01]), 0.1) == 2.0
    assert iterations_to_eps(np.array([1.0, 0.5]), 0.1) == np.inf
    assert iterations_from_rate(np.exp(-1.0), np.exp(-5.0)) == pytest.approx(5.0)
    assert iterations_from_rate(1.2, 1e-3) == np.inf


def closed_map_mp(lam, method, B, eta, beta):
    """The closed Gaussian map in 40-digit arithmetic, from the module docstring."""
    d = lam.size
    e, b_, g = (mpmath.mpf(v) for v in (eta, beta, beta if method == "nag" else 0.0))
    w = [(1 + g) ** 2, -2 * g * (1 + g), g**2]
    lm = [mpmath.mpf(v) for v in lam]
    T = mpmath.zeros(3 * d, 3 * d)
    for i in range(d):
        a, b = 1 + b_ - e * (1 + g) * lm[i], -b_ + e * g * lm[i]
        T[i, i], T[i, d + i], T[i, 2 * d + i] = a * a, 2 * a * b, b * b
        T[d + i, i], T[d + i, d + i], T[2 * d + i, i] = a, b, 1
        for j in range(d):
            kick = e**2 / mpmath.mpf(B) * ((lm[i] ** 2 if i == j else 0) + lm[i] * lm[j])
            for k in range(3):
                T[i, k * d + j] += w[k] * kick
    return T


def test_rate_is_exact_near_one_against_40_digit_arithmetic():
    """kappa = 1e6: 1 - rho down to 4e-9, where textbook polynomials lose their digits."""
    mpmath.mp.dps = 40
    lam = spectrum(6, 1e6)
    cases = [
        ("sgd", 1, 1e-3),
        ("sgd", 16, 0.3),
        ("hb", 1, 1e-4),
        ("nag", 1, 1e-3),
        ("nag", 16, 0.3),
        ("nag", 1e6, 1.0),
    ]
    for method, B, scale in cases:
        eta, beta, _ = deterministic_optimum(method, lam[-1], lam[0])
        eta *= scale
        T = closed_map_mp(lam, method, B, eta, beta)
        gap = float(1 - max(abs(z) for z in mpmath.eig(T, left=False, right=False)))
        ours = 1 - Gaussian(lam).rate(method, B, eta, beta)
        assert 0 < gap < 3e-3
        assert abs(ours - gap) <= 1e-7 * gap


# ------------------------------------------------------------------------------------
# Rates against the textbook
# ------------------------------------------------------------------------------------


def test_sgd_without_noise_has_the_gradient_descent_rate():
    """Second moments contract by the *square* of GD's rate: max_i (1 - eta lam_i)^2."""
    prob = uneven_problem()
    for eta in (0.05, 0.3, 0.6):
        expected = np.max(np.abs(1 - eta * prob.eigvals)) ** 2
        dense = dense_rate(prob.A, "sgd", prob.n, eta, 0.0, replace=False)
        closed = Gaussian(prob.eigvals, n=prob.n, replace=False).rate("sgd", prob.n, eta, 0.0)
        assert dense == pytest.approx(expected, rel=1e-12)
        assert closed == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kappa", [10.0, 1e4])
def test_polyak_heavy_ball_without_noise(kappa):
    """Polyak: every mode has modulus (sqrt k - 1)/(sqrt k + 1); the second-moment rate is
    its square (= beta). At mu and L the 2x2 block is a Jordan block, so the dense
    eigensolver only gets ~eps^(1/3); the closed form keeps ~sqrt(eps) relative digits."""
    lam = spectrum(6, kappa)
    A, _ = matrix_with_spectrum(lam)
    n = A.shape[0]
    eta, beta, rho = deterministic_optimum("hb", lam[-1], lam[0])
    modulus = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    assert rho == pytest.approx(modulus**2, rel=1e-14) and beta == pytest.approx(rho)
    closed = Gaussian(lam, n=n, replace=False).rate("hb", n, eta, beta)
    assert 1 - closed == pytest.approx(1 - modulus**2, rel=1e-6)
    dense = dense_rate(A, "hb", n, eta, beta, replace=False)
    assert dense == pytest.approx(modulus**2, abs=1e-4)


def test_nesterov_tuning_without_noise():
    lam = spectrum(6, 1e3)
    eta, beta, rho = deterministic_optimum("nag", lam[-1], lam[0])
    assert rho == pytest.approx((1 - 2 / np.sqrt(3e3 + 1)) ** 2)
    got = Gaussian(lam, n=10, replace=False).rate("nag", 10, eta, beta)
    assert 1 - got == pytest.approx(1 - rho, rel=1e-6)


# ------------------------------------------------------------------------------------
# Tuning: optimal parameters, T*(B), knees
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sgd", "hb", "nag"])
def test_optimal_parameters_beat_a_grid(method):
    lam = spectrum(30, 1e3)
    for B in (1, 16, 256):
        opt = optimal_parameters(Gaussian(lam), method, B)
        if method == "sgd":
            grid = [(eta, 0.0) for eta in np.geomspace(1e-4, 2.0, 200)]
        else:
            grid = [
                (eff * damp, 1 - damp)
                for eff, damp in itertools.product(
                    np.geomspace(1e-2, 1e3, 24), np.geomspace(1e-3, 1, 16)
                )
            ]
        best = min(Gaussian(lam).rate(method, B, e, b) for e, b in grid)
        assert opt.rho <= best * (1 + 1e-12)
        assert opt.rho == pytest.approx(Gaussian(lam).rate(method, B, opt.eta, opt.beta))


def test_design_first_check_numbers():
    """docs/design.md section 3: d = 60, geometric [1e-4, 1], iterations to cut E||e||^2 by 1e6."""
    lam = spectrum(60, 1e4)
    expected = {
        ("sgd", 1): 280e3,
        ("sgd", 16): 42e3,
        ("hb", 16): 16.8e3,
        ("hb", 1024): 703,
        ("nag", 16): 2.2e3,
        ("nag", 64): 656,
    }
    for (method, B), T in expected.items():
        rho = optimal_parameters(Gaussian(lam), method, B).rho
        assert iterations_from_rate(rho, 1e-6) == pytest.approx(T, rel=0.02)


def test_batch_scaling_timing_and_shape_of_the_exact_curves():
    """Exact T*(B) at d = 1000 for 12 batch sizes (timing printed, not asserted)."""
    out = benchmark_batch_scaling(d=1000, kappa=1e4)
    for method, (_, seconds) in out.items():
        print(f"exact T*(B), d=1000, 12 batch sizes, {method}: {seconds:.2f} s")
    speedup = {m: r.iterations[:-1] / r.iterations[1:] for m, (r, _) in out.items()}
    # Heavy ball: linear scaling (x2 per doubling) over the whole range, B_sat ~ 1e4.
    assert np.all((speedup["hb"] > 1.7) & (speedup["hb"] < 2.05))
    # SGD stops improving: from B = 256 on, doubling gains < 10%.
    assert np.all(speedup["sgd"][8:] < 1.1)
    # Nesterov: super-linear somewhere (x3+ per doubling) before saturating.
    assert np.max(speedup["nag"]) > 3
    assert np.all(np.diff(out["hb"][0].iterations) < 0)


def test_knee_batches():
    lam = spectrum(60, 1e4)
    tr, L, mu = lam.sum(), lam[-1], lam[0]
    b_sgd = knee_batch(Gaussian(lam), "sgd")
    b_hb = knee_batch(Gaussian(lam), "hb")
    assert tr / L / 2 < b_sgd < 2 * tr / L
    assert tr / np.sqrt(L * mu) / 2 < b_hb < 2 * tr / np.sqrt(L * mu)
    # At the knee, T* is twice the deterministic optimum's (by definition).
    rho_det = deterministic_optimum("hb", L, mu)[2]
    rho = optimal_parameters(Gaussian(lam), "hb", b_hb).rho
    assert np.log(rho_det) / np.log(rho) == pytest.approx(2.0, rel=5e-3)
