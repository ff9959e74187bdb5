"""A profile's sweep time, extrapolated (:func:`profile_estimate`); nothing here is a
measurement of that profile.

Per shard (problem, sampler, method, ``B``; :func:`~minibatch_momentum.benchmark.cost.swept_pairs`):
steps per seed ``= min(t_max, censor_factor * T*(B))`` with ``T*(B)`` the exact theory's
tuned count (Gaussian closed form, rate-optimal ``(eta, beta)``; the grid-best is a
little above it, and a grid runs until ``censor_factor`` times its first converged
count), ``R = grid + 1`` runs (the rule's point rides along), all active to the end (an
upper bound on the products). Seconds per step
(:func:`~minibatch_momentum.benchmark.cost.shard_seconds`): on one CPU thread, a cost
model's overhead + flops / rate (:func:`~minibatch_momentum.benchmark.cost_study.cost_study`
fits one on this machine) + the measured sampler; on a GPU, ``max(latency + sampler,
flops / rate)`` (the host issues kernels and draws batches while the GPU computes). Job
start-up is added per shard.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict

import numpy as np

from minibatch_momentum.benchmark.cost import GPUAssumptions, shard_seconds, swept_pairs
from minibatch_momentum.benchmark.cost_study import sampler_seconds


def load_profile(path: str | os.PathLike) -> dict:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def exact_iterations(lam, method, Bs, eps, n, replace):
    """The exact theory's tuned ``T*`` per batch size
    (:func:`minibatch_momentum.theory.tuning.batch_scaling`, Gaussian closed form)."""
    from minibatch_momentum.theory.gaussian import Gaussian
    from minibatch_momentum.theory.tuning import batch_scaling

    return batch_scaling(Gaussian(lam, n, replace), method, Bs, eps=eps).iterations


def prescribed_spectrum(spec: dict) -> np.ndarray | None:
    """The eigenvalues a problem spec prescribes (``d``, ``n`` and ``kappa`` or
    ``alpha``), or ``None`` for a family without one (data, files)."""
    from minibatch_momentum.problems.system import spectrum

    if not ({"d", "n"} <= set(spec) and ("kappa" in spec or "alpha" in spec)):
        return None
    d = int(spec["d"])
    profile = spec.get("profile", "geometric")
    if "kappa" in spec:
        return spectrum(d, float(spec["kappa"]), profile)
    return spectrum(d, profile=profile, alpha=float(spec["alpha"]))


def profile_estimate(
    config: dict,
    model: dict,
    gpu: GPUAssumptions = GPUAssumptions(),  # noqa: B008 (frozen: immutable)
    out=print,
    theory_fn=None,
    sampler_fn=None,
) -> dict:
    """Extrapolated sweep time of a workflow profile (a config dict as in
    ``workflow/config/*.yaml``; see the module docstring), printed per (problem, sampler,
    method) and in all.

    ``model``: the per-step CPU model (``overhead_s``, ``flops_per_s``).
    ``theory_fn(eigvals, method, batch_sizes, eps, n, replace)`` returns ``T*`` per
    batch size (default: :func:`exact_iterations`); ``sampler_fn(n, B, replace)``
    seconds per step of the sampler (default: measured,
    :func:`~minibatch_momentum.benchmark.cost_study.sampler_seconds`).
    """
    theory_fn = exact_iterations if theory_fn is None else theory_fn
    sampler_fn = sampler_seconds if sampler_fn is None else sampler_fn
    shards, skipped = price_shards(config, model, gpu, theory_fn, sampler_fn)
    if not shards:
        raise ValueError("profile_estimate: no problem with d, n and kappa (or alpha) to estimate")
    result = {
        "shards": shards,
        "total_cpu_s": sum(s["cpu_s"] for s in shards),
        "total_gpu_s": sum(s["gpu_s"] for s in shards),
        "longest_gpu_shard": max(shards, key=lambda s: s["gpu_s"]),
        "gpu_assumptions": asdict(gpu),
        "skipped": skipped,
    }
    print_estimate(result, out)
    return result


def price_shards(config: dict, model: dict, gpu: GPUAssumptions, theory_fn, sampler_fn):
    """``(shards, skipped)``: a dict per shard of a problem with a prescribed spectrum
    (steps per seed, CPU and GPU seconds), and the problems without one."""
    stop = config["sweep"]["stop"]
    t_max = int(stop.get("t_max", 100_000))
    censor = float(stop.get("censor_factor", 2.0))
    eps = float(stop["eps"])
    sampler_cache: dict = {}
    shards, skipped = [], []
    for pair in swept_pairs(config):
        p = config["problems"][pair.problem]
        lam = prescribed_spectrum(p)
        if lam is None:
            if pair.problem not in skipped:
                skipped.append(pair.problem)
            continue
        d, n = int(p["d"]), int(p["n"])
        # The Gaussian closed form knows uniform sampling with or without replacement;
        # other samplers are estimated as i.i.d. draws.
        replace = pair.sampler != "without_replacement"
        for method, R, Bs in pair.methods:
            T = np.asarray(theory_fn(lam, method, Bs, eps, n, replace), float)
            for B, t_star in zip(Bs, T, strict=True):
                key = (n, B, replace)
                if key not in sampler_cache:
                    sampler_cache[key] = sampler_fn(n, B, replace)
                samp = sampler_cache[key]
                steps = t_max if not np.isfinite(t_star) else min(t_max, math.ceil(censor * t_star))
                cpu_s, gpu_s = shard_seconds(B, d, R, steps, pair.seeds, model, gpu, samp)
                shards.append(
                    {
                        "problem": pair.problem,
                        "sampler": pair.sampler,
                        "method": method,
                        "B": B,
                        "R": R,
                        "T_star": float(t_star),
                        "steps": int(steps),
                        "capped": bool(steps == t_max),
                        "cpu_s": cpu_s,
                        "gpu_s": gpu_s,
                    }
                )
    return shards, skipped


def print_estimate(result: dict, out=print) -> None:
    """The table of :func:`profile_estimate`: per (problem, sampler, method) the shards,
    how many ran to ``t_max``, CPU and GPU time and the longest GPU shard; then in all."""
    gpu, shards = result["gpu_assumptions"], result["shards"]
    out(
        "EXTRAPOLATION, not a measurement: profile sweep time from the exact theory's T*(B), "
        "the per-step model above and the measured sampler"
    )
    out(
        f"  GPU column assumes {gpu['latency_s'] * 1e6:.0f} us host time per step, "
        f"{gpu['flops_per_s'] / 1e12:.0f} TFLOP/s sustained, {gpu['startup_s']:.0f} s start-up "
        "per job"
    )
    out(
        f"  {'problem/sampler/method':<40} {'shards':>6} {'capped':>6} {'1 CPU thread':>13} "
        f"{'GPU (assumed)':>14} {'longest GPU shard':>18}"
    )
    groups: dict = {}
    for s in shards:
        groups.setdefault((s["problem"], s["sampler"], s["method"]), []).append(s)
    for (pname, sampler, method), rows in groups.items():
        longest = max(rows, key=lambda r: r["gpu_s"])
        label = f"{pname}/{sampler}/{method}"
        out(
            f"  {label:<40} {len(rows):>6} {sum(r['capped'] for r in rows):>6} "
            f"{sum(r['cpu_s'] for r in rows) / 3600:>12.1f}h "
            f"{sum(r['gpu_s'] for r in rows) / 60:>12.1f}min "
            f"{longest['gpu_s'] / 60:>9.1f}min (B={longest['B']})"
        )
    longest = result["longest_gpu_shard"]
    out(
        f"  sweeps in all: {len(shards)} shards, {result['total_cpu_s'] / 3600:.1f} "
        f"CPU-thread-hours; one GPU, shards in series: {result['total_gpu_s'] / 60:.0f} min; "
        f"longest GPU shard {longest['gpu_s'] / 60:.1f} min ({longest['problem']} "
        f"{longest['method']} B={longest['B']}). Not included: problem generation, theory, "
        "seed systems, figures."
    )
    if result["skipped"]:
        out(f"  not estimated (no prescribed spectrum): {', '.join(result['skipped'])}")
