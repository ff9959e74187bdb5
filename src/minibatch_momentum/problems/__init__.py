"""Consistent systems (the interpolation regime) and the families they come from.

A problem is ``f(x) = ||A x - b||^2 / (2n)`` with ``b = A x*`` exactly (kind ``rows``),
or ``f(x) = x^T M x / 2 - c^T x`` with ``c = M x*`` (kind ``psd``, for coordinate
descent), together with the spectral quantities that the theory of docs/design.md section 3
is written in:

- ``H = A^T A / n`` (``rows``) or ``H = M`` (``psd``), ``L = lambda_max(H)``, ``mu`` the
  smallest non-zero eigenvalue, ``kappa = L / mu``, ``trace = tr H``,
  ``kappa_bar = tr H / mu``;
- ``R2 = max_i ||a_i||^2`` (``psd``: ``max_j M_jj``) and the stable rank ``r = tr H / L``;
- ``B_sgd = tr H / L``: the batch size where plain SGD stops scaling. For uniform
  sampling the noise of a mini-batch gradient is set by the *mean* squared row norm,
  which is exactly ``tr H``; ``R2 / L`` (recorded too) is the worst-case bound that
  the two coincide with under row-norm (Kaczmarz) sampling;
- ``B_sat = tr H / sqrt(L mu)``: where heavy ball reaches the deterministic
  accelerated rate (Lee, Cheng, Paquette & Paquette's implicit conditioning ratio).

Families (config entries, built by :func:`make_problem`; each is deterministic given
its entry):

- ``gaussian``: Gaussian rows, prescribed spectrum (:func:`gaussian_system`);
- ``heavy_tailed``: multivariate Student-t rows, strongly uneven row norms, the same
  prescribed spectrum (:func:`heavy_tailed_system`);
- ``digits_kernel``: the RBF kernel matrix of scikit-learn's bundled digits with the
  labels as right-hand side (:func:`digits_kernel_system`);
- ``matrix``: a user-supplied matrix from a ``.npy``, ``.npz`` or Matrix Market file,
  checked for the interpolation regime (:func:`matrix_system`).

Every family takes ``form: rows | psd`` (default ``rows``). ``psd`` turns the family's
row system into the coordinate-descent problem on its PSD matrix: ``M = H = A^T A / n``
with the same ``x*`` for the synthetic families, ``M = K`` for the kernel, the matrix
itself for ``matrix``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.linalg

from minibatch_momentum.checks import finite as _finite
from minibatch_momentum.checks import is_int as _is_int
from minibatch_momentum.checks import require as _require
from minibatch_momentum.io import atomic_path, write_json

PROFILES = ("geometric", "power")


KINDS = ("rows", "psd")


@dataclass(frozen=True)
class Problem:
    """A consistent system with the eigendecomposition of its Hessian ``H``.

    Two kinds, both with ``f(x) - f(x*) = (x - x*)^T H (x - x*) / 2``:

    - ``rows``: ``f(x) = ||A x - b||^2 / (2n)`` with ``b = A x*`` and ``H = A^T A / n``;
      samplers draw rows of ``A`` (uniform mini-batches, Kaczmarz).
    - ``psd``: ``f(x) = x^T M x / 2 - c^T x`` with ``M = A`` symmetric PSD, ``c = M x*``
      and ``H = M``; samplers draw coordinates (coordinate descent).

    Attributes
    ----------
    A : (n, d) array (``rows``) or the (d, d) matrix ``M`` (``psd``).
    x_star : (d,) array, in the row space of ``A`` (the minimum-norm solution).
    eigvals : (d,) array, eigenvalues of ``H`` in ascending order.
    eigvecs : (d, d) array, orthonormal eigenvectors as columns.
    kind : ``"rows"`` or ``"psd"``.
    """

    A: np.ndarray
    x_star: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray
    kind: str = "rows"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def n(self) -> int:
        """Rows (``rows``) or coordinates (``psd``): what a sampler draws from."""
        return self.A.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1]

    @cached_property
    def b(self) -> np.ndarray:
        return self.A @ self.x_star

    @cached_property
    def A_eig(self) -> np.ndarray:
        """``A V``: the rows in the eigenbasis of ``H``, where the engine works. Cached,
        since every seed of every shard would otherwise redo this ``n d^2`` product."""
        return self.A @ self.eigvecs

    @cached_property
    def H(self) -> np.ndarray:
        return self.A if self.kind == "psd" else self.A.T @ self.A / self.n

    @cached_property
    def tables(self) -> dict:
        """Per-sampler tables, filled by :func:`minibatch_momentum.sampling.samplers.sampling`."""
        return {}

    def spectral_summary(self) -> dict:
        """The scalar quantities the theory is written in (see module docstring)."""
        q = spectral_quantities(self.eigvals)
        if self.kind == "psd":  # the largest coordinate curvature plays the row norm's part
            R2 = float(np.max(np.diag(self.A)))
        else:
            R2 = float(np.max(np.einsum("ij,ij->i", self.A, self.A)))
        return {
            "kind": self.kind,
            "n": self.n,
            "d": self.d,
            "rank": q["rank"],
            "L": q["L"],
            "mu": q["mu"],
            "kappa": q["kappa"],
            "trace": q["trace"],
            "kappa_bar": q["kappa_bar"],
            "R2": R2,
            "stable_rank": q["stable_rank"],
            "B_sgd": q["B_sgd"],
            "B_sgd_worst_case": R2 / q["L"],
            "B_sat": q["B_sat"],
        }


def spectral_quantities(eigvals) -> dict:
    """``L``, ``mu``, ``kappa``, ``tr H``, ``B*_SGD``, ``B_sat`` and the rest of
    :meth:`Problem.spectral_summary` that the eigenvalues alone determine (eigenvalues
    below ``1e-10 L`` count as zero)."""
    lam = np.sort(np.asarray(eigvals, float))
    L = float(lam[-1])
    nonzero = lam[lam > L * 1e-10]
    mu = float(nonzero[0])
    trace = float(lam.sum())
    return {
        "rank": int(nonzero.size),
        "L": L,
        "mu": mu,
        "kappa": L / mu,
        "trace": trace,
        "kappa_bar": trace / mu,
        "stable_rank": trace / L,
        "B_sgd": trace / L,
        "B_sat": trace / float(np.sqrt(L * mu)),
    }


KAPPA_MAX = 1e9  # eigenvalues below 1e-10 L count as zero, and H carries ~1e-16 L round-off


def spectrum(
    d: int,
    kappa: float | None = None,
    profile: str = "geometric",
    L: float = 1.0,
    *,
    alpha: float | None = None,
) -> np.ndarray:
    """Eigenvalues from ``L`` down to ``L / kappa``, ascending.

    ``geometric``: log-uniformly spaced. ``power``: ``lambda_i = L i^(-alpha)`` with
    ``alpha = log(kappa) / log(d)`` so that the smallest is ``L / kappa``; or, with
    ``alpha`` given instead of ``kappa`` (``power`` only), that exponent directly, so
    ``kappa = d^alpha`` is implied. Give exactly one of ``kappa`` and ``alpha``.
    """
    if d < 2:
        raise ValueError(f"d must be at least 2, got {d}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if alpha is not None:
        if kappa is not None:
            raise ValueError("give kappa or alpha, not both (alpha implies kappa = d^alpha)")
        if profile != "power":
            raise ValueError(f"alpha needs profile 'power', got profile {profile!r}")
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        return np.sort(L * np.arange(1, d + 1, dtype=float) ** (-float(alpha)))
    if kappa is None:
        raise ValueError("kappa must be given (or alpha, with profile 'power')")
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    if profile == "geometric":
        lam = L * kappa ** (-np.linspace(0.0, 1.0, d))
    else:
        alpha = np.log(kappa) / np.log(d)
        lam = L * np.arange(1, d + 1, dtype=float) ** (-alpha)
    return np.sort(lam)


def _haar_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _equal_share_solution(lam: np.ndarray, V: np.ndarray, rng: np.random.Generator):
    # Every eigendirection carries the same share 1/d of the initial loss (from x_0 = 0),
    # so iterations-to-eps measure the rate over the whole spectrum, not just its top.
    d = lam.size
    signs = rng.choice([-1.0, 1.0], size=d)
    return V @ (signs / np.sqrt(d * lam))


def _check_form(form: str) -> None:
    if form not in KINDS:
        raise ValueError(f"form: must be one of {list(KINDS)}, got {form!r}")


def _with_form(A: np.ndarray, x_star: np.ndarray, form: str) -> Problem:
    """The row system ``A`` (``rows``) or its coordinate-descent problem on
    ``M = H = A^T A / n`` with the same ``x*`` (``psd``)."""
    if form == "psd":
        return from_psd(A.T @ A / A.shape[0], x_star)
    return from_matrix(A, x_star)


def gaussian_system(
    d: int,
    n: int,
    kappa: float | None = None,
    profile: str = "geometric",
    seed: int = 0,
    *,
    alpha: float | None = None,
    form: str = "rows",
) -> Problem:
    """Gaussian rows with ``H = A^T A / n`` having *exactly* the prescribed spectrum.

    ``A = sqrt(n) Q diag(sqrt(lambda)) V^T`` with ``Q`` the orthonormalized columns of
    an ``n x d`` Gaussian matrix and ``V`` Haar-random: ``A^T A / n = V diag(lambda) V^T``
    to round-off, while for ``n >> d`` each row is close in law to ``N(0, H)``.
    Deterministic given ``seed``; ``alpha`` and ``form`` as in :func:`spectrum` and
    :func:`make_problem` (neither touches the random stream: ``form='rows'`` output is
    bit-identical to the original generator's).
    """
    _check_form(form)
    if n < d:
        raise ValueError(f"n must be >= d for a full-rank Gaussian system, got n={n}, d={d}")
    rng = np.random.default_rng(seed)
    lam = spectrum(d, kappa, profile, alpha=alpha)
    Q, R = np.linalg.qr(rng.standard_normal((n, d)))
    Q = Q * np.sign(np.diag(R))
    V = _haar_orthogonal(d, rng)
    A = np.sqrt(n) * (Q * np.sqrt(lam)) @ V.T
    x_star = _equal_share_solution(lam, V, rng)
    return _with_form(A, x_star, form)


def heavy_tailed_system(
    d: int,
    n: int,
    kappa: float | None = None,
    profile: str = "geometric",
    seed: int = 0,
    *,
    dof: float = 3.0,
    alpha: float | None = None,
    form: str = "rows",
) -> Problem:
    """Multivariate Student-t rows (heavy tails, strongly uneven row norms) with
    ``H = A^T A / n`` having *exactly* the prescribed spectrum.

    Draw ``t_i = s_i g_i`` with ``g_i ~ N(0, I_d)`` and ``s_i = 1 / sqrt(chi2_dof / dof)``
    (one scale per row: a multivariate Student-t with ``dof`` degrees of freedom), then
    right-multiply the ``n x d`` matrix ``T`` by one ``d x d`` matrix: ``T = Q R``
    (thin QR) and ``A = sqrt(n) Q diag(sqrt(lambda)) V^T = T (sqrt(n) R^-1
    diag(sqrt(lambda)) V^T)`` with ``V`` Haar-random, so ``A^T A / n = V diag(lambda) V^T``
    to round-off (as in :func:`gaussian_system`) while each row keeps its own scale
    ``s_i``. ``x*`` carries the same share of the initial loss in every eigendirection.

    Row norms: ``||a_i||^2 ~ s_i^2 tr H / E[s^2]``, so the largest row norm
    ``R2 = max ||a_i||^2`` is far above the mean one (``tr H``) and uniform and row-norm
    (Kaczmarz) sampling differ. With the default ``dof = 3`` (``P(s^2 > t) ~ t^-1.5``),
    measured over seeds 0-4: ``R2 / tr H`` = 32-70 at ``d = 32, n = 4096, kappa = 1024``
    (geometric) and 68-109 at ``d = 64, n = 16384``, against 3-5 for Gaussian rows with
    the same spectrum; at least 19 (median 47) over 200 seeds at ``d = 16, n = 2048,
    kappa = 100``. It grows roughly like ``n^(2/dof)``. Any ``dof > 0`` is accepted
    (``dof <= 2``: infinite variance, even more uneven norms); ``dof -> inf`` tends to
    Gaussian rows.

    Deterministic given ``seed``. ``form='psd'`` gives the coordinate-descent problem on
    ``M = H`` (the rows' tails do not enter it).
    """
    _check_form(form)
    if n < d:
        raise ValueError(f"n must be >= d for a full-rank system, got n={n}, d={d}")
    if not (_finite(dof) and dof > 0):
        raise ValueError(f"dof: must be a number > 0, got {dof!r}")
    rng = np.random.default_rng(seed)
    lam = spectrum(d, kappa, profile, alpha=alpha)
    G = rng.standard_normal((n, d))
    with np.errstate(divide="ignore", over="ignore"):
        s = np.sqrt(dof / rng.chisquare(dof, size=n))
    if not np.all(np.isfinite(s)):
        raise ValueError(f"dof: {dof} is too small, a row's scale overflowed")
    Q, R = np.linalg.qr(s[:, None] * G)
    Q = Q * np.sign(np.diag(R))
    V = _haar_orthogonal(d, rng)
    A = np.sqrt(n) * (Q * np.sqrt(lam)) @ V.T
    x_star = _equal_share_solution(lam, V, rng)
    return _with_form(A, x_star, form)


def from_matrix(A: np.ndarray, x_star: np.ndarray) -> Problem:
    """Wrap a matrix and a solution; ``x*`` is projected onto the row space of ``A``.

    The component of ``x*`` in the null space of ``A`` is invisible to ``f`` and to
    every gradient, so dropping it makes ``x*`` the minimizer closest to the origin
    that all methods converge to from ``x_0 = 0``.
    """
    A = np.asarray(A, dtype=np.float64)
    lam, V = scipy.linalg.eigh(A.T @ A / A.shape[0])
    lam = np.clip(lam, 0.0, None)
    null = lam <= lam[-1] * 1e-10
    x_star = np.asarray(x_star, dtype=np.float64)
    x_star = x_star - V[:, null] @ (V[:, null].T @ x_star)
    return Problem(A=A, x_star=x_star, eigvals=lam, eigvecs=V)


def from_psd(M: np.ndarray, x_star: np.ndarray) -> Problem:
    """Wrap a symmetric PSD ``M`` as the problem ``M x = M x*`` (kind ``psd``);
    ``x*`` is projected onto the range of ``M`` as in :func:`from_matrix`."""
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be square, got shape {M.shape}")
    M = 0.5 * (M + M.T)
    lam, V = scipy.linalg.eigh(M)
    if lam[0] < -1e-10 * max(lam[-1], 0.0) or not lam[-1] > 0:
        raise ValueError(f"M must be positive semi-definite, smallest eigenvalue {lam[0]:.3g}")
    lam = np.clip(lam, 0.0, None)
    null = lam <= lam[-1] * 1e-10
    x_star = np.asarray(x_star, dtype=np.float64)
    x_star = x_star - V[:, null] @ (V[:, null].T @ x_star)
    return Problem(A=M, x_star=x_star, eigvals=lam, eigvecs=V, kind="psd")


DIGITS_SIZE = 1797  # points in scikit-learn's bundled digits
DIGITS_MIN = 16  # fewer points than this make a kernel too small to sweep
CONSISTENCY_TOL = 1e-8


def _relative_residual(M: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.linalg.norm(M @ x - y) / np.linalg.norm(y))


def kernel_system(X: np.ndarray, y: np.ndarray, gamma: float, form: str = "rows") -> Problem:
    """The RBF kernel system ``K x* = y`` with ``K_ij = exp(-gamma ||x_i - x_j||^2)``.

    ``rows``: ``A = K`` (``n = d`` = number of points), ``b = y``, so ``H = K^2 / n``;
    ``psd``: ``M = K``, ``c = y``. ``K`` is positive definite on distinct points, so the
    system is consistent and ``x* = K^-1 y`` (Cholesky, ``scipy.linalg.cho_solve``);
    duplicate points (singular ``K``) and a ``gamma`` so small that ``K`` is singular to
    working precision are rejected, as is any ``x*`` whose relative residual
    ``||K x* - y|| / ||y||`` exceeds ``1e-8``.
    """
    _check_form(form)
    if not (_finite(gamma) and gamma > 0):
        raise ValueError(f"gamma: must be a number > 0, got {gamma!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"kernel data: need X (n, p) and y (n,), got {X.shape} and {y.shape}")
    if not np.any(y):
        raise ValueError("kernel data: the right-hand side (labels) is all zero")
    import scipy.spatial.distance  # lazily: only this family needs it

    D = scipy.spatial.distance.cdist(X, X, "sqeuclidean")
    np.fill_diagonal(D, np.inf)
    if np.any(D == 0):
        i, j = np.argwhere(D == 0)[0]
        count = int(np.sum(D == 0)) // 2
        raise ValueError(
            f"kernel data: {count} pair(s) of duplicate points (e.g. {i} and {j}) make the "
            "kernel matrix singular; remove duplicates"
        )
    np.fill_diagonal(D, 0.0)
    K = np.exp(-gamma * D)
    try:
        x_star = scipy.linalg.cho_solve(scipy.linalg.cho_factor(K), y)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"gamma: {gamma} makes the kernel matrix singular to working precision "
            "(Cholesky failed); use a larger gamma"
        ) from None
    problem = from_psd(K, x_star) if form == "psd" else from_matrix(K, x_star)
    residual = _relative_residual(K, problem.x_star, y)
    if not residual <= CONSISTENCY_TOL:
        kappa = problem.spectral_summary()["kappa"]
        raise ValueError(
            f"gamma: {gamma} makes the kernel system too ill-conditioned (kappa(H) = "
            f"{kappa:.3g}): relative residual ||K x* - y|| / ||y|| = {residual:.3g} > "
            f"{CONSISTENCY_TOL:g}; use a larger gamma"
        )
    return problem


def load_digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (no download): pixels / 16 in [0, 1], labels as floats.

    Read from scikit-learn's own ``datasets/data/digits.csv.gz`` with the parser its
    ``load_digits`` uses (``np.loadtxt``, the same numbers), without importing
    scikit-learn (seconds), so that ``mbm plan`` stays quick; ``load_digits`` itself
    where that file is not found.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is not None and path.is_file():
        import gzip

        with gzip.open(path, "rt") as fh:
            data = np.loadtxt(fh, delimiter=",")
        X, y = data[:, :-1], data[:, -1].astype(int)
    else:  # pragma: no cover - a scikit-learn that stores its data elsewhere
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
    return X / 16.0, y.astype(np.float64)


def digits_kernel_system(
    n_samples: int, gamma: float, seed: int | None = None, form: str = "rows"
) -> Problem:
    """:func:`kernel_system` on ``n_samples`` of the digits (1,797 points, 64 pixels / 16).

    ``seed`` omitted (``None``): the first ``n_samples`` points in the file's order;
    an integer: a random subset of that size drawn without replacement with
    ``numpy.random.default_rng(seed)``, kept in file order. Right-hand side: the labels
    0-9 as floats. Measured for the first 512 points: ``gamma = 1`` rows form (``H =
    K^2 / n``) kappa 1.06e3, stable rank 12.2, B_sat 397; ``gamma = 0.5`` psd form
    (``M = K``) kappa 203, stable rank 26.1, B_sat 371.
    """
    if not (_is_int(n_samples) and DIGITS_MIN <= n_samples <= DIGITS_SIZE):
        raise ValueError(
            f"n_samples: must be an integer in [{DIGITS_MIN}, {DIGITS_SIZE}], got {n_samples!r}"
        )
    X, y = load_digits_data()
    if seed is None:
        idx = np.arange(n_samples)
    else:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(X.shape[0], size=n_samples, replace=False))
    return kernel_system(X[idx], y[idx], gamma, form)


# --------------------------------------------------------------------------- user matrices

MATRIX_SUFFIXES = (".npy", ".npz", ".mtx")
MAX_N, MAX_D = 100_000, 2048
SYMMETRY_TOL = 1e-10  # max |M - M^T| relative to max |M|
PSD_TOL = 1e-10  # smallest eigenvalue >= -PSD_TOL * largest (as in from_psd)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _check_suffix(path: str, field: str) -> tuple[Path, str]:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in MATRIX_SUFFIXES:
        raise ValueError(
            f"{field}: {path!r} has an unsupported extension {suffix or '(none)'!r}; "
            f"expected one of {', '.join(MATRIX_SUFFIXES)}"
        )
    if not p.is_file():
        raise ValueError(
            f"{field}: file not found: {path!r} (relative paths are taken from the "
            f"working directory, {os.getcwd()})"
        )
    return p, suffix


def _check_shape(shape: tuple, path: str, field: str, max_n: int, max_d: int) -> None:
    if len(shape) != 2:
        raise ValueError(f"{field}: {path!r} is not a 2-d matrix (shape {tuple(shape)})")
    if 0 in shape:
        raise ValueError(f"{field}: {path!r} is empty (shape {tuple(shape)})")
    for size, limit, what in ((shape[0], max_n, "rows"), (shape[1], max_d, "columns")):
        if size > limit:
            name = "max_n" if what == "rows" else "max_d"
            raise ValueError(
                f"{field}: {path!r} is too large for the profile: {size} {what} (shape "
                f"{tuple(shape)}), more than {name}={limit}"
            )


def _as_real(a, path: str, field: str) -> np.ndarray:
    import scipy.sparse

    if scipy.sparse.issparse(a):
        a = a.toarray()
    a = np.asarray(a)
    if np.iscomplexobj(a):
        raise ValueError(f"{field}: {path!r} has complex entries; a real matrix is needed")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"{field}: {path!r} is not numeric (dtype {a.dtype})")
    return np.array(a, dtype=np.float64)


def _check_finite(a: np.ndarray, path: str, field: str) -> None:
    if n_nan := int(np.isnan(a).sum()):
        raise ValueError(f"{field}: {path!r} contains NaN ({n_nan} entries)")
    if n_inf := int(np.isinf(a).sum()):
        raise ValueError(f"{field}: {path!r} contains inf ({n_inf} entries)")


def _read_matrix(path: str, max_n: int, max_d: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The matrix in ``path`` and, for ``.npz``, its array ``b`` if present. The size is
    checked before the data are read where the format allows (.npy, .mtx)."""
    p, suffix = _check_suffix(path, "path")
    b = None
    try:
        if suffix == ".npy":
            a = np.load(p, mmap_mode="r", allow_pickle=False)
            _check_shape(a.shape, path, "path", max_n, max_d)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if "A" not in z.files:
                    raise ValueError(f"path: {path!r} has no array 'A' (found {z.files})")
                a = z["A"]
                _check_shape(a.shape, path, "path", max_n, max_d)
                b = z["b"] if "b" in z.files else None
        else:
            import scipy.io

            rows, cols, _entries, _fmt, field, _sym = scipy.io.mminfo(p)
            _check_shape((rows, cols), path, "path", max_n, max_d)
            if field == "complex":
                raise ValueError(f"path: {path!r} has complex entries; a real matrix is needed")
            a = scipy.io.mmread(p)
        a = _as_real(a, path, "path")
    except ValueError as exc:
        if str(exc).startswith("path: "):
            raise
        raise ValueError(f"path: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    except Exception as exc:  # unreadable: corrupt archive, bad header, pickled objects...
        raise ValueError(f"path: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    _check_shape(a.shape, path, "path", max_n, max_d)
    return a, b


def _read_vector(path: str) -> np.ndarray:
    p, suffix = _check_suffix(path, "rhs")
    if suffix == ".npz":
        raise ValueError(f"rhs: {path!r}: give the right-hand side as .npy or .mtx")
    import scipy.io

    try:
        v = np.load(p, allow_pickle=False) if suffix == ".npy" else scipy.io.mmread(p)
        v = _as_real(v, path, "rhs")
    except ValueError as exc:
        if str(exc).startswith("rhs: "):
            raise
        raise ValueError(f"rhs: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    except Exception as exc:
        raise ValueError(f"rhs: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    if not (v.ndim == 1 or (v.ndim == 2 and 1 in v.shape)):
        raise ValueError(f"rhs: {path!r} is not a vector (shape {v.shape})")
    return v.ravel()


def read_system(
    path: str, rhs: str | None = None, form: str = "rows", max_n: int = MAX_N, max_d: int = MAX_D
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """The checked matrix and right-hand side of :func:`matrix_system`, without solving.

    Every check of :func:`matrix_system` but consistency (which needs a solve): returns
    ``(A, b, source)`` with ``b`` (and ``source``, the field that gave it) None when no
    right-hand side was given. ``A`` is symmetrized for ``form='psd'``.
    """
    _check_form(form)
    A, b_inside = _read_matrix(path, max_n, max_d)
    _check_finite(A, path, "path")
    if not np.any(A):
        raise ValueError(f"path: {path!r} is an all-zero matrix")
    n, d = A.shape
    if form == "psd":
        if n != d:
            raise ValueError(f"path: {path!r} must be square for form 'psd', got shape {A.shape}")
        scale = float(np.abs(A).max())
        asym = float(np.abs(A - A.T).max())
        if asym > SYMMETRY_TOL * scale:
            raise ValueError(
                f"path: {path!r} is not symmetric (max |A - A^T| = {asym:.3g}, "
                f"{asym / scale:.3g} of max |A|), as form 'psd' needs"
            )
        A = 0.5 * (A + A.T)
        ev = scipy.linalg.eigvalsh(A)
        if ev[0] < -PSD_TOL * max(ev[-1], 0.0) or not ev[-1] > 0:
            raise ValueError(
                f"path: {path!r} is not positive semi-definite (smallest eigenvalue "
                f"{ev[0]:.3g}, largest {ev[-1]:.3g}), as form 'psd' needs"
            )
    if b_inside is not None and rhs is not None:
        raise ValueError(f"rhs: {path!r} already holds 'b'; give the right-hand side once")
    if rhs is not None:
        b, source = _read_vector(rhs), f"rhs: {rhs!r}"
    elif b_inside is not None:
        b, source = _as_real(b_inside, path, "path").ravel(), f"path: 'b' in {path!r}"
    else:
        return A, None, None
    if b.shape != (n,):
        raise ValueError(f"{source} has length {b.size}, the matrix has {n} rows")
    if n_nan := int(np.isnan(b).sum()):
        raise ValueError(f"{source} contains NaN ({n_nan} entries)")
    if n_inf := int(np.isinf(b).sum()):
        raise ValueError(f"{source} contains inf ({n_inf} entries)")
    if not np.any(b):
        raise ValueError(f"{source} is all zero (x* = 0: nothing to solve)")
    return A, b, source


def matrix_system(
    path: str,
    rhs: str | None = None,
    form: str = "rows",
    seed: int = 0,
    max_n: int = MAX_N,
    max_d: int = MAX_D,
    tol: float = CONSISTENCY_TOL,
) -> Problem:
    """A user-supplied matrix, checked for the interpolation regime.

    ``path``: ``.npy`` (the matrix), ``.npz`` (array ``A`` and optionally the right-hand
    side ``b``; other arrays are ignored) or Matrix Market ``.mtx`` (``scipy.io.mmread``;
    sparse is made dense). ``rhs``: optional ``.npy`` or ``.mtx`` vector (not together with
    a ``b`` inside the ``.npz``). Relative paths are taken from the current working
    directory (the workflow root under Snakemake).

    ``form='rows'``: least squares ``||A x - b||^2 / (2n)``; ``form='psd'``: ``A`` must be
    square, symmetric (``max |A - A^T| <= 1e-10 max |A|``) and PSD (smallest eigenvalue
    ``>= -1e-10`` times the largest), and the problem is ``A x = c``. Without a
    right-hand side, ``b = A x_0`` for ``x_0 ~ N(0, I)`` drawn with ``seed`` (consistent by
    construction). ``x*`` is the minimum-norm least-squares solution
    (``scipy.linalg.lstsq``, singular values below ``1e-5 sigma_max`` (rows) or
    eigenvalues below ``1e-10 lambda_max`` (psd) taken as zero, the cut-off that
    :func:`from_matrix` / :func:`from_psd` use for the null space).

    Every failure is a one-line ``ValueError`` naming the field, the file and the reason:
    unsupported extension, missing or unreadable file, not 2-d, empty, larger than
    ``max_n`` rows or ``max_d`` columns, NaN, inf, all zero, (psd) not square, not
    symmetric or not PSD, a right-hand side of the wrong length / with NaN or inf / all
    zero, and an inconsistent system: relative residual ``||A x* - b|| / ||b|| > tol``.
    """
    A, b, source = read_system(path, rhs, form, max_n, max_d)
    if b is None:
        x0 = np.random.default_rng(seed).standard_normal(A.shape[1])
        return from_psd(A, x0) if form == "psd" else from_matrix(A, x0)
    if form == "psd":
        x_ls = scipy.linalg.lstsq(A, b, cond=PSD_TOL)[0]
        problem = from_psd(A, x_ls)
    else:
        x_ls = scipy.linalg.lstsq(A, b, cond=np.sqrt(1e-10))[0]
        problem = from_matrix(A, x_ls)
    residual = _relative_residual(A, problem.x_star, b)
    if not residual <= tol:
        rank = problem.spectral_summary()["rank"]
        raise ValueError(
            f"{source}: inconsistent system with {path!r}: relative residual "
            f"||A x_ls - b|| / ||b|| = {residual:.3g} at the minimum-norm least-squares "
            f"solution exceeds the tolerance {tol:g} (effective rank {rank} of "
            f"{min(A.shape)}); the interpolation regime needs a consistent system b = A x*"
        )
    return problem


_SPECTRUM = {"kappa", "alpha", "profile"}
_FAMILIES = {
    # family: (required fields, optional fields); kappa or alpha is checked separately
    "gaussian": ({"d", "n", "seed"}, _SPECTRUM | {"form"}),
    "heavy_tailed": ({"d", "n", "seed"}, _SPECTRUM | {"dof", "form"}),
    "digits_kernel": ({"n_samples", "gamma"}, {"seed", "form"}),
    "matrix": ({"path"}, {"rhs", "form", "seed", "max_n", "max_d", "tol"}),
}
FAMILIES = tuple(_FAMILIES)


def _int_field(spec: dict, name: str, least: int, most: int | None = None) -> None:
    if name in spec:
        value = spec[name]
        ok = _is_int(value) and value >= least and (most is None or value <= most)
        rule = f"an integer >= {least}" if most is None else f"an integer in [{least}, {most}]"
        _require(ok, name, rule, value)


def _spectrum_fields(spec: dict, family: str) -> dict:
    """``kappa`` xor ``alpha`` (the latter only with ``profile: power``), and ``profile``."""
    profile = spec.get("profile", "geometric")
    _require(profile in PROFILES, "profile", f"one of {list(PROFILES)}", profile)
    if "alpha" in spec:
        if "kappa" in spec:
            raise ValueError("kappa: give kappa or alpha, not both (alpha implies kappa = d^alpha)")
        alpha = spec["alpha"]
        _require(_finite(alpha) and alpha >= 0, "alpha", "a number >= 0", alpha)
        if profile != "power":
            raise ValueError(
                f"alpha: needs profile 'power' (lambda_i = i^-alpha), got profile {profile!r}"
            )
        _require(
            alpha * np.log(spec["d"]) <= np.log(KAPPA_MAX),
            "alpha",
            f"such that d^alpha <= {KAPPA_MAX:g}",
            alpha,
        )
        return {"kappa": None, "alpha": float(alpha), "profile": profile}
    if "kappa" not in spec:
        raise ValueError(
            f"missing field(s) for family {family!r}: ['kappa'] (or 'alpha' with profile 'power')"
        )
    kappa = spec["kappa"]
    _require(
        _finite(kappa) and 1 <= kappa <= KAPPA_MAX,
        "kappa",
        f"a number in [1, {KAPPA_MAX:g}]",
        kappa,
    )
    return {"kappa": float(kappa), "alpha": None, "profile": profile}


def make_problem(spec: dict) -> Problem:
    """Build a problem from its config entry (``family`` plus the family's parameters).

    Fields per family (``?`` optional, default after ``=``):

    - ``gaussian``: ``d``, ``n``, ``seed``, ``kappa`` | ``alpha``, ``profile? = geometric``,
      ``form? = rows`` (:func:`gaussian_system`);
    - ``heavy_tailed``: as ``gaussian`` plus ``dof? = 3`` (:func:`heavy_tailed_system`);
    - ``digits_kernel``: ``n_samples`` (16-1797), ``gamma`` (> 0), ``seed?`` (omitted:
      the first points), ``form? = rows`` (:func:`digits_kernel_system`);
    - ``matrix``: ``path``, ``rhs?``, ``form? = rows``, ``seed? = 0``,
      ``max_n? = 100000``, ``max_d? = 2048``, ``tol? = 1e-8`` (:func:`matrix_system`).

    Spectrum: exactly one of ``kappa`` (>= 1) and ``alpha`` (>= 0, only with
    ``profile: power``: ``lambda_i = i^-alpha``, so ``kappa = d^alpha``); the implied
    ``kappa`` is at most 1e9. ``form: psd`` gives the coordinate-descent problem on the
    family's PSD matrix (``M = H = A^T A / n``, or ``K`` for the kernel).

    Raises ``ValueError`` naming the first bad field (or, for ``matrix``, the file and
    what is wrong with it); missing and unknown fields are rejected.
    """
    family, kw = check_problem_spec(spec)
    if family == "gaussian":
        return gaussian_system(**kw)
    if family == "heavy_tailed":
        return heavy_tailed_system(**kw)
    if family == "digits_kernel":
        return digits_kernel_system(**kw)
    return matrix_system(**kw)


def check_problem_spec(spec: dict) -> tuple[str, dict]:
    """Every check of :func:`make_problem` that needs no data (the workflow runs it on
    each problem before any job; a ``matrix`` file itself is read by the job).

    Returns ``(family, keyword arguments of the family's generator)``; raises
    ``ValueError`` naming the first bad field.
    """
    spec = dict(spec)
    family = spec.pop("family", None)
    if family not in _FAMILIES:
        raise ValueError(f"family: must be one of {sorted(_FAMILIES)}, got {family!r}")
    required, optional = _FAMILIES[family]
    if missing := sorted(required - set(spec)):
        raise ValueError(f"missing field(s) for family {family!r}: {missing}")
    if unknown := sorted(set(spec) - required - optional):
        raise ValueError(f"unknown field(s) for family {family!r}: {unknown}")
    form = spec.get("form", "rows")
    _check_form(form)
    _int_field(spec, "seed", 0)
    if family in ("gaussian", "heavy_tailed"):
        for name in ("d", "n"):
            _int_field(spec, name, 2)
        d, n = spec["d"], spec["n"]
        if n < d:
            raise ValueError(f"n must be >= d for a full-rank system, got n={n}, d={d}")
        kw = dict(d=spec["d"], n=spec["n"], seed=spec["seed"], form=form)
        kw.update(_spectrum_fields(spec, family))
        if family == "heavy_tailed":
            dof = spec.get("dof", 3.0)
            _require(_finite(dof) and dof > 0, "dof", "a number > 0", dof)
            kw["dof"] = float(dof)
        return family, kw
    if family == "digits_kernel":
        _int_field(spec, "n_samples", DIGITS_MIN, DIGITS_SIZE)
        gamma = spec["gamma"]
        _require(_finite(gamma) and gamma > 0, "gamma", "a number > 0", gamma)
        return family, dict(
            n_samples=spec["n_samples"], gamma=float(gamma), seed=spec.get("seed"), form=form
        )
    for name in ("path", "rhs"):
        if name in spec:
            value = spec[name]
            _require(isinstance(value, str) and value != "", name, "a non-empty file path", value)
    _int_field(spec, "max_n", 1)
    _int_field(spec, "max_d", 1)
    tol = spec.get("tol", CONSISTENCY_TOL)
    _require(_finite(tol) and 0 < tol < 1, "tol", "a number in (0, 1)", tol)
    return family, dict(
        path=spec["path"],
        rhs=spec.get("rhs"),
        form=form,
        seed=spec.get("seed", 0),
        max_n=spec.get("max_n", MAX_N),
        max_d=spec.get("max_d", MAX_D),
        tol=float(tol),
    )


def input_files(spec: dict) -> list[str]:
    """The files a problem's job reads besides the code (a ``matrix`` problem's matrix
    and right-hand side), so the workflow lists them as inputs."""
    if spec.get("family") != "matrix":
        return []
    return [spec[k] for k in ("path", "rhs") if isinstance(spec.get(k), str)]


def save_problem(problem: Problem, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write ``<path>`` (.npz arrays) and ``<path stem>.json`` (spectral metadata)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                A=problem.A,
                x_star=problem.x_star,
                b=problem.b,
                eigvals=problem.eigvals,
                eigvecs=problem.eigvecs,
                kind=problem.kind,
            )
    write_json({**(meta or {}), **problem.spectral_summary()}, metadata_path(path))


def metadata_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def load_problem(path: str | os.PathLike) -> Problem:
    with np.load(path) as z:
        kind = str(z["kind"]) if "kind" in z.files else "rows"
        return Problem(
            A=z["A"], x_star=z["x_star"], eigvals=z["eigvals"], eigvecs=z["eigvecs"], kind=kind
        )
