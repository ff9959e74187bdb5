"""Throughput of the batched engine against its peers (:func:`run`), and the time of the
exact theory (:func:`exact_theory`).

Every side runs the same sweep (one problem, a few batch sizes, an (eta, beta) grid, the
same mini-batches, the exact loss every 20 steps) on one CPU thread, in the same
process, one after the other:

- the engine (:func:`~minibatch_momentum.simulate.engine.run_grid`): the whole grid at once, two
  matrix products per step;
- the peers of :mod:`~minibatch_momentum.benchmark.peers`: (a) ``torch.optim.SGD`` with
  autograd, one run at a time; (b) a hand-written single-run loop; (c) JAX
  ``jit(vmap(scan))`` with the shared mini-batches (drawing them counted, as on the
  other sides; compiling reported apart), when ``import jax`` works (an optional extra;
  without it the column is skipped with a note).

The per-run loops (a) and (b) are timed on a subset of each batch size's runs and their
throughput (run-steps per second) is what the ratios compare: their cost per run-step does
not depend on which run it is. Every side's final losses are checked against the
engine's. The machine's GEMM peak (a large square matrix product on one thread) is
measured too, and for B >= 64 the share of it the engine reaches (the flops of the two
products it does per step, ``2 * 2 B d R``, or the Gram form when that is cheaper:
:func:`~minibatch_momentum.benchmark.cost.product_flops`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from minibatch_momentum.benchmark.cost import product_flops
from minibatch_momentum.benchmark.peers import (
    gemm_peak,
    hand_loop,
    jax_status,
    jax_sweep,
    naive_loop,
)


@dataclass(frozen=True)
class BenchmarkSpec:
    n: int = 16384
    d: int = 64
    kappa: float = 4096
    batch_sizes: tuple[int, ...] = (1, 16, 256, 2048)
    num_eta: int = 25
    num_beta: int = 10
    steps: int = 1000
    check_every: int = 20
    naive_runs: int = 4
    hand_runs: int = 8
    dtype: str = "float64"
    method: str = "hb"
    gemm_size: int = 1024


REFERENCE = BenchmarkSpec(
    n=4096, d=512, kappa=1e3, batch_sizes=(1, 64, 1024), num_eta=8, num_beta=8, dtype="float32"
)
QUICK = BenchmarkSpec(
    n=2048,
    d=32,
    batch_sizes=(1, 64, 512),
    num_eta=8,
    num_beta=8,
    steps=200,
    naive_runs=2,
    hand_runs=4,
    gemm_size=512,
)


def _grid(spec: BenchmarkSpec, L: float, trace: float) -> tuple[np.ndarray, np.ndarray]:
    # Effective steps eta / (1 - beta) <= 0.2 / (L + tr H), a tenth of SGD's noise limit
    # at B = 1: every run does all its steps on every side, so run-step counts are equal.
    eta = np.geomspace(1e-4, 0.02, spec.num_eta) / (L + trace)
    omb = np.geomspace(0.1, 0.9, spec.num_beta)
    e, b = np.meshgrid(eta, 1 - omb, indexing="ij")
    return e.ravel(), b.ravel()


def run(spec: BenchmarkSpec = BenchmarkSpec(), out=print, use_jax: bool = True) -> dict:
    """Time the engine and the peers (a), (b) and, when JAX is present, (c) on the same
    sweep; measure the GEMM peak and the engine's share of it at ``B >= 64``."""
    import torch

    from minibatch_momentum.problems.synthetic import gaussian_system
    from minibatch_momentum.simulate.engine import use_threads

    use_threads(1)
    dtype = getattr(torch, spec.dtype)
    problem = gaussian_system(spec.d, spec.n, spec.kappa, seed=0)
    eta, beta = _grid(spec, float(problem.eigvals[-1]), float(problem.eigvals.sum()))
    jax_note = jax_status() if use_jax else "disabled (--no-jax)"
    peak = gemm_peak(spec.dtype, spec.gemm_size, use_jax=jax_note is None)
    _print_header(spec, eta.size, peak, jax_note, out)
    # Warm up autograd and the allocator so the first timed loop pays no start-up.
    for loop in (naive_loop, hand_loop):
        loop(problem, spec.method, 1, float(eta[0]), float(beta[0]), 0, 50, 10, dtype)
    rows = []
    for B in spec.batch_sizes:
        rows.append(_time_batch_size(problem, spec, B, eta, beta, dtype, peak, jax_note))
        _print_row(rows[-1], out)
    result = _summary(rows, spec, eta.size, peak, jax_note)
    _print_summary(result, eta.size, out)
    return result


