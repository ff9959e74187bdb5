r"""Exact mean-square dynamics of mini-batch SGD, heavy ball and Nesterov (docs/design.md §3).

Everything here is exact: expected loss curves, asymptotic rates and the tuned
``T*(B)`` curves follow from the second moments of the error, with no constant fitted
and no Monte Carlo. :mod:`~minibatch_momentum.simulate.engine` simulates the same recursion; the
tests check the two against each other.

Derivation
----------
Write ``e_t = x_t - x*``, ``z_t = (e_t, e_{t-1})`` and ``u_t = y_t - x* = W z_t`` with
``W = [(1 + gamma) I, -gamma I]`` (``gamma = beta`` for ``nag``, 0 otherwise). With
``H_S = A_S^T A_S / B`` the step of :mod:`~minibatch_momentum.simulate.engine` reads::

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

*Any sampler* (:mod:`~minibatch_momentum.sampling.samplers`). With ``Z_S`` in place of ``H_S``
the recursion is the same with ``N(X) = c_B (E_i[u_i (v_i^T X v_i) u_i^T] - H X H)``
(:func:`sampler_noise`): :func:`sampler_curve`, :func:`sampler_operator` and
:func:`sampler_rate` are exact for every sampler but ``kaczmarz_block`` (no closed form).
The *moment closure* (:class:`Closure`) keeps the diagonal ``(p_i, q_i, s_i)`` as the
Gaussian closed form does, with the sampler's fourth moments ``Q_ij = E[u_i^2 v_j^2]``
in place of ``2 Lambda^2 + lam lam^T``; its rate generalizes the secular equation to a
Perron-root equation (see the comment above :class:`Closure`). It is the Gaussian closed
form for Gaussian ``Q``, exact when the noise maps diagonal second moments to diagonal
ones, and otherwise an approximation that the tests measure against the exact theory.

Conventions: "rate" ``rho`` is the spectral radius of the second-moment map, so it is
the *square* of the rate at which ``||e_t||`` contracts (plain GD: ``max |1 - eta
lam|^2``; Polyak's heavy ball: ``beta``). Iterations-to-eps count the steps until the
expected loss (or ``E||e||^2``) is at most ``eps`` times its value at ``x_0``.
Eigenvalues at or below ``1e-12 L`` are null directions: they never move, carry no loss
from ``x_0 = 0`` (``x*`` lies in the row space) and are left out of rates.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.optimize

from minibatch_momentum.sampling.samplers import noise_factor, sampling

# A curve that rises to BLOWUP times its start counts as diverged (inf), as a run of the
# engine does (StopRule.blowup): no count is lost that a run could have, and a rate just
# above 1 is not stepped for the ~10^5 steps a 1e200 overflow guard would take.
BLOWUP = 1e8

METHODS = ("sgd", "hb", "nag")
NOISE_MODELS = ("finite", "gaussian")

# Eigenvalues below this fraction of the largest are treated as exact zeros (null space).
_NULL_TOL = 1e-12


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------


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


def stable_region(method: str, eta_L, beta) -> np.ndarray:
    """Whether ``(eta, beta)`` (``eta_L = eta * L``) lies inside the method's deterministic
    stability region, where full-batch iterations converge on every curvature in ``(0, L]``.

    A mode ``lam`` follows ``x' = (1 + beta - eta (1 + gamma) lam) x - (beta - eta gamma
    lam) x_prev``; Jury's criterion for ``z^2 - a z - b`` (``|b| < 1``, ``|a| < 1 - b``)
    at the worst mode ``lam = L`` gives SGD ``eta L < 2``, heavy ball
    ``eta L < 2 (1 + beta)``, Nesterov ``eta L < 2 (1 + beta) / (1 + 2 beta)``, for
    ``0 <= beta < 1``. Tuning uses only these points: outside, the mean-square dynamics
    diverge at every batch size even when a typical finite run still reaches ``eps``
    (e.g. SGD at ``eta L = 2.004``).
    """
    _gamma(method, 0.0)
    eta_L, beta = np.broadcast_arrays(np.asarray(eta_L, float), np.asarray(beta, float))
    if method == "sgd":
        limit = np.full(eta_L.shape, 2.0)
    elif method == "hb":
        limit = 2.0 * (1.0 + beta)
    else:
        limit = 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    return (eta_L > 0) & (eta_L < limit) & (beta >= 0) & (beta < 1)


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
        # ``method``: one name, or one per configuration (configurations of different
        # methods step together: the methods differ only in the look-ahead g)
        method = np.broadcast_to(np.asarray(method, dtype=object), eta.shape)
        for m in set(method.tolist()):
            _check_params(m, eta[method == m], beta[method == m])
        g = np.where(method == "nag", beta, 0.0)
        lam = self.lam[:, None]
        a = 1 + beta - eta * (1 + g) * lam
        b = -beta + eta * g * lam
        self.aa, self.ab2, self.bb, self.a, self.b = a * a, 2 * a * b, b * b, a, b
        self.w = _lookahead_weights(g)
        self.kick = c * eta**2
        self.p = np.repeat(np.asarray(weights, float)[:, None], eta.size, axis=1)
        self.q, self.s = self.p.copy(), self.p.copy()
        self._lam_col, self._lam2 = lam, lam * lam
        self._scratch()

    def _scratch(self) -> None:
        # Four (d, R) arrays reused by every step: at d R ~ 10^5 a fresh temporary (new
        # pages) costs as much as the arithmetic on it.
        self._buf = tuple(np.empty_like(self.p) for _ in range(4))

    def _noise(self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
        """The noise term over ``kick`` into ``out``: ``lam^2 x + lam tr(H X)``."""
        tau = self.lam @ x  # tr(H X): the rank-one coupling between modes
        np.multiply(self._lam2, x, out=out)
        out += np.multiply(self._lam_col, tau, out=tmp)
        return out

    def step(self) -> None:
        """``p' = aa p + ab2 q + bb s + kick noise(x)``, ``q' = a p + b q``, ``s' = p`` with
        ``x = w1 p + w2 q + w3 s`` (``E u_i^2`` at the gradient point), in place: the same
        operations in the same order as written, so the same numbers to the last bit."""
        p, q, s = self.p, self.q, self.s
        x, new, t, u = self._buf
        w1, w2, w3 = self.w
        np.multiply(w1, p, out=x)
        x += np.multiply(w2, q, out=t)
        x += np.multiply(w3, s, out=t)
        np.multiply(self.aa, p, out=new)
        new += np.multiply(self.ab2, q, out=t)
        new += np.multiply(self.bb, s, out=t)
        noise = self._noise(x, t, u)
        noise *= self.kick
        new += noise
        np.multiply(self.a, p, out=s)  # q' into s's array: s is not needed any more
        s += np.multiply(self.b, q, out=t)
        self.p, self.q, self.s, self._buf = new, s, p, (x, q, t, u)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the configurations where ``mask`` is False."""
        for name in ("aa", "ab2", "bb", "a", "b", "p", "q", "s"):
            setattr(self, name, getattr(self, name)[:, mask])
        self.kick = np.broadcast_to(self.kick, mask.shape)[mask]
        self.w = tuple(np.broadcast_to(w, mask.shape)[mask] for w in self.w)
        self._scratch()

    def loss(self) -> np.ndarray:
        return 0.5 * self.lam @ self.p

    def dist(self) -> np.ndarray:
        return self.p.sum(axis=0)


