"""Dense (finite-sample) second moments: any ``A``, ``O(n d^2 + d^3)`` per step.

``Sigma_t = E[z_t z_t^T]`` iterated as a full ``(2d, 2d)`` matrix (the derivation in
:mod:`~minibatch_momentum.theory`): the reference the closed forms are checked against,
for either noise operator, the exact one of this ``A`` (``"finite"``) or the
Gaussian-rows one with the same ``H`` (``"gaussian"``).
"""

from __future__ import annotations

import numpy as np

from minibatch_momentum.sampling.samplers import noise_factor
from minibatch_momentum.theory.common import MomentCurve, check_params, gamma_of

NOISE_MODELS = ("finite", "gaussian")


def mean_transition(H: np.ndarray, method: str, eta: float, beta: float) -> np.ndarray:
    """``Mbar`` acting on ``z = (e_t, e_{t-1})``, shape ``(2d, 2d)``."""
    g = gamma_of(method, beta)
    d = H.shape[0]
    eye = np.eye(d)
    M = np.zeros((2 * d, 2 * d))
    M[:d, :d] = (1 + beta) * eye - eta * (1 + g) * H
    M[:d, d:] = -beta * eye + eta * g * H
    M[d:, :d] = eye
    return M


def lookahead_map(d: int, method: str, beta: float) -> np.ndarray:
    """``W`` with ``y_t - x* = W z_t``, shape ``(d, 2d)``."""
    g = gamma_of(method, beta)
    return np.hstack([(1 + g) * np.eye(d), -g * np.eye(d)])


def sampling_noise(A: np.ndarray, X: np.ndarray, c: float, H: np.ndarray | None = None):
    """Finite-sample noise operator ``N(X) = c (D(X) - H X H)``.

    ``D(X) = A^T diag(A X A^T) A / n``; ``H`` is recomputed from ``A`` unless given.
    """
    n = A.shape[0]
    H = A.T @ A / n if H is None else H
    q = np.einsum("ij,ij->i", A @ X, A)  # a_i^T X a_i
    return c * ((A.T * q) @ A / n - H @ X @ H)


def gaussian_sampling_noise(H: np.ndarray, X: np.ndarray, c: float) -> np.ndarray:
    """Gaussian-rows noise operator ``N(X) = c (H X H + tr(H X) H)``."""
    return c * (H @ X @ H + np.trace(H @ X) * H)


def _dense_setup(A, method, batch_size, eta, beta, replace, noise):
    check_params(method, eta, beta)
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
    A = np.asarray(A, float)
    n, d = A.shape
    H = A.T @ A / n
    c = noise_factor(batch_size, n, replace)
    return A, H, c, mean_transition(H, method, eta, beta), lookahead_map(d, method, beta)


def dense_curve(
    A: np.ndarray,
    x_star: np.ndarray,
    method: str,
    batch_size: int,
    eta: float,
    beta: float,
    steps: int,
    *,
    replace: bool = True,
    noise: str = "finite",
    x0: np.ndarray | None = None,
) -> MomentCurve:
    """Exact ``E f(x_t)`` and ``E ||x_t - x*||^2`` by iterating ``Sigma_t`` densely.

    Parameters
    ----------
    A, x_star : the system (``b = A x*``).
    method, batch_size, eta, beta : as in :func:`minibatch_momentum.simulate.engine.trajectory`.
    steps : number of steps ``T``.
    replace : rows i.i.d. or distinct within a step.
    noise : ``"finite"`` (the exact operator of this ``A``) or ``"gaussian"`` (the
        Gaussian-rows operator with the same ``H``).
    x0 : start (default 0); ``x_{-1} = x_0``.

    Returns
    -------
    MomentCurve with ``(T + 1,)`` arrays.
    """
    A, H, c, M, W = _dense_setup(A, method, batch_size, eta, beta, replace, noise)
    d = A.shape[1]
    x0 = np.zeros(d) if x0 is None else np.asarray(x0, float)
    e0 = x0 - np.asarray(x_star, float)
    z0 = np.concatenate([e0, e0])
    S = np.outer(z0, z0)
    loss, dist = np.empty(steps + 1), np.empty(steps + 1)
    for t in range(steps + 1):
        P = S[:d, :d]
        loss[t], dist[t] = 0.5 * np.sum(H * P), np.trace(P)
        if t == steps:
            break
        X = W @ S @ W.T
        N = sampling_noise(A, X, c, H) if noise == "finite" else gaussian_sampling_noise(H, X, c)
        S = M @ S @ M.T
        S[:d, :d] += eta**2 * N
        # Round-off makes S slightly non-symmetric; left alone, that excites
        # antisymmetric modes that the true second moment does not have.
        S = 0.5 * (S + S.T)
    return MomentCurve(loss=loss, dist=dist)


def dense_operator(
    A: np.ndarray,
    method: str,
    batch_size: int,
    eta: float,
    beta: float,
    *,
    replace: bool = True,
    noise: str = "finite",
) -> np.ndarray:
    """The second-moment map as a ``(4 d^2, 4 d^2)`` matrix on row-major ``vec(Sigma)``.

    ``vec(M S M^T) = (M kron M) vec(S)``; ``vec(D(X)) = (1/n) K^T K vec(X)`` with rows
    ``K_i = a_i kron a_i``. Meant for small ``d`` (checks, exact spectra).
    """
    A, H, c, M, W = _dense_setup(A, method, batch_size, eta, beta, replace, noise)
    n, d = A.shape
    if noise == "finite":
        K = np.einsum("ij,ik->ijk", A, A).reshape(n, d * d)
        N = c * (K.T @ K / n - np.kron(H, H))
    else:
        h = H.reshape(-1)
        N = c * (np.kron(H, H) + np.outer(h, h))
    E1 = np.vstack([np.eye(d), np.zeros((d, d))])
    return np.kron(M, M) + eta**2 * np.kron(E1, E1) @ N @ np.kron(W, W)


def dense_rate(A: np.ndarray, method: str, batch_size: int, eta: float, beta: float, **kw) -> float:
    """Spectral radius of :func:`dense_operator` (keywords passed on)."""
    op = dense_operator(A, method, batch_size, eta, beta, **kw)
    return float(np.max(np.abs(np.linalg.eigvals(op))))
