"""Kaczmarz, block Kaczmarz and coordinate descent in the batched engine, against their
textbook single-step definitions written out by hand here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.problems.system import from_matrix, from_psd
from minibatch_momentum.sampling.batches import MiniBatches
from minibatch_momentum.sampling.samplers import problem_kind, sampling
from minibatch_momentum.simulate.engine import trajectory


def _uneven_rows(seed=0, n=50, d=7):
    """Rows whose norms differ by two orders of magnitude, so importance matters."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)) * np.geomspace(0.1, 10, n)[:, None]
    return from_matrix(A, rng.standard_normal(d))


def test_kaczmarz_b1_no_momentum_is_the_projection_step():
    p = _uneven_rows()
    draws = sampling(p, "kaczmarz", eigenbasis=False)
    batches = draws.stream(1, seed=3).take(40)
    eta = 1.0 / np.trace(p.H)  # the textbook step in the sampler's units
    x0 = np.zeros(p.d)
    x, _ = trajectory(p.A, p.x_star, x0, batches, eta, 0.0, "sgd", tables=draws)
    ref = x0.copy()
    b = p.b
    for t, (i,) in enumerate(batches.tolist()):
        a = p.A[i]
        ref = ref - (a @ ref - b[i]) / (a @ a) * a
        np.testing.assert_allclose(x[t + 1, :, 0].numpy(), ref, rtol=1e-12, atol=1e-12)
        assert abs(p.A[i] @ x[t + 1, :, 0].numpy() - b[i]) < 1e-10  # on the row's hyperplane


def test_kaczmarz_draws_rows_in_proportion_to_their_squared_norms():
    p = _uneven_rows(n=20)
    draws = sampling(p, "kaczmarz")
    counts = np.bincount(draws.stream(4, seed=0).take(25_000).flatten().numpy(), minlength=p.n)
    total = counts.sum()
    norms2 = np.einsum("ij,ij->i", p.A, p.A)
    want = norms2 / norms2.sum()
    sd = np.sqrt(total * want * (1 - want))
    assert np.all(np.abs(counts - total * want) < 5 * sd + 1)
    np.testing.assert_allclose(draws.p, want, rtol=1e-12)


def test_kaczmarz_table_is_unbiased_for_h():
    p = _uneven_rows()
    for eigenbasis, H in ((False, p.H), (True, np.diag(p.eigvals))):
        s = sampling(p, "kaczmarz", eigenbasis=eigenbasis)
        mean = np.einsum("i,ij,ik->jk", s.p, s.U, s.V)
        np.testing.assert_allclose(mean, H, atol=1e-10 * np.abs(H).max())


@pytest.mark.parametrize("B", [1, 2, 4])
def test_block_kaczmarz_iterate_lies_on_the_sampled_rows_solution_set(B):
    p = _uneven_rows(n=30, d=9)
    draws = sampling(p, "kaczmarz_block", eigenbasis=False)
    batches = draws.stream(B, seed=5).take(25)
    x0 = np.random.default_rng(1).standard_normal(p.d)
    x, _ = trajectory(p.A, p.x_star, x0, batches, 1.0, 0.0, "sgd", tables=draws)
    prev = x0
    for t, idx in enumerate(batches.tolist()):
        xt = x[t + 1, :, 0].numpy()
        As = p.A[idx]
        np.testing.assert_allclose(As @ xt, p.b[idx], atol=1e-9 * np.abs(p.b).max())
        # ... and it is the point of that set closest to the previous iterate.
        step = xt - prev
        _, _, Vt = np.linalg.svd(As)
        null = Vt[np.linalg.matrix_rank(As) :]
        np.testing.assert_allclose(null @ step, 0, atol=1e-9)
        prev = xt


def test_block_kaczmarz_with_a_full_rank_block_solves_in_one_step():
    p = gaussian_system(d=5, n=40, kappa=10, seed=2)
    draws = sampling(p, "kaczmarz_block", eigenbasis=False)
    batches = draws.stream(10, seed=0).take(1)
    x, _ = trajectory(p.A, p.x_star, np.zeros(p.d), batches, 1.0, 0.0, "hb", tables=draws)
    np.testing.assert_allclose(x[1, :, 0].numpy(), p.x_star, atol=1e-10)


def _psd_problem(seed=4, d=8):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((d, d)) * np.geomspace(0.2, 5, d)
    return from_psd(G @ G.T + 0.1 * np.eye(d), rng.standard_normal(d))


def test_coordinate_descent_b1_changes_one_coordinate_and_matches_a_reference_loop():
    p = _psd_problem()
    M, c = p.A, p.b
    draws = sampling(p, "coordinate", eigenbasis=False)
    batches = draws.stream(1, seed=9).take(60)
    x0 = np.zeros(p.d)
    x, _ = trajectory(p.A, p.x_star, x0, batches, 1.0 / np.trace(M), 0.0, "sgd", tables=draws)
    ref = x0.copy()
    for t, (j,) in enumerate(batches.tolist()):
        ref[j] -= (M[j] @ ref - c[j]) / M[j, j]  # exact minimization along coordinate j
        xt = x[t + 1, :, 0].numpy()
        prev = x[t, :, 0].numpy()
        assert set(np.flatnonzero(np.abs(xt - prev) > 0)) <= {j}
        np.testing.assert_allclose(xt, ref, rtol=1e-12, atol=1e-12)


def test_coordinate_draws_are_proportional_to_the_diagonal_and_unbiased():
    p = _psd_problem()
    draws = sampling(p, "coordinate")
    np.testing.assert_allclose(draws.p, np.diag(p.A) / np.trace(p.A), rtol=1e-12)
    mean = np.einsum("i,ij,ik->jk", draws.p, draws.U, draws.V)
    np.testing.assert_allclose(mean, np.diag(p.eigvals), atol=1e-10 * p.eigvals.max())


def test_coordinate_minibatch_step_moves_only_the_sampled_coordinates():
    p = _psd_problem()
    draws = sampling(p, "coordinate", eigenbasis=False)
    batches = draws.stream(3, seed=1).take(2)
    x, _ = trajectory(
        p.A, p.x_star, np.zeros(p.d), batches, 0.5 / p.eigvals[-1], 0.0, "sgd", tables=draws
    )
    moved = np.flatnonzero(np.abs(x[1, :, 0].numpy()) > 0)
    assert set(moved) <= set(batches[0].tolist())


def test_samplers_refuse_the_wrong_problem_kind():
    rows = gaussian_system(d=4, n=20, kappa=5, seed=0)
    psd = from_psd(rows.H, rows.x_star)
    with pytest.raises(ValueError, match="psd"):
        sampling(rows, "coordinate")
    with pytest.raises(ValueError, match="rows"):
        sampling(psd, "kaczmarz")
    with pytest.raises(ValueError, match="sampler"):
        problem_kind("sideways")


def test_weighted_stream_is_deterministic_and_needs_replacement():
    w = np.array([1.0, 0.0, 3.0, 6.0])
    a = MiniBatches(4, 3, seed=2, replace=True, weights=w).take(300)
    s = MiniBatches(4, 3, seed=2, replace=True, weights=w)
    b = torch.cat([s.take(7), s.take(293)])
    assert torch.equal(a, b)
    assert not (a == 1).any()  # a zero weight is never drawn
    with pytest.raises(ValueError, match="replace"):
        MiniBatches(4, 2, seed=0, replace=False, weights=w)
    with pytest.raises(ValueError, match="non-negative"):
        MiniBatches(4, 2, seed=0, replace=True, weights=-w)
