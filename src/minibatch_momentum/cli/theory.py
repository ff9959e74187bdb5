"""``mbm theory``, ``mbm montecarlo``, ``mbm theory-grid``, ``mbm kappa-scan``: the exact
theory of a problem (T*(B), knees, rate maps), T1's Monte Carlo beside it, its counts
tuned on a sweep's grid (T2) and the critical batches over kappa (C7)."""

from __future__ import annotations

import time

from minibatch_momentum.io import log as _log
from minibatch_momentum.io import parse_spec as _json_arg


def _rule_specs(spec: dict) -> dict:
    """``{method: {"noise_line": ..., "form": ...}}`` from the spec's ``rule`` entry."""
    from minibatch_momentum.theory.rule import RuleSpec

    rule = spec.get("rule") or {}
    lines = rule.get("noise_line", {})
    out = {}
    for method, line in lines.items():
        try:
            out[method] = RuleSpec(noise_line=line, form=rule.get("form", "harmonic")).__dict__
        except TypeError as exc:
            raise ValueError(f"rule: {exc}") from None
    return out


def _check_theory_spec(spec: dict) -> None:
    """Field-naming errors for the theory spec (the workflow's schema checks the same)."""
    from minibatch_momentum.theory.common import METHODS
    from minibatch_momentum.theory.exact import HEATMAP_DEFAULTS

    methods = spec["methods"]
    if not (isinstance(methods, list) and methods and set(methods) <= set(METHODS)):
        raise ValueError(f"methods: must be a non-empty list out of {list(METHODS)}")
    sizes = spec["batch_sizes"]
    if not (isinstance(sizes, list) and sizes and all(_positive_int(b) for b in sizes)):
        raise ValueError("batch_sizes: must be a non-empty list of integers >= 1")
    if not (isinstance(spec["eps"], int | float) and 0 < spec["eps"] < 1):
        raise ValueError("eps: must lie in (0, 1)")
    unknown = sorted(set(spec.get("heatmap") or {}) - set(HEATMAP_DEFAULTS))
    if unknown:
        raise ValueError(f"heatmap: unknown field(s) {unknown}")


def _positive_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _exact_spec(spec: dict) -> tuple[str, str]:
    """``(sampler, noise)`` of a theory or T1 spec: any sampler of
    :mod:`~minibatch_momentum.sampling.samplers` (default ``without_replacement``) and a noise model
    of :data:`~minibatch_momentum.theory.exact.NOISE_MODELS` (default ``gaussian``)."""
    from minibatch_momentum.sampling.samplers import SAMPLERS
    from minibatch_momentum.theory.exact import NOISE_MODELS

    sampler = spec.get("sampler", "without_replacement")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: must be one of {list(SAMPLERS)}, got {sampler!r}")
    noise = spec.get("noise", "gaussian")
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise: must be one of {list(NOISE_MODELS)}, got {noise!r}")
    return sampler, noise


NOISE_DESCRIPTIONS = {
    "gaussian": "gaussian rows (closed form with this problem's eigenvalues, n, c_B)",
    "moments": "moment closure (this problem's fourth moments Q for the sampler, c_B)",
}


