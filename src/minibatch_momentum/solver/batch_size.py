"""The batch size and ``(eta, beta)`` of a solve: the momentum rule's parameters for the
sampler's noise factor (:func:`rule_parameters`), the model's predicted steps
(:func:`predicted_steps`) and the ``auto`` batch size (:func:`auto_batch`).

Batch size ``auto``
-------------------
The predicted steps ``T(B)`` come from the rule's parameters at ``B`` on the slowest and
the fastest mode (``lambda = mu, L``) of the noise-free recursion:
``T(B) = log(1/eps) / log(1/rho(B))`` with ``rho`` the larger squared modulus of the two
2x2 modes (:func:`predicted_steps`). Below ``B_sat`` the rule's effective step is on the
noise line (``∝ B``), the slow mode is overdamped and ``T ∝ 1 / B``; above it the step is
at the ceiling and ``T`` is the accelerated count ``T_sat``. ``auto`` takes the smallest
power of two (or ``n``) with ``T(B) <= factor * T_sat`` (default factor 2: the end of
perfect scaling). ``mbm advise`` prints this model beside the exact Gaussian-rows theory.
"""

from __future__ import annotations

import math

import numpy as np

from minibatch_momentum.solver.estimates import Estimates
from minibatch_momentum.theory.rule import momentum_rule


def _sampling(sampler: str, n: int) -> tuple[int | None, bool]:
    """``(n, replace)`` that set the rule's noise factor for ``sampler``."""
    return (n, False) if sampler == "uniform" else (None, True)


def rule_parameters(method, batch_size, est: Estimates, sampler: str, n: int):
    """The rule's ``(eta, beta)`` at ``batch_size`` for this sampler's noise factor."""
    n_rule, replace = _sampling(sampler, n)
    return momentum_rule(method, batch_size, est.L, est.mu, est.trace, n=n_rule, replace=replace)


def _mode_rate(lam: float, method: str, eta: float, beta: float) -> float:
    """Squared modulus of the noise-free 2x2 mode ``lambda`` (the engine's recursion)."""
    gamma = beta if method == "nag" else 0.0
    a = 1 + beta - eta * (1 + gamma) * lam
    c = beta - eta * gamma * lam
    return float(np.max(np.abs(np.roots([1.0, -a, c]))) ** 2)


def predicted_steps(
    method: str, batch_size: float, est: Estimates, sampler: str, n: int, tol: float
) -> float:
    """Model steps to a relative residual ``tol`` (loss ``tol^2``) at the rule's
    parameters: the slower of the modes ``mu`` and ``L`` without noise (module docstring,
    "Batch size auto").
    ``batch_size=inf`` gives the saturated count ``T_sat``."""
    if math.isinf(batch_size):
        eta, beta = momentum_rule(method, n, est.L, est.mu, est.trace, n=n, replace=False)
    else:
        eta, beta = rule_parameters(method, batch_size, est, sampler, n)
    rho = max(_mode_rate(est.mu, method, eta, beta), _mode_rate(est.L, method, eta, beta))
    if rho >= 1:
        return math.inf
    return math.log(tol**2) / math.log(rho)


def batch_grid(n: int) -> list[int]:
    """Powers of two below ``n``, and ``n``."""
    return [2**k for k in range(int(math.log2(n)) + 1) if 2**k < n] + [n]


def auto_batch(
    method: str, est: Estimates, sampler: str, n: int, tol: float, factor: float = 2.0
) -> tuple[int, float]:
    """Smallest ``B`` of :func:`batch_grid` with ``T(B) <= factor * T_sat``, and ``T_sat``:
    the fewest predicted steps over the grid and the noise-free limit (for Nesterov the
    rule's noise-free limit can be slower than a finite batch, so the minimum is taken)."""
    grid = batch_grid(n)
    steps = [predicted_steps(method, B, est, sampler, n, tol) for B in grid]
    t_sat = min(min(steps), predicted_steps(method, math.inf, est, sampler, n, tol))
    for B, t in zip(grid, steps, strict=True):
        if t <= factor * t_sat:
            return B, t_sat
    return n, t_sat
