r"""The optimizers of :mod:`~minibatch_momentum.optim` from the literature, each a functional
update on lists of tensors and a ``torch.optim.Optimizer`` around it: SNGM, randomly
scaled SGDM, AccSGD and MaSS."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from minibatch_momentum.optim.base import (
    _check_finite,
    _check_nonneg,
    _check_positive,
    _check_unit,
    _check_unit_closed,
    _decayed,
    _MomentumOptimizer,
    _require,
)

# --------------------------------------------------------------------------- SNGM


def sngm_update(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    *,
    lr: float,
    momentum: float,
    weight_decay: float = 0.0,
    eps: float = 1e-12,
) -> Tensor | None:
    r"""One SNGM step on a group of tensors, in place on ``params`` and ``momentum_buffers``.

    ``g <- g + weight_decay * w``; ``n = ||g||`` (the Euclidean norm of all of ``grads``
    concatenated); ``u <- momentum * u + g / max(n, eps)``; ``w <- w - lr * u``.

    Returns the norm ``n`` (a 0-d tensor) or None when ``params`` is empty.
    """
    if not params:
        return None
    grads = _decayed(params, grads, weight_decay)
    device = grads[0].device
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g).to(device) for g in grads])
    )
    denom = norm.clamp_min(eps)
    for p, g, u in zip(params, grads, momentum_buffers, strict=True):
        u.mul_(momentum).add_(g / denom.to(g.device))
        p.add_(u, alpha=-lr)
    return norm


class SNGM(_MomentumOptimizer, buffer="momentum_buffer", update=sngm_update):
    r"""Stochastic normalized gradient descent with momentum (SNGM).

    From Shen-Yi Zhao, Chang-Wei Shi, Yin-Peng Xie and Wu-Jun Li, *Stochastic Normalized
    Gradient Descent with Momentum for Large-Batch Training*, arXiv:2007.13985 (2020).
    With the mini-batch gradient :math:`g_t = \nabla f_{B_t}(w_t)` (plus
    ``weight_decay * w_t`` when set), each step is

    .. math::

        u_{t+1} = \beta\, u_t + \frac{g_t}{\max(\lVert g_t\rVert_2, \epsilon)}, \qquad
        w_{t+1} = w_t - \eta\, u_{t+1}, \qquad u_0 = 0,

    with :math:`\eta` = ``lr`` and :math:`\beta` = ``momentum``.

    Norm convention: :math:`\lVert g_t\rVert_2` is the *global* Euclidean norm over all
    parameters of the param group that have a gradient (the paper normalizes the gradient
    of the whole parameter vector). Put every parameter in one group to normalize the whole
    model; several groups are normalized separately. ``eps`` only matters when the gradient
    vanishes: for :math:`\lVert g\rVert \ge \epsilon` the normalized gradient has norm
    exactly 1, and for :math:`g = 0` the step is :math:`u \leftarrow \beta u` instead of
    ``nan``. Consequently :math:`\lVert w_{t+1} - w_t\rVert = \eta \lVert u_{t+1}\rVert \le
    \eta / (1 - \beta)`.

    ``weight_decay`` (not part of the paper's algorithm) is added to the gradient *before*
    normalization, so the method normalizes the gradient of the L2-regularized loss.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: step size :math:`\eta \ge 0`.
        momentum: :math:`\beta \in [0, 1)` (default 0.9).
        weight_decay: coupled L2 coefficient :math:`\ge 0` (default 0).
        eps: floor on the gradient norm, :math:`> 0` (default 1e-12).

    State per parameter: ``momentum_buffer`` (:math:`u_t`).

    Example:
        >>> opt = SNGM(model.parameters(), lr=0.1, momentum=0.9)  # doctest: +SKIP
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()  # doctest: +SKIP
    """

    RULES = {
        "lr": _check_nonneg,
        "momentum": _check_unit,
        "weight_decay": _check_nonneg,
        "eps": _check_positive,
    }

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eps: float = 1e-12,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps)
        super().__init__(params, defaults)


# --------------------------------------------------------------------------- random scaling


def random_scaled_sgdm_update(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: float,
    momentum: float,
    weight_decay: float = 0.0,
    scale: float = 1.0,
) -> None:
    r"""One randomly scaled SGDM step, in place; same arithmetic as ``torch.optim.SGD``.

    ``g <- g + weight_decay * w``; ``m <- g`` on the first step (a ``None`` entry of
    ``momentum_buffers`` is replaced by the new buffer), else ``m <- momentum * m + g``;
    ``w <- w - (lr * scale) * m``. With ``scale = 1`` this is bit-for-bit
    ``torch.optim.SGD(lr, momentum, weight_decay)`` (dampening 0, no Nesterov).
    """
    grads = _decayed(params, grads, weight_decay)
    step_size = -lr * scale
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        buf = momentum_buffers[i]
        if buf is None:
            buf = g.detach().clone()
            momentum_buffers[i] = buf
        else:
            buf.mul_(momentum).add_(g)
        p.add_(buf, alpha=step_size)


class RandomScaledSGDM(_MomentumOptimizer):
    r"""SGD with momentum whose every update is scaled by an independent Exp(1) scalar.

    From Qinzi Zhang and Ashok Cutkosky, *Random Scaling and Momentum for Non-smooth
    Non-convex Optimization*, ICML 2024 (PMLR 235), arXiv:2405.09742. With the mini-batch
    gradient :math:`g_t` at the current parameters (plus ``weight_decay * w_t``) and
    :math:`\eta` = ``lr``, :math:`\beta` = ``momentum``:

    .. math::

        m_t = \beta\, m_{t-1} + g_t \quad (m_1 = g_1), \qquad
        s_t \sim \mathrm{Exp}(1) \text{ i.i.d.}, \qquad
        w_{t+1} = w_t - s_t\, \eta\, m_t .

    One scalar :math:`s_t` is drawn per call to :meth:`step` and shared by every parameter
    of every group (the paper scales the whole update vector). Since
    :math:`\mathbb{E}[s_t] = 1` the mean step is that of SGDM. The draw is
    ``torch.empty((), dtype=float64, device=generator.device).exponential_(generator=generator)``,
    one per step, even when no parameter has a gradient; the last one is kept in
    :attr:`last_scale`.

    With ``scale="none"`` (:math:`s_t \equiv 1`) the optimizer is exactly, bit for bit,
    ``torch.optim.SGD(params, lr, momentum=beta, weight_decay=wd)`` (the same tensor
    operations; tested on the CPU against both its single-tensor and foreach paths): the
    momentum buffer follows PyTorch's convention (initialized to the first gradient, no
    dampening).
    The EMA form :math:`m'_t = \beta m'_{t-1} + (1-\beta) g_t`, :math:`m'_0 = 0`, with step
    :math:`\eta'` is the same method with ``lr`` :math:`= (1-\beta)\,\eta'`, because then
    :math:`m_t = m'_t / (1-\beta)` exactly.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: step size :math:`\eta \ge 0`.
        momentum: :math:`\beta \in [0, 1)` (default 0.9).
        weight_decay: coupled L2 coefficient :math:`\ge 0` (default 0).
        scale: ``"exp"`` (default) for :math:`s_t \sim \mathrm{Exp}(1)`, ``"none"`` for
            :math:`s_t = 1`.
        generator: ``torch.Generator`` for the draws; pass one for reproducible runs. Its
            state is saved in :meth:`state_dict` (key ``"generator_state"``) and restored by
            :meth:`load_state_dict`, so a resumed run draws the same scales. Without one the
            global torch RNG is used and a round trip cannot restore it.

    State per parameter: ``momentum_buffer`` (:math:`m_t`).
    """

    SCALES = ("exp", "none")

    RULES = {"lr": _check_nonneg, "momentum": _check_unit, "weight_decay": _check_nonneg}

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        *,
        scale: str = "exp",
        generator: torch.Generator | None = None,
    ) -> None:
        if scale not in self.SCALES:
            raise ValueError(f"scale must be one of {self.SCALES}, got {scale!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {generator!r}")
        self.scale = scale
        self.generator = generator
        self.last_scale: float | None = None
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _draw_scale(self) -> float:
        if self.scale == "none":
            return 1.0
        device = self.generator.device if self.generator is not None else "cpu"
        s = torch.empty((), dtype=torch.float64, device=device)
        return float(s.exponential_(1.0, generator=self.generator).item())

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one randomly scaled SGDM step; returns the closure's value (or None)."""
        loss = self._run_closure(closure)
        s = self._draw_scale()
        self.last_scale = s
        for group in self.param_groups:
            params, grads, states = self._grads_and_state(group, (), lambda p: {})
            bufs = [s_.get("momentum_buffer") for s_ in states]
            random_scaled_sgdm_update(
                params,
                grads,
                bufs,
                lr=group["lr"],
                momentum=group["momentum"],
                weight_decay=group["weight_decay"],
                scale=s,
            )
            for state, buf in zip(states, bufs, strict=True):
                state["momentum_buffer"] = buf
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        if self.generator is not None:
            sd["generator_state"] = self.generator.get_state()
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        gen_state = state_dict.pop("generator_state", None)
        super().load_state_dict(state_dict)
        if gen_state is not None and self.generator is not None:
            self.generator.set_state(gen_state.clone())


