r"""Batched mini-batch SGD, heavy ball and Nesterov on a consistent least-squares system.

Every method here is one recursion on the error ``e_t = x_t - x*``::

    y_t     = x_t + gamma (x_t - x_{t-1})                  (look-ahead point)
    x_{t+1} = x_t + beta (x_t - x_{t-1}) - eta g_S(y_t)    g_S(y) = A_S^T (A_S y - b_S) / B

with ``x_{-1} = x_0`` and

=======  ===========  ==================================================
method   gamma        update
=======  ===========  ==================================================
``sgd``  0, beta = 0  plain mini-batch SGD
``hb``   0            Polyak's heavy ball
``nag``  beta         Nesterov: ``x_{t+1} = y_t - eta g_S(y_t)``,
                      ``y_{t+1} = x_{t+1} + beta (x_{t+1} - x_t)``
=======  ===========  ==================================================

Mapping to ``torch.optim.SGD(lr, momentum, nesterov, dampening=0)``: ``lr = eta`` and
``momentum = beta``. For heavy ball the optimizer's parameter *is* ``x_t``. With
``nesterov=True`` the optimizer's parameter is the look-ahead point ``y_t`` (the
point where it evaluates the gradient), so its trajectory equals this module's
``y_t = x_t + beta (x_t - x_{t-1})``; both sequences are returned by
:func:`trajectory` for that comparison.

:func:`run_grid` advances a whole (eta, beta) grid at once: the ``R`` runs share the
mini-batch of each step (common random numbers), so a step is two matrix products,
``(B x d)(d x R)`` and back. It works in the eigenbasis of ``H`` (rows rotated once at
start-up) so the exact loss ``f(x) - f(x*) = e^T H e / 2`` costs ``O(dR)``, not ``O(d^2 R)``.
A run stops when its loss falls to ``eps`` times the initial loss, when it diverges
(recorded, never raised), when it has taken ``censor_factor`` times as many steps as
the grid's first converged run (it cannot be the tuned choice any more), or at ``t_max``.

Baselines
---------
Three more methods (docs/design.md section 2, S6) run through the same :func:`run_grid` and
:func:`trajectory`, on the same mini-batches, each equal to its ``torch.optim`` class in
:mod:`~minibatch_momentum.optim` (tests/simulate/test_engine.py, to 1e-10 in float64).
With ``g_t = g_S(y_t)`` the mini-batch gradient at the method's gradient point ``y_t``:

========  ======================================================  =========================
method    update (``x``: the point whose loss is measured)          ``optim`` class
========  ======================================================  =========================
``sngm``  ``u_{t+1} = beta u_t + g_t / max(||g_t||, 1e-12)``,      ``SNGM(lr=eta,
          ``x_{t+1} = x_t - eta u_{t+1}``, ``u_0 = 0``, ``y = x``   momentum=beta)``
``asgd``  ``xbar_{t+1} = (1 - b) xbar_t + b (x_t - (eta k / c) g_t)``,  ``AccSGD(lr=eta,
          ``x_{t+1} = zeta (x_t - eta g_t) + (1 - zeta) xbar_{t+1}``,  kappa=k, xi=xi,
          ``b = c^2 xi / k``, ``zeta = c / (c + b)``, ``xbar_0 = x_0``,  small_const=c)``
          ``y = x``
``mass``  ``x_{t+1} = y_t - eta g_t``,                              ``MaSS(lr=eta,
          ``y_{t+1} = (1 + beta) x_{t+1} - beta x_t + eta2 g_t``,   gamma=beta, eta2=eta2)``
          ``y_0 = x_0``
========  ======================================================  =========================

Parameter mapping: ``eta`` is always the optimizer's ``lr``. ``beta`` is SNGM's
``momentum`` and MaSS's ``gamma``; ASGD has no momentum parameter (``beta`` must be 0)
and takes ``kappa`` and ``xi`` per run in ``extra`` (``small_const`` ``c`` is a scalar,
default 0.7); MaSS takes ``eta2`` per run in ``extra`` (``eta2 = 0``: Nesterov). SNGM
normalizes each run's gradient on its own: the norm of column ``r`` of the ``(d, R)``
gradient (the norm is the same in the eigenbasis). Measured point: SNGM's and ASGD's
parameters; MaSS's ``w`` sequence (the paper's output; its parameters hold the gradient
point ``u = y``), which is what Nesterov's ``x`` is when ``eta2 = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from minibatch_momentum.problems.system import Problem
from minibatch_momentum.sampling.samplers import Sampling, sampling
from minibatch_momentum.simulate.outcomes import (  # noqa: F401 (the engine's interface)
    CENSORED,
    CONVERGED,
    DIVERGED,
    TIMEOUT,
    GridResult,
    Outcomes,
    StopRule,
)

METHODS = ("sgd", "hb", "nag")
# Baselines of S6 (see "Baselines" above) and the extra per-run parameters each takes.
BASELINES = ("sngm", "asgd", "mass")
ALL_METHODS = METHODS + BASELINES
EXTRA_PARAMS = {
    "sgd": (),
    "hb": (),
    "nag": (),
    "sngm": (),
    "asgd": ("kappa", "xi"),
    "mass": ("eta2",),
}
ASGD_SMALL_CONST = 0.7
# Largest batch the compiled chunk of :mod:`~minibatch_momentum.simulate.kernels` takes:
# above it PyTorch's matrix products beat the compiled loops (`mbm benchmark`).
COMPILED_MAX_BATCH = 4
# Most steps of one compiled call (their batches are drawn ahead; see run_grid).
COMPILED_STEPS = 4096
# Most bytes of rows the PyTorch path gathers at once (see _Classic.steps).
GATHER_BYTES = 1 << 20
SNGM_EPS = 1e-12


def use_threads(n: int) -> None:
    """Run on ``n`` threads: PyTorch's own, and those of the BLAS libraries that NumPy,
    SciPy and the compiled steps of :mod:`~minibatch_momentum.simulate.kernels` call
    (threadpoolctl; each of them would otherwise start one thread per core)."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) picks CUDA when present, else the CPU. A CUDA device comes with
    its index (``cuda`` is the current one), so the same device compares equal however
    it was named (the engine keys its table copies by device)."""
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _gamma(method: str, beta: torch.Tensor) -> torch.Tensor | None:
    if method not in ALL_METHODS:
        raise ValueError(f"method must be one of {ALL_METHODS}, got {method!r}")
    return beta if method == "nag" else None


def _check_params(method: str, eta: np.ndarray, beta: np.ndarray) -> None:
    if eta.shape != beta.shape or eta.ndim != 1 or eta.size == 0:
        raise ValueError("eta and beta must be non-empty 1-d arrays of equal length")
    if np.any(eta <= 0):
        raise ValueError("every eta must be > 0")
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError("every beta must lie in [0, 1)")
    if method in ("sgd", "asgd") and np.any(beta != 0):
        raise ValueError(f"method {method!r} takes beta = 0 only")


def _check_extra(method: str, eta: np.ndarray, extra: dict | None, small_const: float) -> dict:
    """The method's extra per-run parameters as float arrays shaped like ``eta``."""
    _gamma(method, None)
    extra = dict(extra or {})
    need = EXTRA_PARAMS[method]
    unknown = sorted(set(extra) - set(need))
    if unknown:
        raise ValueError(f"extra: method {method!r} takes {list(need)}, got {unknown}")
    missing = [k for k in need if k not in extra]
    if missing:
        raise ValueError(f"extra: method {method!r} needs {missing}")
    out = {}
    for k in need:
        v = np.broadcast_to(np.asarray(extra[k], dtype=float), eta.shape).copy()
        if not np.all(np.isfinite(v)):
            raise ValueError(f"extra: every {k} must be finite")
        out[k] = v
    if method == "asgd":
        c = float(small_const)
        if not 0 < c <= 1:
            raise ValueError(f"small_const must lie in (0, 1], got {small_const}")
        if np.any(out["kappa"] <= 0) or np.any(out["xi"] <= 0):
            raise ValueError("extra: every kappa and xi must be > 0")
        if np.any(c * c * out["xi"] > out["kappa"]):
            raise ValueError("extra: asgd needs xi <= kappa / small_const**2")
    return out


