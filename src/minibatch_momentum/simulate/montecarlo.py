"""Claim T1's table: the exact expected loss beside a Monte Carlo of the engine.

The exact curve uses the exact operator of the problem's own table for the sampler
(:func:`~minibatch_momentum.theory.sampler.sampler_curve`), exact for this matrix and
sampler; the two noise models of :mod:`~minibatch_momentum.theory.exact` (the moment
closure and the Gaussian closed form) and the noise-free curve stand beside it. The Monte
Carlo draws every (step, run) its own batch
(:func:`~minibatch_momentum.simulate.engine.monte_carlo`), so its mean estimates the same
expectation; it records the run it made, so the exact curves are computed for exactly
that run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from minibatch_momentum.simulate.engine import MonteCarlo
from minibatch_momentum.theory.exact import initial_weights, noise_model
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.sampler import sampler_curve


def exact_vs_monte_carlo(mc: MonteCarlo, confidence: float = 0.99) -> pd.DataFrame:
    """The exact ``E f(x_t) / f(x_0)`` beside the mean of a Monte Carlo's runs.

    Columns per step ``t = 0 .. steps`` of ``mc``
    (:func:`~minibatch_momentum.simulate.engine.monte_carlo`): ``exact`` (the exact
    operator of the problem's table for the sampler,
    :func:`~minibatch_momentum.theory.sampler.sampler_curve`), ``closure`` (the moment
    closure with this table's fourth moments), ``gaussian`` (the Gaussian-rows closed form
    with the same spectrum and the sampler's ``c_B``), ``noise_free`` (the full-gradient
    curve with the same ``(eta, beta)``, a negative control), ``mc_mean``, ``mc_stderr``
    and the two-sided ``confidence`` band ``lower``/``upper`` = mean -/+ z stderr.
    """
    problem, steps = mc.problem, len(mc.mean) - 1
    run = (mc.method, mc.batch_size, mc.eta, mc.beta, steps)
    exact = sampler_curve(problem, mc.sampler, *run).loss
    w = initial_weights(problem)
    closure, gauss = (
        noise_model(problem, mc.sampler, noise).curve(w, *run).loss
        for noise in ("moments", "gaussian")
    )
    free = (
        Gaussian(problem.eigvals, n=problem.n, replace=False)
        .curve(w, mc.method, problem.n, mc.eta, mc.beta, steps)
        .loss
    )
    z = float(norm.ppf(0.5 + confidence / 2))
    se = mc.stderr
    return pd.DataFrame(
        {
            "method": mc.method,
            "sampler": mc.sampler,
            "batch_size": mc.batch_size,
            "eta": mc.eta,
            "beta": mc.beta,
            "runs": mc.runs,
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
