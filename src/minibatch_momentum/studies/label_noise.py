r"""Seed system S2: momentum scaling ``1 - beta* ~ eta^(2/3)`` for label-noise SGD.

Cowsik, Can & Glorioso (*Flatter, faster: scaling momentum for optimal speedup of SGD*,
arXiv 2210.16400) study heavy-ball SGD with label noise on an over-parametrized model
whose global minima form a manifold. Near the manifold the label noise drives a slow
drift along it towards flatter minima (smaller Hessian trace). Two timescales compete:

- the drift time, which shrinks with momentum: with ``gamma = 1 - beta`` the effective
  step along the manifold is ``eta / gamma`` and the noise temperature ``eta / gamma``,
  so the drift takes ``~ gamma^2 / eta^2`` steps;
- the momentum time ``~ 1 / gamma``, during which velocity and transverse fluctuations
  build up; with more momentum than that the drift cannot go faster.

They meet at ``gamma* ~ eta^(2/3)``, the paper's scaling rule.

The model here is symmetric matrix sensing with a full-width factor:
``L(U) = (1/2n) sum_i (<A_i, U U^T> - y_i)^2`` with ``U`` in ``R^{d x k}``, symmetric
Gaussian ``A_i``, labels ``y_i = <A_i, U* U*^T>`` from a low-rank teacher, and fewer
measurements than the ``d(d+1)/2`` entries of ``U U^T``, so the global minima
``{U : <A_i, U U^T> = y_i}`` form a manifold. Each step draws fresh label noise
``y_i + sigma xi_i`` (full batch by default) and takes a heavy-ball step in
``torch.optim.SGD``'s form: ``v <- beta v + g``, ``U <- U - eta v`` (``v_0 = 0``).
Runs start at an interpolating point ``U_0`` (a random matrix moved onto the manifold by
Gauss-Newton steps) and stop when the *flatness* of the nearest global minimum, the
Hessian trace ``tr H(Phi(U_t)) = (4/n) sum_i ||A_i U||_F^2`` at the Gauss-Newton
projection ``Phi(U_t)`` onto the manifold, falls below a target between the start's
and the teacher's values.

What is measured. For each ``eta``, the steps-to-target ``T`` against ``gamma`` show a
plateau at large momentum (small ``gamma``: the fastest the drift can go) and a rise
``T ~ gamma^s`` (``s ~ 2``) at small momentum. In this model the plateau is flat, not a
dip: momentum beyond the crossover neither helps nor hurts, so the arg-min over the grid
is a random point of the plateau and carries no scaling. ``beta*(eta)`` is therefore
defined as the point where the two timescales meet, as in the paper's derivation: the
``gamma_c`` of the fit ``log T = log T0 + log(1 + (gamma/gamma_c)^s)`` to all seeds'
times (where the drift time equals the plateau time; the least momentum at which
training is within a factor 2 of the fastest). The exponent is the least-squares slope
of ``log gamma_c`` against ``log eta`` with a t-interval. The arg-min is reported too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import least_squares

from minibatch_momentum.checks import distinct_integers, finite, integer, is_int, number, require
from minibatch_momentum.report.records import claim_record
from minibatch_momentum.studies.base import StudyConfig
from minibatch_momentum.studies.matrix_sensing import (
    MatrixSensingProblem,
    heavy_ball_step,
    hessian_trace,
    loss,
    make_problem,
    project_to_manifold,
)

__all__ = [
    "LabelNoiseConfig",
    "run_label_noise",
    "fit_crossover",
    "fit_exponent",
    "analyze_label_noise",
    "claim_s2",
    "PREDICTED_EXPONENT",
    "S2_FIGURE",
    "S2_SOURCE",
]

PREDICTED_EXPONENT = 2.0 / 3.0
S2_FIGURE = "figures/seeds/label_noise_momentum.pdf"
S2_SOURCE = "results/seeds/label_noise.parquet"
STATUSES = ("reached", "censored", "t_max", "diverged")

S2_STATEMENT = (
    "For SGD with label noise and heavy-ball momentum on an over-parametrized model with a "
    "manifold of global minima, the momentum that reaches a flat minimum fastest scales as "
    "1 - beta* ~ eta^(2/3) (Cowsik, Can & Glorioso, arXiv 2210.16400)."
)
BETA_STAR_DEFINITION = (
    "1 - beta*(eta) = gamma_c of the fit log T = log T0 + log(1 + (gamma/gamma_c)^s) to "
    "steps-to-target T against gamma = 1 - beta (all seeds): where the drift time equals "
    "the plateau time, i.e. the least momentum within a factor 2 of the fastest"
)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class LabelNoiseConfig(StudyConfig):
    """Everything that determines the S2 numbers.

    Attributes:
        d: matrix size; ``U U^T`` is ``d x d``.
        n: measurements; must be below ``d (d + 1) / 2`` so the minima form a manifold.
        teacher_rank: rank of the teacher ``U* U*^T`` (``||U*||_F^2 = teacher_rank``).
        width: columns ``k`` of ``U`` (``None``: ``d``, the fully over-parametrized factor).
        init_scale: scale of the random matrix projected onto the manifold for the start
            (larger: a sharper start, farther from the flat minima).
        problem_seed: the measurements, the teacher and the start.
        label_noise: ``sigma``, the standard deviation of the fresh label noise.
        batch_size: measurements per step (``None``: all ``n``, gradient noise from the
            labels only).
        eta_min, eta_max, num_eta: the log-spaced learning rates.
        one_minus_beta_min, one_minus_beta_max, num_beta: the log-spaced ``1 - beta``
            grid, the same for every ``eta``.
        seeds: one label-noise stream per seed, shared by every (eta, beta) (common random
            numbers).
        target_fraction: the flatness target is ``tr_teacher + target_fraction *
            (tr_start - tr_teacher)`` (Hessian traces at the projection).
        check_every: steps between flatness checks (the resolution of ``T``).
        censor_factor: at each ``eta``, runs still going at ``censor_factor`` x the first
            time any run reached the target stop (recorded as censored).
        t_max: hard limit on steps.
        project_iters: Gauss-Newton iterations of the projection at each check.
        exponent_tolerance: the band around 2/3 for the claim.
        ci_level: level of the exponent's confidence interval.
    """

    d: int = 6
    n: int = 8
    teacher_rank: int = 1
    width: int | None = None
    init_scale: float = 1.0
    problem_seed: int = 1
    label_noise: float = 0.05
    batch_size: int | None = None
    eta_min: float = 3e-4
    eta_max: float = 1e-2
    num_eta: int = 6
    one_minus_beta_min: float = 1e-4
    one_minus_beta_max: float = 0.1
    num_beta: int = 21
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    target_fraction: float = 0.5
    check_every: int = 5
    censor_factor: float = 10.0
    t_max: int = 200_000
    project_iters: int = 2
    exponent_tolerance: float = 0.1
    ci_level: float = 0.95

    NAME = "label_noise"
    RULES = {
        "d": integer(2),
        "init_scale": number("> 0"),
        "problem_seed": integer(0),
        "label_noise": number("> 0"),
        "eta_min": number("> 0"),
        "num_eta": integer(1),
        "one_minus_beta_min": number("in (0, 1]"),
        "num_beta": integer(1),
        "seeds": distinct_integers(0),
        "target_fraction": number("in (0, 1)"),
        "check_every": integer(1),
        "censor_factor": number("> 1"),
        "t_max": integer(1),
        "project_iters": integer(1),
        "exponent_tolerance": number("> 0"),
        "ci_level": number("in (0, 1)"),
    }
    # quick: the default profile (~10 s of one core); paper: a larger problem, two decades
    # of eta, a finer beta grid, 16 seeds.
    PRESETS = {
        "quick": {},
        "paper": dict(
            d=8,
            n=14,
            eta_min=1e-4,
            eta_max=1e-2,
            num_eta=9,
            one_minus_beta_min=3e-5,
            one_minus_beta_max=0.1,
            num_beta=36,
            seeds=tuple(range(16)),
            check_every=2,
        ),
    }

    def check(self) -> None:
        require(
            is_int(self.n) and 1 <= self.n < self.d * (self.d + 1) // 2,
            "n",
            f"an integer in [1, d(d+1)/2) = [1, {self.d * (self.d + 1) // 2}) so the global "
            "minima form a manifold",
            self.n,
        )
        require(
            is_int(self.teacher_rank) and 1 <= self.teacher_rank <= self.d,
            "teacher_rank",
            f"an integer in [1, d = {self.d}]",
            self.teacher_rank,
        )
        require(
            self.width is None
            or (is_int(self.width) and self.teacher_rank <= self.width <= self.d),
            "width",
            f"null or an integer in [teacher_rank, d] = [{self.teacher_rank}, {self.d}]",
            self.width,
        )
        require(
            self.batch_size is None or (is_int(self.batch_size) and 1 <= self.batch_size <= self.n),
            "batch_size",
            f"null or an integer in [1, n = {self.n}]",
            self.batch_size,
        )
        require(
            finite(self.eta_max) and self.eta_max >= self.eta_min,
            "eta_max",
            f">= eta_min = {self.eta_min!r}",
            self.eta_max,
        )
        require(
            finite(self.one_minus_beta_max)
            and self.one_minus_beta_min <= self.one_minus_beta_max <= 1,
            "one_minus_beta_max",
            f"in [one_minus_beta_min = {self.one_minus_beta_min!r}, 1]",
            self.one_minus_beta_max,
        )

    @property
    def etas(self) -> np.ndarray:
        return np.geomspace(self.eta_min, self.eta_max, self.num_eta)

    @property
    def one_minus_betas(self) -> np.ndarray:
        return np.geomspace(self.one_minus_beta_min, self.one_minus_beta_max, self.num_beta)

    @property
    def k(self) -> int:
        return self.d if self.width is None else int(self.width)


# --------------------------------------------------------------------------- dynamics


def _labels_noise_and_batch(rngs, n: int, B: int, sigma: float):
    """One step's label noise ``(S, n)`` and mini-batch weights ``(S, n)`` (``n / B`` on the
    ``B`` rows drawn, None for the full batch), one generator per seed."""
    noise = np.stack([sigma * r.standard_normal(n) for r in rngs])
    if not B < n:
        return noise, None
    w = np.zeros((len(rngs), n))
    for j, r in enumerate(rngs):
        w[j, r.choice(n, size=B, replace=False)] = n / B
    return noise, w


def _projected_traces(problem: MatrixSensingProblem, U: np.ndarray, blowup: float, iters: int):
    """Which runs ``U (R, d, k)`` diverged (non-finite, above ``blowup``, or a non-finite
    trace), the Hessian trace at each projection onto the manifold (inf where diverged)
    and the projections (NaN where diverged)."""
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(U).all(axis=(1, 2)) | (np.abs(U).max(axis=(1, 2)) > blowup)
    tr = np.full(len(U), np.inf)
    Up = np.full_like(U, np.nan)
    if (~bad).any():
        with np.errstate(all="ignore"):
            Up[~bad] = project_to_manifold(problem, U[~bad], iters)
            tr[~bad] = hessian_trace(problem, Up[~bad])
        bad |= ~np.isfinite(tr)
    return bad, tr, Up


def _run_eta(problem, config, eta, target, gammas):
    """All (seed, gamma) runs at one ``eta``, vectorized; returns per-run arrays."""
    seeds = config.seeds
    S, G = len(seeds), len(gammas)
    n = problem.n
    Af = problem.A.reshape(n, -1)
    R = S * G
    seed_of = np.repeat(np.arange(S), G)
    gamma_of = np.tile(np.arange(G), S)
    beta_all = (1.0 - np.asarray(gammas))[gamma_of]
    steps = np.full(R, np.inf)
    status = np.array(["t_max"] * R, dtype=object)
    steps_run = np.zeros(R, dtype=np.int64)
    trace_final = np.full(R, np.nan)
    loss_final = np.full(R, np.nan)

    rngs = [np.random.default_rng(np.random.SeedSequence([int(s), 2210, 16400])) for s in seeds]
    B = config.batch_size if config.batch_size is not None else n
    sigma = config.label_noise
    blowup = 1e3 * (1.0 + np.max(np.abs(problem.U0)))

    idx = np.arange(R)
    U = np.repeat(problem.U0[None], R, axis=0)
    v = np.zeros_like(U)
    beta = beta_all[:, None, None]
    first = None
    t = 0

    def retire(mask, label, t_now, Uproj=None):
        ids = idx[mask]
        status[ids] = label
        steps_run[ids] = t_now
        if label == "reached":
            steps[ids] = t_now
        if Uproj is not None:
            trace_final[ids] = hessian_trace(problem, Uproj)
            loss_final[ids] = loss(problem, U[mask])

    while t < config.t_max and len(idx):
        t += 1
        noise_s, w = _labels_noise_and_batch(rngs, n, B, sigma)
        weights = None if w is None else w[seed_of[idx]]
        U, v = heavy_ball_step(problem, U, v, eta, beta, Af, noise_s[seed_of[idx]], weights)
        if t % config.check_every and t != config.t_max:
            continue
        bad, tr, Up = _projected_traces(problem, U, blowup, config.project_iters)
        hit = ~bad & (tr <= target)
        if hit.any():
            retire(hit, "reached", t, Up[hit])
            if first is None:
                first = t
        if bad.any():
            retire(bad, "diverged", t)
        stop_censor = first is not None and t >= config.censor_factor * first
        keep = ~(hit | bad)
        if stop_censor and keep.any():
            retire(keep, "censored", t, Up[keep])
            keep[:] = False
        idx, U, v, beta = idx[keep], U[keep], v[keep], beta[keep]
    if len(idx):  # t_max
        Up = project_to_manifold(problem, U, config.project_iters)
        retire(np.ones(len(idx), bool), "t_max", t, Up)
    return {
        "seed": np.asarray(seeds)[seed_of],
        "beta_index": gamma_of,
        "steps_to_target": steps,
        "status": status.astype(str),
        "steps_run": steps_run,
        "trace_final": trace_final,
        "loss_final": loss_final,
    }


def run_label_noise(
    config: LabelNoiseConfig, progress: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """Every (eta, 1 - beta, seed) run; one row per run.

    Columns: ``experiment, problem, eta, eta_index, beta, one_minus_beta, beta_index,
    seed, steps_to_target`` (``inf`` unless reached), ``status`` (reached / censored /
    t_max / diverged), ``steps_run, trace_final`` (Hessian trace at the projection when
    the run stopped), ``loss_final, trace_start, trace_teacher, trace_target``.
    Deterministic given the config (numpy float64, seeded generators only).
    """
    problem = make_problem(config)
    tr0, trt = problem.trace_start, problem.trace_teacher
    target = trt + config.target_fraction * (tr0 - trt)
    gammas = config.one_minus_betas
    frames = []
    for i, eta in enumerate(config.etas):
        res = _run_eta(problem, config, float(eta), target, gammas)
        f = pd.DataFrame(res)
        g = gammas[f["beta_index"].to_numpy()]
        f.insert(0, "experiment", "label_noise")
        f.insert(1, "problem", "matrix_sensing")
        f.insert(2, "eta", float(eta))
        f.insert(3, "eta_index", i)
        f.insert(4, "beta", 1.0 - g)
        f.insert(5, "one_minus_beta", g)
        f["trace_start"] = tr0
        f["trace_teacher"] = trt
        f["trace_target"] = target
        frames.append(f[_COLUMNS])
        if progress:
            reached = f["status"] == "reached"
            best = f.loc[reached, "steps_to_target"].min() if reached.any() else math.inf
            progress(
                f"label_noise eta={eta:.3g}: {int(reached.sum())}/{len(f)} runs reached "
                f"tr H <= {target:.4g} (fastest {best:g} steps, "
                f"{int(f['steps_run'].max())} steps simulated)"
            )
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["eta_index", "beta_index", "seed"], ignore_index=True)


_COLUMNS = [
    "experiment",
    "problem",
    "eta",
    "eta_index",
    "beta",
    "one_minus_beta",
    "beta_index",
    "seed",
    "steps_to_target",
    "status",
    "steps_run",
    "trace_final",
    "loss_final",
    "trace_start",
    "trace_teacher",
    "trace_target",
]


# --------------------------------------------------------------------------- fits


def _crossover_model(p, lg):
    # log T = a + log(1 + exp(s (log gamma - c)))
    return p[0] + np.logaddexp(0.0, p[2] * (lg - p[1]))


def fit_crossover(one_minus_beta, steps) -> dict:
    """Fit ``log T = log T0 + log(1 + (gamma / gamma_c)^s)`` to finite ``(gamma, T)`` pairs.

    ``T0`` is the plateau (large momentum), ``s`` the slope of the rise (small momentum)
    and ``gamma_c`` where the two meet (``T = 2 T0``). Returns ``gamma_c, T0, s``, the
    standard error of ``log gamma_c`` (from the Jacobian), ``n_points`` and ``ok`` with a
    ``reason`` when the fit cannot locate a crossover inside the data: fewer than 5
    points, fewer than 2 distinct ``gamma`` on either side of ``gamma_c``, ``s <= 0.5``,
    or a failed optimization.
    """
    g = np.asarray(one_minus_beta, dtype=float)
    T = np.asarray(steps, dtype=float)
    m = np.isfinite(g) & np.isfinite(T) & (g > 0) & (T > 0)
    g, T = g[m], T[m]
    out = {
        "gamma_c": math.nan,
        "T0": math.nan,
        "s": math.nan,
        "log_gamma_c_se": math.nan,
        "n_points": int(len(g)),
        "ok": False,
        "reason": "",
    }
    if len(g) < 5 or len(np.unique(g)) < 4:
        out["reason"] = "fewer than 5 finite times at 4 distinct momenta"
        return out
    lg, lT = np.log(g), np.log(T)
    ug = np.unique(lg)
    low = np.median(lT[lg <= np.quantile(ug, 0.25)])
    above = ug[[np.median(lT[lg == u]) > low + math.log(2.0) for u in ug]]
    c0 = float(above[0]) if len(above) else float(ug[-1])
    try:
        res = least_squares(
            lambda p: _crossover_model(p, lg) - lT,
            x0=[low, c0, 2.0],
            bounds=([-np.inf, ug[0] - 5.0, 0.05], [np.inf, ug[-1] + 5.0, 20.0]),
        )
    except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - defensive
        out["reason"] = f"fit failed: {exc}"
        return out
    a, c, s = (float(v) for v in res.x)
    dof = len(lg) - 3
    se = math.nan
    if dof > 0:
        s2 = float(np.sum(res.fun**2)) / dof
        try:
            cov = np.linalg.inv(res.jac.T @ res.jac) * s2
            se = float(math.sqrt(max(cov[1, 1], 0.0)))
        except np.linalg.LinAlgError:
            se = math.nan
    out.update(gamma_c=math.exp(c), T0=math.exp(a), s=s, log_gamma_c_se=se)
    n_below = int(np.sum(ug < c))
    n_above = int(np.sum(ug > c))
    if not res.success:
        out["reason"] = f"fit did not converge: {res.message}"
    elif n_below < 2 or n_above < 2:
        out["reason"] = (
            f"crossover not bracketed by the data ({n_below} momenta below, {n_above} above)"
        )
    elif s <= 0.5:
        out["reason"] = f"no rise at small momentum (fitted slope s = {s:.3g})"
    else:
        out["ok"] = True
    return out


def fit_exponent(eta, one_minus_beta, level: float = 0.95) -> dict:
    """Least-squares slope of ``log(1 - beta*)`` against ``log eta`` with a t-interval.

    Returns ``exponent, intercept, stderr, ci`` (``[lo, hi]`` at ``level``), ``r2``, ``n``
    and ``prefactor = exp(intercept)`` (so ``1 - beta* ~ prefactor * eta^exponent``).
    With fewer than 3 points the numbers are NaN.
    """
    x = np.log(np.asarray(eta, dtype=float))
    y = np.log(np.asarray(one_minus_beta, dtype=float))
    m = np.isfinite(x) & np.isfinite(y)
    x, y = x[m], y[m]
    n = int(len(x))
    out = {
        "exponent": math.nan,
        "intercept": math.nan,
        "prefactor": math.nan,
        "stderr": math.nan,
        "ci": [math.nan, math.nan],
        "r2": math.nan,
        "n": n,
        "level": level,
    }
    if n < 3 or np.ptp(x) == 0:
        return out
    r = stats.linregress(x, y)
    half = float(stats.t.ppf(0.5 + level / 2, n - 2)) * float(r.stderr)
    out.update(
        exponent=float(r.slope),
        intercept=float(r.intercept),
        prefactor=float(math.exp(r.intercept)),
        stderr=float(r.stderr),
        ci=[float(r.slope - half), float(r.slope + half)],
        r2=float(r.rvalue**2),
    )
    return out


# --------------------------------------------------------------------------- analysis


def analyze_label_noise(df: pd.DataFrame, config: LabelNoiseConfig) -> dict:
    """Per-eta crossover fits, the exponent of ``1 - beta*`` against ``eta``, and more.

    Returns a JSON-serializable dict with ``per_eta`` (for each eta: the crossover fit,
    the grid arg-min of the seed-median time and whether it sits on the grid's edge,
    the seed-median curve), ``exponent`` (:func:`fit_exponent` on the etas whose fit is
    ``ok``), ``time_exponent`` (slope of the plateau time ``T0`` against ``eta``;
    the theory's ``-2/3``), ``argmin_exponent`` (the same fit on the arg-mins, for
    comparison), the problem's traces and ``config``.
    """
    etas = config.etas
    gammas = config.one_minus_betas
    per_eta = []
    for i, eta in enumerate(etas):
        g = df[df["eta_index"] == i]
        fit = fit_crossover(g["one_minus_beta"], g["steps_to_target"])
        med = (
            g.groupby("beta_index")["steps_to_target"]
            .median()
            .reindex(range(len(gammas)), fill_value=math.inf)
            .to_numpy()
        )
        if np.isfinite(med).any():
            j = int(np.argmin(med))
            argmin, argmin_edge = float(gammas[j]), bool(j in (0, len(gammas) - 1))
        else:
            argmin, argmin_edge = math.nan, False
        per_eta.append(
            {
                "eta": float(eta),
                **fit,
                "argmin_one_minus_beta": argmin,
                "argmin_at_grid_edge": argmin_edge,
                "median_steps": [float(v) for v in med],
                "n_reached": int((g["status"] == "reached").sum()),
                "n_runs": int(len(g)),
            }
        )
    ok = [p for p in per_eta if p["ok"]]
    exponent = fit_exponent([p["eta"] for p in ok], [p["gamma_c"] for p in ok], config.ci_level)
    time_exp = fit_exponent([p["eta"] for p in ok], [p["T0"] for p in ok], config.ci_level)
    am = [p for p in per_eta if np.isfinite(p["argmin_one_minus_beta"])]
    argmin_exp = fit_exponent(
        [p["eta"] for p in am], [p["argmin_one_minus_beta"] for p in am], config.ci_level
    )

    def _trace(col: str) -> float:
        return float(df[col].iloc[0]) if len(df) and col in df else math.nan

    return {
        "per_eta": per_eta,
        "exponent": exponent,
        "time_exponent": time_exp,
        "argmin_exponent": argmin_exp,
        "predicted_exponent": PREDICTED_EXPONENT,
        "exponent_tolerance": config.exponent_tolerance,
        "one_minus_beta_grid": [float(v) for v in gammas],
        "trace_start": _trace("trace_start"),
        "trace_teacher": _trace("trace_teacher"),
        "trace_target": _trace("trace_target"),
        "definition": BETA_STAR_DEFINITION,
        "config": config.to_dict(),
    }


def claim_s2(analysis: dict, source: str = S2_SOURCE, figure: str = S2_FIGURE) -> dict:
    """S2: the fitted exponent of ``1 - beta*`` against ``eta`` is 2/3 within the tolerance.

    PASS when ``|exponent - 2/3| <= exponent_tolerance`` (default 0.1). INCONCLUSIVE when
    fewer than 3 learning rates have a located crossover, or when the confidence
    interval is wider than the whole pass band (half-width > 2 x tolerance), so the
    data cannot tell 2/3 from its neighbours.
    """
    e = analysis["exponent"]
    tol = float(analysis.get("exponent_tolerance", 0.1))
    pred = float(analysis.get("predicted_exponent", PREDICTED_EXPONENT))
    k = e["exponent"]
    reasons = []
    if e["n"] < 3 or not np.isfinite(k):
        reasons.append(f"only {e['n']} learning rates with a located crossover (need 3)")
    else:
        half = 0.5 * (e["ci"][1] - e["ci"][0])
        if not np.isfinite(half) or half > 2 * tol:
            reasons.append(f"confidence interval half-width {half:.3g} > {2 * tol:.3g}")
    ok = None if reasons else bool(abs(k - pred) <= tol)
    per = analysis.get("per_eta", [])
    check = {
        "check": "exponent of 1 - beta* against eta",
        "measured": float(k),
        "predicted": pred,
        "tolerance": f"|exponent - 2/3| <= {tol:g}",
        "pass": ok,
        "ci": e["ci"],
        "ci_level": e.get("level", 0.95),
        "stderr": e["stderr"],
        "r2": e["r2"],
        "prefactor": e["prefactor"],
        "n_eta": e["n"],
        "eta": [p["eta"] for p in per if p["ok"]],
        "one_minus_beta_star": [p["gamma_c"] for p in per if p["ok"]],
        "rise_slope_s": [p["s"] for p in per if p["ok"]],
        "time_exponent": analysis.get("time_exponent", {}).get("exponent", math.nan),
        "time_exponent_ci": analysis.get("time_exponent", {}).get("ci", [math.nan, math.nan]),
        "argmin_exponent": analysis.get("argmin_exponent", {}).get("exponent", math.nan),
        "argmin_at_grid_edge": [p["eta"] for p in per if p.get("argmin_at_grid_edge")],
        "definition": analysis.get("definition", BETA_STAR_DEFINITION),
    }
    dropped = [f"eta={p['eta']:.3g}: {p['reason']}" for p in per if not p["ok"]]
    if dropped:
        check["excluded_eta"] = dropped
    if reasons:
        check["inconclusive_because"] = "; ".join(reasons)
    full_batch = analysis.get("config", {}).get("batch_size") is None
    sampler = "label_noise_full_batch" if full_batch else "label_noise_without_replacement"
    return claim_record(
        "S2", S2_STATEMENT, "hb", "matrix_sensing", sampler, [check], figure, source
    )
