"""``mbm claims``, ``mbm figure``, ``mbm figure-grid``, ``mbm figure-kappa``,
``mbm paper-inputs``, ``mbm paper-pdf``: the claims report, the figures and the paper."""

from __future__ import annotations

import os

import numpy as np

from minibatch_momentum.figures.catalog import FIGURE_NAMES, MONTE_CARLO_FIGURE, PAIR_FIGURES
from minibatch_momentum.io import log as _log
from minibatch_momentum.io import parse_spec as _json_arg


def cmd_claims(args) -> None:
    from minibatch_momentum.io import write_json, write_text
    from minibatch_momentum.report import markdown
    from minibatch_momentum.report.scaling_claims import Tolerances
    from minibatch_momentum.report.sweep_claims import coverage_claims

    tol = Tolerances.from_dict(_json_arg(args.tolerances) if args.tolerances else None)
    # Theory folders and T1 tables belong to the summary of the same (problem, sampler):
    # matched by the last two path components, since some pairs have none.
    theory_dirs = {_pair_key(t): t for t in args.theory or []}
    mc_files = {_pair_key(os.path.dirname(m)): m for m in args.montecarlo or []}
    for what, keys in (("--theory", theory_dirs), ("--montecarlo", mc_files)):
        stray = set(keys) - {_pair_key(d) for d in args.summary + (args.scan or [])}
        if stray:
            raise ValueError(f"{what}: no --summary folder for {sorted(stray)}")
    claims, md = _pair_claims(args.summary, theory_dirs, mc_files, tol)
    if args.kappa_scan:
        claim = _c7_claim(args.kappa_scan, args.scan or [], theory_dirs, tol)
        claims.append(claim)
        md.append(markdown.c7_markdown(claim))
    coverage = coverage_claims(claims)
    if coverage:
        claims += coverage
        md.insert(0, markdown.coverage_markdown(coverage))
    if args.extra:
        from minibatch_momentum.cli.seeds import read_claims_file

        extra = [c for path in args.extra for c in read_claims_file(path)[0]]
        extra.sort(key=lambda c: c["id"])  # S1..S6, whatever the files' order
        claims += extra
        md.append(markdown.seed_markdown(extra))
    headline = _pair_key(args.summary[0])
    md.insert(0, markdown.summary_markdown(claims, headline))
    md.append(markdown.statements_markdown())
    write_json({"tolerances": tol.__dict__, "claims": claims}, args.json)
    write_text("\n".join(md), args.markdown)
    if args.html:
        from minibatch_momentum.report.html import markdown_to_html

        write_text(markdown_to_html("\n".join(md)), args.html)
    for c in claims:
        _log(f"{c['id']} {c['method']:>4}: {c['verdict']}")


def _exact_grid(theory_dirs: dict, summary_dir):
    """The exact theory tuned on the grid of a summary's pair (None where it has none)."""
    import pandas as pd

    t = theory_dirs.get(_pair_key(summary_dir))
    path = os.path.join(t, "grid_tuned.parquet") if t else None
    return pd.read_parquet(path) if path and os.path.exists(path) else None


def _pair_claims(summaries, theory_dirs: dict, mc_files: dict, tol) -> tuple[list, list]:
    """The claims of every (problem, sampler) pair and a Markdown section for each."""
    import pandas as pd

    from minibatch_momentum.analysis.summary import read_summary
    from minibatch_momentum.report.markdown import to_markdown
    from minibatch_momentum.report.sweep_claims import build_claims
    from minibatch_momentum.theory.exact import read_theory

    claims, md = [], []
    for i, d in enumerate(summaries):
        s = read_summary(d)
        t, m = theory_dirs.get(_pair_key(d)), mc_files.get(_pair_key(d))
        th = read_theory(t) if t is not None else {}
        c = build_claims(
            s,
            tol,
            source=str(d),
            exact_grid=_exact_grid(theory_dirs, d),
            exact=th.get("tstar"),
            montecarlo=pd.read_parquet(m) if m is not None else None,
        )
        if i > 0:  # only the first (headline) pair has figures of its own: the others are
            for claim in c:  # panels of the figure grid
                if claim["id"] in ("C1", "C2", "C3", "C4", "T2"):
                    claim["figure"] = GRID_FIGURE
        claims += c
        md.append(
            to_markdown(
                c,
                s["summary"]["problem"],
                rule_variants=s["summary"].get("rule"),
                noise=th.get("info", {}).get("noise", "gaussian" if th else None),
                info=s["summary"],
            )
        )
    return claims, md


def _c7_claim(kappa_scan, scan_dirs, theory_dirs: dict, tol) -> dict:
    """Claim C7 from the exact kappa scan and, with ``scan_dirs``, the scan's sweeps."""
    import pandas as pd

    from minibatch_momentum.analysis.summary import read_summary
    from minibatch_momentum.report.curves import scan_measurement
    from minibatch_momentum.report.records import claim_record
    from minibatch_momentum.report.sweep_claims import STATEMENTS, claim_c7

    scan = {_pair_key(d)[0]: read_summary(d) for d in scan_dirs}
    grids = {_pair_key(d)[0]: _exact_grid(theory_dirs, d) for d in scan_dirs}
    c7 = claim_c7(pd.read_parquet(kappa_scan), scan_measurement(scan, grids), tol)
    statement = STATEMENTS["C7"]
    return claim_record(
        "C7", statement, "hb", "kappa scan", "all", c7["checks"], c7["figure"], kappa_scan
    )


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

    if args.name == MONTE_CARLO_FIGURE:
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
        from minibatch_momentum.report.curves import exact_curves, measured_curves

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


# Figures that need the theory tables (--theory); those of the batch-scaling quantities
# (measured curves with bootstrap bars) add the exact theory on the same grid when
# --theory names a folder with grid_tuned.parquet.
THEORY_FIGURES = tuple(n for n, f in PAIR_FIGURES.items() if f.reads == "theory")
CURVE_FIGURES = tuple(n for n, f in PAIR_FIGURES.items() if f.reads == "grid")


def cmd_figure_kappa(args) -> None:
    import pandas as pd

    from minibatch_momentum.analysis.summary import read_summary
    from minibatch_momentum.figures import pairs as plots
    from minibatch_momentum.report.curves import exact_kappa_ratios, scan_measurement

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


def add_parsers(sub) -> None:
    """Register this module's subcommands on ``mbm``'s subparsers."""
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
    s.add_argument("name", choices=FIGURE_NAMES)
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
