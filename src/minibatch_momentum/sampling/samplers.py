r"""Samplers: which rows (or coordinates) a step draws, and what it does with them.

Every sampler gives an unbiased estimate of the gradient ``H e`` at the error
``e = y - x*`` from ``B`` draws ``i_1 .. i_B``::

    g_S = Z_S e,    Z_S = (1/B) sum_k u_{i_k} v_{i_k}^T,    E[Z_S] = H,

with a table of ``m`` pairs ``(u_i, v_i)`` and draw probabilities ``p_i``:

=====================  ========  ===================================  ========================
sampler                problem   ``(u_i, v_i)``, ``p_i``              textbook step (B = 1)
=====================  ========  ===================================  ========================
without_replacement    rows      ``(a_i, a_i)``, uniform, B distinct  mini-batch SGD
with_replacement       rows      ``(a_i, a_i)``, uniform, i.i.d.
kaczmarz               rows      ``r a_i / ||a_i||`` twice,           ``eta = 1 / tr H``:
                                 ``p_i ∝ ||a_i||^2``, i.i.d.;         randomized Kaczmarz
                                 ``r^2 = tr H`` (mean squared norm)   (Strohmer-Vershynin)
coordinate             psd       ``(e_j / p_j, m_j)``, ``p_j ∝ M_jj``, ``eta = 1 / tr M``:
                                 i.i.d. (``m_j``: row ``j`` of M)     coordinate descent
kaczmarz_block         rows      projection ``P_S`` onto the row      ``eta = 1``: block
                                 space of the B sampled rows,         Kaczmarz (Needell-
                                 uniform, B distinct                  Tropp)
=====================  ========  ===================================  ========================

``kaczmarz`` is SGD on the row-normalized system ``r a_i / ||a_i||`` with importance
sampling: ``H`` (so the loss and ``x*``) is unchanged, only the noise differs. Its
mini-batch form averages the B projections (Needell-Ward style); ``kaczmarz_block``
instead projects onto the B rows' common solution set, ``Z_S = P_S`` (its mean is not
``H``, and it has no closed-form noise operator; step ``eta`` is a relaxation factor).
``coordinate`` has non-symmetric ``Z``: it changes the B sampled coordinates only.

The tables are numpy only; the index streams a step draws from are
:class:`~minibatch_momentum.sampling.batches.MiniBatches` (torch), one per table and seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROW_SAMPLERS = ("without_replacement", "with_replacement", "kaczmarz", "kaczmarz_block")
COORDINATE_SAMPLERS = ("coordinate",)
SAMPLERS = ROW_SAMPLERS + COORDINATE_SAMPLERS
# Z_S is a projection (no noise operator, no closed-form theory; eta a relaxation factor)
PROJECTION_SAMPLERS = ("kaczmarz_block",)
# B distinct rows per step, so B <= the number of rows
DISTINCT_ROW_SAMPLERS = ("without_replacement", "kaczmarz_block")
# Rows drawn uniformly: the Gaussian closed form is exact for Gaussian rows, and the S6
# baselines (which model the uniform draw) run only with these
UNIFORM_SAMPLERS = ("without_replacement", "with_replacement")


def problem_kind(sampler: str) -> str:
    """``"rows"`` or ``"psd"``: the kind of problem ``sampler`` draws from."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: must be one of {list(SAMPLERS)}, got {sampler!r}")
    return "psd" if sampler in COORDINATE_SAMPLERS else "rows"


def noise_factor(batch_size: float, n: int | None = None, replace: bool = True) -> float:
    """The factor ``c_B`` in front of the sampling-noise operator of ``B`` draws (the
    exact theory's ``N_B = c_B N_1``).

    Parameters
    ----------
    batch_size : rows per step, ``B >= 1`` (a float is accepted: the theory is smooth
        in ``B``).
    n : number of rows; needed only without replacement.
    replace : rows drawn i.i.d. (``c_B = 1 / B``) or ``B`` distinct rows
        (``c_B = (n - B) / (B (n - 1))``, zero at ``B = n``).
    """
    B = float(batch_size)
    if not B >= 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if replace:
        return 1.0 / B
    if n is None:
        raise ValueError("sampling without replacement needs n")
    if B > n:
        raise ValueError(f"batch_size={batch_size} exceeds n={n} without replacement")
    return 0.0 if n == 1 else (n - B) / (B * (n - 1))


