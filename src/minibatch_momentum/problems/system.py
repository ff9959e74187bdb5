"""The ``Problem`` type, its spectral quantities, prescribed spectra, and save/load.

A problem is ``f(x) = ||A x - b||^2 / (2n)`` with ``b = A x*`` exactly (kind ``rows``),
or ``f(x) = x^T M x / 2 - c^T x`` with ``c = M x*`` (kind ``psd``, for coordinate
descent), together with the spectral quantities that the theory of docs/design.md section 3
is written in:

- ``H = A^T A / n`` (``rows``) or ``H = M`` (``psd``), ``L = lambda_max(H)``, ``mu`` the
  smallest non-zero eigenvalue, ``kappa = L / mu``, ``trace = tr H``,
  ``kappa_bar = tr H / mu``;
- ``R2 = max_i ||a_i||^2`` (``psd``: ``max_j M_jj``) and the stable rank ``r = tr H / L``;
- ``B_sgd = tr H / L``: the batch size where plain SGD stops scaling. For uniform
  sampling the noise of a mini-batch gradient is set by the *mean* squared row norm,
  which is exactly ``tr H``; ``R2 / L`` (recorded too) is the worst-case bound that
  the two coincide with under row-norm (Kaczmarz) sampling;
- ``B_sat = tr H / sqrt(L mu)``: where heavy ball reaches the deterministic
  accelerated rate (Lee, Cheng, Paquette & Paquette's implicit conditioning ratio).

A problem is saved as ``<name>.npz`` (its arrays) beside ``<name>.json`` (its
:meth:`Problem.spectral_summary`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.linalg

from minibatch_momentum.io import atomic_path, write_json

PROFILES = ("geometric", "power")


KINDS = ("rows", "psd")


@dataclass(frozen=True)
class Problem:
    """A consistent system with the eigendecomposition of its Hessian ``H``.

    Two kinds, both with ``f(x) - f(x*) = (x - x*)^T H (x - x*) / 2``:

    - ``rows``: ``f(x) = ||A x - b||^2 / (2n)`` with ``b = A x*`` and ``H = A^T A / n``;
      samplers draw rows of ``A`` (uniform mini-batches, Kaczmarz).
    - ``psd``: ``f(x) = x^T M x / 2 - c^T x`` with ``M = A`` symmetric PSD, ``c = M x*``
      and ``H = M``; samplers draw coordinates (coordinate descent).

    Attributes
    ----------
    A : (n, d) array (``rows``) or the (d, d) matrix ``M`` (``psd``).
    x_star : (d,) array, in the row space of ``A`` (the minimum-norm solution).
    eigvals : (d,) array, eigenvalues of ``H`` in ascending order.
    eigvecs : (d, d) array, orthonormal eigenvectors as columns.
    kind : ``"rows"`` or ``"psd"``.
    """

    A: np.ndarray
    x_star: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray
    kind: str = "rows"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def n(self) -> int:
        """Rows (``rows``) or coordinates (``psd``): what a sampler draws from."""
        return self.A.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1]

    @cached_property
    def b(self) -> np.ndarray:
        return self.A @ self.x_star

    @cached_property
    def A_eig(self) -> np.ndarray:
        """``A V``: the rows in the eigenbasis of ``H``, where the engine works. Cached,
        since every seed of every shard would otherwise redo this ``n d^2`` product."""
        return self.A @ self.eigvecs

    @cached_property
    def H(self) -> np.ndarray:
        return self.A if self.kind == "psd" else self.A.T @ self.A / self.n

    @cached_property
    def tables(self) -> dict:
        """Per-sampler tables, filled by :func:`minibatch_momentum.sampling.samplers.sampling`
        (keyed by the sampler's name), and the engine's copies of them on a device (keyed by
        ``(sampler, dtype, device)``, with the table they copy)."""
        return {}

    def spectral_summary(self) -> dict:
        """The scalar quantities the theory is written in (see module docstring)."""
        q = spectral_quantities(self.eigvals)
        if self.kind == "psd":  # the largest coordinate curvature plays the row norm's part
            R2 = float(np.max(np.diag(self.A)))
        else:
            R2 = float(np.max(np.einsum("ij,ij->i", self.A, self.A)))
        return {
            "kind": self.kind,
            "n": self.n,
            "d": self.d,
            "rank": q["rank"],
            "L": q["L"],
            "mu": q["mu"],
            "kappa": q["kappa"],
            "trace": q["trace"],
            "kappa_bar": q["kappa_bar"],
            "R2": R2,
            "stable_rank": q["stable_rank"],
            "B_sgd": q["B_sgd"],
            "B_sgd_worst_case": R2 / q["L"],
            "B_sat": q["B_sat"],
        }


def spectral_quantities(eigvals) -> dict:
    """``L``, ``mu``, ``kappa``, ``tr H``, ``B*_SGD``, ``B_sat`` and the rest of
    :meth:`Problem.spectral_summary` that the eigenvalues alone determine (eigenvalues
    below ``1e-10 L`` count as zero)."""
    lam = np.sort(np.asarray(eigvals, float))
    L = float(lam[-1])
    nonzero = lam[lam > L * 1e-10]
    mu = float(nonzero[0])
    trace = float(lam.sum())
    return {
        "rank": int(nonzero.size),
        "L": L,
        "mu": mu,
        "kappa": L / mu,
        "trace": trace,
        "kappa_bar": trace / mu,
        "stable_rank": trace / L,
        "B_sgd": trace / L,
        "B_sat": trace / float(np.sqrt(L * mu)),
    }


KAPPA_MAX = 1e9  # eigenvalues below 1e-10 L count as zero, and H carries ~1e-16 L round-off


def spectrum(
    d: int,
    kappa: float | None = None,
    profile: str = "geometric",
    L: float = 1.0,
    *,
    alpha: float | None = None,
) -> np.ndarray:
    """Eigenvalues from ``L`` down to ``L / kappa``, ascending.

    ``geometric``: log-uniformly spaced. ``power``: ``lambda_i = L i^(-alpha)`` with
    ``alpha = log(kappa) / log(d)`` so that the smallest is ``L / kappa``; or, with
    ``alpha`` given instead of ``kappa`` (``power`` only), that exponent directly, so
    ``kappa = d^alpha`` is implied. Give exactly one of ``kappa`` and ``alpha``.
    """
    if d < 2:
        raise ValueError(f"d must be at least 2, got {d}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if alpha is not None:
        if kappa is not None:
            raise ValueError("give kappa or alpha, not both (alpha implies kappa = d^alpha)")
        if profile != "power":
            raise ValueError(f"alpha needs profile 'power', got profile {profile!r}")
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        return np.sort(L * np.arange(1, d + 1, dtype=float) ** (-float(alpha)))
    if kappa is None:
        raise ValueError("kappa must be given (or alpha, with profile 'power')")
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    if profile == "geometric":
        lam = L * kappa ** (-np.linspace(0.0, 1.0, d))
    else:
        alpha = np.log(kappa) / np.log(d)
        lam = L * np.arange(1, d + 1, dtype=float) ** (-alpha)
    return np.sort(lam)


def check_form(form: str) -> None:
    if form not in KINDS:
        raise ValueError(f"form: must be one of {list(KINDS)}, got {form!r}")


def from_matrix(A: np.ndarray, x_star: np.ndarray) -> Problem:
    """Wrap a matrix and a solution; ``x*`` is projected onto the row space of ``A``.

    The component of ``x*`` in the null space of ``A`` is invisible to ``f`` and to
    every gradient, so dropping it makes ``x*`` the minimizer closest to the origin
    that all methods converge to from ``x_0 = 0``.
    """
    A = np.asarray(A, dtype=np.float64)
    lam, V = scipy.linalg.eigh(A.T @ A / A.shape[0])
    lam = np.clip(lam, 0.0, None)
    null = lam <= lam[-1] * 1e-10
    x_star = np.asarray(x_star, dtype=np.float64)
    x_star = x_star - V[:, null] @ (V[:, null].T @ x_star)
    return Problem(A=A, x_star=x_star, eigvals=lam, eigvecs=V)


def from_psd(M: np.ndarray, x_star: np.ndarray) -> Problem:
    """Wrap a symmetric PSD ``M`` as the problem ``M x = M x*`` (kind ``psd``);
    ``x*`` is projected onto the range of ``M`` as in :func:`from_matrix`."""
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be square, got shape {M.shape}")
    M = 0.5 * (M + M.T)
    lam, V = scipy.linalg.eigh(M)
    if lam[0] < -1e-10 * max(lam[-1], 0.0) or not lam[-1] > 0:
        raise ValueError(f"M must be positive semi-definite, smallest eigenvalue {lam[0]:.3g}")
    lam = np.clip(lam, 0.0, None)
    null = lam <= lam[-1] * 1e-10
    x_star = np.asarray(x_star, dtype=np.float64)
    x_star = x_star - V[:, null] @ (V[:, null].T @ x_star)
    return Problem(A=M, x_star=x_star, eigvals=lam, eigvecs=V, kind="psd")


def from_form(M: np.ndarray, x_star: np.ndarray, form: str) -> Problem:
    """The system ``M x = M x*`` as rows to sample (``rows``, :func:`from_matrix`) or as
    a PSD matrix whose coordinates are sampled (``psd``, :func:`from_psd`)."""
    return from_psd(M, x_star) if form == "psd" else from_matrix(M, x_star)


CONSISTENCY_TOL = 1e-8


def relative_residual(M: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.linalg.norm(M @ x - y) / np.linalg.norm(y))


def require_consistent(
    problem: Problem, M: np.ndarray, y: np.ndarray, tol: float, why: Callable[[float], str]
) -> Problem:
    """``problem`` if its ``x*`` solves ``M x = y`` to ``||M x* - y|| / ||y|| <= tol``;
    otherwise a ValueError whose message is ``why(residual)``.

    The interpolation regime needs a consistent system: an inconsistent one has a
    noise floor that no batch size or momentum removes.
    """
    residual = relative_residual(M, problem.x_star, y)
    if not residual <= tol:
        raise ValueError(why(residual))
    return problem


def save_problem(problem: Problem, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write ``<path>`` (.npz arrays) and ``<path stem>.json`` (spectral metadata)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                A=problem.A,
                x_star=problem.x_star,
                b=problem.b,
                eigvals=problem.eigvals,
                eigvecs=problem.eigvecs,
                kind=problem.kind,
            )
    write_json({**(meta or {}), **problem.spectral_summary()}, metadata_path(path))


def metadata_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def load_problem(path: str | os.PathLike) -> Problem:
    with np.load(path) as z:
        kind = str(z["kind"]) if "kind" in z.files else "rows"
        return Problem(
            A=z["A"], x_star=z["x_star"], eigvals=z["eigvals"], eigvecs=z["eigvecs"], kind=kind
        )
