"""What every exact theory shares: the methods and their checks, the look-ahead weights,
moment curves and iteration counts, the deterministic stability region and optimum.

Conventions: "rate" ``rho`` is the spectral radius of the second-moment map, so it is
the *square* of the rate at which ``||e_t||`` contracts (plain GD: ``max |1 - eta
lam|^2``; Polyak's heavy ball: ``beta``). Iterations-to-eps count the steps until the
expected loss (or ``E||e||^2``) is at most ``eps`` times its value at ``x_0``.
Eigenvalues at or below ``1e-12 L`` are null directions: they never move, carry no loss
from ``x_0 = 0`` (``x*`` lies in the row space) and are left out of rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A curve that rises to BLOWUP times its start counts as diverged (inf), as a run of the
# engine does (StopRule.blowup): no count is lost that a run could have, and a rate just
# above 1 is not stepped for the ~10^5 steps a 1e200 overflow guard would take.
BLOWUP = 1e8

METHODS = ("sgd", "hb", "nag")

# Eigenvalues below this fraction of the largest are treated as exact zeros (null space).
NULL_TOL = 1e-12


def gamma_of(method: str, beta: float) -> float:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return beta if method == "nag" else 0.0


def check_params(method: str, eta, beta) -> None:
    eta, beta = np.asarray(eta, float), np.asarray(beta, float)
    if np.any(eta <= 0):
        raise ValueError("eta must be > 0")
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError("beta must lie in [0, 1)")
    if method == "sgd" and np.any(beta != 0):
        raise ValueError("method 'sgd' takes beta = 0 only")
    gamma_of(method, 0.0)


def lookahead_weights(gamma):
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
    gamma_of(method, 0.0)
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
    gamma_of(method, 0.0)
    kappa = L / mu
    if method == "sgd":
        return 2.0 / (L + mu), 0.0, ((kappa - 1) / (kappa + 1)) ** 2
    if method == "hb":
        sk = np.sqrt(kappa)
        beta = ((sk - 1) / (sk + 1)) ** 2
        return 4.0 / (np.sqrt(L) + np.sqrt(mu)) ** 2, float(beta), float(beta)
    q = np.sqrt(3 * kappa + 1)
    return 4.0 / (3 * L + mu), float((q - 2) / (q + 2)), float((1 - 2 / q) ** 2)


def positive_eigvals(eigvals) -> np.ndarray:
    """The eigenvalues above the null tolerance (``NULL_TOL`` times the largest)."""
    lam = np.asarray(eigvals, float).ravel()
    if lam.size == 0 or not np.all(np.isfinite(lam)) or lam.max() <= 0:
        raise ValueError("eigvals must be finite with a positive maximum")
    return lam[lam > NULL_TOL * lam.max()]
