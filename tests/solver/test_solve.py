"""The momentum rule as a solver: estimates, convergence per sampler, bad input, CLI."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import yaml

from conftest import PYTHON, REPO_ROOT, mbm_process, subprocess_env
from minibatch_momentum.problems.families import make_problem
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.solver import solve
from minibatch_momentum.solver.batch_size import auto_batch, batch_grid, predicted_steps
from minibatch_momentum.solver.estimates import estimate
from minibatch_momentum.solver.system import _System

QUICK = yaml.safe_load((REPO_ROOT / "workflow" / "config" / "quick.yaml").read_text())


def _truth(problem):
    s = problem.spectral_summary()
    return s["L"], s["mu"], s["trace"]


# --------------------------------------------------------------------------- estimates


def test_estimates_match_the_spectrum_when_lanczos_has_converged():
    # kappa = 100: 40 Lanczos steps are 4 sqrt(kappa): L to round-off, mu to 10% (measured
    # 7.7% high with this seed; the smallest Ritz value converges last).
    p = gaussian_system(d=64, n=1024, kappa=100, seed=0)
    L, mu, trace = _truth(p)
    est = estimate(_System(p.A, p.b, "rows"), lanczos_steps=40)
    assert est.L == pytest.approx(L, rel=1e-8)
    assert mu <= est.mu <= 1.1 * mu
    assert est.trace == pytest.approx(trace, rel=1e-10)  # exact: mean squared row norm
    assert est.passes == 2 * 40 + 1  # 40 products with H (A then A^T) and the start A^T w


def test_mu_is_an_upper_bound_and_wide_matrices_have_no_zero_mu():
    # Few steps on an ill-conditioned H: mu is over-estimated, never under (interlacing).
    p = gaussian_system(d=128, n=512, kappa=1e4, seed=1)
    L, mu, _ = _truth(p)
    est = estimate(_System(p.A, p.b, "rows"), lanczos_steps=10)
    assert est.mu >= mu * (1 - 1e-9)
    assert est.L <= L * (1 + 1e-9) and est.L == pytest.approx(L, rel=1e-3)
    # A wide matrix: H has a null space of dimension d - n; mu is its smallest non-zero.
    rng = np.random.default_rng(0)
    A = rng.standard_normal((30, 80))
    lam = np.linalg.eigvalsh(A @ A.T / 30)
    est = estimate(_System(A, np.ones(30), "rows"), lanczos_steps=40)
    assert est.mu == pytest.approx(lam.min(), rel=1e-6)


def test_given_values_skip_lanczos():
    p = gaussian_system(d=16, n=128, kappa=10, seed=2)
    est = estimate(_System(p.A, p.b, "rows"), L=2.0, mu=0.1)
    assert (est.L, est.mu, est.lanczos_steps, est.given) == (2.0, 0.1, 0, ("L", "mu"))


def test_auto_batch_is_the_smallest_within_the_factor():
    p = gaussian_system(d=64, n=4096, kappa=1024, seed=3)
    est = estimate(_System(p.A, p.b, "rows"))
    for method in ("sgd", "hb", "nag"):
        B, t_sat = auto_batch(method, est, "uniform", p.n, 1e-6, factor=2.0)
        grid = batch_grid(p.n)
        assert predicted_steps(method, B, est, "uniform", p.n, 1e-6) <= 2 * t_sat
        smaller = grid[: grid.index(B)]
        assert all(
            predicted_steps(method, b, est, "uniform", p.n, 1e-6) > 2 * t_sat for b in smaller
        )
    # Momentum saturates later than SGD (perfect scaling lasts ~sqrt(kappa) longer).
    assert (
        auto_batch("hb", est, "uniform", p.n, 1e-6)[0]
        >= 8 * auto_batch("sgd", est, "uniform", p.n, 1e-6)[0]
    )


# --------------------------------------------------------------------------- solving


def _pairs():
    for name, spec in QUICK["problems"].items():
        for sampler in QUICK["studies"][name]["samplers"]:
            yield name, spec, sampler
        if spec.get("form") != "psd":  # every row problem with both row samplers
            yield name, spec, "kaczmarz"


PAIRS = sorted({(name, sampler): spec for name, spec, sampler in _pairs()}.items())


@pytest.mark.parametrize(("pair", "spec"), PAIRS, ids=[f"{a}-{b}" for (a, b), _ in PAIRS])
def test_solve_reaches_tol_on_the_default_profile(pair, spec):
    _, sampler = pair
    sampler = {"without_replacement": "uniform"}.get(sampler, sampler)
    p = make_problem(spec)
    tol = 1e-6
    res = solve(p.A, p.b, sampler=sampler, tol=tol)
    assert res.stop_reason == "converged"
    assert res.residual <= tol
    assert np.linalg.norm(p.A @ res.x - p.b) <= tol * np.linalg.norm(p.b) * (1 + 1e-9)
    # ||x - x*|| / ||x*|| <= cond * relative residual (cond = sqrt(kappa) of H for rows,
    # kappa for the PSD matrix itself).
    kappa = p.spectral_summary()["kappa"]
    cond = kappa if p.kind == "psd" else math.sqrt(kappa)
    err = np.linalg.norm(res.x - p.x_star) / np.linalg.norm(p.x_star)
    assert err <= cond * tol
    assert res.history[-1, 2] == res.residual and res.history[0, 0] == 0


@pytest.mark.parametrize("method", ["hb", "nag", "sgd"])
def test_each_method_agrees_with_lstsq(method):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((400, 24)) * np.geomspace(1, 0.05, 24)
    b = A @ rng.standard_normal(24)
    res = solve(A, b, method=method, tol=1e-8)
    x_ls = np.linalg.lstsq(A, b, rcond=None)[0]
    assert res.stop_reason == "converged"
    assert np.linalg.norm(res.x - x_ls) <= 1e-5 * np.linalg.norm(x_ls)
    assert res.method == method and (res.beta == 0) == (method == "sgd")


def test_wide_system_converges_to_the_minimum_norm_solution():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((40, 100))
    b = A @ rng.standard_normal(100)
    res = solve(A, b, tol=1e-9)
    x_min = np.linalg.lstsq(A, b, rcond=None)[0]  # minimum norm
    assert np.linalg.norm(res.x - x_min) <= 1e-6 * np.linalg.norm(x_min)


def test_sparse_and_callable_inputs_give_the_dense_result():
    rng = np.random.default_rng(7)
    S = scipy.sparse.random(600, 30, density=0.2, random_state=7, format="csr")
    b = S @ rng.standard_normal(30)
    kw = dict(batch_size=32, tol=1e-7, seed=3)
    dense = solve(S.toarray(), b, **kw)
    sparse = solve(S, b, **kw)
    rows = solve(lambda idx: S[idx].toarray(), b, **kw)
    assert dense.stop_reason == sparse.stop_reason == rows.stop_reason == "converged"
    assert dense.steps == sparse.steps == rows.steps
    np.testing.assert_allclose(sparse.x, dense.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rows.x, dense.x, rtol=1e-9, atol=1e-12)


def test_same_seed_same_result_and_the_budget_stops():
    p = gaussian_system(d=32, n=1024, kappa=1e3, seed=8)
    a = solve(p.A, p.b, batch_size=16, seed=1, max_passes=5)
    b = solve(p.A, p.b, batch_size=16, seed=1, max_passes=5)
    assert a.stop_reason == "budget" and np.array_equal(a.x, b.x)
    assert 5 <= a.passes < 5 + 4 + 1  # stops at the first check past the budget
    assert a.residual < 1.0


def test_top_level_solve_is_lazy():
    code = (
        "import sys, minibatch_momentum as m; assert 'torch' not in sys.modules; "
        "from minibatch_momentum import solve; assert callable(solve); print('ok')"
    )
    out = subprocess.run(
        [PYTHON, "-c", code], env=subprocess_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------------- bad input


def test_inconsistent_system_is_an_error():
    rng = np.random.default_rng(9)
    A = rng.standard_normal((400, 20))
    b = rng.standard_normal(400)
    with pytest.raises(ValueError, match="inconsistent"):
        solve(A, b)


def _indefinite(d=20):
    rng = np.random.default_rng(10)
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    lam = np.linspace(-0.5, 2.0, d)
    M = (Q * lam) @ Q.T
    assert np.all(np.diag(M) > -1)  # may be positive: the Lanczos check must catch it
    return M


@pytest.mark.parametrize(
    ("A", "b", "kw", "match"),
    [
        (np.ones((5, 3)), np.ones(4), {}, "length 4, A has 5 rows"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), np.ones(2), {}, "A: contains NaN"),
        (np.eye(3), np.array([1.0, np.inf, 0.0]), {}, "b: contains inf"),
        (np.eye(3), np.zeros(3), {}, "all zero"),
        (np.ones(3), np.ones(3), {}, "2-d"),
        (np.ones((4, 3)), np.ones(4), {"sampler": "coordinate"}, "square"),
        (np.triu(np.ones((3, 3))), np.ones(3), {"sampler": "coordinate"}, "not symmetric"),
        (np.diag([1.0, -1.0, 2.0]), np.ones(3), {"sampler": "coordinate"}, "positive semi"),
        (_indefinite(), np.ones(20), {"sampler": "coordinate"}, "positive semi-definite"),
        (np.eye(3), np.ones(3), {"method": "adam"}, "method"),
        (np.eye(3), np.ones(3), {"sampler": "random"}, "sampler"),
        (np.eye(3), np.ones(3), {"tol": 0.0}, "tol"),
        (np.eye(3), np.ones(3), {"batch_size": 4}, "exceeds"),
        (np.eye(3), np.ones(3), {"batch_size": 2.5}, "batch_size"),
        (np.eye(3), np.ones(3), {"x0": np.ones(2)}, "x0"),
        (np.eye(3), np.ones(3), {"mu": -1.0}, "mu"),
    ],
)
def test_bad_input_is_a_clear_error(A, b, kw, match):
    with pytest.raises(ValueError, match=match):
        solve(A, b, **kw)


# --------------------------------------------------------------------------- command line


@pytest.fixture
def small_system(tmp_path: Path):
    rng = np.random.default_rng(11)
    A = rng.standard_normal((256, 12)) * np.geomspace(1, 0.05, 12)
    x = rng.standard_normal(12)
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "b.npy", A @ x)
    return tmp_path, A, x


def test_cli_solve_on_a_user_matrix(small_system):
    tmp, A, x = small_system
    out = mbm_process(
        "solve",
        "--matrix",
        "A.npy",
        "--rhs",
        "b.npy",
        "--out",
        "x.npy",
        "--json",
        "r.json",
        cwd=tmp,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["stop_reason"] == "converged"
    assert "B*_SGD" in out.stderr and "B_sat" in out.stderr
    np.testing.assert_allclose(np.load(tmp / "x.npy"), x, rtol=1e-4)
    assert json.loads((tmp / "r.json").read_text())["batch_size"] == summary["batch_size"]
    bad = mbm_process("solve", "--matrix", "A.npy", cwd=tmp)
    assert bad.returncode == 2 and "rhs" in bad.stderr


def test_cli_advise_on_a_user_matrix(small_system):
    tmp, _, _ = small_system
    out = mbm_process("advise", "--matrix", "A.npy", "--methods", "sgd,hb", cwd=tmp)
    assert out.returncode == 0, out.stderr
    assert "B*_SGD" in out.stdout and "B_sat (hb)" in out.stdout
    for col in ("T_model_hb", "T_rule_hb", "T_opt_hb", "T_opt_sgd"):
        assert col in out.stdout


def test_benchmark_table_meets_the_tolerance_for_every_method():
    from minibatch_momentum.benchmark.solvers import compare

    p = gaussian_system(d=8, n=256, kappa=50, seed=12)
    lines = []
    rows = compare("tiny", p.A, p.b, 1e-6, out=lines.append)
    assert [r["method"].split(" (")[0] for r in rows] == [
        "solve hb",
        "solve nag",
        "solve sgd",
        "cg",
        "lsqr",
        "lstsq",
    ]
    assert all(r["residual"] <= 1e-6 for r in rows)
    for r in rows[3:5]:  # CG and LSQR: the first iteration meeting tol, 2 passes each
        assert r["passes"] % 2 == 0 and 2 <= r["passes"] <= 2 * 8 + 2
    assert len(lines) == 2 + len(rows)
