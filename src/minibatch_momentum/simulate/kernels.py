r"""Compiled steps of SGD, heavy ball and Nesterov for small batches on the CPU.

At a batch of a few rows a step of :func:`~minibatch_momentum.simulate.engine.run_grid`
is five tiny tensor operations, and PyTorch's per-operation dispatch (a few
microseconds each) costs more than their arithmetic: at ``d = 40`` and a dozen runs the
arithmetic is ~1,000 flops, the dispatch ~8 microseconds. :func:`classic_checks` runs
thousands of steps in one compiled call (Numba, no C compiler needed), with the loss
checks between them, and returns at the first check where a run stops: between two such
checks there is nothing for Python to do. A step is

.. code-block:: text

    S[b, r] = -eta[r] / B * (w_{i_b} . E[:, r] + gamma[r] w_{i_b} . V[:, r])
    V[j, r] = beta[r] V[j, r] + sum_b u_{i_b}[j] S[b, r]
    E[j, r] = E[j, r] + V[j, r]

the arithmetic of :func:`~minibatch_momentum.simulate.engine._step` (the module docstring
of the engine states it: ``gamma = beta`` for Nesterov's look-ahead, else 0) in another
order of summation, so the iterates agree with the PyTorch path to rounding (about
``1e-15`` relative per step in float64; the tests hold both to ``torch.optim.SGD`` and to
each other). The loss checks sum ``lam . e^2`` in their own order too, so the loss
curves agree with the PyTorch path's to rounding, with the same counts (the tests hold
both). The update is one pass over the ``(d, R)`` state after the products ``S``: at
``B = 1`` that pass also sums the next step's products, so the state is read once per
step; at ``B = 2 .. 4`` the products are one BLAS call. From a few dozen rows on,
PyTorch's matrix products win; the engine takes the compiled path up to its
``COMPILED_MAX_BATCH`` rows.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _classic_checks(E, V, U, W, block, neg_eta, beta, nesterov, plain, K, lam, scale, stop, rel):
    # The steps of block, the relative loss after every K into rel[c], up to and
    # including the first check at which a run stops (stop = (eps, blowup)).
    c = 0
    for start in range(0, block.shape[0], K):
        _classic_steps(E, V, U, W, block[start : start + K], neg_eta, beta, nesterov, plain)
        _relative_loss(E, lam, scale, rel[c])
        c += 1
        if _any_stops(rel[c - 1], stop[0], stop[1]):
            break
    return c


@numba.njit(cache=True, nogil=True)
def _relative_loss(E, lam, scale, out):
    out[:] = 0.0
    for j in range(E.shape[0]):
        Ej, lj = E[j], lam[j]
        for r in range(E.shape[1]):
            out[r] += lj * (Ej[r] * Ej[r])
    for r in range(E.shape[1]):
        out[r] *= scale


@numba.njit(cache=True, nogil=True)
def _any_stops(rel, eps, blowup):
    # What run_grid's bookkeeping stops a run at: a loss at most eps, above blowup or
    # not finite (NaN fails every comparison; inf passes "<= blowup" when blowup = inf).
    for r in range(rel.shape[0]):
        if not (eps < rel[r] <= blowup and rel[r] < np.inf):
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _classic_steps(E, V, U, W, block, neg_eta, beta, nesterov, plain):
    if block.shape[1] == 1:
        _one_row_steps(E, V, U, W, block[:, 0], neg_eta, beta, nesterov, plain)
        return
    d, R = E.shape
    for t in range(block.shape[0]):
        rows = block[t]
        # Nesterov's look-ahead Y = E + beta V enters as w . E + beta (w . V), with no
        # pass to form Y.
        Ws = W[rows]
        S = np.dot(Ws, E)
        if nesterov:
            S += np.dot(Ws, V) * beta
        S *= neg_eta
        for j in range(d):
            for r in range(R):
                V[j, r] = 0.0 if plain else V[j, r] * beta[r]
            for b in range(rows.shape[0]):
                u = U[rows[b], j]
                for r in range(R):
                    V[j, r] += u * S[b, r]
            for r in range(R):
                E[j, r] += V[j, r]


@numba.njit(cache=True, nogil=True)
def _one_row_steps(E, V, U, W, rows, neg_eta, beta, nesterov, plain):
    # At B = 1 a step's pass over the state also sums the next step's products w . E
    # (and w . V): the state is read once per step, not twice (a gemv, then the
    # update). Past the L1 cache, reading the state is the step's cost: 1.1-1.6x faster.
    R = E.shape[1]
    # Separate arrays, not rows of one (5, R) array: LLVM then knows that they do not
    # overlap the state and vectorizes the passes (4x faster).
    S, S2 = np.zeros(R, E.dtype), np.zeros(R, E.dtype)
    N, N2 = np.zeros(R, E.dtype), np.zeros(R, E.dtype)
    s = np.empty(R, E.dtype)
    _products(W[rows[0]], E, V, nesterov, S, S2)
    for t in range(rows.shape[0]):
        for r in range(R):
            s[r] = ((S[r] + S2[r] * beta[r]) if nesterov else S[r]) * neg_eta[r]
        u = U[rows[t]]
        w = W[rows[t + 1]] if t + 1 < rows.shape[0] else u  # the last step's is unused
        N[:] = 0.0
        N2[:] = 0.0
        if plain:
            _sgd_pass(E, u, s, w, N)
        else:
            _momentum_pass(E, V, u, s, beta, w, N, N2, nesterov)
        S, N, S2, N2 = N, S, N2, S2


@numba.njit(cache=True, nogil=True)
def _products(w, E, V, nesterov, S, S2):
    for j in range(E.shape[0]):
        Ej, Vj, wj = E[j], V[j], w[j]
        for r in range(E.shape[1]):
            S[r] += wj * Ej[r]
        if nesterov:
            for r in range(E.shape[1]):
                S2[r] += wj * Vj[r]


# The passes index rows E[j], V[j] as 1-d arrays: written as E[j, r], with the next
# products summed in the same loop, LLVM left them scalar (3-6x slower).
@numba.njit(cache=True, nogil=True)
def _sgd_pass(E, u, s, w, N):
    # SGD never reads V back, and storing the step there too made this pass 3x slower.
    for j in range(E.shape[0]):
        Ej, uj, wj = E[j], u[j], w[j]
        for r in range(E.shape[1]):
            e = Ej[r] + uj * s[r]
            Ej[r] = e
            N[r] += wj * e


@numba.njit(cache=True, nogil=True)
def _momentum_pass(E, V, u, s, beta, w, N, N2, nesterov):
    for j in range(E.shape[0]):
        Ej, Vj, uj, wj = E[j], V[j], u[j], w[j]
        for r in range(E.shape[1]):
            v = Vj[r] * beta[r] + uj * s[r]
            Vj[r] = v
            e = Ej[r] + v
            Ej[r] = e
            N[r] += wj * e
            if nesterov:  # loop-invariant: LLVM makes two loops of this one
                N2[r] += wj * v


def classic_checks(
    E: np.ndarray,
    V: np.ndarray,
    U: np.ndarray,
    W: np.ndarray,
    block: np.ndarray,
    neg_eta: np.ndarray,
    beta: np.ndarray,
    method: str,
    check_every: int,
    lam: np.ndarray,
    scale: float,
    eps: float,
    blowup: float,
) -> np.ndarray:
    """Advance all runs through the steps of ``block`` with a loss check every
    ``check_every`` of them, in place, up to and including the first check at which some
    run stops; return the relative losses ``scale * lam . e^2`` of the checks done,
    ``(c, R)``.

    A run stops at a loss at most ``eps``, above ``blowup`` or not finite, what
    :func:`~minibatch_momentum.simulate.engine.run_grid` stops it at.

    Parameters
    ----------
    E, V : (d, R) C-contiguous arrays, the errors ``e_t`` and ``e_t - e_{t-1}`` (for
        ``sgd``, ``V`` is scratch: plain SGD never reads it).
    U, W : (m, d) tables: a step applies ``sum_b u_{i_b} w_{i_b}^T`` (``U is W`` for the
        symmetric samplers).
    block : (k, B) integer row indices, one batch per step shared by all runs.
    neg_eta : (R,) ``-eta`` times the tables' scale (``1 / B`` for gradient samplers).
    beta : (R,) momentum (ignored for ``sgd``).
    method : ``sgd``, ``hb`` or ``nag``.
    check_every : steps between two checks (the last check ends the block).
    lam, scale : the loss's ``(d,)`` weights and factor.
    eps, blowup : the thresholds.
    """
    R = E.shape[1]
    rel = np.empty((-(-block.shape[0] // check_every), R), E.dtype)
    # The thresholds in the losses' precision, as NumPy compares a float32 array with a
    # Python float in the bookkeeping (float32(1e-3) > 1e-3, say).
    stop = (E.dtype.type(eps), E.dtype.type(blowup))
    c = _classic_checks(
        E, V, U, W, block, neg_eta, beta, method == "nag", method == "sgd",
        check_every, lam, scale, stop, rel,
    )  # fmt: skip
    return rel[:c]