@dataclass(frozen=True)
class Sampling:
    """A sampler's table for one problem, in the eigenbasis of ``H`` (see module docstring).

    Attributes
    ----------
    U, V : (m, d) arrays, rows ``u_i`` and ``v_i`` (the same array when ``Z`` is symmetric).
    p : (m,) draw probabilities, or None for uniform draws.
    replace : i.i.d. draws (else ``B`` distinct ones).
    project : ``Z_S`` is the projection onto the span of the sampled ``v_i``
        (``kaczmarz_block``) instead of the average of ``u_i v_i^T``.
    """

    U: np.ndarray
    V: np.ndarray
    p: np.ndarray | None
    replace: bool
    project: bool = False

    @property
    def m(self) -> int:
        return self.V.shape[0]

    @property
    def symmetric(self) -> bool:
        return self.U is self.V

    def stream(self, batch_size: int, seed: int):
        """The table's :class:`~minibatch_momentum.sampling.batches.MiniBatches` (imports torch)."""
        from minibatch_momentum.sampling.batches import MiniBatches

        return MiniBatches(self.m, batch_size, seed, replace=self.replace, weights=self.p)

    def noise_factor(self, batch_size: float) -> float:
        """``c_B`` with ``N_B = c_B N_1`` (:func:`noise_factor`)."""
        return noise_factor(batch_size, self.m, self.replace)


def sampling(problem, sampler: str, *, eigenbasis: bool = True) -> Sampling:
    """The :class:`Sampling` of ``sampler`` on ``problem``, with ``u_i, v_i`` in the
    eigenbasis of ``H`` (where the engine works; cached on the problem) or, with
    ``eigenbasis=False``, in the problem's own coordinates.

    Raises ``ValueError`` when the sampler does not apply to the problem's kind
    (row samplers need a ``rows`` problem, ``coordinate`` a ``psd`` one).
    """
    kind = problem_kind(sampler)
    if kind != problem.kind:
        raise ValueError(
            f"sampler {sampler!r} draws from a {kind!r} problem, this one is {problem.kind!r}"
        )
    if not eigenbasis:
        return _build(problem, sampler, None)
    if sampler not in problem.tables:
        problem.tables[sampler] = _build(problem, sampler, problem.eigvecs)
    return problem.tables[sampler]


def check_batch_sizes(problem, sampler: str, batch_sizes) -> None:
    """Raise ``ValueError`` (naming ``batch_size``) unless every size can be drawn: at
    least 1 and, for a sampler of distinct rows, at most its table's rows. Jobs call this
    before their first run, so a bad size costs no compute."""
    draws = sampling(problem, sampler)
    for B in batch_sizes:
        if not (B >= 1 and (draws.replace or B <= draws.m)):
            limit = "" if draws.replace else f" and <= {draws.m} (the {sampler} sampler's rows)"
            raise ValueError(f"batch_size: must be >= 1{limit}, got {B}")


def _build(problem, sampler: str, basis: np.ndarray | None) -> Sampling:
    def rotate(X):
        return X if basis is None else X @ basis

    if sampler == "coordinate":
        M = problem.A
        diag = np.diag(M).copy()
        p = diag / diag.sum()
        with np.errstate(divide="ignore"):
            inv = np.where(p > 0, 1.0 / p, 0.0)  # a zero diagonal is never drawn
        U = np.diag(inv) if basis is None else basis * inv[:, None]  # rows e_j / p_j
        return Sampling(U=U, V=rotate(M), p=p, replace=True)
    Z = problem.A if basis is None else problem.A_eig
    if sampler == "kaczmarz":
        norms2 = np.einsum("ij,ij->i", Z, Z)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms2 > 0, np.sqrt(norms2.mean() / norms2), 0.0)
        Zn = Z * scale[:, None]
        return Sampling(U=Zn, V=Zn, p=norms2 / norms2.sum(), replace=True)
    replace = sampler == "with_replacement"
    return Sampling(U=Z, V=Z, p=None, replace=replace, project=sampler in PROJECTION_SAMPLERS)