def _print_header(spec: BenchmarkSpec, R: int, peak: dict, jax_note: str | None, out) -> None:
    out(
        f"sweep: n={spec.n} d={spec.d} {spec.dtype} {spec.method}, {R} (eta, beta) x "
        f"B in {list(spec.batch_sizes)}, {spec.steps} steps, loss every {spec.check_every}"
    )
    libs = ", ".join(f"{k} {v:.1f}" for k, v in peak["by_library"].items())
    out(
        f"GEMM peak, {peak['size']}^2 {peak['dtype']} product on one thread: "
        f"{peak['gflops']:.1f} GFLOP/s ({libs})"
    )
    out(
        "(a) torch.optim.SGD + autograd per run; (b) hand-written per-run loop; "
        "(c) JAX jit(vmap(scan)) over the grid"
        + ("" if jax_note is None else f" -- skipped: JAX not available ({jax_note})")
    )
    out(
        f"{'B':>6} {'engine rs/s':>12} {'(a) rs/s':>10} {'(b) rs/s':>10} {'(c) rs/s':>11} "
        f"{'vs (a)':>7} {'vs (b)':>7} {'vs (c)':>7} {'GEMM %':>7} {'agree':>6}"
    )


def _time_batch_size(problem, spec: BenchmarkSpec, B: int, eta, beta, dtype, peak, jax_note):
    """One row of the table: every side's throughput at batch size ``B`` (run-steps per
    second), the ratios, the engine's share of the GEMM peak, and whether the final
    losses agree."""
    from minibatch_momentum.simulate.engine import StopRule, run_grid

    R = eta.size
    stop = StopRule(eps=1e-30, t_max=spec.steps, check_every=spec.check_every)
    rtol = 1e-2 if spec.dtype == "float32" else 1e-6
    # A first short run loads the compiled small-batch chunk (Numba's cache, or compiling
    # it once per machine), reported apart like JAX's compiling.
    warm = StopRule(eps=1e-30, t_max=spec.check_every, check_every=spec.check_every)
    t0 = time.perf_counter()
    run_grid(problem, spec.method, B, eta, beta, seed=0, stop=warm, device="cpu", dtype=dtype)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_grid(problem, spec.method, B, eta, beta, seed=0, stop=stop, device="cpu", dtype=dtype)
    t_engine = time.perf_counter() - t0
    if not np.all(res.steps_run == spec.steps):
        raise RuntimeError("a benchmark run stopped early; the grid must be stable")
    rates, agree = _time_loops(problem, spec, B, eta, beta, dtype, res.final_loss, rtol)
    jax_rate = jax_compile = None
    if jax_note is None:
        jax_rate, jax_compile, jax_agree = _time_jax(
            problem, spec, B, eta, beta, res.final_loss, rtol
        )
        agree &= jax_agree
    eng = R * spec.steps / t_engine
    gflops = product_flops(B, spec.d, R) * spec.steps / t_engine / 1e9
    return {
        "B": B,
        "engine": eng,
        "naive": rates["naive"],
        "hand": rates["hand"],
        "jax": jax_rate,
        "jax_compile_s": jax_compile,
        "ratio": eng / rates["naive"],
        "ratio_hand": eng / rates["hand"],
        "ratio_jax": None if jax_rate is None else eng / jax_rate,
        "engine_s": t_engine,
        "engine_warmup_s": t_warm,
        "naive_s_extrapolated": R * spec.steps / rates["naive"],
        "hand_s_extrapolated": R * spec.steps / rates["hand"],
        "jax_s": None if jax_rate is None else R * spec.steps / jax_rate,
        "engine_gflops": gflops,
        "peak_fraction": gflops / peak["gflops"],
        "torch_peak_fraction": gflops / peak["by_library"]["torch"],
        "loss_agrees": agree,
    }


def _time_loops(problem, spec: BenchmarkSpec, B: int, eta, beta, dtype, engine_final, rtol):
    """``({"naive", "hand"}: run-steps per second, agree)``: the per-run loops (a) and (b)
    on a subset of the grid's runs, and whether their final losses are the engine's."""
    R = eta.size
    agree, rates = True, {}
    for name, loop, k in (
        ("naive", naive_loop, spec.naive_runs),
        ("hand", hand_loop, spec.hand_runs),
    ):
        picks = np.linspace(0, R - 1, min(k, R)).round().astype(int)
        t0 = time.perf_counter()
        finals = [
            loop(
                problem,
                spec.method,
                B,
                float(eta[r]),
                float(beta[r]),
                0,
                spec.steps,
                spec.check_every,
                dtype,
            )
            for r in picks
        ]
        rates[name] = picks.size * spec.steps / (time.perf_counter() - t0)
        agree &= bool(np.allclose(finals, engine_final[picks], rtol=rtol))
    return rates, agree


def _time_jax(problem, spec: BenchmarkSpec, B: int, eta, beta, engine_final, rtol):
    """``(run-steps per second, compile seconds, agree)`` of the JAX sweep (c)."""
    from minibatch_momentum.sampling.batches import MiniBatches

    # Drawing the batches counts, as it does inside the engine and the loops.
    t0 = time.perf_counter()
    batches = MiniBatches(problem.n, B, 0).take(spec.steps).numpy()
    t_draw = time.perf_counter() - t0
    finals, t_jax, t_compile = jax_sweep(
        problem, spec.method, B, eta, beta, batches, spec.check_every, spec.dtype
    )
    rate = eta.size * spec.steps / (t_draw + t_jax)
    return rate, t_compile, bool(np.allclose(finals, engine_final, rtol=rtol))


