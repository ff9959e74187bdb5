r"""Batch-scaling quantities of the claims: critical batches, parallel efficiency, speedup.

The claims are stated in the language of the large-batch literature (McCandlish et al.
2018; Shallue et al. 2019; Zhang et al. 2019). For one (problem, sampler) pair and a
method ``m`` with grid-tuned iterations-to-eps ``T_m(B)`` and full-batch count
``T_det,m``:

- ``E_m = min_B B T_m(B)``: the fewest samples (gradient rows) that reach ``eps``;
- ``B_crit,m = E_m / T_det,m``: the critical batch. In the hyperbolic model
  ``T(B) = T_det (1 + B_noise / B)`` the product ``B T(B)`` falls to ``T_det B_noise``
  as ``B -> 0``, so ``B_crit = B_noise`` (McCandlish's noise scale with
  ``S_min = T_det``);
- ``eff_m(B) = B_ref T_m(B_ref) / (B T_m(B))``: parallel efficiency (1: doubling ``B``
  halves the iterations; exactly 1/2 at ``B_crit`` in the hyperbolic model);
- ``R(B) = T_SGD(B) / T_m(B)``: momentum's speedup over SGD at equal ``B``;
- ``A(B) = R(B) B_crit,SGD / B``: the speedup per unit of batch, about 1 where the
  acceleration grows in proportion to ``B``.

Everything here takes arrays and returns arrays. :func:`bootstrap_counts` re-tunes the
grid on seed resamples, so each quantity comes with a bootstrap interval in which the
tuning's own selection noise is included; replicate 0 is the full sample (the point
estimate). :func:`tuned_log_counts` restricts tuning to the deterministic stability
region (:func:`~minibatch_momentum.theory.common.stable_region`): points outside it may be run
and drawn, never chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Resamples of the seeds behind each interval, and the fixed seed that makes every
# interval the same on every run.
N_BOOT = 2000
BOOT_SEED = 20260518
LEVEL = 0.9  # two-sided coverage of the reported intervals


def seed_weights(n_seeds: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """Multiplicities of each seed in each bootstrap resample, ``(1 + n_boot, n_seeds)``.

    Row 0 is the full sample (all ones); rows ``1..n_boot`` draw ``n_seeds`` seeds with
    replacement from a fixed stream, so two runs give identical intervals.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    counts = np.stack([np.bincount(row, minlength=n_seeds) for row in draws])
    return np.vstack([np.ones((1, n_seeds), int), counts]).astype(float)


def tuned_log_counts(log_T: np.ndarray, allowed: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Grid-tuned ``log T`` per replicate: ``min`` over allowed grid points of the
    weighted mean of ``log T`` over seeds (a geometric mean over the resampled seeds).

    Parameters
    ----------
    log_T : ``(points, seeds)``, ``inf`` where a run did not reach ``eps``.
    allowed : ``(points,)`` bool, the points tuning may choose (stability region).
    weights : ``(replicates, seeds)`` seed multiplicities (:func:`seed_weights`).

    Returns
    -------
    ``(replicates,)``: ``inf`` where no allowed point reached ``eps`` on every chosen seed.
    """
    log_T = np.asarray(log_T, float)[np.asarray(allowed, bool)]
    if log_T.shape[0] == 0:
        return np.full(weights.shape[0], np.inf)
    finite = np.isfinite(log_T)
    mean = (weights @ np.where(finite, log_T, 0.0).T) / weights.sum(axis=1, keepdims=True)
    missing = (weights > 0).astype(float) @ (~finite).T.astype(float) > 0
    return np.min(np.where(missing, np.inf, mean), axis=1)


def bootstrap_counts(log_T: np.ndarray, allowed: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`tuned_log_counts` at every batch size: ``log_T`` is ``(B, points, seeds)``;
    returns ``T`` (not its log) as ``(replicates, B)``."""
    return np.exp(
        np.stack([tuned_log_counts(lt, allowed, weights) for lt in np.asarray(log_T)], axis=1)
    )


def samples_to_eps(B: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``E = min_B B T(B)`` along the last axis (``T``: ``(..., len(B))``)."""
    return np.min(np.asarray(B, float) * np.asarray(T, float), axis=-1)


def critical_batch(B: np.ndarray, T: np.ndarray, T_det: float) -> np.ndarray:
    """``B_crit = E / T_det`` (see the module docstring)."""
    return samples_to_eps(B, T) / float(T_det)


def efficiency(B: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``eff(B) = B_ref T(B_ref) / (B T(B))`` with ``B_ref`` the first (smallest) ``B``."""
    B, T = np.asarray(B, float), np.asarray(T, float)
    work = B * T
    with np.errstate(invalid="ignore", divide="ignore"):
        return work[..., :1] / work


def acceleration(B: np.ndarray, ratio: np.ndarray, b_crit_sgd) -> np.ndarray:
    """``A(B) = R(B) B_crit,SGD / B`` (``b_crit_sgd`` broadcasts over replicates)."""
    return np.asarray(ratio, float) * np.asarray(b_crit_sgd, float)[..., None] / np.asarray(B)


@dataclass(frozen=True)
class Curves:
    """``T_m(B)`` of one pair, per method: replicates on axis 0 (one row for a curve
    without seeds, such as the exact theory's), batch sizes on axis 1."""

    batch_sizes: dict[str, np.ndarray]
    T: dict[str, np.ndarray]
    T_det: dict[str, float]

    def common(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, T_a, T_b)`` at the batch sizes both methods have."""
        Ba, Bb = self.batch_sizes[a], self.batch_sizes[b]
        B, i, j = np.intersect1d(Ba, Bb, return_indices=True)
        return B, self.T[a][:, i], self.T[b][:, j]

    def quantities(self, method: str) -> dict[str, np.ndarray]:
        """Every quantity of the module docstring for ``method`` (against ``"sgd"``),
        each with the replicate axis first."""
        B, T = self.batch_sizes[method], self.T[method]
        out = {
            "B": B,
            "T": T,
            "E": samples_to_eps(B, T),
            "B_crit": critical_batch(B, T, self.T_det[method]),
            "eff": efficiency(B, T),
        }
        if "sgd" in self.T and method != "sgd":
            Bc, Ts, Tm = self.common("sgd", method)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = Ts / Tm
            b_crit_sgd = critical_batch(self.batch_sizes["sgd"], self.T["sgd"], self.T_det["sgd"])
            out.update(B_common=Bc, R=ratio, A=acceleration(Bc, ratio, b_crit_sgd))
        return out


def interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """Percentile interval of replicates ``1..`` of ``values`` (row 0: the point estimate);
    ``[nan, nan]`` without replicates. Infinite replicates count (an interval may reach
    ``inf``)."""
    v = np.asarray(values, float)[1:]
    if v.size == 0:
        return [float("nan"), float("nan")]
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return [float(lo), float(hi)]


def loglog_exponent(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``log y`` on ``log x`` along the last axis (``nan`` where any
    ``y`` is not finite and positive)."""
    lx = np.log(np.asarray(x, float))
    y = np.asarray(y, float)
    ok = np.all(np.isfinite(y) & (y > 0), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(np.where(y > 0, y, np.nan))
    xc = lx - lx.mean()
    slope = (ly - ly.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)
    return np.where(ok, slope, np.nan)
