r"""Seed system S5: the batch threshold for stochastic heavy-ball acceleration against kappa.

Dang, Babanezhad & Vaswani (*(Accelerated) Noise-adaptive Stochastic Heavy-Ball
Momentum*, arXiv 2401.06738) prove that on strongly convex quadratics SHB reaches the
accelerated rate once the mini-batch size exceeds a threshold ``b*`` that depends on the
condition number ``kappa``, and that some ``kappa`` dependence of ``b*`` is necessary
(Kidambi et al. 2018: at ``B = 1`` heavy ball gives nothing over SGD).

Everything here comes from the exact theory (:mod:`~minibatch_momentum.theory`, the
Gaussian-rows closed form with i.i.d. rows, ``c_B = 1/B``): no simulation, no fit to runs.
For each ``kappa`` of a log grid the spectrum is geometric on ``[L / kappa, L]`` with
``L = 1`` and, by default, ``d`` chosen so that the stable rank ``tr H / L`` is the same for
every ``kappa`` (the integer ``d`` with the closest stable rank; ``family: fixed_d`` keeps
``d`` instead, and the stable rank then falls like ``d / ln kappa``). Then, with ``T*(B)``
the exact iterations ``log(1/eps) / log(1/rho*)`` at the rate-optimal constant
``(eta, beta)`` for the batch:

- ``b_speedup``: the smallest ``B`` (continuous; the theory is smooth in ``B``) at which
  tuned heavy ball needs ``speedup`` (2) times fewer iterations than tuned SGD,
  ``T*_SGD(B) / T*_HB(B) = 2``: located on a half-octave grid of ``B`` (first crossing),
  then refined by Brent's method in ``log B``. ``nan`` if the ratio stays below 2 up to
  ``b_max``.
- ``b_accel``: the smallest ``B`` from which tuned heavy ball runs within ``accel_factor``
  (2) of its noise-free accelerated count (:func:`~minibatch_momentum.theory.tuning.knee_batch`);
  this is Dang et al.'s ``b*`` ("SHB attains the accelerated rate"), and the closed form
  predicts it at ``B_sat = tr H / sqrt(L mu) = (tr H / L) sqrt(kappa)``, slope 1/2 in
  ``kappa`` at fixed stable rank.

What the two predict. The project's theory (docs/design.md section 3) puts the start of
momentum's advantage at SGD's critical batch ``B*_SGD = tr H / L``: below it only
``eta / (1 - beta)`` matters, above it SGD stops improving while heavy ball keeps scaling,
so ``T_SGD / T_HB ~ 1 + B / B*_SGD`` and ``b_speedup ~ B*_SGD``, independent of ``kappa`` at
fixed stable rank. The growth with ``kappa`` that Dang et al. prove is that of ``b_accel``.
:func:`claim_s5` checks both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.optimize
from scipy import stats

from minibatch_momentum.checks import Rule, finite, integer, number, one_of, require
from minibatch_momentum.report.records import check_record, claim_record
from minibatch_momentum.studies.base import StudyConfig
from minibatch_momentum.theory.common import deterministic_optimum, iterations_from_rate
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.tuning import knee_batch, optimal_parameters

__all__ = [
    "ThresholdConfig",
    "threshold_spectrum",
    "speedup_ratio",
    "run_threshold",
    "analyze_threshold",
    "claim_s5",
    "S5_FIGURE",
    "S5_SOURCE",
]

S5_FIGURE = "figures/seeds/batch_threshold.pdf"
S5_SOURCE = "results/seeds/threshold.parquet"
FAMILIES = ("fixed_rank", "fixed_d")

S5_STATEMENT = (
    "Stochastic heavy ball accelerates only above a batch-size threshold b* that grows with "
    "the condition number kappa (Dang, Babanezhad & Vaswani, arXiv 2401.06738); computed "
    "from the exact mean-square theory over two decades of kappa at fixed stable rank."
)


@dataclass(frozen=True)
class ThresholdConfig(StudyConfig):
    """Everything that determines the S5 numbers.

    Attributes:
        kappa_min, kappa_max, num_kappa: the log grid of condition numbers.
        family: ``"fixed_rank"`` (``d`` per ``kappa`` so that ``tr H / L`` is closest to
            ``stable_rank``) or ``"fixed_d"`` (``d`` modes for every ``kappa``).
        stable_rank: target ``tr H / L`` for ``fixed_rank``.
        d: the dimension for ``fixed_d``.
        speedup: the factor ``T*_SGD / T*_HB`` that defines ``b_speedup``.
        accel_factor: ``b_accel`` is where ``T*_HB`` is this factor above its noise-free
            optimum.
        eps: target for the iteration counts reported (the ratios do not depend on it).
        b_max: largest batch size searched.
        points_per_octave: density of the ``B`` grid of the curves (and of the search).
        slope_tolerance: the band around 0 for ``b_speedup``'s slope (the project's
            prediction: it sits at ``B*_SGD``, which the family holds fixed).
    """

    kappa_min: float = 1e2
    kappa_max: float = 1e4
    num_kappa: int = 5
    family: str = "fixed_rank"
    stable_rank: float = 8.0
    d: int = 64
    speedup: float = 2.0
    accel_factor: float = 2.0
    eps: float = 1e-4
    b_max: float = 2.0**20
    points_per_octave: int = 2
    slope_tolerance: float = 0.15

    NAME = "threshold"
    RULES = {
        "kappa_min": number("> 1"),
        "num_kappa": Rule(
            integer(3).ok, "an integer >= 3 (a slope needs three points for a standard error)"
        ),
        "family": one_of(FAMILIES),
        "stable_rank": number("> 1"),
        "d": integer(2),
        "speedup": number("> 1"),
        "accel_factor": number("> 1"),
        "eps": number("in (0, 1)"),
        "b_max": number(">= 4"),
        "points_per_octave": integer(1),
        "slope_tolerance": number("> 0"),
    }
    # quick: 5 kappas over two decades (~20 s); paper: 9 over four, 4 points per octave.
    PRESETS = {
        "quick": {},
        "paper": dict(kappa_min=1e2, kappa_max=1e6, num_kappa=9, points_per_octave=4),
    }

    def check(self) -> None:
        require(
            finite(self.kappa_max) and self.kappa_max > self.kappa_min,
            "kappa_max",
            f"> kappa_min = {self.kappa_min!r}",
            self.kappa_max,
        )

    @property
    def kappas(self) -> np.ndarray:
        return np.geomspace(self.kappa_min, self.kappa_max, self.num_kappa)

    @property
    def batch_grid(self) -> np.ndarray:
        octaves = math.log2(self.b_max)
        k = int(math.floor(octaves * self.points_per_octave + 1e-9))
        return 2.0 ** (np.arange(k + 1) / self.points_per_octave)


def threshold_spectrum(kappa: float, config: ThresholdConfig) -> np.ndarray:
    """The eigenvalues for one ``kappa``: geometric on ``[1 / kappa, 1]``, ``d`` modes
    (``fixed_d``) or the ``d`` whose stable rank is closest to ``stable_rank``."""
    from minibatch_momentum.problems.system import spectrum

    if config.family == "fixed_d":
        return spectrum(config.d, kappa)
    # tr H / L grows with d (each added mode adds a positive eigenvalue <= L): bracket it.
    best, d = None, 2
    while True:
        lam = spectrum(d, kappa)
        r = float(lam.sum() / lam.max())
        if best is None or abs(r - config.stable_rank) < best[1]:
            best = (lam, abs(r - config.stable_rank))
        if r > config.stable_rank + 1:
            return best[0]
        d += 1


def speedup_ratio(eigvals: np.ndarray, batch_size: float) -> tuple[float, float]:
    """``(rho*_SGD, rho*_HB)``: the exact rate-optimal rates at ``B`` (i.i.d. rows). The
    speedup is ``T*_SGD / T*_HB = log(rho*_HB) / log(rho*_SGD)``."""
    model = Gaussian(eigvals)
    s = optimal_parameters(model, "sgd", batch_size).rho
    h = optimal_parameters(model, "hb", batch_size).rho
    return float(s), float(h)


def _first_crossing(log_ratio: Callable[[float], float], grid: np.ndarray, values: np.ndarray):
    """Smallest ``B`` with ``log_ratio(B) >= 0``: the grid's first crossing, refined by
    Brent's method in ``log B`` between the two grid points around it."""
    above = np.flatnonzero(values >= 0)
    if above.size == 0:
        return math.nan
    i = int(above[0])
    if i == 0:
        return float(grid[0])
    lo, hi = math.log(grid[i - 1]), math.log(grid[i])
    root = scipy.optimize.brentq(lambda x: log_ratio(math.exp(x)), lo, hi, xtol=1e-6)
    return float(math.exp(root))


