"""The engine's baselines (SNGM, ASGD, MaSS) against their torch.optim classes in optim.py.

Each engine trajectory is compared with the optimizer fed the same mini-batches (one
parameter per run, one param group per configuration, gradients from autograd of
``((A_S w - b_S)^2).mean() / 2``), to 1e-10 in float64. ``run_grid`` (eigenbasis, shared
stream, runs dropping out) must reproduce the relative loss of ``trajectory``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import (
    BETAS,
    ETAS,
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
from minibatch_momentum.problems.system import from_matrix
from minibatch_momentum.sampling.batches import MiniBatches
from minibatch_momentum.simulate.engine import (
    ALL_METHODS,
    BASELINES,
    METHODS,
    StopRule,
    run_grid,
    trajectory,
)

KAPPAS = np.array([50.0, 20.0, 100.0, 10.0])
XIS = np.array([5.0, 2.0, 10.0, 1.0])
ETA2S = np.array([0.0, 0.01, -0.005, 0.02])


def moved(ref):
    assert np.linalg.norm(ref[-1] - ref[0], axis=0).min() > 0.05


# --------------------------------------------------------------------------- vs torch.optim


@pytest.mark.parametrize("B", [1, 3, N])
def test_sngm_equals_optim_sngm(B):
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, B, T)
    x, y = trajectory(A, x_star, x0, batches, ETAS, BETAS, "sngm")
    ref = torch_reference(A, x_star, x0, batches, SNGM, lr=ETAS, momentum=BETAS)
    assert_close_traj(x, ref)
    assert torch.equal(x, y)
    moved(ref)


def test_sngm_normalizes_each_run_on_its_own():
    # a run's step length is eta |u|: with beta = 0 every step has length exactly eta
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, 3, 10)
    etas = np.array([0.01, 0.03])
    x, _ = trajectory(A, x_star, x0, batches, etas, 0.0, "sngm")
    steps = np.linalg.norm(np.diff(x.numpy(), axis=0), axis=1)  # (T, R)
    np.testing.assert_allclose(steps, np.broadcast_to(etas, steps.shape), rtol=1e-12)


@pytest.mark.parametrize("B", [1, 3, N])
def test_asgd_equals_optim_accsgd(B):
    A, x_star, x0 = random_system()
    batches = numpy_batches(N, B, T)
    extra = {"kappa": KAPPAS, "xi": XIS}
    x, y = trajectory(A, x_star, x0, batches, ETAS, 0.0, "asgd", extra=extra, small_const=0.7)
    ref = torch_reference(A, x_star, x0, batches, AccSGD, lr=ETAS, kappa=KAPPAS, xi=XIS)
    assert_close_traj(x, ref)
    assert torch.equal(x, y)
    moved(ref)


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


# --------------------------------------------------------------------------- run_grid

GRID_PROBLEM = dict(d=6, n=40, kappa=20.0, profile="geometric", seed=3)
NO_STOP = StopRule(eps=1e-30, t_max=60, check_every=3, censor_factor=2.0)


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("B", [1, 4, 40])
def test_run_grid_reproduces_trajectory_loss(method, B):
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
