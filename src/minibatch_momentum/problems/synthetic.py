"""Synthetic families with an exactly prescribed spectrum: Gaussian and heavy-tailed rows.

Both draw ``A = sqrt(n) Q diag(sqrt(lambda)) V^T`` (``Q`` orthonormal, ``V`` Haar-random),
so ``H = A^T A / n = V diag(lambda) V^T`` to round-off, and put ``x*`` with the same share
of the initial loss in every eigendirection. Deterministic given ``seed``.
"""

from __future__ import annotations

import numpy as np

from minibatch_momentum.checks import finite as _finite
from minibatch_momentum.problems.system import Problem, check_form, from_form, spectrum


def _haar_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _equal_share_solution(lam: np.ndarray, V: np.ndarray, rng: np.random.Generator):
    # Every eigendirection carries the same share 1/d of the initial loss (from x_0 = 0),
    # so iterations-to-eps measure the rate over the whole spectrum, not just its top.
    d = lam.size
    signs = rng.choice([-1.0, 1.0], size=d)
    return V @ (signs / np.sqrt(d * lam))


def _with_form(A: np.ndarray, x_star: np.ndarray, form: str) -> Problem:
    """The row system ``A`` (``rows``) or its coordinate-descent problem on
    ``M = H = A^T A / n`` with the same ``x*`` (``psd``)."""
    return from_form(A.T @ A / A.shape[0] if form == "psd" else A, x_star, form)


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
    check_form(form)
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
    check_form(form)
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