def _moment_curve(rec, steps: int, scalar: bool) -> MomentCurve:
    """Step a per-mode recursion ``steps`` times, recording ``E f`` and ``E ||e||^2``."""
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
    return _moment_curve(rec, steps, scalar)


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
    start = float(value()[0])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, t_max + 1):
            rec.step()
            v = float(value()[0])
            if v <= eps * start:
                return float(t)
            if not v < BLOWUP * start:
                return np.inf
    return np.inf


def _configs(measure, batch_sizes, eta, beta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast ``(B, eta, beta)`` to equal 1-d float arrays (and check ``measure``)."""
    if measure not in ("loss", "dist"):
        raise ValueError(f"measure must be 'loss' or 'dist', got {measure!r}")
    return tuple(
        np.asarray(v, float)
        for v in np.broadcast_arrays(
            np.atleast_1d(np.asarray(batch_sizes, float)),
            np.atleast_1d(np.asarray(eta, float)),
            np.atleast_1d(np.asarray(beta, float)),
        )
    )


def _steps_to_eps(
    rec,
    measure: str,
    eps: float,
    t_max: int,
    censor_factor: float | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Step a recursion of ``R`` configurations until each reaches ``eps`` times its start
    (or blows up, ``inf``); a configuration leaves the batch as soon as it is done.

    With ``censor_factor``, stop every configuration still going at ``censor_factor``
    times the first count any of them reached (``inf`` for those), as the sweeps do:
    only the fastest configurations matter to a grid's minimum. ``groups`` (``(R,)``
    integer labels; default one group) gives each group its own censoring clock, so
    several grids (batch sizes, methods) step together: the steps' fixed cost is paid
    once for all of them, and each group's counts are those it would get alone."""
    value = rec.loss if measure == "loss" else rec.dist
    target, wall = eps * value(), BLOWUP * value()
    out = np.full(target.size, np.inf)
    ids = np.arange(target.size)
    group = np.zeros(target.size, int) if groups is None else np.asarray(groups, int)
    horizon = np.full(group.max(initial=0) + 1, t_max)
    ends = horizon[group[ids]]  # each configuration's horizon, kept in step with ``ids``
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, t_max + 1):
            rec.step()
            v = value()
            hit = v <= target
            done = hit | ~(v < wall) | (ends <= t)
            if not done.any():  # most steps: nothing to record
                continue
            out[ids[hit]] = t
            if censor_factor is not None and hit.any():
                first = np.unique(group[ids[hit]])
                first = first[horizon[first] == t_max]
                horizon[first] = min(t_max, int(np.ceil(censor_factor * t)))
                ends = horizon[group[ids]]
                done |= ends <= t
            if done.all():
                break
            rec.keep(~done)
            ids, target, wall = ids[~done], target[~done], wall[~done]
            ends = ends[~done]
    return out


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
    censor_factor: float | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`gaussian_iterations` for many ``(B, eta, beta)`` at once (broadcast arrays).

    The configurations step together, ``O(d R)`` per step, and each leaves the batch
    when it gets to ``eps`` or blows up; the results equal one-at-a-time calls (with
    ``censor_factor``, see :func:`_steps_to_eps`, only for the ones not censored).
    ``method`` is one name or one per configuration; ``groups`` labels the censoring
    groups (:func:`_steps_to_eps`).
    """
    Bs, eta, beta = _configs(measure, batch_sizes, eta, beta)
    c = np.array([noise_factor(B, n, replace) for B in Bs])
    rec = _GaussianRecursion(eigvals, weights, method, c, eta, beta)
    return _steps_to_eps(rec, measure, eps, t_max, censor_factor, groups)


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


def _blocks(
    lam: np.ndarray, method: str, c: float, eta: float, beta: float, own: np.ndarray | None = None
) -> _Blocks:
    """The blocks' polynomials; ``own`` (default ``lam^2``) is each block's own noise
    coefficient, ``kap = c eta^2 own`` (the moment closure puts its split there)."""
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
    kap = c * (eta * lam) ** 2 if own is None else c * eta**2 * own
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
    # (min() > 0 is np.all(... > 0), NaN included, without its wrapper's overhead.)
    if not (Q.min() > 0 and dQ.min() > 0 and d2Q.min() > 0):
        return -1.0
    G = (blk.g2 * s + blk.g1) * s + blk.g0
    return 1.0 - float((blk.kap * G / Q).sum())


def _rate_gap(lam: np.ndarray, method: str, c: float, eta: float, beta: float) -> float:
    """``1 - rho`` for the closed Gaussian map on the positive eigenvalues ``lam``."""
    blk = _blocks(lam, method, c, eta, beta)
    return _gap_root(lambda s: _secular_gap(blk, s), blk, c)


def _gap_root(gap, blk: _Blocks, c: float, feasible=None) -> float:
    """``s* = 1 - rho``: where ``gap(s)`` (positive exactly above the rate) changes sign.

    ``gap`` is -1, a wall rather than a sign change, where ``z = 1 - s`` is inside a
    block's radius. Given ``feasible(s)``, the cheap test for that, the wall's edge is
    found with it alone, so the (costly) ``gap`` is searched only where it is continuous:
    its root, or the edge itself where a block's radius sets the rate (Brent's method
    on the wall would spend ~40 bisections of ``gap`` to find the same point).
    """
    # Noise only adds a positive map, so rho >= rho(Mbar)^2: s* <= s_max.
    s_max = float(np.min(blk.s_mean))
    if c == 0:
        return s_max
    if gap(s_max) > 0:  # the noise does not move the rate (degenerate)
        return s_max
    step = max(abs(s_max), 1e-12)
    for _ in range(200):  # walk away from 1 until we are surely above the rate
        s_lo = s_max - step
        if gap(s_lo) > 0:
            break
        step *= 2
    else:  # pragma: no cover - only for absurd parameters
        return -np.inf
    s_hi = s_max
    if feasible is not None:
        lo, hi = s_lo, s_max  # feasible(s) holds exactly below the edge
        while hi - lo > 1e-15 * step and hi - lo > 1e-13 * abs(hi):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
        if gap(lo) > 0:
            return lo
        s_hi = lo
    return float(scipy.optimize.brentq(gap, s_lo, s_hi, xtol=1e-15 * step, rtol=1e-13))


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


def _objective_of_gap(gap: float) -> float:
    # -log(1 - rho): smooth where rho is set by the secular equation, and it keeps the
    # precision of 1 - rho when the rate is close to 1. Divergent settings get a wall
    # that still slopes back towards convergence.
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
    return _tune(
        lambda eta, beta: _rate_gap(lam, method, c, eta, beta),
        method,
        batch_size,
        lam.max(),
        lam.min(),
        lam.sum(),
        c,
        start,
    )


def _tune(gap, method, batch_size, L, mu, scale, c, start) -> Tuned:
    """The tuner of :func:`optimal_parameters` for any rate: ``gap(eta, beta) = 1 - rho``.

    ``scale`` is the noise scale of the starting point and the SGD bracket (``tr H`` for
    Gaussian rows): the noise-limited effective step is about ``B / scale``.
    """
    eta_det, beta_det, rho_det = deterministic_optimum(method, L, mu)
    if c == 0:
        return Tuned(eta_det, beta_det, rho_det)
    if method == "sgd":
        # Unimodal in log eta in every case we have checked (the tests compare with a
        # grid): bounded Brent between a tiny step and the noise-free limit 2/L.
        lo = np.log(1e-4 * min(batch_size / scale, 1.0 / L))
        res = scipy.optimize.minimize_scalar(
            lambda x: _objective_of_gap(gap(np.exp(x), 0.0)),
            bounds=(lo, np.log(2.0 / L)),
            method="bounded",
            options={"xatol": 1e-9},
        )
        eta = float(np.exp(res.x))
        return Tuned(eta, 0.0, 1.0 - gap(eta, 0.0))
    if start is None:
        eff = min(batch_size / scale, eta_det / (1 - beta_det))
        start = (eff * (1 - beta_det), beta_det)
    eta0, beta0 = start
    beta0 = float(np.clip(beta0, 1e-6, 1 - 1e-12))  # keep logit(1 - beta) finite
    x = np.array([np.log(eta0 / (1 - beta0)), np.log((1 - beta0) / beta0)])
    f = lambda x: _objective_of_gap(gap(*_momentum_params(x)))  # noqa: E731
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
    return Tuned(eta, beta, 1.0 - gap(eta, beta))


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
    return _scaling(
        Bs, [optimal_parameters(eigvals, method, B, n=n, replace=replace) for B in Bs], eps
    )


def _scaling(Bs: np.ndarray, tuned: list[Tuned], eps: float) -> BatchScaling:
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
    return _knee(
        lambda B: optimal_parameters(lam, method, B, n=n, replace=replace).rho,
        method,
        lam.max(),
        lam.min(),
        lam.sum(),
        float(n) if (n is not None and not replace) else np.inf,
        factor,
        rtol,
    )


def _knee(tuned_rho, method, L, mu, scale, largest, factor, rtol) -> float:
    """The root search of :func:`knee_batch` for any tuned rate ``tuned_rho(B)``;
    ``scale`` (``tr H``) sets the first guess, ``largest`` is the largest batch (``n``
    without replacement, else ``inf``)."""
    rho_det = deterministic_optimum(method, L, mu)[2]
    target = np.log(factor) - np.log(-np.log(rho_det))  # log(factor * T_det) up to log(1/eps)
    top = np.log(largest)

    @functools.cache
    def excess(logB):
        # At the top, the batch itself: exp(log n) rounds below n, to a noise of 1e-18
        # that moves a Polyak-tuned rate by its cube root, and tuning that kink costs
        # thousands of rate evaluations for a point whose answer is noise-free.
        rho = tuned_rho(largest if logB >= top else np.exp(logB))
        return -np.log(-np.log(rho)) - target

    if excess(0.0) <= 0:
        return 1.0
    hi = np.log(max(scale / np.sqrt(L * mu), 2.0))
    hi = min(hi, top)
    while excess(hi) > 0:
        if hi >= top:
            return float(largest)
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
    from minibatch_momentum.problems.system import spectrum

    batch_sizes = 2.0 ** np.arange(12) if batch_sizes is None else batch_sizes
    lam = spectrum(d, kappa)
    out = {}
    for method in methods:
        t0 = time.perf_counter()
        res = batch_scaling(lam, method, batch_sizes)
        out[method] = (res, time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------------------
# Any sampler: the general noise operator, exact dense second moments
# --------------------------------------------------------------------------------------
#
# A sampler's step uses Z_S = (1/B) sum_k u_{i_k} v_{i_k}^T with E[Z_S] = H
# (:mod:`~minibatch_momentum.sampling.samplers`), so the derivation above goes through with
# H_S -> Z_S and
#
#     N_B(X) = E[(Z_S - H) X (Z_S - H)^T] = c_B (E_i[u_i (v_i^T X v_i) u_i^T] - H X H),
#
# E_i over the table's probabilities p_i (uniform: 1/m), c_B = Sampling.noise_factor(B):
# 1/B for i.i.d. draws (with_replacement, kaczmarz, coordinate), (m - B)/(B (m - 1)) for
# B distinct uniform rows. For coordinate sampling Z is not symmetric (u_j = e_j / p_j,
# v_j = m_j), hence the transpose. kaczmarz_block has Z_S = P_S, a projection whose mean
# is not H: no closed form, see BLOCK_PROJECTION_ERROR.

BLOCK_PROJECTION_ERROR = (
    "sampler 'kaczmarz_block' has no closed-form noise operator: its step projects onto "
    "the sampled rows (Z_S = P_S), whose mean E[P_S] is not H, so the second moments do "
    "not close on (H, N_B); use the Monte Carlo of the engine instead"
)


def sampler_table(problem, sampler: str):
    """The :class:`~minibatch_momentum.sampling.samplers.Sampling` of ``sampler`` on ``problem`` in
    the eigenbasis of ``H`` (where every function below works).

    Raises ``ValueError`` for ``kaczmarz_block`` (:data:`BLOCK_PROJECTION_ERROR`) and for a
    sampler that does not apply to the problem's kind.
    """

    if sampler == "kaczmarz_block":
        raise ValueError(BLOCK_PROJECTION_ERROR)
    table = sampling(problem, sampler)
    if table.project:  # pragma: no cover - only kaczmarz_block projects
        raise ValueError(BLOCK_PROJECTION_ERROR)
    return table


def _draw_weights(table) -> np.ndarray:
    return np.full(table.m, 1.0 / table.m) if table.p is None else np.asarray(table.p, float)


def sampler_noise(table, X: np.ndarray, c: float, H: np.ndarray | None = None) -> np.ndarray:
    """General noise operator ``N(X) = c (E_i[u_i (v_i^T X v_i) u_i^T] - H X H^T)``.

    Parameters
    ----------
    table : a :class:`~minibatch_momentum.sampling.samplers.Sampling` (any coordinates; not a
        projecting one).
    X : (d, d) matrix in the table's coordinates.
    c : the noise factor ``c_B`` (``table.noise_factor(B)``).
    H : ``E[Z] = E_i[u_i v_i^T]`` in the same coordinates (computed from the table,
        ``O(m d^2)``, unless given).

    For uniform rows ``(a_i, a_i)`` this is :func:`sampling_noise`. ``O(m d^2)``.
    """
    if table.project:
        raise ValueError(BLOCK_PROJECTION_ERROR)
    U, V, w = np.asarray(table.U, float), np.asarray(table.V, float), _draw_weights(table)
    if H is None:
        H = (U.T * w) @ V
    q = np.einsum("ij,ij->i", V @ X, V)  # v_i^T X v_i
    return c * ((U.T * (w * q)) @ U - H @ X @ H.T)


def _sampler_setup(problem, sampler, method, batch_size, eta, beta):
    """Table, eigenvalues, ``c_B`` and the mean step in the eigenbasis, where ``Mbar`` is
    made of diagonal blocks ``[[diag(a), diag(b)], [I, 0]]`` and ``W = [(1+g) I, -g I]``."""
    _check_params(method, eta, beta)
    table = sampler_table(problem, sampler)
    lam = np.asarray(problem.eigvals, float)
    g = _gamma(method, beta)
    a = 1 + beta - eta * (1 + g) * lam
    b = -beta + eta * g * lam
    return table, lam, table.noise_factor(batch_size), a, b, g


def fourth_moment_map(table, chunk: int = 2048):
    """``X -> E_i[u_i (v_i^T X v_i) u_i^T]`` on symmetric ``X`` as one precomputed matrix
    on upper triangles, ``K[(j,k), (l,m)] = E_i[u_ij u_ik (2 - [l = m]) v_il v_im]``.

    The same sums as :func:`sampler_noise`, regrouped: ``O(m d^4 / 4)`` once (BLAS, over
    chunks of rows) and then ``O(d^4 / 4)`` per application instead of ``O(m d^2)``, which
    pays once a curve runs more than about ``d^2 / 16`` steps on a table of many rows.
    Memory ``(d (d + 1) / 2)^2`` doubles. Returns a function of ``X``.
    """
    if table.project:
        raise ValueError(BLOCK_PROJECTION_ERROR)
    if id(table) in _FOURTH_MAPS:
        return _FOURTH_MAPS[id(table)]
    U, V, w = np.asarray(table.U, float), np.asarray(table.V, float), _draw_weights(table)
    d = U.shape[1]
    j, k = np.triu_indices(d)
    twice = np.where(j == k, 1.0, 2.0)  # X_lm and X_ml both stand for the entry once stored
    K = np.zeros((j.size, j.size))
    for s in range(0, U.shape[0], chunk):
        u, v, ws = U[s : s + chunk], V[s : s + chunk], w[s : s + chunk]
        K += ((u[:, j] * u[:, k]).T * ws) @ (v[:, j] * v[:, k] * twice)

    def apply(X: np.ndarray) -> np.ndarray:
        out = np.empty((d, d))
        out[j, k] = out[k, j] = K @ X[j, k]
        return out

    _FOURTH_MAPS[id(table)] = apply
    weakref.finalize(table, _FOURTH_MAPS.pop, id(table), None)
    return apply


# Each live table's map, made once: a job draws the curves of several methods from one
# table (problems cache their tables, so the same object comes back). A table's entry
# goes with the table, so an id is never taken for another table's.
_FOURTH_MAPS: dict[int, Callable] = {}


def _second_moment_step(S, noise, lam, a, b, g, eta):
    """``Mbar S Mbar^T + eta^2 E1 N(W S W^T) E1^T`` in the eigenbasis: ``O(d^2)`` for the
    mean part (diagonal blocks), ``noise`` (``X -> N(X)``) for the rest."""
    d = lam.size
    S11, S12, S21, S22 = S[:d, :d], S[:d, d:], S[d:, :d], S[d:, d:]
    X = (1 + g) ** 2 * S11 - g * (1 + g) * (S12 + S21) + g * g * S22
    out = np.empty_like(S)
    out[:d, d:] = a[:, None] * S11 + b[:, None] * S21  # (Mbar S)_11
    top_right = a[:, None] * S12 + b[:, None] * S22  # (Mbar S)_12
    out[:d, :d] = out[:d, d:] * a[None, :] + top_right * b[None, :]
    out[d:, :d] = S11 * a[None, :] + S12 * b[None, :]
    out[d:, d:] = S11
    out[:d, :d] += eta**2 * noise(X)
    return out


def sampler_curve(
    problem,
    sampler: str,
    method: str,
    batch_size: int,
    eta: float,
    beta: float,
    steps: int,
    *,
    x0: np.ndarray | None = None,
) -> MomentCurve:
    """Exact ``E f(x_t)`` and ``E ||x_t - x*||^2`` for any sampler but ``kaczmarz_block``:
    :func:`dense_curve` with the general noise operator :func:`sampler_noise`, iterated in
    the eigenbasis of ``H``, ``O(m d^2 + d^3)`` per step (``O(d^4 / 4)`` after a one-off
    ``O(m d^4 / 4)`` where that is cheaper: :func:`fourth_moment_map`).

    Parameters
    ----------
    problem : a :class:`~minibatch_momentum.problems.system.Problem` of the sampler's kind.
    sampler : a name from :mod:`~minibatch_momentum.sampling.samplers`.
    method, batch_size, eta, beta, steps : as in :func:`dense_curve`.
    x0 : start (default 0); ``x_{-1} = x_0``.
    """
    table, lam, c, a, b, g = _sampler_setup(problem, sampler, method, batch_size, eta, beta)
    d = lam.size
    H = np.diag(lam)
    if d <= 64 and 16 * steps >= d * d:  # the regrouped sums pay (fourth_moment_map)
        fourth = fourth_moment_map(table)

        def noise(X):
            return c * (fourth(X) - H @ X @ H)
    else:

        def noise(X):
            return sampler_noise(table, X, c, H)

    x0 = np.zeros(d) if x0 is None else np.asarray(x0, float)
    e0 = np.asarray(problem.eigvecs, float).T @ (x0 - np.asarray(problem.x_star, float))
    z0 = np.concatenate([e0, e0])
    S = np.outer(z0, z0)
    loss, dist = np.empty(steps + 1), np.empty(steps + 1)
    for t in range(steps + 1):
        P = np.diagonal(S)[:d]
        loss[t], dist[t] = 0.5 * lam @ P, P.sum()
        if t == steps:
            break
        S = _second_moment_step(S, noise, lam, a, b, g, eta)
        S = 0.5 * (S + S.T)  # see dense_curve
    return MomentCurve(loss=loss, dist=dist)


def sampler_operator(
    problem, sampler: str, method: str, batch_size: float, eta: float, beta: float
) -> np.ndarray:
    """The exact second-moment map of any sampler (not ``kaczmarz_block``) as a
    ``(4 d^2, 4 d^2)`` matrix on row-major ``vec(Sigma)`` in the eigenbasis of ``H``
    (:func:`dense_operator` with ``vec(u (v^T X v) u^T) = (u kron u)(v kron v)^T vec(X)``).
    Small ``d`` only."""
    table, lam, c, _, _, _ = _sampler_setup(problem, sampler, method, batch_size, eta, beta)
    return _operator(table, lam, c, method, eta, beta)


def _operator(table, lam, c, method, eta, beta) -> np.ndarray:
    d = lam.size
    H = np.diag(lam)
    M, W = mean_transition(H, method, eta, beta), lookahead_map(d, method, beta)
    U, V, w = np.asarray(table.U, float), np.asarray(table.V, float), _draw_weights(table)
    Ku = np.einsum("ij,ik->ijk", U, U).reshape(-1, d * d)
    Kv = np.einsum("ij,ik->ijk", V, V).reshape(-1, d * d)
    N = c * ((Ku.T * w) @ Kv - np.kron(H, H))
    E1 = np.vstack([np.eye(d), np.zeros((d, d))])
    return np.kron(M, M) + eta**2 * np.kron(E1, E1) @ N @ np.kron(W, W)


def _positive_modes(table, lam):
    """The table and eigenvalues on the positive modes only. Null modes never feed back:
    ``v_i`` has no component along them (rows lie in the row space; for coordinate
    sampling ``v_j = Lambda V^T e_j``), so the positive modes' second moments are closed."""
    import dataclasses

    keep = lam > _NULL_TOL * lam.max()
    U, V = np.asarray(table.U, float)[:, keep], np.asarray(table.V, float)[:, keep]
    return dataclasses.replace(table, U=V if table.symmetric else U, V=V), lam[keep]


