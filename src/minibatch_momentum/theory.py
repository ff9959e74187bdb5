r"""Exact mean-square dynamics of mini-batch SGD, heavy ball and Nesterov (DESIGN.md §2).

Everything here is exact: expected loss curves, asymptotic rates and the tuned
``T*(B)`` curves follow from the second moments of the error, with no constant fitted
and no Monte Carlo. :mod:`~minibatch_momentum.engine` simulates the same recursion; the
tests check the two against each other.

Derivation
----------
Write ``e_t = x_t - x*``, ``z_t = (e_t, e_{t-1})`` and ``u_t = y_t - x* = W z_t`` with
``W = [(1 + gamma) I, -gamma I]`` (``gamma = beta`` for ``nag``, 0 otherwise). With
``H_S = A_S^T A_S / B`` the step of :mod:`~minibatch_momentum.engine` reads::

    z_{t+1} = Mbar z_t - eta E1 (H_S - H) u_t,   E1 = [I; 0],
    Mbar    = [[(1 + beta) I - eta (1 + gamma) H,  -beta I + eta gamma H],
               [I,                                 0                    ]].

``E[H_S] = H`` and the batch of step ``t`` is independent of ``z_t``, so the cross
terms vanish and ``Sigma_t = E[z_t z_t^T]`` obeys the linear recursion::

    Sigma_{t+1} = Mbar Sigma_t Mbar^T + eta^2 E1 N(W Sigma_t W^T) E1^T,
    N(X) = E[H_S X H_S] - H X H.

*With replacement* the ``B`` rows are i.i.d. uniform, so ``E[H_S X H_S] =
D(X) / B + (1 - 1/B) H X H`` with ``D(X) = E_i[a_i a_i^T X a_i a_i^T]
= (1/n) A^T diag(A X A^T) A``, hence ``N(X) = (1/B) (D(X) - H X H)``.
*Without replacement* two distinct rows ``i != j`` give
``E[a_i a_i^T X a_j a_j^T] = (n H X H - D(X)) / (n - 1)``; summing the ``B`` diagonal
and ``B (B - 1)`` off-diagonal pairs gives ``N(X) = c_B (D(X) - H X H)`` with
``c_B = (n - B) / (B (n - 1))``, exactly zero at ``B = n``. For *Gaussian rows*
``a ~ N(0, H)`` Isserlis' theorem gives ``D(X) = 2 H X H + tr(H X) H`` for symmetric
``X``, so ``N(X) = c_B (H X H + tr(H X) H)``.

*Gaussian closed form.* In the eigenbasis of ``H`` the mean transition is a direct sum
of 2x2 blocks ``[[a_i, b_i], [1, 0]]`` with ``a_i = 1 + beta - eta (1 + gamma) lam_i``
and ``b_i = -beta + eta gamma lam_i``, and the diagonal of ``N(X)`` is
``c_B (lam_i^2 X_ii + lam_i sum_j lam_j X_jj)``. So the diagonal 2x2 blocks
``(p_i, q_i, s_i) = (E e_{t,i}^2, E e_{t,i} e_{t-1,i}, E e_{t-1,i}^2)`` close::

    x_i  = (1 + gamma)^2 p_i - 2 gamma (1 + gamma) q_i + gamma^2 s_i     (= E u_i^2)
    p_i' = a_i^2 p_i + 2 a_i b_i q_i + b_i^2 s_i + eta^2 c_B (lam_i^2 x_i + lam_i sum_j lam_j x_j)
    q_i' = a_i p_i + b_i q_i,     s_i' = p_i,

and the loss ``E f = (1/2) sum_i lam_i p_i`` and ``E ||e||^2 = sum_i p_i`` need no more.

*Rate.* This map is ``T = (direct sum of 3x3 blocks D_i) + (rank one)``: ``D_i`` is the
block's own recursion (including its ``lam_i^2 x_i`` noise), and the rank-one part is
the ``sum_j lam_j x_j`` coupling. By the matrix determinant lemma, an eigenvalue ``z``
of ``T`` that is not one of a block's solves the secular equation::

    phi(z) = sum_i kappa_i G_i(z) / Q_i(z) = 1,    kappa_i = eta^2 c_B lam_i^2,

where ``Q_i(z) = det(z - D_i)`` and ``G_i / Q_i`` is the response of ``x_i`` to a unit
injection into ``p_i`` (``G_i`` a quadratic). Every map here is a second moment
``Sigma -> E[M Sigma M^T]``, so it preserves the cone of PSD matrices and, by
Krein-Rutman, its spectral radius is an eigenvalue with a PSD eigenvector; the
diagonal blocks of a nonzero PSD matrix are not all zero, so the closed map has the same
spectral radius as the full one. Positivity also makes ``phi`` a series in ``1/z`` with
non-negative coefficients above ``rho_D = max_i rho(D_i)``, hence decreasing there:
``rho`` is the unique root of ``phi = 1`` above ``rho_D`` (or ``rho_D`` when ``phi`` stays
below 1). ``z > rho(D_i)`` is certified without computing roots: ``rho(D_i)`` is the
largest real root of the monic cubic ``Q_i`` and all others have modulus at most it, so
``Q_i'' >= 0`` beyond it and, by Budan-Fourier, ``z > rho(D_i)`` iff
``Q_i(z), Q_i'(z), Q_i''(z) > 0``. Everything is evaluated in ``s = 1 - z`` with
coefficients built from the small numbers ``1 - beta`` and ``eta lam`` (see
:func:`_blocks`) because near ``z = 1`` the textbook coefficients cancel catastrophically.
Cost: ``O(d)`` per evaluation of ``phi``, a few dozen evaluations per rate.

Conventions: "rate" ``rho`` is the spectral radius of the second-moment map, so it is
the *square* of the rate at which ``||e_t||`` contracts (plain GD: ``max |1 - eta
lam|^2``; Polyak's heavy ball: ``beta``). Iterations-to-eps count the steps until the
expected loss (or ``E||e||^2``) is at most ``eps`` times its value at ``x_0``.
Eigenvalues at or below ``1e-12 L`` are null directions: they never move, carry no loss
from ``x_0 = 0`` (``x*`` lies in the row space) and are left out of rates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize

METHODS = ("sgd", "hb", "nag")
NOISE_MODELS = ("finite", "gaussian")

# Eigenvalues below this fraction of the largest are treated as exact zeros (null space).
_NULL_TOL = 1e-12


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------


def noise_factor(batch_size: float, n: int | None = None, replace: bool = True) -> float:
    """The factor ``c_B`` in front of the sampling-noise operator.

    Parameters
    ----------
    batch_size : rows per step, ``B >= 1`` (a float is accepted: the theory is smooth
        in ``B``).
    n : number of rows; needed only without replacement.
    replace : rows drawn i.i.d. (``c_B = 1 / B``) or ``B`` distinct rows
        (``c_B = (n - B) / (B (n - 1))``, zero at ``B = n``).
    """
    B = float(batch_size)
    if not B >= 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if replace:
        return 1.0 / B
    if n is None:
        raise ValueError("sampling without replacement needs n")
    if B > n:
        raise ValueError(f"batch_size={batch_size} exceeds n={n} without replacement")
    return 0.0 if n == 1 else (n - B) / (B * (n - 1))


def _gamma(method: str, beta: float) -> float:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return beta if method == "nag" else 0.0


def _check_params(method: str, eta, beta) -> None:
    eta, beta = np.asarray(eta, float), np.asarray(beta, float)
    if np.any(eta <= 0):
        raise ValueError("eta must be > 0")
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError("beta must lie in [0, 1)")
    if method == "sgd" and np.any(beta != 0):
        raise ValueError("method 'sgd' takes beta = 0 only")
    _gamma(method, 0.0)


def _lookahead_weights(gamma):
    """``(w1, w2, w3)`` with ``E u^2 = w1 p + w2 q + w3 s`` for ``u = (1+g) e_t - g e_{t-1}``."""
    return (1 + gamma) ** 2, -2 * gamma * (1 + gamma), gamma**2


@dataclass(frozen=True)
class MomentCurve:
    """Expected loss ``E f(x_t)`` and squared distance ``E ||x_t - x*||^2``, ``t = 0..T``.

    Arrays are ``(T + 1,)`` for one configuration or ``(T + 1, R)`` for ``R`` of them.
    """

    loss: np.ndarray
    dist: np.ndarray


def iterations_to_eps(curve: np.ndarray, eps: float) -> np.ndarray | float:
    """First ``t`` with ``curve[t] <= eps * curve[0]`` (``inf`` if never), per column."""
    curve = np.asarray(curve, float)
    hit = curve <= eps * curve[0]
    first = np.argmax(hit, axis=0).astype(float)
    out = np.where(hit.any(axis=0), first, np.inf)
    return float(out) if out.ndim == 0 else out


def iterations_from_rate(rho, eps: float):
    """Asymptotic iterations-to-eps ``log(1/eps) / log(1/rho)`` (``inf`` when ``rho >= 1``)."""
    rho = np.asarray(rho, float)
    with np.errstate(divide="ignore"):
        out = np.where(rho < 1, np.log(eps) / np.log(np.where(rho < 1, rho, 0.5)), np.inf)
    return float(out) if out.ndim == 0 else out


def deterministic_optimum(method: str, L: float, mu: float) -> tuple[float, float, float]:
    """Rate-optimal constant ``(eta, beta)`` without noise, and its rate ``rho``.

    ``sgd``: gradient descent, ``eta = 2 / (L + mu)``. ``hb``: Polyak's parameters,
    ``eta = 4 / (sqrt L + sqrt mu)^2``, ``beta = ((sqrt k - 1) / (sqrt k + 1))^2``, where
    every mode has modulus ``sqrt(beta)``. ``nag``: the quadratic-optimal tuning of
    Lessard, Recht & Packard (2016), ``eta = 4 / (3 L + mu)``,
    ``beta = (sqrt(3k + 1) - 2) / (sqrt(3k + 1) + 2)``, modulus ``1 - 2 / sqrt(3k + 1)``.
    ``rho`` is the second-moment rate, the square of the modulus.
    """
    _gamma(method, 0.0)
    kappa = L / mu
    if method == "sgd":
        return 2.0 / (L + mu), 0.0, ((kappa - 1) / (kappa + 1)) ** 2
    if method == "hb":
        sk = np.sqrt(kappa)
        beta = ((sk - 1) / (sk + 1)) ** 2
        return 4.0 / (np.sqrt(L) + np.sqrt(mu)) ** 2, float(beta), float(beta)
    q = np.sqrt(3 * kappa + 1)
    return 4.0 / (3 * L + mu), float((q - 2) / (q + 2)), float((1 - 2 / q) ** 2)


# --------------------------------------------------------------------------------------
# Dense (finite-sample) second moments: any A, O(n d^2 + d^3) per step
# --------------------------------------------------------------------------------------


def mean_transition(H: np.ndarray, method: str, eta: float, beta: float) -> np.ndarray:
    """``Mbar`` acting on ``z = (e_t, e_{t-1})``, shape ``(2d, 2d)``."""
    g = _gamma(method, beta)
    d = H.shape[0]
    eye = np.eye(d)
    M = np.zeros((2 * d, 2 * d))
    M[:d, :d] = (1 + beta) * eye - eta * (1 + g) * H
    M[:d, d:] = -beta * eye + eta * g * H
    M[d:, :d] = eye
    return M


def lookahead_map(d: int, method: str, beta: float) -> np.ndarray:
    """``W`` with ``y_t - x* = W z_t``, shape ``(d, 2d)``."""
    g = _gamma(method, beta)
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
    _check_params(method, eta, beta)
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
    method, batch_size, eta, beta : as in :func:`minibatch_momentum.engine.trajectory`.
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


# --------------------------------------------------------------------------------------
# Gaussian rows: closed form in the eigenbasis, O(d) per step
# --------------------------------------------------------------------------------------


def _positive(eigvals) -> np.ndarray:
    lam = np.asarray(eigvals, float).ravel()
    if lam.size == 0 or not np.all(np.isfinite(lam)) or lam.max() <= 0:
        raise ValueError("eigvals must be finite with a positive maximum")
    return lam[lam > _NULL_TOL * lam.max()]


class _GaussianRecursion:
    """State ``(p, q, s)`` of the closed Gaussian recursion for ``R`` configurations."""

    def __init__(self, eigvals, weights, method, c, eta, beta):
        self.lam = np.asarray(eigvals, float)
        eta, beta = (np.atleast_1d(np.asarray(v, float)) for v in (eta, beta))
        eta, beta = np.broadcast_arrays(eta, beta)
        _check_params(method, eta, beta)
        g = beta if method == "nag" else np.zeros_like(beta)
        lam = self.lam[:, None]
        a = 1 + beta - eta * (1 + g) * lam
        b = -beta + eta * g * lam
        self.aa, self.ab2, self.bb, self.a, self.b = a * a, 2 * a * b, b * b, a, b
        self.w = _lookahead_weights(g)
        self.kick = c * eta**2
        self.p = np.repeat(np.asarray(weights, float)[:, None], eta.size, axis=1)
        self.q, self.s = self.p.copy(), self.p.copy()

    def step(self) -> None:
        lam = self.lam[:, None]
        w1, w2, w3 = self.w
        x = w1 * self.p + w2 * self.q + w3 * self.s  # E u_i^2 at the gradient point
        tau = self.lam @ x  # tr(H X): the rank-one coupling between modes
        p = self.aa * self.p + self.ab2 * self.q + self.bb * self.s
        p += self.kick * (lam * lam * x + lam * tau)
        self.q, self.s, self.p = self.a * self.p + self.b * self.q, self.p, p

    def keep(self, mask: np.ndarray) -> None:
        """Drop the configurations where ``mask`` is False."""
        for name in ("aa", "ab2", "bb", "a", "b", "p", "q", "s"):
            setattr(self, name, getattr(self, name)[:, mask])
        self.kick = np.broadcast_to(self.kick, mask.shape)[mask]
        self.w = tuple(np.broadcast_to(w, mask.shape)[mask] for w in self.w)

    def loss(self) -> np.ndarray:
        return 0.5 * self.lam @ self.p

    def dist(self) -> np.ndarray:
        return self.p.sum(axis=0)


def gaussian_curve(
    eigvals: np.ndarray,
    weights: np.ndarray,
    method: str,
    batch_size: float,
    eta,
    beta,
    steps: int,
    *,
    n: int | None = None,
    replace: bool = True,
) -> MomentCurve:
    """Exact ``E f(x_t)`` and ``E ||x_t - x*||^2`` for Gaussian rows, ``O(d R)`` per step.

    Parameters
    ----------
    eigvals : (d,) eigenvalues of ``H``.
    weights : (d,) squared initial error in the eigenbasis, ``(V^T (x_0 - x*))^2``
        (that is ``(V^T x*)^2`` from ``x_0 = 0``).
    method, batch_size : as in the engine; ``batch_size`` may be a float.
    eta, beta : scalars, or ``(R,)`` arrays for ``R`` configurations at once.
    steps : number of steps ``T``.
    n, replace : set the noise factor, see :func:`noise_factor`.

    Returns
    -------
    MomentCurve with ``(T + 1,)`` arrays, or ``(T + 1, R)`` for array parameters.
    """
    scalar = np.ndim(eta) == 0 and np.ndim(beta) == 0
    rec = _GaussianRecursion(
        eigvals, weights, method, noise_factor(batch_size, n, replace), eta, beta
    )
    R = rec.p.shape[1]
    loss, dist = np.empty((steps + 1, R)), np.empty((steps + 1, R))
    loss[0], dist[0] = rec.loss(), rec.dist()
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            rec.step()
            loss[t], dist[t] = rec.loss(), rec.dist()
    if scalar:
        loss, dist = loss[:, 0], dist[:, 0]
    return MomentCurve(loss=loss, dist=dist)


def gaussian_iterations(
    eigvals: np.ndarray,
    weights: np.ndarray,
    method: str,
    batch_size: float,
    eta: float,
    beta: float,
    eps: float,
    *,
    measure: str = "loss",
    t_max: int = 10**6,
    n: int | None = None,
    replace: bool = True,
) -> float:
    """Exact iterations-to-eps of the Gaussian curve, stepping only until it gets there.

    ``measure``: ``"loss"`` (``E f``) or ``"dist"`` (``E ||e||^2``). ``inf`` if the curve
    stays above ``eps`` times its start for ``t_max`` steps or blows up.
    """
    if measure not in ("loss", "dist"):
        raise ValueError(f"measure must be 'loss' or 'dist', got {measure!r}")
    rec = _GaussianRecursion(
        eigvals, weights, method, noise_factor(batch_size, n, replace), eta, beta
    )
    value = rec.loss if measure == "loss" else rec.dist
    target = eps * float(value()[0])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, t_max + 1):
            rec.step()
            v = float(value()[0])
            if v <= target:
                return float(t)
            if not v < 1e200:
                return np.inf
    return np.inf


def gaussian_iterations_many(
    eigvals: np.ndarray,
    weights: np.ndarray,
    method: str,
    batch_sizes,
    eta,
    beta,
    eps: float,
    *,
    measure: str = "loss",
    t_max: int = 10**6,
    n: int | None = None,
    replace: bool = True,
) -> np.ndarray:
    """:func:`gaussian_iterations` for many ``(B, eta, beta)`` at once (broadcast arrays).

    The configurations step together, ``O(d R)`` per step, and each leaves the batch
    when it gets to ``eps`` or blows up; the results equal one-at-a-time calls.
    """
    if measure not in ("loss", "dist"):
        raise ValueError(f"measure must be 'loss' or 'dist', got {measure!r}")
    Bs, eta, beta = (
        np.asarray(v, float)
        for v in np.broadcast_arrays(
            np.atleast_1d(np.asarray(batch_sizes, float)),
            np.atleast_1d(np.asarray(eta, float)),
            np.atleast_1d(np.asarray(beta, float)),
        )
    )
    c = np.array([noise_factor(B, n, replace) for B in Bs])
    rec = _GaussianRecursion(eigvals, weights, method, c, eta, beta)
    value = rec.loss if measure == "loss" else rec.dist
    target = eps * value()
    out = np.full(Bs.size, np.inf)
    ids = np.arange(Bs.size)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, t_max + 1):
            rec.step()
            v = value()
            hit = v <= target
            out[ids[hit]] = t
            done = hit | ~(v < 1e200)
            if done.any():
                if done.all():
                    break
                rec.keep(~done)
                ids, target = ids[~done], target[~done]
    return out


def gaussian_operator(
    eigvals: np.ndarray,
    method: str,
    batch_size: float,
    eta: float,
    beta: float,
    *,
    n: int | None = None,
    replace: bool = True,
) -> np.ndarray:
    """The closed Gaussian map as a ``(3d, 3d)`` matrix on ``(p_1..p_d, q_1..q_d, s_1..s_d)``.

    For checks and small ``d``; :func:`gaussian_rate` never forms it.
    """
    _check_params(method, eta, beta)
    lam = np.asarray(eigvals, float)
    d = lam.size
    g = _gamma(method, beta)
    c = noise_factor(batch_size, n, replace)
    a = 1 + beta - eta * (1 + g) * lam
    b = -beta + eta * g * lam
    w = np.array(_lookahead_weights(g))
    T = np.zeros((3 * d, 3 * d))
    i = np.arange(d)
    T[i, i], T[i, d + i], T[i, 2 * d + i] = a * a, 2 * a * b, b * b
    T[d + i, i], T[d + i, d + i] = a, b
    T[2 * d + i, i] = 1.0
    # Noise into p_i: c eta^2 (lam_i^2 x_i + lam_i sum_j lam_j x_j), x = w . (p, q, s).
    coupling = c * eta**2 * (np.diag(lam * lam) + np.outer(lam, lam))
    for k in range(3):
        T[:d, k * d : (k + 1) * d] += w[k] * coupling
    return T


@dataclass(frozen=True)
class _Blocks:
    """Per-mode polynomials in ``s = 1 - z`` (arrays over the eigenvalues).

    ``Q(s) = -s^3 + q2 s^2 + q1 s + q0 = det(z - D_i)``, ``G(s) = g2 s^2 + g1 s + g0``,
    ``kap = c eta^2 lam^2`` and ``s_mean = 1 - rho`` of the noise-free 2x2 block.
    """

    q2: np.ndarray
    q1: np.ndarray
    q0: np.ndarray
    g2: np.ndarray
    g1: np.ndarray
    g0: np.ndarray
    kap: np.ndarray
    s_mean: np.ndarray


def _blocks(lam: np.ndarray, method: str, c: float, eta: float, beta: float) -> _Blocks:
    g = _gamma(method, beta)
    h = eta * lam
    # The 2x2 mean block has determinant 1 - mc and trace 2 - om. Both are built from
    # the small numbers 1 - beta and eta lam, never as differences of numbers near 1.
    mc = (1.0 - beta) + g * h
    om = mc + h
    # det(z - Mbar (.) Mbar^T) = (z - c)((z + c)^2 - a^2 z), expanded around z = 1
    # (symbolically checked): (mc - s)(s^2 + p1 s + p0).
    p1 = 2 * mc - 4 * om + om * om
    p0 = h * (4 - 2 * mc - h)
    w1, w2, w3 = _lookahead_weights(g)
    g2 = np.full_like(lam, w1)
    g1 = -w1 * (3 - mc) - w2 * (2 - om) - w3
    g0 = w1 * (2 - mc) + w2 * (2 - om) + w3 * (2 - mc)
    kap = c * (eta * lam) ** 2
    # Spectral radius of the noise-free block: the larger squared root modulus of
    # r^2 - (2 - om) r + (1 - mc); the discriminant is om^2 - 4h without cancellation.
    disc = om * om - 4 * h
    root = np.sqrt(np.maximum(disc, 0.0))
    a = 2 - om
    # 1 - r for the larger root; rationalised for a >= 0 so a slow mode keeps its digits.
    one_minus_r = np.where(a >= 0, 2 * h / (om + root), (4 - om - root) / 2)
    s_real = one_minus_r * (2 - one_minus_r)  # 1 - r^2
    s_mean = np.where(disc >= 0, s_real, mc)  # complex pair: |r|^2 = det = 1 - mc
    return _Blocks(
        q2=mc - p1 - kap * g2,
        q1=mc * p1 - p0 - kap * g1,
        q0=mc * p0 - kap * g0,
        g2=g2,
        g1=g1,
        g0=g0,
        kap=kap,
        s_mean=s_mean,
    )


def _secular_gap(blk: _Blocks, s: float) -> float:
    """``1 - phi(s)`` where ``z = 1 - s`` lies above every block's spectral radius, else -1.

    Positive exactly when ``z`` lies above the spectral radius of the whole map, and
    continuous across it wherever the secular equation (not a block) sets the rate.
    """
    Q = ((-s + blk.q2) * s + blk.q1) * s + blk.q0
    dQ = (3 * s - 2 * blk.q2) * s - blk.q1  # d/dz = -d/ds
    d2Q = 2 * blk.q2 - 6 * s
    # Budan-Fourier: z is above every block's spectral radius iff all three are > 0.
    if not (np.all(Q > 0) and np.all(dQ > 0) and np.all(d2Q > 0)):
        return -1.0
    G = (blk.g2 * s + blk.g1) * s + blk.g0
    return 1.0 - float(np.sum(blk.kap * G / Q))


def _rate_gap(lam: np.ndarray, method: str, c: float, eta: float, beta: float) -> float:
    """``1 - rho`` for the closed Gaussian map on the positive eigenvalues ``lam``."""
    blk = _blocks(lam, method, c, eta, beta)
    # Noise only adds a positive map, so rho >= rho(Mbar)^2: s* <= s_max.
    s_max = float(np.min(blk.s_mean))
    if c == 0:
        return s_max
    if _secular_gap(blk, s_max) > 0:  # the noise does not move the rate (degenerate)
        return s_max
    step = max(abs(s_max), 1e-12)
    for _ in range(200):  # walk away from 1 until we are surely above the rate
        s_lo = s_max - step
        if _secular_gap(blk, s_lo) > 0:
            break
        step *= 2
    else:  # pragma: no cover - only for absurd parameters
        return -np.inf
    return float(
        scipy.optimize.brentq(
            lambda s: _secular_gap(blk, s), s_lo, s_max, xtol=1e-15 * step, rtol=1e-13
        )
    )


def gaussian_rate(
    eigvals: np.ndarray,
    method: str,
    batch_size: float,
    eta: float,
    beta: float,
    *,
    n: int | None = None,
    replace: bool = True,
) -> float:
    """Exact asymptotic rate ``rho`` of the second moments for Gaussian rows.

    The spectral radius of the closed map (see the module docstring), found from the
    secular equation in ``O(d)`` per evaluation; ``rho >= 1`` means divergence.
    """
    _check_params(method, eta, beta)
    lam = _positive(eigvals)
    return 1.0 - _rate_gap(lam, method, noise_factor(batch_size, n, replace), eta, beta)


# --------------------------------------------------------------------------------------
# Tuning: the (eta, beta) of smallest rate, T*(B), breakpoints
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tuned:
    """Rate-optimal constant parameters at one batch size and their exact rate."""

    eta: float
    beta: float
    rho: float


def _objective(lam, method, c, eta, beta) -> float:
    # -log(1 - rho): smooth where rho is set by the secular equation, and it keeps the
    # precision of 1 - rho when the rate is close to 1. Divergent settings get a wall
    # that still slopes back towards convergence.
    gap = _rate_gap(lam, method, c, eta, beta)
    return -np.log(gap) if gap > 0 else 1e3 + min(-gap, 1e6)


def _momentum_params(x: np.ndarray) -> tuple[float, float]:
    # x = (log effective step eta / (1 - beta), logit(1 - beta)). At small batches only
    # the effective step matters, so the valley runs along the second axis.
    damping = 1.0 / (1.0 + np.exp(-x[1]))
    return float(np.exp(x[0]) * damping), float(1.0 - damping)


def optimal_parameters(
    eigvals: np.ndarray,
    method: str,
    batch_size: float,
    *,
    n: int | None = None,
    replace: bool = True,
    start: tuple[float, float] | None = None,
) -> Tuned:
    """Constant ``(eta, beta)`` minimizing the exact Gaussian rate at batch size ``B``.

    Parameters
    ----------
    eigvals : eigenvalues of ``H``.
    method : ``"sgd"`` (``eta`` only), ``"hb"`` or ``"nag"``.
    batch_size, n, replace : see :func:`noise_factor`. Without noise (``B = n`` without
        replacement) the closed-form deterministic optimum is returned.
    start : ``(eta, beta)`` to start the search from (default: the rule-of-thumb
        ``eta / (1 - beta) = min(B / tr H, deterministic)``, deterministic damping).

    Returns
    -------
    Tuned(eta, beta, rho).

    Notes
    -----
    With noise, ``rho`` is the root of the secular equation above every pole, hence
    smooth in ``(eta, beta)`` (Polyak-type kinks only appear without noise), so a
    Nelder-Mead search in ``(log eta / (1 - beta), logit(1 - beta))``, restarted once from
    its result, converges in ~100-300 rate evaluations of ``O(d)`` each. The tests check
    it against a grid.
    """
    lam = _positive(eigvals)
    c = noise_factor(batch_size, n, replace)
    L, mu, trace = lam.max(), lam.min(), lam.sum()
    eta_det, beta_det, rho_det = deterministic_optimum(method, L, mu)
    if c == 0:
        return Tuned(eta_det, beta_det, rho_det)
    if method == "sgd":
        # Unimodal in log eta in every case we have checked (the tests compare with a
        # grid): bounded Brent between a tiny step and the noise-free limit 2/L.
        lo = np.log(1e-4 * min(batch_size / trace, 1.0 / L))
        res = scipy.optimize.minimize_scalar(
            lambda x: _objective(lam, method, c, np.exp(x), 0.0),
            bounds=(lo, np.log(2.0 / L)),
            method="bounded",
            options={"xatol": 1e-9},
        )
        eta = float(np.exp(res.x))
        return Tuned(eta, 0.0, 1.0 - _rate_gap(lam, method, c, eta, 0.0))
    if start is None:
        eff = min(batch_size / trace, eta_det / (1 - beta_det))
        start = (eff * (1 - beta_det), beta_det)
    eta0, beta0 = start
    beta0 = float(np.clip(beta0, 1e-6, 1 - 1e-12))  # keep logit(1 - beta) finite
    x = np.array([np.log(eta0 / (1 - beta0)), np.log((1 - beta0) / beta0)])
    f = lambda x: _objective(lam, method, c, *_momentum_params(x))  # noqa: E731
    for _ in range(2):  # a restart re-inflates a collapsed simplex
        simplex = np.array([x, x + [0.5, 0.0], x + [0.0, 0.5]])
        res = scipy.optimize.minimize(
            f,
            x,
            method="Nelder-Mead",
            options={"initial_simplex": simplex, "xatol": 1e-7, "fatol": 1e-12, "maxiter": 2000},
        )
        x = res.x
    eta, beta = _momentum_params(x)
    return Tuned(eta, beta, 1.0 - _rate_gap(lam, method, c, eta, beta))


@dataclass(frozen=True)
class BatchScaling:
    """Exact tuned ``T*(B)``: per batch size the best ``(eta, beta)``, its rate and
    ``iterations = log(1/eps) / log(1/rho)``."""

    batch_size: np.ndarray
    eta: np.ndarray
    beta: np.ndarray
    rho: np.ndarray
    iterations: np.ndarray


def batch_scaling(
    eigvals: np.ndarray,
    method: str,
    batch_sizes,
    *,
    eps: float = 1e-6,
    n: int | None = None,
    replace: bool = True,
) -> BatchScaling:
    """Exact ``T*(B)`` for Gaussian rows over ``batch_sizes`` (see :class:`BatchScaling`)."""
    Bs = np.asarray(batch_sizes, float)
    tuned = [optimal_parameters(eigvals, method, B, n=n, replace=replace) for B in Bs]
    rho = np.array([t.rho for t in tuned])
    return BatchScaling(
        batch_size=Bs,
        eta=np.array([t.eta for t in tuned]),
        beta=np.array([t.beta for t in tuned]),
        rho=rho,
        iterations=iterations_from_rate(rho, eps),
    )


def knee_batch(
    eigvals: np.ndarray,
    method: str,
    *,
    factor: float = 2.0,
    n: int | None = None,
    replace: bool = True,
    rtol: float = 1e-3,
) -> float:
    """The exact breakpoint: the batch size where the tuned rate is ``factor`` times slower
    (in iterations) than the noise-free optimum.

    For ``T*(B) = a / B + T_det`` this is the corner ``a / T_det`` where the two
    asymptotes cross (``factor = 2``): for ``"sgd"`` the critical batch ``B*_SGD``, for
    ``"hb"`` and ``"nag"`` the saturation batch ``B_sat``. ``T*(B)`` decreases in ``B``
    (a larger batch adds a smaller positive map), so the root is unique; it is found by
    Brent's method in ``log B``, ``rtol`` relative in ``B``. Returns 1.0 if even
    ``B = 1`` is within the factor.
    """
    lam = _positive(eigvals)
    rho_det = deterministic_optimum(method, lam.max(), lam.min())[2]
    target = np.log(factor) - np.log(-np.log(rho_det))  # log(factor * T_det) up to log(1/eps)

    def excess(logB):
        rho = optimal_parameters(lam, method, np.exp(logB), n=n, replace=replace).rho
        return -np.log(-np.log(rho)) - target

    if excess(0.0) <= 0:
        return 1.0
    hi = np.log(max(lam.sum() / np.sqrt(lam.max() * lam.min()), 2.0))
    top = np.log(n) if (n is not None and not replace) else np.inf
    hi = min(hi, top)
    while excess(hi) > 0:
        if hi >= top:
            return float(np.exp(top))
        hi = min(hi + np.log(4.0), top)
    lo = max(hi - np.log(4.0), 0.0)
    while excess(lo) <= 0:
        lo = max(lo - np.log(4.0), 0.0)
    return float(np.exp(scipy.optimize.brentq(excess, lo, hi, xtol=rtol / 2)))


def benchmark_batch_scaling(
    d: int = 1000,
    kappa: float = 1e4,
    methods=("sgd", "hb", "nag"),
    batch_sizes=None,
) -> dict:
    """Time exact ``T*(B)`` at ``d`` Gaussian-rows eigenvalues (geometric spectrum).

    Returns ``{method: (BatchScaling, seconds)}``; the timing is wall-clock on this
    machine, for the benchmark and the tests' printout (nothing asserts on it).
    """
    from .problems import spectrum

    batch_sizes = 2.0 ** np.arange(12) if batch_sizes is None else batch_sizes
    lam = spectrum(d, kappa)
    out = {}
    for method in methods:
        t0 = time.perf_counter()
        res = batch_scaling(lam, method, batch_sizes)
        out[method] = (res, time.perf_counter() - t0)
    return out
