r"""The momentum rule as a solver for consistent linear systems (the interpolation regime).

:func:`solve` finds ``x`` with ``A x = b`` (``b`` in the range of ``A``) by mini-batch
SGD, heavy ball or Nesterov, with the batch size and ``(eta, beta)`` set by the project's
momentum rule (:mod:`~minibatch_momentum.theory.rule`) from three numbers it measures first:

- ``L`` and ``mu`` (largest and smallest non-zero eigenvalue of ``H``) from ``k`` steps of
  Lanczos with full reorthogonalization on ``H`` as a
  ``scipy.sparse.linalg.LinearOperator``, started in the range of ``H`` (``v_0 = A^T w``)
  so the null space of a rank-deficient or wide ``A`` never shows up as ``mu = 0``;
- ``tr H`` exactly, as the mean squared row norm (rows) or ``sum_j M_jj`` (PSD).

Problems: ``rows``, ``f(x) = ||A x - b||^2 / (2n)`` with ``H = A^T A / n`` (samplers
``uniform``: ``B`` distinct rows per step; ``kaczmarz``: i.i.d. rows drawn with probability
``∝ ||a_i||^2``, rescaled to the mean norm), and ``psd``, ``f(x) = x^T M x / 2 - b^T x``
with ``H = M`` (sampler ``coordinate``: i.i.d. coordinates drawn ``∝ M_jj``). The
samplers are those of :mod:`~minibatch_momentum.sampling.samplers`; the step is the engine's
(:mod:`~minibatch_momentum.simulate.engine`): ``y = x + gamma v``, ``v <- beta v - eta g(y)``,
``x <- x + v``, ``gamma = beta`` for ``nag``, else 0.

What the estimates are worth
----------------------------
``L`` converges in a few Lanczos steps. The smallest Ritz value is an *upper* bound on
``mu`` (Cauchy interlacing) that reaches it only after about ``sqrt(kappa)`` steps, as many
as conjugate gradients needs to solve the system. An over-estimated ``mu`` is safe: the
rule then damps more (``1 - beta ∝ sqrt(mu / L)``) and its ceiling
``eta / (1 - beta) ∝ 1 / sqrt(L mu)`` is lower, so the run stays stable and the modes
below the estimate converge more slowly than predicted. Pass ``mu`` (or ``L``,
``trace``) when it is known.

Batch size ``auto``
-------------------
The predicted steps ``T(B)`` come from the rule's parameters at ``B`` on the slowest and
the fastest mode (``lambda = mu, L``) of the noise-free recursion:
``T(B) = log(1/eps) / log(1/rho(B))`` with ``rho`` the larger squared modulus of the two
2x2 modes (:func:`predicted_steps`). Below ``B_sat`` the rule's effective step is on the
noise line (``∝ B``), the slow mode is overdamped and ``T ∝ 1 / B``; above it the step is
at the ceiling and ``T`` is the accelerated count ``T_sat``. ``auto`` takes the smallest
power of two (or ``n``) with ``T(B) <= factor * T_sat`` (default factor 2: the end of
perfect scaling). ``mbm advise`` prints this model beside the exact Gaussian-rows theory.

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
import scipy.sparse.linalg

from minibatch_momentum.checks import finite as _finite
from minibatch_momentum.checks import is_int as _is_int
from minibatch_momentum.theory.rule import momentum_rule, saturation_batch

METHODS = ("hb", "nag", "sgd")
SAMPLERS = ("uniform", "kaczmarz", "coordinate")
STOP_REASONS = ("converged", "diverged", "budget", "stalled")
SYMMETRY_TOL = 1e-10
PSD_TOL = 1e-8  # a Ritz value below -PSD_TOL * L proves an indefinite matrix
BLOWUP = 100.0  # a residual this many times the best one seen counts as blowing up
MAX_BACKOFFS = 8
_CHUNK = 4096  # rows per block when a callable or sparse matrix is streamed


# --------------------------------------------------------------------------- the system


class _System:
    """Row access, products and row norms for a dense array, a scipy sparse matrix, or a
    callable ``rows(idx) -> (len(idx), d)`` array; every product is counted."""

    def __init__(self, A, b, kind: str):
        b = np.asarray(b)
        if b.ndim != 1:
            raise ValueError(f"b: must be a 1-d vector, got shape {b.shape}")
        if not np.issubdtype(b.dtype, np.number) or np.iscomplexobj(b):
            raise ValueError(f"b: must be real numbers, got dtype {b.dtype}")
        b = b.astype(np.float64)
        self.callable = callable(A) and not (isinstance(A, np.ndarray) or scipy.sparse.issparse(A))
        if self.callable:
            self.fn, n = A, b.size
            first = self._call(np.arange(min(n, 1)))
            d = first.shape[1]
        elif scipy.sparse.issparse(A):
            A = scipy.sparse.csr_matrix(A, dtype=np.float64)
            n, d = A.shape
        else:
            A = np.asarray(A)
            if A.ndim != 2:
                raise ValueError(f"A: must be a 2-d matrix, got shape {A.shape}")
            if np.iscomplexobj(A) or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
                raise ValueError(f"A: must be real numbers, got dtype {A.dtype}")
            A = np.ascontiguousarray(A, dtype=np.float64)
            n, d = A.shape
        if 0 in (n, d):
            raise ValueError(f"A: is empty (shape {(n, d)})")
        if b.size != n:
            raise ValueError(f"b: has length {b.size}, A has {n} rows (shape {(n, d)})")
        if kind == "psd" and n != d:
            raise ValueError(f"A: must be square for the coordinate sampler, got shape {(n, d)}")
        self.A, self.b, self.n, self.d, self.kind = A, b, n, d, kind
        self.passes = 0.0
        _check_finite_values(self._data_values(), "A")
        _check_finite_values(b, "b")
        if not np.any(b):
            raise ValueError("b: is all zero (x = 0 solves it: nothing to do)")

    def _call(self, idx: np.ndarray) -> np.ndarray:
        rows = np.asarray(self.fn(idx), dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] != idx.size:
            raise ValueError(
                f"A: the row callable returned shape {rows.shape} for {idx.size} indices; "
                "it must return a (len(idx), d) array"
            )
        return rows

    def _data_values(self):
        if self.callable:
            return None  # checked block by block as the rows stream in
        return self.A.data if scipy.sparse.issparse(self.A) else self.A

    def blocks(self):
        """``(start, rows)`` over all rows in blocks (callable and sparse inputs)."""
        for start in range(0, self.n, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, self.n))
            yield start, self.rows(idx)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        if self.callable:
            rows = self._call(idx)
            if rows.shape[1] != self.d:
                raise ValueError(
                    f"A: the row callable returned {rows.shape[1]} columns, not {self.d}"
                )
            _check_finite_values(rows, "A")
            return rows
        if scipy.sparse.issparse(self.A):
            return self.A[idx].toarray()
        return self.A[idx]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        self.passes += 1
        if not self.callable:
            return self.A @ x
        out = np.empty(self.n)
        for start, rows in self.blocks():
            out[start : start + rows.shape[0]] = rows @ x
        return out

    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        self.passes += 1
        if not self.callable:
            return self.A.T @ r
        out = np.zeros(self.d)
        for start, rows in self.blocks():
            out += rows.T @ r[start : start + rows.shape[0]]
        return out

    def row_norms2(self) -> np.ndarray:
        if self.callable:
            return np.concatenate([np.einsum("ij,ij->i", r, r) for _, r in self.blocks()])
        if scipy.sparse.issparse(self.A):
            return np.asarray(self.A.multiply(self.A).sum(axis=1)).ravel()
        return np.einsum("ij,ij->i", self.A, self.A)

    def diagonal(self) -> np.ndarray:
        if self.callable:
            return np.concatenate(
                [
                    rows[np.arange(rows.shape[0]), start + np.arange(rows.shape[0])]
                    for start, rows in self.blocks()
                ]
            )
        return np.asarray(self.A.diagonal(), dtype=np.float64)

    def hessian(self) -> scipy.sparse.linalg.LinearOperator:
        """``H`` as a LinearOperator: ``A^T A v / n`` (rows) or ``M v`` (psd)."""
        if self.kind == "psd":
            return scipy.sparse.linalg.LinearOperator(
                (self.d, self.d), matvec=self.matvec, dtype=np.float64
            )
        return scipy.sparse.linalg.LinearOperator(
            (self.d, self.d),
            matvec=lambda v: self.rmatvec(self.matvec(np.ravel(v))) / self.n,
            dtype=np.float64,
        )

    def residual(self, x: np.ndarray) -> np.ndarray:
        return self.matvec(x) - self.b


def _check_finite_values(a, name: str) -> None:
    if a is None:
        return
    a = np.asarray(a)
    if n_nan := int(np.isnan(a).sum()):
        raise ValueError(f"{name}: contains NaN ({n_nan} entries)")
    if n_inf := int(np.isinf(a).sum()):
        raise ValueError(f"{name}: contains inf ({n_inf} entries)")


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimates:
    """What the rule needs, and what measuring it cost.

    ``L``, ``mu``: extreme non-zero Ritz values of ``H`` after ``lanczos_steps`` (``L`` a
    lower bound, ``mu`` an upper bound on the truth); ``trace``: ``tr H`` exactly;
    ``passes``: products with ``A`` or ``A^T`` spent (row norms not counted: they touch
    each entry once and multiply nothing); ``seconds``: wall time of the estimation.
    ``given`` names the quantities passed in instead of measured.
    """

    L: float
    mu: float
    trace: float
    lanczos_steps: int
    passes: float
    seconds: float
    given: tuple[str, ...] = ()

    @property
    def kappa(self) -> float:
        return self.L / self.mu

    @property
    def b_sgd(self) -> float:
        """``B*_SGD = tr H / L``: where plain SGD stops scaling."""
        return self.trace / self.L


def lanczos_extremes(H, start: np.ndarray, steps: int) -> np.ndarray:
    """Ritz values of the symmetric operator ``H`` after ``steps`` Lanczos steps from
    ``start``, with full reorthogonalization (ascending). Stops early, with exact
    eigenvalues, when the Krylov space becomes invariant."""
    q = start / np.linalg.norm(start)
    Q = [q]
    alpha, beta = [], []
    for _ in range(steps):
        w = np.asarray(H.matvec(Q[-1])).ravel()
        a = float(Q[-1] @ w)
        alpha.append(a)
        basis = np.array(Q)
        w -= basis.T @ (basis @ w)
        w -= basis.T @ (basis @ w)  # twice is enough (Kahan-Parlett)
        nb = float(np.linalg.norm(w))
        # Invariant subspace (to round-off relative to ||H||): going on would fill the
        # basis with round-off, e.g. from the null space of a rank-deficient H.
        if nb <= 1e-10 * max(max(abs(t) for t in alpha), 1e-300) or len(Q) == H.shape[0]:
            break
        beta.append(nb)
        Q.append(w / nb)
    k = len(alpha)
    T = np.diag(alpha) + np.diag(beta[: k - 1], 1) + np.diag(beta[: k - 1], -1)
    return np.linalg.eigvalsh(T)


def estimate(
    system: _System,
    *,
    lanczos_steps: int = 40,
    seed: int = 0,
    L: float | None = None,
    mu: float | None = None,
    trace: float | None = None,
) -> Estimates:
    """``L``, ``mu`` and ``tr H`` for ``system`` (see :class:`Estimates`)."""
    t0, p0 = time.perf_counter(), system.passes
    given = tuple(k for k, v in (("L", L), ("mu", mu), ("trace", trace)) if v is not None)
    if system.kind == "psd":
        diag = system.diagonal()
        if np.any(diag < 0):
            j = int(np.argmin(diag))
            raise ValueError(
                f"A: is not positive semi-definite (diagonal entry {j} is {diag[j]:.3g} < 0), "
                "as the coordinate sampler needs"
            )
        exact_trace = float(diag.sum())
    else:
        exact_trace = float(system.row_norms2().mean())
    if not exact_trace > 0:
        raise ValueError("A: is an all-zero matrix")
    need_ritz = L is None or mu is None or system.kind == "psd"
    if need_ritz:
        rng = np.random.default_rng(seed)
        # Start in the range of H, so no Ritz value comes from its null space.
        if system.kind == "psd":
            start = system.matvec(rng.standard_normal(system.d))
        else:
            start = system.rmatvec(rng.standard_normal(system.n))
        if not np.any(start):
            raise ValueError("A: the start vector A^T w vanished; is A zero?")
        ritz = lanczos_extremes(system.hessian(), start, lanczos_steps)
        top = float(ritz[-1])
        if system.kind == "psd" and ritz[0] < -PSD_TOL * abs(top):
            raise ValueError(
                f"A: is not positive semi-definite (H has an eigenvalue <= {ritz[0]:.3g}, "
                f"the largest is about {top:.3g}), as the coordinate sampler needs"
            )
        nonzero = ritz[ritz > 1e-10 * top]
        L = top if L is None else L
        mu = float(nonzero.min()) if mu is None else mu
        steps = ritz.size
    else:
        steps = 0
    trace = exact_trace if trace is None else trace
    for name, value in (("L", L), ("mu", mu), ("trace", trace)):
        if not (_finite(value) and value > 0):
            raise ValueError(f"{name}: must be a number > 0, got {value!r}")
    mu = min(float(mu), float(L))
    return Estimates(
        L=float(L),
        mu=mu,
        trace=max(float(trace), float(L)),
        lanczos_steps=steps,
        passes=system.passes - p0,
        seconds=time.perf_counter() - t0,
        given=given,
    )


# --------------------------------------------------------------------------- batch size


def _sampling(sampler: str, n: int) -> tuple[int | None, bool]:
    """``(n, replace)`` that set the rule's noise factor for ``sampler``."""
    return (n, False) if sampler == "uniform" else (None, True)


