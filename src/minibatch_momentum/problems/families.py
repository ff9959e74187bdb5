"""The registry of problem families: a config entry checked and built into a problem.

Families (config entries, built by :func:`make_problem`; each is deterministic given
its entry):

- ``gaussian``: Gaussian rows, prescribed spectrum (:func:`gaussian_system`);
- ``heavy_tailed``: multivariate Student-t rows, strongly uneven row norms, the same
  prescribed spectrum (:func:`heavy_tailed_system`);
- ``digits_kernel``: the RBF kernel matrix of scikit-learn's bundled digits with the
  labels as right-hand side (:func:`digits_kernel_system`);
- ``matrix``: a user-supplied matrix from a ``.npy``, ``.npz`` or Matrix Market file,
  checked for the interpolation regime (:func:`matrix_system`).

Every family takes ``form: rows | psd`` (default ``rows``). ``psd`` turns the family's
row system into the coordinate-descent problem on its PSD matrix: ``M = H = A^T A / n``
with the same ``x*`` for the synthetic families, ``M = K`` for the kernel, the matrix
itself for ``matrix``.
"""

from __future__ import annotations

import numpy as np

from minibatch_momentum.checks import finite as _finite
from minibatch_momentum.checks import is_int as _is_int
from minibatch_momentum.checks import require as _require
from minibatch_momentum.problems.kernel import DIGITS_MIN, DIGITS_SIZE, digits_kernel_system
from minibatch_momentum.problems.matrix_files import MAX_D, MAX_N, matrix_system
from minibatch_momentum.problems.synthetic import gaussian_system, heavy_tailed_system
from minibatch_momentum.problems.system import (
    CONSISTENCY_TOL,
    KAPPA_MAX,
    PROFILES,
    Problem,
    check_form,
)

_SPECTRUM = {"kappa", "alpha", "profile"}
_FAMILIES = {
    # family: (required fields, optional fields); kappa or alpha is checked separately
    "gaussian": ({"d", "n", "seed"}, _SPECTRUM | {"form"}),
    "heavy_tailed": ({"d", "n", "seed"}, _SPECTRUM | {"dof", "form"}),
    "digits_kernel": ({"n_samples", "gamma"}, {"seed", "form"}),
    "matrix": ({"path"}, {"rhs", "form", "seed", "max_n", "max_d", "tol"}),
}
FAMILIES = tuple(_FAMILIES)


def _int_field(spec: dict, name: str, least: int, most: int | None = None) -> None:
    if name in spec:
        value = spec[name]
        ok = _is_int(value) and value >= least and (most is None or value <= most)
        rule = f"an integer >= {least}" if most is None else f"an integer in [{least}, {most}]"
        _require(ok, name, rule, value)


def _spectrum_fields(spec: dict, family: str) -> dict:
    """``kappa`` xor ``alpha`` (the latter only with ``profile: power``), and ``profile``."""
    profile = spec.get("profile", "geometric")
    _require(profile in PROFILES, "profile", f"one of {list(PROFILES)}", profile)
    if "alpha" in spec:
        if "kappa" in spec:
            raise ValueError("kappa: give kappa or alpha, not both (alpha implies kappa = d^alpha)")
        alpha = spec["alpha"]
        _require(_finite(alpha) and alpha >= 0, "alpha", "a number >= 0", alpha)
        if profile != "power":
            raise ValueError(
                f"alpha: needs profile 'power' (lambda_i = i^-alpha), got profile {profile!r}"
            )
        _require(
            alpha * np.log(spec["d"]) <= np.log(KAPPA_MAX),
            "alpha",
            f"such that d^alpha <= {KAPPA_MAX:g}",
            alpha,
        )
        return {"kappa": None, "alpha": float(alpha), "profile": profile}
    if "kappa" not in spec:
        raise ValueError(
            f"missing field(s) for family {family!r}: ['kappa'] (or 'alpha' with profile 'power')"
        )
    kappa = spec["kappa"]
    _require(
        _finite(kappa) and 1 <= kappa <= KAPPA_MAX,
        "kappa",
        f"a number in [1, {KAPPA_MAX:g}]",
        kappa,
    )
    return {"kappa": float(kappa), "alpha": None, "profile": profile}


