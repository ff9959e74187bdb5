"""What the optimizers of :mod:`~minibatch_momentum.optim` share: the checks of their
hyperparameters, coupled weight decay, and :class:`_MomentumOptimizer` (validation per
param group, the closure, snapshot state dicts, one buffer per parameter stepped by a
functional update)."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer


def _require(ok: bool, name: str, value: Any, rule: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {rule}, got {value!r}")


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _is_integer(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_nonneg(name: str, value: Any) -> None:
    _require(_finite(value) and float(value) >= 0.0, name, value, ">= 0")


def _check_positive(name: str, value: Any) -> None:
    _require(_finite(value) and float(value) > 0.0, name, value, "> 0")


def _check_unit(name: str, value: Any) -> None:
    _require(_finite(value) and 0.0 <= float(value) < 1.0, name, value, "in [0, 1)")


def _check_finite(name: str, value: Any) -> None:
    _require(_finite(value), name, value, "a finite real")


def _check_unit_closed(name: str, value: Any) -> None:
    _require(_finite(value) and 0.0 < float(value) <= 1.0, name, value, "in (0, 1]")


def _decayed(params: list[Tensor], grads: list[Tensor], weight_decay: float) -> list[Tensor]:
    """``g + wd * w`` out of place (the caller's gradients are never written to)."""
    if weight_decay == 0:
        return grads
    return [g.add(p, alpha=weight_decay) for p, g in zip(params, grads, strict=True)]


def _clone_state(state: dict) -> dict:
    return {k: (v.clone() if isinstance(v, Tensor) else v) for k, v in state.items()}


class _MomentumOptimizer(Optimizer):
    """Shared plumbing: validation per param group, closure, snapshot state dicts.

    A subclass declares its hyperparameters' checks once, in ``RULES`` (name -> check,
    run in order on every param group), and any check across them in
    :meth:`_check_group`."""

    RULES: ClassVar[dict[str, Callable[[str, Any], None]]] = {}

    def _validate_group(self, group: dict[str, Any]) -> None:
        for name, check in self.RULES.items():
            check(name, group[name])
        self._check_group(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """The checks that tie hyperparameters together (none by default)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        try:
            self._validate_group(self.param_groups[-1])
        except ValueError:
            self.param_groups.pop()  # leave the optimizer as it was
            raise

    def _grads_and_state(
        self, group: dict[str, Any], keys: tuple[str, ...], init: Callable[[Tensor], dict]
    ) -> tuple[list[Tensor], list[Tensor], list[dict]]:
        params, grads, states = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self.state[p]
            if not all(k in state for k in keys):
                state.update(init(p))
            params.append(p)
            grads.append(p.grad)
            states.append(state)
        return params, grads, states

    # A subclass names, as class keywords, its per-parameter buffer, whether the buffer
    # starts as a copy of the parameter (else zeros), and its functional update; the
    # update's keyword-only arguments are the group's hyperparameters, so step() passes
    # exactly those.
    _buffer: str
    _buffer_starts_at_param: bool
    _update: Callable[..., Any]
    _hyper: tuple[str, ...] = ()

    def __init_subclass__(
        cls,
        *,
        buffer: str | None = None,
        starts_at_param: bool = False,
        update: Callable[..., Any] | None = None,
        **kwargs,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if update is not None:  # read the signature once, not at every step
            cls._buffer, cls._buffer_starts_at_param = buffer, starts_at_param
            cls._update = staticmethod(update)
            cls._hyper = tuple(
                name
                for name, par in inspect.signature(update).parameters.items()
                if par.kind is inspect.Parameter.KEYWORD_ONLY
            )

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one step; returns the closure's value (or None)."""
        loss = self._run_closure(closure)
        update, hyper = type(self)._update, self._hyper
        for group in self.param_groups:
            params, grads, states = self._grads_and_state(group, (self._buffer,), self._new_buffer)
            update(
                params,
                grads,
                [s[self._buffer] for s in states],
                **{k: group[k] for k in hyper},
            )
        return loss

    def _new_buffer(self, p: Tensor) -> dict[str, Tensor]:
        start = p.detach().clone() if self._buffer_starts_at_param else torch.zeros_like(p)
        return {self._buffer: start}

    @staticmethod
    def _run_closure(closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["state"] = {k: _clone_state(v) for k, v in sd["state"].items()}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for p in list(self.state):
            self.state[p] = _clone_state(self.state[p])
