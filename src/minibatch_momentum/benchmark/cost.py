"""What a profile's shards cost: which shards a config sweeps, and the per-step model
that prices them. Torch-free: the plan (:mod:`~minibatch_momentum.benchmark.plan`, which
the Snakefile imports) prices its shards here, and so does the benchmark's extrapolation
(:mod:`~minibatch_momentum.benchmark.extrapolation`).

A shard is one (problem, sampler, method, batch size) sweep: every seed of its study
runs the ``(eta, beta)`` grid, with the momentum rule's point riding along
(:func:`swept_pairs`: the pairs, methods and batch sizes of
:mod:`~minibatch_momentum.config`, one source with ``workflow/rules/common.smk``). Its
time is ``seeds * steps`` engine steps (:func:`shard_seconds`): on one CPU thread a fixed
overhead plus the products' flops (:func:`product_flops`) at a fitted rate plus the
sampler; on a GPU under stated assumptions (:class:`GPUAssumptions`).
"""

from __future__ import annotations

from dataclasses import dataclass

from minibatch_momentum.config import all_pairs, method_batches, study_methods, study_value


@dataclass(frozen=True)
class SweptPair:
    """The shards of one swept (problem, sampler) pair: its study's grid and seeds, and
    per method ``(method, R, batch sizes)`` with ``R`` the runs of a shard (the grid's
    points and the rule's)."""

    problem: str
    sampler: str
    grid: dict
    seeds: int
    methods: list[tuple[str, int, list[int]]]


def runs(grid: dict, method: str) -> int:
    """``R``, the runs of a shard: the grid's points for ``method`` (``eta`` alone for SGD)
    and the rule's point."""
    return grid["num_eta"] * (1 if method == "sgd" else grid["num_beta"]) + 1


def swept_pairs(config: dict) -> list[SweptPair]:
    """Every pair the workflow sweeps (the scan pairs of claim C7 too), each method at the
    batch sizes its jobs run, in the workflow's order."""
    out = []
    for problem, sampler in all_pairs(config):
        grid = study_value(config, problem, "grid")[0]
        methods = [
            (m, runs(grid, m), method_batches(config, problem, m))
            for m in study_methods(config, problem)
        ]
        seeds = int(study_value(config, problem, "seeds")[0])
        out.append(SweptPair(problem, sampler, grid, seeds, methods))
    return out


def product_flops(B: int, d: int, R: int) -> int:
    """Flops of the matrix products of one engine step with a shared batch: ``A_S^T (A_S
    Y)`` (``2 * 2 B d R``), or ``(A_S^T A_S) Y`` when the engine picks it as cheaper."""
    # the cheaper of the two, which is the engine's choice (engine._use_gram); computed
    # here without importing the engine, so the torch-free plan can price shards
    return min(2 * B * d * d + 2 * d * d * R, 4 * B * d * R)


@dataclass(frozen=True)
class GPUAssumptions:
    """What the GPU column of the extrapolation
    (:func:`~minibatch_momentum.benchmark.extrapolation.profile_estimate`) assumes (not
    measured here)."""

    latency_s: float = 60e-6  # host time per engine step: ~6 kernel launches + a sync / 10
    flops_per_s: float = 30e12  # sustained fp32 GEMM rate (H100 FP32 peak is ~50-67 TFLOP/s)
    startup_s: float = 10.0  # per job: Python + torch + CUDA context, load the problem


# What `mbm plan` assumes without a cost study of its own: the per-step model cost_study
# fitted on the project's CPU (README, "How cost grows": ~55 us + flops at ~97 GFLOP/s,
# float32, one thread) and the sampler's ~0.2-0.5 ms for 16384 distinct rows per step.
REFERENCE_MODEL = {"overhead_s": 55e-6, "flops_per_s": 97e9, "dtype": "float32"}
REFERENCE_SAMPLER_S_PER_ROW = 2e-8


def reference_sampler_seconds(n: int, batch_size: int, replace: bool = False) -> float:
    """Seconds per step of the mini-batch stream from :data:`REFERENCE_SAMPLER_S_PER_ROW`
    (a stand-in for the measured
    :func:`~minibatch_momentum.benchmark.cost_study.sampler_seconds` where nothing may be
    timed)."""
    return REFERENCE_SAMPLER_S_PER_ROW * batch_size


def shard_seconds(
    B: int, d: int, R: int, steps: int, seeds: int, model: dict, gpu: GPUAssumptions, sampler_s
) -> tuple[float, float]:
    """``(CPU seconds, GPU seconds)`` of one shard of ``seeds`` runs of ``steps`` steps
    with ``R`` grid points: on one CPU thread ``model``'s overhead + flops / rate + the
    sampler per step; on a GPU ``max(latency + sampler, flops / rate)`` per step (the
    host issues kernels and draws batches while the GPU computes) plus the job's
    start-up."""
    fl = product_flops(B, d, R)
    cpu_step = model["overhead_s"] + fl / model["flops_per_s"] + sampler_s
    gpu_step = max(gpu.latency_s + sampler_s, fl / gpu.flops_per_s)
    return seeds * steps * cpu_step, gpu.startup_s + seeds * steps * gpu_step
