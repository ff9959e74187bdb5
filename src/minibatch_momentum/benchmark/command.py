"""``mbm benchmark``: its flags (:func:`add_arguments`) and what each mode runs
(:func:`main`); ``python -m minibatch_momentum.benchmark`` takes the same flags.

    mbm benchmark               # quick profile's shard shape, then the cost study
    mbm benchmark --design      # docs/design.md section 6's 4096 x 512 float32 reference
    mbm benchmark --quick       # smaller, a smoke test (seconds; CI runs it)
    python -m minibatch_momentum.benchmark --cost   # only the cost study and the
                                # profile extrapolation (all flags: add_arguments)

Every mode except ``--cost`` times the engine against its peers
(:func:`~minibatch_momentum.benchmark.throughput.run`), then the exact theory: the tuned
``T*(B)`` of SGD, heavy ball and Nesterov for 12 batch sizes at d = 1000 (Gaussian closed
form). The default and ``--cost`` run the cost study
(:func:`~minibatch_momentum.benchmark.cost_study.cost_study`) and, with a profile config
(``--config``, default ``workflow/config/paper.yaml`` when present), extrapolate the
profile's sweep time from it
(:func:`~minibatch_momentum.benchmark.extrapolation.profile_estimate`): on one CPU thread
(from this machine's fit) and on a GPU under stated assumptions (per-step launch
latency, sustained flop rate). Both are extrapolations, not measurements.

Every mode ends with the job-time breakdown by rule of a workflow run
(:func:`~minibatch_momentum.benchmark.job_times.job_times`), read from the Snakemake
``benchmark:`` files under ``results/benchmarks`` (or ``--benchmarks DIR``) when that
folder exists.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minibatch_momentum.benchmark.cost import GPUAssumptions
from minibatch_momentum.benchmark.cost_study import cost_study
from minibatch_momentum.benchmark.extrapolation import load_profile, profile_estimate
from minibatch_momentum.benchmark.job_times import DEFAULT_BENCHMARKS, job_times
from minibatch_momentum.benchmark.throughput import (
    QUICK,
    REFERENCE,
    BenchmarkSpec,
    exact_theory,
    run,
)

# PyTorch and the engine are imported inside the functions that use them (in the modules
# above), so that the CLI can take this module's flags (add_arguments) without loading
# PyTorch for every command.

DEFAULT_PROFILE = Path("workflow/config/paper.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``mbm benchmark`` flags (cli.py may call this for its subcommand)."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small smoke-test sweep (seconds)")
    size.add_argument("--design", action="store_true", help="docs/design.md's 4096x512 fp32 sweep")
    size.add_argument(
        "--cost", action="store_true", help="only the cost study and the profile extrapolation"
    )
    parser.add_argument(
        "--config",
        default=None,
        help=f"profile to extrapolate (default {DEFAULT_PROFILE} when present)",
    )
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX comparison")
    parser.add_argument(
        "--gpu-latency-us",
        type=float,
        default=GPUAssumptions.latency_s * 1e6,
        help="assumed host time per engine step on a GPU (extrapolation only)",
    )
    parser.add_argument(
        "--gpu-tflops",
        type=float,
        default=GPUAssumptions.flops_per_s / 1e12,
        help="assumed sustained GPU GEMM rate (extrapolation only)",
    )
    parser.add_argument(
        "--benchmarks",
        default=None,
        help=f"Snakemake benchmark files to break down by rule (default {DEFAULT_BENCHMARKS}"
        " when present)",
    )
    parser.add_argument("--json", default=None, help="also write the results here as JSON")


def main(args) -> dict:
    """Run the mode ``args`` asks for (see the module docstring); returns the results and
    writes them to ``args.json`` when given."""
    quick = getattr(args, "quick", False)
    design = getattr(args, "design", False)
    cost_only = getattr(args, "cost", False)
    results: dict = {}
    if not cost_only:
        spec = QUICK if quick else REFERENCE if design else BenchmarkSpec()
        results["comparison"] = run(spec, use_jax=not getattr(args, "no_jax", False))
        results["exact_theory"] = exact_theory()
    if cost_only or not (quick or design):
        results["cost"] = cost_study()
        path = getattr(args, "config", None)
        path = Path(path) if path else DEFAULT_PROFILE
        if path.exists():
            gpu = GPUAssumptions(
                latency_s=getattr(args, "gpu_latency_us", 60.0) * 1e-6,
                flops_per_s=getattr(args, "gpu_tflops", 30.0) * 1e12,
            )
            print(f"profile {path}:")
            results["profile"] = profile_estimate(load_profile(path), results["cost"]["model"], gpu)
        else:
            print(f"no profile extrapolation: {path} not found (pass --config)")
    bench_dir = getattr(args, "benchmarks", None)
    bench_dir = Path(bench_dir) if bench_dir else DEFAULT_BENCHMARKS
    if bench_dir.is_dir():
        results["job_times"] = job_times(bench_dir)
    else:
        print(f"no job-time breakdown: {bench_dir} not found (run the workflow, or --benchmarks)")
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return results
