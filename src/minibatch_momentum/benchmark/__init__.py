"""Throughput of the batched engine against its peers, and how the cost of a sweep grows.

Every side runs the same sweep (one problem, a few batch sizes, an (eta, beta) grid, the
same mini-batches, the exact loss every 20 steps) on one CPU thread, in the same
process, one after the other:

- the engine (:func:`~minibatch_momentum.simulate.engine.run_grid`): the whole grid at once, two
  matrix products per step;
- (a) the per-run loop most papers' code uses: ``torch.optim.SGD`` with autograd, one run
  at a time;
- (b) a hand-written single-run loop: plain tensor operations (gather the batch, two
  matrix-vector products, the momentum update in place), no optimizer class, no
  autograd, one run at a time;
- (c) JAX ``jit(vmap(scan))`` with the shared mini-batches (drawing them counted, as on
  the other sides; compiling reported apart), when ``import jax`` works (an optional
  extra; without it the column is skipped with a note).

The per-run loops (a) and (b) are timed on a subset of each batch size's runs and their
throughput (run-steps per second) is what the ratios compare: their cost per run-step does
not depend on which run it is. Every side's final losses are checked against the
engine's. The machine's GEMM peak (a large square matrix product on one thread) is
measured too, and for B >= 64 the share of it the engine reaches (the flops of the two
products it does per step, ``2 * 2 B d R``, or the Gram form when that is cheaper).

    mbm benchmark               # quick profile's shard shape, then the cost study
    mbm benchmark --design      # docs/design.md section 6's 4096 x 512 float32 reference
    mbm benchmark --quick       # smaller, a smoke test (seconds; CI runs it)
    python -m minibatch_momentum.benchmark --cost   # only the cost study and the
                                # profile extrapolation (all flags: add_arguments)

Every mode ends with the job-time breakdown by rule of a workflow run (:func:`job_times`),
read from the Snakemake ``benchmark:`` files under ``results/benchmarks`` (or
``--benchmarks DIR``) when that folder exists.

Every mode except ``--cost`` then times the exact theory: the tuned ``T*(B)`` of SGD,
heavy ball and Nesterov for 12 batch sizes at d = 1000 (Gaussian closed form).

The cost study (:func:`cost_study`) times engine sweeps against the dimension ``d``, the
grid size ``R`` and the number of batch-size shards, prints the fitted log-log slopes
(1 = linear) and a per-step model (a fixed overhead plus flops at a fitted rate). With a
profile config (``--config``, default ``workflow/config/paper.yaml`` when present),
:func:`profile_estimate` extrapolates the profile's sweep time from that model, the
measured sampler cost and the exact theory's ``T*(B)`` (for the number of steps a shard
runs): on one CPU thread (from this machine's fit) and on a GPU under stated
assumptions (per-step launch latency, sustained flop rate). Both are extrapolations,
not measurements.

The flags beyond ``--quick``/``--design`` are defined by :func:`add_arguments`;
``python -m minibatch_momentum.benchmark`` takes them all.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# PyTorch and the engine are imported inside the functions that use them, so that cli.py
# can take this module's flags (add_arguments) without loading PyTorch for every command.

DEFAULT_PROFILE = Path("workflow/config/paper.yaml")


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


def product_flops(B: int, d: int, R: int) -> int:
    """Flops of the matrix products of one engine step with a shared batch: ``A_S^T (A_S
    Y)`` (``2 * 2 B d R``), or ``(A_S^T A_S) Y`` when the engine picks it as cheaper."""
    # the cheaper of the two, which is the engine's choice (engine._use_gram); computed
    # here without importing the engine, so the torch-free plan can price shards
    return min(2 * B * d * d + 2 * d * d * R, 4 * B * d * R)


# ------------------------------------------------------------------------------ the peers


def naive_loop(problem, method, batch_size, eta, beta, seed, steps, check_every, dtype):
    """(a) One run, the usual way: autograd and ``torch.optim.SGD``. Returns the final
    relative loss."""
    import torch

    from minibatch_momentum.sampling.batches import MiniBatches

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


def hand_loop(problem, method, batch_size, eta, beta, seed, steps, check_every, dtype):
    """(b) One run written by hand: plain tensor operations, no optimizer class and no
    autograd. ``v = x_t - x_{t-1}``; the gradient is taken at ``y = x + gamma v``
    (``gamma = beta`` for Nesterov, else 0), then ``v <- beta v - eta g``, ``x <- x + v``:
    the engine's recursion (and ``torch.optim.SGD``'s) for one run. Returns the final
    relative loss."""
    import torch

    from minibatch_momentum.sampling.batches import MiniBatches

    A = torch.as_tensor(problem.A, dtype=dtype)
    b = torch.as_tensor(problem.b, dtype=dtype)
    H = torch.as_tensor(problem.H, dtype=dtype)
    x_star = torch.as_tensor(problem.x_star, dtype=dtype)
    x = torch.zeros(problem.d, dtype=dtype)
    v = torch.zeros_like(x)
    nag = method == "nag"
    step = -eta / batch_size
    batches = MiniBatches(problem.n, batch_size, seed).take(steps)
    f0 = 0.5 * float(x_star @ H @ x_star)
    rel = 1.0
    for t, idx in enumerate(batches, start=1):
        y = x + beta * v if nag else x
        As = A.index_select(0, idx)
        r = torch.mv(As, y).sub_(b.index_select(0, idx))
        v.mul_(beta).add_(torch.mv(As.T, r), alpha=step)
        x.add_(v)
        if t % check_every == 0:
            e = x - x_star
            rel = 0.5 * float(e @ (H @ e)) / f0
    return rel


def jax_status() -> str | None:
    """``None`` when JAX can be imported, else the reason it cannot (for the printout)."""
    try:
        import jax  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def _one_cpu():
    """Run the body on one CPU: every thread of this process is pinned to a single core
    (Linux), then given back its affinity. XLA runs its own thread pool, whatever
    ``XLA_FLAGS`` asks, so this keeps JAX to one core like the other sides."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
        before = {t: os.sched_getaffinity(t) for t in tids}
    except (AttributeError, OSError):
        yield
        return
    cpus = os.sched_getaffinity(0)
    pinned = []
    try:
        for t in tids:
            try:
                os.sched_setaffinity(t, {min(cpus)})
                pinned.append(t)
            except OSError:  # a thread that has just ended
                pass
        yield
    finally:
        for t in pinned:
            try:
                os.sched_setaffinity(t, before[t])
            except OSError:
                pass


