r"""The interface of the per-mode theories: a :class:`NoiseModel` gives curves, counts,
rates and its ``(3d, 3d)`` operator from the diagonal recursion below; the Gaussian
closed form (:mod:`~minibatch_momentum.theory.gaussian`) and the moment closure
(:mod:`~minibatch_momentum.theory.closure`) are its two implementations, and the tuner
(:mod:`~minibatch_momentum.theory.tuning`) takes either.

Both keep, per mode ``i`` of ``H``, the diagonal second moments
``(p_i, q_i, s_i) = (E e_{t,i}^2, E e_{t,i} e_{t-1,i}, E e_{t-1,i}^2)``, which close::

    x_i  = (1 + gamma)^2 p_i - 2 gamma (1 + gamma) q_i + gamma^2 s_i     (= E u_i^2)
    p_i' = a_i^2 p_i + 2 a_i b_i q_i + b_i^2 s_i + eta^2 c_B noise_i(x)
    q_i' = a_i p_i + b_i q_i,     s_i' = p_i,

with ``a_i = 1 + beta - eta (1 + gamma) lam_i``, ``b_i = -beta + eta gamma lam_i``; the
models differ only in the noise ``noise(x) = (Q - Lambda^2) x`` (``Q`` the fourth
moments: ``2 Lambda^2 + lam lam^T`` for Gaussian rows) and in how they find the rate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property

import numpy as np

from minibatch_momentum.sampling.samplers import noise_factor
from minibatch_momentum.theory.common import (
    BLOWUP,
    MomentCurve,
    check_params,
    gamma_of,
    lookahead_weights,
    positive_eigvals,
)


class NoiseModel(ABC):
    """A per-mode theory of one spectrum: subclasses hold ``eigvals`` (of ``H``), ``n``
    and ``replace`` (which set ``c_B``, :func:`noise_factor`) and define the noise
    (:meth:`_recursion`, :meth:`_coupling`), the rate (:meth:`gap`) and the tuner's noise
    scale (:attr:`noise_scale`)."""

    eigvals: np.ndarray
    n: int | None
    replace: bool

    @abstractmethod
    def _recursion(self, weights, method, c, eta, beta) -> ModeRecursion:
        """The recursion of ``R`` configurations from ``weights`` (see :class:`ModeRecursion`)."""

    @abstractmethod
    def _coupling(self, lam: np.ndarray) -> np.ndarray:
        """``Q - Lambda^2``: the noise into ``p`` over ``c eta^2``, as a ``(d, d)`` matrix."""

    @abstractmethod
    def gap(self, method: str, c: float) -> Callable[[float, float], float]:
        """``(eta, beta) -> 1 - rho`` at the noise factor ``c`` (parameters not checked);
        one function serves a tuner's whole search (it may keep a warm start)."""

    @property
    @abstractmethod
    def noise_scale(self) -> float:
        """The noise-limited effective step is about ``B / noise_scale`` (``tr H`` for
        Gaussian rows): the tuner's start and SGD bracket."""

    @cached_property
    def positive(self) -> np.ndarray:
        """The positive eigenvalues (null directions left out, as in every rate)."""
        return positive_eigvals(self.eigvals)

    @property
    def largest_batch(self) -> float:
        """The largest batch: ``n`` without replacement, else ``inf``."""
        return float(self.n) if (self.n is not None and not self.replace) else np.inf

    def noise_factor(self, batch_size: float) -> float:
        return noise_factor(batch_size, self.n, self.replace)

    def curve(self, weights, method, batch_size: float, eta, beta, steps: int) -> MomentCurve:
        """Exact ``E f(x_t)`` and ``E ||x_t - x*||^2``, ``t = 0..steps``.

        Parameters
        ----------
        weights : (d,) squared initial error in the eigenbasis, ``(V^T (x_0 - x*))^2``
            (that is ``(V^T x*)^2`` from ``x_0 = 0``).
        method, batch_size : as in the engine; ``batch_size`` may be a float.
        eta, beta : scalars, or ``(R,)`` arrays for ``R`` configurations at once.
        steps : number of steps ``T``.

        Returns
        -------
        MomentCurve with ``(T + 1,)`` arrays, or ``(T + 1, R)`` for array parameters.
        """
        scalar = np.ndim(eta) == 0 and np.ndim(beta) == 0
        rec = self._recursion(weights, method, self.noise_factor(batch_size), eta, beta)
        return _moment_curve(rec, steps, scalar)

    def iterations_many(
        self,
        weights,
        method,
        batch_sizes,
        eta,
        beta,
        eps: float,
        *,
        measure: str = "loss",
        t_max: int = 10**6,
        **clock,
    ) -> np.ndarray:
        """Iterations to ``eps`` of the curve for many ``(B, eta, beta)`` (broadcast).

        ``measure``: ``"loss"`` (``E f``) or ``"dist"`` (``E ||e||^2``); ``inf`` if the
        curve stays above ``eps`` times its start for ``t_max`` steps or blows up. The
        configurations step together, and each leaves the batch when it is done; the
        results equal one-at-a-time calls (with ``censor_factor``, see
        :func:`_steps_to_eps`, only for the ones not censored). ``method`` is one name or
        one per configuration. ``clock``: ``censor_factor``, ``groups`` (the censoring
        groups), ``settle`` and ``on_group_done``, as in :func:`_steps_to_eps`.
        """
        Bs, eta, beta = _configs(measure, batch_sizes, eta, beta)
        c = np.array([self.noise_factor(B) for B in Bs])
        rec = self._recursion(weights, method, c, eta, beta)
        return _steps_to_eps(rec, measure, eps, t_max, **clock)

    def iterations(self, weights, method, batch_size, eta, beta, eps, **kw) -> float:
        """:meth:`iterations_many` for one configuration (keywords passed on)."""
        return float(self.iterations_many(weights, method, batch_size, eta, beta, eps, **kw)[0])

    def rate(self, method: str, batch_size: float, eta: float, beta: float) -> float:
        """Asymptotic rate ``rho``, the spectral radius of :meth:`operator` on the positive
        modes (``rho >= 1``: divergence)."""
        check_params(method, eta, beta)
        return 1.0 - self.gap(method, self.noise_factor(batch_size))(eta, beta)

    def operator(self, method: str, batch_size: float, eta: float, beta: float) -> np.ndarray:
        """The map as a ``(3d, 3d)`` matrix on ``(p_1..p_d, q_1..q_d, s_1..s_d)``.

        For checks and small ``d``; :meth:`rate` never forms it.
        """
        check_params(method, eta, beta)
        lam = np.asarray(self.eigvals, float)
        d = lam.size
        g = gamma_of(method, beta)
        c = self.noise_factor(batch_size)
        a = 1 + beta - eta * (1 + g) * lam
        b = -beta + eta * g * lam
        w = np.array(lookahead_weights(g))
        T = np.zeros((3 * d, 3 * d))
        i = np.arange(d)
        T[i, i], T[i, d + i], T[i, 2 * d + i] = a * a, 2 * a * b, b * b
        T[d + i, i], T[d + i, d + i] = a, b
        T[2 * d + i, i] = 1.0
        # Noise into p_i: c eta^2 ((Q - Lambda^2) x)_i, x = w . (p, q, s).
        coupling = c * eta**2 * self._coupling(lam)
        for k in range(3):
            T[:d, k * d : (k + 1) * d] += w[k] * coupling
        return T