def _pair_transfer(a, b, g, z) -> np.ndarray:
    """``R_ij(z) = (w kron w)^T (z - M_i kron M_j)^{-1} (e1 kron e1)``, ``M_k = [[a_k, b_k],
    [1, 0]]``, ``w = (1 + g, -g)``: the response of ``E u_i u_j`` to a unit injection into
    ``E e_i e_j`` of the noise-free map, for every pair of modes (a 4x4 solve each)."""
    d = a.size
    M = np.zeros((d, 2, 2))
    M[:, 0, 0], M[:, 0, 1], M[:, 1, 0] = a, b, 1.0
    K = np.einsum("iac,jbd->ijabcd", M, M).reshape(d, d, 4, 4)
    rhs = np.zeros((d, d, 4, 1))
    rhs[..., 0, 0] = 1.0
    v = np.linalg.solve(z * np.eye(4) - K, rhs)[..., 0]
    w = np.array([(1 + g) ** 2, -g * (1 + g), -g * (1 + g), g * g])
    return v @ w


def _map_perron(F, d, state, tol) -> float:
    """Perron root of a completely positive map ``F`` on ``d x d`` matrices: its spectral
    radius, attained at a PSD eigenvector; ARPACK, warm-started from ``state.x``."""
    import scipy.sparse.linalg as sla

    def apply(v):
        state.matvecs += 1
        return F(v.reshape(d, d)).reshape(-1)

    op = sla.LinearOperator((d * d, d * d), matvec=apply, dtype=float)
    v0 = state.x if state.x is not None else np.eye(d).reshape(-1)
    val, vec = sla.eigs(op, k=1, which="LM", v0=v0, tol=tol, maxiter=100_000)
    state.x = np.abs(vec[:, 0].real) + 1e-3 * np.abs(vec[:, 0]).max()  # near the cone
    return float(np.abs(val[0]))


