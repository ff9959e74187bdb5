"""User-supplied matrices (``.npy``, ``.npz``, Matrix Market): read, checked for the
interpolation regime, solved for ``x*``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.linalg

from minibatch_momentum.problems.system import (
    CONSISTENCY_TOL,
    Problem,
    check_form,
    from_form,
    require_consistent,
)

MATRIX_SUFFIXES = (".npy", ".npz", ".mtx")
MAX_N, MAX_D = 100_000, 2048
SYMMETRY_TOL = 1e-10  # max |M - M^T| relative to max |M|
PSD_TOL = 1e-10  # smallest eigenvalue >= -PSD_TOL * largest (as in from_psd)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _check_suffix(path: str, field: str) -> tuple[Path, str]:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in MATRIX_SUFFIXES:
        raise ValueError(
            f"{field}: {path!r} has an unsupported extension {suffix or '(none)'!r}; "
            f"expected one of {', '.join(MATRIX_SUFFIXES)}"
        )
    if not p.is_file():
        raise ValueError(
            f"{field}: file not found: {path!r} (relative paths are taken from the "
            f"working directory, {os.getcwd()})"
        )
    return p, suffix


def _check_shape(shape: tuple, path: str, field: str, max_n: int, max_d: int) -> None:
    if len(shape) != 2:
        raise ValueError(f"{field}: {path!r} is not a 2-d matrix (shape {tuple(shape)})")
    if 0 in shape:
        raise ValueError(f"{field}: {path!r} is empty (shape {tuple(shape)})")
    for size, limit, what in ((shape[0], max_n, "rows"), (shape[1], max_d, "columns")):
        if size > limit:
            name = "max_n" if what == "rows" else "max_d"
            raise ValueError(
                f"{field}: {path!r} is too large for the profile: {size} {what} (shape "
                f"{tuple(shape)}), more than {name}={limit}"
            )


def _as_real(a, path: str, field: str) -> np.ndarray:
    import scipy.sparse

    if scipy.sparse.issparse(a):
        a = a.toarray()
    a = np.asarray(a)
    if np.iscomplexobj(a):
        raise ValueError(f"{field}: {path!r} has complex entries; a real matrix is needed")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"{field}: {path!r} is not numeric (dtype {a.dtype})")
    return np.array(a, dtype=np.float64)


def _check_finite(a: np.ndarray, path: str, field: str) -> None:
    if n_nan := int(np.isnan(a).sum()):
        raise ValueError(f"{field}: {path!r} contains NaN ({n_nan} entries)")
    if n_inf := int(np.isinf(a).sum()):
        raise ValueError(f"{field}: {path!r} contains inf ({n_inf} entries)")


def _read_matrix(path: str, max_n: int, max_d: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The matrix in ``path`` and, for ``.npz``, its array ``b`` if present. The size is
    checked before the data are read where the format allows (.npy, .mtx)."""
    p, suffix = _check_suffix(path, "path")
    b = None
    try:
        if suffix == ".npy":
            a = np.load(p, mmap_mode="r", allow_pickle=False)
            _check_shape(a.shape, path, "path", max_n, max_d)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if "A" not in z.files:
                    raise ValueError(f"path: {path!r} has no array 'A' (found {z.files})")
                a = z["A"]
                _check_shape(a.shape, path, "path", max_n, max_d)
                b = z["b"] if "b" in z.files else None
        else:
            import scipy.io

            rows, cols, _entries, _fmt, field, _sym = scipy.io.mminfo(p)
            _check_shape((rows, cols), path, "path", max_n, max_d)
            if field == "complex":
                raise ValueError(f"path: {path!r} has complex entries; a real matrix is needed")
            a = scipy.io.mmread(p)
        a = _as_real(a, path, "path")
    except ValueError as exc:
        if str(exc).startswith("path: "):
            raise
        raise ValueError(f"path: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    except Exception as exc:  # unreadable: corrupt archive, bad header, pickled objects...
        raise ValueError(f"path: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    _check_shape(a.shape, path, "path", max_n, max_d)
    return a, b


def _read_vector(path: str) -> np.ndarray:
    p, suffix = _check_suffix(path, "rhs")
    if suffix == ".npz":
        raise ValueError(f"rhs: {path!r}: give the right-hand side as .npy or .mtx")
    import scipy.io

    try:
        v = np.load(p, allow_pickle=False) if suffix == ".npy" else scipy.io.mmread(p)
        v = _as_real(v, path, "rhs")
    except ValueError as exc:
        if str(exc).startswith("rhs: "):
            raise
        raise ValueError(f"rhs: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    except Exception as exc:
        raise ValueError(f"rhs: cannot read {path!r} as {suffix}: {_one_line(exc)}") from None
    if not (v.ndim == 1 or (v.ndim == 2 and 1 in v.shape)):
        raise ValueError(f"rhs: {path!r} is not a vector (shape {v.shape})")
    return v.ravel()


def read_system(
    path: str, rhs: str | None = None, form: str = "rows", max_n: int = MAX_N, max_d: int = MAX_D
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """The checked matrix and right-hand side of :func:`matrix_system`, without solving.

    Every check of :func:`matrix_system` but consistency (which needs a solve): returns
    ``(A, b, source)`` with ``b`` (and ``source``, the field that gave it) None when no
    right-hand side was given. ``A`` is symmetrized for ``form='psd'``.
    """
    check_form(form)
    A, b_inside = _read_matrix(path, max_n, max_d)
    _check_finite(A, path, "path")
    if not np.any(A):
        raise ValueError(f"path: {path!r} is an all-zero matrix")
    n, d = A.shape
    if form == "psd":
        if n != d:
            raise ValueError(f"path: {path!r} must be square for form 'psd', got shape {A.shape}")
        scale = float(np.abs(A).max())
        asym = float(np.abs(A - A.T).max())
        if asym > SYMMETRY_TOL * scale:
            raise ValueError(
                f"path: {path!r} is not symmetric (max |A - A^T| = {asym:.3g}, "
                f"{asym / scale:.3g} of max |A|), as form 'psd' needs"
            )
        A = 0.5 * (A + A.T)
        ev = scipy.linalg.eigvalsh(A)
        if ev[0] < -PSD_TOL * max(ev[-1], 0.0) or not ev[-1] > 0:
            raise ValueError(
                f"path: {path!r} is not positive semi-definite (smallest eigenvalue "
                f"{ev[0]:.3g}, largest {ev[-1]:.3g}), as form 'psd' needs"
            )
    if b_inside is not None and rhs is not None:
        raise ValueError(f"rhs: {path!r} already holds 'b'; give the right-hand side once")
    if rhs is not None:
        b, source = _read_vector(rhs), f"rhs: {rhs!r}"
    elif b_inside is not None:
        b, source = _as_real(b_inside, path, "path").ravel(), f"path: 'b' in {path!r}"
    else:
        return A, None, None
    if b.shape != (n,):
        raise ValueError(f"{source} has length {b.size}, the matrix has {n} rows")
    if n_nan := int(np.isnan(b).sum()):
        raise ValueError(f"{source} contains NaN ({n_nan} entries)")
    if n_inf := int(np.isinf(b).sum()):
        raise ValueError(f"{source} contains inf ({n_inf} entries)")
    if not np.any(b):
        raise ValueError(f"{source} is all zero (x* = 0: nothing to solve)")
    return A, b, source


def matrix_system(
    path: str,
    rhs: str | None = None,
    form: str = "rows",
    seed: int = 0,
    max_n: int = MAX_N,
    max_d: int = MAX_D,
    tol: float = CONSISTENCY_TOL,
) -> Problem:
    """A user-supplied matrix, checked for the interpolation regime.

    ``path``: ``.npy`` (the matrix), ``.npz`` (array ``A`` and optionally the right-hand
    side ``b``; other arrays are ignored) or Matrix Market ``.mtx`` (``scipy.io.mmread``;
    sparse is made dense). ``rhs``: optional ``.npy`` or ``.mtx`` vector (not together with
    a ``b`` inside the ``.npz``). Relative paths are taken from the current working
    directory (the workflow root under Snakemake).

    ``form='rows'``: least squares ``||A x - b||^2 / (2n)``; ``form='psd'``: ``A`` must be
    square, symmetric (``max |A - A^T| <= 1e-10 max |A|``) and PSD (smallest eigenvalue
    ``>= -1e-10`` times the largest), and the problem is ``A x = c``. Without a
    right-hand side, ``b = A x_0`` for ``x_0 ~ N(0, I)`` drawn with ``seed`` (consistent by
    construction). ``x*`` is the minimum-norm least-squares solution
    (``scipy.linalg.lstsq``, singular values below ``1e-5 sigma_max`` (rows) or
    eigenvalues below ``1e-10 lambda_max`` (psd) taken as zero, the cut-off that
    :func:`from_matrix` / :func:`from_psd` use for the null space).

    Every failure is a one-line ``ValueError`` naming the field, the file and the reason:
    unsupported extension, missing or unreadable file, not 2-d, empty, larger than
    ``max_n`` rows or ``max_d`` columns, NaN, inf, all zero, (psd) not square, not
    symmetric or not PSD, a right-hand side of the wrong length / with NaN or inf / all
    zero, and an inconsistent system: relative residual ``||A x* - b|| / ||b|| > tol``.
    """
    A, b, source = read_system(path, rhs, form, max_n, max_d)
    if b is None:
        x0 = np.random.default_rng(seed).standard_normal(A.shape[1])
        return from_form(A, x0, form)
    cond = PSD_TOL if form == "psd" else np.sqrt(1e-10)
    problem = from_form(A, scipy.linalg.lstsq(A, b, cond=cond)[0], form)
    return require_consistent(
        problem,
        A,
        b,
        tol,
        lambda residual: (
            f"{source}: inconsistent system with {path!r}: relative residual "
            f"||A x_ls - b|| / ||b|| = {residual:.3g} at the minimum-norm least-squares "
            f"solution exceeds the tolerance {tol:g} (effective rank "
            f"{problem.spectral_summary()['rank']} of {min(A.shape)}); the interpolation "
            "regime needs a consistent system b = A x*"
        ),
    )
