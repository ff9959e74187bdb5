r"""Symmetric matrix sensing, the over-parametrized model of S2 (:mod:`.label_noise`).

``<A_i, U U^T> = y_i`` with ``U`` of shape ``(d, k)``: its residuals and loss, the Hessian
trace at a global minimum (the flatness the label noise drives down), the Gauss-Newton
projection onto the manifold of minima, and heavy ball with label noise on it (float64
numpy, a run axis first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MatrixSensingProblem:
    """Symmetric matrix sensing, its teacher and an interpolating start (all float64).

    ``A`` is ``(n, d, d)`` symmetric, ``y = <A_i, U* U*^T>``, ``U_teacher`` the teacher
    padded with zero columns to ``(d, k)``, ``U0`` the interpolating start ``(d, k)``,
    ``M = (1/n) sum_i A_i^2`` (so ``tr H = 4 <M, U U^T>`` at a global minimum).
    """

    A: np.ndarray
    y: np.ndarray
    U_teacher: np.ndarray
    U0: np.ndarray
    M: np.ndarray

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1]

    @property
    def trace_start(self) -> float:
        return float(hessian_trace(self, self.U0))

    @property
    def trace_teacher(self) -> float:
        return float(hessian_trace(self, self.U_teacher))


def residuals(problem: MatrixSensingProblem, U: np.ndarray) -> np.ndarray:
    """``<A_i, U U^T> - y_i`` for ``U`` of shape ``(..., d, k)``; returns ``(..., n)``."""
    X = U @ np.swapaxes(U, -1, -2)
    Af = problem.A.reshape(problem.n, -1)
    return X.reshape(*X.shape[:-2], -1) @ Af.T - problem.y


def loss(problem: MatrixSensingProblem, U: np.ndarray) -> np.ndarray:
    """The noise-free training loss ``(1/2n) sum_i r_i^2``."""
    r = residuals(problem, U)
    return 0.5 * np.mean(r * r, axis=-1)


def hessian_trace(problem: MatrixSensingProblem, U: np.ndarray) -> np.ndarray:
    """``(4/n) sum_i ||A_i U||_F^2 = 4 <M, U U^T>``: the trace of the Gauss-Newton matrix,
    which equals the trace of the Hessian of the loss at any global minimum."""
    return 4.0 * np.sum(U * (problem.M @ U), axis=(-2, -1))


def project_to_manifold(problem: MatrixSensingProblem, U: np.ndarray, iters: int = 2) -> np.ndarray:
    """Gauss-Newton (minimum-norm) steps towards ``{<A_i, U U^T> = y_i}``; ``U`` is
    ``(R, d, k)``. Each step solves ``J J^T z = r`` and moves ``U <- U - J^T z``."""
    A = problem.A
    R, d, k = U.shape
    n = problem.n
    for _ in range(iters):
        r = residuals(problem, U)  # (R, n)
        J = 2.0 * (A.reshape(n * d, d) @ U).reshape(R, n, d * k)  # rows: 2 A_i U
        z = np.linalg.solve(J @ np.swapaxes(J, 1, 2), r[..., None])
        U = U - (np.swapaxes(J, 1, 2) @ z).reshape(R, d, k)
    return U


def make_problem(config) -> MatrixSensingProblem:
    """Measurements, teacher and interpolating start from ``problem_seed`` (the fields
    ``d, n, k, teacher_rank, init_scale, problem_seed`` of a
    :class:`~minibatch_momentum.studies.label_noise.LabelNoiseConfig`).

    The start is ``init_scale * G / sqrt(d)`` (``G`` standard Gaussian, ``d x k``) moved
    onto the manifold of global minima by Gauss-Newton steps (damped for the first 20),
    to a residual below 1e-12.
    """
    d, n, k = config.d, config.n, config.k
    rng = np.random.default_rng(np.random.SeedSequence([config.problem_seed, 22101640]))
    G = rng.standard_normal((n, d, d))
    A = 0.5 * (G + np.swapaxes(G, 1, 2))
    Ut = rng.standard_normal((d, config.teacher_rank))
    Ut *= math.sqrt(config.teacher_rank) / np.linalg.norm(Ut)
    y = np.einsum("nij,ij->n", A, Ut @ Ut.T)
    M = np.einsum("nij,njk->ik", A, A) / n
    U_teacher = np.zeros((d, k))
    U_teacher[:, : config.teacher_rank] = Ut
    U = config.init_scale * rng.standard_normal((d, k)) / math.sqrt(d)
    problem = MatrixSensingProblem(A=A, y=y, U_teacher=U_teacher, U0=U, M=M)
    for it in range(200):
        r = residuals(problem, U)
        if np.max(np.abs(r)) < 1e-12 * max(1.0, np.max(np.abs(y))):
            break
        J = 2.0 * np.einsum("nij,jk->nik", A, U).reshape(n, d * k)
        step = np.linalg.lstsq(J, r, rcond=None)[0].reshape(d, k)
        U = U - (0.5 if it < 20 else 1.0) * step
    else:
        raise ValueError(
            f"problem_seed: the Gauss-Newton projection of the start did not reach the "
            f"manifold of minima (problem_seed={config.problem_seed}, "
            f"init_scale={config.init_scale})"
        )
    problem = MatrixSensingProblem(A=A, y=y, U_teacher=U_teacher, U0=U, M=M)
    if not problem.trace_start > problem.trace_teacher * (1 + 1e-6):
        raise ValueError(
            f"init_scale: the interpolating start (tr H = {problem.trace_start:.4g}) is not "
            f"sharper than the teacher (tr H = {problem.trace_teacher:.4g}); raise init_scale "
            "or change problem_seed"
        )
    return problem


def gradient(problem, U, Af, noise, weights=None):
    """Gradient of ``(1/2n) sum_i w_i (<A_i, U U^T> - y_i - noise_i)^2`` for ``U (m, d, k)``."""
    m, d, _ = U.shape
    X = U @ np.swapaxes(U, 1, 2)
    r = X.reshape(m, -1) @ Af.T - problem.y - noise
    if weights is not None:
        r = r * weights
    return (2.0 / problem.n) * ((r @ Af).reshape(m, d, d) @ U)


def heavy_ball_step(problem, U, v, eta, beta, Af, noise, weights=None):
    """``v <- beta v + g``, ``U <- U - eta v``: ``torch.optim.SGD(momentum=beta)``'s update."""
    g = gradient(problem, U, Af, noise, weights)
    v = beta * v + g
    return U - eta * v, v
