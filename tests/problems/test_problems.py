"""Problems: prescribed spectra, the interpolation condition, x* in the row space, metadata.

References are independent computations (scipy.linalg.eigvalsh / lstsq / matrix_rank on
the raw matrix), never the Problem's own cached eigendecomposition.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

from minibatch_momentum.problems.families import make_problem
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.problems.system import (
    Problem,
    from_matrix,
    load_problem,
    metadata_path,
    save_problem,
    spectrum,
)

CASES = [
    # (d, n, kappa, profile)
    (16, 64, 1e4, "geometric"),
    (24, 24, 1e3, "geometric"),  # square: Q is a full orthogonal matrix
    (16, 64, 1e4, "power"),
    (9, 500, 1e2, "power"),
]


# --------------------------------------------------------------------------- spectrum


@pytest.mark.parametrize("d,kappa", [(2, 10.0), (7, 1e4), (64, 4096.0)])
def test_geometric_spectrum_is_log_uniform_from_L_over_kappa_to_L(d, kappa):
    lam = spectrum(d, kappa, "geometric", L=2.5)
    assert lam.shape == (d,)
    assert np.all(np.diff(lam) > 0)
    np.testing.assert_allclose(lam[[0, -1]], [2.5 / kappa, 2.5], rtol=1e-13)
    # equal ratios between neighbours: kappa^(1/(d-1))
    np.testing.assert_allclose(lam[1:] / lam[:-1], kappa ** (1 / (d - 1)), rtol=1e-12)


@pytest.mark.parametrize("d,kappa", [(2, 10.0), (7, 1e4), (64, 4096.0)])
def test_power_spectrum_is_a_power_law_in_the_rank(d, kappa):
    lam = spectrum(d, kappa, "power")
    assert np.all(np.diff(lam) > 0)
    np.testing.assert_allclose(lam[[0, -1]], [1 / kappa, 1.0], rtol=1e-12)
    # descending order: lambda_i = i^(-alpha), so log lambda is linear in log i
    desc = lam[::-1]
    i = np.arange(1, d + 1)
    slope = np.polyfit(np.log(i), np.log(desc), 1)[0]
    np.testing.assert_allclose(slope, -np.log(kappa) / np.log(d), rtol=1e-10)
    np.testing.assert_allclose(desc, i**slope, rtol=1e-10)


def test_spectrum_rejects_bad_arguments():
    with pytest.raises(ValueError, match="d must"):
        spectrum(1, 10.0)
    with pytest.raises(ValueError, match="kappa"):
        spectrum(4, 0.5)
    with pytest.raises(ValueError, match="profile"):
        spectrum(4, 10.0, "linear")


# --------------------------------------------------------------------------- gaussian_system


@pytest.mark.parametrize("d,n,kappa,profile", CASES)
def test_gaussian_system_has_the_requested_spectrum(d, n, kappa, profile):
    p = gaussian_system(d, n, kappa, profile, seed=3)
    assert p.A.shape == (n, d) and p.x_star.shape == (d,)
    ev = scipy.linalg.eigvalsh(p.A.T @ p.A / n)
    want = spectrum(d, kappa, profile)
    np.testing.assert_allclose(ev, want, rtol=1e-10, atol=0)
    # the stored eigenpairs are the ones of H = A^T A / n
    np.testing.assert_allclose(p.eigvals, want, rtol=1e-10, atol=0)
    np.testing.assert_allclose(
        p.H @ p.eigvecs, p.eigvecs * p.eigvals, rtol=0, atol=1e-12 * want[-1]
    )
    np.testing.assert_allclose(p.eigvecs.T @ p.eigvecs, np.eye(d), atol=1e-12)


@pytest.mark.parametrize("d,n,kappa,profile", CASES)
def test_gaussian_system_is_consistent(d, n, kappa, profile):
    p = gaussian_system(d, n, kappa, profile, seed=4)
    assert np.array_equal(p.b, p.A @ p.x_star)  # b is A x* exactly, not up to round-off
    # x* is the minimizer: the full gradient there vanishes (to round-off)
    grad = p.A.T @ (p.A @ p.x_star - p.b) / n
    assert np.all(grad == 0)
    # and (full column rank) it is the unique least-squares solution
    x_ls, *_ = scipy.linalg.lstsq(p.A, p.b)
    np.testing.assert_allclose(x_ls, p.x_star, rtol=1e-8, atol=1e-8 * np.abs(p.x_star).max())


@pytest.mark.parametrize("d,n,kappa,profile", CASES)
def test_each_eigendirection_carries_one_dth_of_the_initial_loss(d, n, kappa, profile):
    p = gaussian_system(d, n, kappa, profile, seed=5)
    lam, V = scipy.linalg.eigh(p.A.T @ p.A / n)  # independent eigenvectors (distinct eigvals)
    share = lam * (V.T @ p.x_star) ** 2  # 2 f(0) split over the eigenvectors
    f0 = np.sum((p.A @ p.x_star) ** 2) / (2 * n)
    np.testing.assert_allclose(share.sum() / 2, f0, rtol=1e-10)
    np.testing.assert_allclose(share / share.sum(), np.full(d, 1 / d), rtol=1e-8)


def test_gaussian_system_is_deterministic_in_the_seed():
    a, b, c = (gaussian_system(12, 40, 100.0, seed=s) for s in (7, 7, 8))
    for name in ("A", "x_star", "eigvals", "eigvecs"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.allclose(a.A, c.A)
    assert not np.allclose(a.x_star, c.x_star)
    # the spectrum is prescribed, so it does not depend on the seed
    np.testing.assert_allclose(a.eigvals, c.eigvals, rtol=1e-10)


def test_gaussian_rows_look_gaussian():
    # For n >> d the rows are close in law to N(0, H): check second moments and that the
    # row norms are spread like a chi-square (not all equal, as an orthogonal design would be).
    p = gaussian_system(4, 20000, 10.0, seed=0)
    C = np.cov(p.A.T, bias=True)
    np.testing.assert_allclose(C, p.H, atol=0.05 * p.eigvals[-1])
    norms = np.einsum("ij,ij->i", p.A, p.A)
    assert norms.std() / norms.mean() > 0.3


def test_gaussian_system_rejects_underdetermined():
    with pytest.raises(ValueError, match="n must be >= d"):
        gaussian_system(10, 5, 10.0)


def test_make_problem_matches_gaussian_system_and_rejects_unknown_family():
    spec = {"family": "gaussian", "d": 6, "n": 30, "kappa": 50, "profile": "power", "seed": 2}
    p, q = make_problem(spec), gaussian_system(6, 30, 50, "power", seed=2)
    assert np.array_equal(p.A, q.A) and np.array_equal(p.x_star, q.x_star)
    with pytest.raises(ValueError, match="family"):
        make_problem({**spec, "family": "kernel"})
    with pytest.raises(ValueError, match="kappa"):
        make_problem({"family": "gaussian", "d": 6, "n": 30, "seed": 0})
    with pytest.raises(ValueError, match="sigma"):
        make_problem({**spec, "sigma": 1.0})


# --------------------------------------------------------------------------- spectral summary


def test_spectral_summary_against_independent_computations():
    p = gaussian_system(20, 200, 300.0, "geometric", seed=11)
    A, n = p.A, p.n
    ev = scipy.linalg.eigvalsh(A.T @ A / n)
    L, mu = ev.max(), ev.min()
    trace = np.trace(A.T @ A) / n
    R2 = np.max(np.linalg.norm(A, axis=1) ** 2)
    s = p.spectral_summary()
    assert s["n"] == 200 and s["d"] == 20 and s["rank"] == np.linalg.matrix_rank(A)
    expect = {
        "L": L,
        "mu": mu,
        "kappa": L / mu,
        "trace": trace,
        "kappa_bar": trace / mu,
        "R2": R2,
        "stable_rank": trace / L,
        "B_sgd": trace / L,
        "B_sgd_worst_case": R2 / L,
        "B_sat": trace / np.sqrt(L * mu),
    }
    for key, want in expect.items():
        np.testing.assert_allclose(s[key], want, rtol=1e-9, err_msg=key)
    np.testing.assert_allclose(s["kappa"], 300.0, rtol=1e-9)
    json.dumps(s)  # plain Python numbers: the metadata file must be JSON


def test_spectral_summary_of_a_rank_deficient_matrix_uses_the_smallest_nonzero_eigenvalue(rng):
    A = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 8))  # rank 3, d = 8
    s = from_matrix(A, rng.standard_normal(8)).spectral_summary()
    sv = scipy.linalg.svdvals(A) ** 2 / 30  # nonzero eigenvalues of H
    assert s["rank"] == 3
    np.testing.assert_allclose(s["L"], sv[0], rtol=1e-10)
    np.testing.assert_allclose(s["mu"], sv[2], rtol=1e-8)
    np.testing.assert_allclose(s["trace"], sv[:3].sum(), rtol=1e-10)


# --------------------------------------------------------------------------- from_matrix


@pytest.mark.parametrize("n,d,rank", [(30, 8, 3), (5, 9, 5), (12, 6, 6)])
def test_from_matrix_projects_x_star_onto_the_row_space(rng, n, d, rank):
    A = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))
    x_raw = rng.standard_normal(d)
    p = from_matrix(A, x_raw)
    # the minimum-norm solution of A x = A x_raw (scipy's lstsq, gelsd) is the projection
    x_min, *_ = scipy.linalg.lstsq(A, A @ x_raw)
    np.testing.assert_allclose(p.x_star, x_min, atol=1e-10 * np.linalg.norm(x_raw))
    np.testing.assert_allclose(p.A @ p.x_star, A @ x_raw, atol=1e-10 * np.abs(A @ x_raw).max())
    if rank < d:
        assert np.linalg.norm(p.x_star) < np.linalg.norm(x_raw) - 1e-6
    else:
        np.testing.assert_allclose(p.x_star, x_raw, rtol=1e-12)


def test_from_matrix_keeps_eigenpairs_of_H(rng):
    A = rng.standard_normal((15, 5))
    p = from_matrix(A, rng.standard_normal(5))
    np.testing.assert_allclose(p.eigvals, scipy.linalg.eigvalsh(A.T @ A / 15), rtol=1e-12)
    np.testing.assert_allclose(
        p.eigvecs @ np.diag(p.eigvals) @ p.eigvecs.T, A.T @ A / 15, atol=1e-12
    )


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path):
    p = gaussian_system(10, 50, 100.0, "power", seed=9)
    path = tmp_path / "sub" / "prob.npz"
    save_problem(p, path, meta={"spec": {"family": "gaussian", "seed": 9}})
    assert sorted(x.name for x in path.parent.iterdir()) == ["prob.json", "prob.npz"]
    q = load_problem(path)
    assert isinstance(q, Problem)
    for name in ("A", "x_star", "eigvals", "eigvecs"):
        assert np.array_equal(getattr(p, name), getattr(q, name)), name
    with np.load(path) as z:
        assert np.array_equal(z["b"], p.A @ p.x_star)
    meta = json.loads(metadata_path(path).read_text())
    assert meta["spec"] == {"family": "gaussian", "seed": 9}
    for key, value in p.spectral_summary().items():
        want = value if isinstance(value, str) else pytest.approx(value, rel=1e-15)
        assert meta[key] == want, key