def sampler_rate(
    problem,
    sampler: str,
    method: str,
    batch_size: float,
    eta: float,
    beta: float,
    *,
    dense_max_d: int = 4,
    tol: float = 1e-12,
) -> float:
    """Exact asymptotic rate ``rho`` of any sampler (not ``kaczmarz_block``): the spectral
    radius of its second-moment map on the positive modes (null directions, as in
    :func:`gaussian_rate`, are left out: they carry no loss and never feed back).

    Up to ``dense_max_d`` positive modes: the eigenvalues of the ``(4 d^2)^2`` matrix.
    Beyond: the mean map acts on each pair of modes by a 4x4 block, so ``z`` above its
    radius is an eigenvalue iff the positive map ``Y -> eta^2 N(R(z) o Y)`` (``R`` from
    :func:`_pair_transfer`, ``o`` entrywise) has Perron root 1; that root decreases in
    ``z``, and the rate is found as in :func:`gaussian_rate` with the Perron root from
    ARPACK (``O(m d^2 + d^3)`` per application, relative tolerance ``tol``).
    """
    table, lam, c, _, _, _ = _sampler_setup(problem, sampler, method, batch_size, eta, beta)
    table, lam = _positive_modes(table, lam)
    d = lam.size
    if d <= dense_max_d:
        op = _operator(table, lam, c, method, eta, beta)
        return float(np.max(np.abs(np.linalg.eigvals(op))))
    g = _gamma(method, beta)
    a = 1 + beta - eta * (1 + g) * lam
    b = -beta + eta * g * lam
    blk = _blocks(lam, method, c, eta, beta)
    s_max = float(np.min(blk.s_mean))
    H = np.diag(lam)
    state = _PerronState()

    def gap(s):
        if not s < s_max:
            return -1.0
        R = _pair_transfer(a, b, g, 1.0 - s)
        return 1.0 - _map_perron(
            lambda Y: eta**2 * sampler_noise(table, R * Y, c, H), d, state, tol
        )

    return 1.0 - _gap_root(gap, blk, c)