def cmd_theory(args) -> None:
    """Spec keys: ``methods``, ``batch_sizes``, ``eps`` (required); ``sampler``, ``noise``,
    ``rule``, ``heatmap``, ``rate_maps`` (optional, default true; false leaves the rate-map
    table empty); ``problem`` is carried along."""
    from pathlib import Path

    from minibatch_momentum.io import write_json, write_parquet
    from minibatch_momentum.problems.system import load_problem
    from minibatch_momentum.theory import exact

    spec = _json_arg(args.spec)
    _required(spec, ("methods", "batch_sizes", "eps"))
    _check_theory_spec(spec)
    sampler, noise = _exact_spec(spec)
    problem = load_problem(args.problem)
    # kaczmarz_block (no closed form) and a sampler of the other problem kind stop here;
    # the model holds the sampler's m and replace: its c_B and what the rule is handed.
    model = exact.noise_model(problem, sampler, noise)
    n, replace = model.n, model.replace
    meta = problem.spectral_summary()
    out = Path(args.out_dir)
    timing = {}

    t0 = time.perf_counter()
    table = exact.batch_scaling_table(
        model,
        exact.initial_weights(problem),
        spec["methods"],
        spec["batch_sizes"],
        spec["eps"],
        rule=_rule_specs(spec),
        progress=_log,
    )
    timing["batch_scaling_s"] = time.perf_counter() - t0
    _log(f"exact T*(B) for {len(table)} (method, B) in {timing['batch_scaling_s']:.1f}s")

    t0 = time.perf_counter()
    knees = exact.knees(model, spec["methods"], table)  # its rates are not tuned twice
    timing["knees_s"] = time.perf_counter() - t0
    _log(f"exact knees {knees} in {timing['knees_s']:.1f}s")

    hm = {**exact.HEATMAP_DEFAULTS, **(spec.get("heatmap") or {})}
    method = hm.pop("method")
    chosen = hm.pop("batch_sizes") or None
    heat_B = exact.heatmap_batches(spec["batch_sizes"], meta["B_sgd"], meta["B_sat"], chosen)
    if not spec.get("rate_maps", True):  # only the headline pair's figure draws them
        heat_B = []
    t0 = time.perf_counter()
    maps = exact.rate_map_table(model, method, heat_B, **hm)
    timing["rate_maps_s"] = time.perf_counter() - t0
    _log(f"rate maps ({method}, B = {heat_B}, {len(maps)} points) in {timing['rate_maps_s']:.1f}s")

    info = {
        "spec": spec,
        "problem": meta,
        "noise_model": NOISE_DESCRIPTIONS[noise],
        "noise": noise,
        "sampling": {"sampler": sampler, "m": int(n), "replace": bool(replace)},
        "knees": knees,
        "heatmap": {"method": method, "batch_sizes": heat_B},
        "timing": timing,
    }
    write_parquet(table, out / "tstar.parquet", {"theory": info})
    write_parquet(maps, out / "rate_maps.parquet", {"theory": info})
    write_json(info, out / "theory.json")
    _log(f"-> {out}")


def _t1_steps(spec, model, weights, method, B, eta, beta) -> int:
    """T1's horizon: until the theory's E f (the spec's noise model) reaches eps, at most
    ``t1.max_steps``."""
    t_max = int(spec["t1"]["max_steps"])
    T = model.iterations(weights, method, B, eta, beta, spec["eps"], t_max=t_max)
    return int(min(T, t_max))


def _required(spec: dict, keys, prefix: str = "") -> None:
    """A missing key of a spec ends the command naming it (``missing field: <prefix><key>``)."""
    for key in keys:
        if key not in spec:
            raise KeyError(prefix + key)


def cmd_montecarlo(args) -> None:
    """Spec keys: ``eps``, ``t1`` (``methods``, ``batch_size``, ``runs``, ``max_steps``,
    ``confidence``, optional ``seed``) required; ``sampler``, ``noise`` (sets the horizon's
    model), ``rule`` optional; ``problem`` is carried along."""
    import pandas as pd
    import torch

    from minibatch_momentum.io import write_parquet
    from minibatch_momentum.problems.system import load_problem
    from minibatch_momentum.simulate import montecarlo
    from minibatch_momentum.simulate.engine import monte_carlo
    from minibatch_momentum.theory import exact
    from minibatch_momentum.theory.rule import rule_for_spectrum

    torch.set_num_threads(1)
    spec = _json_arg(args.spec)
    _required(spec, ("eps", "t1"))
    t1 = spec["t1"]
    _required(t1, ("methods", "batch_size", "runs", "max_steps", "confidence"), "t1.")
    sampler, noise = _exact_spec(spec)
    rules = _rule_specs(spec)
    problem = load_problem(args.problem)
    model = exact.noise_model(problem, sampler, noise)
    n, replace = model.n, model.replace  # the sampler's, which the rule is handed
    weights = exact.initial_weights(problem)
    B = int(t1["batch_size"])
    frames, info = [], {}
    for method in t1["methods"]:
        if method not in rules:
            raise ValueError(f"rule: no rule variant for t1 method {method!r}")
        eta, beta = rule_for_spectrum(
            method, B, problem.eigvals, n=n, replace=replace, **rules[method]
        )
        steps = _t1_steps(spec, model, weights, method, B, eta, beta)
        t0 = time.perf_counter()
        frames.append(
            montecarlo.exact_vs_monte_carlo(
                monte_carlo(
                    problem,
                    method,
                    B,
                    eta,
                    beta,
                    int(t1["runs"]),
                    steps,
                    seed=int(t1.get("seed", 0)),
                    sampler=sampler,
                ),
                confidence=float(t1["confidence"]),
            )
        )
        info[method] = {
            "eta": eta,
            "beta": beta,
            "steps": steps,
            "seconds": time.perf_counter() - t0,
        }
        _log(
            f"T1 {method} B={B}: {steps} steps, {t1['runs']} runs in {info[method]['seconds']:.1f}s"
        )
    df = pd.concat(frames, ignore_index=True)
    write_parquet(df, args.out, {"spec": spec, "configs": info})
    _log(f"-> {args.out}")


