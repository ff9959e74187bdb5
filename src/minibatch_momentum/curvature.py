r"""What the momentum rule needs, measured on a PyTorch model: :func:`estimate_curvature`.

Three numbers, each with a standard error, from a few mini-batches of the training data:

- ``L``: the largest eigenvalue of the Hessian of the mean loss, by power iteration on
  Hessian-vector products (``torch.func``: forward-over-reverse, ``jvp`` of ``grad``)
  on all the batches given, concatenated (equal sizes, so the loss over them is the mean
  of the batch losses). Standard error: of the per-batch Rayleigh quotients
  ``v^T H_b v`` at the final ``v`` (the spread a different draw of batches would give).
- ``tr H``: Hutchinson's estimator ``E[z^T H z]`` with Rademacher ``z``, one ``z`` per
  (sample, batch); standard error over the samples.
- the gradient noise scale ``B_noise = tr Sigma / |G|^2`` of McCandlish, Kaplan, Amodei
  et al. (2018, "An empirical model of large-batch training", App. A.1): from the
  gradient of each batch (size ``B``) and of its ``split`` equal parts (size ``B /
  split``), ``E |G_b|^2 = |G|^2 + tr Sigma / b`` at the two sizes gives unbiased
  ``|G|^2`` and ``tr Sigma`` (:func:`~minibatch_momentum.theory.rule.gradient_noise_scale`);
  standard error by the jackknife over batches. ``B_noise`` is where plain SGD stops
  scaling with the batch (for a quadratic in the interpolation regime it estimates
  ``tr H / L + 1``, the project's ``B*_SGD``, plus one).

:func:`~minibatch_momentum.optim.sgd_from_rule` takes the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from minibatch_momentum.theory.rule import gradient_noise_scale


@dataclass(frozen=True)
class Curvature:
    """Estimates of :func:`estimate_curvature` (``*_se``: standard errors; ``nan`` where
    one batch or one sample gives no spread).

    ``grad_sq`` and ``trace_cov`` are ``|G|^2`` and ``tr Sigma``; ``batch_small`` and
    ``batch_big`` the two batch sizes they came from; ``hvps`` and ``grads`` the
    Hessian-vector products and gradients spent, ``seconds`` the wall time.
    """

    L: float
    L_se: float
    trace: float
    trace_se: float
    b_noise: float
    b_noise_se: float
    grad_sq: float
    trace_cov: float
    batch_small: int
    batch_big: int
    hvps: int
    grads: int
    seconds: float

    def summary(self) -> str:
        return (
            f"L = {self.L:.4g} ± {self.L_se:.2g}, tr H = {self.trace:.4g} ± {self.trace_se:.2g}, "
            f"B_noise = {self.b_noise:.4g} ± {self.b_noise_se:.2g} "
            f"({self.hvps} Hessian-vector products, {self.grads} gradients, "
            f"{self.seconds:.3g} s)"
        )


def _as_tuple(params):
    """``(tensors, rebuild)``: detached leaves, and a function giving back the caller's
    structure (a dict, e.g. ``dict(model.named_parameters())``, or a sequence)."""
    if isinstance(params, dict):
        keys = list(params)
        leaves = tuple(params[k].detach() for k in keys)
        return leaves, lambda xs: dict(zip(keys, xs, strict=True))
    leaves = tuple(p.detach() for p in params)
    return leaves, lambda xs: xs


def _batch_size(batch) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0])


def _part(batch, start: int, stop: int):
    if isinstance(batch, (tuple, list)):
        return type(batch)(t[start:stop] for t in batch)
    return batch[start:stop]


def _concat(batches):
    if isinstance(batches[0], (tuple, list)):
        return type(batches[0])(torch.cat(parts) for parts in zip(*batches, strict=True))
    return torch.cat(batches)


def _flat(xs) -> torch.Tensor:
    return torch.cat([x.reshape(-1) for x in xs])


def _dot(a, b) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))


def estimate_curvature(
    loss_fn: Callable,
    params,
    batches: Sequence,
    *,
    power_iters: int = 20,
    hutchinson_samples: int = 16,
    split: int = 4,
    seed: int = 0,
) -> Curvature:
    """``L``, ``tr H`` and the gradient noise scale of ``loss_fn`` at ``params``.

    Parameters
    ----------
    loss_fn : ``loss_fn(params, batch) -> scalar tensor``, the *mean* loss over the batch,
        written functionally (``torch.func`` style): for a module ``model``,
        ``lambda p, b: F.cross_entropy(torch.func.functional_call(model, p, b[0]), b[1])``
        with ``params = dict(model.named_parameters())``.
    params : a dict of tensors or a sequence of tensors (the point of measurement; not
        modified).
    batches : mini-batches, each a tensor or a tuple of tensors sharing the leading
        (batch) dimension, all of the same size ``B``, divisible by ``split``.
    power_iters : power-iteration steps for ``L`` (one product on all the batches each).
    hutchinson_samples : Rademacher vectors for ``tr H`` (one product each, batches in
        turn); 0 skips it (``trace`` is then ``nan`` and
        :func:`~minibatch_momentum.optim.sgd_from_rule` uses the noise scale instead).
    split : the small batch size is ``B / split`` (``>= 2``).
    seed : seeds the start vector and the Rademacher vectors.

    Returns
    -------
    Curvature
    """
    batches = list(batches)
    B = _check_arguments(batches, power_iters, hutchinson_samples, split)
    t0 = time.perf_counter()
    leaves, rebuild = _as_tuple(params)
    if not leaves:
        raise ValueError("params: no tensors")

    def f(xs, batch):
        return loss_fn(rebuild(xs), batch)

    grad_f = torch.func.grad(f)

    def hvp(v, batch):
        return torch.func.jvp(lambda xs: grad_f(xs, batch), (leaves,), (v,))[1]

    gen = torch.Generator().manual_seed(int(seed))
    L, L_se = _top_eigenvalue(hvp, leaves, batches, power_iters, gen)
    trace, trace_se = _hutchinson(hvp, leaves, batches, hutchinson_samples, gen)
    noise, b_noise_se = _noise_scale(grad_f, leaves, batches, split)
    return Curvature(
        L=L,
        L_se=L_se,
        trace=trace,
        trace_se=trace_se,
        b_noise=float(noise.b_simple),
        b_noise_se=b_noise_se,
        grad_sq=float(noise.grad_sq),
        trace_cov=float(noise.trace_cov),
        batch_small=B // split,
        batch_big=B,
        hvps=power_iters + len(batches) + hutchinson_samples,
        grads=len(batches) * (split + 1),
        seconds=time.perf_counter() - t0,
    )


def _check_arguments(batches, power_iters, hutchinson_samples, split) -> int:
    """The batch size ``B`` of ``batches``, every argument checked."""
    if not batches:
        raise ValueError("batches: need at least one mini-batch")
    sizes = {_batch_size(b) for b in batches}
    if len(sizes) != 1:
        raise ValueError(f"batches: must all have the same size, got sizes {sorted(sizes)}")
    B = sizes.pop()
    if not (isinstance(split, int) and split >= 2 and B % split == 0 and B // split >= 1):
        raise ValueError(
            f"split: must be an integer >= 2 dividing the batch size {B}, got {split!r}"
        )
    if not (isinstance(power_iters, int) and power_iters >= 1):
        raise ValueError(f"power_iters: must be an integer >= 1, got {power_iters!r}")
    if not (isinstance(hutchinson_samples, int) and hutchinson_samples >= 0):
        raise ValueError(f"hutchinson_samples: must be an integer >= 0, got {hutchinson_samples!r}")
    return B


def _top_eigenvalue(hvp, leaves, batches, power_iters: int, gen) -> tuple[float, float]:
    """``(L, L_se)``: power iteration on the mean Hessian, the batches concatenated (equal
    sizes, mean loss: the mean of the batch means), one product per step; then the
    per-batch Rayleigh quotients at the final vector."""
    everything = _concat(batches)
    v = tuple(torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device) for x in leaves)
    norm = torch.sqrt(_dot(v, v))
    v = tuple(x / norm for x in v)
    for _ in range(power_iters):
        hv = hvp(v, everything)
        norm = torch.sqrt(_dot(hv, hv))
        if not norm > 0:
            raise ValueError("the Hessian-vector product vanished: is the loss flat here?")
        v = tuple(x / norm for x in hv)
    rq = np.array([float(_dot(v, hvp(v, b))) for b in batches])
    nb = len(batches)
    return float(rq.mean()), float(rq.std(ddof=1) / np.sqrt(nb)) if nb > 1 else float("nan")


def _hutchinson(hvp, leaves, batches, n_samples: int, gen) -> tuple[float, float]:
    """``(trace, trace_se)``: Hutchinson's estimator with Rademacher vectors, the batches
    in turn (``nan`` without samples)."""
    samples = []
    for s in range(n_samples):
        z = tuple(
            (torch.randint(0, 2, x.shape, generator=gen) * 2 - 1).to(x.dtype).to(x.device)
            for x in leaves
        )
        samples.append(float(_dot(z, hvp(z, batches[s % len(batches)]))))
    samples = np.array(samples) if samples else np.array([np.nan])
    trace = float(samples.mean())
    trace_se = (
        float(samples.std(ddof=1) / np.sqrt(samples.size)) if samples.size > 1 else float("nan")
    )
    return trace, trace_se


def _noise_scale(grad_f, leaves, batches, split: int):
    """The gradient noise scale (:func:`~minibatch_momentum.theory.rule.gradient_noise_scale`)
    from each batch's gradient and its ``split`` parts', and its jackknife standard error
    over the batches (``nan`` for one batch)."""
    B = _batch_size(batches[0])
    b_small = B // split
    big, small = [], []
    for batch in batches:
        big.append(_flat(grad_f(leaves, batch)).double().cpu().numpy())
        small.append(
            np.stack(
                [
                    _flat(grad_f(leaves, _part(batch, k * b_small, (k + 1) * b_small)))
                    .double()
                    .cpu()
                    .numpy()
                    for k in range(split)
                ]
            )
        )
    nb = len(batches)
    big, small = np.stack(big), np.stack(small)  # (nb, P), (nb, split, P)
    noise = gradient_noise_scale(small.reshape(-1, small.shape[-1]), big, b_small, B)
    if nb > 1:
        jack = []
        for j in range(nb):
            keep = np.arange(nb) != j
            g = gradient_noise_scale(
                small[keep].reshape(-1, small.shape[-1]), big[keep], b_small, B
            )
            jack.append(g.b_simple)
        jack = np.array(jack)
        b_noise_se = float(np.sqrt((nb - 1) / nb * np.sum((jack - jack.mean()) ** 2)))
    else:
        b_noise_se = float("nan")
    return noise, b_noise_se
