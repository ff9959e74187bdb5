r"""The pre-flight plan: what a config will cost and whether its shards can succeed,
from the exact theory, before any sweep runs (``mbm plan``, and the Snakefile at the
start of every run).

Per problem: its spectral quantities
(:func:`~minibatch_momentum.problems.system.spectral_quantities`:
``L``, ``mu``, ``kappa``, ``tr H``, ``B*_SGD``, ``B_sat``) from the prescribed spectrum
(synthetic families, no generation) or from the problem itself (``digits_kernel``,
``matrix``: read from ``results/problems/NAME.npz`` when that file is newer than its spec
and data, else generated, well under a second at the profiles' sizes).

Per shard (problem, sampler, method, ``B``): the predicted steps to ``eps``,
``T = log(1/eps) / log(1/rho)`` with ``rho`` the exact rate of the Gaussian-rows theory
(:class:`~minibatch_momentum.theory.gaussian.Gaussian`, the sampler's ``m`` and ``replace``;
an approximation for non-uniform samplers, as in the theory job's ``gaussian`` model) at
the momentum rule's ``(eta, beta)`` (:mod:`~minibatch_momentum.theory.rule`, within ~1.2-1.5 of
the rate-optimal ``T*`` on its calibration spectra). The shard's own grid is then
searched, nearest the rule's point first, for a point whose predicted ``T`` is within
``t_max`` (one or two rate evaluations where the grid is sensible); a shard with none is
*hopeless*: every run of it would run to ``t_max`` and end censored. One cheap
certificate skips the search: the deterministic optimum's count
(:func:`~minibatch_momentum.theory.common.deterministic_optimum`; noise only adds to the second
moments, so no constant ``(eta, beta)`` beats it) above ``t_max`` makes every grid point
hopeless at once. ``T`` is the asymptotic count; the expected loss from ``x_0 = 0``
gets there a little sooner where the slowest modes carry little of the initial loss.

Time: per shard ``min(t_max, censor_factor T)`` steps per seed (``t_max`` for a hopeless
one) priced with :func:`~minibatch_momentum.benchmark.cost.shard_seconds` and the reference
cost model (:data:`~minibatch_momentum.benchmark.cost.REFERENCE_MODEL`): an extrapolation,
not a measurement. ``kaczmarz_block`` has no closed form; its shards are listed
without a prediction or a time (the cost model does not know its projection step either).

Torch-free (the Snakefile imports it).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minibatch_momentum import config as cfg
from minibatch_momentum.benchmark.cost import (
    REFERENCE_MODEL,
    GPUAssumptions,
    SweptPair,
    reference_sampler_seconds,
    shard_seconds,
    swept_pairs,
)
from minibatch_momentum.grid import Grid
from minibatch_momentum.problems.families import check_problem_spec, input_files
from minibatch_momentum.problems.system import spectral_quantities, spectrum
from minibatch_momentum.sampling.samplers import PROJECTION_SAMPLERS


class HopelessError(ValueError):
    """Shards predicted to reach eps at none of their grid points, not opted in."""


@dataclass
class ProblemPlan:
    """A problem's spectrum and what it determines."""

    name: str
    form: str
    n: int
    d: int
    eigvals: np.ndarray
    source: str  # "spectrum" (prescribed), "cached" or "generated"
    quantities: dict = field(default_factory=dict)


@dataclass
class ShardPlan:
    problem: str
    sampler: str
    method: str
    batch_size: int
    steps: float  # predicted steps to eps (inf: never); nan: no closed form
    where: str  # "rule", "grid", "deterministic bound", "none", "no closed form"
    hopeless: bool
    cpu_s: float
    gpu_s: float


# ------------------------------------------------------------------------------ problems


def problem_plan(name: str, spec: dict, root: str = ".", cache: str = "results/problems"):
    """:class:`ProblemPlan` of one config problem (see the module docstring)."""
    family, kw = check_problem_spec(spec)
    form = spec.get("form", "rows")
    if family in ("gaussian", "heavy_tailed"):
        lam = spectrum(kw["d"], kw["kappa"], kw["profile"], alpha=kw["alpha"])
        d, n = kw["d"], kw["n"]
        plan = ProblemPlan(name, form, n if form == "rows" else d, d, lam, "spectrum")
    else:
        plan = _cached(name, spec, root, cache) or _generated(name, spec, root)
    plan.quantities = spectral_quantities(plan.eigvals)
    return plan


