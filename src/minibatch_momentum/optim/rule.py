r"""The momentum rule for PyTorch users: :func:`sgd_from_rule` builds a ``torch.optim.SGD``
whose learning rate and momentum come from this project's momentum rule
(:mod:`~minibatch_momentum.theory.rule`) for a batch size.

What ``mu`` means beyond a quadratic
------------------------------------
For ``f(x) = ||A x - b||^2 / (2n)`` ``mu`` is the smallest non-zero eigenvalue of ``H``:
the slowest direction the run must resolve, and the rule damps just enough for it
(``1 - beta = c sqrt(mu / L)``). A network's Hessian changes along the run, is
indefinite away from a minimum and has eigenvalues down to zero, so its smallest
eigenvalue says nothing useful. What plays ``mu``'s part is the smallest curvature worth
resolving in the steps you can afford: an L2 penalty ``lambda`` makes it at least
``lambda``, and a run of ``T`` steps at the accelerated rate resolves curvatures down to
about ``L (c / T)^2``. With the README's digits example's estimates (``L = 1.78``,
``tr H = 16.2``) at ``B = 64``, ``mu = 1e-6`` gives ``lr`` 0.016 and momentum 0.998
(damped for a run of ``sqrt(L / mu) ≈ 1300`` steps and more) and ``mu = 1e-2`` gives
``lr`` 0.81 and momentum 0.765: ``mu`` sets the momentum, and the momentum the time
scale. Without ``mu`` the rule therefore takes the damping as given: ``momentum``
(default 0.9, the common choice) fixes ``beta`` and so implies
``mu = L ((1 - beta) / c)^2``, and the rule sets the learning rate from ``L``, ``tr H``
and ``B`` (noise line and ceiling). For ``"sgd"`` without ``mu`` the ceiling is
``2 / L``.

Curvature without a trace
-------------------------
Given a :class:`~minibatch_momentum.curvature.Curvature` without a Hutchinson trace
(``hutchinson_samples=0``), the gradient noise scale stands in: for a quadratic in the
interpolation regime ``tr Sigma = 2 f tr H + |G|^2`` (:mod:`~minibatch_momentum.theory.rule`),
so ``tr H = lambda_G (B_noise - 1)`` with ``lambda_G = |G|^2 / (2 f) <= L``; the rule
takes ``trace = L (B_noise - 1)``, an over-estimate and so a smaller, safe step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from minibatch_momentum.optim.base import _check_positive, _finite, _is_integer, _require


def sgd_from_rule(
    params: Iterable,
    batch_size: int,
    L: Any = None,
    mu: float | None = None,
    trace: float | None = None,
    method: str = "hb",
    *,
    momentum: float | None = None,
    n: int | None = None,
    eigvals: Any = None,
    form: str = "harmonic",
    weight_decay: float = 0.0,
) -> torch.optim.SGD:
    r"""``torch.optim.SGD`` with ``lr`` and ``momentum`` set by the momentum rule for ``B``.

    The rule (:func:`minibatch_momentum.theory.rule.momentum_rule`) keeps the damping
    :math:`1 - \beta` at the deterministic optimum's order :math:`c\sqrt{\mu/L}` and the
    effective step :math:`\eta / (1 - \beta)` at the largest noise-stable value for the
    batch, so :math:`\eta` grows in proportion to ``batch_size`` up to the saturation batch
    and then stays at the (slightly damped) deterministic value.

    Typical use, with everything measured::

        curv = estimate_curvature(loss_fn, dict(model.named_parameters()), batches)
        opt = sgd_from_rule(model.parameters(), 64, curv)          # momentum 0.9
        opt = sgd_from_rule(model.parameters(), 64, curv, mu=1e-3)  # a known mu

    Args:
        params: parameters or param groups, as for ``torch.optim.SGD``.
        batch_size: examples per step ``B``.
        L: largest eigenvalue of the Hessian of the loss the optimizer sees: the *mean*
            over examples (``reduction="mean"``), so the mini-batch gradient is the mean of
            ``B`` per-example gradients. For least squares ``f(w) = ||X w - y||^2 / (2n)``
            that is ``H = X^T X / n``. Or a
            :class:`~minibatch_momentum.curvature.Curvature` from
            :func:`~minibatch_momentum.curvature.estimate_curvature`, which gives ``L``
            and ``trace`` (``trace`` is raised to ``L`` if the estimate fell below it;
            without a Hutchinson trace the noise scale stands in: module docstring).
        mu: smallest non-zero eigenvalue (beyond a quadratic: module docstring);
            ``None``: implied by ``momentum`` (module docstring).
        trace: ``tr H`` (ignored with a ``Curvature``).
        method: ``"hb"`` (heavy ball: ``nesterov=False``), ``"nag"`` (``nesterov=True``;
            PyTorch's parameters are then the look-ahead point, as in the engine) or
            ``"sgd"`` (no momentum).
        momentum: with ``mu=None``, the momentum to keep (default 0.9); not with ``mu``.
        n: training-set size. ``None``: rows drawn i.i.d. (noise factor ``1/B``); given:
            ``B`` distinct rows per step, as a shuffling loader draws them (noise factor
            ``(n - B) / (B (n - 1))``, no noise at ``B = n``).
        eigvals: the Hessian's eigenvalues, if known; sharpens the noise line (it matters
            for ``"nag"``, whose rule is calibrated with the spectrum).
        form: the rule's blend, ``"harmonic"`` (default) or ``"min"``.
        weight_decay: passed to ``torch.optim.SGD`` (not part of the rule).

    Returns:
        ``torch.optim.SGD(params, lr=eta, momentum=beta, nesterov=(method == "nag"),
        dampening=0, weight_decay=weight_decay)``; ``lr = eta`` and ``momentum = beta``
        are exactly the engine's heavy-ball / Nesterov parameters.

    Example:
        >>> opt = sgd_from_rule(model.parameters(), 256, 1.0, 1e-4, 8.0)  # doctest: +SKIP
    """
    from minibatch_momentum.theory.rule import momentum_rule

    L, mu, trace = _rule_inputs(method, batch_size, L, mu, trace, momentum, n, eigvals)
    eta, beta = momentum_rule(
        method,
        int(batch_size),
        float(L),
        float(mu),
        float(trace),
        n=None if n is None else int(n),
        replace=n is None,
        eigvals=None if eigvals is None else torch.as_tensor(eigvals).double().numpy(),
        form=form,
    )
    rule = {"lr": eta, "momentum": beta, "dampening": 0, "nesterov": method == "nag"}
    return torch.optim.SGD(params, **rule, weight_decay=weight_decay)


def _rule_inputs(method, batch_size, L, mu, trace, momentum, n, eigvals):
    """``(L, mu, trace)`` for the rule, every argument checked (in the order of the
    signature)."""
    if method not in ("sgd", "hb", "nag"):
        raise ValueError(f"method must be 'sgd', 'hb' or 'nag', got {method!r}")
    _require(
        _is_integer(batch_size) and batch_size >= 1, "batch_size", batch_size, "an integer >= 1"
    )
    L, trace = _curvature(L, trace)
    mu = _implied_mu(method, L, mu, momentum, eigvals)
    _check_positive("mu", mu)
    _require(float(mu) <= float(L), "mu", mu, f"<= L = {L!r}")
    _require(float(trace) >= float(L), "trace", trace, f">= L = {L!r}")
    if n is not None:
        _require(
            _is_integer(n) and n >= batch_size,
            "n",
            n,
            f"None or an integer >= batch_size = {batch_size}",
        )
    return L, mu, trace


def _curvature(L, trace) -> tuple[Any, Any]:
    """``(L, trace)``, checked: as given, or from a
    :class:`~minibatch_momentum.curvature.Curvature` passed as ``L``."""
    from minibatch_momentum.curvature import Curvature

    if isinstance(L, Curvature):
        curv = L
        _check_positive("L", curv.L)
        L = curv.L
        if math.isfinite(curv.trace):
            trace = max(curv.trace, L)
        else:  # no Hutchinson estimate: the noise scale's (module docstring)
            _check_positive("curvature.b_noise", curv.b_noise)
            trace = L * max(curv.b_noise - 1.0, 1.0)
    if L is None or trace is None:
        raise ValueError(
            "L and trace are needed: pass them, or curvature = estimate_curvature(loss_fn, "
            "params, batches) in their place (sgd_from_rule(params, B, curvature))"
        )
    for name, value in (("L", L), ("trace", trace)):
        _check_positive(name, value)
    return L, trace


def _implied_mu(method: str, L, mu, momentum, eigvals):
    """``mu`` as given, or the one ``momentum`` implies (SGD: a negligible one)."""
    from minibatch_momentum.theory.rule import RULE_CONSTANTS

    if mu is None:
        if method == "sgd":
            _require(momentum in (None, 0, 0.0), "momentum", momentum, "None or 0 for 'sgd'")
            mu = 1e-12 * float(L)  # only enters the ceiling 2 / (L + mu)
        else:
            momentum = 0.9 if momentum is None else momentum
            _require(
                _finite(momentum) and 0.0 < float(momentum) < 1.0, "momentum", momentum, "in (0, 1)"
            )
            damp = RULE_CONSTANTS[(method, "trace" if eigvals is None else "spectrum")].damp
            mu = float(L) * ((1.0 - float(momentum)) / damp) ** 2
    elif momentum is not None:
        raise ValueError("momentum: give mu or momentum, not both (mu sets the momentum)")
    return mu
