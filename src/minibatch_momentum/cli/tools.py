"""``mbm benchmark``, ``mbm solve``, ``mbm advise``: the engine's benchmarks, and the
momentum rule on a user's own system A x = b."""

from __future__ import annotations

import argparse
import json

import numpy as np

from minibatch_momentum.io import log as _log


def cmd_benchmark(args) -> None:
    from minibatch_momentum.benchmark.command import main as bench

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


# The flags of `mbm solve` that are solve()'s keyword arguments, under the same names.
SOLVE_OPTIONS = ("method", "sampler", "batch_size", "tol", "max_passes", "seed", "device")


def cmd_solve(args) -> None:
    from minibatch_momentum.io import atomic_path, write_json
    from minibatch_momentum.solver import solve

    A, b = _user_matrix(args, need_rhs=True)
    options = {k: getattr(args, k) for k in SOLVE_OPTIONS}
    res = solve(A, b, **options, verbose=_log)
    if args.out:
        with atomic_path(args.out) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, res.x)
    summary = res.summary()
    if args.json:
        write_json({**summary, "history": res.history.tolist()}, args.json)
    print(json.dumps(summary, indent=1))


def cmd_advise(args) -> None:
    from minibatch_momentum.solver.advise import advise

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


def add_parsers(sub) -> None:
    """Register this module's subcommands on ``mbm``'s subparsers."""
    from minibatch_momentum.benchmark.command import add_arguments as add_benchmark_arguments

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