def _use_compiled(B: int, tables, dev: torch.device) -> bool:
    """Whether :class:`_Classic` steps through the compiled small-batch chunk
    (:mod:`~minibatch_momentum.simulate.kernels`): on the CPU, for a gradient sampler, at
    a batch up to ``COMPILED_MAX_BATCH`` rows, where PyTorch's per-operation dispatch
    costs more than the arithmetic."""
    return torch.device(dev).type == "cpu" and not tables.project and B <= COMPILED_MAX_BATCH


def _use_gram(B: int, d: int, R: int) -> bool:
    """Whether ``(U_S^T V_S) Y`` is cheaper than ``U_S^T (V_S Y)`` (flop count)."""
    return 2 * B * d * d + 2 * d * d * R < 4 * B * d * R


class _Tables:
    """A :class:`~minibatch_momentum.sampling.samplers.Sampling` on the device: ``apply`` gives
    ``B Z_S Y`` (the sum over the batch of ``u_i v_i^T Y``), or ``P_S Y`` for block
    projection, for a batch shared by all runs ``(B,)`` or one per run ``(R, B)``."""

    def __init__(self, sampling: Sampling, dtype, dev):
        # Contiguous rows: a row is one read for the gathers and the compiled kernels.
        self.V = torch.as_tensor(sampling.V, dtype=dtype, device=dev).contiguous()
        self.U = (
            self.V
            if sampling.symmetric
            else torch.as_tensor(sampling.U, dtype=dtype, device=dev).contiguous()
        )
        self.project = sampling.project

    def scale(self, batch_size: int) -> float:
        """Factor turning ``apply`` into ``Z_S Y``."""
        return 1.0 if self.project else 1.0 / batch_size

    def rows(self, idx):
        # index_select on flat indices is ~2x faster than fancy indexing for the gather.
        Vs = self.V.index_select(0, idx.reshape(-1))
        Us = Vs if self.U is self.V else self.U.index_select(0, idx.reshape(-1))
        if idx.ndim == 2:
            R, B = idx.shape
            Us, Vs = Us.view(R, B, -1), Vs.view(R, B, -1)
        if self.project:  # P_S = pinv(V_S) V_S: the left factor is the pseudo-inverse
            Us = torch.linalg.pinv(Vs, rtol=1e-10).transpose(-1, -2)
        return Us, Vs

    def apply(self, Y, idx, gram=False):
        Us, Vs = self.rows(idx)
        if idx.ndim == 1:
            return (Us.T @ Vs) @ Y if gram else Us.T @ (Vs @ Y)
        return torch.bmm(Us.transpose(1, 2), torch.bmm(Vs, Y.T.unsqueeze(2))).squeeze(2).T


