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

Each stage's commands sit in a module with their flags (its ``add_parsers``):
:mod:`.sweeps` (problem, sweep, summarize), :mod:`.theory` (theory, montecarlo,
theory-grid, kappa-scan), :mod:`.report` (claims, the figures, the paper), :mod:`.plan`,
:mod:`.seeds` (seed) and :mod:`.tools` (benchmark, solve, advise); :mod:`.flags` holds
the flags several share.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    # Imported here, not at the top: the workflow's code() takes along every module a
    # package's __init__ imports when it runs, and a seed job's code names cli.seeds.
    from minibatch_momentum.cli import plan, report, seeds, sweeps, theory, tools

    # the docstring's first paragraph, whole sentences (argparse re-wraps it)
    p = argparse.ArgumentParser(prog="mbm", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    # in the order of `mbm --help`
    for module in (sweeps, theory, report, plan, seeds, tools):
        module.add_parsers(sub)
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
