"""``mbm``: the command-line layer the workflow calls. Each subcommand reads files and
writes files; the work happens in the library.

    mbm problem   --spec JSON --out results/problems/NAME.npz
    mbm sweep     --problem P.npz --spec JSON --out SHARD.parquet
    mbm summarize --problem P.npz --runs SHARD... --out-dir results/summaries/NAME
    mbm claims    --summary DIR --tolerances JSON --json OUT.json --markdown OUT.md
    mbm figure    NAME --summary DIR --out figures/NAME.pdf
    mbm benchmark

Bad input ends the command with a one-line message naming the offending field and
exit status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _log(msg: str) -> None:
    print(f"[mbm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--spec is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("--spec must be a JSON object")
    return value


def cmd_problem(args) -> None:
    from .problems import make_problem, save_problem

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

    from .problems import load_problem
    from .sweep import ShardSpec, run_shard, write_parquet

    torch.set_num_threads(args.threads)
    spec = ShardSpec.from_dict(_json_arg(args.spec))
    problem = load_problem(args.problem)
    t0 = time.perf_counter()
    df = run_shard(problem, spec, device=args.device, progress=_log)
    write_parquet(df, args.out, {"spec": spec.to_dict()})
    _log(f"{len(df)} runs in {time.perf_counter() - t0:.1f}s -> {args.out}")


def cmd_summarize(args) -> None:
    from .problems import load_problem
    from .summary import load_runs, summarize, write_summary

    runs, meta = load_runs(args.runs)
    result = summarize(load_problem(args.problem), runs, meta)
    write_summary(result, args.out_dir)
    _log(f"summarized {len(runs)} runs from {len(meta)} shards -> {args.out_dir}")


def cmd_claims(args) -> None:
    from .claims import Tolerances, build_claims, to_markdown
    from .io import write_json, write_text
    from .summary import read_summary

    tol = Tolerances.from_dict(_json_arg(args.tolerances) if args.tolerances else None)
    claims, md = [], []
    for d in args.summary:
        s = read_summary(d)
        meta = s["summary"]["problem"]
        det = {k: float(v) for k, v in s["summary"]["deterministic_T"].items()}
        c = build_claims(s["tuned"], s["tuned_runs"], meta, det, tol, source=str(d))
        claims += c
        md.append(to_markdown(c, meta))
    write_json({"tolerances": tol.__dict__, "claims": claims}, args.json)
    write_text("\n".join(md), args.markdown)
    for c in claims:
        _log(f"{c['id']} {c['method']:>4}: {c['verdict']}")


def _nearest(available, targets) -> list[int]:
    available = np.asarray(sorted(available), float)
    picks = [int(available[np.argmin(np.abs(np.log(available) - np.log(t)))]) for t in targets]
    return sorted(set(picks))


def cmd_figure(args) -> None:
    from . import plots
    from .summary import read_summary

    s = read_summary(args.summary)
    meta, eps = s["summary"]["problem"], s["summary"]["eps"]
    if args.name == "tstar_vs_batch":
        plots.tstar_vs_batch(s["tuned"], meta, eps, args.out)
    elif args.name == "speedup_vs_batch":
        plots.speedup_vs_batch(s["tuned_runs"], meta, args.out)
    elif args.name == "loss_curves":
        sizes = set(s["curves"]["batch_size"])
        picks = _nearest(sizes, [1, meta["B_sgd"], meta["B_sat"], max(sizes)])
        plots.loss_curves(s["curves"], meta, picks, eps, args.out)
    _log(f"figure {args.name} -> {args.out}")


FIGURES = ("tstar_vs_batch", "speedup_vs_batch", "loss_curves")


def cmd_benchmark(args) -> None:
    from .benchmark import main as bench

    bench(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mbm", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("problem", help="generate a problem file and its metadata JSON")
    s.add_argument("--spec", required=True, help="problem config entry as JSON")
    s.add_argument("--out", required=True, help="output .npz (metadata goes beside as .json)")
    s.set_defaults(func=cmd_problem)

    s = sub.add_parser("sweep", help="run one sweep shard")
    s.add_argument("--problem", required=True)
    s.add_argument("--spec", required=True, help="shard spec as JSON (see sweep.ShardSpec)")
    s.add_argument("--out", required=True)
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, ...")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("summarize", help="tune and tabulate a problem's shards")
    s.add_argument("--problem", required=True)
    s.add_argument("--runs", required=True, nargs="+")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_summarize)

    s = sub.add_parser("claims", help="judge the claims; write JSON and Markdown")
    s.add_argument("--summary", required=True, nargs="+", help="summary folder(s)")
    s.add_argument("--tolerances", default=None, help="tolerances as JSON")
    s.add_argument("--json", required=True)
    s.add_argument("--markdown", required=True)
    s.set_defaults(func=cmd_claims)

    s = sub.add_parser("figure", help="render one figure (PDF, and PNG beside it)")
    s.add_argument("name", choices=FIGURES)
    s.add_argument("--summary", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure)

    s = sub.add_parser("benchmark", help="engine vs a per-run torch.optim.SGD loop")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small smoke-test sweep (seconds)")
    size.add_argument("--design", action="store_true", help="DESIGN.md's 4096x512 fp32 sweep")
    s.set_defaults(func=cmd_benchmark)
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