def _step(tables, E, V, idx, neg_eta, beta, gamma, gram=False):
    """One step of all runs, in place. ``E``: errors ``(d, R)``; ``V``: ``e_t - e_{t-1}``.

    ``neg_eta`` is ``-eta`` times the tables' scale (``1/B`` for gradient samplers).
    ``idx`` is ``(B,)`` (one batch shared by all runs) or ``(R, B)`` (a batch per run).
    ``gram`` forms the batch's ``d x d`` matrix ``U_S^T V_S`` first, which wins for large
    batches and wide grids (see :func:`_use_gram`); the result is the same.
    The per-run step size scales the small ``(B, R)`` product, not the ``(d, R)``
    gradient, and lands in ``V`` through one fused ``addmm``.
    """
    Y = E if gamma is None else torch.addcmul(E, V, gamma)
    V.mul_(beta)
    if idx.ndim == 1:
        Us, Vs = tables.rows(idx)
        if gram:
            V.addmm_(Us.T @ Vs, Y * neg_eta)
        else:
            V.addmm_(Us.T, (Vs @ Y).mul_(neg_eta))
    else:
        V.addcmul_(tables.apply(Y, idx), neg_eta)
    E.add_(V)


class _Classic:
    """SGD / heavy ball / Nesterov state: errors ``E`` and ``V = e_t - e_{t-1}``, stepped by
    :func:`_step` (the arithmetic the module docstring states)."""

    def __init__(self, method, tables, E, eta, beta, batch_size, dtype, dev):
        self.method, self.tables, self.E, self.V = method, tables, E, torch.zeros_like(E)
        self.eta_t = torch.as_tensor(-eta * tables.scale(batch_size), dtype=dtype, device=dev)
        self.beta_t = torch.as_tensor(beta, dtype=dtype, device=dev)
        self.gamma = _gamma(method, self.beta_t)
        self.plain = method == "sgd"
        self.compiled = _use_compiled(batch_size, tables, dev)

    def step(self, idx, gram=False):
        _step(self.tables, self.E, self.V, idx, self.eta_t, self.beta_t, self.gamma, gram)

    def steps(self, block, gram=False):
        """The steps of a ``(k, B)`` block of shared batches, the arithmetic of :meth:`step`
        each, with the rows of several batches gathered at once (the compiled path, small
        ``B`` on the CPU, is :meth:`checks`)."""
        if block.ndim != 2 or self.tables.project:
            for idx in block:
                self.step(idx, gram)
            return
        # One gather for several steps instead of one per step, but no more rows than stay
        # in the cache until their step: at B = 1024, d = 512 the 20 steps between two
        # loss checks gather 40 MB, and gathering them at once costs 4x more per step.
        row_bytes = block.shape[1] * self.E.shape[0] * self.E.element_size()
        per = max(1, GATHER_BYTES // row_bytes)
        for start in range(0, block.shape[0], per):
            self._gathered_steps(block[start : start + per], gram)

    def checks(self, block, check_every, lam, scale, stop):
        """The compiled path (:func:`~minibatch_momentum.simulate.kernels.classic_checks`):
        the steps of ``block`` with a loss check every ``check_every``, up to and
        including the first check at which a run stops; the relative losses ``(c, R)``."""
        # Imported here: Numba's import and the kernel's cache load cost ~0.5 s, which
        # only the small-batch runs on the CPU repay.
        from minibatch_momentum.simulate.kernels import classic_checks

        U, W = self.tables.U.numpy(), self.tables.V.numpy()
        E, V, neg_eta, beta = (a.numpy() for a in (self.E, self.V, self.eta_t, self.beta_t))
        return classic_checks(
            E, V, U, W, block.numpy(), neg_eta, beta, self.method,
            check_every, lam, scale, stop.eps, stop.blowup,
        )  # fmt: skip

    def _gathered_steps(self, block, gram):
        Us, Vs = self.tables.rows(block.reshape(-1))
        # Every step's operands made in one call each: at small B a step is a handful of
        # tiny kernels, and a Python-level index per step and operand costs as much.
        Uts = Us.view(*block.shape, -1).transpose(1, 2).unbind(0)
        Vss = Vs.view(*block.shape, -1).unbind(0)
        E, V, neg_eta, beta, gamma = self.E, self.V, self.eta_t, self.beta_t, self.gamma
        if self.plain:  # SGD: V = 0 * V + the step is the step itself, one kernel less
            for Ut, Vb in zip(Uts, Vss, strict=True):
                if gram:
                    torch.mm(Ut @ Vb, E * neg_eta, out=V)
                else:
                    torch.mm(Ut, (Vb @ E).mul_(neg_eta), out=V)
                E.add_(V)
            return
        for Ut, Vb in zip(Uts, Vss, strict=True):
            Y = E if gamma is None else torch.addcmul(E, V, gamma)
            V.mul_(beta)
            if gram:
                V.addmm_(Ut @ Vb, Y * neg_eta)
            else:
                V.addmm_(Ut, (Vb @ Y).mul_(neg_eta))
            E.add_(V)

    def lookahead(self):
        return self.E if self.gamma is None else torch.addcmul(self.E, self.V, self.gamma)

    def keep(self, keep):
        self.E, self.V = self.E[:, keep].contiguous(), self.V[:, keep].contiguous()
        self.eta_t, self.beta_t = self.eta_t[keep], self.beta_t[keep]
        self.gamma = None if self.gamma is None else self.beta_t


class _Baseline:
    """SNGM / ASGD / MaSS state for ``R`` runs in error coordinates (see "Baselines").

    ``E`` is the measured point, the other buffers are the method's own: SNGM's
    ``V = x_t - x_{t-1} = -eta u_t``, ASGD's long-step iterate ``Xbar``, MaSS's gradient
    point ``U``.
    """

    def __init__(self, method, tables, E, eta, beta, extra, batch_size, dtype, dev, small_const):
        def t(a):
            return torch.as_tensor(np.asarray(a, dtype=float), dtype=dtype, device=dev)

        self.method, self.tables, self.E = method, tables, E
        self.scale = tables.scale(batch_size)
        if method == "sngm":
            self.buf = torch.zeros_like(E)
            self.p = {"neg_eta": t(-eta), "beta": t(beta)}
        elif method == "asgd":
            c = float(small_const)
            b = c * c * extra["xi"] / extra["kappa"]
            zeta = c / (c + b)
            self.buf = E.clone()
            self.p = {
                "neg_short": t(-eta),
                "neg_long": t(-eta * extra["kappa"] / c),
                "b": t(b),
                "one_minus_b": t(1.0 - b),
                "zeta": t(zeta),
                "one_minus_zeta": t(1.0 - zeta),
            }
        else:  # mass
            self.buf = E.clone()
            self.p = {
                "neg_eta": t(-eta),
                "one_plus_gamma": t(1.0 + beta),
                "gamma": t(beta),
                "eta2": t(extra["eta2"]),
            }

    def lookahead(self):
        return self.buf if self.method == "mass" else self.E

    def step(self, idx, gram=False):
        p = self.p
        G = self.tables.apply(self.lookahead(), idx, gram).mul_(self.scale)
        if self.method == "sngm":
            norm = torch.linalg.vector_norm(G, dim=0).clamp_min_(SNGM_EPS)
            self.buf.mul_(p["beta"]).addcmul_(G, p["neg_eta"] / norm)
            self.E.add_(self.buf)
        elif self.method == "asgd":
            long = torch.addcmul(self.E, G, p["neg_long"])
            self.buf.mul_(p["one_minus_b"]).addcmul_(long, p["b"])
            self.E.addcmul_(G, p["neg_short"]).mul_(p["zeta"])
            self.E.addcmul_(self.buf, p["one_minus_zeta"])
        else:
            W_new = torch.addcmul(self.buf, G, p["neg_eta"])
            U = W_new * p["one_plus_gamma"]
            U.addcmul_(self.E, p["gamma"], value=-1.0).addcmul_(G, p["eta2"])
            self.E, self.buf = W_new, U

    def keep(self, keep):
        self.E, self.buf = self.E[:, keep].contiguous(), self.buf[:, keep].contiguous()
        self.p = {k: v[keep] for k, v in self.p.items()}


def trajectory(
    A: np.ndarray | torch.Tensor,
    x_star: np.ndarray | torch.Tensor,
    x0: np.ndarray | torch.Tensor,
    batches: torch.Tensor,
    eta,
    beta,
    method: str,
    extra: dict | None = None,
    small_const: float = ASGD_SMALL_CONST,
    tables: Sampling | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Iterates of ``R`` runs fed the given mini-batches, in float64 on the CPU.

    Parameters
    ----------
    A, x_star : the system (``b = A x*``).
    x0 : (d,) starting point, shared by all runs.
    batches : ``(T, B)`` indices, one batch per step shared by all runs, or
        ``(T, R, B)``, a batch per step and run.
    eta, beta : scalars or ``(R,)`` arrays.
    method : ``"sgd"``, ``"hb"``, ``"nag"`` or a baseline (``"sngm"``, ``"asgd"``,
        ``"mass"``; see "Baselines" in the module docstring).
    extra, small_const : the baselines' other parameters (``extra``: ``(R,)`` arrays or
        scalars by name).
    tables : the sampler, in the coordinates of ``x``
        (``samplers.sampling(problem, name, eigenbasis=False)``); default: the rows of
        ``A`` (uniform mini-batch SGD). ``batches`` index its table.

    Returns
    -------
    x : ``(T + 1, d, R)`` iterates ``x_0 .. x_T`` (the measured points).
    y : ``(T + 1, d, R)`` look-ahead points ``y_t``, where the gradient is taken (equal
        to ``x`` except for ``nag`` and ``mass``).
    """
    A = np.asarray(A.cpu() if isinstance(A, torch.Tensor) else A, dtype=np.float64)
    if tables is None:
        tables = Sampling(U=A, V=A, p=None, replace=False)
    x_star = torch.as_tensor(x_star, dtype=torch.float64)
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    eta_np, beta_np = np.broadcast_arrays(
        np.atleast_1d(np.asarray(eta, float)), np.atleast_1d(np.asarray(beta, float))
    )
    _check_params(method, eta_np, beta_np)
    extra_np = _check_extra(method, eta_np, extra, small_const)
    R = eta_np.size
    B = batches.shape[-1]
    on_device = _Tables(tables, torch.float64, "cpu")
    E = (x0 - x_star)[:, None].repeat(1, R)
    if method in BASELINES:
        state = _Baseline(
            method, on_device, E, eta_np, beta_np, extra_np, B, torch.float64, "cpu", small_const
        )
    else:
        state = _Classic(method, on_device, E, eta_np, beta_np, B, torch.float64, "cpu")
    xs, ys = [state.E.clone()], [state.lookahead().clone()]
    for idx in batches:
        state.step(idx)
        xs.append(state.E.clone())
        ys.append(state.lookahead().clone())
    return torch.stack(xs) + x_star[None, :, None], torch.stack(ys) + x_star[None, :, None]


def _eigenbasis_start(problem, sampler, x0, dtype, dev):
    """The sampler's draws and tables, ``H``'s eigenvalues, the start's error ``e0`` and
    loss ``f0``, all in the eigenbasis of ``H`` (tables rotated once per problem): the
    dynamics are unchanged (an orthogonal change of variables) and the loss is a weighted
    sum of squares, ``O(d)`` per run."""
    draws = sampling(problem, sampler)
    # Kept on the problem beside the sampler's own tables, for as long as the problem
    # lives: every seed and method of a job would otherwise convert (float32) or copy
    # (a GPU) the same n x d table again. dev: from resolve_device, so one key per device.
    key = (sampler, dtype, dev)
    if key not in problem.tables or problem.tables[key][0] is not draws:
        problem.tables[key] = (draws, _Tables(draws, dtype, dev))
    tables = problem.tables[key][1]
    lam = torch.as_tensor(problem.eigvals, dtype=dtype, device=dev)
    x0 = np.zeros(problem.d) if x0 is None else np.asarray(x0, float)
    e0 = torch.as_tensor(problem.eigvecs.T @ (x0 - problem.x_star), dtype=dtype, device=dev)
    f0 = 0.5 * float((lam * e0 * e0).sum())
    if not f0 > 0:
        raise ValueError("x0 is already a minimizer: the relative loss is undefined")
    return draws, tables, lam, e0, f0


def run_grid(
    problem: Problem,
    method: str,
    batch_size: int,
    eta,
    beta,
    seed: int,
    stop: StopRule = StopRule(),
    sampler: str = "without_replacement",
    device: str | torch.device | None = "auto",
    dtype: torch.dtype = torch.float64,
    x0: np.ndarray | None = None,
    leaders: np.ndarray | None = None,
    extra: dict | None = None,
    small_const: float = ASGD_SMALL_CONST,
) -> GridResult:
    """Run the ``R`` configurations ``(eta[r], beta[r])`` together from ``x0`` (default 0).

    ``leaders`` (boolean ``(R,)``, default all) marks the runs whose first convergence
    starts the censoring clock. Extra runs riding along with a grid (the momentum rule's
    point) are not leaders, so they never change which grid runs get censored.
    ``method`` may be a baseline (``sngm``, ``asgd``, ``mass``) with its other
    parameters in ``extra`` (see "Baselines" in the module docstring). ``sampler`` is a
    name from :mod:`~minibatch_momentum.sampling.samplers` that applies to the problem's kind.
    """
    eta = np.atleast_1d(np.asarray(eta, dtype=float))
    beta = np.atleast_1d(np.asarray(beta, dtype=float))
    _check_params(method, eta, beta)
    extra = _check_extra(method, eta, extra, small_const)
    lead = np.ones(eta.size, bool) if leaders is None else np.asarray(leaders, bool)
    if lead.shape != eta.shape:
        raise ValueError("leaders must be a boolean array with one entry per run")
    dev = resolve_device(device)
    R = eta.size
    draws, tables, lam, e0, f0 = _eigenbasis_start(problem, sampler, x0, dtype, dev)

    active = np.arange(R)
    E = e0[:, None].repeat(1, R).contiguous()
    if method in METHODS:
        state = _Classic(method, tables, E, eta, beta, batch_size, dtype, dev)
    else:
        state = _Baseline(method, tables, E, eta, beta, extra, batch_size, dtype, dev, small_const)

    outcomes = Outcomes(R, stop, lead)
    stream = draws.stream(batch_size, seed)
    d = problem.d
    K = stop.check_every
    compiled = isinstance(state, _Classic) and state.compiled
    # The compiled chunk does many checks per call and returns at the first one where a
    # run stops: the checks before it stop no run (they may add curve points), and
    # Python sees each one's losses without paying a call per check (three quarters of
    # a small-batch sweep's time).
    per_call = max(1, COMPILED_STEPS // K) * K if compiled else K
    t = 0
    while active.size and t < outcomes.horizon:
        k = min(per_call, outcomes.horizon - t)
        block = stream.take(k).to(dev)
        if compiled:
            rels = state.checks(block, K, lam.numpy(), 0.5 / f0, stop)
            stream.put_back(block[len(rels) * K :])
        else:
            gram = not draws.project and _use_gram(batch_size, d, active.size)
            # Inference mode: no autograd bookkeeping on the ~5 small kernels of a step,
            # which at small B cost as much as the arithmetic (the arithmetic is the same).
            with torch.inference_mode():
                if isinstance(state, _Classic):
                    state.steps(block, gram)
                else:
                    for idx in block:
                        state.step(idx, gram)
            E = state.E
            rels = [((0.5 / f0) * (lam @ (E * E))).cpu().numpy()]
        for i, rel in enumerate(rels, 1):
            done = outcomes.check(t + min(i * K, k), active, rel)
            if done is not None and i < len(rels):
                raise RuntimeError("run_grid: a run stopped before the compiled chunk's last check")
        t += min(len(rels) * K, k)
        if done is not None:
            active = active[~done]
            state.keep(torch.as_tensor(~done, device=dev))
    return outcomes.result()


@dataclass(frozen=True)
class MonteCarlo:
    """Mean and standard deviation over ``runs`` independent runs of ``f(x_t) / f(x_0)``,
    ``t = 0 .. steps`` (arrays of ``steps + 1``), with the run they describe (what an
    exact curve needs to stand beside them)."""

    problem: Problem
    method: str
    batch_size: int
    eta: float
    beta: float
    sampler: str
    mean: np.ndarray
    std: np.ndarray
    runs: int

    @property
    def stderr(self) -> np.ndarray:
        """Standard error of the mean at each step."""
        return self.std / np.sqrt(self.runs)


def monte_carlo(
    problem: Problem,
    method: str,
    batch_size: int,
    eta: float,
    beta: float,
    runs: int,
    steps: int,
    seed: int = 0,
    sampler: str = "without_replacement",
    x0: np.ndarray | None = None,
) -> MonteCarlo:
    """``runs`` independent runs of one ``(eta, beta)``, each with its own mini-batches.

    Unlike :func:`run_grid` (one shared batch per step, common random numbers), every
    (step, run) draws its own batch, so the runs are i.i.d. and their mean estimates the
    expected loss ``E f(x_t)`` that :mod:`~minibatch_momentum.theory` computes exactly.
    Consecutive batches of one ``MiniBatches`` stream are independent, so step ``t``
    takes the next ``runs`` of them. Float64 on the CPU, in the eigenbasis of ``H``.
    """
    if runs < 2 or steps < 1:
        raise ValueError("monte_carlo needs runs >= 2 and steps >= 1")
    _check_params(method, np.atleast_1d(float(eta)), np.atleast_1d(float(beta)))
    cpu = resolve_device("cpu")
    draws, tables, lam, e0, f0 = _eigenbasis_start(problem, sampler, x0, torch.float64, cpu)
    E = e0[:, None].repeat(1, runs).contiguous()
    V = torch.zeros_like(E)
    eta_t = torch.full((runs,), -float(eta) * tables.scale(batch_size), dtype=torch.float64)
    beta_t = torch.full((runs,), float(beta), dtype=torch.float64)
    gamma = _gamma(method, beta_t)
    stream = draws.stream(batch_size, seed)
    rel = np.empty((steps + 1, runs))
    rel[0] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            _step(tables, E, V, stream.take(runs), eta_t, beta_t, gamma)
            rel[t] = ((0.5 / f0) * (lam @ (E * E))).numpy()
    return MonteCarlo(
        problem=problem,
        method=method,
        batch_size=int(batch_size),
        eta=float(eta),
        beta=float(beta),
        sampler=sampler,
        mean=rel.mean(axis=1),
        std=rel.std(axis=1, ddof=1),
        runs=runs,
    )
