"""The per-mode recursion's fast paths against the plain ones: the stacked step against
the recursion as written (bit for bit), the counts checked in chunks against a check
after every step, a grid's early stop against its uncensored minimum, the secular
function's joint Horner scheme and the closure's scaled coupling against their
formulas, the knees that reuse the T*(B) table's rates against fresh ones, and the
survivors of ``keep`` in contiguous arrays."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import method_grids
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.theory import exact
from minibatch_momentum.theory.closure import _RootState, _scaled
from minibatch_momentum.theory.common import BLOWUP, lookahead_weights
from minibatch_momentum.theory.gaussian import Gaussian, _Secular, mode_blocks
from minibatch_momentum.theory.sampler import closure_model


@pytest.fixture(scope="module")
def problem():
    return gaussian_system(d=8, n=400, kappa=50.0, seed=2)


def written_curve(lam, w, method, c, eta, beta, steps, Q=None):
    """``E f`` of the recursion as the docstring writes it, one operation at a time in the
    order written, on ``(d, 1)`` arrays (the shapes, hence the BLAS calls, of one
    configuration). Noise: Gaussian rows, or ``(Q - Lambda^2) x`` for the closure."""
    g = beta if method == "nag" else 0.0
    lam = lam[:, None]
    a = 1 + beta - eta * (1 + g) * lam
    b = -beta + eta * g * lam
    w1, w2, w3 = lookahead_weights(g)
    p = np.asarray(w, float)[:, None].copy()
    q, s = p.copy(), p.copy()
    loss = [(0.5 * lam[:, 0] @ p)[0]]
    for _ in range(steps):
        x = w1 * p
        x += w2 * q
        x += w3 * s
        new = a * a * p
        new += 2 * a * b * q
        new += b * b * s
        if Q is None:
            noise = lam * lam * x
            noise += lam * (lam[:, 0] @ x)
        else:
            noise = Q @ x
            noise -= lam * lam * x
        noise *= c * eta**2
        new += noise
        p, q, s = new, a * p + b * q, p
        loss.append((0.5 * lam[:, 0] @ p)[0])
    return np.array(loss)


@pytest.mark.parametrize("method", ["sgd", "hb", "nag"])
@pytest.mark.parametrize("closure", [False, True])
def test_stacked_step_is_the_written_recursion_to_the_last_bit(problem, method, closure):
    lam, w = problem.eigvals, exact.initial_weights(problem)
    model = closure_model(problem, "kaczmarz") if closure else Gaussian(lam, n=problem.n)
    beta = 0.0 if method == "sgd" else 0.8
    eta = 0.3 / lam.max()
    curve = model.curve(w, method, 4, eta, beta, 300).loss
    Q = np.asarray(model.Q) if closure else None
    ref = written_curve(lam, w, method, model.noise_factor(4), eta, beta, 300, Q)
    np.testing.assert_array_equal(curve, ref)


def counts_checked_every_step(curves, eps, t_max, censor_factor=None, groups=None, settle=None):
    """The counts of ``_steps_to_eps`` from whole curves ``(T + 1, R)``, checked after
    every step: hits, blow-ups, each group's censoring horizon from its first hit."""
    R = curves.shape[1]
    out = np.full(R, np.inf)
    group = np.zeros(R, int) if groups is None else np.asarray(groups)
    horizon = np.full(group.max() + 1, t_max)
    alive = np.ones(R, bool)
    for t in range(1, t_max + 1):
        v = curves[t]
        hit = alive & (v <= eps * curves[0])
        out[hit] = t
        if censor_factor is not None:
            for g in np.unique(group[hit]):
                if horizon[g] == t_max:
                    end = int(np.ceil(censor_factor * t))
                    if settle is not None:
                        end = min(end, -(-t // settle) * settle)
                    horizon[g] = min(t_max, end)
        alive &= ~hit & (v < BLOWUP * curves[0]) & (horizon[group] > t)
        if not alive.any():
            break
    return out


@pytest.mark.parametrize("kw", [{}, {"censor_factor": 1.5}, {"censor_factor": 2.0, "settle": 10}])
def test_counts_checked_in_chunks_are_those_of_a_check_after_every_step(problem, kw):
    lam, w = problem.eigvals, exact.initial_weights(problem)
    model = Gaussian(lam, n=problem.n, replace=False)
    rng = np.random.default_rng(3)
    R = 40
    method = np.array(["sgd", "hb", "nag", "hb"] * 10, dtype=object)
    beta = np.where(method == "sgd", 0.0, rng.uniform(0.0, 0.95, R))
    eta = rng.uniform(0.02, 3.5, R) / lam.max()  # some diverge, some blow up at once
    B = rng.choice([1.0, 2.0, 16.0], R)
    groups = np.arange(R) % 5
    t_max = 3000  # some never reach eps
    counts = model.iterations_many(w, method, B, eta, beta, 1e-4, t_max=t_max, groups=groups, **kw)
    curves = np.column_stack(
        [model.curve(w, method[r], B[r], eta[r], beta[r], t_max).loss for r in range(R)]
    )
    with np.errstate(over="ignore", invalid="ignore"):
        ref = counts_checked_every_step(curves, 1e-4, t_max, groups=groups, **kw)
    np.testing.assert_array_equal(counts, ref)
    assert np.isfinite(counts).any() and np.isinf(counts).any()


def test_a_grid_stopped_at_its_first_rounded_count_keeps_its_minimum(problem):
    grid = dict(eta_min=0.02, eta_max=3.0, num_eta=7, one_minus_beta_max=0.5, num_beta=4)
    model, w, grids = method_grids(problem, [1, 2, 16], **grid)
    lines = []
    table = exact.grid_table(model, w, grids, 1e-4, check_every=10, progress=lines.append)
    keys, group = exact._grid_configs(model, grids)
    T = model.iterations_many(  # every point's count (no censoring), rounded up
        w,
        np.array([keys[g][0] for g in group], dtype=object),
        np.array([keys[g][1] for g in group], float),
        np.concatenate([k[2] for k in keys]),
        np.concatenate([k[3] for k in keys]),
        1e-4,
    )
    T = np.ceil(T / 10) * 10
    for g, (method, B, eta, beta) in enumerate(keys):
        k = int(np.argmin(T[group == g]))
        row = table.iloc[g]
        assert (row["method"], row["batch_size"]) == (method, B)
        assert (row["eta"], row["beta"], row["T_curve"]) == (eta[k], beta[k], T[group == g][k])
    assert sum(" done at step " in line for line in lines) == len(keys)  # progress per B


def test_secular_horner_rows_are_each_polynomial_to_the_last_bit():
    rng = np.random.default_rng(0)
    lam = np.geomspace(1e-3, 1.0, 25)
    for method, eta, beta in [("sgd", 1.2, 0.0), ("hb", 0.5, 0.9), ("nag", 0.05, 0.99)]:
        blk = mode_blocks(lam, method, 0.05, eta, beta)
        sec = _Secular(blk)
        s_max = float(np.min(blk.s_mean))
        for s in np.concatenate([s_max * rng.uniform(-3, 1.2, 30), [0.0, s_max]]):
            s = float(s)
            Q = ((-s + blk.q2) * s + blk.q1) * s + blk.q0
            dQ = (3 * s - 2 * blk.q2) * s - blk.q1
            d2Q = 2 * blk.q2 - 6 * s
            G = (blk.g2 * s + blk.g1) * s + blk.g0
            feasible = Q.min() > 0 and dQ.min() > 0 and d2Q.min() > 0
            ref = 1.0 - float((blk.kap * G / Q).sum()) if feasible else -1.0
            assert sec(s) == ref


def test_scaled_coupling_is_the_product_to_the_last_bit():
    rng = np.random.default_rng(1)
    S, g = rng.random((50, 50)), rng.random(50)
    state = _RootState()
    for _ in range(2):  # the buffer is reused
        np.testing.assert_array_equal(_scaled(S, g, state), S * g[:, None] * g[None, :])
        g = rng.random(50)


def test_knees_reuse_the_tstar_tables_rates(problem):
    model = Gaussian(problem.eigvals, n=problem.n, replace=False)
    methods = ["sgd", "hb"]
    tstar = exact.batch_scaling_table(
        model, exact.initial_weights(problem), methods, [1, 400], 1e-3
    )
    assert exact.knees(model, methods, tstar) == exact.knees(model, methods)


def test_keep_drops_configurations_and_leaves_the_arrays_contiguous(problem):
    lam, w = problem.eigvals, exact.initial_weights(problem)
    model = Gaussian(lam, n=problem.n)
    eta, beta = np.geomspace(0.05, 1.0, 7) / lam.max(), np.full(7, 0.6)
    rec = model._recursion(w, "nag", model.noise_factor(4), eta, beta)
    for _ in range(5):
        rec.step()
    mask = np.array([1, 0, 1, 1, 0, 0, 1], bool)
    before = rec.p[:, mask].copy()
    rec.keep(mask)
    np.testing.assert_array_equal(rec.p, before)
    assert all(a.flags.c_contiguous for a in (rec.p, rec.q, rec.s, rec._cp, rec._cq, rec._cn))
    rec.step()  # and the survivors step on as they would have
    ref = model._recursion(w, "nag", model.noise_factor(4), eta[mask], beta[mask])
    for _ in range(6):
        ref.step()
    np.testing.assert_allclose(rec.loss(), ref.loss(), rtol=1e-14)
