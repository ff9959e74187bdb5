r"""The exact-theory tables the workflow sets beside the sweeps (claims C1-C4 and T1).

Everything here comes from the exact theory of :mod:`~minibatch_momentum.theory` (no
fitting, no sweep result): for a problem and a sampler's noise model (:func:`noise_model`),

- :func:`batch_scaling_table`: per method and batch size, the rate-optimal constant
  ``(eta, beta)``, its exact rate ``rho`` and two exact iteration counts, and the same
  for the momentum rule's ``(eta, beta)``;
- :func:`knees`: the exact breakpoints (``B*_SGD`` for SGD, ``B_sat`` for momentum);
- :func:`rate_map`: ``rho`` over an ``(eta, beta)`` grid at one batch size.

Claim T1's table, the exact curve beside a Monte Carlo of the engine, is
:func:`~minibatch_momentum.simulate.montecarlo.exact_vs_monte_carlo`.

*Which theory.* The batch-scaling tables, knees and rate maps use one of two noise
models (:data:`NOISE_MODELS`, the theory spec's ``noise``; both a
:class:`~minibatch_momentum.theory.model.NoiseModel`):

- ``gaussian`` (the default): the Gaussian-rows closed form with the problem's
  eigenvalues and the sampler's ``c_B`` (its ``m`` and ``replace``): exact when the rows
  are Gaussian, an approximation for a finite matrix (for the ``gaussian`` family, whose
  rows are close to ``N(0, H)``, the two agree to about 1%; see the T1 data, which has
  both);
- ``moments``: the moment closure with this problem's own fourth moments ``Q`` for the
  sampler (:class:`~minibatch_momentum.theory.closure.Closure`): the same diagonal closure with
  the sampler's noise in place of the Gaussian one, exact when the sampler's noise maps
  diagonal second moments to diagonal ones, an approximation otherwise.

``kaczmarz_block`` has no closed form
(:data:`~minibatch_momentum.theory.sampler.BLOCK_PROJECTION_ERROR`).

*Two iteration counts.* ``T_rate = log(1/eps) / log(1/rho)`` is the asymptotic count;
``T_curve`` is the first ``t`` with ``E f(x_t) <= eps f(x_0)`` on the exact expected-loss
curve from ``x_0 = 0``, the count that corresponds to what a sweep measures (each run's
first ``t`` with ``f(x_t) <= eps f(x_0)``; a typical run gets there a little before the
mean does). The figures and claims use ``T_curve``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from minibatch_momentum.problems.system import Problem
from minibatch_momentum.theory.common import (
    deterministic_optimum,
    iterations_from_rate,
    stable_region,
)
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.model import NoiseModel
from minibatch_momentum.theory.rule import rule_for_spectrum
from minibatch_momentum.theory.sampler import closure_model, sampler_table
from minibatch_momentum.theory.tuning import (
    BatchScaling,
    batch_scaling,
    knee_batch,
    optimal_parameters,
)

# The noise model of the batch-scaling tables, knees and rate maps (module docstring).
NOISE_MODELS = ("gaussian", "moments")

# The curve counts step until eps; this many steps is more than any batch size of the
# profiles needs (SGD at B = 1 on the quick problem: ~1e5).
T_MAX = 2_000_000


# The rate maps' defaults (the quick profile's values): method, batch sizes (empty: the
# sweep's sizes nearest B*_SGD, B_sat/4, 4 B_sat), and the (eta L, 1 - beta) log grid.
HEATMAP_DEFAULTS = {
    "method": "hb",
    "batch_sizes": [],
    "eta_min": 1e-3,
    "eta_max": 4.0,
    "num_eta": 36,
    "one_minus_beta_min": 1e-3,
    "one_minus_beta_max": 1.0,
    "num_beta": 30,
}


def initial_weights(problem: Problem, x0: np.ndarray | None = None) -> np.ndarray:
    """Squared initial error in the eigenbasis, ``(V^T (x_0 - x*))^2`` (``x_0 = 0``)."""
    x0 = np.zeros(problem.d) if x0 is None else np.asarray(x0, float)
    return (problem.eigvecs.T @ (x0 - problem.x_star)) ** 2


def sampler_info(problem: Problem, sampler: str) -> tuple[int, bool]:
    """``(m, replace)`` of ``sampler`` on ``problem``: what sets its ``c_B`` and what the
    momentum rule is handed as ``n`` and ``replace``. ``ValueError`` for
    ``kaczmarz_block`` and for a sampler of the other problem kind."""
    table = sampler_table(problem, sampler)
    return table.m, table.replace


def noise_model(problem: Problem, sampler: str, noise: str) -> NoiseModel:
    """The noise model ``noise`` of :data:`NOISE_MODELS` for ``sampler`` on ``problem``:
    the Gaussian closed form with the problem's eigenvalues and the sampler's ``(m,
    replace)``, or the moment closure with its fourth moments."""
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise: must be one of {list(NOISE_MODELS)}, got {noise!r}")
    if noise == "moments":
        return closure_model(problem, sampler)
    m, replace = sampler_info(problem, sampler)
    return Gaussian(problem.eigvals, n=m, replace=replace)


# The columns of the T*(B) table, in order (batch_scaling_table).
TSTAR_COLUMNS = [
    "method",
    "batch_size",
    "eta",
    "beta",
    "rho",
    "T_rate",
    "T_curve",
    "rule_eta",
    "rule_beta",
    "rule_rho",
    "rule_T_rate",
    "rule_T_curve",
]


def batch_scaling_table(
    model: NoiseModel,
    weights: np.ndarray,
    methods,
    batch_sizes,
    eps: float,
    *,
    rule: dict[str, dict] | None = None,
    t_max: int = T_MAX,
    progress=None,
) -> pd.DataFrame:
    """Exact ``T*(B)`` and the rule's exact ``T(B)``.

    Parameters
    ----------
    model : the noise model (:func:`noise_model`); its eigenvalues, ``n`` and ``replace``
        (the sampler's ``m`` and ``replace``) are also what the rule is handed.
    weights : the squared initial error in the eigenbasis (:func:`initial_weights`).
    methods, batch_sizes : what to tabulate.
    eps : target relative loss.
    rule : per method, the rule variant ``{"noise_line": ..., "form": ...}``; a method
        without an entry gets no rule columns (NaN).
    t_max : cap on the curve counts (``inf`` beyond).
    progress : called with a line per (method, batch size) once it is tuned (a long job's
        log), or None.

    Returns
    -------
    One row per (method, batch size): ``eta``, ``beta``, ``rho``, ``T_rate``, ``T_curve``
    at the rate-optimal point, and ``rule_eta``, ``rule_beta``, ``rule_rho``,
    ``rule_T_rate``, ``rule_T_curve`` at the rule's.
    """
    rule = rule or {}
    Bs = np.asarray(batch_sizes, float)
    frames, curves = [], []  # curves: (table, column, method, B, eta, beta) to count
    for method in methods:
        bs = _tuned(model, method, Bs, eps, progress)
        df = pd.DataFrame(
            {
                "method": method,
                "batch_size": Bs.astype(int),
                "eta": bs.eta,
                "beta": bs.beta,
                "rho": bs.rho,
                "T_rate": bs.iterations,
            }
        )
        curves.append((df, "T_curve", method, Bs, bs.eta, bs.beta))
        curves += _rule_columns(model, df, method, Bs, rule.get(method), eps)
        frames.append(df)
    # Every count at once: the steps' fixed cost is paid once, not once per method and
    # point set (each configuration's count is its own).
    method, B, eta, beta = (
        np.concatenate([np.broadcast_to(c[i], Bs.shape) for c in curves]) for i in range(2, 6)
    )
    T = model.iterations_many(weights, method, B, eta, beta, eps, t_max=t_max)
    for (df, column, *_), counts in zip(curves, np.split(T, len(curves)), strict=True):
        df[column] = counts
    return pd.concat(frames, ignore_index=True)[TSTAR_COLUMNS]


def _tuned(model: NoiseModel, method: str, Bs: np.ndarray, eps: float, progress) -> BatchScaling:
    """:func:`~minibatch_momentum.theory.tuning.batch_scaling` one batch size at a time
    (each is tuned on its own), for the progress line."""
    tuned = []
    for B in Bs:
        bs = batch_scaling(model, method, [B], eps=eps)
        tuned.append(bs)
        if progress is not None:
            progress(f"tuned {method} B={B:g}: 1 - rho = {1 - bs.rho[0]:.4g}")
    return BatchScaling(
        *(np.concatenate([getattr(t, f) for t in tuned]) for f in BatchScaling.__dataclass_fields__)
    )


def _rule_columns(model: NoiseModel, df, method: str, Bs, spec: dict | None, eps: float) -> list:
    """The rule's ``rule_eta``, ``rule_beta``, ``rule_rho`` and ``rule_T_rate`` into ``df``
    (NaN without a rule ``spec``, and ``rule_T_curve`` too); returns the curves to count
    for ``rule_T_curve``."""
    if spec is None:
        for col in ("rule_eta", "rule_beta", "rule_rho", "rule_T_rate", "rule_T_curve"):
            df[col] = np.nan
        return []
    pts = np.array(
        [
            rule_for_spectrum(method, B, model.eigvals, n=model.n, replace=model.replace, **spec)
            for B in Bs
        ]
    )
    rho = np.array([model.rate(method, B, e, b) for B, (e, b) in zip(Bs, pts, strict=True)])
    df["rule_eta"], df["rule_beta"], df["rule_rho"] = pts[:, 0], pts[:, 1], rho
    df["rule_T_rate"] = iterations_from_rate(rho, eps)
    return [(df, "rule_T_curve", method, Bs, pts[:, 0], pts[:, 1])]


def grid_table(
    model: NoiseModel,
    weights: np.ndarray,
    grids: dict,
    eps: float,
    *,
    check_every: int = 1,
    censor_factor: float = 2.0,
    t_max: int = T_MAX,
    progress=None,
) -> pd.DataFrame:
    """The exact theory tuned on a sweep's own grid: per method and batch size, the
    smallest exact expected-loss count ``T_curve`` over the grid points ``(eta, beta)``
    inside the method's deterministic stability region, and the point that attains it.

    This is the count a sweep estimates, put through the sweep's own tuning: the same
    points, the same stability restriction, the loss checked every ``check_every`` steps
    (the count is rounded up to the next check) and every point still going at
    ``censor_factor`` times the first one's count stopped, as :class:`~minibatch_momentum.
    engine.StopRule` does. It is what claim T2 compares each measured ``T_m(B)`` with and
    what the exact-theory predictions of C1-C3 are computed from. Only the smallest count
    is kept, so the points stop even earlier, at the first count rounded up to the next
    check: no later count can tie with it (the first point of a tie wins, as in
    ``argmin``) or beat it.

    ``grids`` maps each method to ``(batch_sizes, eta, beta)``, its sizes and its grid's
    points. Every (method, batch size, point) steps together, each (method, batch size)
    with its own censoring clock: its counts are those it would get alone. ``progress``
    gets a line as each (method, batch size) is done, and one per row at the end.
    """
    t0 = time.perf_counter()
    keys, group = _grid_configs(model, grids)

    def done(g, t):
        method, B, eta, _ = keys[g]
        progress(
            f"exact on the grid: {method} B={B} done at step {t} "
            f"({eta.size} points, {time.perf_counter() - t0:.1f}s)"
        )

    T = model.iterations_many(
        weights,
        np.array([keys[g][0] for g in group], dtype=object),
        np.array([keys[g][1] for g in group], float),
        np.concatenate([k[2] for k in keys]),
        np.concatenate([k[3] for k in keys]),
        eps,
        t_max=t_max,
        censor_factor=censor_factor,
        groups=group,
        settle=check_every,
        on_group_done=done if progress else None,
    )
    T = np.ceil(T / check_every) * check_every
    rows = []
    for g, (method, B, eta, beta) in enumerate(keys):
        Tg = T[group == g]
        k = int(np.argmin(Tg))
        rows.append(
            {
                "method": method,
                "batch_size": B,
                "eta": float(eta[k]),
                "beta": float(beta[k]),
                "T_curve": float(Tg[k]),
                "stable_points": int(eta.size),
            }
        )
        if progress:
            progress(f"exact on the grid: {method} B={B} T={Tg[k]:g}")
    if progress:
        progress(
            f"exact on the grid: {len(keys)} (method, B), {group.size} points stepped "
            f"together in {time.perf_counter() - t0:.1f}s"
        )
    return pd.DataFrame(rows)


def _grid_configs(model: NoiseModel, grids: dict) -> tuple[list, np.ndarray]:
    """``grid_table``'s (method, batch size, eta, beta) per group (the stable points of
    each method's grid) and the group label of every configuration, in order."""
    keys, parts = [], []
    for method, (sizes, eta, beta) in grids.items():
        eta, beta = np.asarray(eta, float), np.asarray(beta, float)
        ok = stable_region(method, eta * float(np.max(model.eigvals)), beta)
        eta, beta = eta[ok], beta[ok]
        for B in sizes:
            keys.append((method, int(B), eta, beta))
            parts.append(np.full(eta.size, len(keys) - 1))
    return keys, np.concatenate(parts)


def kappa_scan(
    kappas,
    d: int,
    profile: str = "geometric",
    methods=("sgd", "hb"),
    *,
    stop_factor: float = 1.5,
    progress=None,
) -> pd.DataFrame:
    """Exact ``B T*(B)`` and ``T_det`` over problems that differ only in ``kappa`` (claim C7).

    For each ``kappa``, the Gaussian-rows closed form with the spectrum
    :func:`~minibatch_momentum.problems.system.spectrum` ``(d, kappa, profile)`` (infinite ``n``)
    is tuned at ``B = 1, 2, 4, ...`` until ``B T*(B)`` exceeds ``stop_factor`` times its
    smallest value so far: ``B T*(B)`` grows with ``B`` (a larger batch adds a smaller
    noise map, at most halving ``T*`` per doubling), so its minimum ``E`` lies before that
    point. ``T_det`` is the noise-free optimum's count. Counts are the asymptotic
    ``log(1/eps) / log(1/rho)`` with ``eps = e^-1`` (e-foldings): an expected-loss count
    would need ~10^7 recursion steps per point at ``kappa = 10^6``, and in
    ``B_crit = E / T_det`` the factor ``log(1/eps)`` cancels. One row per (kappa, method,
    B) with ``T``, ``T_det``, ``B_sgd`` and ``B_sat``.
    """
    from minibatch_momentum.problems.system import spectrum

    rows = []
    for kappa in kappas:
        lam = spectrum(d, float(kappa), profile)
        model = Gaussian(lam)
        L, mu = float(lam.max()), float(lam.min())
        b_sgd, b_sat = float(lam.sum() / L), float(lam.sum() / np.sqrt(L * mu))
        for method in methods:
            t0 = time.perf_counter()
            T_det = float(iterations_from_rate(deterministic_optimum(method, L, mu)[2], np.e**-1))
            B, best = 1.0, np.inf
            while True:
                rho = optimal_parameters(model, method, B).rho
                T = float(iterations_from_rate(rho, np.e**-1))
                rows.append(
                    {
                        "kappa": float(kappa),
                        "method": method,
                        "batch_size": int(B),
                        "T": T,
                        "T_det": T_det,
                        "B_sgd": b_sgd,
                        "B_sat": b_sat,
                    }
                )
                best = min(best, B * T)
                if B * T > stop_factor * best or B > 4 * b_sat:
                    break
                B *= 2
            if progress:
                progress(
                    f"kappa scan: kappa={kappa:g} {method} up to B={int(B)} "
                    f"({time.perf_counter() - t0:.1f}s)"
                )
    return pd.DataFrame(rows)


def knees(model: NoiseModel, methods, tstar: pd.DataFrame | None = None) -> dict:
    """Exact breakpoints per method: the batch size where the tuned ``T*`` is twice the
    noise-free optimum's (:func:`~minibatch_momentum.theory.tuning.knee_batch`). The
    rates of ``tstar`` (:func:`batch_scaling_table` of the same model) are not tuned again
    where the search meets its batch sizes (``B = 1``, and ``n``): a tuning is the
    search's whole cost, a third of a second at d = 256."""
    known = {m: {} for m in methods}
    if tstar is not None:
        for m, B, rho in zip(tstar["method"], tstar["batch_size"], tstar["rho"], strict=True):
            known.setdefault(m, {})[float(B)] = float(rho)
    return {m: knee_batch(model, m, known=known[m]) for m in methods}


def heatmap_batches(batch_sizes, b_sgd: float, b_sat: float, targets=None) -> list[int]:
    """The batch sizes of the rate maps: the sweep's sizes nearest (in log) to
    ``B*_SGD``, ``B_sat / 4`` and ``4 B_sat`` (or to ``targets``), without repeats."""
    avail = np.asarray(sorted(batch_sizes), float)
    targets = [b_sgd, b_sat / 4, 4 * b_sat] if targets is None else targets
    picks = [int(avail[np.argmin(np.abs(np.log(avail) - np.log(t)))]) for t in targets]
    return sorted(set(picks))


def rate_map(
    model: NoiseModel, method: str, batch_size: float, eta: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """Exact ``rho`` of ``model`` at each ``(eta[k], beta[k])`` (``>= 1``: diverges)."""
    return np.array(
        [
            model.rate(method, batch_size, e, b)
            for e, b in zip(np.ravel(eta), np.ravel(beta), strict=True)
        ]
    )


def rate_map_table(
    model: NoiseModel,
    method: str,
    batch_sizes,
    *,
    eta_min: float,
    eta_max: float,
    num_eta: int,
    one_minus_beta_min: float,
    one_minus_beta_max: float,
    num_beta: int,
) -> pd.DataFrame:
    """:func:`rate_map` over a log grid of ``eta L`` and ``1 - beta`` at each batch size;
    one row per point with ``batch_size``, ``eta``, ``beta``, ``rho``."""
    L = float(np.max(model.eigvals))
    e = np.geomspace(eta_min, eta_max, num_eta) / L
    omb = np.geomspace(one_minus_beta_min, one_minus_beta_max, num_beta)
    E, OMB = np.meshgrid(e, omb, indexing="ij")
    frames = [
        pd.DataFrame(
            {
                "method": method,
                "batch_size": int(B),
                "eta": E.ravel(),
                "beta": 1.0 - OMB.ravel(),
                "rho": rate_map(model, method, B, E, 1.0 - OMB),
            }
        )
        for B in batch_sizes
    ]
    if not frames:
        columns = {"method": str, "batch_size": int, "eta": float, "beta": float, "rho": float}
        return pd.DataFrame({k: pd.Series(dtype=t) for k, t in columns.items()})
    return pd.concat(frames, ignore_index=True)


def read_theory(out_dir) -> dict:
    """The theory job's tables in ``out_dir``: ``tstar``, ``rate_maps`` and ``info``
    (``theory.json``). (The T1 table, ``exact_vs_mc.parquet``, is read on its own.)"""
    from pathlib import Path

    from minibatch_momentum.io import read_json

    out_dir = Path(out_dir)
    return {
        "tstar": pd.read_parquet(out_dir / "tstar.parquet"),
        "rate_maps": pd.read_parquet(out_dir / "rate_maps.parquet"),
        "info": read_json(out_dir / "theory.json"),
    }
