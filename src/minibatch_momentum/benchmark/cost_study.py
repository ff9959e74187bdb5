"""How the cost of a sweep grows: engine sweeps timed against the dimension ``d``, the
grid size ``R`` and the number of batch-size shards (:func:`cost_study`), their fitted
log-log slopes (1 = linear) and a per-step model, a fixed overhead plus the products'
flops (:func:`~minibatch_momentum.benchmark.cost.product_flops`) at a fitted rate; and
the measured cost of the mini-batch stream (:func:`sampler_seconds`). The extrapolation
(:mod:`~minibatch_momentum.benchmark.extrapolation`) prices a profile with both.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from minibatch_momentum.benchmark.cost import product_flops


@dataclass(frozen=True)
class CostSpec:
    """Engine sweeps timed against one variable at a time (the others fixed)."""

    n: int = 16384
    kappa: float = 1e3
    batch_size: int = 128  # B^2 <= n: the cheap sampler path, so the products dominate
    d: int = 256
    R: int = 200
    d_values: tuple[int, ...] = (64, 128, 256, 512)
    R_values: tuple[int, ...] = (50, 200, 800)
    shard_counts: tuple[int, ...] = (1, 2, 4, 8)
    steps: int = 300
    check_every: int = 20
    repeats: int = 5
    dtype: str = "float32"
    method: str = "hb"


QUICK_COST = CostSpec(
    n=2048, d=32, R=25, d_values=(16, 32), R_values=(9, 25), shard_counts=(1, 2), steps=40
)


def _stable_points(R: int, L: float, trace: float) -> tuple[np.ndarray, np.ndarray]:
    """``R`` (eta, beta) pairs that all run their full course (as in the
    throughput benchmark's grid, :mod:`~minibatch_momentum.benchmark.throughput`)."""
    eta = np.geomspace(1e-4, 0.02, R) / (L + trace)
    beta = 1 - np.geomspace(0.1, 0.9, R)[np.random.default_rng(0).permutation(R)]
    return eta, beta


def _time_sweep(problem, spec: CostSpec, R: int, seeds) -> float:
    """Best-of-``repeats`` seconds of engine shards at ``spec.batch_size``, one per seed."""
    import torch

    from minibatch_momentum.simulate.engine import StopRule, run_grid

    eta, beta = _stable_points(R, float(problem.eigvals[-1]), float(problem.eigvals.sum()))
    stop = StopRule(eps=1e-30, t_max=spec.steps, check_every=spec.check_every)
    dtype = getattr(torch, spec.dtype)
    method, B = spec.method, spec.batch_size
    best = math.inf
    for _ in range(spec.repeats):
        t0 = time.perf_counter()
        for seed in seeds:
            run_grid(problem, method, B, eta, beta, seed=seed, stop=stop, device="cpu", dtype=dtype)
        best = min(best, time.perf_counter() - t0)
    return best


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (1: linear growth)."""
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def cost_study(spec: CostSpec = CostSpec(), out=print) -> dict:
    """Engine sweep time against ``d``, ``R`` and the number of batch-size shards (each
    shard at ``spec.batch_size`` with its own seed), the log-log slope of each, and a
    per-step model ``seconds = overhead + flops / rate`` fitted to all the ``d`` and ``R``
    points (the products' flops, :func:`product_flops`). One CPU thread."""
    import torch

    from minibatch_momentum.problems.synthetic import gaussian_system

    torch.set_num_threads(1)
    B = spec.batch_size
    out(
        f"cost study: engine {spec.method} {spec.dtype}, B={B}, n={spec.n}, {spec.steps} steps "
        f"per shard, one thread, best of {spec.repeats}"
    )
    problems = {d: gaussian_system(d, spec.n, spec.kappa, seed=0) for d in spec.d_values}
    if spec.d not in problems:
        problems[spec.d] = gaussian_system(spec.d, spec.n, spec.kappa, seed=0)
    fixed = problems[spec.d]
    for p in problems.values():  # build the cached eigenbasis rows outside the timings
        _ = p.A_eig
    _time_sweep(fixed, spec, spec.R, [0])  # warm-up
    by_d = [(d, _time_sweep(problems[d], spec, spec.R, [0])) for d in spec.d_values]
    by_R = [(R, _time_sweep(fixed, spec, R, [0])) for R in spec.R_values]
    by_shards = [(k, _time_sweep(fixed, spec, spec.R, range(k))) for k in spec.shard_counts]
    slopes = {
        "d": loglog_slope(*zip(*by_d, strict=True)),
        "R": loglog_slope(*zip(*by_R, strict=True)),
        "shards": loglog_slope(*zip(*by_shards, strict=True)),
    }
    for name, rows, fixed_text in (
        ("d", by_d, f"R={spec.R}"),
        ("R", by_R, f"d={spec.d}"),
        ("shards", by_shards, f"d={spec.d}, R={spec.R}"),
    ):
        pts = ", ".join(f"{x}: {t:.3f}s" for x, t in rows)
        out(f"  time vs {name:<6} ({fixed_text}): {pts}; log-log slope {slopes[name]:.2f}")
    # Per-step model from the d and R points.
    flops = [product_flops(B, d, spec.R) for d, _ in by_d] + [
        product_flops(B, spec.d, R) for R, _ in by_R
    ]
    per_step = [t / spec.steps for _, t in by_d] + [t / spec.steps for _, t in by_R]
    X = np.column_stack([np.ones(len(flops)), np.asarray(flops, float)])
    coef, *_ = np.linalg.lstsq(X, np.asarray(per_step), rcond=None)
    overhead = max(float(coef[0]), 0.0)
    rate = 1.0 / float(coef[1]) if coef[1] > 0 else float("inf")
    out(
        f"  per-step model (least squares): {overhead * 1e6:.1f} us + flops at "
        f"{rate / 1e9:.2f} GFLOP/s"
    )
    return {
        "spec": asdict(spec),
        "by_d": by_d,
        "by_R": by_R,
        "by_shards": by_shards,
        "slopes": slopes,
        "model": {"overhead_s": overhead, "flops_per_s": rate, "dtype": spec.dtype},
    }


def sampler_seconds(
    n: int, batch_size: int, replace: bool = False, steps: int = 256, repeats: int = 3
) -> float:
    """Measured seconds per step of the mini-batch stream (CPU, this machine): the best of
    ``repeats`` fresh streams, each timed over ``steps`` rounded up to whole blocks (the
    stream draws batches in blocks)."""
    from minibatch_momentum.sampling.batches import _BLOCK, MiniBatches

    if not replace and batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds n={n} without replacement")
    steps = _BLOCK * max(1, math.ceil(steps / _BLOCK))
    best = math.inf
    for seed in range(repeats):
        s = MiniBatches(n, batch_size, seed, replace=replace)
        t0 = time.perf_counter()
        s.take(steps)
        best = min(best, time.perf_counter() - t0)
    return best / steps