def run_threshold(
    config: ThresholdConfig, progress: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """One row per ``kappa``: the spectrum's numbers, ``b_speedup``, ``b_accel`` and the
    curves behind them.

    Columns: ``kappa, d, stable_rank, L, mu, trace, B_sgd`` (``tr H / L``), ``B_sat``
    (``tr H / sqrt(L mu)``), ``b_speedup``, ``b_accel``, ``T_sgd_at_b_speedup``,
    ``T_hb_at_b_speedup``, ``T_hb_deterministic`` (noise-free optimum), ``seconds`` and the
    list columns ``curve_B``, ``curve_T_sgd``, ``curve_T_hb`` (exact ``T*`` on the ``B``
    grid up to the first grid point past both thresholds, at least 4 B_sat).
    """
    rows = []
    grid = config.batch_grid
    log_eps = math.log(config.eps)
    for kappa in config.kappas:
        t0 = time.perf_counter()
        lam = threshold_spectrum(float(kappa), config)
        L, mu, trace = float(lam.max()), float(lam.min()), float(lam.sum())
        b_sat = trace / math.sqrt(L * mu)
        cache: dict[float, tuple[float, float]] = {}

        def rates(B, lam=lam, cache=cache):
            if B not in cache:
                cache[B] = speedup_ratio(lam, B)
            return cache[B]

        def log_ratio(B):
            s, h = rates(B)
            return math.log(math.log(h) / math.log(s)) - math.log(config.speedup)

        # the grid up to 4 B_sat (the curves), and further only until the ratio crosses
        Bs, vals = [], []
        for B in grid:
            Bs.append(float(B))
            vals.append(log_ratio(float(B)))
            if B >= 4 * b_sat and vals[-1] >= 0:
                break
        b_speed = _first_crossing(log_ratio, np.array(Bs), np.array(vals))
        b_acc = knee_batch(Gaussian(lam, replace=True), "hb", factor=config.accel_factor)
        curve = np.array([rates(B) for B in Bs])
        T_s = iterations_from_rate(curve[:, 0], config.eps)
        T_h = iterations_from_rate(curve[:, 1], config.eps)
        if np.isfinite(b_speed):
            s, h = rates(b_speed)
            at = (log_eps / math.log(s), log_eps / math.log(h))
        else:
            at = (math.nan, math.nan)
        rho_det = deterministic_optimum("hb", L, mu)[2]
        rows.append(
            {
                "kappa": float(kappa),
                "d": int(lam.size),
                "stable_rank": trace / L,
                "L": L,
                "mu": mu,
                "trace": trace,
                "B_sgd": trace / L,
                "B_sat": b_sat,
                "b_speedup": b_speed,
                "b_accel": float(b_acc),
                "T_sgd_at_b_speedup": at[0],
                "T_hb_at_b_speedup": at[1],
                "T_hb_deterministic": float(log_eps / math.log(rho_det)),
                "seconds": time.perf_counter() - t0,
                "curve_B": np.asarray(Bs, float),
                "curve_T_sgd": np.asarray(T_s, float),
                "curve_T_hb": np.asarray(T_h, float),
            }
        )
        if progress:
            progress(
                f"threshold kappa={kappa:.4g} d={lam.size} tr H/L={trace / L:.3g}: "
                f"b_speedup={b_speed:.4g} ({b_speed / (trace / L):.3g} B*_SGD), "
                f"b_accel={b_acc:.4g} ({b_acc / b_sat:.3g} B_sat) "
                f"in {rows[-1]['seconds']:.1f}s"
            )
    return pd.DataFrame(rows)


def _slope(x, y, level: float = 0.95) -> dict:
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = {"slope": math.nan, "stderr": math.nan, "ci": [math.nan, math.nan], "n": int(x.size)}
    if x.size < 2 or np.ptp(x) == 0:
        return out
    r = stats.linregress(x, y)
    out["slope"] = float(r.slope)
    if x.size >= 3:
        half = float(stats.t.ppf(0.5 + level / 2, x.size - 2)) * float(r.stderr)
        out.update(stderr=float(r.stderr), ci=[r.slope - half, r.slope + half])
    return out


def analyze_threshold(df: pd.DataFrame, config: ThresholdConfig) -> dict:
    """Log-log slopes of both thresholds against ``kappa`` (least squares, 95% t-interval),
    and the thresholds in units of ``B*_SGD`` and ``B_sat``. JSON-serializable."""
    return {
        "kappa": df["kappa"].tolist(),
        "d": df["d"].astype(int).tolist(),
        "stable_rank": df["stable_rank"].tolist(),
        "B_sgd": df["B_sgd"].tolist(),
        "B_sat": df["B_sat"].tolist(),
        "b_speedup": df["b_speedup"].tolist(),
        "b_accel": df["b_accel"].tolist(),
        "b_speedup_over_B_sgd": (df["b_speedup"] / df["B_sgd"]).tolist(),
        "b_accel_over_B_sat": (df["b_accel"] / df["B_sat"]).tolist(),
        "speedup_slope": _slope(df["kappa"], df["b_speedup"]),
        "accel_slope": _slope(df["kappa"], df["b_accel"]),
        "B_sat_slope": _slope(df["kappa"], df["B_sat"]),
        "config": config.to_dict(),
    }


def claim_s5(analysis: dict, source: str = S5_SOURCE, figure: str = S5_FIGURE) -> dict:
    """S5 with three checks (all must pass):

    1. a threshold exists: ``T*_SGD / T*_HB`` reaches ``speedup`` below ``b_max`` for every
       ``kappa``;
    2. Dang et al.'s threshold grows with ``kappa``: the slope of ``log b_accel`` against
       ``log kappa`` is > 0 (closed form: 1/2, from ``B_sat = (tr H / L) sqrt(kappa)``);
    3. where momentum starts to pay: the slope of ``log b_speedup`` against ``log kappa``
       is 0 within ``slope_tolerance`` (docs/design.md section 3: the advantage starts at
       ``B*_SGD = tr H / L``, which the family holds fixed).
    """
    cfg = analysis.get("config", {})
    k = np.asarray(analysis["kappa"], float)
    bs = np.asarray(analysis["b_speedup"], float)
    tol = float(cfg.get("slope_tolerance", 0.15))
    factor = cfg.get("speedup", 2.0)
    acc = analysis["accel_slope"]
    spd = analysis["speedup_slope"]
    found = int(np.isfinite(bs).sum())
    exists = check_record(
        f"kappa values (of {k.size}) where tuned heavy ball beats tuned SGD by "
        f"{factor:g}x at some B <= {cfg.get('b_max', math.nan):.3g}",
        found,
        int(k.size),
        "all",
        bool(found == k.size),
        kappa=analysis["kappa"],
        b_speedup=analysis["b_speedup"],
        b_speedup_over_B_sgd=analysis["b_speedup_over_B_sgd"],
        d=analysis["d"],
        stable_rank=analysis["stable_rank"],
    )
    grows = check_record(
        "slope of log b_accel vs log kappa (b_accel: smallest B where tuned heavy ball is "
        f"within {cfg.get('accel_factor', 2.0):g}x of its noise-free accelerated count)",
        acc["slope"],
        0.5,
        "> 0 (grows with kappa)",
        None if not np.isfinite(acc["slope"]) else bool(acc["slope"] > 0),
        stderr=acc["stderr"],
        ci=acc["ci"],
        b_accel=analysis["b_accel"],
        b_accel_over_B_sat=analysis["b_accel_over_B_sat"],
        B_sat=analysis["B_sat"],
        predicted_is="B_sat = (tr H / L) sqrt(kappa): slope 1/2 at fixed stable rank",
    )
    flat = check_record(
        f"slope of log b_speedup vs log kappa (b_speedup: smallest B where T*_SGD / T*_HB "
        f"= {factor:g})",
        spd["slope"],
        0.0,
        f"+/- {tol:g}",
        None if not np.isfinite(spd["slope"]) else bool(abs(spd["slope"]) <= tol),
        stderr=spd["stderr"],
        ci=spd["ci"],
        b_speedup=analysis["b_speedup"],
        B_sgd=analysis["B_sgd"],
        predicted_is="b_speedup ~ B*_SGD = tr H / L (docs/design.md section 3), held fixed by the "
        "fixed-stable-rank family: no growth with kappa",
    )
    checks = [exists, grows, flat]
    problem = f"geometric spectra, {cfg.get('family', 'fixed_rank')}"
    sampler = "with_replacement (exact theory)"
    return claim_record(
        "S5", S5_STATEMENT, "hb", problem, sampler, checks, figure, source, undecided_first=True
    )
