"""The linear system the solver reads (:class:`_System`: a dense array, a scipy sparse
matrix, or a callable returning rows, with every product counted in passes) and the
checks of its input and of :func:`~minibatch_momentum.solver.run.solve`'s arguments.

Problems: ``rows``, ``f(x) = ||A x - b||^2 / (2n)`` with ``H = A^T A / n`` (samplers
``uniform`` and ``kaczmarz``), and ``psd``, ``f(x) = x^T M x / 2 - b^T x`` with ``H = M``
(sampler ``coordinate``; ``M`` must be square, symmetric and positive semi-definite).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from minibatch_momentum.checks import finite as _finite

METHODS = ("hb", "nag", "sgd")
SAMPLERS = ("uniform", "kaczmarz", "coordinate")
SYMMETRY_TOL = 1e-10
_CHUNK = 4096  # rows per block when a callable or sparse matrix is streamed


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


def _check_symmetric(system: _System) -> None:
    """Raise unless the (in-memory) matrix ``M`` of a ``psd`` system is symmetric to
    :data:`SYMMETRY_TOL` of its largest entry (a callable ``M`` is not checked)."""
    if system.kind == "psd" and not system.callable:
        M = system.A
        scale = float(abs(M).max())
        asym = float(abs(M - M.T).max())
        if asym > SYMMETRY_TOL * scale:
            raise ValueError(
                f"A: is not symmetric (max |A - A^T| = {asym:.3g}, {asym / scale:.3g} of max "
                "|A|), as the coordinate sampler needs"
            )


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: must be one of {list(choices)}, got {value!r}")


def _positive_or_none(name: str, value) -> None:
    if value is not None and not (_finite(value) and value > 0):
        raise ValueError(f"{name}: must be a number > 0 or None, got {value!r}")
