"""Claim T1's table: the exact expected loss beside a Monte Carlo of the engine.

The exact curve uses the exact operator of the problem's own table for the sampler
(:func:`~minibatch_momentum.theory.sampler.sampler_curve`), exact for this matrix and
sampler; the two noise models of :mod:`~minibatch_momentum.theory.exact` (the moment
closure and the Gaussian closed form) and the noise-free curve stand beside it. The Monte
Carlo draws every (step, run) its own batch
(:func:`~minibatch_momentum.simulate.engine.monte_carlo`), so its mean estimates the same
expectation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from minibatch_momentum.problems.system import Problem
from minibatch_momentum.simulate.engine import monte_carlo
from minibatch_momentum.theory.exact import initial_weights, noise_model
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.sampler import sampler_curve


def exact_vs_monte_carlo(
    problem: Problem,
    method: str,
    batch_size: int,
    eta: float,
    beta: float,
    *,
    runs: int,
    steps: int,
    seed: int = 0,
    sampler: str = "without_replacement",
    confidence: float = 0.99,
) -> pd.DataFrame:
    """The exact ``E f(x_t) / f(x_0)`` beside the mean of ``runs`` independent runs.

    Columns per step ``t = 0 .. steps``: ``exact`` (the exact operator of this problem's
    table for ``sampler``, :func:`~minibatch_momentum.theory.sampler.sampler_curve`), ``closure``
    (the moment closure with this table's fourth moments), ``gaussian`` (the Gaussian-rows
    closed form with the same spectrum and the sampler's ``c_B``), ``noise_free`` (the
    full-gradient curve with the same ``(eta, beta)``, a negative control), ``mc_mean``,
    ``mc_stderr`` and the two-sided ``confidence`` band ``lower``/``upper`` = mean -/+ z
    stderr (:func:`~minibatch_momentum.simulate.engine.monte_carlo` with ``sampler``).
    """
    exact = sampler_curve(problem, sampler, method, batch_size, eta, beta, steps).loss
    w = initial_weights(problem)
    closure, gauss = (
        noise_model(problem, sampler, noise).curve(w, method, batch_size, eta, beta, steps).loss
        for noise in ("moments", "gaussian")
    )
    free = (
        Gaussian(problem.eigvals, n=problem.n, replace=False)
        .curve(w, method, problem.n, eta, beta, steps)
        .loss
    )
    mc = monte_carlo(
        problem, method, batch_size, eta, beta, runs, steps, seed=seed, sampler=sampler
    )
    z = float(norm.ppf(0.5 + confidence / 2))
    se = mc.stderr
    return pd.DataFrame(
        {
            "method": method,
            "sampler": sampler,
            "batch_size": int(batch_size),
            "eta": float(eta),
            "beta": float(beta),
            "runs": int(runs),
            "confidence": float(confidence),
            "step": np.arange(steps + 1),
            "exact": exact / exact[0],
            "closure": closure / closure[0],
            "gaussian": gauss / gauss[0],
            "noise_free": free / free[0],
            "mc_mean": mc.mean,
            "mc_stderr": se,
            "lower": mc.mean - z * se,
            "upper": mc.mean + z * se,
        }
    )
