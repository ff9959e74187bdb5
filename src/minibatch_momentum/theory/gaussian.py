r"""Gaussian rows: the closed form in the eigenbasis of ``H``, ``O(d)`` per step.

In the eigenbasis of ``H`` the mean transition is a direct sum
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
:func:`mode_blocks`) because near ``z = 1`` the textbook coefficients cancel catastrophically.
Cost: ``O(d)`` per evaluation of ``phi``, a few dozen evaluations per rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from minibatch_momentum.theory.common import gamma_of, lookahead_weights
from minibatch_momentum.theory.model import ModeRecursion, NoiseModel


@dataclass(frozen=True)
class Gaussian(NoiseModel):
    """Gaussian rows ``N(0, H)`` with the spectrum ``eigvals`` of ``H``; ``n`` and
    ``replace`` set ``c_B`` (:func:`~minibatch_momentum.sampling.samplers.noise_factor`)."""

    eigvals: np.ndarray
    n: int | None = None
    replace: bool = True

    def _recursion(self, weights, method, c, eta, beta) -> ModeRecursion:
        return _GaussianRecursion(self.eigvals, weights, method, c, eta, beta)

    def _coupling(self, lam: np.ndarray) -> np.ndarray:
        return np.diag(lam * lam) + np.outer(lam, lam)

    def gap(self, method: str, c: float) -> Callable[[float, float], float]:
        """The exact ``1 - rho`` from the secular equation, ``O(d)`` per evaluation."""
        lam = self.positive
        return lambda eta, beta: _rate_gap(lam, method, c, eta, beta)

    @property
    def noise_scale(self) -> float:
        return self.positive.sum()


class _GaussianRecursion(ModeRecursion):
    """The closed Gaussian recursion: noise ``lam^2 x + lam tr(H X)``."""

    def _noise(self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
        """The noise term over ``kick`` into ``out``: ``lam^2 x + lam tr(H X)``."""
        tau = self.lam @ x  # tr(H X): the rank-one coupling between modes
        np.multiply(self._lam2, x, out=out)
        out += np.multiply(self._lam_r, tau, out=tmp)
        return out


@dataclass(frozen=True)
class ModeBlocks:
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


def mode_blocks(
    lam: np.ndarray, method: str, c: float, eta: float, beta: float, own: np.ndarray | None = None
) -> ModeBlocks:
    """The blocks' polynomials; ``own`` (default ``lam^2``) is each block's own noise
    coefficient, ``kap = c eta^2 own`` (the moment closure puts its split there)."""
    g = gamma_of(method, beta)
    h = eta * lam
    # The 2x2 mean block has determinant 1 - mc and trace 2 - om. Both are built from
    # the small numbers 1 - beta and eta lam, never as differences of numbers near 1.
    mc = (1.0 - beta) + g * h
    om = mc + h
    # det(z - Mbar (.) Mbar^T) = (z - c)((z + c)^2 - a^2 z), expanded around z = 1
    # (symbolically checked): (mc - s)(s^2 + p1 s + p0).
    p1 = 2 * mc - 4 * om + om * om
    p0 = h * (4 - 2 * mc - h)
    w1, w2, w3 = lookahead_weights(g)
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
    return ModeBlocks(
        q2=mc - p1 - kap * g2,
        q1=mc * p1 - p0 - kap * g1,
        q0=mc * p0 - kap * g0,
        g2=g2,
        g1=g1,
        g0=g0,
        kap=kap,
        s_mean=s_mean,
    )


class _Secular:
    """The secular function of one ``(eta, beta)``: the blocks' ``Q``, ``-dQ/ds``,
    ``d2Q/ds2`` and ``G`` as the four rows of one Horner scheme in ``s`` (coefficients of
    ``s^3 .. s^0``), so six array operations evaluate all four. Each row's operations are
    those of its own Horner scheme (a leading zero coefficient adds an exact zero), so
    the values are the same to the last bit."""

    def __init__(self, blk: ModeBlocks):
        zero, one = np.zeros_like(blk.q2), np.ones_like(blk.q2)
        rows = [
            [-one, blk.q2, blk.q1, blk.q0],  # Q
            [zero, 3 * one, -2 * blk.q2, -blk.q1],  # -dQ/ds = dQ/dz
            [zero, zero, -6 * one, 2 * blk.q2],  # d2Q/ds2
            [zero, blk.g2, blk.g1, blk.g0],  # G
        ]
        self.coef = np.array(rows).transpose(1, 0, 2)  # (power, row, mode)
        self.kap = blk.kap
        self._acc = np.empty(self.coef.shape[1:])

    def __call__(self, s: float) -> float:
        """``1 - phi(s)`` where ``z = 1 - s`` lies above every block's spectral radius,
        else -1.

        Positive exactly when ``z`` lies above the spectral radius of the whole map, and
        continuous across it wherever the secular equation (not a block) sets the rate.
        """
        acc, c = self._acc, self.coef
        np.multiply(c[0], s, out=acc)
        for k in (1, 2):
            acc += c[k]
            acc *= s
        acc += c[3]
        # Budan-Fourier: z is above every block's spectral radius iff Q, dQ/dz and
        # d2Q/dz2 are > 0. (min() > 0 is np.all(... > 0), NaN included.)
        if not acc[:3].min() > 0:
            return -1.0
        Q, G = acc[0], acc[3]
        return 1.0 - float((self.kap * G / Q).sum())


def _rate_gap(lam: np.ndarray, method: str, c: float, eta: float, beta: float) -> float:
    """``1 - rho`` for the closed Gaussian map on the positive eigenvalues ``lam``."""
    blk = mode_blocks(lam, method, c, eta, beta)
    return gap_root(_Secular(blk), blk, c)


def gap_root(gap, blk: ModeBlocks, c: float, feasible=None) -> float:
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