def cmd_theory_grid(args) -> None:
    """Spec keys: ``methods`` (``{method: [B, ...]}``), ``grid``, ``eps`` (required);
    ``sampler``, ``noise``, ``check_every``, ``censor_factor`` optional."""
    from minibatch_momentum.grid import Grid
    from minibatch_momentum.io import write_parquet
    from minibatch_momentum.problems.system import load_problem
    from minibatch_momentum.theory import exact

    spec = _json_arg(args.spec)
    _required(spec, ("methods", "grid", "eps"))
    sampler, noise = _exact_spec(spec)
    grid = Grid(**spec["grid"])
    problem = load_problem(args.problem)
    model = exact.noise_model(problem, sampler, noise)
    weights = exact.initial_weights(problem)
    L = float(problem.eigvals[-1])
    t0 = time.perf_counter()
    table = exact.grid_table(
        model,
        weights,
        {m: (sizes, *grid.points(m, L)) for m, sizes in spec["methods"].items()},
        spec["eps"],
        check_every=int(spec.get("check_every", 1)),
        censor_factor=float(spec.get("censor_factor", 2.0)),
        progress=_log,
    )
    write_parquet(table, args.out, {"spec": spec, "seconds": time.perf_counter() - t0})
    _log(f"exact theory on the grid, {len(table)} (method, B) -> {args.out}")


def cmd_kappa_scan(args) -> None:
    """Spec keys: ``kappas``, ``d`` (required), ``profile`` (default geometric)."""
    from minibatch_momentum.io import write_parquet
    from minibatch_momentum.theory.exact import kappa_scan

    spec = _json_arg(args.spec)
    _required(spec, ("kappas", "d"))
    table = kappa_scan(
        [float(k) for k in spec["kappas"]],
        int(spec["d"]),
        spec.get("profile", "geometric"),
        progress=_log,
    )
    write_parquet(table, args.out, {"spec": spec})
    _log(f"exact kappa scan, {len(table)} rows -> {args.out}")


def add_parsers(sub) -> None:
    """Register this module's subcommands on ``mbm``'s subparsers."""
    s = sub.add_parser("theory", help="exact T*(B), knees, the rule's exact T(B), rate maps")
    s.add_argument("--problem", required=True)
    s.add_argument("--spec", required=True, help="theory spec as JSON (see cmd_theory)")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_theory)

    s = sub.add_parser("montecarlo", help="T1: exact E f(x_t) beside a Monte Carlo of the engine")
    s.add_argument("--problem", required=True)
    s.add_argument("--spec", required=True, help="T1 spec as JSON (see cmd_montecarlo)")
    s.add_argument("--out", required=True, help="output .parquet")
    s.set_defaults(func=cmd_montecarlo)

    s = sub.add_parser(
        "theory-grid", help="exact expected-loss counts tuned on a sweep's own grid (T2)"
    )
    s.add_argument("--problem", required=True)
    s.add_argument("--spec", required=True, help="spec as JSON (see cmd_theory_grid)")
    s.add_argument("--out", required=True, help="output .parquet")
    s.set_defaults(func=cmd_theory_grid)

    s = sub.add_parser("kappa-scan", help="exact critical batches over kappa (C7)")
    s.add_argument("--spec", required=True, help="spec as JSON (see cmd_kappa_scan)")
    s.add_argument("--out", required=True, help="output .parquet")
    s.set_defaults(func=cmd_kappa_scan)
