"""The compiled small-batch chunk against the engine's PyTorch step, and where it is used.

``kernels.classic_checks`` must do the arithmetic of ``engine._step`` (which
tests/simulate/test_engine.py holds to ``torch.optim.SGD``) in another order of summation:
equal to rounding. ``run_grid`` takes it at small batches on the CPU; there the iteration
counts and statuses must be the PyTorch path's, and the loss curves equal to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.simulate import engine
from minibatch_momentum.simulate.engine import StopRule, run_grid
from minibatch_momentum.simulate.kernels import classic_checks


def classic_steps(E, V, U, W, block, neg_eta, beta, method):  # one check, at the end
    every, lam = max(len(block), 1), np.ones(E.shape[0], E.dtype)
    classic_checks(E, V, U, W, block, neg_eta, beta, method, every, lam, 1.0, 0.0, np.inf)


def _state(d=7, R=5, m=30, symmetric=True, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(m, d, generator=g, dtype=dtype) / d**0.5
    U = W if symmetric else torch.randn(m, d, generator=g, dtype=dtype) / d**0.5
    E = torch.randn(d, R, generator=g, dtype=dtype)
    V = torch.randn(d, R, generator=g, dtype=dtype) * 0.1
    neg_eta = -torch.linspace(0.05, 0.3, R, dtype=dtype)
    beta = torch.linspace(0.0, 0.9, R, dtype=dtype)
    return U, W, E, V, neg_eta, beta


class _Rows:  # the two attributes of engine._Tables that _step reads
    def __init__(self, U, W):
        self.U, self.V, self.project = U, W, False

    def rows(self, idx):
        return self.U.index_select(0, idx), self.V.index_select(0, idx)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("method", ["sgd", "hb", "nag"])
def test_classic_steps_equal_the_torch_step(method, B, symmetric):
    U, W, E, V, neg_eta, beta = _state(symmetric=symmetric)
    if method == "sgd":
        beta = torch.zeros_like(beta)
    block = torch.randint(0, U.shape[0], (200, B), generator=torch.Generator().manual_seed(1))
    E_t, V_t = E.clone(), V.clone()
    gamma = beta if method == "nag" else None
    for idx in block:
        engine._step(_Rows(U, W), E_t, V_t, idx, neg_eta, beta, gamma)
    E_c, V_c = E.numpy().copy(), V.numpy().copy()
    for a, b in [(0, 1), (1, 1), (1, 8), (8, 57), (57, 200)]:  # chunks continue each other
        part = block[a:b]
        classic_steps(
            E_c, V_c, U.numpy(), W.numpy(), part.numpy(), neg_eta.numpy(), beta.numpy(), method
        )
    scale = np.abs(E_t.numpy()).max()
    assert scale > 1e-3  # still moving: the comparison is not of two zeros
    np.testing.assert_allclose(E_c, E_t.numpy(), rtol=0, atol=1e-12 * scale)
    if method != "sgd":  # plain SGD's V is scratch
        np.testing.assert_allclose(V_c, V_t.numpy(), rtol=0, atol=1e-12 * np.abs(V_t.numpy()).max())


@pytest.mark.parametrize("B", [1, 2])
def test_classic_steps_in_float32(B):
    U, W, E, V, neg_eta, beta = _state(dtype=torch.float32)
    block = torch.randint(0, U.shape[0], (50, B), generator=torch.Generator().manual_seed(2))
    E_t, V_t = E.clone(), V.clone()
    for idx in block:
        engine._step(_Rows(U, W), E_t, V_t, idx, neg_eta, beta, None)
    E_c, V_c = E.numpy().copy(), V.numpy().copy()
    classic_steps(
        E_c, V_c, U.numpy(), W.numpy(), block.numpy(), neg_eta.numpy(), beta.numpy(), "hb"
    )
    assert E_c.dtype == np.float32
    np.testing.assert_allclose(E_c, E_t.numpy(), rtol=0, atol=1e-5 * np.abs(E_t.numpy()).max())


@pytest.mark.parametrize("B", [1, 3])
def test_classic_checks_stop_at_the_first_check_where_a_run_stops(B):
    U, W, E, V, neg_eta, beta = _state(seed=4)
    lam = np.linspace(0.5, 2.0, E.shape[0])
    block = torch.randint(0, U.shape[0], (95, B), generator=torch.Generator().manual_seed(3))
    E0, V0 = E.numpy().copy(), V.numpy().copy()

    def losses_by_steps(eps, blowup):  # the steps and the check, as the PyTorch path does
        E_s, V_s, out = E0.copy(), V0.copy(), []
        for a in range(0, 95, 10):
            args = (U.numpy(), W.numpy(), block[a : a + 10].numpy(), neg_eta.numpy())
            classic_steps(E_s, V_s, *args, beta.numpy(), "hb")
            rel = 0.25 * (torch.from_numpy(lam) @ torch.from_numpy(E_s * E_s)).numpy()
            out.append(rel)
            if np.any(rel <= eps) or not np.all(rel <= blowup):
                break
        return np.array(out), E_s

    want, _ = losses_by_steps(1e-300, np.inf)
    assert len(want) == 10  # nine checks of 10 steps, a last one of 5
    mid = float(np.median(want[4]))
    for eps, blowup in [(1e-300, np.inf), (mid, np.inf), (1e-300, mid)]:
        E_c, V_c = E0.copy(), V0.copy()
        got = classic_checks(
            E_c, V_c, U.numpy(), W.numpy(), block.numpy(), neg_eta.numpy(), beta.numpy(), "hb",
            10, lam, 0.25, eps, blowup,
        )  # fmt: skip
        ref, E_ref = losses_by_steps(eps, blowup)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-13)
        np.testing.assert_allclose(E_c, E_ref, rtol=0, atol=1e-14 * np.abs(E_ref).max())


@pytest.mark.parametrize(
    "B, sampler, device, compiled",
    [
        (1, "without_replacement", "cpu", True),
        (engine.COMPILED_MAX_BATCH, "kaczmarz", "cpu", True),
        (engine.COMPILED_MAX_BATCH + 1, "without_replacement", "cpu", False),
        (1, "kaczmarz_block", "cpu", False),  # a projection, not a sum of rank-one terms
        (1, "without_replacement", "meta", False),  # not the CPU
    ],
)
def test_where_the_compiled_chunk_is_used(B, sampler, device, compiled):
    from minibatch_momentum.sampling.samplers import sampling

    p = gaussian_system(d=6, n=40, kappa=20.0, seed=3)
    tables = engine._Tables(sampling(p, sampler), torch.float64, "cpu")
    assert engine._use_compiled(B, tables, torch.device(device)) is compiled


@pytest.mark.parametrize("method", ["sgd", "hb", "nag"])
@pytest.mark.parametrize("B", [1, 2, 4])
def test_run_grid_compiled_matches_the_torch_path(method, B, monkeypatch):
    p = gaussian_system(d=12, n=200, kappa=50.0, seed=5)
    L = p.eigvals[-1]
    eta = np.repeat([0.05, 0.2, 0.5, 1.5, 3.0], 2) / L  # 3/L at B = 1 diverges
    beta = np.zeros(10) if method == "sgd" else np.tile([0.5, 0.9], 5)
    stop = StopRule(eps=1e-6, t_max=3000, check_every=10, censor_factor=2.0)

    def grid():
        return run_grid(p, method, B, eta, beta, seed=3, stop=stop, device="cpu")

    compiled = grid()
    monkeypatch.setattr(engine, "COMPILED_MAX_BATCH", 0)
    plain = grid()
    np.testing.assert_array_equal(compiled.iters_to_eps, plain.iters_to_eps)
    np.testing.assert_array_equal(compiled.status, plain.status)
    np.testing.assert_array_equal(compiled.steps_run, plain.steps_run)
    assert set(plain.status) >= {"converged"}
    for (tc, lc), (tp, lp) in zip(compiled.curves, plain.curves, strict=True):
        np.testing.assert_array_equal(tc, tp)
        finite = np.isfinite(lp) & (lp < 1e10)
        np.testing.assert_allclose(lc[finite], lp[finite], rtol=1e-9)


@pytest.mark.parametrize("blowup", [1e8, np.inf])  # inf: only a non-finite loss diverges
def test_run_grid_compiled_stops_where_the_bookkeeping_does(blowup, monkeypatch):
    # A censoring horizon that is no multiple of check_every (1.37 t), leaders that are a
    # subset, diverging runs, and calls of three checks with their batches put back.
    p = gaussian_system(d=12, n=200, kappa=50.0, seed=5)
    eta = np.array([0.1, 0.3, 5.0, 0.05, 0.2, 40.0]) / p.eigvals[-1]
    beta = np.array([0.5, 0.8, 0.5, 0.9, 0.3, 0.0])
    leaders = np.array([False, True, True, True, False, True])
    stop = StopRule(eps=1e-5, t_max=5000, check_every=7, censor_factor=1.37, blowup=blowup)

    def grid():
        return run_grid(p, "hb", 1, eta, beta, seed=4, stop=stop, device="cpu", leaders=leaders)

    monkeypatch.setattr(engine, "COMPILED_STEPS", 21)
    compiled = grid()
    monkeypatch.setattr(engine, "COMPILED_MAX_BATCH", 0)
    plain = grid()
    assert {"converged", "diverged", "censored"} <= set(plain.status)
    assert plain.steps_run.max() % 7  # the horizon falls between two checks
    for field in ("iters_to_eps", "status", "steps_run", "diverged_at"):
        np.testing.assert_array_equal(getattr(compiled, field), getattr(plain, field))
    for (tc, lc), (tp, lp) in zip(compiled.curves, plain.curves, strict=True):
        np.testing.assert_array_equal(tc, tp)
        finite = np.isfinite(lp) & (lp < 1e10)
        np.testing.assert_allclose(lc[finite], lp[finite], rtol=1e-9)


def test_classic_checks_compare_float32_losses_with_float32_thresholds():
    # NumPy compares a float32 loss with float32(eps), which for eps = 1e-3 lies above
    # eps: a loss equal to float32(1e-3) stops a run in the bookkeeping, so here too.
    E = np.ones((1, 2), np.float32)
    U, zero = np.ones((3, 1), np.float32), np.zeros(2, np.float32)
    lam = np.full(1, 1e-3, np.float32)  # run 0's loss: float32(1e-3); run 1's too
    block = np.zeros((20, 1), np.int64)  # eta = 0: the losses stay
    rel = classic_checks(E, np.zeros_like(E), U, U, block, zero, zero, "hb", 10, lam, 1.0, 1e-3, 1)
    assert rel[:, 0] <= 1e-3  # what run_grid's bookkeeping sees: this run stops
    assert len(rel) == 1


@pytest.mark.parametrize("per_call", [4096, 30])  # one call, or many with batches put back
def test_run_grid_compiled_to_t_max_matches_the_torch_path(per_call, monkeypatch):
    # t_max not a multiple of check_every: the last check comes 3 steps after the one before.
    p = gaussian_system(d=12, n=200, kappa=50.0, seed=5)
    eta, beta = np.array([0.02, 0.05]) / p.eigvals[-1], np.array([0.5, 0.8])
    stop = StopRule(eps=1e-30, t_max=1003, check_every=10, curve_points=30)

    def grid():
        return run_grid(p, "nag", 1, eta, beta, seed=2, stop=stop, device="cpu")

    calls = []
    checks = engine._Classic.checks
    monkeypatch.setattr(engine._Classic, "checks", lambda *a: calls.append(1) or checks(*a))
    monkeypatch.setattr(engine, "COMPILED_STEPS", per_call)
    compiled = grid()
    assert len(calls) == -(-1003 // per_call)  # the compiled path, in calls of per_call steps
    monkeypatch.setattr(engine, "COMPILED_MAX_BATCH", 0)
    plain = grid()
    np.testing.assert_array_equal(compiled.steps_run, [1003, 1003])
    np.testing.assert_array_equal(compiled.status, plain.status)
    for (tc, lc), (tp, lp) in zip(compiled.curves, plain.curves, strict=True):
        np.testing.assert_array_equal(tc, tp)
        assert tc[-1] == 1003
        np.testing.assert_allclose(lc, lp, rtol=1e-11)