def rule_parameters(method, batch_size, est: Estimates, sampler: str, n: int):
    """The rule's ``(eta, beta)`` at ``batch_size`` for this sampler's noise factor."""
    n_rule, replace = _sampling(sampler, n)
    return momentum_rule(method, batch_size, est.L, est.mu, est.trace, n=n_rule, replace=replace)


def _mode_rate(lam: float, method: str, eta: float, beta: float) -> float:
    """Squared modulus of the noise-free 2x2 mode ``lambda`` (the engine's recursion)."""
    gamma = beta if method == "nag" else 0.0
    a = 1 + beta - eta * (1 + gamma) * lam
    c = beta - eta * gamma * lam
    return float(np.max(np.abs(np.roots([1.0, -a, c]))) ** 2)


def predicted_steps(
    method: str, batch_size: float, est: Estimates, sampler: str, n: int, tol: float
) -> float:
    """Model steps to a relative residual ``tol`` (loss ``tol^2``) at the rule's
    parameters: the slower of the modes ``mu`` and ``L`` without noise (module docstring).
    ``batch_size=inf`` gives the saturated count ``T_sat``."""
    if math.isinf(batch_size):
        eta, beta = momentum_rule(method, n, est.L, est.mu, est.trace, n=n, replace=False)
    else:
        eta, beta = rule_parameters(method, batch_size, est, sampler, n)
    rho = max(_mode_rate(est.mu, method, eta, beta), _mode_rate(est.L, method, eta, beta))
    if rho >= 1:
        return math.inf
    return math.log(tol**2) / math.log(rho)