def _import_jax():
    # One XLA CPU thread, like the other sides; only takes effect if JAX was not yet
    # imported in this process.
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()
    import jax

    return jax


def jax_sweep(problem, method, batch_size, eta, beta, batches, check_every, dtype="float64"):
    """(c) The grid as JAX ``jit(vmap(scan))``: one run's recursion as a ``lax.scan`` over
    the steps (an inner scan of ``check_every`` steps, then the exact loss), ``vmap``-ed
    over the ``(eta, beta)`` pairs so every run shares each step's batch, compiled once.

    ``batches``: ``(steps, B)`` indices (``steps`` a multiple of ``check_every``).
    Works in the eigenbasis of ``H`` like the engine. Returns ``(final relative losses
    (R,), run seconds, compile seconds)``. Needs JAX (see :func:`jax_status`).
    """
    jax = _import_jax()
    import jax.numpy as jnp
    from jax import lax

    batches = np.asarray(batches)
    steps = batches.shape[0]
    if steps % check_every:
        raise ValueError("jax_sweep: steps must be a multiple of check_every")
    x64 = dtype == "float64"
    previous = bool(jax.config.read("jax_enable_x64"))
    jax.config.update("jax_enable_x64", x64)
    try:
        jdt = jnp.float64 if x64 else jnp.float32
        A = jnp.asarray(problem.A_eig, dtype=jdt)
        lam = jnp.asarray(problem.eigvals, dtype=jdt)
        e0_np = problem.eigvecs.T @ (-problem.x_star)
        e0 = jnp.asarray(e0_np, dtype=jdt)
        inv_f0 = 1.0 / (0.5 * float(problem.eigvals @ (e0_np * e0_np)))
        idx = jnp.asarray(batches.reshape(steps // check_every, check_every, -1).astype(np.int32))
        nag = method == "nag"
        inv_B = 1.0 / batch_size

        def one_run(eta_r, beta_r, A, lam, e0, idx):
            def step(carry, i):
                e, v = carry
                y = e + beta_r * v if nag else e
                As = A[i]
                g = As.T @ (As @ y)
                v = beta_r * v - (eta_r * inv_B) * g
                return (e + v, v), None

            def block(carry, ib):
                carry, _ = lax.scan(step, carry, ib)
                e = carry[0]
                return carry, 0.5 * inv_f0 * jnp.dot(lam, e * e)

            _, losses = lax.scan(block, (e0, jnp.zeros_like(e0)), idx)
            return losses

        fn = jax.jit(jax.vmap(one_run, in_axes=(0, 0, None, None, None, None)))
        args = (jnp.asarray(eta, dtype=jdt), jnp.asarray(beta, dtype=jdt), A, lam, e0, idx)
        t0 = time.perf_counter()
        compiled = fn.lower(*args).compile()
        t_compile = time.perf_counter() - t0
        with _one_cpu():
            t0 = time.perf_counter()
            losses = compiled(*args).block_until_ready()
            t_run = time.perf_counter() - t0
        return np.asarray(losses)[:, -1].astype(float), t_run, t_compile
    finally:
        jax.config.update("jax_enable_x64", previous)


# --------------------------------------------------------------------------- GEMM peak


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_peak(
    dtype: str = "float64", size: int = 1024, repeats: int = 5, use_jax: bool = False
) -> dict:
    """The machine's measured GEMM peak on one thread: the best rate of a ``size x size``
    matrix product (``2 size^3`` flops) over the libraries at hand, in GFLOP/s.

    Libraries differ on the same CPU (PyTorch's CPU build uses MKL, whose kernels on AMD
    are slower than OpenBLAS's or XLA's), so each is timed: ``torch`` (one thread),
    ``numpy`` (one BLAS thread via threadpoolctl, when installed) and, with ``use_jax``,
    ``jax``. ``gflops`` is the best of them; the engine's share is taken against it.
    """
    import torch

    rates = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=g, dtype=getattr(torch, dtype))
        b = torch.randn(size, size, generator=g, dtype=getattr(torch, dtype))
        c = torch.empty_like(a)
        rates["torch"] = 2 * size**3 / _best_seconds(lambda: torch.mm(a, b, out=c), repeats)
    finally:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        an, bn = a.numpy(), b.numpy()
        with threadpool_limits(1):
            rates["numpy"] = 2 * size**3 / _best_seconds(lambda: an @ bn, repeats)
    if use_jax and jax_status() is None:
        jax = _import_jax()
        previous = bool(jax.config.read("jax_enable_x64"))
        jax.config.update("jax_enable_x64", dtype == "float64")
        try:
            aj, bj = jax.numpy.asarray(a.numpy()), jax.numpy.asarray(b.numpy())
            mm = jax.jit(lambda x, y: x @ y)
            mm(aj, bj).block_until_ready()  # compile outside the pinned timing
            with _one_cpu():
                rates["jax"] = (
                    2 * size**3 / _best_seconds(lambda: mm(aj, bj).block_until_ready(), repeats)
                )
        finally:
            jax.config.update("jax_enable_x64", previous)
    rates = {k: v / 1e9 for k, v in rates.items()}
    best = max(rates, key=rates.get)
    return {
        "dtype": dtype,
        "size": size,
        "threads": 1,
        "gflops": rates[best],
        "best": best,
        "by_library": rates,
    }


# ------------------------------------------------------------------------ the comparison


def run(spec: BenchmarkSpec = BenchmarkSpec(), out=print, use_jax: bool = True) -> dict:
    """Time the engine and the peers (a), (b) and, when JAX is present, (c) on the same
    sweep; measure the GEMM peak and the engine's share of it at ``B >= 64``."""
    import torch

    from minibatch_momentum.problems.synthetic import gaussian_system
    from minibatch_momentum.sampling.batches import MiniBatches
    from minibatch_momentum.simulate.engine import StopRule, run_grid

    torch.set_num_threads(1)
    dtype = getattr(torch, spec.dtype)
    problem = gaussian_system(spec.d, spec.n, spec.kappa, seed=0)
    L = float(problem.eigvals[-1])
    eta, beta = _grid(spec, L, float(problem.eigvals.sum()))
    R = eta.size
    stop = StopRule(eps=1e-30, t_max=spec.steps, check_every=spec.check_every)
    jax_note = jax_status() if use_jax else "disabled (--no-jax)"
    peak = gemm_peak(spec.dtype, spec.gemm_size, use_jax=jax_note is None)
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
    rows = []
    # Warm up autograd and the allocator so the first timed loop pays no start-up.
    for loop in (naive_loop, hand_loop):
        loop(problem, spec.method, 1, float(eta[0]), float(beta[0]), 0, 50, 10, dtype)
    rtol = 1e-2 if spec.dtype == "float32" else 1e-6
    for B in spec.batch_sizes:
        t0 = time.perf_counter()
        res = run_grid(
            problem, spec.method, B, eta, beta, seed=0, stop=stop, device="cpu", dtype=dtype
        )
        t_engine = time.perf_counter() - t0
        if not np.all(res.steps_run == spec.steps):
            raise RuntimeError("a benchmark run stopped early; the grid must be stable")
        agree = True
        rates = {}
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
            agree &= bool(np.allclose(finals, res.final_loss[picks], rtol=rtol))
        jax_rate = jax_compile = None
        if jax_note is None:
            # Drawing the batches counts, as it does inside the engine and the loops.
            t0 = time.perf_counter()
            batches = MiniBatches(problem.n, B, 0).take(spec.steps).numpy()
            t_draw = time.perf_counter() - t0
            finals, t_jax, jax_compile = jax_sweep(
                problem, spec.method, B, eta, beta, batches, spec.check_every, spec.dtype
            )
            jax_rate = R * spec.steps / (t_draw + t_jax)
            agree &= bool(np.allclose(finals, res.final_loss, rtol=rtol))
        eng = R * spec.steps / t_engine
        gflops = product_flops(B, spec.d, R) * spec.steps / t_engine / 1e9
        row = {
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
            "naive_s_extrapolated": R * spec.steps / rates["naive"],
            "hand_s_extrapolated": R * spec.steps / rates["hand"],
            "jax_s": None if jax_rate is None else R * spec.steps / jax_rate,
            "engine_gflops": gflops,
            "peak_fraction": gflops / peak["gflops"],
            "torch_peak_fraction": gflops / peak["by_library"]["torch"],
            "loss_agrees": agree,
        }
        rows.append(row)
        jc = "-" if jax_rate is None else f"{jax_rate:,.0f}"
        jr = "-" if jax_rate is None else f"{row['ratio_jax']:.2f}x"
        frac = f"{100 * row['peak_fraction']:.0f}%" if B >= 64 else "-"
        out(
            f"{B:>6} {eng:>12,.0f} {rates['naive']:>10,.0f} {rates['hand']:>10,.0f} {jc:>11} "
            f"{row['ratio']:>6.0f}x {row['ratio_hand']:>6.1f}x {jr:>7} {frac:>7} {str(agree):>6}"
        )
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
    line = (
        f"whole sweep: engine {total['engine_s']:.2f}s; (a) {total['naive_s_extrapolated']:.1f}s "
        f"({result['ratio']:.0f}x, extrapolated from {spec.naive_runs} of {R} runs per B); "
        f"(b) {total['hand_s_extrapolated']:.1f}s ({result['ratio_hand']:.1f}x, from "
        f"{min(spec.hand_runs, R)} runs per B)"
    )
    if jax_note is None:
        result["jax_s"] = sum(r["jax_s"] for r in rows)
        result["jax_compile_s"] = sum(r["jax_compile_s"] for r in rows)
        result["ratio_jax"] = result["jax_s"] / total["engine_s"]
        line += (
            f"; (c) JAX {result['jax_s']:.2f}s ({result['ratio_jax']:.2f}x; compiling took "
            f"{result['jax_compile_s']:.1f}s more)"
        )
    out(line)
    if big:
        f = result["peak_fraction_b64"]
        torch_peak = peak["by_library"]["torch"]
        ft = [r["torch_peak_fraction"] for r in big]
        out(
            f"engine at B >= 64: {100 * f['min']:.0f}-{100 * f['max']:.0f}% of the machine's "
            f"measured {peak['dtype']} GEMM peak ({peak['gflops']:.1f} GFLOP/s, {peak['best']}); "
            f"{100 * min(ft):.0f}-{100 * max(ft):.0f}% of PyTorch's own ({torch_peak:.1f})"
        )
    return result


def exact_theory(d: int = 1000, kappa: float = 1e4, out=print) -> dict:
    """Time the exact tuned ``T*(B)`` (Gaussian closed form, rate-optimal ``(eta, beta)``
    per batch size) for 12 batch sizes ``1 .. 2048`` at ``d`` eigenvalues, per method."""
    from minibatch_momentum.theory import benchmark_batch_scaling

    res = benchmark_batch_scaling(d=d, kappa=kappa)
    seconds = {m: s for m, (_, s) in res.items()}
    total = sum(seconds.values())
    parts = ", ".join(f"{m} {s:.2f}s" for m, s in seconds.items())
    out(
        f"exact T*(B), Gaussian closed form, d={d}, kappa={kappa:g}, 12 batch sizes "
        f"(1..2048): {parts}; total {total:.2f}s"
    )
    return {"seconds": seconds, "total_s": total}


# ------------------------------------------------------------------------ the cost study


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
    """``R`` (eta, beta) pairs that all run their full course (as in :func:`_grid`)."""
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
    best = math.inf
    for _ in range(spec.repeats):
        t0 = time.perf_counter()
        for seed in seeds:
            run_grid(
                problem,
                spec.method,
                spec.batch_size,
                eta,
                beta,
                seed=seed,
                stop=stop,
                device="cpu",
                dtype=dtype,
            )
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


# --------------------------------------------------------------- profile extrapolation


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


@dataclass(frozen=True)
class GPUAssumptions:
    """What the GPU column of :func:`profile_estimate` assumes (not measured here)."""

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
    (a stand-in for :func:`sampler_seconds` where nothing may be timed)."""
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


def load_profile(path: str | os.PathLike) -> dict:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def profile_estimate(
    config: dict,
    model: dict,
    gpu: GPUAssumptions = GPUAssumptions(),
    out=print,
    theory_fn=None,
    sampler_fn=None,
) -> dict:
    """Extrapolated sweep time of a workflow profile (a config dict as in
    ``workflow/config/*.yaml``); nothing here is a measurement of that profile.

    Per shard (problem, sampler, method, B): steps per seed ``= min(t_max,
    censor_factor * T*(B))`` with ``T*(B)`` the exact theory's tuned count (Gaussian
    closed form, rate-optimal (eta, beta); the grid-best is a little above it, and a grid
    runs until ``censor_factor`` times its first converged count), ``R = grid + 1`` runs
    (the rule's point rides along), all active to the end (an upper bound on the
    products). Seconds per step: on one CPU thread, ``model``'s overhead + flops / rate
    + the measured sampler; on a GPU, ``max(latency + sampler, flops / rate)`` (the host
    issues kernels and draws batches while the GPU computes). Job start-up is added per
    shard. ``theory_fn(eigvals, method, batch_sizes, eps, n, replace)`` returns ``T*`` per
    batch size (default: :func:`minibatch_momentum.theory.batch_scaling`);
    ``sampler_fn(n, B, replace)`` seconds per step of the sampler (default: measured,
    :func:`sampler_seconds`).
    """
    from minibatch_momentum.config import all_pairs, method_batches, study_methods, study_value
    from minibatch_momentum.problems.system import spectrum

    if theory_fn is None:
        from minibatch_momentum.theory import batch_scaling

        def theory_fn(lam, method, Bs, eps, n, replace):
            return batch_scaling(lam, method, Bs, eps=eps, n=n, replace=replace).iterations

    sampler_fn = sampler_seconds if sampler_fn is None else sampler_fn
    sweep = config["sweep"]
    stop = sweep["stop"]
    t_max = int(stop.get("t_max", 100_000))
    censor = float(stop.get("censor_factor", 2.0))
    eps = float(stop["eps"])
    sampler_cache: dict = {}
    shards, skipped = [], []
    # The pairs, methods and batch sizes the workflow runs (config.py: one source with
    # workflow/rules/common.smk).
    for pname, sampler in all_pairs(config):
        p = config["problems"][pname]
        if not ({"d", "n"} <= set(p) and ("kappa" in p or "alpha" in p)):
            if pname not in skipped:  # a family without a prescribed spectrum (data, files)
                skipped.append(pname)
            continue
        d, n = int(p["d"]), int(p["n"])
        profile = p.get("profile", "geometric")
        if "kappa" in p:
            lam = spectrum(d, float(p["kappa"]), profile)
        else:
            lam = spectrum(d, profile=profile, alpha=float(p["alpha"]))
        grid = study_value(config, pname, "grid")[0]
        seeds = int(study_value(config, pname, "seeds")[0])
        # The Gaussian closed form knows uniform sampling with or without replacement;
        # other samplers are estimated as i.i.d. draws.
        replace = sampler != "without_replacement"
        for method in study_methods(config, pname):
            Bs = method_batches(config, pname, method)
            R = grid["num_eta"] if method == "sgd" else grid["num_eta"] * grid["num_beta"]
            R += 1
            T = np.asarray(theory_fn(lam, method, Bs, eps, n, replace), float)
            for B, t_star in zip(Bs, T, strict=True):
                key = (n, B, replace)
                if key not in sampler_cache:
                    sampler_cache[key] = sampler_fn(n, B, replace)
                samp = sampler_cache[key]
                steps = (
                    t_max if not np.isfinite(t_star) else min(t_max, math.ceil(censor * t_star))
                )
                cpu_s, gpu_s = shard_seconds(B, d, R, steps, seeds, model, gpu, samp)
                shards.append(
                    {
                        "problem": pname,
                        "sampler": sampler,
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
    if not shards:
        raise ValueError("profile_estimate: no problem with d, n and kappa (or alpha) to estimate")
    out(
        "EXTRAPOLATION, not a measurement: profile sweep time from the exact theory's T*(B), "
        "the per-step model above and the measured sampler"
    )
    out(
        f"  GPU column assumes {gpu.latency_s * 1e6:.0f} us host time per step, "
        f"{gpu.flops_per_s / 1e12:.0f} TFLOP/s sustained, {gpu.startup_s:.0f} s start-up per job"
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
    total_cpu = sum(s["cpu_s"] for s in shards)
    total_gpu = sum(s["gpu_s"] for s in shards)
    longest = max(shards, key=lambda s: s["gpu_s"])
    out(
        f"  sweeps in all: {len(shards)} shards, {total_cpu / 3600:.1f} CPU-thread-hours; "
        f"one GPU, shards in series: {total_gpu / 60:.0f} min; longest GPU shard "
        f"{longest['gpu_s'] / 60:.1f} min ({longest['problem']} {longest['method']} "
        f"B={longest['B']}). Not included: problem generation, theory, seed systems, figures."
    )
    if skipped:
        out(f"  not estimated (no prescribed spectrum): {', '.join(skipped)}")
    return {
        "shards": shards,
        "total_cpu_s": total_cpu,
        "total_gpu_s": total_gpu,
        "longest_gpu_shard": longest,
        "gpu_assumptions": asdict(gpu),
        "skipped": skipped,
    }


# ------------------------------------------------------------ the profile's job times

DEFAULT_BENCHMARKS = Path("results/benchmarks")


def job_times(root: str | os.PathLike = DEFAULT_BENCHMARKS, out=print) -> dict:
    """Where a workflow run's time went: the Snakemake ``benchmark:`` files under ``root``
    (:func:`~minibatch_momentum.report.paper.read_benchmarks`) summed per rule, largest first.

    Returns ``{rule: {"jobs", "total_s", "median_s", "max_s", "cpu_s", "share"}}`` and
    prints it: wall-clock seconds per job as Snakemake measured them (their sum is not the
    run's wall time when jobs ran in parallel) and the jobs' CPU seconds (``cpu_time``),
    which a busy machine inflates less than wall time.
    """
    from minibatch_momentum.report.paper import read_benchmarks

    bench = read_benchmarks(root)
    if bench.empty:
        out(f"job times: no benchmark files under {root}")
        return {}
    total = float(bench["seconds"].sum())
    g = bench.groupby("rule")
    table = g["seconds"].agg(jobs="count", total_s="sum", median_s="median", max_s="max")
    table["cpu_s"] = g["cpu_seconds"].sum(min_count=1)
    table = table.sort_values("total_s", ascending=False)
    out(f"job times by rule ({len(bench)} jobs, {total:.1f} s summed, from {root}):")
    out(
        f"  {'rule':<14} {'jobs':>5} {'total s':>9} {'share':>6} {'median s':>9} {'max s':>8}"
        f" {'CPU s':>8}"
    )
    result = {}
    for rule, row in table.iterrows():
        share = row["total_s"] / total
        out(
            f"  {rule:<14} {int(row['jobs']):>5} {row['total_s']:>9.1f} {share:>6.1%} "
            f"{row['median_s']:>9.2f} {row['max_s']:>8.2f} {row['cpu_s']:>8.1f}"
        )
        result[str(rule)] = {
            "jobs": int(row["jobs"]),
            "total_s": float(row["total_s"]),
            "median_s": float(row["median_s"]),
            "max_s": float(row["max_s"]),
            "cpu_s": float(row["cpu_s"]),
            "share": float(share),
        }
    return result


# ---------------------------------------------------------------------------- the CLI


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


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m minibatch_momentum.benchmark")
    add_arguments(p)
    main(p.parse_args())
