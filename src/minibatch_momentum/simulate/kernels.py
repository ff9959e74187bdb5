r"""Compiled steps of SGD, heavy ball and Nesterov for small batches on the CPU.

At a batch of a few rows a step of :func:`~minibatch_momentum.simulate.engine.run_grid`
is five tiny tensor operations, and PyTorch's per-operation dispatch (a few
microseconds each) costs more than their arithmetic: at ``d = 40`` and a dozen runs the
arithmetic is ~1,000 flops, the dispatch ~8 microseconds. :func:`classic_steps` runs the
``k`` steps between two loss checks in one compiled call (Numba, no C compiler needed)
and fuses each step into two passes over the ``(d, R)`` state:

.. code-block:: text

    S[b, r] = -eta[r] / B * sum_j v_{i_b}[j] Y[j, r]     Y = E + gamma V   (look-ahead)
    V[j, r] = beta[r] V[j, r] + sum_b u_{i_b}[j] S[b, r]
    E[j, r] = E[j, r] + V[j, r]

the arithmetic of :func:`~minibatch_momentum.simulate.engine._step` (the module docstring
of the engine states it), in a different order of summation: the iterates agree with
the PyTorch path to rounding (about ``1e-15`` relative per step in float64; the tests
hold both to ``torch.optim.SGD`` and to each other). From a few dozen rows on, PyTorch's
matrix products win; the engine takes the compiled path up to its
``COMPILED_MAX_BATCH`` rows.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _classic_steps(E, V, U, W, block, neg_eta, beta, gamma, nesterov, plain):
    k, B = block.shape
    d, R = E.shape
    S = np.empty((B, R), dtype=E.dtype)
    Y = np.empty((d, R), dtype=E.dtype) if nesterov else E
    for t in range(k):
        if nesterov:
            for j in range(d):
                for r in range(R):
                    Y[j, r] = E[j, r] + V[j, r] * gamma[r]
        for b in range(B):
            i = block[t, b]
            for r in range(R):
                S[b, r] = 0.0
            for j in range(d):
                w = W[i, j]
                for r in range(R):
                    S[b, r] += w * Y[j, r]
            for r in range(R):
                S[b, r] *= neg_eta[r]
        for j in range(d):
            if plain:
                for r in range(R):
                    V[j, r] = 0.0
            else:
                for r in range(R):
                    V[j, r] *= beta[r]
            for b in range(B):
                u = U[block[t, b], j]
                for r in range(R):
                    V[j, r] += u * S[b, r]
            for r in range(R):
                E[j, r] += V[j, r]


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
    E, V : (d, R) C-contiguous arrays, the errors ``e_t`` and ``e_t - e_{t-1}``.
    U, W : (m, d) tables: a step applies ``sum_b u_{i_b} w_{i_b}^T`` (``U is W`` for the
        symmetric samplers).
    block : (k, B) integer row indices, one batch per step shared by all runs.
    neg_eta : (R,) ``-eta`` times the tables' scale (``1 / B`` for gradient samplers).
    beta : (R,) momentum (ignored for ``sgd``).
    method : ``sgd``, ``hb`` or ``nag``.
    """
    _classic_steps(E, V, U, W, block, neg_eta, beta, beta, method == "nag", method == "sgd")


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _per_run_apply(Y, U, W, idx, G):
    d, R = Y.shape
    y = np.empty(d, dtype=Y.dtype)
    g = np.empty(d, dtype=Y.dtype)
    for r in range(R):
        y[:] = Y[:, r]
        g[:] = 0.0
        for b in range(idx.shape[1]):
            i = idx[r, b]
            s = 0.0
            for j in range(d):
                s += W[i, j] * y[j]
            for j in range(d):
                g[j] += U[i, j] * s
        G[:, r] = g


def per_run_apply(Y: np.ndarray, U: np.ndarray, W: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``G[:, r] = sum_b u_{i_rb} (w_{i_rb} . Y[:, r])``: each of ``R`` runs applies its own
    batch ``idx[r]`` (``(R, B)``) to its column of ``Y`` (``(d, R)``), as in a Monte Carlo.

    The PyTorch path gathers the ``R B`` rows into a tensor and does two batched products;
    at ``R = 400``, ``B = 64`` the gather alone costs more than the arithmetic, which this
    does straight from the tables. Each dot product is summed in SIMD lanes
    (``reassoc``): deterministic on a machine, equal to the PyTorch path to rounding.
    """
    G = np.empty_like(Y)
    _per_run_apply(Y, U, W, idx, G)
    return G
