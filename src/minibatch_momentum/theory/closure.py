r"""The moment closure for any sampler, ``O(d^2)`` per step, and its rate.

The Gaussian closed form keeps only the diagonal second moments (p_k, q_k, s_k) per mode
of H. For any sampler the same closure uses the diagonal of the noise, which for a
diagonal X (in H's eigenbasis, x_k = X_kk) is

    N(X)_kk = c_B ((Q x)_k - lam_k^2 x_k),    Q_kj = E_i[u_ik^2 v_ij^2]

(Gaussian rows: Q = 2 Lambda^2 + lam lam^T, the closed form of
:mod:`~minibatch_momentum.theory.gaussian`). The closure is exact when E[Z X Z^T] maps
diagonal X to diagonal X (row laws symmetric under reflections of the eigen-coordinates,
e.g. elliptical rows at the population level); otherwise it drops the off-diagonal second
moments, an approximation the tests measure.

Rate. Split Q - Lambda^2 = diag(own) + C with C >= 0 entrywise: C_kj = Q_kj off the
diagonal and C_kk = min(Q_kk - lam_k^2, lam_k^2), so own_k = max(Q_kk - 2 lam_k^2, 0)
(Gaussian Q: own = lam^2, C = lam lam^T, the secular equation's split). Each mode's
3x3 block D_k carries its own noise c eta^2 own_k; the coupling injects c eta^2 (C x)_k
into p_k. An eigenvalue z above every block's radius has x = diag(r(z)) kappa C x with
r_k = G_k / Q_k the block's response (as in the secular equation), kappa = c eta^2. Both
parts are positive maps, so r_k(z) >= 0 decreases in z there, and rho is the z where the
Perron root of kappa diag(r(z)) C equals 1 (or the largest block radius when it stays
below 1). For rank-one C this Perron root is the secular function phi. The Perron root
comes from power iteration, warm-started across the root search and stopped on the
Collatz-Wielandt bracket (min and max of (A x)_k / x_k), O(d^2) per iteration: the
reference route, and the one for a C without a symmetric form. Where C has one (every
sampler here) the rate comes from a Rayleigh-functional iteration instead (the comment
above _RootState), a few dozen O(d^2) products per rate, equal to the reference to ~1e-13.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from minibatch_momentum.theory.common import NULL_TOL
from minibatch_momentum.theory.gaussian import ModeBlocks, gap_root, mode_blocks
from minibatch_momentum.theory.model import ModeRecursion, NoiseModel


@dataclass(frozen=True)
class Closure(NoiseModel):
    """The moment closure's data for one (problem, sampler): eigenvalues of ``H``, the
    fourth-moment matrix ``Q`` in their order, and the sampler's ``c_B`` (``n`` rows of
    its table, ``replace``)."""

    eigvals: np.ndarray
    Q: np.ndarray
    n: int | None = None
    replace: bool = True

    @classmethod
    def gaussian(cls, eigvals, n: int | None = None, replace: bool = True) -> Closure:
        """Gaussian rows ``N(0, H)``: ``Q = 2 Lambda^2 + lam lam^T`` (the closed form)."""
        lam = np.asarray(eigvals, float)
        return cls(lam, 2 * np.diag(lam * lam) + np.outer(lam, lam), n, replace)

    def _recursion(self, weights, method, c, eta, beta) -> ModeRecursion:
        return _ClosureRecursion(self, weights, method, c, eta, beta)

    def _coupling(self, lam: np.ndarray) -> np.ndarray:
        return np.asarray(self.Q, float) - np.diag(lam * lam)

    def gap(self, method: str, c: float) -> Callable[[float, float], float]:
        """``1 - rho`` from the Perron-root equation (see the module docstring): a few
        dozen ``O(d^2)`` products (Lanczos, or a dense ``O(d^3)`` eigensolver for small
        ``d``) where the coupling has a symmetric form; the last Perron vector carries
        from one call to the next."""
        warm = _RootState()
        return lambda eta, beta: _closure_gap_rate(self, method, c, eta, beta, warm)

    @property
    def noise_scale(self) -> float:
        """``rho(Lambda^-1 Q)``: SGD's small-step stability edge is ``eta = 2 B / rho``."""
        return self._rate_data[3]

    @cached_property
    def _rate_data(self):
        """Positive modes, their ``Q``, the split ``(own, C)`` and the noise scale."""
        lam_all = np.asarray(self.eigvals, float)
        lam = self.positive
        keep = lam_all > NULL_TOL * lam_all.max()
        Q = np.asarray(self.Q, float)[np.ix_(keep, keep)]
        excess = np.maximum(np.diag(Q) - lam * lam, 0.0)
        diag_c = np.minimum(excess, lam * lam)
        C = Q.copy()
        np.fill_diagonal(C, diag_c)
        own = excess - diag_c
        # Noise scale: SGD's small-step stability edge is eta = 2 B / rho(Lambda^-1 Q)
        # (tr H + O(L) for Gaussian rows); it starts the tuner.
        scale = _perron_root(Q, 1.0 / lam, PerronState(), tol=1e-10)
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


