"""Problem families of issue 4: heavy-tailed rows, power-law spectra, the digits kernel
system, user-supplied matrices, and the ``form: psd`` variant of each.

References are independent computations (scipy.linalg.eigvalsh / lstsq / solve,
scikit-learn's rbf_kernel), never the Problem's own cached eigendecomposition.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import scipy.linalg
import scipy.sparse

from conftest import REPO_ROOT, mbm_process
from minibatch_momentum.problems.families import make_problem
from minibatch_momentum.problems.kernel import DIGITS_SIZE, kernel_system, load_digits_data
from minibatch_momentum.problems.synthetic import gaussian_system, heavy_tailed_system
from minibatch_momentum.problems.system import load_problem, metadata_path, save_problem, spectrum

ARRAYS = ("A", "x_star", "eigvals", "eigvecs")


def same(p, q) -> bool:
    return p.kind == q.kind and all(np.array_equal(getattr(p, k), getattr(q, k)) for k in ARRAYS)


# --------------------------------------------------------------------------- determinism

SEEDED = [
    {"family": "gaussian", "d": 8, "n": 64, "kappa": 100, "seed": 3},
    {"family": "gaussian", "d": 8, "n": 64, "kappa": 100, "seed": 3, "form": "psd"},
    {"family": "gaussian", "d": 8, "n": 64, "alpha": 1.5, "profile": "power", "seed": 3},
    {"family": "heavy_tailed", "d": 8, "n": 256, "kappa": 100, "seed": 3},
    {"family": "heavy_tailed", "d": 8, "n": 256, "kappa": 100, "seed": 3, "dof": 1.5},
    {"family": "heavy_tailed", "d": 8, "n": 256, "kappa": 50, "profile": "power", "seed": 3},
    {"family": "heavy_tailed", "d": 8, "n": 256, "kappa": 100, "seed": 3, "form": "psd"},
    {"family": "digits_kernel", "n_samples": 64, "gamma": 0.5, "seed": 3},
    {"family": "digits_kernel", "n_samples": 64, "gamma": 0.5, "seed": 3, "form": "psd"},
]


@pytest.mark.parametrize("spec", SEEDED, ids=lambda s: "-".join(map(str, s.values())))
def test_each_family_is_deterministic_in_its_seed(spec):
    p, q, r = make_problem(spec), make_problem(dict(spec)), make_problem({**spec, "seed": 4})
    assert same(p, q)
    assert p.kind == spec.get("form", "rows")
    assert not np.allclose(p.x_star, r.x_star)


def test_digits_kernel_without_seed_takes_the_first_points():
    spec = {"family": "digits_kernel", "n_samples": 40, "gamma": 1.0}
    p = make_problem(spec)
    assert same(p, make_problem(spec))
    X, y = load_digits_data()
    np.testing.assert_allclose(p.A @ p.x_star, y[:40], atol=1e-8 * np.linalg.norm(y[:40]))
    assert not same(p, make_problem({**spec, "seed": 0}))


def test_matrix_without_rhs_is_deterministic_in_its_seed(tmp_path, rng):
    np.save(tmp_path / "A.npy", rng.standard_normal((30, 6)))
    spec = {"family": "matrix", "path": str(tmp_path / "A.npy")}
    p, q = make_problem(spec), make_problem({**spec, "seed": 0})  # seed defaults to 0
    r = make_problem({**spec, "seed": 1})
    assert same(p, q) and not np.allclose(p.x_star, r.x_star)
    np.testing.assert_array_equal(p.A, np.load(tmp_path / "A.npy"))


def test_gaussian_output_is_unchanged_by_the_new_fields():
    # The headline results depend on gaussian_system's random stream: a fingerprint taken
    # before `form`/`alpha` existed (values, not bits, so other LAPACK builds still pass).
    p = make_problem({"family": "gaussian", "d": 6, "n": 30, "kappa": 50, "seed": 2})
    np.testing.assert_allclose(
        p.A[0, :3], [0.9183711905184252, 0.2490736079114319, -1.5103403534762236], rtol=1e-9
    )
    np.testing.assert_allclose(
        p.x_star[:3], [2.3336763105193374, -0.2890491318504758, 0.8012685129186552], rtol=1e-9
    )
    q = make_problem(
        {"family": "gaussian", "d": 6, "n": 30, "kappa": 50, "seed": 2, "form": "rows"}
    )
    assert same(p, q)


@pytest.mark.parametrize("family", ["gaussian", "heavy_tailed"])
def test_psd_form_of_a_synthetic_family_is_H_with_the_same_solution(family):
    spec = {"family": family, "d": 10, "n": 200, "kappa": 300, "seed": 5}
    rows, psd = make_problem(spec), make_problem({**spec, "form": "psd"})
    assert rows.kind == "rows" and psd.kind == "psd"
    assert psd.A.shape == (10, 10) and psd.n == psd.d == 10
    np.testing.assert_allclose(psd.A, rows.A.T @ rows.A / 200, rtol=0, atol=1e-13)
    np.testing.assert_allclose(psd.H, psd.A, rtol=0, atol=0)
    np.testing.assert_allclose(psd.x_star, rows.x_star, rtol=1e-10)
    np.testing.assert_allclose(scipy.linalg.eigvalsh(psd.A), spectrum(10, 300), rtol=1e-9)
    s = psd.spectral_summary()
    assert s["kind"] == "psd"
    np.testing.assert_allclose(s["R2"], np.diag(psd.A).max(), rtol=1e-14)
    np.testing.assert_allclose(s["kappa"], 300, rtol=1e-9)


# --------------------------------------------------------------------------- heavy_tailed


@pytest.mark.parametrize(
    "kw",
    [
        {"kappa": 1e4, "profile": "geometric"},
        {"kappa": 1e3, "profile": "power"},
        {"alpha": 2.0, "profile": "power"},
        {"kappa": 100.0, "dof": 1.0},  # Cauchy-like scales: still exact
    ],
)
def test_heavy_tailed_has_exactly_the_prescribed_spectrum(kw):
    d, n = 12, 512
    p = heavy_tailed_system(d, n, seed=1, **kw)
    want = spectrum(d, kw.get("kappa"), kw.get("profile", "geometric"), alpha=kw.get("alpha"))
    ev = scipy.linalg.eigvalsh(p.A.T @ p.A / n)
    np.testing.assert_allclose(ev, want, rtol=1e-9, atol=0)
    np.testing.assert_allclose(p.eigvals, want, rtol=1e-9, atol=0)
    # consistent, x* is the least-squares solution, equal loss per eigendirection
    assert np.array_equal(p.b, p.A @ p.x_star)
    x_ls = scipy.linalg.lstsq(p.A, p.b)[0]
    np.testing.assert_allclose(x_ls, p.x_star, rtol=1e-7, atol=1e-8 * np.abs(p.x_star).max())
    lam, V = scipy.linalg.eigh(p.A.T @ p.A / n)
    share = lam * (V.T @ p.x_star) ** 2
    np.testing.assert_allclose(share / share.sum(), np.full(d, 1 / d), rtol=1e-6)


def test_heavy_tailed_rows_have_strongly_uneven_norms():
    d, n, kappa = 16, 2048, 100.0
    ht = heavy_tailed_system(d, n, kappa, seed=0).spectral_summary()
    gs = gaussian_system(d, n, kappa, seed=0).spectral_summary()
    np.testing.assert_allclose(ht["trace"], gs["trace"], rtol=1e-10)  # same spectrum
    assert ht["R2"] / ht["trace"] > 10  # R^2 >> tr H: uniform and row-norm sampling differ
    assert gs["R2"] / gs["trace"] < 10
    assert ht["R2"] / ht["trace"] > 3 * gs["R2"] / gs["trace"]
    # and the row norms are spread far more than Gaussian ones (heavy tail)
    norms = np.einsum("ij,ij->i", *(2 * [heavy_tailed_system(d, n, kappa, seed=0).A]))
    assert np.percentile(norms, 99.9) / np.median(norms) > 20


def test_heavy_tailed_rejects_bad_dof_and_underdetermined():
    base = {"family": "heavy_tailed", "d": 8, "n": 64, "kappa": 10, "seed": 0}
    for bad in (0, -1, float("nan"), "3", True):
        with pytest.raises(ValueError, match="dof"):
            make_problem({**base, "dof": bad})
    with pytest.raises(ValueError, match="n must be >= d"):
        make_problem({**base, "n": 4})


# --------------------------------------------------------------------------- power-law spectra


@pytest.mark.parametrize("family", ["gaussian", "heavy_tailed"])
def test_power_profile_with_alpha_gives_i_to_the_minus_alpha(family):
    d, alpha = 20, 1.7
    spec = {"family": family, "d": d, "n": 400, "alpha": alpha, "profile": "power", "seed": 0}
    p = make_problem(spec)
    ev = scipy.linalg.eigvalsh(p.A.T @ p.A / 400)[::-1]
    np.testing.assert_allclose(ev, np.arange(1, d + 1) ** -alpha, rtol=1e-9)
    np.testing.assert_allclose(p.spectral_summary()["kappa"], d**alpha, rtol=1e-9)
    # the same spectrum as the kappa = d^alpha spelling, to round-off
    q = make_problem({**{k: v for k, v in spec.items() if k != "alpha"}, "kappa": d**alpha})
    np.testing.assert_allclose(q.eigvals, p.eigvals, rtol=1e-12)


def test_alpha_validation():
    base = {"family": "gaussian", "d": 8, "n": 64, "seed": 0}
    with pytest.raises(ValueError, match="kappa: give kappa or alpha, not both"):
        make_problem({**base, "kappa": 10, "alpha": 1.0, "profile": "power"})
    with pytest.raises(ValueError, match="alpha: needs profile 'power'"):
        make_problem({**base, "alpha": 1.0})
    with pytest.raises(ValueError, match="alpha: needs profile 'power'"):
        make_problem({**base, "alpha": 1.0, "profile": "geometric"})
    with pytest.raises(ValueError, match="alpha: must be a number >= 0"):
        make_problem({**base, "alpha": -1.0, "profile": "power"})
    with pytest.raises(ValueError, match="alpha: must be such that"):
        make_problem({**base, "alpha": 12.0, "profile": "power"})  # kappa = 8^12 > 1e9
    with pytest.raises(ValueError, match="alpha: must be such that"):
        make_problem({**base, "alpha": 1e6, "profile": "power"})  # no overflow
    with pytest.raises(ValueError, match=r"missing field.*kappa"):
        make_problem({**base, "profile": "power"})
    with pytest.raises(ValueError, match="profile: must be one of"):
        make_problem({**base, "kappa": 10, "profile": "flat"})
    with pytest.raises(ValueError, match="kappa: must be a number in"):
        make_problem({**base, "kappa": 1e12})
    with pytest.raises(ValueError, match="form: must be one of"):
        make_problem({**base, "kappa": 10, "form": "cols"})


# --------------------------------------------------------------------------- digits kernel


def _rbf(X, gamma):
    from sklearn.metrics.pairwise import rbf_kernel

    return rbf_kernel(X, gamma=gamma)  # an independent implementation of the kernel


def test_digits_kernel_rows_form_is_the_consistent_system_K_x_eq_y():
    n, gamma = 128, 1.0
    p = make_problem({"family": "digits_kernel", "n_samples": n, "gamma": gamma})
    X, y = load_digits_data()
    assert X.shape == (DIGITS_SIZE, 64) and X.max() == 1.0 and X.min() == 0.0
    K = _rbf(X[:n], gamma)
    assert p.kind == "rows" and p.A.shape == (n, n)
    np.testing.assert_allclose(p.A, K, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(p.A, p.A.T)
    assert scipy.linalg.eigvalsh(K)[0] > 0  # positive definite
    x_ref = scipy.linalg.solve(K, y[:n], assume_a="pos")
    np.testing.assert_allclose(p.x_star, x_ref, rtol=1e-7, atol=1e-9 * np.abs(x_ref).max())
    assert np.linalg.norm(p.A @ p.x_star - y[:n]) <= 1e-9 * np.linalg.norm(y[:n])
    np.testing.assert_allclose(p.b, y[:n], atol=1e-8)
    np.testing.assert_allclose(p.eigvals, scipy.linalg.eigvalsh(K @ K / n), rtol=1e-8)


def test_digits_kernel_psd_form_is_K_itself():
    n, gamma = 128, 0.5
    spec = {"family": "digits_kernel", "n_samples": n, "gamma": gamma}
    rows, psd = make_problem(spec), make_problem({**spec, "form": "psd"})
    X, y = load_digits_data()
    K = _rbf(X[:n], gamma)
    assert psd.kind == "psd" and psd.n == psd.d == n
    np.testing.assert_allclose(psd.A, K, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(psd.H, psd.A)
    np.testing.assert_allclose(psd.b, y[:n], atol=1e-8)  # c = M x* = labels
    np.testing.assert_allclose(psd.x_star, rows.x_star, rtol=1e-8)
    np.testing.assert_allclose(psd.eigvals, scipy.linalg.eigvalsh(K), rtol=1e-10)
    s = psd.spectral_summary()
    assert s["R2"] == pytest.approx(1.0)  # the RBF kernel's diagonal


def test_digits_kernel_spectral_summary_matches_the_measured_guidance():
    rows = make_problem({"family": "digits_kernel", "n_samples": 512, "gamma": 1.0})
    s = rows.spectral_summary()
    assert s["kappa"] == pytest.approx(1.06e3, rel=0.01)
    assert s["stable_rank"] == pytest.approx(12.2, rel=0.01)
    assert s["B_sat"] == pytest.approx(397, rel=0.01)
    psd = make_problem({"family": "digits_kernel", "n_samples": 512, "gamma": 0.5, "form": "psd"})
    s = psd.spectral_summary()
    assert s["kappa"] == pytest.approx(203, rel=0.01)
    assert s["stable_rank"] == pytest.approx(26.1, rel=0.01)
    assert s["B_sat"] == pytest.approx(371, rel=0.01)


def test_kernel_system_rejects_duplicate_points_and_singular_kernels(rng):
    X = rng.random((20, 5))
    X[7] = X[3]
    y = rng.standard_normal(20)
    with pytest.raises(ValueError, match=r"duplicate points \(e\.g\. 3 and 7\)"):
        kernel_system(X, y, 1.0)
    base = {"family": "digits_kernel", "n_samples": 64}
    with pytest.raises(ValueError, match="gamma: .* use a larger gamma"):
        make_problem({**base, "gamma": 1e-6})
    for bad, field in [
        ({"gamma": 0}, "gamma"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": 1.0, "n_samples": 15}, "n_samples"),
        ({"gamma": 1.0, "n_samples": DIGITS_SIZE + 1}, "n_samples"),
        ({"gamma": 1.0, "seed": -1}, "seed"),
        ({"gamma": 1.0, "kappa": 10}, "unknown"),
    ]:
        with pytest.raises(ValueError, match=field):
            make_problem({**base, **bad})
    with pytest.raises(ValueError, match=r"missing field.*gamma"):
        make_problem(base)


# --------------------------------------------------------------------------- user matrices


@pytest.fixture
def system(rng):
    """A rank-deficient consistent system (rank 5, d = 7) and its min-norm solution."""
    A = rng.standard_normal((40, 5)) @ rng.standard_normal((5, 7))
    b = A @ rng.standard_normal(7)
    return A, b


def test_user_matrix_loads_the_same_from_every_format(tmp_path, system):
    A, b = system
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "b.npy", b)
    np.savez(tmp_path / "Ab.npz", A=A, b=b)
    scipy.io.mmwrite(tmp_path / "A.mtx", A, precision=17)
    scipy.io.mmwrite(tmp_path / "sparse.mtx", scipy.sparse.coo_matrix(A), precision=17)
    scipy.io.mmwrite(tmp_path / "b.mtx", b[:, None], precision=17)
    specs = [
        {"path": "A.npy", "rhs": "b.npy"},
        {"path": "Ab.npz"},
        {"path": "A.mtx", "rhs": "b.mtx"},
        {"path": "sparse.mtx", "rhs": "b.npy"},
        {"path": "A.npy", "rhs": "b.mtx"},
    ]
    problems = [
        make_problem({"family": "matrix", **{k: str(tmp_path / v) for k, v in s.items()}})
        for s in specs
    ]
    x_ls = scipy.linalg.lstsq(A, b)[0]  # minimum-norm least squares
    for p in problems:
        assert p.kind == "rows" and p.A.shape == (40, 7)
        np.testing.assert_allclose(p.A, A, rtol=1e-15)
        np.testing.assert_allclose(p.x_star, x_ls, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(p.b, b, rtol=1e-8, atol=1e-10)
        assert p.spectral_summary()["rank"] == 5
        np.testing.assert_allclose(
            p.eigvals, scipy.linalg.eigvalsh(A.T @ A / 40), rtol=1e-8, atol=1e-12
        )


def test_user_matrix_npz_without_b_uses_the_seed(tmp_path, system):
    A, _ = system
    np.savez(tmp_path / "A.npz", A=A)
    np.save(tmp_path / "A.npy", A)
    p = make_problem({"family": "matrix", "path": str(tmp_path / "A.npz"), "seed": 7})
    q = make_problem({"family": "matrix", "path": str(tmp_path / "A.npy"), "seed": 7})
    assert same(p, q)
    x0 = np.random.default_rng(7).standard_normal(7)
    np.testing.assert_allclose(p.b, A @ x0, rtol=1e-9, atol=1e-10)  # b = A x0, consistent
    np.testing.assert_allclose(p.x_star, scipy.linalg.lstsq(A, A @ x0)[0], rtol=1e-8, atol=1e-10)


def test_user_matrix_relative_paths_are_taken_from_the_working_directory(
    tmp_path, system, monkeypatch
):
    A, b = system
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "A.npy", A)
    np.save(tmp_path / "data" / "b.npy", b)
    monkeypatch.chdir(tmp_path)
    p = make_problem({"family": "matrix", "path": "data/A.npy", "rhs": "data/b.npy"})
    np.testing.assert_allclose(p.b, b, rtol=1e-8, atol=1e-10)


def test_user_matrix_psd_form(tmp_path, rng):
    X = rng.standard_normal((6, 9))
    M = X.T @ X  # 9 x 9, PSD of rank 6
    M = 0.5 * (M + M.T)
    c = M @ rng.standard_normal(9)
    np.save(tmp_path / "M.npy", M)
    np.save(tmp_path / "c.npy", c)
    scipy.io.mmwrite(tmp_path / "M.mtx", M, symmetry="symmetric", precision=17)
    p = make_problem(
        {
            "family": "matrix",
            "path": str(tmp_path / "M.npy"),
            "rhs": str(tmp_path / "c.npy"),
            "form": "psd",
        }
    )
    q = make_problem(
        {
            "family": "matrix",
            "path": str(tmp_path / "M.mtx"),
            "rhs": str(tmp_path / "c.npy"),
            "form": "psd",
        }
    )
    for r in (p, q):
        assert r.kind == "psd" and r.n == r.d == 9
        np.testing.assert_allclose(r.H, M, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(r.b, c, atol=1e-9 * np.abs(c).max())
        np.testing.assert_allclose(
            r.x_star, scipy.linalg.lstsq(M, c)[0], atol=1e-9 * np.abs(r.x_star).max()
        )
        assert r.spectral_summary()["rank"] == 6


def _bad_cases(tmp_path, rng):
    """(name, spec fields, distinct substring the message must contain)."""
    A = rng.standard_normal((20, 4))
    b = A @ rng.standard_normal(4)

    def save(name, arr):
        np.save(tmp_path / name, arr)
        return str(tmp_path / name)

    nan, inf = A.copy(), A.copy()
    nan[2, 1] = np.nan
    inf[3, 0] = np.inf
    S = rng.standard_normal((5, 5))
    bad_rhs = b + rng.standard_normal(20)  # not in the range of A (n > d)
    (tmp_path / "A.csv").write_text("1,2\n3,4\n")
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    np.savez(tmp_path / "noA.npz", M=A)
    np.savez(tmp_path / "withb.npz", A=A, b=b)
    return [
        ("nan", {"path": save("nan.npy", nan)}, "contains NaN"),
        ("inf", {"path": save("inf.npy", inf)}, "contains inf"),
        ("1-d", {"path": save("vec.npy", b)}, "is not a 2-d matrix"),
        ("max_n", {"path": save("A.npy", A), "max_n": 10}, "more than max_n=10"),
        ("max_d", {"path": save("A.npy", A), "max_d": 3}, "more than max_d=3"),
        (
            "inconsistent",
            {"path": save("A.npy", A), "rhs": save("bad_rhs.npy", bad_rhs)},
            "inconsistent system",
        ),
        ("length", {"path": save("A.npy", A), "rhs": save("short.npy", b[:-1])}, "has length 19"),
        ("nonsym", {"path": save("S.npy", S), "form": "psd"}, "is not symmetric"),
        (
            "indefinite",
            {"path": save("I.npy", np.diag([1.0, -0.5, 2.0])), "form": "psd"},
            "is not positive semi-definite",
        ),
        ("nonsquare", {"path": save("A.npy", A), "form": "psd"}, "must be square"),
        ("missing", {"path": str(tmp_path / "nowhere.npy")}, "file not found"),
        ("extension", {"path": str(tmp_path / "A.csv")}, "unsupported extension"),
        ("unreadable", {"path": str(tmp_path / "junk.npy")}, "cannot read"),
        ("zero", {"path": save("Z.npy", np.zeros((4, 3)))}, "all-zero matrix"),
        ("no A", {"path": str(tmp_path / "noA.npz")}, "has no array 'A'"),
        (
            "b twice",
            {"path": str(tmp_path / "withb.npz"), "rhs": save("b.npy", b)},
            "give the right-hand side once",
        ),
        ("rhs nan", {"path": save("A.npy", A), "rhs": save("bn.npy", b * np.nan)}, "NaN"),
        ("rhs zero", {"path": save("A.npy", A), "rhs": save("b0.npy", 0 * b)}, "nothing to solve"),
    ]


def test_each_bad_user_matrix_gets_its_own_message(tmp_path, rng):
    cases = _bad_cases(tmp_path, rng)
    keys = [key for *_, key in cases]
    messages = {}
    for name, fields, key in cases:
        with pytest.raises(ValueError) as info:
            make_problem({"family": "matrix", **fields})
        msg = str(info.value)
        assert key in msg, (name, msg)
        assert "\n" not in msg, name  # one line: the CLI prints it as is
        # names the field and the file it is about
        field = "rhs" if "rhs" in fields else "path"
        assert msg.startswith(f"{field}: ") and "tmp" in msg, (name, msg)
        messages[name] = msg
    distinct = [k for k in keys if k != "NaN"]  # "NaN" is shared by the matrix and rhs cases
    for name, msg in messages.items():
        others = [k for k in distinct if k in msg]
        assert len(others) <= 1, (name, others)
    for name in ("max_n", "max_d"):
        assert "too large for the profile" in messages[name]
    # the inconsistency message carries the measured residual against the tolerance
    incons = messages["inconsistent"]
    assert "relative residual ||A x_ls - b|| / ||b|| = " in incons
    assert "exceeds the tolerance 1e-08" in incons and "interpolation regime" in incons
    residual = float(incons.split("= ")[1].split(" ")[0])
    assert 0.05 < residual < 1


def test_user_matrix_tolerance_is_configurable(tmp_path, rng):
    A = rng.standard_normal((20, 4))
    b = A @ rng.standard_normal(4)
    b_noisy = b + 1e-6 * np.linalg.norm(b) * rng.standard_normal(20) / np.sqrt(20)
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "b.npy", b_noisy)
    spec = {"family": "matrix", "path": str(tmp_path / "A.npy"), "rhs": str(tmp_path / "b.npy")}
    with pytest.raises(ValueError, match="inconsistent"):
        make_problem(spec)
    p = make_problem({**spec, "tol": 1e-4})
    np.testing.assert_allclose(p.x_star, scipy.linalg.lstsq(A, b_noisy)[0], rtol=1e-9)
    for bad, field in [
        ({"tol": 0}, "tol"),
        ({"tol": 1.5}, "tol"),
        ({"max_n": 0}, "max_n"),
        ({"max_d": 2.5}, "max_d"),
        ({"path": ""}, "path"),
        ({"path": 3}, "path"),
        ({"rhs": None}, "rhs"),
        ({"form": "dense"}, "form"),
        ({"d": 3}, "unknown"),
    ]:
        with pytest.raises(ValueError, match=field):
            make_problem({**spec, **bad})
    with pytest.raises(ValueError, match=r"missing field.*path"):
        make_problem({"family": "matrix"})


def test_psd_problem_round_trips_through_save_and_load(tmp_path):
    p = make_problem({"family": "digits_kernel", "n_samples": 32, "gamma": 0.5, "form": "psd"})
    save_problem(p, tmp_path / "p.npz", meta={"spec": {"family": "digits_kernel"}})
    q = load_problem(tmp_path / "p.npz")
    assert same(p, q)
    meta = json.loads(metadata_path(tmp_path / "p.npz").read_text())
    assert meta["kind"] == "psd" and meta["n"] == meta["d"] == 32


# --------------------------------------------------------------------------- mbm problem


def _mbm_problem(spec: dict, out, cwd=REPO_ROOT):
    return mbm_process("problem", "--spec", json.dumps(spec), "--out", out, cwd=cwd)


def test_mbm_problem_leaves_nothing_behind_on_a_bad_matrix(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    A = rng.standard_normal((20, 4))
    A[0, 0] = np.nan
    np.save(data / "A.npy", A)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = _mbm_problem({"family": "matrix", "path": str(data / "A.npy")}, out_dir / "p.npz")
    assert res.returncode != 0
    assert "contains NaN" in res.stderr and str(data / "A.npy") in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert list(out_dir.iterdir()) == []
    # and a good matrix (relative path, from the working directory) gives both files
    A[0, 0] = 1.0
    np.save(data / "A.npy", A)
    res = _mbm_problem({"family": "matrix", "path": "data/A.npy"}, out_dir / "p.npz", tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(x.name for x in out_dir.iterdir()) == ["p.json", "p.npz"]
    assert json.loads((out_dir / "p.json").read_text())["spec"]["path"] == "data/A.npy"