def _print_row(row: dict, out) -> None:
    jc = "-" if row["jax"] is None else f"{row['jax']:,.0f}"
    jr = "-" if row["jax"] is None else f"{row['ratio_jax']:.2f}x"
    frac = f"{100 * row['peak_fraction']:.0f}%" if row["B"] >= 64 else "-"
    out(
        f"{row['B']:>6} {row['engine']:>12,.0f} {row['naive']:>10,.0f} {row['hand']:>10,.0f} "
        f"{jc:>11} {row['ratio']:>6.0f}x {row['ratio_hand']:>6.1f}x {jr:>7} {frac:>7} "
        f"{str(row['loss_agrees']):>6}"
    )


def _summary(rows: list[dict], spec: BenchmarkSpec, R: int, peak: dict, jax_note) -> dict:
    """The whole sweep's seconds and ratios per side, and the engine's range of GEMM
    peak shares at ``B >= 64``."""
    total = {
        k: sum(r[k] for r in rows)
        for k in ("engine_s", "naive_s_extrapolated", "hand_s_extrapolated")
    }
    result = {
        "spec": asdict(spec),
        "rows": rows,
        "gemm_peak": peak,
        "jax": "ok" if jax_note is None else jax_note,
        "engine_s": total["engine_s"],
        "engine_warmup_s": sum(r["engine_warmup_s"] for r in rows),
        "naive_s": total["naive_s_extrapolated"],
        "hand_s": total["hand_s_extrapolated"],
        "ratio": total["naive_s_extrapolated"] / total["engine_s"],
        "ratio_hand": total["hand_s_extrapolated"] / total["engine_s"],
    }
    big = [r for r in rows if r["B"] >= 64]
    result["peak_fraction_b64"] = (
        None
        if not big
        else {
            "min": min(r["peak_fraction"] for r in big),
            "max": max(r["peak_fraction"] for r in big),
        }
    )
    if jax_note is None:
        result["jax_s"] = sum(r["jax_s"] for r in rows)
        result["jax_compile_s"] = sum(r["jax_compile_s"] for r in rows)
        result["ratio_jax"] = result["jax_s"] / total["engine_s"]
    return result


def _print_summary(result: dict, R: int, out) -> None:
    spec = result["spec"]
    line = (
        f"whole sweep: engine {result['engine_s']:.2f}s (a first short run per B, loading "
        f"the compiled chunk, took {result['engine_warmup_s']:.1f}s more); "
        f"(a) {result['naive_s']:.1f}s "
        f"({result['ratio']:.0f}x, extrapolated from {spec['naive_runs']} of {R} runs per B); "
        f"(b) {result['hand_s']:.1f}s ({result['ratio_hand']:.1f}x, from "
        f"{min(spec['hand_runs'], R)} runs per B)"
    )
    if result["jax"] == "ok":
        line += (
            f"; (c) JAX {result['jax_s']:.2f}s ({result['ratio_jax']:.2f}x; compiling took "
            f"{result['jax_compile_s']:.1f}s more)"
        )
    out(line)
    big = [r for r in result["rows"] if r["B"] >= 64]
    if big:
        f, peak = result["peak_fraction_b64"], result["gemm_peak"]
        torch_peak = peak["by_library"]["torch"]
        ft = [r["torch_peak_fraction"] for r in big]
        out(
            f"engine at B >= 64: {100 * f['min']:.0f}-{100 * f['max']:.0f}% of the machine's "
            f"measured {peak['dtype']} GEMM peak ({peak['gflops']:.1f} GFLOP/s, {peak['best']}); "
            f"{100 * min(ft):.0f}-{100 * max(ft):.0f}% of PyTorch's own ({torch_peak:.1f})"
        )


def exact_theory(d: int = 1000, kappa: float = 1e4, out=print) -> dict:
    """Time the exact tuned ``T*(B)`` (Gaussian closed form, rate-optimal ``(eta, beta)``
    per batch size) for 12 batch sizes ``1 .. 2048`` at ``d`` eigenvalues, per method."""
    from minibatch_momentum.theory.tuning import benchmark_batch_scaling

    res = benchmark_batch_scaling(d=d, kappa=kappa)
    seconds = {m: s for m, (_, s) in res.items()}
    total = sum(seconds.values())
    parts = ", ".join(f"{m} {s:.2f}s" for m, s in seconds.items())
    out(
        f"exact T*(B), Gaussian closed form, d={d}, kappa={kappa:g}, 12 batch sizes "
        f"(1..2048): {parts}; total {total:.2f}s"
    )
    return {"seconds": seconds, "total_s": total}