def _cached(name, spec, root, cache) -> ProblemPlan | None:
    npz = Path(root) / cache / f"{name}.npz"
    meta = npz.with_suffix(".json")
    if not (npz.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
        if info.get("spec") != json.loads(json.dumps(spec)):
            return None
        newest = max(
            [os.path.getmtime(Path(root) / f) for f in input_files(spec)], default=-math.inf
        )
        if os.path.getmtime(npz) < newest:
            return None  # the data changed since: the problem job will run again
        with np.load(npz) as z:
            lam = np.asarray(z["eigvals"], float)
        return ProblemPlan(name, info["kind"], int(info["n"]), int(info["d"]), lam, "cached")
    except (OSError, KeyError, ValueError):
        return None


def _generated(name, spec, root) -> ProblemPlan:
    from minibatch_momentum.problems.families import make_problem

    here = os.getcwd()
    try:
        os.chdir(root)  # relative matrix paths are taken from the workflow root
        p = make_problem(spec)
    finally:
        os.chdir(here)
    return ProblemPlan(name, p.kind, p.n, p.d, p.eigvals, "generated")


def sampler_noise(problem: ProblemPlan, sampler: str) -> tuple[int, bool]:
    """``(m, replace)`` of a sampler: what sets its ``c_B`` in the theory (rows drawn
    distinct or i.i.d.; coordinates i.i.d.)."""
    if sampler == "coordinate":
        return problem.d, True
    return problem.n, sampler != "without_replacement"


# -------------------------------------------------------------------------------- shards


def predicted_steps(
    lam: np.ndarray,
    method: str,
    B: int,
    eps: float,
    t_max: int,
    grid: dict,
    *,
    m: int,
    replace: bool,
    rule: dict,
) -> tuple[float, str, bool]:
    """``(T, where, hopeless)``: predicted steps to ``eps``, where ``T`` was found, and
    whether no grid point reaches ``eps`` within ``t_max``.

    ``where``: ``"rule"`` (the rule's point, within ``t_max``), ``"grid"`` (the rule's
    point is not, the grid point found is), ``"none"`` (no grid point is; ``T`` is the
    grid's best) or ``"deterministic bound"`` (no constant ``(eta, beta)`` reaches ``eps``
    within ``t_max`` even without noise; ``T`` is that bound). The grid is searched
    nearest the rule's point first and stops at the first point within ``t_max``: one or
    two rate evaluations for a shard that can succeed.
    """
    from minibatch_momentum.theory.common import deterministic_optimum, iterations_from_rate
    from minibatch_momentum.theory.gaussian import Gaussian
    from minibatch_momentum.theory.rule import rule_for_spectrum

    q = spectral_quantities(lam)
    T_det = iterations_from_rate(deterministic_optimum(method, q["L"], q["mu"])[2], eps)
    if T_det > t_max:
        return T_det, "deterministic bound", True

    model = Gaussian(lam, n=m, replace=replace)

    def steps(eta, beta):
        return iterations_from_rate(model.rate(method, B, eta, beta), eps)

    eta_r, beta_r = rule_for_spectrum(
        method,
        B,
        lam,
        noise_line=rule["noise_line"][method],
        n=m,
        replace=replace,
        form=rule["form"],
    )
    T_rule = steps(eta_r, beta_r)
    points = list(zip(*Grid(**grid).points(method, q["L"]), strict=True))

    def distance(p):  # in log eta and log(1 - beta) from the rule's point
        de = math.log(p[0] / eta_r)
        db = 0.0 if method == "sgd" else math.log((1 - p[1]) / (1 - beta_r))
        return de * de + db * db

    best = math.inf
    for e, b in sorted(points, key=distance):
        T = steps(e, b)
        if T <= t_max:
            return (T_rule, "rule", False) if T_rule <= t_max else (T, "grid", False)
        best = min(best, T)
    return best, "none", True


def plan(config: dict, root: str = ".", progress=None) -> dict:
    """The plan of a prepared config (:func:`~minibatch_momentum.config.prepare`):
    ``{"problems": {name: ProblemPlan}, "shards": [ShardPlan], "hopeless": [ShardPlan]}``."""
    stop = config["sweep"]["stop"]
    eps, t_max, censor = float(stop["eps"]), int(stop["t_max"]), float(stop["censor_factor"])
    problems, unknown = {}, {}
    # Every pair the workflow sweeps (the scan pairs of claim C7 too), each method at the
    # batch sizes its jobs run (config.py: one source with the workflow).
    for p in dict.fromkeys(p for p, _ in cfg.all_pairs(config)):
        spec = config["problems"][p]
        missing = [f for f in input_files(spec) if not (Path(root) / f).is_file()]
        if missing:  # the dry run names the missing input; nothing to plan with
            unknown[p] = f"missing file {missing[0]!r}"
            continue
        try:
            problems[p] = problem_plan(p, spec, root)
        except ValueError as exc:
            raise cfg.ConfigError(f"problems.{p}.{exc}") from None
    shards = []
    for pair in swept_pairs(config):
        if pair.problem in problems:
            shards += pair_plan(pair, problems[pair.problem], config["rule"], eps, t_max, censor)
            if progress:
                progress(f"{pair.problem}/{pair.sampler} planned")
    return {
        "problems": problems,
        "shards": shards,
        "hopeless": [s for s in shards if s.hopeless],
        "unknown": unknown,
        "eps": eps,
        "t_max": t_max,
    }


def pair_plan(
    pair: SweptPair, prob: ProblemPlan, rule: dict, eps: float, t_max: int, censor: float
) -> list[ShardPlan]:
    """The :class:`ShardPlan` of each shard of one swept (problem, sampler) pair: its
    predicted steps and, priced with the reference cost model, its time."""
    m, replace = sampler_noise(prob, pair.sampler)
    shards = []
    for method, R, batch_sizes in pair.methods:
        for B in batch_sizes:
            if pair.sampler in PROJECTION_SAMPLERS:
                # no closed form, nor does the cost model know a projection's step
                T, where, hopeless, cpu_s, gpu_s = math.nan, "no closed form", False, 0.0, 0.0
            else:
                T, where, hopeless = predicted_steps(
                    prob.eigvals, method, B, eps, t_max, pair.grid, m=m, replace=replace, rule=rule
                )
                run = t_max if not T <= t_max / censor else math.ceil(censor * T)
                cpu_s, gpu_s = shard_seconds(
                    B,
                    prob.d,
                    R,
                    min(run, t_max),
                    pair.seeds,
                    REFERENCE_MODEL,
                    GPUAssumptions(),
                    reference_sampler_seconds(m, B, replace),
                )
            shards.append(
                ShardPlan(pair.problem, pair.sampler, method, B, T, where, hopeless, cpu_s, gpu_s)
            )
    return shards


def refused(config: dict, result: dict) -> list[ShardPlan]:
    """The hopeless shards whose problem did not opt in (``allow_hopeless``)."""
    return [
        s for s in result["hopeless"] if not cfg.study_value(config, s.problem, "allow_hopeless")[0]
    ]


def hopeless_message(config: dict, result: dict, shards: list[ShardPlan]) -> str:
    """One message naming the problem, its kappa, the predicted steps and the remedies."""
    first = shards[0]
    kappa = result["problems"][first.problem].quantities["kappa"]
    problems = sorted({s.problem for s in shards})
    steps = "never" if not math.isfinite(first.steps) else f"{first.steps:.3g} steps"
    more = f" and {len(shards) - 1} more shard(s)" if len(shards) > 1 else ""
    key = f"studies.{first.problem}" if "studies" in config else "sweep"
    return (
        f"plan: problem {first.problem!r} (kappa {kappa:.3g}) cannot reach eps = "
        f"{result['eps']:g} within t_max = {result['t_max']} at any grid point: "
        f"{first.sampler} {first.method} B={first.batch_size} is predicted {steps} "
        f"({first.where}){more}; problems affected: {', '.join(problems)}. Remedies: a "
        "smaller kappa (a larger gamma for a kernel, a better-conditioned matrix), a larger "
        "sweep.stop.eps or sweep.stop.t_max, another form or sampler (form: psd with "
        f"sampler coordinate), or set {key}.allow_hopeless: true to run it anyway "
        "(`mbm plan --configfile ...` prints the whole table)"
    )


def check(config: dict, root: str = ".") -> dict:
    """The plan, raising :class:`HopelessError` if a shard not opted in is hopeless."""
    result = plan(config, root)
    bad = refused(config, result)
    if bad:
        raise HopelessError(hopeless_message(config, result, bad))
    return result


# ------------------------------------------------------------------------------- display


def _count(x: float) -> str:
    if math.isnan(x):
        return "-"
    if not math.isfinite(x):
        return "inf"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}"


