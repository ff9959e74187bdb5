"""Throughput of the batched engine against the per-run loop most papers' code uses.

Both sides run the same sweep (one problem, a few batch sizes, an (eta, beta) grid,
the same mini-batches, the exact loss every 20 steps) on one CPU thread, in the same
process, one after the other. The per-run loop is ``torch.optim.SGD`` with autograd,
one run at a time; it is timed on a subset of each batch size's runs and its
throughput (run-steps per second) is what the ratio compares. Timing a subset is
fair because the loop's cost per run-step does not depend on which run it is; the
runs it times are also checked to end at the engine's loss.

    mbm benchmark               # the quick profile's problem and grid width, ~1 minute
    mbm benchmark --design      # DESIGN.md section 6's 4096 x 512 float32 reference
    mbm benchmark --quick       # smaller, a smoke test (seconds)

Every mode then times the exact theory: the tuned ``T*(B)`` of SGD, heavy ball and
Nesterov for 12 batch sizes at d = 1000 (Gaussian closed form, a few seconds).

The default sweep is the shape the pipeline actually runs (d = 64, n = 16384, float64,
250 (eta, beta) per shard, as in quick.yaml); the ``--design`` sweep (64 per shard) has
large rows, where both sides are bound by arithmetic and the ratio is smaller. Both are
printed in the README.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .engine import StopRule, run_grid
from .problems import gaussian_system
from .samplers import MiniBatches


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
    dtype: str = "float64"
    method: str = "hb"


DESIGN = BenchmarkSpec(
    n=4096, d=512, kappa=1e3, batch_sizes=(1, 64, 1024), num_eta=8, num_beta=8, dtype="float32"
)
QUICK = BenchmarkSpec(
    n=2048, d=32, batch_sizes=(1, 64, 512), num_eta=8, num_beta=8, steps=200, naive_runs=2
)


def _grid(spec: BenchmarkSpec, L: float, trace: float) -> tuple[np.ndarray, np.ndarray]:
    # Effective steps eta / (1 - beta) <= 0.2 / (L + tr H), a tenth of SGD's noise limit
    # at B = 1: every run does all its steps on both sides, so run-step counts are equal.
    eta = np.geomspace(1e-4, 0.02, spec.num_eta) / (L + trace)
    omb = np.geomspace(0.1, 0.9, spec.num_beta)
    e, b = np.meshgrid(eta, 1 - omb, indexing="ij")
    return e.ravel(), b.ravel()


def naive_loop(problem, method, batch_size, eta, beta, seed, steps, check_every, dtype):
    """One run, the usual way: autograd and ``torch.optim.SGD``. Returns the final
    relative loss."""
    A = torch.as_tensor(problem.A, dtype=dtype)
    b = torch.as_tensor(problem.b, dtype=dtype)
    H = torch.as_tensor(problem.H, dtype=dtype)
    x_star = torch.as_tensor(problem.x_star, dtype=dtype)
    w = torch.zeros(problem.d, dtype=dtype, requires_grad=True)
    opt = torch.optim.SGD([w], lr=eta, momentum=beta, nesterov=method == "nag")
    batches = MiniBatches(problem.n, batch_size, seed).take(steps)
    f0 = 0.5 * float(x_star @ H @ x_star)
    rel = 1.0
    for t, idx in enumerate(batches, start=1):
        opt.zero_grad()
        loss = 0.5 * ((A[idx] @ w - b[idx]) ** 2).mean()
        loss.backward()
        opt.step()
        if t % check_every == 0:
            with torch.no_grad():
                e = w - x_star
                rel = 0.5 * float(e @ H @ e) / f0
    return rel


def run(spec: BenchmarkSpec = BenchmarkSpec(), out=print) -> dict:
    torch.set_num_threads(1)
    dtype = getattr(torch, spec.dtype)
    problem = gaussian_system(spec.d, spec.n, spec.kappa, seed=0)
    L = float(problem.eigvals[-1])
    eta, beta = _grid(spec, L, float(problem.eigvals.sum()))
    R = eta.size
    stop = StopRule(eps=1e-30, t_max=spec.steps, check_every=spec.check_every)
    out(
        f"sweep: n={spec.n} d={spec.d} {spec.dtype} {spec.method}, {R} (eta, beta) x "
        f"B in {list(spec.batch_sizes)}, {spec.steps} steps, loss every {spec.check_every}"
    )
    out(
        f"{'B':>6} {'engine run-steps/s':>19} {'naive run-steps/s':>18} {'ratio':>7} "
        f"{'loss agrees':>12}"
    )
    rows = []
    # Warm up autograd and the allocator so the first timed loop pays no start-up.
    naive_loop(
        problem, spec.method, 1, float(eta[0]), float(beta[0]), 0, 50, spec.check_every, dtype
    )
    for B in spec.batch_sizes:
        t0 = time.perf_counter()
        res = run_grid(
            problem, spec.method, B, eta, beta, seed=0, stop=stop, device="cpu", dtype=dtype
        )
        t_engine = time.perf_counter() - t0
        picks = np.linspace(0, R - 1, spec.naive_runs).round().astype(int)
        t0 = time.perf_counter()
        finals = [
            naive_loop(
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
        t_naive = time.perf_counter() - t0
        agree = np.allclose(
            finals, res.final_loss[picks], rtol=1e-2 if spec.dtype == "float32" else 1e-8
        )
        if not np.all(res.steps_run == spec.steps):
            raise RuntimeError("a benchmark run stopped early; the grid must be stable")
        eng = R * spec.steps / t_engine
        nai = spec.naive_runs * spec.steps / t_naive
        rows.append(
            {
                "B": B,
                "engine": eng,
                "naive": nai,
                "ratio": eng / nai,
                "engine_s": t_engine,
                "naive_s_extrapolated": R * spec.steps / nai,
                "loss_agrees": bool(agree),
            }
        )
        out(f"{B:>6} {eng:>19,.0f} {nai:>18,.0f} {eng / nai:>6.0f}x {str(agree):>12}")
    total_engine = sum(r["engine_s"] for r in rows)
    total_naive = sum(r["naive_s_extrapolated"] for r in rows)
    out(
        f"whole sweep: engine {total_engine:.1f}s, naive loop {total_naive:.1f}s "
        f"(extrapolated from {spec.naive_runs} of {R} runs per B): "
        f"{total_naive / total_engine:.0f}x"
    )
    return {
        "rows": rows,
        "engine_s": total_engine,
        "naive_s": total_naive,
        "ratio": total_naive / total_engine,
    }


def exact_theory(d: int = 1000, kappa: float = 1e4, out=print) -> dict:
    """Time the exact tuned ``T*(B)`` (Gaussian closed form, rate-optimal ``(eta, beta)``
    per batch size) for 12 batch sizes ``1 .. 2048`` at ``d`` eigenvalues, per method."""
    from .theory import benchmark_batch_scaling

    res = benchmark_batch_scaling(d=d, kappa=kappa)
    seconds = {m: s for m, (_, s) in res.items()}
    total = sum(seconds.values())
    parts = ", ".join(f"{m} {s:.2f}s" for m, s in seconds.items())
    out(
        f"exact T*(B), Gaussian closed form, d={d}, kappa={kappa:g}, 12 batch sizes "
        f"(1..2048): {parts}; total {total:.2f}s"
    )
    return {"seconds": seconds, "total_s": total}


def main(args) -> None:
    run(QUICK if args.quick else DESIGN if args.design else BenchmarkSpec())
    exact_theory()
