r"""Compiled steps of SGD, heavy ball and Nesterov for small batches on the CPU.

At a batch of a few rows a step of :func:`~minibatch_momentum.simulate.engine.run_grid`
is five tiny tensor operations, and PyTorch's per-operation dispatch (a few
microseconds each) costs more than their arithmetic: at ``d = 40`` and a dozen runs the
arithmetic is ~1,000 flops, the dispatch ~8 microseconds. :func:`classic_steps` runs the
``k`` steps between two loss checks in one compiled call (Numba, no C compiler needed).
A step is the batch's products through BLAS (a gemv at ``B = 1``) and one pass over the
``(d, R)`` state:

.. code-block:: text

    S[b, r] = -eta[r] / B * (w_{i_b} . E[:, r] + gamma[r] w_{i_b} . V[:, r])
    V[j, r] = beta[r] V[j, r] + sum_b u_{i_b}[j] S[b, r]
    E[j, r] = E[j, r] + V[j, r]

the arithmetic of :func:`~minibatch_momentum.simulate.engine._step` (the module docstring
of the engine states it: ``gamma = beta`` for Nesterov's look-ahead, else 0) in another
order of summation, so the iterates agree with the PyTorch path to rounding (about
``1e-15`` relative per step in float64; the tests hold both to ``torch.optim.SGD`` and to
each other). From a few dozen rows on, PyTorch's matrix products win; the engine takes
the compiled path up to its ``COMPILED_MAX_BATCH`` rows.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _classic_steps(E, V, U, W, block, neg_eta, beta, nesterov, plain):
    d, R = E.shape
    for t in range(block.shape[0]):
        rows = block[t]
        # The batch's products w_i . Y through BLAS (a gemv at B = 1): the one reduction
        # of the step, where a loop leaves the vector units half idle. Nesterov's
        # look-ahead Y = E + beta V enters as w . E + beta (w . V), with no pass to form Y.
        Ws = W[rows[0]].reshape(1, d) if rows.shape[0] == 1 else W[rows]
        S = np.dot(Ws, E)
        if nesterov:
            S += np.dot(Ws, V) * beta
        S *= neg_eta
        if rows.shape[0] == 1 and plain:  # one pass over the state: the common cases
            _sgd_pass(E, U[rows[0]], S[0])
            continue
        if rows.shape[0] == 1:
            _momentum_pass(E, V, U[rows[0]], S[0], beta)
            continue
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
def _sgd_pass(E, u, s):
    # SGD never reads V back, and storing the step there too made this pass 3x slower.
    for j in range(E.shape[0]):
        for r in range(E.shape[1]):
            E[j, r] += u[j] * s[r]


@numba.njit(cache=True, nogil=True)
def _momentum_pass(E, V, u, s, beta):
    for j in range(E.shape[0]):
        for r in range(E.shape[1]):
            v = V[j, r] * beta[r] + u[j] * s[r]
            V[j, r] = v
            E[j, r] += v


def classic_steps(
    E: np.ndarray,
    V: np.ndarray,
    U: np.ndarray,
    W: np.ndarray,
    block: np.ndarray,
    neg_eta: np.ndarray,
    beta: np.ndarray,
    method: str,
) -> None:
    """Advance all runs by the ``k`` steps of ``block``, in place.

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
    """
    _classic_steps(E, V, U, W, block, neg_eta, beta, method == "nag", method == "sgd")