class ModeRecursion:
    """State ``(p, q, s)`` of the per-mode recursion for ``R`` configurations; a model
    gives its noise (:meth:`_noise`)."""

    def __init__(self, eigvals, weights, method, c, eta, beta):
        self.lam = np.asarray(eigvals, float)
        eta, beta = (np.atleast_1d(np.asarray(v, float)) for v in (eta, beta))
        eta, beta = np.broadcast_arrays(eta, beta)
        # ``method``: one name, or one per configuration (configurations of different
        # methods step together: the methods differ only in the look-ahead g)
        method = np.broadcast_to(np.asarray(method, dtype=object), eta.shape)
        for m in set(method.tolist()):
            check_params(m, eta[method == m], beta[method == m])
        g = np.where(method == "nag", beta, 0.0)
        lam = self.lam[:, None]
        a = 1 + beta - eta * (1 + g) * lam
        b = -beta + eta * g * lam
        w1, w2, w3 = (np.broadcast_to(w, a.shape) for w in lookahead_weights(g))
        # The coefficients of p, q and s in the three rows a step computes, (x, p', q'),
        # stacked so that one product per state array serves every row (s has none in q').
        self._cp = np.stack([w1, a * a, a])
        self._cq = np.stack([w2, 2 * a * b, b])
        self._cs = np.stack([w3, b * b])
        # lam^2, lam and kick = c eta^2 over (d, R): an operation on equal shapes runs
        # 8-18% faster than one that broadcasts a row or a column (the same products).
        self._cn = np.stack(np.broadcast_arrays(lam * lam, lam, c * eta**2))
        self.p = np.repeat(np.asarray(weights, float)[:, None], eta.size, axis=1)
        self.q, self.s = self.p.copy(), self.p.copy()
        self._half_lam = 0.5 * self.lam
        self._scratch()

    def _scratch(self) -> None:
        # (3, d, R) arrays reused by every step: at d R ~ 10^5 a fresh temporary (new
        # pages) costs as much as the arithmetic on it. A step writes its rows into the
        # buffer that holds neither p and q (the last step's) nor s (the one before), so
        # three take turns; their views are made once (a step of few configurations costs
        # its calls, and making a view is one).
        tmp = np.empty((3, *self.p.shape))
        self._tmp = (tmp, tmp[:2], tmp[0], tmp[1])
        self._turns = [(r, r[:2], *r) for r in (np.empty_like(tmp) for _ in range(3))]
        self._lam2, self._lam_r, self._kick = self._cn  # (d, R) each

    def _noise(self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
        """The noise term over ``kick``, ``(Q - Lambda^2) x``, into ``out`` (``tmp`` is
        scratch)."""
        raise NotImplementedError

    def step(self) -> None:
        """``p' = aa p + ab2 q + bb s + kick noise(x)``, ``q' = a p + b q``, ``s' = p`` with
        ``x = w1 p + w2 q + w3 s`` (``E u_i^2`` at the gradient point): the same products
        and sums in the same order as written, so the same numbers to the last bit, done
        for the three rows at once (a step of few configurations costs its calls, not its
        arithmetic)."""
        rows, rows_ps, x, new, q_new = turn = self._turns.pop(0)
        self._turns.append(turn)
        tmp, tmp_ps, out, scratch = self._tmp
        np.multiply(self._cp, self.p, out=rows)  # w1 p, aa p, a p
        rows += np.multiply(self._cq, self.q, out=tmp)  # + w2 q, + ab2 q, + b q
        rows_ps += np.multiply(self._cs, self.s, out=tmp_ps)  # + w3 s, + bb s (rows x, p')
        noise = self._noise(x, out, scratch)
        noise *= self._kick
        new += noise
        self.p, self.q, self.s = new, q_new, self.p

    def keep(self, mask: np.ndarray) -> None:
        """Drop the configurations where ``mask`` is False. ``np.take`` keeps the arrays
        C-contiguous (a boolean mask on the last axis returns them transposed in memory,
        which made every later step of the survivors ~1.5x slower)."""
        idx = np.flatnonzero(mask)
        for name in ("_cp", "_cq", "_cs", "_cn", "p", "q", "s"):
            setattr(self, name, np.take(getattr(self, name), idx, axis=-1))
        self._scratch()

    def loss(self, out: np.ndarray | None = None) -> np.ndarray:
        return np.matmul(self._half_lam, self.p, out=out)  # = 0.5 * lam @ p, bit for bit

    def dist(self, out: np.ndarray | None = None) -> np.ndarray:
        return self.p.sum(axis=0, out=out)


def _moment_curve(rec, steps: int, scalar: bool) -> MomentCurve:
    """Step a per-mode recursion ``steps`` times, recording ``E f`` and ``E ||e||^2``."""
    R = rec.p.shape[1]
    loss, dist = np.empty((steps + 1, R)), np.empty((steps + 1, R))
    loss[0], dist[0] = rec.loss(), rec.dist()
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            rec.step()
            loss[t], dist[t] = rec.loss(), rec.dist()
    if scalar:
        loss, dist = loss[:, 0], dist[:, 0]
    return MomentCurve(loss=loss, dist=dist)


def _configs(measure, batch_sizes, eta, beta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast ``(B, eta, beta)`` to equal 1-d float arrays (and check ``measure``)."""
    if measure not in ("loss", "dist"):
        raise ValueError(f"measure must be 'loss' or 'dist', got {measure!r}")
    return tuple(
        np.asarray(v, float)
        for v in np.broadcast_arrays(
            np.atleast_1d(np.asarray(batch_sizes, float)),
            np.atleast_1d(np.asarray(eta, float)),
            np.atleast_1d(np.asarray(beta, float)),
        )
    )


def _steps_to_eps(rec, measure: str, eps: float, t_max: int, **clock) -> np.ndarray:
    """Step a recursion of ``R`` configurations until each reaches ``eps`` times its start
    (or blows up, ``inf``); a configuration leaves the batch once it is done.

    ``clock`` (:class:`_Clock`): with ``censor_factor``, stop every configuration still
    going at ``censor_factor`` times the first count any of them reached (``inf`` for
    those), as the sweeps do: only the fastest configurations matter to a grid's minimum.
    ``groups`` (``(R,)`` integer labels; default one group) gives each group its own
    censoring clock, so several grids (batch sizes, methods) step together: the steps'
    fixed cost is paid once for all of them, and each group's counts are those it would
    get alone. With ``settle`` as well, only each group's smallest count matters, rounded
    up to a multiple of ``settle``: the group stops at its first count rounded up (no
    count after that rounds to the same multiple, let alone below it), and the counts it
    did not reach come back ``inf``. ``on_group_done(group, t)`` is called when a
    group's last configuration is done (a long job's progress).

    The values are checked every few steps (up to :data:`CHECK_CHUNK`), not after each:
    a step of few configurations costs its numpy calls, and the checks were half of them.
    Each step's values are kept, so the counts are those of a check after every step."""
    value = rec.loss if measure == "loss" else rec.dist
    clock = _Clock(value(), eps, t_max, **clock)
    t, chunk = 0, 1
    with np.errstate(over="ignore", invalid="ignore"):
        while t < t_max:
            values = np.empty((min(chunk, t_max - t), clock.ids.size))
            for row in values:
                rec.step()
                value(out=row)
            done = clock.record(values, t)
            t += len(values)
            if done.all():
                break
            if done.any():
                rec.keep(~done)
            chunk = min(2 * chunk, CHECK_CHUNK)  # short chunks first: early counts
    return clock.out


# The most steps between two checks of _steps_to_eps: a configuration that is done steps on
# to the end of its chunk, at most this many steps more than it needs.
CHECK_CHUNK = 64


class _Clock:
    """The bookkeeping of :func:`_steps_to_eps`: targets, walls, censoring horizons and
    counts of the configurations still stepping (``ids``, in the recursion's order)."""

    def __init__(
        self, start, eps, t_max, censor_factor=None, groups=None, settle=None, on_group_done=None
    ):
        self.target, self.wall = eps * start, BLOWUP * start
        self.out = np.full(start.size, np.inf)
        self.ids = np.arange(start.size)
        self.group = np.zeros(start.size, int) if groups is None else np.asarray(groups, int)
        self.horizon = np.full(self.group.max(initial=0) + 1, t_max)
        self.ends = self.horizon[self.group]  # each configuration's horizon, as ``ids``
        self.t_max, self.censor_factor, self.settle = t_max, censor_factor, settle
        self.on_group_done = on_group_done

    def record(self, values: np.ndarray, t0: int) -> np.ndarray:
        """Counts from ``values`` (row ``j``: the values after step ``t0 + j + 1``) and which
        configurations are done (a mask over ``ids``, which then drops them). Rows are
        visited in order where something happens, as a check after every step would."""
        flagged = np.flatnonzero(((values <= self.target) | ~(values < self.wall)).any(axis=1))
        alive = np.ones(self.ids.size, bool)
        row = 0
        while alive.any():
            later = flagged[flagged >= row]
            row = min(later[0] if later.size else len(values), self.ends[alive].min() - t0 - 1)
            if row >= len(values):
                break
            cols = np.flatnonzero(alive)
            alive[cols[self._check(values[row, cols], cols, t0 + row + 1)]] = False
            row += 1
        done = ~alive
        if self.on_group_done is not None and done.any():
            left = set(self.group[self.ids[alive]].tolist())
            for g in sorted(set(self.group[self.ids[done]].tolist()) - left):
                self.on_group_done(g, t0 + len(values))
        self.ids, self.target, self.wall = self.ids[alive], self.target[alive], self.wall[alive]
        self.ends = self.ends[alive]
        return done

    def _check(self, v: np.ndarray, cols: np.ndarray, t: int) -> np.ndarray:
        """The check after step ``t`` of the configurations ``cols`` with values ``v``:
        record the hits, start the censoring clocks of their groups; which are done."""
        hit = v <= self.target[cols]
        done = hit | ~(v < self.wall[cols]) | (self.ends[cols] <= t)
        self.out[self.ids[cols[hit]]] = t
        if self.censor_factor is not None and hit.any():
            first = np.unique(self.group[self.ids[cols[hit]]])
            first = first[self.horizon[first] == self.t_max]
            end = int(np.ceil(self.censor_factor * t))
            if self.settle is not None:
                end = min(end, -(-t // self.settle) * self.settle)
            self.horizon[first] = min(self.t_max, end)
            self.ends = self.horizon[self.group[self.ids]]
            done |= self.ends[cols] <= t
        return done
