"""The quadratic case of S7 in closed form (steps 1-4 of the package docstring,
:mod:`minibatch_momentum.studies.search_noise`)."""

from __future__ import annotations

import numpy as np

from minibatch_momentum.studies.search_noise.config import METHODS


def batch_noise_factor(n: int, B) -> np.ndarray:
    """``c_B = (n - B) / (B (n - 1))``: ``E||xi||^2 / sigma^2`` for ``B`` distinct rows of
    ``n`` drawn uniformly (step 1 of the module docstring)."""
    B = np.asarray(B, dtype=float)
    return (n - B) / (B * (n - 1))


def row_gradient_variance(A: np.ndarray, e: np.ndarray) -> float:
    """``sigma^2 = (1/n) sum_i ||a_i a_i^T e - H e||^2`` for the rows ``A`` and the error
    ``e = x - x*`` (the spread of the per-row gradients around the full gradient)."""
    r = A @ e
    grad = A.T @ r / A.shape[0]
    return float(np.mean(np.einsum("ij,ij->i", A, A) * r**2) - grad @ grad)


def expected_noise_sq(method: str, beta: float, c_B: float, sigma2: float, prev_dir, grad) -> float:
    """``E[||d_t - grad f(x_t)||^2 | x_t, d_{t-1}]`` (step 2 of the module docstring).

    ``prev_dir`` is ``d_{t-1}`` (``None`` at the first step), ``grad`` the full gradient
    at ``x_t``, ``c_B sigma2`` the mini-batch gradient's mean-square error there.
    """
    if method not in METHODS:
        raise ValueError(f"method: must be one of {list(METHODS)}, got {method!r}")
    if method == "sgd" or prev_dir is None:
        return float(c_B * sigma2)
    if method == "shb":
        return float(beta**2 * (prev_dir @ prev_dir) + c_B * sigma2)
    gap = prev_dir - grad
    return float(beta**2 * (gap @ gap) + (1.0 - beta) ** 2 * c_B * sigma2)


def predicted_slope(n: int, batch_sizes) -> float:
    """Least-squares slope of ``log sqrt(c_B)`` against ``log B`` over ``batch_sizes``:
    the level's ``B`` law at a fixed state, ``-1/2`` for ``B << n`` (step 3)."""
    B = np.asarray(sorted(batch_sizes), dtype=float)
    return float(np.polyfit(np.log(B), 0.5 * np.log(batch_noise_factor(n, B)), 1)[0])


def frozen_noise_ratio(method: str, beta) -> np.ndarray:
    """Stochastic part of the level relative to SGD's at equal effective step, frozen
    iterate (step 4): ``sqrt((1 - beta)/(1 + beta))`` (NSHB), ``1/sqrt(1 - beta^2)``
    (SHB, without its deterministic gap), 1 (SGD)."""
    beta = np.asarray(beta, dtype=float)
    if method == "nshb":
        return np.sqrt((1 - beta) / (1 + beta))
    if method == "shb":
        return 1.0 / np.sqrt(1 - beta**2)
    return np.ones_like(beta)
