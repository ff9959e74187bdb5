r"""The project's momentum rule: how to set ``(eta, beta)`` for a batch size ``B``.

Rule
----
Keep the damping ``1 - beta`` fixed at the deterministic optimum's order, and the
effective step ``eta / (1 - beta)`` at the largest noise-stable value for the batch,
up to the deterministic optimum's effective step::

    1 - beta   = c_damp sqrt(mu / L)
    eta_eff(B) = blend(c_noise nu(B), c_ceil eta_eff_det)        eta = eta_eff (1 - beta)

``blend`` is the harmonic mean-like ``1 / (1/a + 1/b)`` (default) or ``min(a, b)``,
the literal form of docs/design.md §3, ``eta(B) = min(B / B_sat, 1) eta_max``. With the
harmonic blend, ``eta(B) = eta_max (B / B_sat) / (1 + B / B_sat)``; both forms grow
``∝ B`` below ``B_sat`` and approach ``eta_max`` above it. ``B_sat`` is where the two lines
cross (:func:`saturation_batch`). The exact theory rules out ``min`` as the default: the
best effective step bends smoothly from the noise line to the ceiling, following the
harmonic blend to a few percent, while ``min`` puts the step on the noise line right at
the crossing, where the exact rate is ``>= 1`` (best worst-case ``T_rule / T*`` of the
``min`` form over a grid of constants: ≈3.2, against 1.20 for the harmonic one).

Derivation (from the exact operator of :mod:`~minibatch_momentum.theory`)
----------------------------------------------------------------------------
*Noise line.* At ``z = 1`` the secular function of the exact Gaussian-rows operator is
``phi(1) = sum_i t_i / (1 - t_i)``, where ``t_i = kappa_i G_i(1) / P_i(1)`` is mode ``i``'s
own noise response. For heavy ball it is
``t_i = c_B eta_eff lam_i (1 + beta) / (2 (1 + beta) - eta lam_i) -> c_B eta_eff lam_i / 2``
when ``eta lam_i << 1`` (``eta = eta_eff (1 - beta)`` is small): only the effective step
``eta_eff = eta / (1 - beta)`` matters, as for SGD (Kidambi et al. 2018, Wang et al.
2024). The second moments stay bounded iff ``phi(1) < 1``. Since ``t / (1 - t)`` over
``t`` grows with ``t`` and ``t_i <= t_L``, ``phi(1) <= (sum_i t_i) / (1 - t_L) =
r t_L / (1 - t_L)`` with ``r = tr H / L``, with equality when the trace sits in ``r``
copies of ``L``; the bound reaches 1 at::

    nu(B) = 2 / (c_B (tr H + L))        (= 2B / (tr H + L) with replacement),

the largest effective step that is noise-stable for *every* such spectrum. Below that
line the slowest mode is overdamped and decays at ``2 eta_eff mu`` per step, so
``T ∝ 1 / eta_eff ∝ 1 / B``: the linear speedup. For Nesterov the response is
``t_i = (c_B / 2) u_i / (1 + beta u_i)`` with ``u_i = eta_eff lam_i``: each mode's noise is
capped, so with the spectrum known the line is the root of ``phi(1) = 1`` with those
``t_i`` (pass ``eigvals``), and it grows *faster* than ``B`` while ``B`` is below the
number of modes above ``1 / eta_eff``. With ``L`` and ``tr H`` alone the worst case is
again ``nu(B)`` (all the trace in tiny modes makes ``u / (1 + u) ≈ u``).

*Ceiling and damping.* Without noise the best effective step is
``eta_eff_det = eta_det / (1 - beta_det)`` (``1 / sqrt(L mu)`` for Polyak's heavy ball,
``≈ 0.58 / sqrt(L mu)`` for Nesterov), where the slowest mode is critically damped. The
deterministic optimum itself is a poor finite-batch choice: at Polyak's parameters every
mode has modulus ``sqrt(beta)`` and the noise meets a Jordan block in every mode, so
even a tiny noise pushes the rate far above ``beta``. The exact theory's best finite-batch
damping is ``≈ 3 / sqrt(kappa)`` rather than ``4 / sqrt(kappa)``, with the ceiling a little
under the deterministic effective step.

*Constants.* ``(c_damp, c_ceil, c_noise)`` per method and noise line are set by
:func:`calibrate_rule`: Nelder-Mead on the worst ratio ``T_rule(B) / T*(B)`` over
:func:`reference_spectra` and ``B = 1 .. 2^16``, where both ``T`` come from the exact
rate (:class:`~minibatch_momentum.theory.gaussian.Gaussian`, ``T*`` at the rate-optimal
``(eta, beta)`` of :func:`~minibatch_momentum.theory.tuning.optimal_parameters`). No simulation
and no grid search of runs enters. ``RULE_CONSTANTS`` holds that calibration's output;
the worst ratio it reached is in ``CALIBRATION_WORST_RATIO``.

Without a spectrum
------------------
:func:`noise_scale_rule` needs only quantities measured from mini-batch gradients
(:func:`gradient_noise_scale`, after McCandlish et al. 2018, App. A) and the loss
``f`` (known up to ``f* = 0`` in the interpolation regime), plus the full-batch
``(eta_full, beta_full)``. For Gaussian rows the per-example gradient covariance has
``tr Sigma = 2 f tr H + |G|^2`` exactly, and ``|G|^2 / (2 f)`` is the curvature along the
current error (a lower bound on ``L``), so ``tr H + L`` is estimated by ``tr Sigma / (2 f)``
and the noise line becomes ``nu(B) = 4 f / (c_B tr Sigma) = (2 / lam_G) (B / B_simple)``
with ``B_simple = tr Sigma / |G|^2`` the simple noise scale and ``lam_G = |G|^2 / (2 f)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from minibatch_momentum.sampling.samplers import noise_factor
from minibatch_momentum.theory.common import deterministic_optimum, iterations_from_rate
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.tuning import optimal_parameters

BLENDS = ("harmonic", "min")


@dataclass(frozen=True)
class RuleConstants:
    """``1 - beta = damp sqrt(mu/L)``; ceiling ``ceil * eta_eff_det``; noise line
    ``noise * nu(B)``."""

    damp: float
    ceil: float
    noise: float


# Output of calibrate_rule(method, noise_line) on reference_spectra() (d = 200),
# B = 2^0..2^16, rounded to 3 digits. Keys: (method, noise_line); "trace" uses L and
# tr H only, "spectrum" the eigenvalues. Regenerate with calibrate_rule (minutes).
RULE_CONSTANTS: dict[tuple[str, str], RuleConstants] = {
    ("sgd", "trace"): RuleConstants(damp=0.0, ceil=1.0, noise=0.980),
    ("sgd", "spectrum"): RuleConstants(damp=0.0, ceil=1.0, noise=0.920),
    ("hb", "trace"): RuleConstants(damp=3.14, ceil=0.929, noise=0.910),
    ("hb", "spectrum"): RuleConstants(damp=3.13, ceil=0.926, noise=0.835),
    ("nag", "trace"): RuleConstants(damp=1.83, ceil=1.17, noise=1.02),
    ("nag", "spectrum"): RuleConstants(damp=1.54, ceil=0.701, noise=0.668),
}
# Worst T_rule / T* over the calibration set with the constants above. Nesterov without
# the spectrum cannot follow its super-linear window (see the module docstring).
CALIBRATION_WORST_RATIO: dict[tuple[str, str], float] = {
    ("sgd", "trace"): 1.29,
    ("sgd", "spectrum"): 1.31,
    ("hb", "trace"): 1.20,
    ("hb", "spectrum"): 1.20,
    ("nag", "trace"): 23.8,
    ("nag", "spectrum"): 1.50,
}


def _blend(a: float, b: float, form: str) -> float:
    if form == "harmonic":
        return 1.0 / (1.0 / a + 1.0 / b)
    if form == "min":
        return min(a, b)
    raise ValueError(f"form must be one of {BLENDS}, got {form!r}")


def noise_line(
    method: str,
    c_B: float,
    L: float,
    trace: float,
    eigvals: np.ndarray | None = None,
) -> float:
    """Largest noise-stable effective step ``nu`` for noise factor ``c_B`` (see module doc).

    Without ``eigvals``: the worst case over spectra with this ``L`` and ``tr H``,
    ``2 / (c_B (tr H + L))``. With ``eigvals``: the root of ``sum t_i / (1 - t_i) = 1``
    with ``t_i = c_B u_i / 2`` (``sgd``, ``hb``) or ``c_B u_i / (2 (1 + u_i))`` (``nag``,
    taking ``beta ≈ 1``), ``u_i = nu lam_i``. ``inf`` when there is no noise.
    """
    if c_B == 0:
        return np.inf
    if eigvals is None:
        return 2.0 / (c_B * (trace + L))
    lam = np.asarray(eigvals, float)
    lam = lam[lam > 0]

    def excess(log_nu):
        u = np.exp(log_nu) * lam
        t = 0.5 * c_B * (u / (1 + u) if method == "nag" else u)
        if np.any(t >= 1):
            return 1.0
        return float(np.sum(t / (1 - t))) - 1.0

    # Nesterov's per-mode response saturates at c_B / 2: with few enough modes no step
    # is noise-unstable (to this order), and the ceiling alone binds.
    hi = np.log(1e6 / (c_B * lam.min()))
    if excess(hi) < 0:
        return np.inf
    lo = np.log(1e-3 / (c_B * lam.sum()))
    return float(np.exp(scipy.optimize.brentq(excess, lo, hi, xtol=1e-10)))


def _deterministic_effective_step(method: str, L: float, mu: float) -> float:
    eta_det, beta_det, _ = deterministic_optimum(method, L, mu)
    return eta_det / (1.0 - beta_det)


def momentum_rule(
    method: str,
    batch_size: float,
    L: float,
    mu: float,
    trace: float,
    *,
    n: int | None = None,
    replace: bool = True,
    eigvals: np.ndarray | None = None,
    form: str = "harmonic",
    constants: RuleConstants | None = None,
) -> tuple[float, float]:
    """``(eta, beta)`` for ``method`` at ``batch_size`` from ``L``, ``mu`` and ``tr H``.

    Parameters
    ----------
    method : ``"sgd"``, ``"hb"`` or ``"nag"`` (``sgd`` returns ``beta = 0``).
    batch_size : ``B``.
    L, mu, trace : largest and smallest non-zero eigenvalue of ``H`` and its trace.
    n, replace : sampling, for the noise factor ``c_B`` (see
        :func:`~minibatch_momentum.sampling.samplers.noise_factor`).
    eigvals : optional spectrum; sharpens the noise line (matters for ``nag``).
    form : ``"harmonic"`` (default) or ``"min"`` (docs/design.md's literal form; it
        overshoots where the two lines cross, see the module docstring).
    constants : override ``RULE_CONSTANTS[(method, line)]``.

    Returns
    -------
    (eta, beta)
    """
    line = "trace" if eigvals is None else "spectrum"
    k = RULE_CONSTANTS[(method, line)] if constants is None else constants
    c_B = noise_factor(batch_size, n, replace)
    ceiling = k.ceil * _deterministic_effective_step(method, L, mu)
    eff = _blend(k.noise * noise_line(method, c_B, L, trace, eigvals), ceiling, form)
    if method == "sgd":
        return float(eff), 0.0
    damping = min(k.damp * np.sqrt(mu / L), 1.0)
    return float(eff * damping), float(1.0 - damping)


NOISE_LINES = ("trace", "spectrum")


def spectral_summary(eigvals) -> tuple[float, float, float]:
    """``(L, mu, tr H)`` from the eigenvalues of ``H`` (null directions left out, as in
    :mod:`~minibatch_momentum.theory`)."""
    lam = np.asarray(eigvals, float)
    lam = lam[lam > 1e-12 * lam.max()]
    return float(lam.max()), float(lam.min()), float(lam.sum())


def rule_for_spectrum(
    method: str,
    batch_size: float,
    eigvals: np.ndarray,
    *,
    noise_line: str = "trace",
    n: int | None = None,
    replace: bool = True,
    form: str = "harmonic",
) -> tuple[float, float]:
    """:func:`momentum_rule` for a problem given by its eigenvalues.

    ``noise_line="trace"`` hands the rule ``L``, ``mu`` and ``tr H`` only (the
    spectral-summary rule); ``"spectrum"`` hands it the eigenvalues as well (the sharper
    noise line, which matters for Nesterov). Nothing else about the problem is used.
    """
    if noise_line not in NOISE_LINES:
        raise ValueError(f"noise_line must be one of {NOISE_LINES}, got {noise_line!r}")
    lam = np.asarray(eigvals, float)
    lam = lam[lam > 1e-12 * lam.max()]
    L, mu, trace = spectral_summary(lam)
    return momentum_rule(
        method,
        batch_size,
        L,
        mu,
        trace,
        n=n,
        replace=replace,
        eigvals=lam if noise_line == "spectrum" else None,
        form=form,
    )


def saturation_batch(
    method: str, L: float, mu: float, trace: float, constants: RuleConstants | None = None
) -> float:
    """The rule's ``B_sat`` (with replacement): where the noise line meets the ceiling,
    ``c_ceil eta_eff_det (tr H + L) / (2 c_noise)``."""
    k = RULE_CONSTANTS[(method, "trace")] if constants is None else constants
    return k.ceil * _deterministic_effective_step(method, L, mu) * (trace + L) / (2 * k.noise)


# --------------------------------------------------------------------------------------
# Without a spectrum: the gradient noise scale
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradientNoise:
    """Estimates at one point: ``grad_sq = |G|^2`` (full gradient), ``trace_cov =
    tr Sigma`` (per-example gradient covariance) and ``b_simple = tr Sigma / |G|^2``."""

    grad_sq: float
    trace_cov: float

    @property
    def b_simple(self) -> float:
        return self.trace_cov / self.grad_sq


def gradient_noise_scale(
    grads_small: np.ndarray,
    grads_big: np.ndarray,
    batch_small: int,
    batch_big: int,
    *,
    n: int | None = None,
    replace: bool = True,
) -> GradientNoise:
    """Unbiased ``|G|^2`` and ``tr Sigma`` from mini-batch gradients at two batch sizes.

    ``E |G_B|^2 = |G|^2 + c_B tr Sigma`` (``c_B = 1/B`` with replacement, or the
    finite-population factor without), so two batch sizes give two equations
    (McCandlish, Kaplan, Amodei et al. 2018, "An empirical model of large-batch
    training", App. A.1).

    Parameters
    ----------
    grads_small, grads_big : ``(k, d)`` arrays (or ``(d,)``) of independent mini-batch
        gradients at the same point, of sizes ``batch_small < batch_big``.
    n, replace : sampling, for ``c_B``.
    """
    m_s = float(np.mean(np.sum(np.atleast_2d(grads_small) ** 2, axis=1)))
    m_b = float(np.mean(np.sum(np.atleast_2d(grads_big) ** 2, axis=1)))
    c_s, c_b = noise_factor(batch_small, n, replace), noise_factor(batch_big, n, replace)
    if not c_s > c_b:
        raise ValueError("batch_small must be smaller than batch_big")
    trace_cov = (m_s - m_b) / (c_s - c_b)
    return GradientNoise(grad_sq=m_b - c_b * trace_cov, trace_cov=trace_cov)


def noise_scale_rule(
    method: str,
    batch_size: float,
    noise: GradientNoise,
    loss: float,
    eta_full: float,
    beta_full: float,
    *,
    n: int | None = None,
    replace: bool = True,
    form: str = "harmonic",
    constants: RuleConstants | None = None,
) -> tuple[float, float]:
    """The rule without a spectrum: ``(eta, beta)`` from a measured gradient noise scale.

    Parameters
    ----------
    method, batch_size : as in :func:`momentum_rule`.
    noise : :func:`gradient_noise_scale` at the current point.
    loss : ``f`` at that point (``f* = 0`` for an interpolating problem).
    eta_full, beta_full : the full-batch (noise-free) step and momentum, e.g. tuned at a
        large batch, or ``deterministic_optimum(method, L, mu)``. ``beta = beta_full``.
    n, replace, form, constants : as in :func:`momentum_rule` (the ``"trace"`` constants).

    Notes
    -----
    The noise line is ``c_noise 4 f / (c_B tr Sigma)`` (module docstring), the ceiling
    ``c_ceil eta_full / (1 - beta_full)``. As training proceeds ``tr Sigma / f`` stays
    put for a quadratic (it estimates ``tr H + lam_G``), so one measurement lasts.
    """
    k = RULE_CONSTANTS[(method, "trace")] if constants is None else constants
    c_B = noise_factor(batch_size, n, replace)
    nu = np.inf if c_B == 0 else 4.0 * loss / (c_B * noise.trace_cov)
    ceiling = k.ceil * eta_full / (1.0 - beta_full)
    eff = _blend(k.noise * nu, ceiling, form)
    return float(eff * (1.0 - beta_full)), float(beta_full)


# --------------------------------------------------------------------------------------
# Calibration against the exact theory
# --------------------------------------------------------------------------------------


def reference_spectra(d: int = 200) -> list[np.ndarray]:
    """The calibration set: geometric and power-law spectra, ``kappa = 1e2 .. 1e5``."""
    from minibatch_momentum.problems.system import spectrum

    return [
        spectrum(d, kappa, profile)
        for profile in ("geometric", "power")
        for kappa in (1e2, 1e3, 1e4, 1e5)
    ]


def rule_ratios(
    method: str,
    spectra: list[np.ndarray],
    batch_sizes,
    constants: RuleConstants,
    optimal: list[np.ndarray],
    *,
    noise_line_kind: str = "trace",
    form: str = "harmonic",
) -> np.ndarray:
    """``T_rule(B) / T*(B)`` (exact rates; ``optimal[k]`` holds ``T*`` for ``spectra[k]``)."""
    out = []
    for lam, t_opt in zip(spectra, optimal, strict=True):
        L, mu, trace = lam.max(), lam.min(), lam.sum()
        row = []
        for B in batch_sizes:
            eta, beta = momentum_rule(
                method,
                B,
                L,
                mu,
                trace,
                form=form,
                constants=constants,
                eigvals=lam if noise_line_kind == "spectrum" else None,
            )
            rho = Gaussian(lam).rate(method, B, eta, beta)
            row.append(iterations_from_rate(rho, 1.0 / np.e))
        out.append(np.asarray(row) / t_opt)
    return np.array(out)


def optimal_iterations(method: str, spectra, batch_sizes) -> list[np.ndarray]:
    """Exact ``T*(B)`` in units of ``log(1/eps)`` (that is, ``1 / log(1/rho*)``)."""
    return [
        np.array(
            [
                iterations_from_rate(optimal_parameters(Gaussian(lam), method, B).rho, 1.0 / np.e)
                for B in batch_sizes
            ]
        )
        for lam in spectra
    ]


def calibrate_rule(
    method: str,
    noise_line_kind: str = "trace",
    spectra: list[np.ndarray] | None = None,
    batch_sizes=None,
    *,
    start: RuleConstants | None = None,
    optimal: list[np.ndarray] | None = None,
) -> tuple[RuleConstants, float]:
    """Constants minimizing the worst ``T_rule / T*`` on the reference set (exact theory).

    Returns the constants and the worst ratio they reach. Slow at the default size
    (minutes): run it to regenerate ``RULE_CONSTANTS``, not in a pipeline step.
    """
    spectra = reference_spectra() if spectra is None else spectra
    batch_sizes = 2.0 ** np.arange(17) if batch_sizes is None else batch_sizes
    optimal = optimal_iterations(method, spectra, batch_sizes) if optimal is None else optimal
    if start is None:
        start = {
            "sgd": RuleConstants(0.0, 1.0, 1.0),
            "hb": RuleConstants(3.0, 0.9, 0.9),
            "nag": RuleConstants(1.5, 0.7, 0.7),
        }[method]

    def worst(x):
        k = RuleConstants(
            damp=float(np.exp(x[0])), ceil=float(np.exp(x[1])), noise=float(np.exp(x[2]))
        )
        r = rule_ratios(method, spectra, batch_sizes, k, optimal, noise_line_kind=noise_line_kind)
        return float(np.log(np.max(r))) if np.all(np.isfinite(r)) else 1e3

    x0 = np.log([max(start.damp, 1e-3), start.ceil, start.noise])
    if method == "sgd":  # no damping to tune
        res = scipy.optimize.minimize(
            lambda y: worst(np.r_[x0[0], y]),
            x0[1:],
            method="Nelder-Mead",
            options={"xatol": 1e-3, "fatol": 1e-4},
        )
        x = np.r_[x0[0], res.x]
    else:
        res = scipy.optimize.minimize(
            worst, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-4}
        )
        x = res.x
    k = RuleConstants(
        damp=0.0 if method == "sgd" else float(np.exp(x[0])),
        ceil=float(np.exp(x[1])),
        noise=float(np.exp(x[2])),
    )
    return k, float(np.exp(worst(x)))


@dataclass(frozen=True)
class RuleSpec:
    """Which variant of the rule a sweep shard runs beside its grid: ``noise_line``
    ``"trace"`` (``L``, ``mu``, ``tr H`` only) or ``"spectrum"`` (the eigenvalues too),
    and the blend ``form``."""

    noise_line: str = "trace"
    form: str = "harmonic"

    def __post_init__(self):
        if self.noise_line not in NOISE_LINES:
            raise ValueError(f"rule.noise_line: must be one of {list(NOISE_LINES)}")
        if self.form not in BLENDS:
            raise ValueError(f"rule.form: must be one of {list(BLENDS)}")
