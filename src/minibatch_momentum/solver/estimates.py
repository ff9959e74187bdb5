"""What the momentum rule needs, measured on the system (:func:`estimate`):

- ``L`` and ``mu`` (largest and smallest non-zero eigenvalue of ``H``) from ``k`` steps of
  Lanczos with full reorthogonalization on ``H`` as a
  ``scipy.sparse.linalg.LinearOperator``, started in the range of ``H`` (``v_0 = A^T w``)
  so the null space of a rank-deficient or wide ``A`` never shows up as ``mu = 0``;
- ``tr H`` exactly, as the mean squared row norm (rows) or ``sum_j M_jj`` (PSD).

What the estimates are worth
----------------------------
``L`` converges in a few Lanczos steps. The smallest Ritz value is an *upper* bound on
``mu`` (Cauchy interlacing) that reaches it only after about ``sqrt(kappa)`` steps, as many
as conjugate gradients needs to solve the system. An over-estimated ``mu`` is safe: the
rule then damps more (``1 - beta ∝ sqrt(mu / L)``) and its ceiling
``eta / (1 - beta) ∝ 1 / sqrt(L mu)`` is lower, so the run stays stable and the modes
below the estimate converge more slowly than predicted. Pass ``mu`` (or ``L``,
``trace``) when it is known.

Indefiniteness of a ``psd`` system is caught by a negative diagonal entry or a negative
Ritz value; a negative eigenvalue too small for the Lanczos steps to see makes the run
diverge instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from minibatch_momentum.checks import finite as _finite
from minibatch_momentum.solver.system import _System

PSD_TOL = 1e-8  # a Ritz value below -PSD_TOL * L proves an indefinite matrix


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