def sampler_optimal_parameters(
    problem,
    sampler: str,
    method: str,
    batch_size: float,
    *,
    start: tuple[float, float] | None = None,
) -> Tuned:
    """Constant ``(eta, beta)`` minimizing the exact rate :func:`sampler_rate` (the tuner of
    :func:`optimal_parameters`; each step is a dense rate, so small ``d`` only)."""
    table = sampler_table(problem, sampler)
    model = closure_model(problem, sampler)
    lam, _, _, scale = model._rate_data
    c = table.noise_factor(batch_size)
    return _tune(
        lambda eta, beta: 1.0 - sampler_rate(problem, sampler, method, batch_size, eta, beta),
        method,
        batch_size,
        lam.max(),
        lam.min(),
        scale,
        c,
        start,
    )


# --------------------------------------------------------------------------------------
# Any sampler: the moment closure, O(d^2) per step
# --------------------------------------------------------------------------------------
#
# The Gaussian closed form keeps only the diagonal second moments (p_k, q_k, s_k) per mode
# of H. For any sampler the same closure uses the diagonal of the noise, which for a
# diagonal X (in H's eigenbasis, x_k = X_kk) is
#
#     N(X)_kk = c_B ((Q x)_k - lam_k^2 x_k),    Q_kj = E_i[u_ik^2 v_ij^2]
#
# (Gaussian rows: Q = 2 Lambda^2 + lam lam^T, the closed form above). The closure is exact
# when E[Z X Z^T] maps diagonal X to diagonal X (row laws symmetric under reflections of
# the eigen-coordinates, e.g. elliptical rows at the population level); otherwise it drops
# the off-diagonal second moments, an approximation the tests measure.
#
# Rate. Split Q - Lambda^2 = diag(own) + C with C >= 0 entrywise: C_kj = Q_kj off the
# diagonal and C_kk = min(Q_kk - lam_k^2, lam_k^2), so own_k = max(Q_kk - 2 lam_k^2, 0)
# (Gaussian Q: own = lam^2, C = lam lam^T, the secular equation's split). Each mode's
# 3x3 block D_k carries its own noise c eta^2 own_k; the coupling injects c eta^2 (C x)_k
# into p_k. An eigenvalue z above every block's radius has x = diag(r(z)) kappa C x with
# r_k = G_k / Q_k the block's response (as in the secular equation), kappa = c eta^2. Both
# parts are positive maps, so r_k(z) >= 0 decreases in z there, and rho is the z where the
# Perron root of kappa diag(r(z)) C equals 1 (or the largest block radius when it stays
# below 1). For rank-one C this Perron root is the secular function phi. The Perron root
# comes from power iteration, warm-started across the root search and stopped on the
# Collatz-Wielandt bracket (min and max of (A x)_k / x_k), O(d^2) per iteration: the
# reference route, and the one for a C without a symmetric form. Where C has one (every
# sampler here) the rate comes from a Rayleigh-functional iteration instead (the comment
# above _RootState), a few dozen O(d^2) products per rate, equal to the reference to ~1e-13.


