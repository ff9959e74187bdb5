"""The momentum-rule solver against conjugate gradients and LSQR, side by side.

    python -m minibatch_momentum.benchmark.solvers [--quick] [--tol 1e-6]

For each system (two dense Gaussian ones, square-ish and tall, and the digits RBF-kernel
one, all consistent),
every method runs to the same relative residual ``||A x - b|| / ||b|| <= tol`` from
``x = 0``, and the table gives the passes over the data (products with ``A`` or
``A^T``; a mini-batch step on ``B`` of ``n`` rows counts ``2 B / n``) and the wall time:

- ``solve hb|nag|sgd``: :func:`minibatch_momentum.solve` with ``batch_size="auto"``,
  passes and seconds of the solve, then with its estimation (Lanczos) added;
- ``cg (normal eq.)``: ``scipy.sparse.linalg.cg`` on ``A^T A x = A^T b`` (2 passes per
  iteration);
- ``lsqr``: ``scipy.sparse.linalg.lsqr`` (2 passes per iteration);
- ``lstsq (direct)``: ``numpy.linalg.lstsq``, for scale.

CG and LSQR are stopped at the first iteration whose residual meets ``tol`` (found with
a callback on one run, then timed on a second run capped at that iteration, so the
timing has no callback in it). Wall times are single runs on whatever machine this is;
they are for comparison within one table, not claims.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse.linalg as spla

from minibatch_momentum.problems.kernel import digits_kernel_system
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.solver import solve


def _rel(A, b, x) -> float:
    return float(np.linalg.norm(A @ x - b) / np.linalg.norm(b))


def _krylov(A, b, tol, which: str, max_iter: int):
    n, d = A.shape
    if which == "cg":
        op = spla.LinearOperator((d, d), matvec=lambda v: A.T @ (A @ v), dtype=np.float64)
        rhs = A.T @ b

        def run(k, cb=None):
            return spla.cg(op, rhs, rtol=1e-30, atol=0.0, maxiter=k, callback=cb)[0]
    else:

        def run(k, cb=None):
            if cb is None:
                return spla.lsqr(A, b, atol=0.0, btol=0.0, conlim=0.0, iter_lim=k)[0]
            # lsqr has no callback: rerunning with growing limits is exact (deterministic).
            for j in range(1, k + 1):
                x = spla.lsqr(A, b, atol=0.0, btol=0.0, conlim=0.0, iter_lim=j)[0]
                if cb(x):
                    return x
            return x

    hit = {}

    def cb(x):
        hit.setdefault("k", 0)
        hit["k"] += 1
        if _rel(A, b, x) <= tol and "at" not in hit:
            hit["at"] = hit["k"]
            return True
        return False

    if which == "cg":
        run(max_iter, cb)
    else:
        _bisect_lsqr(A, b, tol, max_iter, hit)
    k = hit.get("at")
    if k is None:
        return np.inf, np.inf, np.nan
    t0 = time.perf_counter()
    x = run(k)
    seconds = time.perf_counter() - t0
    return 2.0 * k, seconds, _rel(A, b, x)


def _bisect_lsqr(A, b, tol, max_iter, hit):
    """Fewest LSQR iterations meeting ``tol`` (the residual decreases monotonically)."""

    def ok(k):
        x = spla.lsqr(A, b, atol=0.0, btol=0.0, conlim=0.0, iter_lim=k)[0]
        return _rel(A, b, x) <= tol

    if not ok(max_iter):
        return
    lo, hi = 0, max_iter
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    hit["at"] = hi


def compare(name, A, b, tol, out=print) -> list[dict]:
    n, d = A.shape
    rows = []
    for method in ("hb", "nag", "sgd"):
        r = solve(A, b, method=method, tol=tol, seed=0, device="cpu")
        e = r.estimates
        rows.append(
            {
                "method": f"solve {method} (B={r.batch_size})",
                "passes": r.passes,
                "seconds": r.seconds,
                "passes_with_estimation": r.passes + e.passes,
                "seconds_with_estimation": r.seconds + e.seconds,
                "residual": r.residual,
                "note": r.stop_reason,
            }
        )
    for which, label in (("cg", "cg (normal eq.)"), ("lsqr", "lsqr")):
        passes, seconds, res = _krylov(A, b, tol, which, max_iter=20 * d)
        rows.append(
            {
                "method": label,
                "passes": passes,
                "seconds": seconds,
                "passes_with_estimation": passes,
                "seconds_with_estimation": seconds,
                "residual": res,
                "note": "",
            }
        )
    t0 = time.perf_counter()
    x = np.linalg.lstsq(A, b, rcond=None)[0]
    seconds = time.perf_counter() - t0
    rows.append(
        {
            "method": "lstsq (direct)",
            "passes": np.nan,
            "seconds": seconds,
            "passes_with_estimation": np.nan,
            "seconds_with_estimation": seconds,
            "residual": _rel(A, b, x),
            "note": "",
        }
    )
    out(f"\n{name}: n = {n}, d = {d}, tol = {tol:g}")
    out(
        f"{'method':24s} {'passes':>8s} {'seconds':>8s} {'passes+est':>10s} "
        f"{'s+est':>8s} {'residual':>9s}"
    )
    for r in rows:
        out(
            f"{r['method']:24s} {r['passes']:8.1f} {r['seconds']:8.3f} "
            f"{r['passes_with_estimation']:10.1f} {r['seconds_with_estimation']:8.3f} "
            f"{r['residual']:9.2e} {r['note']}"
        )
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small systems (seconds)")
    p.add_argument("--tol", type=float, default=1e-6)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # one thread for every method (numpy's BLAS: OMP_NUM_THREADS)
    if args.quick:
        gauss = gaussian_system(d=64, n=2048, kappa=1e3, seed=0)
        tall = gaussian_system(d=32, n=32768, kappa=1e3, seed=1)
        kernel = digits_kernel_system(256, 1.0)
    else:
        gauss = gaussian_system(d=256, n=8192, kappa=1e4, seed=0)
        tall = gaussian_system(d=64, n=131072, kappa=1e3, seed=1)
        kernel = digits_kernel_system(1024, 1.0)
    return {
        "tall": compare(
            f"tall Gaussian (kappa(H) = {tall.spectral_summary()['kappa']:.3g})",
            tall.A,
            tall.b,
            args.tol,
        ),
        "gaussian": compare(
            f"dense Gaussian (kappa(H) = {gauss.spectral_summary()['kappa']:.3g})",
            gauss.A,
            gauss.b,
            args.tol,
        ),
        "kernel": compare(
            f"digits RBF kernel, gamma = 1 (kappa(H) = {kernel.spectral_summary()['kappa']:.3g})",
            kernel.A,
            kernel.b,
            args.tol,
        ),
    }


if __name__ == "__main__":
    main()
