"""S7's runs: every method on the Gaussian-rows quadratic (exact noise beside its closed
form) and on S1's digits MLP (all runs at one batch size trained as one stacked MLP)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from minibatch_momentum.checks import require
from minibatch_momentum.studies.digits import (
    derive_seed,
    load_digits_split,
    make_model,
    torch_threads,
)
from minibatch_momentum.studies.search_noise.config import SearchNoiseConfig
from minibatch_momentum.studies.search_noise.theory import batch_noise_factor, expected_noise_sq


def _quadratic_problem(config: SearchNoiseConfig):
    from minibatch_momentum.problems.synthetic import gaussian_system

    return gaussian_system(config.quad_d, config.quad_n, config.quad_kappa, "geometric", seed=0)


def run_quadratic(config: SearchNoiseConfig) -> pd.DataFrame:
    """Every ``(method, beta, B, seed)`` on the Gaussian-rows quadratic from ``x_0 = 0``.

    A row per step: the measured ``noise_sq = ||d_t - grad f(x_t)||^2`` beside the closed
    form ``predicted_sq`` (:func:`expected_noise_sq` at the run's own state), the full
    gradient's ``grad_sq`` and the loss ``f(x_t)``. The step is ``quad_eff_lr / L``
    (SHB: times ``1 - beta``); mini-batches are common to every method at a given
    ``(B, seed)``.
    """
    problem = _quadratic_problem(config)
    A, x_star, n = problem.A, problem.x_star, problem.n
    L = float(problem.eigvals[-1])
    row_sq = np.einsum("ij,ij->i", A, A)
    frames = []
    for method, beta in config.variants():
        lr = config.lr(method, config.quad_eff_lr, beta) / L
        for B in config.quad_batch_sizes:
            c_B = float(batch_noise_factor(n, B))
            for seed in range(config.quad_seeds):
                rng = np.random.default_rng(derive_seed(seed, B, 17))
                e = -x_star.copy()
                d = None
                rec = np.empty((config.quad_steps, 4))
                for t in range(config.quad_steps):
                    r = A @ e
                    grad = A.T @ r / n
                    sigma2 = float(np.mean(row_sq * r**2) - grad @ grad)  # row_gradient_variance
                    pred = expected_noise_sq(method, beta, c_B, sigma2, d, grad)
                    S = rng.choice(n, size=B, replace=False)
                    g = A[S].T @ r[S] / B
                    if d is None or method == "sgd":
                        d = g
                    elif method == "shb":
                        d = beta * d + g
                    else:
                        d = beta * d + (1.0 - beta) * g
                    w = d - grad
                    rec[t] = (w @ w, pred, grad @ grad, 0.5 * (r @ r) / n)
                    e = e - lr * d
                f = pd.DataFrame(rec, columns=["noise_sq", "predicted_sq", "grad_sq", "loss"])
                f.insert(0, "step", np.arange(config.quad_steps))
                f.insert(0, "seed", seed)
                f.insert(0, "batch_size", B)
                f.insert(0, "beta", beta)
                f.insert(0, "lr", lr)
                f.insert(0, "eff_lr", config.quad_eff_lr)
                f.insert(0, "method", method)
                frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "part", "quadratic")
    return df


def _stacked_mlp(config: SearchNoiseConfig, seeds: list[int]) -> list:
    """S1's MLP initialized from each run's seed, stacked along a leading run axis:
    ``[W1 (R, 64, H), b1 (R, 1, H), W2 (R, H, 10), b2 (R, 1, 10)]`` (leaf tensors)."""
    import torch

    dc = config.digits_config()
    cache = {}
    for s in set(seeds):
        m = make_model(dc, s)
        cache[s] = [m[0].weight.T, m[0].bias[None], m[2].weight.T, m[2].bias[None]]
    return [
        torch.stack([cache[s][k] for s in seeds]).detach().clone().requires_grad_(True)
        for k in range(4)
    ]


def _logits(params, X):
    """The stacked MLP on ``X`` (R, m, 64): (R, m, 10)."""
    import torch

    W1, b1, W2, b2 = params
    return torch.baddbmm(b2, torch.relu(torch.baddbmm(b1, X, W1)), W2)


def _losses(params, X, y):
    """Per-run mean cross-entropy, shape (R,); ``X`` (R, m, 64), ``y`` (R, m)."""
    import torch.nn.functional as F

    z = _logits(params, X)
    R, m, k = z.shape
    return (
        F.cross_entropy(z.reshape(R * m, k), y.reshape(R * m), reduction="none").view(R, m).mean(1)
    )


def _per_run(tensors):
    """``(R, P)``: each run's tensors flattened and concatenated."""
    import torch

    return torch.cat([t.reshape(t.shape[0], -1) for t in tensors], dim=1)


def _records(B: int, runs: list[tuple], rows: list[tuple], bad, config: SearchNoiseConfig) -> list:
    """The frame's rows from :func:`_train_group`'s ``(run, step, noise_sq, grad_sq, loss,
    test_acc)`` tuples; a run that diverged (``bad``) keeps its rows with NaN measurements."""
    out = []
    for r, t, noise, gsq, loss_v, acc_v in rows:
        m, e, b, s = runs[r]
        st = "diverged" if bad[r] else "ok"
        out.append(
            {
                "method": m,
                "eff_lr": e,
                "lr": config.lr(m, e, b),
                "beta": b,
                "batch_size": B,
                "seed": s,
                "step": t,
                "noise_sq": math.nan if bad[r] else float(noise),
                "grad_sq": math.nan if bad[r] else float(gsq),
                "loss": math.inf if bad[r] else float(loss_v),
                "test_acc": math.nan if bad[r] else float(acc_v),
                "status": st,
            }
        )
    return out


def _train_group(B: int, runs: list[tuple], config: SearchNoiseConfig, data: dict) -> list[dict]:
    """Train every run ``(method, eff_lr, beta, seed)`` at batch size ``B`` together.

    The runs are independent slices of one stacked MLP (the summed loss separates), each
    updated with ``torch.optim.SGD``'s rule (``tests`` check it against the class):
    ``d <- g`` at the first step, then ``d <- beta d + (1 - dampening) g`` with
    dampening 0 (SHB) or ``beta`` (NSHB), ``x <- x - lr d``; SGD is ``beta = 0``. A run
    at seed ``s`` draws the same mini-batches as every other run at ``(B, s)``.
    Returns a row per (run, noise measurement) and one per run at the end.
    """
    import torch

    X, y = data["Xt_train"], data["yt_train"]
    n_train = len(y)
    R = len(runs)
    seeds = [r[3] for r in runs]
    params = _stacked_mlp(config, seeds)
    lr = torch.tensor([config.lr(m, e, b) for m, e, b, _ in runs], dtype=X.dtype)
    beta = torch.tensor([b for _, _, b, _ in runs], dtype=X.dtype)
    keep = torch.tensor([1.0 - b if m == "nshb" else 1.0 for m, _, b, _ in runs], dtype=X.dtype)
    rngs = {s: np.random.default_rng(derive_seed(s, B, 7)) for s in sorted(set(seeds))}
    slot = {s: i for i, s in enumerate(sorted(set(seeds)))}
    which = torch.tensor([slot[s] for s in seeds])
    measure = set(config.measure_steps())
    XF, yF = X.expand(R, *X.shape), y.expand(R, n_train)
    dirs = None
    diverged = torch.zeros(R, dtype=torch.bool)
    rows = []
    for t in range(config.steps):
        grad_full = None
        if t in measure:
            lf = _losses(params, XF, yF)
            grad_full = _per_run(torch.autograd.grad(lf.sum(), params))
        idx = torch.from_numpy(
            np.stack([rngs[s].choice(n_train, size=B, replace=False) for s in sorted(rngs)])
        )[which]
        loss = _losses(params, X[idx], y[idx])
        diverged |= ~torch.isfinite(loss)
        grads = torch.autograd.grad(loss.sum(), params)
        with torch.no_grad():
            shape = [(R,) + (1,) * (p.dim() - 1) for p in params]
            if dirs is None:
                dirs = [g.clone() for g in grads]
            else:
                for d, g, sh in zip(dirs, grads, shape, strict=True):
                    d.mul_(beta.view(sh)).add_(g * keep.view(sh))
            for p, d, sh in zip(params, dirs, shape, strict=True):
                p.sub_(lr.view(sh) * d)
        if grad_full is not None:
            w = (_per_run(dirs) - grad_full).double()
            noise = (w * w).sum(1).numpy()
            gsq = (grad_full.double() ** 2).sum(1).numpy()
            lfn = lf.detach().double().numpy()
            for r in range(R):
                rows.append((r, t, noise[r], gsq[r], lfn[r], math.nan))
    with torch.no_grad():
        loss_end = _losses(params, XF, yF).double().numpy()
        Xt, yt = data["Xt_test"], data["yt_test"]
        pred = _logits(params, Xt.expand(R, *Xt.shape)).argmax(2)
        acc = (pred == yt).double().mean(1).numpy()
        finite = torch.stack([torch.isfinite(_per_run([p]).detach()).all(1) for p in params]).all(0)
    bad = (diverged | ~finite).numpy() | ~np.isfinite(loss_end)
    for r in range(R):
        rows.append((r, config.steps, math.nan, math.nan, loss_end[r], acc[r]))
    return _records(B, runs, rows, bad, config)


def run_digits(
    config: SearchNoiseConfig, progress: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """Every ``(method, beta, eta_eff, B, seed)`` on the digits MLP; a row per noise
    measurement (``noise_sq``, ``grad_sq``, full-batch training ``loss``) and a final row
    (``step = steps``) with the end's training loss and test accuracy. Deterministic:
    one torch thread, seeded generators, the global torch RNG left as it was."""
    import torch

    data = load_digits_split(config.digits_config())
    n_train = len(data["y_train"])
    require(
        max(config.batch_sizes) <= n_train,
        "batch_sizes",
        f"<= the training-set size {n_train}",
        config.batch_sizes,
    )
    for k in ("train", "test"):
        data[f"Xt_{k}"] = torch.from_numpy(data[f"X_{k}"])
        data[f"yt_{k}"] = torch.from_numpy(data[f"y_{k}"])
    runs = [
        (m, float(e), b, s)
        for m, b in config.variants()
        for e in config.eff_lrs
        for s in config.seeds
    ]
    rows = []
    with torch_threads(1):
        for B in config.batch_sizes:
            rows += _train_group(B, runs, config, data)
            if progress:
                progress(f"search_noise digits B={B}: {len(runs)} runs")
    df = pd.DataFrame(rows)
    df.insert(0, "part", "digits")
    df.attrs["n_train"] = n_train
    return df
