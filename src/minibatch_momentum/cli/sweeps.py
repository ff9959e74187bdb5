"""``mbm problem``, ``mbm sweep``, ``mbm summarize``: the problems, the sweeps' shards and
their summaries (tuned counts and the tables the claims read)."""

from __future__ import annotations

import time

from minibatch_momentum.cli.flags import add_device_arguments
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
    from minibatch_momentum.checks import check_device
    from minibatch_momentum.io import write_parquet
    from minibatch_momentum.problems.system import load_problem
    from minibatch_momentum.simulate.engine import use_threads
    from minibatch_momentum.simulate.sweep import job_shards, run_shards

    check_device(args.device, "--device")
    use_threads(args.threads)
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


def add_parsers(sub) -> None:
    """Register this module's subcommands on ``mbm``'s subparsers."""
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
    add_device_arguments(s)
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("summarize", help="tune and tabulate a problem's shards")
    s.add_argument("--problem", required=True)
    s.add_argument("--runs", required=True, nargs="+")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_summarize)