@dataclass(frozen=True)
class Closure:
    """The moment closure's data for one (problem, sampler): eigenvalues of ``H``, the
    fourth-moment matrix ``Q`` in their order, and the sampler's ``c_B`` (``m``,
    ``replace``)."""

    eigvals: np.ndarray
    Q: np.ndarray
    m: int | None = None
    replace: bool = True

    @classmethod
    def gaussian(cls, eigvals, n: int | None = None, replace: bool = True) -> Closure:
        """Gaussian rows ``N(0, H)``: ``Q = 2 Lambda^2 + lam lam^T`` (the closed form)."""
        lam = np.asarray(eigvals, float)
        return cls(lam, 2 * np.diag(lam * lam) + np.outer(lam, lam), n, replace)

    def noise_factor(self, batch_size: float) -> float:
        return noise_factor(batch_size, self.m, self.replace)

    @cached_property
    def _rate_data(self):
        """Positive modes, their ``Q``, the split ``(own, C)`` and the noise scale."""
        lam_all = np.asarray(self.eigvals, float)
        lam = _positive(lam_all)
        keep = lam_all > _NULL_TOL * lam_all.max()
        Q = np.asarray(self.Q, float)[np.ix_(keep, keep)]
        excess = np.maximum(np.diag(Q) - lam * lam, 0.0)
        diag_c = np.minimum(excess, lam * lam)
        C = Q.copy()
        np.fill_diagonal(C, diag_c)
        own = excess - diag_c
        # Noise scale: SGD's small-step stability edge is eta = 2 B / rho(Lambda^-1 Q)
        # (tr H + O(L) for Gaussian rows); it starts the tuner.
        scale = _perron_root(Q, 1.0 / lam, _PerronState(), tol=1e-10)
        return lam, C, own, scale

    @cached_property
    def _symmetric_coupling(self):
        """``(S, D, u0)`` with ``C = S diag(D)``, ``S`` symmetric, and ``u0`` the Perron
        vector of ``S`` (the fast rate's first guess), or None (no such form)."""
        C = self._rate_data[1]
        sym = _symmetric_factor(C)
        if sym is None:
            return None
        S, D = sym
        u0 = np.abs(np.linalg.eigh(S)[1][:, -1]) + 1e-3 / np.sqrt(S.shape[0])
        return S, D, u0 / np.linalg.norm(u0)


def fourth_moments(table) -> np.ndarray:
    """``Q_kj = E_i[u_ik^2 v_ij^2]`` of a :class:`~minibatch_momentum.sampling.samplers.Sampling`
    (its coordinates: the eigenbasis for :func:`sampler_table`), ``O(m d^2)``."""
    if table.project:
        raise ValueError(BLOCK_PROJECTION_ERROR)
    U, V, w = np.asarray(table.U, float), np.asarray(table.V, float), _draw_weights(table)
    return ((U * U).T * w) @ (V * V)


def closure_model(problem, sampler: str) -> Closure:
    """The :class:`Closure` of ``sampler`` on ``problem``: its own ``Q`` and ``c_B``."""
    table = sampler_table(problem, sampler)
    return Closure(
        np.asarray(problem.eigvals, float), fourth_moments(table), table.m, table.replace
    )