def make_problem(spec: dict) -> Problem:
    """Build a problem from its config entry (``family`` plus the family's parameters).

    Fields per family (``?`` optional, default after ``=``):

    - ``gaussian``: ``d``, ``n``, ``seed``, ``kappa`` | ``alpha``, ``profile? = geometric``,
      ``form? = rows`` (:func:`gaussian_system`);
    - ``heavy_tailed``: as ``gaussian`` plus ``dof? = 3`` (:func:`heavy_tailed_system`);
    - ``digits_kernel``: ``n_samples`` (16-1797), ``gamma`` (> 0), ``seed?`` (omitted:
      the first points), ``form? = rows`` (:func:`digits_kernel_system`);
    - ``matrix``: ``path``, ``rhs?``, ``form? = rows``, ``seed? = 0``,
      ``max_n? = 100000``, ``max_d? = 2048``, ``tol? = 1e-8`` (:func:`matrix_system`).

    Spectrum: exactly one of ``kappa`` (>= 1) and ``alpha`` (>= 0, only with
    ``profile: power``: ``lambda_i = i^-alpha``, so ``kappa = d^alpha``); the implied
    ``kappa`` is at most 1e9. ``form: psd`` gives the coordinate-descent problem on the
    family's PSD matrix (``M = H = A^T A / n``, or ``K`` for the kernel).

    Raises ``ValueError`` naming the first bad field (or, for ``matrix``, the file and
    what is wrong with it); missing and unknown fields are rejected.
    """
    family, kw = check_problem_spec(spec)
    if family == "gaussian":
        return gaussian_system(**kw)
    if family == "heavy_tailed":
        return heavy_tailed_system(**kw)
    if family == "digits_kernel":
        return digits_kernel_system(**kw)
    return matrix_system(**kw)


def check_problem_spec(spec: dict) -> tuple[str, dict]:
    """Every check of :func:`make_problem` that needs no data (the workflow runs it on
    each problem before any job; a ``matrix`` file itself is read by the job).

    Returns ``(family, keyword arguments of the family's generator)``; raises
    ``ValueError`` naming the first bad field.
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
    form = spec.get("form", "rows")
    check_form(form)
    _int_field(spec, "seed", 0)
    if family in ("gaussian", "heavy_tailed"):
        for name in ("d", "n"):
            _int_field(spec, name, 2)
        d, n = spec["d"], spec["n"]
        if n < d:
            raise ValueError(f"n must be >= d for a full-rank system, got n={n}, d={d}")
        kw = dict(d=spec["d"], n=spec["n"], seed=spec["seed"], form=form)
        kw.update(_spectrum_fields(spec, family))
        if family == "heavy_tailed":
            dof = spec.get("dof", 3.0)
            _require(_finite(dof) and dof > 0, "dof", "a number > 0", dof)
            kw["dof"] = float(dof)
        return family, kw
    if family == "digits_kernel":
        _int_field(spec, "n_samples", DIGITS_MIN, DIGITS_SIZE)
        gamma = spec["gamma"]
        _require(_finite(gamma) and gamma > 0, "gamma", "a number > 0", gamma)
        return family, dict(
            n_samples=spec["n_samples"], gamma=float(gamma), seed=spec.get("seed"), form=form
        )
    for name in ("path", "rhs"):
        if name in spec:
            value = spec[name]
            _require(isinstance(value, str) and value != "", name, "a non-empty file path", value)
    _int_field(spec, "max_n", 1)
    _int_field(spec, "max_d", 1)
    tol = spec.get("tol", CONSISTENCY_TOL)
    _require(_finite(tol) and 0 < tol < 1, "tol", "a number in (0, 1)", tol)
    return family, dict(
        path=spec["path"],
        rhs=spec.get("rhs"),
        form=form,
        seed=spec.get("seed", 0),
        max_n=spec.get("max_n", MAX_N),
        max_d=spec.get("max_d", MAX_D),
        tol=float(tol),
    )


def input_files(spec: dict) -> list[str]:
    """The files a problem's job reads besides the code (a ``matrix`` problem's matrix
    and right-hand side), so the workflow lists them as inputs."""
    if spec.get("family") != "matrix":
        return []
    return [spec[k] for k in ("path", "rhs") if isinstance(spec.get(k), str)]