# --------------------------------------------------------------------------- AccSGD


def _accsgd_coefficients(lr: float, kappa: float, xi: float, small_const: float):
    long_lr = lr * kappa / small_const
    beta = small_const * small_const * xi / kappa  # = 1 - alpha in the authors' code
    zeta = small_const / (small_const + beta)
    return long_lr, beta, zeta


def accsgd_update(
    params: list[Tensor],
    grads: list[Tensor],
    long_buffers: list[Tensor],
    *,
    lr: float,
    kappa: float,
    xi: float,
    small_const: float = 0.7,
    weight_decay: float = 0.0,
) -> None:
    r"""One AccSGD step, in place on ``params`` (:math:`w`) and ``long_buffers`` (:math:`\bar w`).

    With ``b = small_const**2 * xi / kappa`` and ``zeta = small_const / (small_const + b)``:
    ``wbar <- (1 - b) * wbar + b * (w - (lr * kappa / small_const) * g)`` then
    ``w <- zeta * (w - lr * g) + (1 - zeta) * wbar``.
    """
    grads = _decayed(params, grads, weight_decay)
    long_lr, b, zeta = _accsgd_coefficients(lr, kappa, xi, small_const)
    for w, g, wbar in zip(params, grads, long_buffers, strict=True):
        wbar.mul_(1.0 - b).add_(torch.add(w, g, alpha=-long_lr), alpha=b)
        w.add_(g, alpha=-lr).mul_(zeta).add_(wbar, alpha=1.0 - zeta)


