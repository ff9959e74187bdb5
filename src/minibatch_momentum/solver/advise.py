"""``mbm advise``: predicted steps to a tolerance against the batch size, before any
solve (:func:`advise`), from the model ``batch_size="auto"`` uses
(:mod:`~minibatch_momentum.solver.batch_size`) and, for a dense matrix of moderate size,
the exact Gaussian-rows theory with its eigenvalues."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minibatch_momentum.solver.batch_size import _sampling, auto_batch, batch_grid, predicted_steps
from minibatch_momentum.solver.estimates import Estimates, estimate
from minibatch_momentum.solver.system import METHODS, SAMPLERS, _check_choice, _System
from minibatch_momentum.theory.rule import saturation_batch

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
