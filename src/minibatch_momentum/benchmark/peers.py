"""The engine's peers in the throughput comparison, and the machine's GEMM peak.

Each peer runs the engine's sweep its own way (:mod:`~minibatch_momentum.benchmark.throughput`
times them):

- (a) :func:`naive_loop`, the per-run loop most papers' code uses: ``torch.optim.SGD``
  with autograd, one run at a time;
- (b) :func:`hand_loop`, a hand-written single-run loop: plain tensor operations (gather
  the batch, two matrix-vector products, the momentum update in place), no optimizer
  class, no autograd, one run at a time;
- (c) :func:`jax_sweep`, JAX ``jit(vmap(scan))`` with the shared mini-batches, when
  ``import jax`` works (:func:`jax_status`; an optional extra).

:func:`gemm_peak` measures the rate of a large square matrix product on one thread, the
yardstick for the engine's share of the machine.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager

import numpy as np

# PyTorch is imported inside the functions that use it, so that the CLI can take the
# benchmark's flags without loading PyTorch for every command.


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