def batch_grid(n: int) -> list[int]:
    """Powers of two below ``n``, and ``n``."""
    return [2**k for k in range(int(math.log2(n)) + 1) if 2**k < n] + [n]


def auto_batch(
    method: str, est: Estimates, sampler: str, n: int, tol: float, factor: float = 2.0
) -> tuple[int, float]:
    """Smallest ``B`` of :func:`batch_grid` with ``T(B) <= factor * T_sat``, and ``T_sat``:
    the fewest predicted steps over the grid and the noise-free limit (for Nesterov the
    rule's noise-free limit can be slower than a finite batch, so the minimum is taken)."""
    grid = batch_grid(n)
    steps = [predicted_steps(method, B, est, sampler, n, tol) for B in grid]
    t_sat = min(min(steps), predicted_steps(method, math.inf, est, sampler, n, tol))
    for B, t in zip(grid, steps, strict=True):
        if t <= factor * t_sat:
            return B, t_sat
    return n, t_sat


# --------------------------------------------------------------------------- the solve


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


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: must be one of {list(choices)}, got {value!r}")


def _positive_or_none(name: str, value) -> None:
    if value is not None and not (_finite(value) and value > 0):
        raise ValueError(f"{name}: must be a number > 0 or None, got {value!r}")


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
    """Solve the consistent system ``A x = b`` with the momentum rule (module docstring).

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
        indefinite matrix for the coordinate sampler), before any work; an inconsistent
        system when the run finds one (module docstring, "Stopping"). Indefiniteness is
        caught by a negative diagonal entry or a negative Ritz value of the Lanczos
        estimate; a negative eigenvalue too small for the Lanczos steps to see makes the
        run diverge instead (stop reason ``diverged``). A callable ``M`` is not checked
        for symmetry.
    """
    import torch

    from minibatch_momentum.sampling.batches import MiniBatches
    from minibatch_momentum.simulate.engine import resolve_device

    _check_choice("method", method, METHODS)
    _check_choice("sampler", sampler, SAMPLERS)
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
    for name, value in (("max_seconds", max_seconds), ("L", L), ("mu", mu), ("trace", trace)):
        _positive_or_none(name, value)
    if batch_size != "auto" and not (_is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size: must be 'auto' or an integer >= 1, got {batch_size!r}")
    log = (
        verbose
        if callable(verbose)
        else (lambda msg: print(f"[solve] {msg}", file=sys.stderr))
        if verbose
        else None
    )

    kind = "psd" if sampler == "coordinate" else "rows"
    system = _System(A, b, kind)
    n, d = system.n, system.d
    if kind == "psd" and not system.callable:
        M = system.A
        scale = float(abs(M).max())
        asym = float(abs(M - M.T).max())
        if asym > SYMMETRY_TOL * scale:
            raise ValueError(
                f"A: is not symmetric (max |A - A^T| = {asym:.3g}, {asym / scale:.3g} of max "
                "|A|), as the coordinate sampler needs"
            )
    if batch_size != "auto" and sampler == "uniform" and batch_size > n:
        raise ValueError(f"batch_size: {batch_size} exceeds the n = {n} rows (uniform sampler)")
    x0 = np.zeros(d) if x0 is None else np.asarray(x0, dtype=np.float64)
    if x0.shape != (d,):
        raise ValueError(f"x0: must have shape ({d},), got {x0.shape}")
    _check_finite_values(x0, "x0")

    est = estimate(system, lanczos_steps=lanczos_steps, seed=seed, L=L, mu=mu, trace=trace)
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

    dev = resolve_device(device)
    t_start, p_start = time.perf_counter(), system.passes
    dense = not system.callable and not scipy.sparse.issparse(system.A)
    dt = torch.float64

    # The sampler's table: draw weights and per-row gradient weights (module docstring).
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
    w_t = None if w_row is None else torch.as_tensor(w_row, dtype=dt, device=dev)
    b_t = torch.as_tensor(system.b, dtype=dt, device=dev)
    A_t = torch.as_tensor(system.A, dtype=dt, device=dev) if dense else None
    b_norm = float(np.linalg.norm(system.b))

    x = torch.as_tensor(x0, dtype=dt, device=dev).clone()
    v = torch.zeros_like(x)
    xbar = torch.zeros_like(x)
    gamma = beta if method == "nag" else 0.0
    scale = -eta / B
    # A row step reads its B rows twice (A_S y, then A_S^T r), a coordinate step once.
    step_passes = (1.0 if kind == "psd" else 2.0) * B / n
    every = check_every or max(1, math.ceil(4.0 / step_passes))

    def rel_residual(point) -> tuple[float, torch.Tensor | np.ndarray]:
        if dense:
            system.passes += 1
            r = A_t @ point - b_t
            return float(torch.linalg.vector_norm(r)) / b_norm, r
        r = system.residual(point.cpu().numpy())
        return float(np.linalg.norm(r)) / b_norm, r

    res0, _ = rel_residual(x)
    history = [(0, 0.0, res0)]
    steps, reason, backoffs = 0, ("converged" if res0 <= tol else None), 0
    best_res, best_x = res0, x.clone()
    while reason is None:
        k = every if max_steps is None else min(every, max_steps - steps)
        block = stream.take(k)
        block_d = block.to(dev)  # one copy per check interval, not per step
        xbar.zero_()
        for t in range(k):
            idx_d = block_d[t]
            y = x if gamma == 0 else x + gamma * v
            if dense:
                rows = A_t.index_select(0, idx_d)
            else:
                rows = torch.as_tensor(system.rows(block[t].numpy()), dtype=dt, device=dev)
            r = rows @ y - b_t.index_select(0, idx_d)
            if w_t is not None:
                r = r * w_t.index_select(0, idx_d)
            v.mul_(beta)
            if kind == "psd":
                v.index_add_(0, idx_d, r, alpha=scale)
            else:
                v.addmv_(rows.T, r, alpha=scale)
            x.add_(v)
            xbar.add_(x)
        steps += k
        system.passes += k * step_passes
        res, _ = rel_residual(x)
        passes = system.passes - p_start
        history.append((steps, passes, res))
        if res < best_res:
            best_res = res
            best_x.copy_(x)
        if res <= tol:
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
        elif (
            passes >= max_passes
            or (max_steps is not None and steps >= max_steps)
            or (max_seconds is not None and time.perf_counter() - t_start >= max_seconds)
        ):
            reason = "budget"
        elif len(history) > 10 and steps > 4 * t_pred and res > 0.5 * history[len(history) // 2][2]:
            xbar.div_(k)
            _check_consistent(system, est, xbar, rel_residual, n)
            reason = "stalled"
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
        method=method,
        sampler=sampler,
        batch_size=int(B),
        eta=float(eta),
        beta=float(beta),
        estimates=est,
        b_sgd=est.b_sgd,
        b_sat=float(b_sat),
        predicted_steps=float(t_pred),
        steps=steps,
        passes=system.passes - p_start,
        seconds=time.perf_counter() - t_start,
        backoffs=backoffs,
        device=str(dev),
    )


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


# --------------------------------------------------------------------------- advise

EXACT_MAX_WORK = 2e10  # n d^2 above which advise skips the eigendecomposition


@dataclass(frozen=True)
class Advice:
    """What :func:`advise` returns: the estimates, per method the rule's ``B_sat`` and
    ``auto`` batch size, and the table of predicted steps against ``B``."""

    estimates: Estimates
    b_sat: dict
    auto: dict
    table: object  # pandas.DataFrame
    exact: bool

    def report(self) -> str:
        e = self.estimates
        lines = [
            f"L = {e.L:.4g}, mu = {e.mu:.4g} (kappa {e.kappa:.4g}), tr H = {e.trace:.4g}",
            f"B*_SGD = tr H / L = {e.b_sgd:.4g}  (plain SGD stops scaling here)",
        ]
        for m in self.b_sat:
            lines.append(
                f"B_sat ({m}) = {self.b_sat[m]:.4g}; auto batch size ({m}) = {self.auto[m]}"
            )
        lines.append(
            "steps to the tolerance against B: T_model = the rule's slowest mode without "
            "noise (what `auto` uses)"
            + (
                "; T_rule / T_opt = exact Gaussian-rows theory with this matrix's "
                "eigenvalues, at the rule's / the best constant (eta, beta)"
                if self.exact
                else "; exact theory skipped (matrix too large or not dense)"
            )
        )
        lines.append(self.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(lines)


def advise(
    A,
    *,
    methods=("sgd", "hb", "nag"),
    sampler: str = "uniform",
    tol: float = 1e-6,
    factor: float = 2.0,
    lanczos_steps: int = 40,
    seed: int = 0,
    exact: bool | None = None,
) -> Advice:
    """Predicted steps to relative residual ``tol`` against the batch size, before any solve.

    ``A`` as in :func:`solve` (no right-hand side needed). The model column is what
    ``batch_size="auto"`` uses; with ``exact`` (default: when ``A`` is dense and
    ``n d^2 <= 2e10``) the eigenvalues of ``H`` are computed and the exact Gaussian-rows
    theory (:mod:`~minibatch_momentum.theory`) gives the rule's and the tuned ``T(B)``
    with the sampler's noise factor.
    """
    import pandas as pd

    from minibatch_momentum.theory.common import iterations_from_rate
    from minibatch_momentum.theory.gaussian import Gaussian
    from minibatch_momentum.theory.rule import rule_for_spectrum
    from minibatch_momentum.theory.tuning import batch_scaling

    for m in methods:
        _check_choice("method", m, METHODS)
    _check_choice("sampler", sampler, SAMPLERS)
    kind = "psd" if sampler == "coordinate" else "rows"
    n_rows = A.shape[0] if hasattr(A, "shape") else None
    if n_rows is None:
        raise ValueError("A: advise needs an array or a sparse matrix (with a shape)")
    system = _System(A, np.ones(n_rows), kind)
    n, d = system.n, system.d
    est = estimate(system, lanczos_steps=lanczos_steps, seed=seed)
    dense = isinstance(system.A, np.ndarray)
    if exact is None:
        exact = dense and n * d * d <= EXACT_MAX_WORK
    grid = batch_grid(n)
    table = {"B": grid}
    b_sat, auto = {}, {}
    if exact:
        if not dense:
            raise ValueError("exact: needs a dense A")
        H = system.A if kind == "psd" else system.A.T @ system.A / n
        lam = np.linalg.eigvalsh(0.5 * (H + H.T))
        lam = lam[lam > 1e-10 * lam[-1]]
        n_rule, replace = _sampling(sampler, n)
        eps = tol**2
    for m in methods:
        b_sat[m] = float(saturation_batch(m, est.L, est.mu, est.trace))
        auto[m] = auto_batch(m, est, sampler, n, tol, factor)[0]
        table[f"T_model_{m}"] = [predicted_steps(m, B, est, sampler, n, tol) for B in grid]
        if exact:
            pts = [rule_for_spectrum(m, B, lam, n=n_rule, replace=replace) for B in grid]
            model = Gaussian(lam, n=n_rule, replace=replace)
            rho = [model.rate(m, B, e, bb) for B, (e, bb) in zip(grid, pts, strict=True)]
            table[f"T_rule_{m}"] = iterations_from_rate(np.array(rho), eps)
            tuned = batch_scaling(model, m, grid, eps=eps)
            table[f"T_opt_{m}"] = tuned.iterations
    return Advice(
        estimates=est, b_sat=b_sat, auto=auto, table=pd.DataFrame(table), exact=bool(exact)
    )
