"""Consistent least-squares systems with a prescribed spectrum.

A problem is ``f(x) = ||A x - b||^2 / (2n)`` with ``b = A x*`` exactly (the
interpolation regime), together with the spectral quantities that the theory of
DESIGN.md section 2 is written in:

- ``H = A^T A / n``, ``L = lambda_max(H)``, ``mu`` the smallest non-zero eigenvalue,
  ``kappa = L / mu``, ``trace = tr H``, ``kappa_bar = tr H / mu``;
- ``R2 = max_i ||a_i||^2`` and the stable rank ``r = tr H / L``;
- ``B_sgd = tr H / L``: the batch size where plain SGD stops scaling. For uniform
  sampling the noise of a mini-batch gradient is set by the *mean* squared row norm,
  which is exactly ``tr H``; ``R2 / L`` (recorded too) is the worst-case bound that
  the two coincide with under row-norm (Kaczmarz) sampling;
- ``B_sat = tr H / sqrt(L mu)``: where heavy ball reaches the deterministic
  accelerated rate (Lee, Cheng, Paquette & Paquette's implicit conditioning ratio).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.linalg

from .checks import is_int as _is_int
from .io import atomic_path, write_json

PROFILES = ("geometric", "power")


@dataclass(frozen=True)
class Problem:
    """A consistent system ``A x* = b`` with the eigendecomposition of ``H = A^T A / n``.

    Attributes
    ----------
    A : (n, d) array
    x_star : (d,) array, in the row space of ``A`` (the minimum-norm solution).
    eigvals : (d,) array, eigenvalues of ``H`` in ascending order.
    eigvecs : (d, d) array, orthonormal eigenvectors as columns.
    """

    A: np.ndarray
    x_star: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray

    @property
    def n(self) -> int:
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
        return self.A.T @ self.A / self.n

    def spectral_summary(self) -> dict:
        """The scalar quantities the theory is written in (see module docstring)."""
        lam = self.eigvals
        L = float(lam[-1])
        nonzero = lam[lam > L * 1e-10]
        mu = float(nonzero[0])
        trace = float(lam.sum())
        R2 = float(np.max(np.einsum("ij,ij->i", self.A, self.A)))
        return {
            "n": self.n,
            "d": self.d,
            "rank": int(nonzero.size),
            "L": L,
            "mu": mu,
            "kappa": L / mu,
            "trace": trace,
            "kappa_bar": trace / mu,
            "R2": R2,
            "stable_rank": trace / L,
            "B_sgd": trace / L,
            "B_sgd_worst_case": R2 / L,
            "B_sat": trace / float(np.sqrt(L * mu)),
        }


def spectrum(d: int, kappa: float, profile: str = "geometric", L: float = 1.0) -> np.ndarray:
    """Eigenvalues from ``L`` down to ``L / kappa``, ascending.

    ``geometric``: log-uniformly spaced. ``power``: ``lambda_i = L i^(-alpha)`` with
    ``alpha = log(kappa) / log(d)`` so that the smallest is ``L / kappa``.
    """
    if d < 2:
        raise ValueError(f"d must be at least 2, got {d}")
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    if profile == "geometric":
        lam = L * kappa ** (-np.linspace(0.0, 1.0, d))
    elif profile == "power":
        alpha = np.log(kappa) / np.log(d)
        lam = L * np.arange(1, d + 1, dtype=float) ** (-alpha)
    else:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return np.sort(lam)


def _haar_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def gaussian_system(
    d: int, n: int, kappa: float, profile: str = "geometric", seed: int = 0
) -> Problem:
    """Gaussian rows with ``H = A^T A / n`` having *exactly* the prescribed spectrum.

    ``A = sqrt(n) Q diag(sqrt(lambda)) V^T`` with ``Q`` the orthonormalized columns of
    an ``n x d`` Gaussian matrix and ``V`` Haar-random: ``A^T A / n = V diag(lambda) V^T``
    to round-off, while for ``n >> d`` each row is close in law to ``N(0, H)``.
    Deterministic given ``seed``.
    """
    if n < d:
        raise ValueError(f"n must be >= d for a full-rank Gaussian system, got n={n}, d={d}")
    rng = np.random.default_rng(seed)
    lam = spectrum(d, kappa, profile)
    Q, R = np.linalg.qr(rng.standard_normal((n, d)))
    Q = Q * np.sign(np.diag(R))
    V = _haar_orthogonal(d, rng)
    A = np.sqrt(n) * (Q * np.sqrt(lam)) @ V.T
    # Every eigendirection carries the same share 1/d of the initial loss (from x_0 = 0),
    # so iterations-to-eps measure the rate over the whole spectrum, not just its top.
    signs = rng.choice([-1.0, 1.0], size=d)
    x_star = V @ (signs / np.sqrt(d * lam))
    return from_matrix(A, x_star)


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


_FAMILIES = {
    # family: (required fields, optional fields)
    "gaussian": ({"d", "n", "kappa", "seed"}, {"profile"}),
}


def make_problem(spec: dict) -> Problem:
    """Build a problem from its config entry (``family`` plus the family's parameters).

    Raises ``ValueError`` naming the first bad field.
    """
    spec = dict(spec)
    family = spec.pop("family", None)
    if family not in _FAMILIES:
        raise ValueError(f"family: must be one of {sorted(_FAMILIES)}, got {family!r}")
    required, optional = _FAMILIES[family]
    if missing := sorted(required - set(spec)):
        raise ValueError(f"missing field(s) for family {family!r}: {missing}")
    if unknown := sorted(set(spec) - required - optional):
        raise ValueError(f"unknown field(s) for family {family!r}: {unknown}")
    for name, least in (("d", 2), ("n", 2), ("seed", 0)):
        if not (_is_int(spec[name]) and spec[name] >= least):
            raise ValueError(f"{name}: must be an integer >= {least}, got {spec[name]!r}")
    if not (isinstance(spec["kappa"], int | float) and spec["kappa"] >= 1):
        raise ValueError(f"kappa: must be a number >= 1, got {spec['kappa']!r}")
    return gaussian_system(
        d=spec["d"],
        n=spec["n"],
        kappa=float(spec["kappa"]),
        profile=spec.get("profile", "geometric"),
        seed=spec["seed"],
    )


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
            )
    write_json({**(meta or {}), **problem.spectral_summary()}, metadata_path(path))


def metadata_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def load_problem(path: str | os.PathLike) -> Problem:
    with np.load(path) as z:
        return Problem(A=z["A"], x_star=z["x_star"], eigvals=z["eigvals"], eigvecs=z["eigvecs"])
