"""Tuning over any :class:`~minibatch_momentum.theory.model.NoiseModel`: the ``(eta, beta)``
of smallest rate (:func:`optimal_parameters`), the tuned ``T*(B)``
(:func:`batch_scaling`) and its breakpoint (:func:`knee_batch`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from minibatch_momentum.theory.common import deterministic_optimum, iterations_from_rate
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.model import NoiseModel


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
    model: NoiseModel,
    method: str,
    batch_size: float,
    *,
    start: tuple[float, float] | None = None,
) -> Tuned:
    """Constant ``(eta, beta)`` minimizing the exact rate of ``model`` at batch size ``B``.

    Parameters
    ----------
    model : the noise model (its spectrum and ``c_B``).
    method : ``"sgd"`` (``eta`` only), ``"hb"`` or ``"nag"``.
    batch_size : ``B``. Without noise (``B = n`` without replacement) the closed-form
        deterministic optimum is returned.
    start : ``(eta, beta)`` to start the search from (default: the rule-of-thumb
        ``eta / (1 - beta) = min(B / scale, deterministic)``, deterministic damping, with
        the model's noise scale, ``tr H`` for Gaussian rows).

    Returns
    -------
    Tuned(eta, beta, rho).

    Notes
    -----
    With noise, ``rho`` is the root of the secular (or Perron) equation above every pole,
    hence smooth in ``(eta, beta)`` (Polyak-type kinks only appear without noise), so a
    Nelder-Mead search in ``(log eta / (1 - beta), logit(1 - beta))``, restarted once from
    its result, converges in ~100-300 rate evaluations. The tests check it against a grid.
    """
    lam = model.positive
    c = model.noise_factor(batch_size)
    return tune(
        model.gap(method, c),
        method,
        batch_size,
        lam.max(),
        lam.min(),
        model.noise_scale,
        c,
        start,
    )


def tune(gap, method, batch_size, L, mu, scale, c, start) -> Tuned:
    """The tuner of :func:`optimal_parameters` for any rate (the exact sampler rate's too):
    ``gap(eta, beta) = 1 - rho``.

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
    model: NoiseModel, method: str, batch_sizes, *, eps: float = 1e-6
) -> BatchScaling:
    """Exact ``T*(B)`` of ``model`` over ``batch_sizes`` (see :class:`BatchScaling`)."""
    Bs = np.asarray(batch_sizes, float)
    return _scaling(Bs, [optimal_parameters(model, method, B) for B in Bs], eps)


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
    model: NoiseModel,
    method: str,
    *,
    factor: float = 2.0,
    rtol: float = 1e-3,
    known: dict[float, float] | None = None,
) -> float:
    """The exact breakpoint: the batch size where the tuned rate is ``factor`` times slower
    (in iterations) than the noise-free optimum.

    For ``T*(B) = a / B + T_det`` this is the corner ``a / T_det`` where the two
    asymptotes cross (``factor = 2``): for ``"sgd"`` the critical batch ``B*_SGD``, for
    ``"hb"`` and ``"nag"`` the saturation batch ``B_sat``. ``T*(B)`` decreases in ``B``
    (a larger batch adds a smaller positive map), so the root is unique; it is found by
    Brent's method in ``log B``, ``rtol`` relative in ``B``, from a first guess set by the
    model's noise scale. Returns 1.0 if even ``B = 1`` is within the factor, the largest
    batch (``n`` without replacement) if even that is not. ``known`` maps batch sizes to
    tuned rates already computed (e.g. the ``T*(B)`` table's; the search starts at
    ``B = 1`` and may end at ``n``): each is what :func:`optimal_parameters` returns there,
    so it is taken instead of tuning again.
    """
    lam = model.positive
    L, mu, scale, largest = lam.max(), lam.min(), model.noise_scale, model.largest_batch
    rho_det = deterministic_optimum(method, L, mu)[2]
    target = np.log(factor) - np.log(-np.log(rho_det))  # log(factor * T_det) up to log(1/eps)
    top = np.log(largest)

    @functools.cache
    def excess(logB):
        # At the top, the batch itself: exp(log n) rounds below n, to a noise of 1e-18
        # that moves a Polyak-tuned rate by its cube root, and tuning that kink costs
        # thousands of rate evaluations for a point whose answer is noise-free.
        B = largest if logB >= top else np.exp(logB)
        rho = known[B] if known and B in known else optimal_parameters(model, method, B).rho
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
        res = batch_scaling(Gaussian(lam), method, batch_sizes)
        out[method] = (res, time.perf_counter() - t0)
    return out