class AccSGD(_MomentumOptimizer, buffer="long_buffer", starts_at_param=True, update=accsgd_update):
    r"""Accelerated SGD (ASGD) of Jain, Kakade, Kidambi, Netrapalli and Sidford.

    Sources: Prateek Jain, Sham M. Kakade, Rahul Kidambi, Praneeth Netrapalli and Aaron
    Sidford, *Accelerating Stochastic Gradient Descent for Least Squares Regression*,
    COLT 2018, arXiv:1704.08227; in the parametrization of Rahul Kidambi, Praneeth
    Netrapalli, Prateek Jain and Sham M. Kakade, *On the Insufficiency of Existing Momentum
    Schemes for Stochastic Optimization*, ICLR 2018, arXiv:1803.05591, and of their
    public code (github.com/rahulkidambi/AccSGD). Not to be confused with
    ``torch.optim.ASGD`` (averaged SGD).

    With short step :math:`\delta` = ``lr``, long-step parameter :math:`\kappa` = ``kappa``,
    statistical advantage :math:`\xi` = ``xi``, :math:`c` = ``small_const``, the mini-batch
    gradient :math:`g_t` at the current parameters :math:`w_t` (plus ``weight_decay *
    w_t``), and

    .. math::

        b = \frac{c^2 \xi}{\kappa} \;(= 1 - \alpha), \qquad
        \zeta = \frac{c}{c + b}, \qquad \bar w_0 = w_0,

    each step is

    .. math::

        \bar w_{t+1} &= (1 - b)\, \bar w_t + b \left(w_t - \frac{\kappa\delta}{c}\, g_t\right)
        \qquad \text{(long step)},\\
        w_{t+1} &= \zeta\, (w_t - \delta\, g_t) + (1 - \zeta)\, \bar w_{t+1}
        \qquad \text{(short step, then mix)}.

    This is the update of the authors' code (which writes the long step as
    :math:`\bar w \leftarrow b\,[(1/b - 1)\bar w - (\kappa\delta/c) g + w]`; the two agree
    up to rounding). In the notation of Jain et al.'s Algorithm 1 (iterates
    :math:`\bar x, \bar v`, gradient point :math:`\bar y = \alpha' \bar x + (1-\alpha')
    \bar v`, :math:`\bar x^+ = \bar y - \delta g`, :math:`\bar v^+ = \beta' \bar y +
    (1-\beta')\bar v - \gamma' g`), the parameters hold :math:`\bar y_t`, the buffer holds
    :math:`\bar v_t`, and :math:`\alpha' = \zeta = 1/(1 + c\xi/\kappa)`,
    :math:`\beta' = b = c^2\xi/\kappa`, :math:`\gamma' = b\,\kappa\delta/c = c\,\xi\,\delta`
    (our algebra; checked numerically in the tests).

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: short step :math:`\delta \ge 0`.
        kappa: long-step parameter :math:`\kappa > 0` (default 1000; the authors suggest
            1e2–1e3 for shallow nets, 1e4 or more for deep ones).
        xi: statistical advantage :math:`\xi > 0` (default 10; the authors suggest
            :math:`1 \le \xi \le \sqrt\kappa`, larger for larger batches).
        small_const: :math:`c \in (0, 1]` (default 0.7; ``smallConst`` in the authors' code).
        weight_decay: coupled L2 coefficient :math:`\ge 0` (default 0).

    Requires :math:`0 < c^2\xi/\kappa \le 1` (so :math:`\alpha \in [0, 1)`).

    State per parameter: ``long_buffer`` (:math:`\bar w_t`, initialized to the parameter
    at its first step).
    """

    RULES = {
        "lr": _check_nonneg,
        "kappa": _check_positive,
        "xi": _check_positive,
        "small_const": _check_unit_closed,
        "weight_decay": _check_nonneg,
    }

    def __init__(
        self,
        params: Iterable,
        lr: float,
        kappa: float = 1000.0,
        xi: float = 10.0,
        small_const: float = 0.7,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr, kappa=kappa, xi=xi, small_const=small_const, weight_decay=weight_decay
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        c = group["small_const"]
        xi_max = group["kappa"] / (c * c)
        _require(
            group["xi"] <= xi_max, "xi", group["xi"], f"<= kappa / small_const**2 = {xi_max:g}"
        )


# --------------------------------------------------------------------------- MaSS


def mass_update(
    params: list[Tensor],
    grads: list[Tensor],
    prev_ws: list[Tensor],
    *,
    lr: float,
    gamma: float,
    eta2: float,
    weight_decay: float = 0.0,
) -> None:
    r"""One MaSS step, in place on ``params`` (:math:`u`) and ``prev_ws`` (:math:`w`).

    ``w_new = u - lr * g``; ``u <- (1 + gamma) * w_new - gamma * w + eta2 * g``;
    ``w <- w_new``, with ``g`` the gradient at ``u``.
    """
    grads = _decayed(params, grads, weight_decay)
    for u, g, w in zip(params, grads, prev_ws, strict=True):
        w_new = torch.add(u, g, alpha=-lr)
        u.copy_(w_new).mul_(1.0 + gamma).add_(w, alpha=-gamma).add_(g, alpha=eta2)
        w.copy_(w_new)


class MaSS(_MomentumOptimizer, buffer="w", starts_at_param=True, update=mass_update):
    r"""MaSS: Nesterov SGD with a compensation term (Momentum-added Stochastic Solver).

    From Chaoyue Liu and Mikhail Belkin, *Accelerating SGD with Momentum for
    Over-parameterized Learning*, ICLR 2020, arXiv:1810.13395. The method keeps two
    sequences and evaluates the mini-batch gradient :math:`\tilde\nabla f(u_t)` at
    :math:`u_t` (plus ``weight_decay * u_t``):

    .. math::

        w_{t+1} &= u_t - \eta_1\, \tilde\nabla f(u_t), \\
        u_{t+1} &= (1 + \gamma)\, w_{t+1} - \gamma\, w_t + \eta_2\, \tilde\nabla f(u_t),
        \qquad w_0 = u_0,

    with :math:`\eta_1` = ``lr``, :math:`\gamma` = ``gamma`` and :math:`\eta_2` = ``eta2``.

    Sign convention (as stated in the paper): the compensation term enters with a *plus*
    sign, :math:`+\eta_2 \tilde\nabla f(u_t)`, so :math:`\eta_2 > 0` pulls the look-ahead
    point back against the gradient, partly undoing Nesterov's over-extrapolation of the
    gradient step. Equivalently :math:`u_{t+1} = w_{t+1} + \gamma (w_{t+1} - w_t) +
    \eta_2 \tilde\nabla f(u_t)`. With ``eta2 = 0`` the method is SGD with Nesterov
    momentum: the parameters then follow ``torch.optim.SGD(lr, momentum=gamma,
    nesterov=True)`` (up to rounding), whose parameters are also the look-ahead point.
    ``eta2`` may be any real number; the paper's analysis takes it non-negative.

    The model's parameters hold :math:`u_t` (the point where gradients are taken); the
    state holds :math:`w_t` under ``"w"`` (the paper's output sequence; read it from
    ``optimizer.state[p]["w"]`` to evaluate at :math:`w_t`). An LR scheduler changes
    ``lr`` (:math:`\eta_1`) only; scale ``eta2`` in the param groups yourself if needed.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: step size :math:`\eta_1 \ge 0`.
        gamma: momentum :math:`\gamma \in [0, 1)`.
        eta2: compensation step :math:`\eta_2` (any finite real).
        weight_decay: coupled L2 coefficient :math:`\ge 0` (default 0).

    State per parameter: ``w`` (:math:`w_t`, initialized to the parameter at its first step).
    """

    RULES = {
        "lr": _check_nonneg,
        "gamma": _check_unit,
        "eta2": _check_finite,
        "weight_decay": _check_nonneg,
    }

    def __init__(
        self,
        params: Iterable,
        lr: float,
        gamma: float,
        eta2: float,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = dict(lr=lr, gamma=gamma, eta2=eta2, weight_decay=weight_decay)
        super().__init__(params, defaults)