def _duration(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.0f} s"


def format_plan(result: dict, config: dict) -> str:
    """The plan as text: a problems table, then per (problem, sampler) the predicted
    steps per method and batch size, with the time estimate."""
    lines = [
        f"Problems (eps = {result['eps']:g}, t_max = {result['t_max']}):",
        f"  {'problem':<20} {'form':<4} {'n':>6} {'d':>5} {'L':>9} {'mu':>9} {'kappa':>9} "
        f"{'tr H':>9} {'B*_SGD':>7} {'B_sat':>7}  source",
    ]
    for name, p in result["problems"].items():
        q = p.quantities
        lines.append(
            f"  {name:<20} {p.form:<4} {p.n:>6} {p.d:>5} {q['L']:>9.3g} {q['mu']:>9.3g} "
            f"{q['kappa']:>9.3g} {q['trace']:>9.3g} {q['B_sgd']:>7.3g} {q['B_sat']:>7.3g}  "
            f"{p.source}"
        )
    lines.append(
        "Predicted steps to eps per shard (exact Gaussian-rows rate at the rule's point, else "
        "the grid's; '!' = no grid point within t_max):"
    )
    pairs: dict = {}
    for s in result["shards"]:
        pairs.setdefault((s.problem, s.sampler), []).append(s)
    total_cpu = total_gpu = 0.0
    for (p, sampler), rows in pairs.items():
        sizes = list(dict.fromkeys(s.batch_size for s in rows))
        lines.append(f"  {p} / {sampler}")
        lines.append("    " + f"{'B':<4}" + "".join(f"{b:>8}" for b in sizes))
        for method in dict.fromkeys(s.method for s in rows):
            cells = [s for s in rows if s.method == method]
            text = "".join(f"{_count(s.steps) + ('!' if s.hopeless else ''):>8}" for s in cells)
            lines.append(f"    {method:<4}{text}")
        cpu, gpu = sum(s.cpu_s for s in rows), sum(s.gpu_s for s in rows)
        total_cpu, total_gpu = total_cpu + cpu, total_gpu + gpu
        if all(math.isnan(s.steps) for s in rows):
            lines.append("    time: not estimated (no closed form for this sampler)")
        else:
            lines.append(
                f"    time: {_duration(cpu)} on one CPU thread, {_duration(gpu)} on one GPU"
            )
    lines.append(
        f"Sweeps in all: {len(result['shards'])} shards, {_duration(total_cpu)} CPU-thread time, "
        f"{_duration(total_gpu)} on one GPU in series (extrapolated from the reference cost "
        "model, not measured; problem generation, theory, seeds and figures not included)"
    )
    for p, why in result["unknown"].items():
        lines.append(f"  {p}: not planned ({why})")
    if result["hopeless"]:
        bad = refused(config, result)
        lines.append(
            f"{len(result['hopeless'])} hopeless shard(s)"
            + (
                f", {len(bad)} not opted in: the workflow refuses to start"
                if bad
                else ", all opted in (allow_hopeless)"
            )
        )
    return "\n".join(lines)
