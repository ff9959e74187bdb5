"""``mbm plan``: what a workflow config costs, and whether it can succeed, before any
sweep runs."""

from __future__ import annotations

import time


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


def add_parsers(sub) -> None:
    """Register this module's subcommands on ``mbm``'s subparsers."""
    s = sub.add_parser(
        "plan",
        help="spectra, predicted steps to eps per shard and time, before any sweep runs",
    )
    s.add_argument("--configfile", required=True, help="workflow config (YAML)")
    s.add_argument("--schema", default=None, help="config schema (default: the checkout's)")
    s.add_argument("--json", default=None, help="also write the plan here as JSON")
    s.set_defaults(func=cmd_plan)
