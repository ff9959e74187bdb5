"""Kernel systems: the RBF kernel matrix of a point set, and of scikit-learn's digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minibatch_momentum.checks import finite as _finite
from minibatch_momentum.checks import is_int as _is_int
from minibatch_momentum.problems.system import (
    CONSISTENCY_TOL,
    Problem,
    check_form,
    from_form,
    require_consistent,
)

DIGITS_SIZE = 1797  # points in scikit-learn's bundled digits
DIGITS_MIN = 16  # fewer points than this make a kernel too small to sweep


def kernel_system(X: np.ndarray, y: np.ndarray, gamma: float, form: str = "rows") -> Problem:
    """The RBF kernel system ``K x* = y`` with ``K_ij = exp(-gamma ||x_i - x_j||^2)``.

    ``rows``: ``A = K`` (``n = d`` = number of points), ``b = y``, so ``H = K^2 / n``;
    ``psd``: ``M = K``, ``c = y``. ``K`` is positive definite on distinct points, so the
    system is consistent and ``x* = K^-1 y`` (Cholesky, ``scipy.linalg.cho_solve``);
    duplicate points (singular ``K``) and a ``gamma`` so small that ``K`` is singular to
    working precision are rejected, as is any ``x*`` whose relative residual
    ``||K x* - y|| / ||y||`` exceeds ``1e-8``.
    """
    check_form(form)
    if not (_finite(gamma) and gamma > 0):
        raise ValueError(f"gamma: must be a number > 0, got {gamma!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"kernel data: need X (n, p) and y (n,), got {X.shape} and {y.shape}")
    if not np.any(y):
        raise ValueError("kernel data: the right-hand side (labels) is all zero")
    import scipy.linalg
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
    problem = from_form(K, x_star, form)
    return require_consistent(
        problem,
        K,
        y,
        CONSISTENCY_TOL,
        lambda residual: (
            f"gamma: {gamma} makes the kernel system too ill-conditioned (kappa(H) = "
            f"{problem.spectral_summary()['kappa']:.3g}): relative residual "
            f"||K x* - y|| / ||y|| = {residual:.3g} > {CONSISTENCY_TOL:g}; use a larger gamma"
        ),
    )


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
