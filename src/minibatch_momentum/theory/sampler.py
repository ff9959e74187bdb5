r"""Any sampler: the general noise operator, exact dense second moments in the eigenbasis
of ``H``, and the sampler's fourth moments for the moment closure.

A sampler's step uses Z_S = (1/B) sum_k u_{i_k} v_{i_k}^T with E[Z_S] = H
(:mod:`~minibatch_momentum.sampling.samplers`), so the derivation of
:mod:`~minibatch_momentum.theory` goes through with
H_S -> Z_S and

    N_B(X) = E[(Z_S - H) X (Z_S - H)^T] = c_B (E_i[u_i (v_i^T X v_i) u_i^T] - H X H),

E_i over the table's probabilities p_i (uniform: 1/m), c_B = Sampling.noise_factor(B):
1/B for i.i.d. draws (with_replacement, kaczmarz, coordinate), (m - B)/(B (m - 1)) for
B distinct uniform rows. For coordinate sampling Z is not symmetric (u_j = e_j / p_j,
v_j = m_j), hence the transpose. kaczmarz_block has Z_S = P_S, a projection whose mean
is not H: no closed form, see BLOCK_PROJECTION_ERROR.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable

import numpy as np

from minibatch_momentum.sampling.samplers import sampling
from minibatch_momentum.theory.closure import Closure, PerronState
from minibatch_momentum.theory.common import NULL_TOL, MomentCurve, check_params, gamma_of
from minibatch_momentum.theory.dense import lookahead_map, mean_transition
from minibatch_momentum.theory.gaussian import gap_root, mode_blocks
from minibatch_momentum.theory.tuning import Tuned, tune

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

    For uniform rows ``(a_i, a_i)`` this is
    :func:`~minibatch_momentum.theory.dense.sampling_noise`. ``O(m d^2)``.
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
    check_params(method, eta, beta)
    table = sampler_table(problem, sampler)
    lam = np.asarray(problem.eigvals, float)
    g = gamma_of(method, beta)
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
    :func:`~minibatch_momentum.theory.dense.dense_curve` with the general noise operator
    :func:`sampler_noise`, iterated in the eigenbasis of ``H``, ``O(m d^2 + d^3)`` per
    step (``O(d^4 / 4)`` after a one-off ``O(m d^4 / 4)`` where that is cheaper:
    :func:`fourth_moment_map`).

    Parameters
    ----------
    problem : a :class:`~minibatch_momentum.problems.system.Problem` of the sampler's kind.
    sampler : a name from :mod:`~minibatch_momentum.sampling.samplers`.
    method, batch_size, eta, beta, steps : as in
        :func:`~minibatch_momentum.theory.dense.dense_curve`.
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
    (:func:`~minibatch_momentum.theory.dense.dense_operator` with
    ``vec(u (v^T X v) u^T) = (u kron u)(v kron v)^T vec(X)``). Small ``d`` only."""
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
    keep = lam > NULL_TOL * lam.max()
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
    :meth:`~minibatch_momentum.theory.model.NoiseModel.rate`, are left out: they carry no
    loss and never feed back).

    Up to ``dense_max_d`` positive modes: the eigenvalues of the ``(4 d^2)^2`` matrix.
    Beyond: the mean map acts on each pair of modes by a 4x4 block, so ``z`` above its
    radius is an eigenvalue iff the positive map ``Y -> eta^2 N(R(z) o Y)`` (``R`` from
    :func:`_pair_transfer`, ``o`` entrywise) has Perron root 1; that root decreases in
    ``z``, and the rate is found as in the Gaussian closed form
    (:mod:`~minibatch_momentum.theory.gaussian`) with the Perron root from ARPACK
    (``O(m d^2 + d^3)`` per application, relative tolerance ``tol``).
    """
    table, lam, c, _, _, _ = _sampler_setup(problem, sampler, method, batch_size, eta, beta)
    table, lam = _positive_modes(table, lam)
    d = lam.size
    if d <= dense_max_d:
        op = _operator(table, lam, c, method, eta, beta)
        return float(np.max(np.abs(np.linalg.eigvals(op))))
    g = gamma_of(method, beta)
    a = 1 + beta - eta * (1 + g) * lam
    b = -beta + eta * g * lam
    blk = mode_blocks(lam, method, c, eta, beta)
    s_max = float(np.min(blk.s_mean))
    H = np.diag(lam)
    state = PerronState()

    def gap(s):
        if not s < s_max:
            return -1.0
        R = _pair_transfer(a, b, g, 1.0 - s)
        return 1.0 - _map_perron(
            lambda Y: eta**2 * sampler_noise(table, R * Y, c, H), d, state, tol
        )

    return 1.0 - gap_root(gap, blk, c)


def sampler_optimal_parameters(
    problem,
    sampler: str,
    method: str,
    batch_size: float,
    *,
    start: tuple[float, float] | None = None,
) -> Tuned:
    """Constant ``(eta, beta)`` minimizing the exact rate :func:`sampler_rate` (the tuner of
    :func:`~minibatch_momentum.theory.tuning.optimal_parameters`; each step is a dense
    rate, so small ``d`` only)."""
    table = sampler_table(problem, sampler)
    model = closure_model(problem, sampler)
    lam, scale = model.positive, model.noise_scale
    c = table.noise_factor(batch_size)
    return tune(
        lambda eta, beta: 1.0 - sampler_rate(problem, sampler, method, batch_size, eta, beta),
        method,
        batch_size,
        lam.max(),
        lam.min(),
        scale,
        c,
        start,
    )


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
        np.asarray(problem.eigvals, float), fourth_moments(table), n=table.m, replace=table.replace
    )
