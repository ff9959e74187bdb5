"""The batched engine against torch.optim, and its stopping rule on hand-made problems.

- ``trajectory`` (SGD / heavy ball / Nesterov, a grid of (eta, beta) at once) equals
  ``torch.optim.SGD(lr=eta, momentum=beta, nesterov=..., dampening=0)`` fed the same
  mini-batches, with the loss ``((A_S w - b_S)^2).mean() / 2`` (gradient
  ``A_S^T (A_S w - b_S) / B``) and gradients from autograd.
- ``run_grid`` (eigenbasis, shared batch stream, dropping finished runs) reproduces the
  relative loss of ``trajectory`` fed ``MiniBatches`` with the same seed.
- On a 2 x 2 diagonal system with the whole batch (B = n without replacement is exact
  gradient descent) iterations-to-eps, divergence, censoring and ``t_max`` are
  compared with closed forms.
- The baselines (SNGM, ASGD, MaSS) equal their torch.optim classes in
  :mod:`minibatch_momentum.optim` fed the same mini-batches (one parameter per run, one
  param group per configuration), to 1e-10 in float64, and ``run_grid`` reproduces their
  ``trajectory`` too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import (
    BETAS,
    ETAS,
    D,
    N,
    T,
    assert_close_traj,
    numpy_batches,
    random_system,
    relative_loss,
    torch_reference,
)
from minibatch_momentum.optim import SNGM, AccSGD, MaSS
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.problems.system import from_matrix, from_psd
from minibatch_momentum.sampling.batches import MiniBatches
from minibatch_momentum.sampling.samplers import sampling
from minibatch_momentum.simulate.engine import (
    ALL_METHODS,
    BASELINES,
    CENSORED,
    CONVERGED,
    DIVERGED,
    METHODS,
    TIMEOUT,
    StopRule,
    monte_carlo,
    run_grid,
    trajectory,
)

# ------------------------------------------------------------------------ vs torch.optim


def moved(ref):
    """The runs moved: a comparison of two constant sequences would prove nothing."""
    assert np.linalg.norm(ref[-1] - ref[0], axis=0).min() > 0.05


KAPPAS = np.array([50.0, 20.0, 100.0, 10.0])
XIS = np.array([5.0, 2.0, 10.0, 1.0])
ETA2S = np.array([0.0, 0.01, -0.005, 0.02])

# method: (its torch.optim class and hyperparameters, the engine's beta and extra, the
# engine sequence that torch holds as the parameter: y is Nesterov's look-ahead point)
AGAINST_OPTIM = {
    "sgd": (torch.optim.SGD, dict(lr=ETAS, momentum=0.0, dampening=0), 0.0, None, "x"),
    "hb": (torch.optim.SGD, dict(lr=ETAS, momentum=BETAS, dampening=0), BETAS, None, "x"),
    "nag": (
        torch.optim.SGD,
        dict(lr=ETAS, momentum=BETAS, dampening=0, nesterov=True),
        BETAS,
        None,
        "y",
    ),
    "sngm": (SNGM, dict(lr=ETAS, momentum=BETAS), BETAS, None, "x"),
    "asgd": (AccSGD, dict(lr=ETAS, kappa=KAPPAS, xi=XIS), 0.0, {"kappa": KAPPAS, "xi": XIS}, "x"),
}


@pytest.mark.parametrize("B", [1, 3, N])
@pytest.mark.parametrize("method", list(AGAINST_OPTIM))
def test_trajectory_equals_its_torch_optim_class(method, B):
    cls, hyper, beta, extra, held = AGAINST_OPTIM[method]
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, B, T)
    x, y = trajectory(A, x_star, x0, batches, ETAS, beta, method, extra=extra)
    assert x.shape == (T + 1, D, len(ETAS)) and x.dtype == torch.float64
    ref = torch_reference(A, x_star, x0, batches, cls, **hyper)
    assert_close_traj(y if held == "y" else x, ref)
    if held == "x":
        assert torch.equal(x, y)  # no look-ahead
    moved(ref)


def test_nesterov_x_is_the_sequence_behind_the_lookahead():
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, 3, T)
    x, y = trajectory(A, x_star, x0, batches, ETAS, BETAS, "nag")
    ref = torch_reference(
        A, x_star, x0, batches, torch.optim.SGD, lr=ETAS, momentum=BETAS, nesterov=True
    )
    # x is what the docstring says: y_t = x_t + beta (x_t - x_{t-1}), x_{-1} = x_0
    beta = torch.as_tensor(BETAS)
    torch.testing.assert_close(y[1:], x[1:] + beta * (x[1:] - x[:-1]), rtol=0, atol=1e-12)
    torch.testing.assert_close(y[0], x[0], rtol=0, atol=0)
    # x itself is *not* torch's parameter (else this test could not tell the two apart)
    assert np.abs(x.numpy() - ref).max() > 1e-3


@pytest.mark.parametrize("method,nesterov", [("hb", False), ("nag", True)])
def test_a_batch_per_run_equals_torch_sgd(method, nesterov):
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, 3, T, runs=len(ETAS))  # (T, R, B)
    x, y = trajectory(A, x_star, x0, batches, ETAS, BETAS, method)
    ref = torch_reference(
        A, x_star, x0, batches, torch.optim.SGD, lr=ETAS, momentum=BETAS, nesterov=nesterov
    )
    assert_close_traj(y, ref)


def test_runs_in_a_grid_do_not_interact():
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, 3, T)
    x, _ = trajectory(A, x_star, x0, batches, ETAS, BETAS, "hb")
    for r in range(len(ETAS)):
        xr, _ = trajectory(A, x_star, x0, batches, ETAS[r], BETAS[r], "hb")
        torch.testing.assert_close(x[:, :, r], xr[:, :, 0], rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    "method,eta,beta,match",
    [
        ("hb", [0.1, 0.0], [0.5, 0.5], "eta"),
        ("hb", [0.1, -1.0], [0.5, 0.5], "eta"),
        ("hb", [0.1], [1.0], "beta"),
        ("nag", [0.1], [-0.1], "beta"),
        ("sgd", [0.1], [0.5], "sgd"),
        ("adam", [0.1], [0.5], "method"),
        ("hb", [0.1, 0.2], [0.5, 0.5, 0.5], "equal length|shape"),
    ],
)
def test_bad_parameters_are_rejected(method, eta, beta, match):
    A, x_star, x0 = random_system()
    p = from_matrix(A, x_star)
    batches = numpy_batches(N, 2, 3)
    with pytest.raises(ValueError, match=match):
        trajectory(A, x_star, x0, batches, np.array(eta), np.array(beta), method)
    with pytest.raises(ValueError, match=match):
        run_grid(p, method, 2, np.array(eta), np.array(beta), seed=0, device="cpu")


# --------------------------------------------------------------------------- run_grid vs trajectory

GRID_PROBLEM = dict(d=6, n=40, kappa=20.0, profile="geometric", seed=3)
NO_STOP = StopRule(eps=1e-30, t_max=60, check_every=3, censor_factor=2.0)


@pytest.mark.parametrize(
    "method,B,replace",
    [
        ("hb", 1, False),
        ("hb", 3, False),
        ("hb", 40, False),
        ("nag", 1, False),
        ("nag", 3, False),
        ("nag", 40, False),
        ("sgd", 3, False),
        ("sgd", 40, False),
        ("hb", 3, True),
        ("nag", 50, True),
    ],
)
def test_run_grid_reproduces_trajectory_loss(method, B, replace):
    p = gaussian_system(**GRID_PROBLEM)
    sampler = "with_replacement" if replace else "without_replacement"
    _check_run_grid_against_trajectory(p, method, B, sampler, np.array([0.1, 0.25, 0.5, 0.4]))


@pytest.mark.parametrize(
    "method, B, sampler, form",
    [
        ("hb", 1, "kaczmarz", "rows"),
        ("nag", 16, "kaczmarz", "rows"),
        ("sgd", 4, "kaczmarz", "rows"),
        ("hb", 1, "kaczmarz_block", "rows"),
        ("nag", 2, "kaczmarz_block", "rows"),
        ("hb", 1, "coordinate", "psd"),
        ("nag", 6, "coordinate", "psd"),
        ("sgd", 20, "coordinate", "psd"),
    ],
)
def test_run_grid_reproduces_trajectory_loss_other_samplers(method, B, sampler, form):
    p = gaussian_system(**GRID_PROBLEM)
    if form == "psd":
        p = from_psd(p.H, p.x_star)
    # Steps in each sampler's own units: 1 / tr H for Kaczmarz and coordinate descent
    # (their textbook step), a relaxation factor for block projections.
    unit = 1.0 if sampler == "kaczmarz_block" else p.eigvals[-1] / p.eigvals.sum()
    _check_run_grid_against_trajectory(p, method, B, sampler, np.array([0.2, 0.5, 1.0, 0.8]) * unit)


def _check_run_grid_against_trajectory(p, method, B, sampler, eta_L):
    eta = eta_L / p.eigvals[-1]
    beta = np.zeros(4) if method == "sgd" else np.array([0.5, 0.8, 0.3, 0.0])
    x0 = np.random.default_rng(4).standard_normal(p.d)
    res = run_grid(
        p, method, B, eta, beta, seed=17, stop=NO_STOP, sampler=sampler, device="cpu", x0=x0
    )
    draws = sampling(p, sampler, eigenbasis=False)
    batches = draws.stream(B, seed=17).take(NO_STOP.t_max)
    x, _ = trajectory(p.A, p.x_star, x0, batches, eta, beta, method, tables=draws)
    e = x.numpy() - p.x_star[None, :, None]
    e0 = x0 - p.x_star
    want = np.einsum("tdr,de,ter->tr", e, p.H, e) / (e0 @ p.H @ e0)  # (T + 1, R)
    steps = np.arange(0, NO_STOP.t_max + 1, NO_STOP.check_every)
    assert want[-1].min() < 0.5  # the runs made progress
    for r in range(len(eta)):
        t, loss = res.curves[r]
        np.testing.assert_array_equal(t, steps)
        np.testing.assert_allclose(loss, want[steps, r], rtol=1e-9, err_msg=f"run {r}")
    assert list(res.status) == [TIMEOUT] * 4
    np.testing.assert_array_equal(res.steps_run, NO_STOP.t_max)
    np.testing.assert_allclose(res.final_loss, want[-1], rtol=1e-9)
    assert np.all(np.isinf(res.iters_to_eps)) and np.all(res.diverged_at == -1)


def test_run_grid_other_seed_other_batches():
    p = gaussian_system(**GRID_PROBLEM)
    a = run_grid(p, "hb", 3, 0.3, 0.5, seed=1, stop=NO_STOP, device="cpu").curves[0][1]
    b = run_grid(p, "hb", 3, 0.3, 0.5, seed=1, stop=NO_STOP, device="cpu").curves[0][1]
    c = run_grid(p, "hb", 3, 0.3, 0.5, seed=2, stop=NO_STOP, device="cpu").curves[0][1]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[1:], c[1:], rtol=1e-6)


def test_grid_runs_equal_single_runs_when_some_finish_early():
    # Runs that converge or diverge are dropped from the batched state; the others
    # must carry on exactly as if they had run alone on the same batch stream.
    p = gaussian_system(**GRID_PROBLEM)
    L = p.eigvals[-1]
    eta = np.array([0.05, 6.0, 0.6, 0.2, 1.2, 0.4]) / L
    beta = np.array([0.5, 0.9, 0.8, 0.0, 0.6, 0.95])
    stop = StopRule(eps=1e-3, t_max=400, check_every=5, censor_factor=100.0)
    grid = run_grid(p, "hb", 4, eta, beta, seed=5, stop=stop, device="cpu")
    assert {CONVERGED, DIVERGED} <= set(grid.status)
    assert TIMEOUT in set(grid.status)
    for r in range(eta.size):
        one = run_grid(p, "hb", 4, eta[r], beta[r], seed=5, stop=stop, device="cpu")
        assert grid.status[r] == one.status[0], r
        assert grid.iters_to_eps[r] == one.iters_to_eps[0], r
        assert grid.steps_run[r] == one.steps_run[0], r
        assert grid.diverged_at[r] == one.diverged_at[0], r
        np.testing.assert_array_equal(grid.curves[r][0], one.curves[0][0])
        np.testing.assert_allclose(grid.curves[r][1], one.curves[0][1], rtol=1e-9)


def test_float32_agrees_with_float64():
    p = gaussian_system(**GRID_PROBLEM)
    L = p.eigvals[-1]
    eta, beta = np.array([0.2, 0.5]) / L, np.array([0.5, 0.7])
    stop = StopRule(eps=1e-3, t_max=2000, check_every=1, censor_factor=100.0)
    r64 = run_grid(p, "nag", 8, eta, beta, seed=0, stop=stop, device="cpu")
    r32 = run_grid(p, "nag", 8, eta, beta, seed=0, stop=stop, device="cpu", dtype=torch.float32)
    assert np.all(np.isfinite(r64.iters_to_eps))
    np.testing.assert_allclose(r32.iters_to_eps, r64.iters_to_eps, rtol=0.02)


@pytest.mark.parametrize("B", [1, 8])  # the compiled chunk and the PyTorch path
def test_tables_kept_on_the_problem_are_per_dtype(B):
    # The engine keeps its copies of the tables on the problem: a float32 grid after a
    # float64 one must be a fresh problem's float32 grid, and a rerun the same numbers.
    def losses(p, dtype):
        res = run_grid(p, "nag", B, 0.3, 0.5, seed=1, stop=NO_STOP, device="cpu", dtype=dtype)
        return res.curves[0][1]

    p = gaussian_system(**GRID_PROBLEM)
    first64, first32 = losses(p, torch.float64), losses(p, torch.float32)
    fresh32 = losses(gaussian_system(**GRID_PROBLEM), torch.float32)
    np.testing.assert_array_equal(first32, fresh32)
    np.testing.assert_array_equal(losses(p, torch.float64), first64)
    assert not np.array_equal(first32, first64)


def test_run_grid_rejects_starting_at_the_solution():
    p = gaussian_system(**GRID_PROBLEM)
    with pytest.raises(ValueError, match="minimizer"):
        run_grid(p, "hb", 2, 0.1, 0.5, seed=0, device="cpu", x0=p.x_star)


# --------------------------------------------------------------------------- stop rule


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.0}, "eps"),
        ({"eps": -1e-3}, "eps"),
        ({"t_max": 0}, "t_max"),
        ({"check_every": 0}, "check_every"),
        ({"censor_factor": 1.0}, "censor_factor"),
    ],
)
def test_stop_rule_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        StopRule(**kw)


def test_recorded_checks_are_bounded_and_include_both_ends():
    s = StopRule(t_max=10**7, check_every=1, curve_points=400)
    rc = s.recorded_checks()
    assert rc[0] == 0 and rc[-1] == 10**7
    assert np.all(np.diff(rc) > 0)
    assert set(range(51)) <= set(rc.tolist())
    assert len(rc) <= 451
    small = StopRule(t_max=60, check_every=3).recorded_checks()
    np.testing.assert_array_equal(small, np.arange(21))


# --------------------------------------------------------------------------- 2 x 2 full batch

LAM = (1.0, 0.02)  # H = diag(LAM): L = 1, mu = 0.02


def two_by_two():
    """Rows (sqrt(2 l1), 0) and (0, sqrt(2 l2)), n = 2, so H = A^T A / 2 = diag(l1, l2);
    x* = (1/sqrt(l1), 1/sqrt(l2)) puts half the initial loss in each eigendirection."""
    l1, l2 = LAM
    A = np.diag([math.sqrt(2 * l1), math.sqrt(2 * l2)])
    return from_matrix(A, np.array([1 / math.sqrt(l1), 1 / math.sqrt(l2)]))


def closed_form_rel(method, eta, beta, steps):
    """Relative loss of full-batch GD / HB / NAG on H = diag(LAM), e_0 = -x*, e_{-1} = e_0:
    each eigendirection follows a 2x2 companion recursion (mean dynamics, no noise)."""
    out = np.zeros(steps + 1)
    for lam in LAM:
        if method == "nag":
            M = np.array([[(1 + beta) * (1 - eta * lam), -beta * (1 - eta * lam)], [1.0, 0.0]])
        else:
            M = np.array([[1 + beta - eta * lam, -beta], [1.0, 0.0]])
        z = np.array([1.0, 1.0]) / math.sqrt(lam)  # (e_t, e_{t-1}) up to sign
        for t in range(steps + 1):
            with np.errstate(over="ignore", invalid="ignore"):
                out[t] += lam * z[0] ** 2 / 2  # f0 = 1 (two shares of 1/2)
                z = M @ z
    return out


def first_at_or_after(t, K):
    return int(math.ceil(t / K) * K)


def crossing(rel, eps):
    """First step with rel <= eps, checked to lie well away from round-off ties."""
    t = int(np.argmax(rel <= eps))
    assert rel[t] <= eps and t > 0
    assert abs(rel[t] / eps - 1) > 1e-6 and abs(rel[t - 1] / eps - 1) > 1e-6
    return t


def test_closed_form_helper_matches_plain_gd_formula():
    # GD: rel(t) = (1 - eta l1)^(2t)/2 + (1 - eta l2)^(2t)/2, no companion matrix needed
    t = np.arange(301)
    for eta in (0.5, 1.0, 1.5):
        want = 0.5 * (1 - eta * LAM[0]) ** (2 * t) + 0.5 * (1 - eta * LAM[1]) ** (2 * t)
        np.testing.assert_allclose(closed_form_rel("sgd", eta, 0.0, 300), want, rtol=1e-11)


@pytest.mark.parametrize(
    "method,eta,beta",
    [
        ("sgd", [1.0, 0.5, 1.5, 0.7], [0.0] * 4),
        ("hb", [1.0, 0.5, 1.2, 0.3], [0.5, 0.6, 0.3, 0.8]),
        ("nag", [1.0, 0.5, 0.9, 0.3], [0.5, 0.6, 0.3, 0.8]),
    ],
)
def test_full_batch_iters_to_eps_is_first_check_after_analytic_crossing(method, eta, beta):
    p = two_by_two()
    eps, K = 1e-3, 7
    stop = StopRule(eps=eps, t_max=5000, check_every=K, censor_factor=50.0)
    res = run_grid(p, method, 2, eta, beta, seed=0, stop=stop, device="cpu")
    for r in range(len(eta)):
        rel = closed_form_rel(method, eta[r], beta[r], 2000)
        want = first_at_or_after(crossing(rel, eps), K)
        assert res.status[r] == CONVERGED
        assert res.iters_to_eps[r] == want, (r, res.iters_to_eps[r], want)
        assert res.steps_run[r] == want and res.diverged_at[r] == -1
        np.testing.assert_allclose(res.final_loss[r], rel[want], rtol=1e-10)
        t, loss = res.curves[r]
        assert t[0] == 0 and t[-1] == want and np.all(t % K == 0)
        np.testing.assert_allclose(loss, rel[t], rtol=1e-10)


def test_divergence_is_recorded_not_raised():
    p = two_by_two()
    eps, K, blowup = 1e-3, 5, 1e8
    stop = StopRule(eps=eps, t_max=1000, check_every=K, censor_factor=50.0, blowup=blowup)
    eta = [2.5, 1e300, 1.0]  # eta L = 2.5 > 2 diverges; 1e300 overflows to inf/nan at once
    for dtype in (torch.float64, torch.float32):
        res = run_grid(p, "sgd", 2, eta, [0, 0, 0], seed=0, stop=stop, device="cpu", dtype=dtype)
        rel = closed_form_rel("sgd", 2.5, 0.0, 100)
        blow = first_at_or_after(int(np.argmax(rel > blowup)), K)
        assert list(res.status) == [DIVERGED, DIVERGED, CONVERGED]
        assert res.diverged_at[0] == blow and res.diverged_at[1] == K
        assert res.steps_run[0] == blow and res.steps_run[1] == K
        assert np.isinf(res.iters_to_eps[:2]).all()
        assert not (res.final_loss[0] <= blowup)  # > blowup, or nan
        assert res.iters_to_eps[2] == first_at_or_after(
            crossing(closed_form_rel("sgd", 1.0, 0.0, 500), eps), K
        )
        assert res.diverged_at[2] == -1


def test_divergence_of_every_run_ends_the_grid():
    p = gaussian_system(**GRID_PROBLEM)
    stop = StopRule(eps=1e-4, t_max=10**6, check_every=10)
    res = run_grid(p, "hb", 1, [50.0, 80.0], [0.9, 0.5], seed=0, stop=stop, device="cpu")
    assert list(res.status) == [DIVERGED, DIVERGED]
    assert (res.diverged_at > 0).all() and (res.diverged_at < 1000).all()


def test_censoring_stops_slow_runs_at_a_multiple_of_the_first_converged_count():
    p = two_by_two()
    eps, K = 1e-3, 10
    eta = [1.0, 0.05, 0.5]
    fast = first_at_or_after(crossing(closed_form_rel("sgd", 1.0, 0.0, 1000), eps), K)
    medium = first_at_or_after(crossing(closed_form_rel("sgd", 0.5, 0.0, 1000), eps), K)
    slow = crossing(closed_form_rel("sgd", 0.05, 0.0, 5000), eps)
    assert (fast, medium) == (160, 310)
    for cf in (2.0, 2.5):
        horizon = math.ceil(cf * fast)  # 320 (on the check grid), 400
        assert medium <= horizon < slow
        stop = StopRule(eps=eps, t_max=10**5, check_every=K, censor_factor=cf)
        res = run_grid(p, "sgd", 2, eta, [0, 0, 0], seed=0, stop=stop, device="cpu")
        assert list(res.status) == [CONVERGED, CENSORED, CONVERGED]
        assert res.iters_to_eps[0] == fast and res.iters_to_eps[2] == medium
        assert np.isinf(res.iters_to_eps[1])
        assert res.steps_run[1] == horizon and res.diverged_at[1] == -1
        rel = closed_form_rel("sgd", 0.05, 0.0, horizon)
        np.testing.assert_allclose(res.final_loss[1], rel[horizon], rtol=1e-10)
        assert res.curves[1][0][-1] == horizon


def test_only_leaders_start_the_censoring_clock():
    # The fast run (eta = 1, converged at 160) rides along as a non-leader: the clock starts
    # at the medium run's 310, so the slow run is censored at 2 x 310 instead of 2 x 160.
    p = two_by_two()
    stop = StopRule(eps=1e-3, t_max=10**5, check_every=10, censor_factor=2.0)
    eta = [1.0, 0.05, 0.5]
    res = run_grid(
        p,
        "sgd",
        2,
        eta,
        [0, 0, 0],
        seed=0,
        stop=stop,
        device="cpu",
        leaders=np.array([False, True, True]),
    )
    assert list(res.status) == [CONVERGED, CENSORED, CONVERGED]
    assert list(res.iters_to_eps[[0, 2]]) == [160, 310]
    assert res.steps_run[1] == 620
    # a non-leader slower than the horizon is censored like any run
    res = run_grid(
        p,
        "sgd",
        2,
        [1.0, 0.05],
        [0, 0],
        seed=0,
        stop=stop,
        device="cpu",
        leaders=np.array([True, False]),
    )
    assert list(res.status) == [CONVERGED, CENSORED] and res.steps_run[1] == 320
    with pytest.raises(ValueError, match="leaders"):
        run_grid(p, "sgd", 2, [1.0, 0.05], [0, 0], seed=0, stop=stop, leaders=[True])


def test_monte_carlo_is_the_mean_of_independent_runs():
    """monte_carlo's runs are trajectory()'s runs fed a batch per (step, run) from one
    stream, taken step by step."""
    p = gaussian_system(d=6, n=40, kappa=20.0, seed=3)
    runs, steps, B = 7, 25, 3
    for method, eta, beta in [("hb", 0.3, 0.6), ("nag", 0.2, 0.7), ("sgd", 0.4, 0.0)]:
        mc = monte_carlo(p, method, B, eta, beta, runs, steps, seed=5)
        stream = MiniBatches(p.n, B, 5)
        batches = torch.stack([stream.take(runs) for _ in range(steps)])  # (T, R, B)
        ones = np.ones(runs)
        x, _ = trajectory(p.A, p.x_star, np.zeros(p.d), batches, eta * ones, beta * ones, method)
        x0 = np.zeros(p.d)
        rel = relative_loss(p.A, p.x_star, x.numpy(), x0)  # (T + 1, R)
        np.testing.assert_allclose(mc.mean, rel.mean(axis=1), rtol=1e-10)
        np.testing.assert_allclose(mc.std, rel.std(axis=1, ddof=1), rtol=1e-8, atol=1e-14)
        np.testing.assert_allclose(mc.stderr, mc.std / np.sqrt(runs))
        assert mc.mean[0] == 1.0 and mc.runs == runs
        assert (mc.method, mc.batch_size, mc.eta, mc.beta) == (method, B, eta, beta)
    with pytest.raises(ValueError, match="runs"):
        monte_carlo(p, "hb", B, 0.3, 0.6, 1, steps)


def test_censoring_horizon_off_the_check_grid():
    # censor_factor * T_first = 2.05 * 160 = 328 is not a multiple of check_every = 10.
    # The engine stops the slow runs after exactly ceil(2.05 * 160) steps (its docstring:
    # "taken censor_factor times as many steps as the grid's first converged run").
    p = two_by_two()
    stop = StopRule(eps=1e-3, t_max=10**5, check_every=10, censor_factor=2.05)
    res = run_grid(p, "sgd", 2, [1.0, 0.05], [0, 0], seed=0, stop=stop, device="cpu")
    assert list(res.status) == [CONVERGED, CENSORED]
    assert res.iters_to_eps[0] == 160
    assert res.steps_run[1] == math.ceil(2.05 * 160)


def test_t_max_status():
    p = two_by_two()
    stop = StopRule(eps=1e-3, t_max=53, check_every=10, censor_factor=2.0)
    res = run_grid(p, "sgd", 2, [0.05, 0.02], [0, 0], seed=0, stop=stop, device="cpu")
    assert list(res.status) == [TIMEOUT, TIMEOUT]
    np.testing.assert_array_equal(res.steps_run, [53, 53])
    assert np.isinf(res.iters_to_eps).all() and (res.diverged_at == -1).all()
    for r, eta in enumerate([0.05, 0.02]):
        rel = closed_form_rel("sgd", eta, 0.0, 53)
        np.testing.assert_allclose(res.final_loss[r], rel[53], rtol=1e-10)
        t, loss = res.curves[r]
        np.testing.assert_array_equal(t, [0, 10, 20, 30, 40, 50, 53])
        np.testing.assert_allclose(loss, rel[t], rtol=1e-10)


def test_censoring_capped_by_t_max_is_t_max_not_censored():
    p = two_by_two()
    stop = StopRule(eps=1e-3, t_max=200, check_every=10, censor_factor=2.0)  # 2 * 160 > 200
    res = run_grid(p, "sgd", 2, [1.0, 0.05], [0, 0], seed=0, stop=stop, device="cpu")
    assert list(res.status) == [CONVERGED, TIMEOUT]
    assert res.steps_run[1] == 200


# ------------------------------------------------------------- baselines vs torch.optim


def test_sngm_normalizes_each_run_on_its_own():
    # a run's step length is eta |u|: with beta = 0 every step has length exactly eta
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, 3, 10)
    etas = np.array([0.01, 0.03])
    x, _ = trajectory(A, x_star, x0, batches, etas, 0.0, "sngm")
    steps = np.linalg.norm(np.diff(x.numpy(), axis=0), axis=1)  # (T, R)
    np.testing.assert_allclose(steps, np.broadcast_to(etas, steps.shape), rtol=1e-12)


@pytest.mark.parametrize("B", [1, 3, N])
def test_mass_equals_optim_mass(B):
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, B, T)
    x, y = trajectory(A, x_star, x0, batches, ETAS, BETAS, "mass", extra={"eta2": ETA2S})

    hyper = dict(lr=ETAS, gamma=BETAS, eta2=ETA2S)
    # the parameters hold the gradient point u (the engine's y); the state holds w (x)
    ref_u = torch_reference(A, x_star, x0, batches, MaSS, **hyper)
    read_w = lambda opt, p: opt.state[p]["w"].clone()  # noqa: E731
    ref_w = torch_reference(A, x_star, x0, batches, MaSS, read=read_w, **hyper)
    assert_close_traj(y, ref_u)
    assert_close_traj(x, ref_w)
    assert np.abs(ref_u - ref_w).max() > 1e-3  # the two sequences differ
    moved(ref_w)


def test_mass_without_compensation_is_nesterov():
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, 3, T)
    xm, ym = trajectory(A, x_star, x0, batches, ETAS, BETAS, "mass", extra={"eta2": 0.0})
    xn, yn = trajectory(A, x_star, x0, batches, ETAS, BETAS, "nag")
    assert_close_traj(xm, xn.numpy(), tol=1e-12)
    assert_close_traj(ym, yn.numpy(), tol=1e-12)


@pytest.mark.parametrize("method", BASELINES)
def test_a_batch_per_run_equals_one_run_at_a_time(method):
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, 3, T, runs=len(ETAS))  # (T, R, B)
    beta = 0.0 if method == "asgd" else BETAS
    extra = {"sngm": {}, "asgd": {"kappa": KAPPAS, "xi": XIS}, "mass": {"eta2": ETA2S}}[method]
    x, _ = trajectory(A, x_star, x0, batches, ETAS, beta, method, extra=extra)
    for r in range(len(ETAS)):
        one = {k: v[r] for k, v in extra.items()}
        xr, _ = trajectory(
            A,
            x_star,
            x0,
            batches[:, r],
            ETAS[r],
            0.0 if method == "asgd" else BETAS[r],
            method,
            extra=one,
        )
        torch.testing.assert_close(x[:, :, r], xr[:, :, 0], rtol=0, atol=1e-12)


# -------------------------------------------------------------- baselines in run_grid


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("B", [1, 4, 40])
def test_run_grid_reproduces_trajectory_loss_baselines(method, B):
    p = gaussian_system(**GRID_PROBLEM)
    L = p.eigvals[-1]
    eta = np.array([0.1, 0.25, 0.5, 0.4]) / L
    beta = np.zeros(4) if method == "asgd" else np.array([0.5, 0.7, 0.2, 0.9])
    extra = {
        "sngm": {},
        "asgd": {"kappa": [20.0, 50.0, 10.0, 30.0], "xi": [2.0, 5.0, 1.0, 3.0]},
        "mass": {"eta2": [0.0, 0.05 / L, 0.02 / L, -0.01 / L]},
    }[method]
    if method == "sngm":
        eta = eta * np.linalg.norm(p.x_star) * L / 10  # a step length, not a 1/L step
    res = run_grid(p, method, B, eta, beta, seed=7, stop=NO_STOP, device="cpu", extra=extra)
    batches = MiniBatches(p.n, B, 7).take(NO_STOP.t_max)
    x0 = np.zeros(p.d)
    xs, _ = trajectory(p.A, p.x_star, x0, batches, eta, beta, method, extra=extra)
    want = relative_loss(p.A, p.x_star, xs.numpy(), x0)
    for r, (steps, loss) in enumerate(res.curves):
        np.testing.assert_allclose(loss, want[steps, r], rtol=1e-9, atol=1e-300)


def test_run_grid_baseline_reaches_eps_and_records_it():
    p = gaussian_system(**GRID_PROBLEM)
    L = p.eigvals[-1]
    stop = StopRule(eps=1e-6, t_max=20000, check_every=5)
    res = run_grid(
        p, "mass", p.n, [0.5 / L], [0.5], seed=0, stop=stop, device="cpu", extra={"eta2": 0.0}
    )
    assert res.status[0] == "converged" and np.isfinite(res.iters_to_eps[0])


@pytest.mark.parametrize(
    "method,beta,extra,match",
    [
        ("asgd", [0.5], {"kappa": [10.0], "xi": [1.0]}, "beta = 0"),
        ("asgd", [0.0], {"kappa": [10.0]}, "needs"),
        ("asgd", [0.0], {"kappa": [1.0], "xi": [10.0]}, "xi <= kappa"),
        ("asgd", [0.0], {"kappa": [-1.0], "xi": [1.0]}, "> 0"),
        ("mass", [0.5], {}, "needs"),
        ("mass", [0.5], {"eta2": [np.nan]}, "finite"),
        ("sngm", [0.5], {"eta2": [0.1]}, "takes"),
        ("hb", [0.5], {"eta2": [0.1]}, "takes"),
    ],
)
def test_bad_baseline_parameters_are_rejected(method, beta, extra, match):
    A, x_star, x0 = random_system()
    p = from_matrix(A, x_star)
    batches = numpy_batches(N, 2, 3)
    with pytest.raises(ValueError, match=match):
        trajectory(A, x_star, x0, batches, [0.1], beta, method, extra=extra)
    with pytest.raises(ValueError, match=match):
        run_grid(p, method, 2, [0.1], beta, seed=0, device="cpu", extra=extra)


def test_method_lists():
    assert ALL_METHODS == METHODS + BASELINES
    assert set(BASELINES) == {"sngm", "asgd", "mass"}
