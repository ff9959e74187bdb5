"""``mbm``: the command-line layer the workflow calls. Each subcommand reads files and
writes files; the work happens in the library.

    mbm problem   --spec JSON --out results/problems/NAME.npz
    mbm sweep     --problem P.npz --spec JSON --out RUNS.parquet   (one method, its batch sizes)
    mbm summarize --problem P.npz --runs RUNS... --out-dir results/summaries/NAME
    mbm theory    --problem P.npz --spec JSON --out-dir results/theory/NAME/SAMPLER
    mbm montecarlo --problem P.npz --spec JSON --out results/theory/NAME/SAMPLER/exact_vs_mc.parquet
    mbm claims    --summary DIR --theory DIR [--montecarlo T1.parquet] --tolerances JSON
                  [--extra SEED.claims.json...] --json OUT.json --markdown OUT.md
    mbm figure    NAME [--summary DIR] [--theory DIR] [--montecarlo T1.parquet] --out FIG.pdf
    mbm paper-inputs --claims CLAIMS.json --summary DIR --benchmarks DIR --out-dir paper/generated
    mbm paper-pdf paper/main.tex --out results/paper/main.pdf
    mbm benchmark
    mbm solve     --matrix A.npy --rhs b.npy [--out x.npy] [--json RESULT.json]
    mbm advise    --matrix A.npy   predicted steps against the batch size, before a solve
    mbm plan      --configfile CONFIG.yaml   what a config costs, and whether it can succeed
    mbm seed      SYSTEM ...   the seed systems S1-S7 (see minibatch_momentum.cli.seeds)

Bad input ends the command with a one-line message naming the offending field and
exit status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from minibatch_momentum.io import log as _log
from minibatch_momentum.io import parse_spec as _json_arg


def cmd_problem(args) -> None:
    from minibatch_momentum.problems.families import make_problem
    from minibatch_momentum.problems.system import save_problem

    spec = _json_arg(args.spec)
    _log(f"generating problem {spec}")
    problem = make_problem(spec)
    save_problem(problem, args.out, meta={"spec": spec})
    s = problem.spectral_summary()
    _log(
        f"kappa={s['kappa']:.4g} tr H/L={s['stable_rank']:.3g} "
        f"B*_SGD={s['B_sgd']:.3g} B_sat={s['B_sat']:.3g} -> {args.out}"
    )


def cmd_sweep(args) -> None:
    import torch

    from minibatch_momentum.checks import check_device
    from minibatch_momentum.io import write_parquet
    from minibatch_momentum.problems.system import load_problem
    from minibatch_momentum.simulate.sweep import job_shards, run_shards

    check_device(args.device, "--device")
    torch.set_num_threads(args.threads)
    spec = _json_arg(args.spec)
    specs = job_shards(spec)
    problem = load_problem(args.problem)
    t0 = time.perf_counter()
    df = run_shards(problem, specs, device=args.device, progress=_log)
    job = {k: v for k, v in specs[0].to_dict().items() if k != "batch_size"}
    write_parquet(df, args.out, {"spec": {**job, "batch_sizes": [s.batch_size for s in specs]}})
    _log(f"{len(df)} runs in {time.perf_counter() - t0:.1f}s -> {args.out}")


def cmd_summarize(args) -> None:
    from minibatch_momentum.analysis.summary import load_runs, summarize, write_summary
    from minibatch_momentum.problems.system import load_problem

    runs, meta = load_runs(args.runs)
    result = summarize(load_problem(args.problem), runs, meta)
    write_summary(result, args.out_dir)
    _log(f"summarized {len(runs)} runs from {len(meta)} shards -> {args.out_dir}")


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
    from minibatch_momentum.theory import METHODS
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
    for key in ("methods", "batch_sizes", "eps"):
        if key not in spec:
            raise KeyError(key)
    _check_theory_spec(spec)
    sampler, noise = _exact_spec(spec)
    problem = load_problem(args.problem)
    # m and replace of the sampler: its c_B and what the rule is handed; kaczmarz_block
    # (no closed form) and a sampler of the other problem kind stop here.
    n, replace = exact.sampler_info(problem, sampler)
    closure = exact.closure_for(problem, sampler, noise)
    meta = problem.spectral_summary()
    lam = problem.eigvals
    out = Path(args.out_dir)
    timing = {}

    t0 = time.perf_counter()
    table = exact.batch_scaling_table(
        lam,
        exact.initial_weights(problem),
        spec["methods"],
        spec["batch_sizes"],
        spec["eps"],
        n=n,
        replace=replace,
        rule=_rule_specs(spec),
        closure=closure,
        progress=_log,
    )
    timing["batch_scaling_s"] = time.perf_counter() - t0
    _log(f"exact T*(B) for {len(table)} (method, B) in {timing['batch_scaling_s']:.1f}s")

    t0 = time.perf_counter()
    knees = exact.knees(lam, spec["methods"], n=n, replace=replace, closure=closure)
    timing["knees_s"] = time.perf_counter() - t0
    _log(f"exact knees {knees} in {timing['knees_s']:.1f}s")

    hm = {**exact.HEATMAP_DEFAULTS, **(spec.get("heatmap") or {})}
    method = hm.pop("method")
    chosen = hm.pop("batch_sizes") or None
    heat_B = exact.heatmap_batches(spec["batch_sizes"], meta["B_sgd"], meta["B_sat"], chosen)
    if not spec.get("rate_maps", True):  # only the headline pair's figure draws them
        heat_B = []
    t0 = time.perf_counter()
    maps = exact.rate_map_table(lam, method, heat_B, n=n, replace=replace, closure=closure, **hm)
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


def cmd_montecarlo(args) -> None:
    """Spec keys: ``eps``, ``t1`` (``methods``, ``batch_size``, ``runs``, ``max_steps``,
    ``confidence``, optional ``seed``) required; ``sampler``, ``noise`` (sets the horizon's
    model), ``rule`` optional; ``problem`` is carried along."""
    import pandas as pd
    import torch

    from minibatch_momentum import theory
    from minibatch_momentum.io import write_parquet
    from minibatch_momentum.problems.system import load_problem
    from minibatch_momentum.theory import exact
    from minibatch_momentum.theory.rule import rule_for_spectrum

    torch.set_num_threads(1)
    spec = _json_arg(args.spec)
    for key in ("eps", "t1"):
        if key not in spec:
            raise KeyError(key)
    t1 = spec["t1"]
    for key in ("methods", "batch_size", "runs", "max_steps", "confidence"):
        if key not in t1:
            raise KeyError(f"t1.{key}")
    sampler, noise = _exact_spec(spec)
    rules = _rule_specs(spec)
    problem = load_problem(args.problem)
    n, replace = exact.sampler_info(problem, sampler)
    closure = exact.closure_for(problem, sampler, noise)
    weights = exact.initial_weights(problem)
    B = int(t1["batch_size"])
    frames, info = [], {}
    for method in t1["methods"]:
        if method not in rules:
            raise ValueError(f"rule: no rule variant for t1 method {method!r}")
        eta, beta = rule_for_spectrum(
            method, B, problem.eigvals, n=n, replace=replace, **rules[method]
        )
        # The horizon: until the theory's E f (the spec's noise model) reaches eps, at most
        # max_steps.
        if closure is None:
            T = theory.gaussian_iterations(
                problem.eigvals,
                weights,
                method,
                B,
                eta,
                beta,
                spec["eps"],
                t_max=int(t1["max_steps"]),
                n=n,
                replace=replace,
            )
        else:
            T = theory.closure_iterations(
                closure, weights, method, B, eta, beta, spec["eps"], t_max=int(t1["max_steps"])
            )
        steps = int(min(T, t1["max_steps"]))
        t0 = time.perf_counter()
        frames.append(
            exact.exact_vs_monte_carlo(
                problem,
                method,
                B,
                eta,
                beta,
                runs=int(t1["runs"]),
                steps=steps,
                seed=int(t1.get("seed", 0)),
                sampler=sampler,
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
    for key in ("methods", "grid", "eps"):
        if key not in spec:
            raise KeyError(key)
    sampler, noise = _exact_spec(spec)
    grid = Grid(**spec["grid"])
    problem = load_problem(args.problem)
    n, replace = exact.sampler_info(problem, sampler)
    closure = exact.closure_for(problem, sampler, noise)
    weights = exact.initial_weights(problem)
    L = float(problem.eigvals[-1])
    t0 = time.perf_counter()
    table = exact.grid_table(
        problem.eigvals,
        weights,
        {m: (sizes, *grid.points(m, L)) for m, sizes in spec["methods"].items()},
        spec["eps"],
        n=n,
        replace=replace,
        closure=closure,
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
    for key in ("kappas", "d"):
        if key not in spec:
            raise KeyError(key)
    table = kappa_scan(
        [float(k) for k in spec["kappas"]],
        int(spec["d"]),
        spec.get("profile", "geometric"),
        progress=_log,
    )
    write_parquet(table, args.out, {"spec": spec})
    _log(f"exact kappa scan, {len(table)} rows -> {args.out}")


def cmd_claims(args) -> None:
    import pandas as pd

    from minibatch_momentum.analysis.summary import read_summary
    from minibatch_momentum.io import write_json, write_text
    from minibatch_momentum.report import claims as cl
    from minibatch_momentum.theory.exact import read_theory

    tol = cl.Tolerances.from_dict(_json_arg(args.tolerances) if args.tolerances else None)
    # Theory folders and T1 tables belong to the summary of the same (problem, sampler):
    # matched by the last two path components, since some pairs have none.
    theory_dirs = {_pair_key(t): t for t in args.theory or []}
    mc_files = {_pair_key(os.path.dirname(m)): m for m in args.montecarlo or []}
    for what, keys in (("--theory", theory_dirs), ("--montecarlo", mc_files)):
        stray = set(keys) - {_pair_key(d) for d in args.summary + (args.scan or [])}
        if stray:
            raise ValueError(f"{what}: no --summary folder for {sorted(stray)}")

    def exact_grid(d):
        t = theory_dirs.get(_pair_key(d))
        path = os.path.join(t, "grid_tuned.parquet") if t else None
        return pd.read_parquet(path) if path and os.path.exists(path) else None

    claims, md = [], []
    for i, d in enumerate(args.summary):
        s = read_summary(d)
        t, m = theory_dirs.get(_pair_key(d)), mc_files.get(_pair_key(d))
        th = read_theory(t) if t is not None else {}
        c = cl.build_claims(
            s,
            tol,
            source=str(d),
            exact_grid=exact_grid(d),
            exact=th.get("tstar"),
            montecarlo=pd.read_parquet(m) if m is not None else None,
        )
        if i > 0:  # only the first (headline) pair has figures of its own: the others are
            for claim in c:  # panels of the figure grid
                if claim["id"] in ("C1", "C2", "C3", "C4", "T2"):
                    claim["figure"] = GRID_FIGURE
        claims += c
        md.append(
            cl.to_markdown(
                c,
                s["summary"]["problem"],
                rule_variants=s["summary"].get("rule"),
                noise=th.get("info", {}).get("noise", "gaussian" if th else None),
                info=s["summary"],
            )
        )
    if args.kappa_scan:
        scan = {_pair_key(d)[0]: read_summary(d) for d in args.scan or []}
        grids = {_pair_key(d)[0]: exact_grid(d) for d in args.scan or []}
        c7 = cl.claim_c7(pd.read_parquet(args.kappa_scan), cl.scan_measurement(scan, grids), tol)
        claim = {
            "id": "C7",
            "statement": cl.STATEMENTS["C7"],
            "method": "hb",
            "problem": "kappa scan",
            "sampler": "all",
            "verdict": cl._verdict(c7["checks"]),
            "checks": c7["checks"],
            "figure": c7["figure"],
            "source": args.kappa_scan,
        }
        claims.append(claim)
        md.append(
            "# Claim C7: the critical batch against kappa\n\n"
            + "\n".join(
                [
                    "| claim | method | verdict | check | measured [interval] | predicted | band |",
                    "|---|---|---|---|---|---|---|",
                    *cl.check_rows([claim]),
                    "",
                ]
            )
        )
    coverage = cl.coverage_claims(claims)
    if coverage:
        claims += coverage
        md.insert(0, cl.coverage_markdown(coverage))
    if args.extra:
        from minibatch_momentum.cli.seeds import read_claims_file

        extra = [c for path in args.extra for c in read_claims_file(path)[0]]
        extra.sort(key=lambda c: c["id"])  # S1..S6, whatever the files' order
        claims += extra
        md.append(cl.seed_markdown(extra))
    headline = _pair_key(args.summary[0])
    md.insert(0, cl.summary_markdown(claims, headline))
    md.append(cl.statements_markdown())
    write_json({"tolerances": tol.__dict__, "claims": claims}, args.json)
    write_text("\n".join(md), args.markdown)
    if args.html:
        from minibatch_momentum.report.html import markdown_to_html

        write_text(markdown_to_html("\n".join(md)), args.html)
    for c in claims:
        _log(f"{c['id']} {c['method']:>4}: {c['verdict']}")


GRID_FIGURE = "figures/coverage/tstar_grid.pdf"


def _pair_key(path) -> tuple[str, str]:
    """``(problem, sampler)`` from a ``.../<problem>/<sampler>`` folder path."""
    parts = os.path.normpath(path).split(os.sep)
    if len(parts) < 2:
        raise ValueError(f"{path}: expected a .../<problem>/<sampler> folder")
    return parts[-2], parts[-1]


def _nearest(available, targets) -> list[int]:
    available = np.asarray(sorted(available), float)
    picks = [int(available[np.argmin(np.abs(np.log(available) - np.log(t)))]) for t in targets]
    return sorted(set(picks))


def cmd_figure(args) -> None:
    from minibatch_momentum.analysis.summary import read_summary
    from minibatch_momentum.figures import pairs as plots

    if args.name == "exact_vs_monte_carlo":
        import pandas as pd

        if args.montecarlo is None:
            raise ValueError("--montecarlo: figure exact_vs_monte_carlo needs the T1 table")
        plots.exact_vs_monte_carlo(pd.read_parquet(args.montecarlo), args.out)
        _log(f"figure {args.name} -> {args.out}")
        return
    if args.name in THEORY_FIGURES:
        from minibatch_momentum.theory.exact import read_theory

        if args.theory is None:
            raise ValueError(f"--theory: figure {args.name} needs the theory folder")
        th = read_theory(args.theory)
    if args.summary is None:
        raise ValueError(f"--summary: figure {args.name} needs the summary folder")
    s = read_summary(args.summary)
    meta, eps = s["summary"]["problem"], s["summary"]["eps"]
    if args.name == "theory_vs_empirical":
        plots.theory_vs_empirical(s["tuned"], th["tstar"], th["info"]["knees"], meta, eps, args.out)
    elif args.name == "rule_vs_grid":
        plots.rule_vs_grid(s["tuned"], s["rule"], th["tstar"], meta, eps, args.factor, args.out)
    elif args.name == "rate_heatmap":
        method = th["info"]["heatmap"]["method"]
        plots.rate_heatmap(th["rate_maps"], s["tuned"], th["tstar"], meta, args.out, method)
    elif args.name in CURVE_FIGURES:
        from minibatch_momentum.report.claims import exact_curves, measured_curves

        det = {k: float(v) for k, v in s["summary"]["deterministic_T"].items()}
        grid = os.path.join(args.theory, "grid_tuned.parquet") if args.theory else None
        exact = None
        if grid and os.path.exists(grid):
            import pandas as pd

            exact = exact_curves(pd.read_parquet(grid), det)
        measured = measured_curves(s["grid"], det)
        if args.name == "tstar_vs_batch":
            plots.tstar_vs_batch(measured, exact, meta, eps, args.out)
        else:
            getattr(plots, args.name)(measured, exact, meta, args.out)
    elif args.name == "loss_curves":
        sizes = set(s["curves"]["batch_size"])
        picks = _nearest(sizes, [1, meta["B_sgd"], meta["B_sat"], max(sizes)])
        plots.loss_curves(s["curves"], meta, picks, eps, args.out)
    _log(f"figure {args.name} -> {args.out}")


def cmd_figure_grid(args) -> None:
    from minibatch_momentum.analysis.summary import read_summary
    from minibatch_momentum.figures import pairs as plots
    from minibatch_momentum.theory.exact import read_theory

    theory = {_pair_key(t): t for t in args.theory}
    panels, eps = [], None
    for d in args.summary:
        s = read_summary(d)
        eps = s["summary"]["eps"]
        th = read_theory(theory[_pair_key(d)]) if _pair_key(d) in theory else {}
        panels.append(
            {
                "title": " / ".join(_pair_key(d)),
                "tuned": s["tuned"],
                "meta": s["summary"]["problem"],
                "exact": th.get("tstar"),
                "knees": th.get("info", {}).get("knees"),
            }
        )
    plots.tstar_grid(panels, eps, args.out)
    _log(f"figure grid of {len(panels)} pairs -> {args.out}")


THEORY_FIGURES = ("theory_vs_empirical", "rule_vs_grid", "rate_heatmap", "exact_vs_monte_carlo")
# Figures of the batch-scaling quantities: measured curves with bootstrap bars, and the
# exact theory on the same grid when --theory names a folder with grid_tuned.parquet.
CURVE_FIGURES = ("tstar_vs_batch", "efficiency_vs_batch", "speedup_vs_batch")
FIGURES = (*CURVE_FIGURES, "loss_curves", *THEORY_FIGURES)


def cmd_figure_kappa(args) -> None:
    import pandas as pd

    from minibatch_momentum.analysis.summary import read_summary
    from minibatch_momentum.figures import pairs as plots
    from minibatch_momentum.report.claims import exact_kappa_ratios, scan_measurement

    k, r = exact_kappa_ratios(pd.read_parquet(args.kappa_scan))
    theory = {_pair_key(t)[0]: t for t in args.theory or []}
    grids = {
        name: pd.read_parquet(os.path.join(t, "grid_tuned.parquet")) for name, t in theory.items()
    }
    scan = {_pair_key(d)[0]: read_summary(d) for d in args.scan or []}
    measured = scan_measurement(scan, grids) if len(scan) else None
    plots.kappa_scan(k, r, measured, args.out)
    _log(f"figure kappa_scan -> {args.out}")


def cmd_paper_inputs(args) -> None:
    from minibatch_momentum.report.paper import paper_inputs

    nums = paper_inputs(args.claims, args.summary, args.benchmarks, args.out_dir)
    _log(f"{len(nums)} numbers and the claims and timing tables -> {args.out_dir}")


def cmd_paper_pdf(args) -> None:
    from minibatch_momentum.report.paper import build_pdf

    build_pdf(args.tex, args.out, progress=_log)
    _log(f"-> {args.out}")


def cmd_plan(args) -> None:
    """Print the pre-flight plan (minibatch_momentum.benchmark.plan) of a workflow config; exit 2
    when the config is invalid or a shard not opted in is predicted hopeless."""
    from minibatch_momentum.benchmark.plan import format_plan, hopeless_message, plan, refused
    from minibatch_momentum.config import SCHEMA, load_config

    config = load_config(args.configfile, args.schema or SCHEMA)
    t0 = time.perf_counter()
    result = plan(config)
    print(format_plan(result, config))
    print(f"(planned in {time.perf_counter() - t0:.1f} s)")
    if args.json:
        from minibatch_momentum.io import write_json

        write_json(
            {
                "problems": {
                    p: {"form": q.form, "n": q.n, "d": q.d, "source": q.source, **q.quantities}
                    for p, q in result["problems"].items()
                },
                "shards": [s.__dict__ for s in result["shards"]],
                "eps": result["eps"],
                "t_max": result["t_max"],
            },
            args.json,
        )
    bad = refused(config, result)
    if bad:
        raise ValueError(hopeless_message(config, result, bad))


def cmd_benchmark(args) -> None:
    from minibatch_momentum.benchmark import main as bench

    bench(args)


def _batch_size(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer, got {text!r}") from None
    return value


def _user_matrix(args, need_rhs: bool):
    from minibatch_momentum.problems.matrix_files import read_system

    form = "psd" if args.sampler == "coordinate" else "rows"
    A, b, _ = read_system(args.matrix, getattr(args, "rhs", None), form, args.max_n, args.max_d)
    if need_rhs and b is None:
        raise ValueError(f"rhs: give --rhs (or an .npz holding 'b' beside 'A'), {args.matrix!r}")
    return A, b


def cmd_solve(args) -> None:
    from minibatch_momentum.io import atomic_path, write_json
    from minibatch_momentum.solver import solve

    A, b = _user_matrix(args, need_rhs=True)
    res = solve(
        A,
        b,
        method=args.method,
        sampler=args.sampler,
        batch_size=args.batch_size,
        tol=args.tol,
        max_passes=args.max_passes,
        seed=args.seed,
        device=args.device,
        verbose=_log,
    )
    if args.out:
        with atomic_path(args.out) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, res.x)
    summary = res.summary()
    if args.json:
        write_json({**summary, "history": res.history.tolist()}, args.json)
    print(json.dumps(summary, indent=1))


def cmd_advise(args) -> None:
    from minibatch_momentum.solver import advise

    A, _ = _user_matrix(args, need_rhs=False)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(advise(A, methods=methods, sampler=args.sampler, tol=args.tol).report())


def _add_user_matrix_arguments(s) -> None:
    from minibatch_momentum.problems.matrix_files import MAX_D, MAX_N

    s.add_argument("--matrix", required=True, help="A as .npy, .npz (array 'A') or .mtx")
    s.add_argument(
        "--sampler", default="uniform", help="uniform | kaczmarz | coordinate (symmetric PSD A)"
    )
    s.add_argument("--tol", type=float, default=1e-6, help="relative residual ||Ax-b||/||b||")
    s.add_argument("--max-n", type=int, default=MAX_N, help="refuse more rows than this")
    s.add_argument("--max-d", type=int, default=MAX_D, help="refuse more columns than this")


def build_parser() -> argparse.ArgumentParser:
    # the docstring's first paragraph, whole sentences (argparse re-wraps it)
    p = argparse.ArgumentParser(prog="mbm", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("problem", help="generate a problem file and its metadata JSON")
    s.add_argument("--spec", required=True, help="problem config entry as JSON")
    s.add_argument("--out", required=True, help="output .npz (metadata goes beside as .json)")
    s.set_defaults(func=cmd_problem)

    s = sub.add_parser("sweep", help="run one method's sweep shards (its batch sizes)")
    s.add_argument("--problem", required=True)
    s.add_argument(
        "--spec", required=True, help="job spec as JSON (see sweep.job_shards and sweep.ShardSpec)"
    )
    s.add_argument("--out", required=True)
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, ...")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("summarize", help="tune and tabulate a problem's shards")
    s.add_argument("--problem", required=True)
    s.add_argument("--runs", required=True, nargs="+")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_summarize)

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

    s = sub.add_parser("claims", help="judge the claims; write JSON and Markdown")
    s.add_argument(
        "--summary", required=True, nargs="+", help="summary folder(s), the headline pair first"
    )
    s.add_argument(
        "--theory", nargs="+", default=None, help="theory folders of the pairs that have one"
    )
    s.add_argument(
        "--montecarlo", nargs="+", default=None, help="T1 tables of the pairs that have one"
    )
    s.add_argument("--tolerances", default=None, help="tolerances as JSON")
    s.add_argument("--kappa-scan", default=None, help="exact kappa scan table (C7)")
    s.add_argument(
        "--scan", nargs="+", default=None, help="summary folders of the kappa-scan problems"
    )
    s.add_argument(
        "--extra",
        nargs="+",
        default=None,
        help="claims files of the seed systems (mbm seed ...): entries appended to the report",
    )
    s.add_argument("--json", required=True)
    s.add_argument("--markdown", required=True)
    s.add_argument("--html", default=None, help="the Markdown report rendered as an HTML page")
    s.set_defaults(func=cmd_claims)

    s = sub.add_parser("figure", help="render one figure (PDF, and PNG beside it)")
    s.add_argument("name", choices=FIGURES)
    s.add_argument("--summary", default=None, help="summary folder (all but exact_vs_monte_carlo)")
    s.add_argument("--theory", default=None, help="theory folder (figures with exact theory)")
    s.add_argument("--montecarlo", default=None, help="T1 table (exact_vs_monte_carlo)")
    s.add_argument(
        "--factor", type=float, default=1.5, help="rule_vs_grid: the C4 tolerance to draw"
    )
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure)

    s = sub.add_parser(
        "figure-grid", help="T*(B) of every (problem, sampler) pair in one figure (C5, C6)"
    )
    s.add_argument("--summary", nargs="+", required=True, help=".../<problem>/<sampler> folders")
    s.add_argument("--theory", nargs="*", default=[], help="theory folders of the pairs with one")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure_grid)

    s = sub.add_parser("figure-kappa", help="claim C7: B_crit,HB / B_crit,SGD against kappa")
    s.add_argument("--kappa-scan", required=True, help="exact kappa scan table")
    s.add_argument("--scan", nargs="*", default=[], help="summary folders of the scan problems")
    s.add_argument("--theory", nargs="*", default=[], help="their theory folders")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure_kappa)

    s = sub.add_parser("paper-inputs", help="the paper's generated numbers and tables")
    s.add_argument("--claims", required=True, help="results/claims.json")
    s.add_argument("--summary", required=True, help="the headline problem's summary folder")
    s.add_argument("--benchmarks", required=True, help="folder of Snakemake benchmark files")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_paper_inputs)

    s = sub.add_parser("paper-pdf", help="build the paper with latexmk")
    s.add_argument("tex", help="paper/main.tex")
    s.add_argument("--out", required=True, help="where the PDF goes")
    s.set_defaults(func=cmd_paper_pdf)

    s = sub.add_parser(
        "plan",
        help="spectra, predicted steps to eps per shard and time, before any sweep runs",
    )
    s.add_argument("--configfile", required=True, help="workflow config (YAML)")
    s.add_argument("--schema", default=None, help="config schema (default: the checkout's)")
    s.add_argument("--json", default=None, help="also write the plan here as JSON")
    s.set_defaults(func=cmd_plan)

    from minibatch_momentum.cli.seeds import add_parser as add_seed_parser

    add_seed_parser(sub)

    from minibatch_momentum.benchmark import add_arguments as add_benchmark_arguments

    s = sub.add_parser(
        "benchmark", help="engine vs per-run loops and JAX, GEMM peak, cost study; exact T*(B)"
    )
    add_benchmark_arguments(s)
    s.set_defaults(func=cmd_benchmark)

    s = sub.add_parser("solve", help="solve a consistent system A x = b with the momentum rule")
    _add_user_matrix_arguments(s)
    s.add_argument("--rhs", default=None, help="b as .npy or .mtx (or 'b' inside the .npz)")
    s.add_argument("--method", default="hb", help="hb | nag | sgd")
    s.add_argument("--batch-size", type=_batch_size, default="auto", help="auto or an integer")
    s.add_argument("--max-passes", type=float, default=10_000, help="budget, passes over A")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, ...")
    s.add_argument("--out", default=None, help="write x here (.npy)")
    s.add_argument("--json", default=None, help="write the result summary and history here")
    s.set_defaults(func=cmd_solve)

    s = sub.add_parser("advise", help="predicted steps to the tolerance against the batch size")
    _add_user_matrix_arguments(s)
    s.add_argument("--methods", default="sgd,hb,nag", help="comma-separated: sgd, hb, nag")
    s.set_defaults(func=cmd_advise)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        prefix = "missing field: " if isinstance(exc, KeyError) else ""
        print(f"mbm {args.command}: error: {prefix}{msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
