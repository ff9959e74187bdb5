r"""The momentum iteration of :func:`solve`: its checks, back-offs and stop rule.

Stopping
--------
Every ``check_every`` steps (default: 4 passes' worth, so checks cost at most a quarter
of the work) the relative residual ``||A x - b|| / ||b||`` (PSD: ``||M x - b|| / ||b||``)
is computed exactly. The run stops when it is ``<= tol`` (``converged``), at the budget
(``max_passes``, ``max_steps`` or ``max_seconds``: ``budget``), or when it stalls: past
four times the predicted steps, no halving over the last half of the checks (at least
10). A residual ``100`` times the best one seen (or not finite) halves ``eta`` and
restarts from the best point (the rule's noise line assumes Gaussian-like rows; heavy
tails can make it too bold); after 8 such back-offs the run stops as ``diverged``.

A stall is examined at the mean ``xbar`` of the last interval's iterates (the mean
averages out the sampling noise): ``q = ||A^T r|| / (sqrt(n L) ||r||)`` with
``r = A xbar - b`` is at most the share of ``r`` in the range of ``A``, the part the
matrix can still remove, and a consistent system has ``q >= sqrt(mu / L)`` at every
point. ``q < sqrt(mu / L) / 2`` is reported as an inconsistent system (``ValueError``):
only a ``mu`` over-estimated fourfold *and* a stall together could make it a false
alarm. Otherwise the stop reason is ``stalled``.

Cost accounting: one *pass* is a product with ``A`` or ``A^T`` (``n d`` multiply-adds);
a step on ``B`` rows costs ``2 B / n`` passes (a coordinate step ``B / n``). Scipy's
``cg`` on the normal equations and ``lsqr`` cost 2 passes per iteration in the same
units (``python -m minibatch_momentum.benchmark.solvers``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from minibatch_momentum.checks import finite as _finite
from minibatch_momentum.checks import is_int as _is_int
from minibatch_momentum.solver.batch_size import auto_batch, predicted_steps, rule_parameters
from minibatch_momentum.solver.estimates import Estimates, estimate
from minibatch_momentum.solver.system import (
    METHODS,
    SAMPLERS,
    _check_choice,
    _check_finite_values,
    _check_symmetric,
    _positive_or_none,
    _System,
)
from minibatch_momentum.theory.rule import saturation_batch

STOP_REASONS = ("converged", "diverged", "budget", "stalled")
BLOWUP = 100.0  # a residual this many times the best one seen counts as blowing up
MAX_BACKOFFS = 8


@dataclass
class SolveResult:
    """What :func:`solve` returns.

    Attributes
    ----------
    x : (d,) solution.
    stop_reason : one of ``converged``, ``diverged``, ``budget``, ``stalled``.
    residual : relative residual ``||A x - b|| / ||b||`` at ``x``.
    history : ``(steps, passes, relative residual)`` at every check, an ``(m, 3)`` array.
    method, sampler, batch_size, eta, beta : what ran.
    estimates : :class:`Estimates` (with their cost).
    b_sgd, b_sat : ``B*_SGD = tr H / L`` and the rule's saturation batch
        (:func:`~minibatch_momentum.theory.rule.saturation_batch`).
    predicted_steps : the model's ``T(B)`` for this run (``tol``).
    steps, passes, seconds : totals of the solve proper (estimation excluded).
    backoffs : how many times the step was halved after the residual blew up (``eta``
        is the final step).
    """

    x: np.ndarray
    stop_reason: str
    residual: float
    history: np.ndarray
    method: str
    sampler: str
    batch_size: int
    eta: float
    beta: float
    estimates: Estimates
    b_sgd: float
    b_sat: float
    predicted_steps: float
    steps: int
    passes: float
    seconds: float
    backoffs: int = 0
    device: str = field(default="cpu")

    def summary(self) -> dict:
        """The scalars, JSON-ready."""
        e = self.estimates
        return {
            "stop_reason": self.stop_reason,
            "residual": self.residual,
            "method": self.method,
            "sampler": self.sampler,
            "batch_size": self.batch_size,
            "eta": self.eta,
            "beta": self.beta,
            "L": e.L,
            "mu": e.mu,
            "trace": e.trace,
            "estimate_passes": e.passes,
            "estimate_seconds": e.seconds,
            "lanczos_steps": e.lanczos_steps,
            "B_sgd": self.b_sgd,
            "B_sat": self.b_sat,
            "predicted_steps": self.predicted_steps,
            "steps": self.steps,
            "passes": self.passes,
            "seconds": self.seconds,
            "backoffs": self.backoffs,
            "device": self.device,
        }


def solve(
    A,
    b,
    *,
    method: str = "hb",
    sampler: str = "uniform",
    batch_size: int | str = "auto",
    tol: float = 1e-6,
    max_passes: float = 10_000,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    factor: float = 2.0,
    check_every: int | None = None,
    x0: np.ndarray | None = None,
    L: float | None = None,
    mu: float | None = None,
    trace: float | None = None,
    lanczos_steps: int = 40,
    seed: int = 0,
    device: str = "auto",
    verbose: bool | Callable[[str], None] = False,
) -> SolveResult:
    """Solve the consistent system ``A x = b`` with the momentum rule
    (:mod:`minibatch_momentum.solver`; stopping: module docstring).

    Parameters
    ----------
    A : (n, d) array, scipy sparse matrix, or a callable ``rows(idx) -> (len(idx), d)``
        array returning rows of ``A`` (``n`` is then ``len(b)``). For
        ``sampler="coordinate"`` a symmetric PSD ``(d, d)`` matrix ``M``.
    b : (n,) right-hand side, in the range of ``A``.
    method : ``"hb"`` (heavy ball), ``"nag"`` (Nesterov) or ``"sgd"``.
    sampler : ``"uniform"`` (``B`` distinct rows), ``"kaczmarz"`` (rows ``∝ ||a_i||^2``)
        or ``"coordinate"`` (PSD ``M``, coordinates ``∝ M_jj``).
    batch_size : an integer ``B``, or ``"auto"`` (smallest ``B`` within ``factor`` of the
        saturated step count).
    tol : target relative residual ``||A x - b|| / ||b||``.
    max_passes, max_steps, max_seconds : budget (passes over the data, steps, wall time).
    factor : ``auto``'s tolerance on the predicted steps (> 1).
    check_every : steps between exact residual checks (default: 4 passes' worth).
    x0 : starting point (default 0).
    L, mu, trace : known values instead of estimates (any subset).
    lanczos_steps : Lanczos steps for ``L`` and ``mu``.
    seed : seeds the Lanczos start and the mini-batch stream (same seed, same result).
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    verbose : print the estimates, ``B*_SGD``, ``B_sat`` and the choice (to stderr), or a
        callable to receive those lines.

    Returns
    -------
    SolveResult

    Raises
    ------
    ValueError
        Bad arguments or input (shape mismatch, NaN or inf, a non-square, non-symmetric or
        indefinite matrix for the coordinate sampler), before any work
        (:mod:`~minibatch_momentum.solver.estimates` says which indefinite matrices are
        caught; a callable ``M`` is not checked for symmetry); an inconsistent system when
        the run finds one (module docstring, "Stopping").
    """
    _check_choice("method", method, METHODS)
    _check_choice("sampler", sampler, SAMPLERS)
    _check_numbers(tol, factor, max_passes, max_steps, check_every, lanczos_steps)
    for name, value in (("max_seconds", max_seconds), ("L", L), ("mu", mu), ("trace", trace)):
        _positive_or_none(name, value)
    if batch_size != "auto" and not (_is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size: must be 'auto' or an integer >= 1, got {batch_size!r}")
    log = _logger(verbose)
    system, x0 = _load(A, b, sampler, batch_size, x0)
    est = estimate(system, lanczos_steps=lanczos_steps, seed=seed, L=L, mu=mu, trace=trace)
    choice = _choose(method, sampler, batch_size, est, system.n, tol, factor, log)
    budget = _Budget(tol, max_passes, max_steps, max_seconds, check_every)
    return _iterate(system, est, choice, budget, x0, seed, device, log)


def _check_numbers(tol, factor, max_passes, max_steps, check_every, lanczos_steps) -> None:
    if not (_finite(tol) and 0 < tol < 1):
        raise ValueError(f"tol: must be a number in (0, 1), got {tol!r}")
    if not (_finite(factor) and factor > 1):
        raise ValueError(f"factor: must be a number > 1, got {factor!r}")
    if not (_finite(max_passes) and max_passes > 0):
        raise ValueError(f"max_passes: must be a number > 0, got {max_passes!r}")
    for name, value in (("max_steps", max_steps), ("check_every", check_every)):
        if value is not None and not (_is_int(value) and value >= 1):
            raise ValueError(f"{name}: must be an integer >= 1 or None, got {value!r}")
    if not (_is_int(lanczos_steps) and lanczos_steps >= 2):
        raise ValueError(f"lanczos_steps: must be an integer >= 2, got {lanczos_steps!r}")


def _logger(verbose):
    """``verbose`` as a function of one line, or ``None`` (quiet)."""
    return (
        verbose
        if callable(verbose)
        else (lambda msg: print(f"[solve] {msg}", file=sys.stderr))
        if verbose
        else None
    )


def _load(A, b, sampler: str, batch_size, x0) -> tuple[_System, np.ndarray]:
    """The checked system and starting point (errors before any work)."""
    kind = "psd" if sampler == "coordinate" else "rows"
    system = _System(A, b, kind)
    n, d = system.n, system.d
    _check_symmetric(system)
    if batch_size != "auto" and sampler == "uniform" and batch_size > n:
        raise ValueError(f"batch_size: {batch_size} exceeds the n = {n} rows (uniform sampler)")
    x0 = np.zeros(d) if x0 is None else np.asarray(x0, dtype=np.float64)
    if x0.shape != (d,):
        raise ValueError(f"x0: must have shape ({d},), got {x0.shape}")
    _check_finite_values(x0, "x0")
    return system, x0


@dataclass(frozen=True)
class _Choice:
    """What the rule chose for a run: batch size, ``(eta, beta)``, the model's predicted
    steps and the saturation batch."""

    method: str
    sampler: str
    batch_size: int
    eta: float
    beta: float
    predicted_steps: float
    b_sat: float


@dataclass(frozen=True)
class _Budget:
    """When a run stops short of diverging: ``tol``, the budget, the check interval."""

    tol: float
    max_passes: float
    max_steps: int | None
    max_seconds: float | None
    check_every: int | None

    def spent(self, passes: float, steps: int, t_start: float) -> bool:
        return (
            passes >= self.max_passes
            or (self.max_steps is not None and steps >= self.max_steps)
            or (self.max_seconds is not None and time.perf_counter() - t_start >= self.max_seconds)
        )


def _choose(method, sampler, batch_size, est: Estimates, n, tol, factor, log) -> _Choice:
    """The batch size (``auto``: :func:`~minibatch_momentum.solver.batch_size.auto_batch`)
    and the rule's parameters for it; logged."""
    b_sat = saturation_batch(method, est.L, est.mu, est.trace)
    if batch_size == "auto":
        B, _ = auto_batch(method, est, sampler, n, tol, factor)
    else:
        B = batch_size
    eta, beta = rule_parameters(method, B, est, sampler, n)
    t_pred = predicted_steps(method, B, est, sampler, n, tol)
    if log:
        log(
            f"estimates: L={est.L:.4g} mu={est.mu:.4g} (kappa {est.kappa:.3g}) "
            f"tr H={est.trace:.4g} from {est.lanczos_steps} Lanczos steps, "
            f"{est.passes:.0f} passes, {est.seconds:.3g} s"
        )
        log(f"B*_SGD = {est.b_sgd:.3g}   B_sat ({method}) = {b_sat:.3g}")
        how = (
            f"auto: smallest B within {factor:g}x of the saturated steps"
            if (batch_size == "auto")
            else "given"
        )
        log(
            f"B = {B} ({how}); eta = {eta:.4g}, beta = {beta:.4g}; "
            f"predicted {t_pred:.4g} steps to tol {tol:g}"
        )
    return _Choice(method, sampler, B, eta, beta, t_pred, b_sat)


def _sampler_table(system: _System, sampler: str, B: int, seed: int):
    """``(stream, w_row)``: the mini-batch stream and the per-row gradient weights
    (``None``: all 1) of the sampler (:mod:`~minibatch_momentum.solver.system`)."""
    from minibatch_momentum.sampling.batches import MiniBatches

    n = system.n
    if sampler == "uniform":
        stream = MiniBatches(n, B, seed, replace=False)
        w_row = None
    elif sampler == "kaczmarz":
        norms2 = system.row_norms2()
        stream = MiniBatches(n, B, seed, replace=True, weights=norms2)
        with np.errstate(divide="ignore"):
            w_row = np.where(norms2 > 0, norms2.mean() / norms2, 0.0)
    else:
        diag = system.diagonal()
        p = diag / diag.sum()
        stream = MiniBatches(n, B, seed, replace=True, weights=p)
        with np.errstate(divide="ignore"):
            w_row = np.where(p > 0, 1.0 / p, 0.0)
    return stream, w_row


class _OnDevice:
    """The system as the run reads it: ``b``, the row weights and (dense) ``A`` as float64
    tensors on ``dev``; rows of a step and the exact relative residual."""

    def __init__(self, system: _System, w_row, dev):
        import torch

        dt = torch.float64
        self.system, self.dev = system, dev
        self.dense = not system.callable and not scipy.sparse.issparse(system.A)
        self.w = None if w_row is None else torch.as_tensor(w_row, dtype=dt, device=dev)
        self.b = torch.as_tensor(system.b, dtype=dt, device=dev)
        self.A = torch.as_tensor(system.A, dtype=dt, device=dev) if self.dense else None
        self.b_norm = float(np.linalg.norm(system.b))

    def rows(self, idx_d, idx):
        """The rows ``idx`` (``idx_d``: the same indices on the device)."""
        if self.dense:
            return self.A.index_select(0, idx_d)
        import torch

        return torch.as_tensor(self.system.rows(idx.numpy()), dtype=torch.float64, device=self.dev)

    def rel_residual(self, point):
        """``(||A point - b|| / ||b||, A point - b)``; one pass."""
        import torch

        if self.dense:
            self.system.passes += 1
            r = self.A @ point - self.b
            return float(torch.linalg.vector_norm(r)) / self.b_norm, r
        r = self.system.residual(point.cpu().numpy())
        return float(np.linalg.norm(r)) / self.b_norm, r


def _steps(data: _OnDevice, block, k: int, x, v, xbar, beta, gamma, scale, psd: bool) -> None:
    """``k`` steps on the batches ``block``, in place on ``x`` and ``v``: ``y = x + gamma
    v``, ``v <- beta v + scale * g(y)``, ``x <- x + v``; ``xbar`` sums the iterates."""
    block_d = block.to(data.dev)  # one copy per check interval, not per step
    xbar.zero_()
    for t in range(k):
        idx_d = block_d[t]
        y = x if gamma == 0 else x + gamma * v
        rows = data.rows(idx_d, block[t])
        r = rows @ y - data.b.index_select(0, idx_d)
        if data.w is not None:
            r = r * data.w.index_select(0, idx_d)
        v.mul_(beta)
        if psd:
            v.index_add_(0, idx_d, r, alpha=scale)
        else:
            v.addmv_(rows.T, r, alpha=scale)
        x.add_(v)
        xbar.add_(x)


def _iterate(system, est, choice: _Choice, budget: _Budget, x0, seed, device, log):
    """Run the momentum iteration from ``x0`` to a stop reason (module docstring)."""
    from minibatch_momentum.simulate.engine import resolve_device

    dev = resolve_device(device)
    t_start, p_start = time.perf_counter(), system.passes
    stream, w_row = _sampler_table(system, choice.sampler, choice.batch_size, seed)
    data = _OnDevice(system, w_row, dev)
    x, reason, history, steps, backoffs, eta = _loop(
        data, stream, x0, est, choice, budget, log, t_start, p_start
    )
    if log:
        log(
            f"{reason} after {steps} steps ({system.passes - p_start:.4g} passes): "
            f"relative residual {history[-1][2]:.3g}"
        )
    return SolveResult(
        x=x.cpu().numpy(),
        stop_reason=reason,
        residual=history[-1][2],
        history=np.array(history, dtype=float),
        method=choice.method,
        sampler=choice.sampler,
        batch_size=int(choice.batch_size),
        eta=float(eta),
        beta=float(choice.beta),
        estimates=est,
        b_sgd=est.b_sgd,
        b_sat=float(choice.b_sat),
        predicted_steps=float(choice.predicted_steps),
        steps=steps,
        passes=system.passes - p_start,
        seconds=time.perf_counter() - t_start,
        backoffs=backoffs,
        device=str(dev),
    )


def _loop(
    data: _OnDevice, stream, x0, est, choice: _Choice, budget: _Budget, log, t_start, p_start
):
    """The checks and steps of :func:`_iterate`: ``(x, reason, history, steps, backoffs,
    eta)``."""
    import torch

    system, B, beta = data.system, choice.batch_size, choice.beta
    x = torch.as_tensor(x0, dtype=torch.float64, device=data.dev).clone()
    v = torch.zeros_like(x)
    xbar = torch.zeros_like(x)
    eta = choice.eta
    gamma = beta if choice.method == "nag" else 0.0
    scale = -eta / B
    psd = system.kind == "psd"
    # A row step reads its B rows twice (A_S y, then A_S^T r), a coordinate step once.
    step_passes = (1.0 if psd else 2.0) * B / system.n
    every = budget.check_every or max(1, math.ceil(4.0 / step_passes))
    res0, _ = data.rel_residual(x)
    history = [(0, 0.0, res0)]
    steps, reason, backoffs = 0, ("converged" if res0 <= budget.tol else None), 0
    best_res, best_x = res0, x.clone()
    while reason is None:
        k = every if budget.max_steps is None else min(every, budget.max_steps - steps)
        _steps(data, stream.take(k), k, x, v, xbar, beta, gamma, scale, psd)
        steps += k
        system.passes += k * step_passes
        res, _ = data.rel_residual(x)
        passes = system.passes - p_start
        history.append((steps, passes, res))
        if res < best_res:
            best_res = res
            best_x.copy_(x)
        if res <= budget.tol:
            reason = "converged"
        elif not math.isfinite(res) or res > BLOWUP * best_res:
            # The rule's noise line assumes Gaussian-like rows; heavier tails can make it
            # too bold. Back off: halve the step, restart from the best point seen.
            if backoffs == MAX_BACKOFFS:
                reason = "diverged"
            else:
                backoffs += 1
                eta *= 0.5
                scale = -eta / B
                x.copy_(best_x)
                v.zero_()
                if log:
                    log(f"residual grew to {res:.3g} at step {steps}: eta halved to {eta:.4g}")
        elif budget.spent(passes, steps, t_start):
            reason = "budget"
        elif (
            len(history) > 10
            and steps > 4 * choice.predicted_steps
            and res > 0.5 * history[len(history) // 2][2]
        ):
            xbar.div_(k)
            _check_consistent(system, est, xbar, data.rel_residual, system.n)
            reason = "stalled"
    return x, reason, history, steps, backoffs, eta


def _check_consistent(system: _System, est: Estimates, xbar, rel_residual, n: int) -> None:
    """Raise if the residual at ``xbar`` lies (almost) outside the range of ``A``
    (module docstring, "Stopping")."""
    res, r = rel_residual(xbar)
    r = r.cpu().numpy() if hasattr(r, "cpu") else r
    g = system.rmatvec(r) if system.kind == "rows" else system.matvec(r)
    # ||A^T r||^2 >= n mu ||P r||^2 (rows); ||M r|| >= mu ||P r|| (psd): the floor of q
    # over a consistent system's residuals.
    if system.kind == "rows":
        q = float(np.linalg.norm(g) / (np.sqrt(n * est.L) * np.linalg.norm(r)))
        floor = np.sqrt(est.mu / est.L)
    else:
        q = float(np.linalg.norm(g) / (est.L * np.linalg.norm(r)))
        floor = est.mu / est.L
    if q < 0.5 * floor:
        raise ValueError(
            f"b: the system looks inconsistent: the residual stalled at {res:.3g} of ||b|| "
            f"and at most {q:.2g} of it lies in the range of A (a consistent system has at "
            f"least {floor:.2g}); this solver needs b = A x* "
            "exactly (the interpolation regime). For least squares use scipy.sparse.linalg.lsqr"
        )
