"""How the runs of a grid end, and what :func:`~minibatch_momentum.simulate.engine.run_grid`
returns: the stopping rule, its bookkeeping at each loss check, and the result.

A run stops at its first check with a relative loss at most ``eps`` (converged), above
``blowup`` or not finite (diverged), or at the horizon: ``t_max``, or once the first leader
has converged at step ``t``, ``censor_factor * t`` (censored). Only each run's iteration
count, status and a log-spaced loss curve are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minibatch_momentum.theory.common import BLOWUP

CONVERGED, DIVERGED, CENSORED, TIMEOUT = "converged", "diverged", "censored", "t_max"


@dataclass(frozen=True)
class StopRule:
    """When a run ends. ``eps`` is relative to the loss at ``x_0``."""

    eps: float = 1e-4
    t_max: int = 100_000
    check_every: int = 10
    censor_factor: float = 2.0
    blowup: float = BLOWUP  # the exact counts' threshold too (theory.BLOWUP)
    curve_points: int = 400

    def __post_init__(self):
        if not 0 < self.eps < 1:
            raise ValueError(f"eps must lie in (0, 1), got {self.eps}")
        if self.t_max < 1 or self.check_every < 1:
            raise ValueError("t_max and check_every must be >= 1")
        if self.censor_factor <= 1:
            raise ValueError(f"censor_factor must be > 1, got {self.censor_factor}")

    def recorded_checks(self) -> np.ndarray:
        """Check indices whose loss goes into the stored curve: the first 50, then
        ``curve_points`` log-spaced, so a curve's size does not grow with ``t_max``."""
        n_checks = self.t_max // self.check_every
        geo = np.geomspace(1, max(n_checks, 1), self.curve_points).round().astype(int)
        return np.union1d(np.arange(min(50, n_checks) + 1), geo)


@dataclass
class GridResult:
    """Outcome of one grid of runs sharing a mini-batch stream.

    ``iters_to_eps`` is ``inf`` for any run that did not reach ``eps``; ``status`` says
    why (``converged``, ``diverged``, ``censored``, ``t_max``), ``steps_run`` how far it
    got and ``diverged_at`` the check where it blew up (-1 if it did not).
    ``curves[r]`` is ``(steps, relative loss)`` at the recorded checks.
    """

    iters_to_eps: np.ndarray
    status: np.ndarray
    steps_run: np.ndarray
    diverged_at: np.ndarray
    final_loss: np.ndarray
    curves: list[tuple[np.ndarray, np.ndarray]]


class Outcomes:
    """:func:`run_grid`'s bookkeeping: each run's outcome and the loss curves it records,
    updated at every loss check, and the grid's horizon (``t_max``, or the censoring
    clock once a leader converges)."""

    def __init__(self, R: int, stop: StopRule, leaders: np.ndarray):
        self.R, self.stop, self.lead = R, stop, leaders
        self.iters = np.full(R, np.inf)
        self.status = np.full(R, TIMEOUT, dtype=object)
        self.steps_run = np.zeros(R, dtype=np.int64)
        self.diverged_at = np.full(R, -1, dtype=np.int64)
        self.final = np.full(R, np.nan)
        self.rec_ids, self.rec_t, self.rec_loss = (
            [np.arange(R)],
            [np.zeros(R, np.int64)],
            [np.ones(R)],
        )
        self.recorded = set(stop.recorded_checks().tolist())
        self.horizon = stop.t_max

    def _record(self, ids: np.ndarray, t: int, loss: np.ndarray) -> None:
        self.rec_ids.append(ids)
        self.rec_t.append(np.full(ids.size, t))
        self.rec_loss.append(loss)

    def check(self, t: int, active: np.ndarray, rel: np.ndarray) -> np.ndarray | None:
        """The check after step ``t`` of the runs ``active`` (relative losses ``rel``): the
        mask over ``active`` of the runs that stop here, or None when none does."""
        stop = self.stop
        on_curve = t // stop.check_every in self.recorded
        # Most checks change nothing; two reductions say so before any bookkeeping.
        if t < self.horizon and not on_curve and rel.max() <= stop.blowup:
            if not rel.min() <= stop.eps:
                return None
        if on_curve or t == self.horizon:
            self._record(active.copy(), t, rel)
        bad = ~np.isfinite(rel) | (rel > stop.blowup)
        good = ~bad & (rel <= stop.eps)
        done = bad | good
        if (good & self.lead[active]).any() and not np.isfinite(self.iters[self.lead]).any():
            self.horizon = min(stop.t_max, int(np.ceil(stop.censor_factor * t)))
        if t >= self.horizon:
            done[:] = True
        if not done.any():
            return None
        ids = active[done]
        self.iters[active[good]] = t
        self.status[active[good]] = CONVERGED
        self.status[active[bad]] = DIVERGED
        self.diverged_at[active[bad]] = t
        self.steps_run[ids] = t
        self.final[ids] = rel[done]
        if t < stop.t_max:
            self.status[active[done & ~good & ~bad]] = CENSORED
        if not (on_curve or t == self.horizon):
            self._record(ids, t, rel[done])
        return done

    def result(self) -> GridResult:
        ids = np.concatenate(self.rec_ids)
        order = np.argsort(ids, kind="stable")
        ts, ls = np.concatenate(self.rec_t)[order], np.concatenate(self.rec_loss)[order]
        ends = np.cumsum(np.bincount(ids, minlength=self.R)).tolist()
        # Slices, not np.split: the same views, without its ~4 us of bookkeeping per run.
        curves = [(ts[a:b], ls[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        return GridResult(
            iters_to_eps=self.iters,
            status=self.status.astype(str),
            steps_run=self.steps_run,
            diverged_at=self.diverged_at,
            final_loss=self.final,
            curves=curves,
        )
