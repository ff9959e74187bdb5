"""``optim.sgd_from_rule``: torch.optim.SGD with the momentum rule's (lr, momentum)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibatch_momentum.optim import sgd_from_rule
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.simulate.engine import trajectory
from minibatch_momentum.theory.rule import momentum_rule, rule_for_spectrum, saturation_batch

L, MU, TRACE = 1.0, 1.0 / 4096, 8.0


def param(d=3):
    return torch.nn.Parameter(torch.zeros(d, dtype=torch.float64))


@pytest.mark.parametrize("method", ["sgd", "hb", "nag"])
@pytest.mark.parametrize("B", [1, 16, 256, 4096])
def test_lr_and_momentum_are_the_rules(method, B):
    opt = sgd_from_rule([param()], B, L, MU, TRACE, method)
    g = opt.param_groups[0]
    eta, beta = momentum_rule(method, B, L, MU, TRACE)
    assert isinstance(opt, torch.optim.SGD)
    assert (g["lr"], g["momentum"]) == (eta, beta)
    assert g["nesterov"] is (method == "nag") and g["dampening"] == 0
    assert g["weight_decay"] == 0


def test_lr_grows_with_the_batch_then_saturates():
    lrs = [
        sgd_from_rule([param()], B, L, MU, TRACE).param_groups[0]["lr"] for B in 2 ** np.arange(15)
    ]
    assert np.all(np.diff(lrs) > 0)
    b_sat = saturation_batch("hb", L, MU, TRACE)
    small = [lr / B for lr, B in zip(lrs, 2 ** np.arange(15), strict=True) if B < b_sat / 16]
    # below B_sat the step is ~ proportional to B; far above it, nearly constant
    assert max(small) / min(small) < 1.1
    assert lrs[-1] / lrs[-2] < 1.05 < lrs[1] / lrs[0]
    momenta = {
        sgd_from_rule([param()], B, L, MU, TRACE).param_groups[0]["momentum"] for B in (1, 64, 4096)
    }
    assert len(momenta) == 1  # the damping does not depend on B


def test_without_replacement_and_eigvals_are_passed_on():
    lam = np.geomspace(MU, L, 64)
    n = 1000
    opt = sgd_from_rule([param()], 100, L, MU, lam.sum(), "nag", n=n, eigvals=lam)
    g = opt.param_groups[0]
    eta, beta = rule_for_spectrum("nag", 100, lam, noise_line="spectrum", n=n, replace=False)
    assert (g["lr"], g["momentum"]) == pytest.approx((eta, beta), rel=1e-12)
    # a full batch without replacement has no noise: the ceiling alone sets the step
    full = sgd_from_rule([param()], n, L, MU, TRACE, n=n).param_groups[0]["lr"]
    iid = sgd_from_rule([param()], n, L, MU, TRACE).param_groups[0]["lr"]
    assert full > iid


def test_training_follows_the_engine_with_the_rules_parameters():
    # least squares f(w) = ||A_S w - b_S||^2 / (2B) per batch: the engine's heavy ball
    p = gaussian_system(d=5, n=64, kappa=30.0, seed=2)
    lam = p.eigvals
    B, T = 8, 30
    w = torch.nn.Parameter(torch.zeros(p.d, dtype=torch.float64))
    opt = sgd_from_rule([w], B, lam.max(), lam.min(), lam.sum(), "hb", n=p.n)
    A = torch.as_tensor(p.A)
    b = A @ torch.as_tensor(p.x_star)
    rng = np.random.default_rng(0)
    batches = torch.as_tensor(np.stack([rng.permutation(p.n)[:B] for _ in range(T)]))
    for idx in batches:
        opt.zero_grad()
        (((A[idx] @ w - b[idx]) ** 2).mean() / 2).backward()
        opt.step()
    g = opt.param_groups[0]
    x, _ = trajectory(p.A, p.x_star, np.zeros(p.d), batches, g["lr"], g["momentum"], "hb")
    np.testing.assert_allclose(w.detach().numpy(), x[-1, :, 0].numpy(), rtol=0, atol=1e-12)
    assert np.linalg.norm(w.detach().numpy()) > 0.1


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"method": "adam"}, "method"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"L": -1.0}, "L"),
        ({"mu": 2.0}, "mu"),
        ({"trace": 0.5}, "trace"),
        ({"n": 4, "batch_size": 8}, "n"),
    ],
)
def test_bad_arguments_name_the_field(kw, match):
    args = {"batch_size": 8, "L": L, "mu": MU, "trace": TRACE, "method": "hb", **kw}
    n = args.pop("n", None)
    with pytest.raises(ValueError, match=match):
        sgd_from_rule([param()], n=n, **args)