class _ClosureRecursion(_GaussianRecursion):
    """State ``(p, q, s)`` of the moment closure for ``R`` configurations."""

    def __init__(self, model: Closure, weights, method, c, eta, beta):
        super().__init__(model.eigvals, weights, method, c, eta, beta)
        self.Q = np.asarray(model.Q, float)

    def _noise(self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
        """``Q x - lam^2 x`` into ``out``."""
        np.matmul(self.Q, x, out=out)
        out -= np.multiply(self._lam2, x, out=tmp)
        return out


def closure_curve(
    model: Closure,
    weights: np.ndarray,
    method: str,
    batch_size: float,
    eta,
    beta,
    steps: int,
) -> MomentCurve:
    """:func:`gaussian_curve` for the moment closure ``model``, ``O(d^2 R)`` per step."""
    scalar = np.ndim(eta) == 0 and np.ndim(beta) == 0
    rec = _ClosureRecursion(model, weights, method, model.noise_factor(batch_size), eta, beta)
    return _moment_curve(rec, steps, scalar)


def closure_iterations_many(
    model: Closure,
    weights: np.ndarray,
    method: str,
    batch_sizes,
    eta,
    beta,
    eps: float,
    *,
    measure: str = "loss",
    t_max: int = 10**6,
    censor_factor: float | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`gaussian_iterations_many` for the moment closure ``model``: iterations to
    ``eps`` of the closure's curve, many ``(B, eta, beta)`` (and methods) at once."""
    Bs, eta, beta = _configs(measure, batch_sizes, eta, beta)
    c = np.array([model.noise_factor(B) for B in Bs])
    rec = _ClosureRecursion(model, weights, method, c, eta, beta)
    return _steps_to_eps(rec, measure, eps, t_max, censor_factor, groups)


def closure_iterations(
    model: Closure,
    weights: np.ndarray,
    method: str,
    batch_size: float,
    eta: float,
    beta: float,
    eps: float,
    *,
    measure: str = "loss",
    t_max: int = 10**6,
) -> float:
    """Iterations-to-eps of the closure's curve for one configuration."""
    out = closure_iterations_many(
        model, weights, method, batch_size, eta, beta, eps, measure=measure, t_max=t_max
    )
    return float(out[0])


def closure_operator(
    model: Closure, method: str, batch_size: float, eta: float, beta: float
) -> np.ndarray:
    """The closure as a ``(3d, 3d)`` matrix on ``(p, q, s)`` (:func:`gaussian_operator`
    with the coupling ``c eta^2 (Q - Lambda^2)``). For checks; the rate never forms it."""
    _check_params(method, eta, beta)
    lam = np.asarray(model.eigvals, float)
    d = lam.size
    g = _gamma(method, beta)
    c = model.noise_factor(batch_size)
    a = 1 + beta - eta * (1 + g) * lam
    b = -beta + eta * g * lam
    w = np.array(_lookahead_weights(g))
    T = np.zeros((3 * d, 3 * d))
    i = np.arange(d)
    T[i, i], T[i, d + i], T[i, 2 * d + i] = a * a, 2 * a * b, b * b
    T[d + i, i], T[d + i, d + i] = a, b
    T[2 * d + i, i] = 1.0
    coupling = c * eta**2 * (np.asarray(model.Q, float) - np.diag(lam * lam))
    for k in range(3):
        T[:d, k * d : (k + 1) * d] += w[k] * coupling
    return T


class _PerronState:
    """The last Perron vector, to warm-start the next power iteration."""

    x: np.ndarray | None = None
    matvecs: int = 0


def _perron_root(C, r, state: _PerronState, target: float | None = None, tol=1e-14):
    """Perron root of ``diag(r) C`` (``C, r >= 0``) by power iteration from ``state.x``.

    Stops when the Collatz-Wielandt bracket ``[min_k (A x)_k / x_k, max_k ...]`` is
    ``tol`` relative wide, or when it excludes ``target`` by a hundred times its width:
    then the root search learns the side and ``|root - target|`` to 1%, all it needs.
    """
    d = r.size
    x = state.x if state.x is not None and state.x.size == d else np.full(d, 1.0 / d)
    est = 0.0
    for _ in range(20000):
        y = r * (C @ x)
        state.matvecs += 1
        total = y.sum()
        if not total > 0:
            state.x = None
            return 0.0
        est = total / x.sum()
        pos = x > 1e-250 * x.max()
        ratio = y[pos] / x[pos]
        lo, hi = ratio.min(), ratio.max()
        x = y / total
        if hi - lo <= tol * hi:
            break
        if target is not None and 100 * (hi - lo) < max(lo - target, target - hi):
            break
    state.x = x
    return float(est)


def _closure_gap(blk: _Blocks, C, kappa: float, state: _PerronState, s: float) -> float:
    """``1 - (Perron root of kappa diag(G/Q) C)`` at ``z = 1 - s`` above every block's
    radius, else -1 (as :func:`_secular_gap`)."""
    Q = ((-s + blk.q2) * s + blk.q1) * s + blk.q0
    dQ = (3 * s - 2 * blk.q2) * s - blk.q1
    d2Q = 2 * blk.q2 - 6 * s
    if not (np.all(Q > 0) and np.all(dQ > 0) and np.all(d2Q > 0)):
        return -1.0
    G = (blk.g2 * s + blk.g1) * s + blk.g0
    return 1.0 - _perron_root(C, kappa * G / Q, state, target=1.0)


def _closure_gap_rate(
    model: Closure, method: str, c: float, eta: float, beta: float, warm=None
) -> float:
    """``1 - rho`` of the closure (positive modes): the Rayleigh-functional iteration
    (:func:`_closure_root`) where the coupling is symmetrizable and the root is one of
    the Perron equation, else (and as its reference) the root search on
    :func:`_closure_gap`. ``warm`` (a :class:`_RootState`) carries the last Perron vector
    from one rate to the next, e.g. through a tuner's search."""
    lam, C, own, _ = model._rate_data
    blk = _blocks(lam, method, c, eta, beta, own=own)
    kappa = c * eta**2
    sym = model._symmetric_coupling
    if sym is None or not kappa > 0:
        return _closure_gap_rate_power(blk, C, kappa, c)
    warm = warm if warm is not None else _RootState()
    s = _closure_root(blk, sym, kappa, warm)
    if s is not None:
        return s
    # A block's own radius sets the rate (or the noise-free one): the root search of the
    # reference, with the Perron root from the symmetric form.
    polys = _Polys(blk)
    return _gap_root(
        lambda s: _closure_gap_symmetric(polys, sym, kappa, warm, s),
        blk,
        c,
        feasible=lambda s: polys.at(s)[:3].min() > 0,
    )


def _closure_gap_symmetric(polys: _Polys, sym, kappa: float, state, s: float) -> float:
    """:func:`_closure_gap` through the symmetric form ``diag(g) S diag(g)`` (see below)."""
    S, D, _ = sym
    Q, mdQ, d2Q, G, _ = vals = polys.at(s)
    if not vals[:3].min() > 0:
        return -1.0
    g = np.sqrt(kappa * D * np.maximum(G, 0.0) / Q)
    theta, _ = _top_eigenpair(S * g[:, None] * g[None, :], state, g)
    return 1.0 - theta


def _closure_gap_rate_power(blk: _Blocks, C, kappa: float, c: float) -> float:
    """``1 - rho`` by Brent's method on :func:`_closure_gap` (power iteration per point):
    any ``C``, and the reference the tests hold the fast route to."""
    state = _PerronState()
    return _gap_root(lambda s: _closure_gap(blk, C, kappa, state, s), blk, c)


# Fast route (_RootState and below). Where C = S diag(D) with S symmetric (every sampler
# here: rows with u = v give a symmetric Q; coordinate sampling gives Q = K Lambda^2 with K
# symmetric), the
# Perron equation kappa diag(r(s)) C x = x reads, with u = D x,
#
#     P(s) u = 0,    P(s) = diag(phi(s)) - S,    phi_k(s) = Q_k(s) / (kappa D_k G_k(s)),
#
# a symmetric nonlinear eigenproblem. Below the rate (s < s*) the Perron root is < 1, so
# P(s) is positive definite, and phi decreases in s (r increases): the Rayleigh
# functional s(u), the root of F(s; u) = sum_k u_k^2 phi_k(s) - u^T S u, is >= s* for
# every u and equals s* at the Perron vector, where it is stationary, so an eigenvector
# good to 1e-8 gives s* to ~1e-16. F costs O(d) per point (u^T S u is fixed). The
# eigenvector at a given s is the top one of the symmetric diag(g) S diag(g),
# g = phi^(-1/2) (the Perron root), from Lanczos warm-started at the last one; s and the
# eigenvector are refined in turn, each round squaring the error in s. Cost: a few dozen
# O(d^2) products per rate, where the power iteration needs hundreds per root-search point
# when the coupling's eigenvalues are clustered (d = 256 digits kernel: 0.93).


# Up to this d the eigenvector comes from a dense symmetric eigensolver (O(d^3), no Python
# loop); beyond, from Lanczos (O(d^2) per step).
_DENSE_EIGH_MAX_D = 96


class _RootState:
    """The last Perron vector ``u`` and root ``s`` of :func:`_closure_root`, to warm-start
    the next."""

    u: np.ndarray | None = None
    s: float | None = None


def _symmetric_factor(C: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(S, D)`` with ``C = S diag(D)``, ``S`` symmetric, ``D > 0`` (``D_j / D_k =
    C_kj / C_jk``), or None when ``C`` has no such form."""
    d = C.shape[0]
    if d == 1:
        return C.copy(), np.ones(1)
    first_row, first_col = C[0, 1:], C[1:, 0]
    if not (np.all(first_row > 0) and np.all(first_col > 0)):
        return (C, np.ones(d)) if np.array_equal(C, C.T) else None
    D = np.concatenate([[1.0], first_row / first_col])
    S = C / D[None, :]
    if np.max(np.abs(S - S.T)) > 1e-12 * np.max(np.abs(S)):
        return None
    return 0.5 * (S + S.T), D


def _lanczos_top(A: np.ndarray, x0: np.ndarray, tol: float, max_steps: int = 40):
    """Largest eigenvalue of the symmetric ``A`` and its unit eigenvector, by Lanczos with
    full reorthogonalization from ``x0``, restarted from the Ritz vector every
    ``max_steps``; stops when the residual ``||A y - theta y||`` is ``tol * |theta|``."""
    d = x0.size
    m = min(max_steps, d)
    x = x0 / np.linalg.norm(x0)
    theta = 0.0
    for _ in range(200):
        V = np.empty((m + 1, d))
        T = np.zeros((m, m))
        V[0] = x
        for j in range(m):
            w = A @ V[j]
            T[j, j] = V[j] @ w
            Vj = V[: j + 1]
            w -= (Vj @ w) @ Vj
            w -= (Vj @ w) @ Vj  # twice is enough (Kahan-Parlett)
            b = float(np.sqrt(w @ w))
            last = j + 1 == m or j + 1 == d or b == 0
            if j >= 3 or last:  # the Ritz pair of the (j + 1)-step tridiagonal
                vals, vecs = np.linalg.eigh(T[: j + 1, : j + 1])
                theta, y = vals[-1], vecs[:, -1]
                if b * abs(y[-1]) <= tol * abs(theta) or j + 1 == d or b == 0:
                    return theta, y @ Vj, b * abs(y[-1])
            if j + 1 < m:
                T[j, j + 1] = T[j + 1, j] = b
                V[j + 1] = w / b
        x = y @ V[:m]
        x /= np.linalg.norm(x)
    return theta, x, np.inf  # pragma: no cover - never converged


class _Polys:
    """The blocks' ``Q, -dQ/ds, d2Q/ds2, G, dG/ds`` as one ``(4, 5 d)`` coefficient matrix
    on the powers ``(s^3, s^2, s, 1)``: one product evaluates all five at a point."""

    def __init__(self, blk: _Blocks):
        z, one = np.zeros_like(blk.q2), np.ones_like(blk.q2)
        self.d = blk.q2.size
        self.coef = np.vstack(
            [
                np.concatenate([-one, z, z, z, z]),
                np.concatenate([blk.q2, 3 * one, z, blk.g2, z]),
                np.concatenate([blk.q1, -2 * blk.q2, -6 * one, blk.g1, 2 * blk.g2]),
                np.concatenate([blk.q0, -blk.q1, 2 * blk.q2, blk.g0, blk.g1]),
            ]
        )
        self.s_max = float(np.min(blk.s_mean))

    def at(self, s: float) -> np.ndarray:
        """Rows ``Q, -dQ/ds, d2Q/ds2, G, dG/ds`` at ``s``; the first four all positive
        exactly above every block's radius (Budan-Fourier, as in :func:`_secular_gap`)."""
        return (np.array([s * s * s, s * s, s, 1.0]) @ self.coef).reshape(5, self.d)


def _rayleigh_root(polys: _Polys, w: np.ndarray, sigma: float, s0: float) -> float | None:
    """Root of ``F(s) = sum_k w_k Q_k(s) / G_k(s) - sigma`` (``w = u^2 / (kappa D)``,
    ``sigma = u^T S u``), decreasing in ``s`` above the poles: safeguarded Newton from
    ``s0``. None when no feasible point with ``F > 0`` is found."""

    def at(s):
        Q, mdQ, _, G, dG = vals = polys.at(s)
        if not vals[:4].min() > 0:
            return None, None
        ratio = Q / G
        return float(w @ ratio) - sigma, -float(w @ ((mdQ + ratio * dG) / G))

    lo, hi = -np.inf, np.inf  # F(lo) > 0 (feasible); hi: F <= 0 or infeasible
    step = max(abs(polys.s_max), 1e-12)
    s, (F, dF) = s0, at(s0)
    for _ in range(300):
        if F is not None and F == 0:
            return s
        if F is not None and F > 0:
            lo = s
        else:
            hi = s
        s_new = s - F / dF if F is not None and dF < 0 else np.nan
        if F is not None and abs(s_new - s) <= 4e-16 * max(abs(s), 1e-300):
            return s_new
        if not lo < s_new < hi:
            bracket = np.isfinite(lo) and np.isfinite(hi)
            if F is None and bracket and hi - lo <= 1e-3 * max(abs(lo), abs(hi)):
                # F > 0 close to a pole: maybe a block sets the rate. The caller's root
                # search decides (this only saves bisection steps, never changes a result).
                return None
            if bracket:
                s_new = 0.5 * (lo + hi)
            else:  # walk out, doubling, as _gap_root does
                s_new = hi - step if np.isfinite(hi) else lo + step
                step *= 2
        if np.isfinite(lo) and hi - lo <= 4e-16 * abs(lo):
            return lo
        s = s_new
        F, dF = at(s)
    return None  # pragma: no cover


def _top_eigenpair(St: np.ndarray, state: _RootState, g: np.ndarray):
    """Largest eigenvalue of the symmetric ``St = diag(g) S diag(g)`` and the matching
    (non-negative) ``u = g x``; Lanczos starts from ``state.u / g``."""
    if St.shape[0] <= _DENSE_EIGH_MAX_D:  # small d: LAPACK beats Lanczos' overhead
        vals, vecs = np.linalg.eigh(St)
        theta, x = vals[-1], vecs[:, -1]
    else:
        u0 = state.u if state.u is not None else np.ones(g.size)
        x0 = np.where(g > 0, u0 / np.where(g > 0, g, 1.0), 0.0)
        theta, x, _ = _lanczos_top(St, x0 if x0.any() else np.ones(g.size), 1e-10)
    u = np.abs(g * x)  # the Perron vector is non-negative
    state.u = u / max(np.linalg.norm(u), 1e-300)
    return float(theta), u


def _closure_root(blk: _Blocks, sym, kappa: float, state: _RootState) -> float | None:
    """``s* = 1 - rho`` where the Perron equation (not a block) sets the rate, else None
    (the caller then falls back to the root search)."""
    S, D, u0 = sym
    polys = _Polys(blk)
    s_max = polys.s_max
    u = state.u if state.u is not None else u0
    start = s_max if state.s is None else min(state.s, s_max)
    s = _rayleigh_root(polys, u * u / (kappa * D), float(u @ (S @ u)), start)
    if s is None:
        return None
    last = np.inf
    for _ in range(20):
        Q, mdQ, d2Q, G, _ = vals = polys.at(s)
        if not vals[:4].min() > 0 or s >= s_max:
            return None  # a block's own radius (or the noise-free one) sets the rate
        g = np.sqrt(kappa * D * G / Q)
        state.u = u
        _, u = _top_eigenpair(S * g[:, None] * g[None, :], state, g)
        s_new = _rayleigh_root(polys, u * u / (kappa * D), float(u @ (S @ u)), s)
        if s_new is None:
            return None
        # Each round squares the error (s_new - s* ~ K (s - s*)^2): stop when the change
        # is at round-off, or when the next one, K delta^2 = delta^3 / last^2, would be.
        delta = abs(s_new - s)
        tol = 1e-16 * abs(s_new)
        done = delta <= 1e3 * tol or (delta <= 1e-8 * abs(s_new) and delta**3 <= tol * last**2)
        s, last = s_new, delta
        if done:
            if not s < s_max:
                return None
            state.u, state.s = u / np.linalg.norm(u), s
            return s
    return None  # pragma: no cover


def closure_rate(model: Closure, method: str, batch_size: float, eta: float, beta: float) -> float:
    """Asymptotic rate ``rho`` of the moment closure: the spectral radius of
    :func:`closure_operator` on the positive modes, from the Perron-root equation (see the
    comment above :class:`Closure`): a few dozen ``O(d^2)`` products (Lanczos, or a dense
    ``O(d^3)`` eigensolver for small ``d``) where the coupling has a symmetric form."""
    _check_params(method, eta, beta)
    return 1.0 - _closure_gap_rate(model, method, model.noise_factor(batch_size), eta, beta)


def closure_optimal_parameters(
    model: Closure,
    method: str,
    batch_size: float,
    *,
    start: tuple[float, float] | None = None,
) -> Tuned:
    """:func:`optimal_parameters` for the moment closure (same tuner, the closure's rate;
    the start uses the noise scale ``rho(Lambda^-1 Q)`` in place of ``tr H``)."""
    lam, _, _, scale = model._rate_data
    c = model.noise_factor(batch_size)
    warm = _RootState()
    return _tune(
        lambda eta, beta: _closure_gap_rate(model, method, c, eta, beta, warm),
        method,
        batch_size,
        lam.max(),
        lam.min(),
        scale,
        c,
        start,
    )


def closure_batch_scaling(
    model: Closure, method: str, batch_sizes, *, eps: float = 1e-6
) -> BatchScaling:
    """:func:`batch_scaling` for the moment closure."""
    Bs = np.asarray(batch_sizes, float)
    return _scaling(Bs, [closure_optimal_parameters(model, method, B) for B in Bs], eps)


def closure_knee_batch(
    model: Closure, method: str, *, factor: float = 2.0, rtol: float = 1e-3
) -> float:
    """:func:`knee_batch` for the moment closure."""
    lam, _, _, scale = model._rate_data
    largest = float(model.m) if (model.m is not None and not model.replace) else np.inf
    return _knee(
        lambda B: closure_optimal_parameters(model, method, B).rho,
        method,
        lam.max(),
        lam.min(),
        scale,
        largest,
        factor,
        rtol,
    )
