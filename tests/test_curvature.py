"""``estimate_curvature`` against quadratics with a known Hessian, and ``sgd_from_rule``
fed by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibatch_momentum.curvature import Curvature, estimate_curvature
from minibatch_momentum.optim import sgd_from_rule
from minibatch_momentum.problems.system import spectrum
from minibatch_momentum.theory.rule import RULE_CONSTANTS, momentum_rule


def _gaussian_rows(lam, count, gen):
    """``count`` rows ``N(0, diag(lam))``."""
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    return torch.randn(count, lam_t.numel(), generator=gen, dtype=torch.float64) * lam_t.sqrt()


def _least_squares(params, batch):
    X, y = batch
    return 0.5 * ((X @ params[0] - y) ** 2).mean()


def test_L_and_trace_of_a_quadratic_with_known_hessian():
    gen = torch.Generator().manual_seed(0)
    lam = spectrum(20, 50.0)
    batches = []
    for _ in range(8):
        X = _gaussian_rows(lam, 64, gen)
        batches.append((X, X @ torch.ones(20, dtype=torch.float64)))
    X_all = torch.cat([b[0] for b in batches])
    H = (X_all.T @ X_all / X_all.shape[0]).numpy()  # the Hessian over the batches given
    ev = np.linalg.eigvalsh(H)
    w = torch.zeros(20, dtype=torch.float64)
    c = estimate_curvature(_least_squares, [w], batches, power_iters=60, hutchinson_samples=64)
    # Power iteration: the gap ev[-1] / ev[-2] ~ 1.2 over 60 steps leaves < 1e-4.
    assert c.L == pytest.approx(ev[-1], rel=1e-3)
    assert 0 < c.L_se < 0.2 * c.L  # per-batch spread of v^T H_b v
    # Hutchinson with 64 Rademacher vectors (over the batches in turn): within 4 SE.
    assert abs(c.trace - np.trace(H)) <= 4 * c.trace_se
    assert c.trace_se < 0.1 * np.trace(H)
    assert c.hvps == 60 + 8 + 64 and c.grads == 8 * 5
    assert torch.equal(w, torch.zeros(20, dtype=torch.float64))  # the point is unchanged


def _gaussian_quadratic(seed, num_batches, d=16, rows=128):
    """A consistent system with ``N(0, diag(lam))`` rows, kappa = 100, as batches of
    ``rows``: ``(lam, x_star, [(X, X x_star), ...])``."""
    gen = torch.Generator().manual_seed(seed)
    lam = spectrum(d, 100.0)
    x_star = torch.randn(d, generator=gen, dtype=torch.float64)
    batches = []
    for _ in range(num_batches):
        X = _gaussian_rows(lam, rows, gen)
        batches.append((X, X @ x_star))
    return lam, x_star, batches

def test_noise_scale_against_its_closed_form_for_gaussian_rows():
    # Rows a ~ N(0, H), residual a^T e: per-example gradients a (a^T e) have
    # tr Sigma = (e^T H e) tr H + |H e|^2 and G = H e (Isserlis), so
    # B_noise = tr Sigma / |G|^2 = (e^T H e) tr H / |H e|^2 + 1.
    lam, x_star, batches = _gaussian_quadratic(seed=1, num_batches=64)
    w = torch.zeros(16, dtype=torch.float64)
    e = (w - x_star).numpy()
    He = lam * e
    truth = (e @ He) * lam.sum() / (He @ He) + 1.0
    c = estimate_curvature(_least_squares, [w], batches, power_iters=2, hutchinson_samples=2)
    assert abs(c.b_noise - truth) <= 4 * c.b_noise_se
    assert c.b_noise_se < 0.1 * truth  # 64 batches: ~5% (measured over seeds 0-3)
    assert c.b_noise == pytest.approx(truth, rel=0.2)
    assert (c.batch_small, c.batch_big) == (32, 128)


def test_dict_params_and_a_module():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3, dtype=torch.float64)
    X = torch.randn(32, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (32,))
    params = dict(model.named_parameters())

    def loss_fn(p, batch):
        out = torch.func.functional_call(model, p, (batch[0],))
        return torch.nn.functional.cross_entropy(out, batch[1])

    batches = [(X[:16], y[:16]), (X[16:], y[16:])]
    c = estimate_curvature(loss_fn, params, batches, power_iters=30, hutchinson_samples=8)
    # The exact Hessian of the loss over both batches, by autograd.
    flat = torch.cat([p.detach().reshape(-1) for p in params.values()])

    def f(v):
        W, b = v[:15].reshape(3, 5), v[15:]
        return torch.nn.functional.cross_entropy(X @ W.T + b, y)

    H = torch.autograd.functional.hessian(f, flat).numpy()
    assert c.L == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-3)
    assert abs(c.trace - np.trace(H)) <= 4 * c.trace_se


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"batches": []}, "at least one"),
        ({"split": 3}, "split"),
        ({"power_iters": 0}, "power_iters"),
    ],
)
def test_bad_arguments(kw, match):
    X = torch.randn(8, 2, dtype=torch.float64)
    args = {"batches": [(X, X[:, 0])], **kw}
    with pytest.raises(ValueError, match=match):
        estimate_curvature(_least_squares, [torch.zeros(2, dtype=torch.float64)], **args)


def _curvature(L=2.0, trace=10.0):
    nan = float("nan")
    return Curvature(L, nan, trace, nan, 5.0, nan, 1.0, 5.0, 8, 32, 0, 0, 0.0)


def test_sgd_from_rule_takes_a_curvature():
    p = [torch.zeros(3, requires_grad=True)]
    opt = sgd_from_rule(p, 64, _curvature())  # momentum 0.9 by default
    group = opt.param_groups[0]
    assert group["momentum"] == pytest.approx(0.9)
    damp = RULE_CONSTANTS[("hb", "trace")].damp
    mu = 2.0 * (0.1 / damp) ** 2
    assert group["lr"] == pytest.approx(momentum_rule("hb", 64, 2.0, mu, 10.0)[0])
    opt = sgd_from_rule(p, 64, _curvature(), mu=1e-3)
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]) == pytest.approx(
        momentum_rule("hb", 64, 2.0, 1e-3, 10.0)
    )
    assert sgd_from_rule(p, 64, _curvature(), momentum=0.99).param_groups[0][
        "momentum"
    ] == pytest.approx(0.99)
    # A Hutchinson trace below L (noise, or an indefinite Hessian) is raised to L.
    sgd_from_rule(p, 64, _curvature(L=2.0, trace=1.5))


def test_sgd_from_rule_without_L_says_what_to_pass():
    with pytest.raises(ValueError, match="estimate_curvature"):
        sgd_from_rule([torch.zeros(3, requires_grad=True)], 64)
    with pytest.raises(ValueError, match="not both"):
        sgd_from_rule([torch.zeros(3, requires_grad=True)], 64, 1.0, 1e-3, 5.0, momentum=0.9)


def test_without_hutchinson_the_noise_scale_sets_the_trace():
    nan = float("nan")
    curv = Curvature(2.0, nan, nan, nan, 11.0, nan, 1.0, 5.0, 8, 32, 0, 0, 0.0)
    opt = sgd_from_rule([torch.zeros(3, requires_grad=True)], 64, curv, mu=1e-3)
    # tr H = L (B_noise - 1) = 20
    assert opt.param_groups[0]["lr"] == pytest.approx(momentum_rule("hb", 64, 2.0, 1e-3, 20.0)[0])


def test_noise_scale_trace_bounds_the_truth_on_a_quadratic():
    # tr H = lambda_G (B_noise - 1) <= L (B_noise - 1): the stand-in over-estimates.
    lam, _, batches = _gaussian_quadratic(seed=2, num_batches=32)
    w = torch.zeros(16, dtype=torch.float64)
    c = estimate_curvature(_least_squares, [w], batches, power_iters=40, hutchinson_samples=0)
    assert np.isnan(c.trace)
    assert c.L * (c.b_noise - 1) > lam.sum()