class _ClosureRecursion(ModeRecursion):
    """State ``(p, q, s)`` of the moment closure for ``R`` configurations."""

    def __init__(self, model: Closure, weights, method, c, eta, beta):
        super().__init__(model.eigvals, weights, method, c, eta, beta)
        self.Q = np.asarray(model.Q, float)

    def _noise(self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
        """``Q x - lam^2 x`` into ``out``."""
        np.matmul(self.Q, x, out=out)
        out -= np.multiply(self._lam2, x, out=tmp)
        return out


class PerronState:
    """The last Perron vector, to warm-start the next power iteration."""

    x: np.ndarray | None = None
    matvecs: int = 0


def _perron_root(C, r, state: PerronState, target: float | None = None, tol=1e-14):
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


def _closure_gap(blk: ModeBlocks, C, kappa: float, state: PerronState, s: float) -> float:
    """``1 - (Perron root of kappa diag(G/Q) C)`` at ``z = 1 - s`` above every block's
    radius, else -1 (as :class:`~minibatch_momentum.theory.gaussian._Secular`)."""
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
    blk = mode_blocks(lam, method, c, eta, beta, own=own)
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
    return gap_root(
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
    theta, _ = _top_eigenpair(_scaled(S, g, state), state, g)
    return 1.0 - theta


def _closure_gap_rate_power(blk: ModeBlocks, C, kappa: float, c: float) -> float:
    """``1 - rho`` by Brent's method on :func:`_closure_gap` (power iteration per point):
    any ``C``, and the reference the tests hold the fast route to."""
    state = PerronState()
    return gap_root(lambda s: _closure_gap(blk, C, kappa, state, s), blk, c)


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
    the next, and the buffer of :func:`_scaled`."""

    u: np.ndarray | None = None
    s: float | None = None
    buf: np.ndarray | None = None


def _scaled(S: np.ndarray, g: np.ndarray, state: _RootState) -> np.ndarray:
    """``diag(g) S diag(g)``, the products of ``S * g[:, None] * g[None, :]``, written into
    ``state``'s buffer: at d = 256 a fresh pair of (d, d) arrays per call (new pages) cost
    more than the products, a few thousand times per tuning."""
    if state.buf is None or state.buf.shape != S.shape:
        state.buf = np.empty_like(S)
    np.multiply(S, g[:, None], out=state.buf)
    return np.multiply(state.buf, g[None, :], out=state.buf)


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

    def __init__(self, blk: ModeBlocks):
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
        exactly above every block's radius (Budan-Fourier, as in
        :class:`~minibatch_momentum.theory.gaussian._Secular`)."""
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
            else:  # walk out, doubling, as gap_root does
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


def _closure_root(blk: ModeBlocks, sym, kappa: float, state: _RootState) -> float | None:
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
        _, u = _top_eigenpair(_scaled(S, g, state), state, g)
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
