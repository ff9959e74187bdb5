"""The optimizers in ``minibatch_momentum.optim`` against hand-written references.

Every test runs in float64 on a tiny linear least-squares model with two parameter
tensors (a weight matrix and a bias) in two param groups, fed a fixed mini-batch sequence.
The references below are plain tensor loops written from the update rules in the papers
(independently of the package's functional updates), with gradients from autograd.
"""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from minibatch_momentum.optim import SNGM, AccSGD, MaSS, RandomScaledSGDM

DT = torch.float64
N, D_IN, D_OUT, BATCH, STEPS = 24, 4, 3, 6, 8
ATOL = 1e-12


# --------------------------------------------------------------------------- fixtures


def make_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D_IN, generator=g, dtype=DT)
    Y = torch.randn(N, D_OUT, generator=g, dtype=DT)
    W0 = torch.randn(D_OUT, D_IN, generator=g, dtype=DT)
    b0 = torch.randn(D_OUT, generator=g, dtype=DT)
    batches = [torch.randperm(N, generator=g)[:BATCH] for _ in range(3 * STEPS)]
    return X, Y, W0, b0, batches


def loss_fn(W, b, X, Y, idx):
    r = X[idx] @ W.T + b - Y[idx]
    return 0.5 * (r * r).sum(dim=1).mean()


def grads_at(ws, X, Y, idx):
    """Gradient of the mini-batch loss at the plain tensors ``ws = [W, b]``."""
    leaves = [w.detach().clone().requires_grad_(True) for w in ws]
    return list(torch.autograd.grad(loss_fn(*leaves, X, Y, idx), leaves))


def make_model(W0, b0):
    return [torch.nn.Parameter(W0.clone()), torch.nn.Parameter(b0.clone())]


def groups(params, lrs=(0.05, 0.02), **extra):
    """Two param groups (weight, bias) with different learning rates."""
    return [dict(params=[params[0]], lr=lrs[0], **extra), dict(params=[params[1]], lr=lrs[1])]


def train(opt, params, X, Y, batches, use_closure=False):
    for idx in batches:
        if use_closure:

            def closure(idx=idx):
                opt.zero_grad()
                loss = loss_fn(*params, X, Y, idx)
                loss.backward()
                return loss

            loss = opt.step(closure)
            assert torch.is_tensor(loss)
        else:
            opt.zero_grad()
            loss_fn(*params, X, Y, idx).backward()
            assert opt.step() is None


def assert_close(actual, expected, atol=ATOL):
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == DT
        torch.testing.assert_close(a.detach(), e, atol=atol, rtol=0)


# --------------------------------------------------------------------------- references
# Each takes per-group lists of tensors and hyperparameters; group k holds tensor k.


def ref_sngm(ws, X, Y, batches, lrs, beta, eps=1e-12, wd=0.0):
    ws = [w.clone() for w in ws]
    us = [torch.zeros_like(w) for w in ws]
    for idx in batches:
        gs = grads_at(ws, X, Y, idx)
        for k in range(len(ws)):  # one tensor per group: the group norm is that tensor's
            g = gs[k] + wd * ws[k]
            n = math.sqrt(float((g * g).sum()))
            us[k] = beta * us[k] + g / max(n, eps)
            ws[k] = ws[k] - lrs[k] * us[k]
    return ws


def ref_sgdm_scaled(ws, X, Y, batches, lrs, beta, scales, wd=0.0):
    ws = [w.clone() for w in ws]
    ms = [None] * len(ws)
    for idx, s in zip(batches, scales, strict=True):
        gs = grads_at(ws, X, Y, idx)
        for k in range(len(ws)):
            g = gs[k] + wd * ws[k]
            ms[k] = g.clone() if ms[k] is None else beta * ms[k] + g
            ws[k] = ws[k] - s * lrs[k] * ms[k]
    return ws


def ref_accsgd_code_form(ws, X, Y, batches, lrs, kappa, xi, c):
    """Line for line the authors' AccSGD.py (github.com/rahulkidambi/AccSGD)."""
    ws = [w.clone() for w in ws]
    bufs = [w.clone() for w in ws]
    for idx in batches:
        gs = grads_at(ws, X, Y, idx)
        for k in range(len(ws)):
            large_lr = lrs[k] * kappa / c
            alpha = 1.0 - c * c * xi / kappa
            beta = 1.0 - alpha
            zeta = c / (c + beta)
            bufs[k] = beta * ((1.0 / beta - 1.0) * bufs[k] - large_lr * gs[k] + ws[k])
            ws[k] = zeta * (ws[k] - lrs[k] * gs[k]) + (1.0 - zeta) * bufs[k]
    return ws


def ref_accsgd_jain_form(ws, X, Y, batches, lrs, kappa, xi, c):
    """Jain et al. (arXiv 1704.08227) Algorithm 1 in (alpha, beta, gamma, delta), mapped
    from (lr, kappa, xi, c) as the AccSGD docstring states; returns the gradient points."""
    xs = [w.clone() for w in ws]
    vs = [w.clone() for w in ws]
    ys = [w.clone() for w in ws]
    for idx in batches:
        gs = grads_at(ys, X, Y, idx)
        for k in range(len(ws)):
            delta = lrs[k]
            alpha = 1.0 / (1.0 + c * xi / kappa)
            beta = c * c * xi / kappa
            gamma = c * xi * delta
            xs[k] = ys[k] - delta * gs[k]
            vs[k] = beta * ys[k] + (1.0 - beta) * vs[k] - gamma * gs[k]
            ys[k] = alpha * xs[k] + (1.0 - alpha) * vs[k]
    return ys


def ref_mass(us, X, Y, batches, lrs, gamma, eta2):
    us = [u.clone() for u in us]
    ws = [u.clone() for u in us]
    for idx in batches:
        gs = grads_at(us, X, Y, idx)
        for k in range(len(us)):
            w_new = us[k] - lrs[k] * gs[k]
            us[k] = (1.0 + gamma) * w_new - gamma * ws[k] + eta2 * gs[k]
            ws[k] = w_new
    return us, ws


# --------------------------------------------------------------------------- vs references


@pytest.mark.parametrize("use_closure", [False, True])
def test_sngm_matches_reference(use_closure):
    X, Y, W0, b0, batches = make_data()
    params = make_model(W0, b0)
    opt = SNGM(groups(params), lr=1.0, momentum=0.8)
    train(opt, params, X, Y, batches[:STEPS], use_closure)
    assert_close(params, ref_sngm([W0, b0], X, Y, batches[:STEPS], (0.05, 0.02), 0.8))


def test_sngm_weight_decay_matches_reference():
    X, Y, W0, b0, batches = make_data(1)
    params = make_model(W0, b0)
    opt = SNGM(params, lr=0.05, momentum=0.9, weight_decay=0.1)
    # one group: the reference's per-tensor norm must become the global norm, so compare
    # against a reference with a single concatenated parameter vector instead
    train(opt, params, X, Y, batches[:STEPS])
    ws, us = [W0.clone(), b0.clone()], [torch.zeros_like(W0), torch.zeros_like(b0)]
    for idx in batches[:STEPS]:
        gs = [g + 0.1 * w for g, w in zip(grads_at(ws, X, Y, idx), ws, strict=True)]
        n = math.sqrt(sum(float((g * g).sum()) for g in gs))
        us = [0.9 * u + g / n for u, g in zip(us, gs, strict=True)]
        ws = [w - 0.05 * u for w, u in zip(ws, us, strict=True)]
    assert_close(params, ws)


def test_sngm_normalized_gradient_has_unit_norm_and_step_is_eta_u():
    X, Y, W0, b0, batches = make_data(2)
    params = make_model(W0, b0)
    lr, beta = 0.03, 0.7
    opt = SNGM(params, lr=lr, momentum=beta)  # one group: global norm over W and b
    prev_u = None
    for t, idx in enumerate(batches[:STEPS]):
        before = [p.detach().clone() for p in params]
        opt.zero_grad()
        loss_fn(*params, X, Y, idx).backward()
        grad_norm = math.sqrt(sum(float((p.grad**2).sum()) for p in params))
        assert grad_norm > 1.0  # the normalization is not trivial here
        opt.step()
        us = [opt.state[p]["momentum_buffer"] for p in params]
        u_norm = math.sqrt(sum(float((u**2).sum()) for u in us))
        step_norm = math.sqrt(
            sum(float(((p.detach() - b) ** 2).sum()) for p, b in zip(params, before, strict=True))
        )
        assert step_norm == pytest.approx(lr * u_norm, rel=1e-12)
        # g / ||g|| = u_{t+1} - beta u_t has unit norm (u_0 = 0, so u_1 itself)
        ghat = us if prev_u is None else [u - beta * v for u, v in zip(us, prev_u, strict=True)]
        ghat_norm = math.sqrt(sum(float((x**2).sum()) for x in ghat))
        assert ghat_norm == pytest.approx(1.0, abs=1e-12), t
        assert u_norm <= 1.0 / (1.0 - beta) + 1e-12
        prev_u = [u.clone() for u in us]


def test_sngm_zero_gradient_is_finite_and_decays_momentum():
    p = torch.nn.Parameter(torch.ones(3, dtype=DT))
    opt = SNGM([p], lr=0.1, momentum=0.5)
    p.grad = torch.tensor([3.0, 0.0, 4.0], dtype=DT)
    opt.step()
    u1 = opt.state[p]["momentum_buffer"].clone()
    torch.testing.assert_close(u1, torch.tensor([0.6, 0.0, 0.8], dtype=DT), atol=ATOL, rtol=0)
    p.grad = torch.zeros(3, dtype=DT)
    opt.step()
    u2 = opt.state[p]["momentum_buffer"]
    assert torch.isfinite(p).all()
    torch.testing.assert_close(u2, 0.5 * u1, atol=ATOL, rtol=0)


def test_random_scaled_sgdm_matches_reference_with_exp_scales():
    X, Y, W0, b0, batches = make_data(3)
    params = make_model(W0, b0)
    opt = RandomScaledSGDM(
        groups(params), lr=1.0, momentum=0.9, generator=torch.Generator().manual_seed(7)
    )
    seen = []
    for idx in batches[:STEPS]:
        opt.zero_grad()
        loss_fn(*params, X, Y, idx).backward()
        opt.step()
        seen.append(opt.last_scale)
    # the documented draw: one float64 Exp(1) per step from the generator
    g = torch.Generator().manual_seed(7)
    scales = [float(torch.empty((), dtype=DT).exponential_(1.0, generator=g)) for _ in range(STEPS)]
    assert seen == scales
    assert all(s > 0 for s in scales) and len(set(scales)) == STEPS
    ref = ref_sgdm_scaled([W0, b0], X, Y, batches[:STEPS], (0.05, 0.02), 0.9, scales)
    assert_close(params, ref)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_random_scaled_sgdm_unscaled_equals_torch_sgd_exactly(weight_decay):
    X, Y, W0, b0, batches = make_data(4)
    ours, theirs = make_model(W0, b0), make_model(W0, b0)
    opt = RandomScaledSGDM(
        groups(ours, weight_decay=weight_decay), lr=1.0, momentum=0.9, scale="none"
    )
    ref = torch.optim.SGD(
        groups(theirs, weight_decay=weight_decay), lr=1.0, momentum=0.9, foreach=False
    )
    ref_foreach = torch.optim.SGD(
        groups(t := make_model(W0, b0), weight_decay=weight_decay),
        lr=1.0,
        momentum=0.9,
        foreach=True,
    )
    for params, o in ((ours, opt), (theirs, ref), (t, ref_foreach)):
        train(o, params, X, Y, batches[:STEPS])
    for a, b, c in zip(ours, theirs, t, strict=True):
        assert torch.equal(a, b)
        assert torch.equal(a, c)
    assert opt.last_scale == 1.0


def test_random_scaled_sgdm_is_deterministic_given_a_seeded_generator():
    X, Y, W0, b0, batches = make_data(5)

    def run(seed):
        params = make_model(W0, b0)
        gen = torch.Generator().manual_seed(seed)
        opt = RandomScaledSGDM(params, lr=0.02, momentum=0.9, generator=gen)
        torch.manual_seed(1234 + seed)  # the global RNG must not matter
        train(opt, params, X, Y, batches[:STEPS])
        return [p.detach().clone() for p in params]

    a, b, c = run(11), run(11), run(12)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, z) for x, z in zip(a, c, strict=True))


def test_accsgd_matches_authors_code_and_jain_et_al_form():
    X, Y, W0, b0, batches = make_data(6)
    params = make_model(W0, b0)
    kappa, xi, c = 50.0, 4.0, 0.7
    opt = AccSGD(groups(params), lr=1.0, kappa=kappa, xi=xi, small_const=c)
    train(opt, params, X, Y, batches[:STEPS], use_closure=True)
    lrs = (0.05, 0.02)
    assert_close(params, ref_accsgd_code_form([W0, b0], X, Y, batches[:STEPS], lrs, kappa, xi, c))
    assert_close(params, ref_accsgd_jain_form([W0, b0], X, Y, batches[:STEPS], lrs, kappa, xi, c))


@pytest.mark.parametrize("eta2", [0.004, -0.002])
def test_mass_matches_reference(eta2):
    X, Y, W0, b0, batches = make_data(7)
    params = make_model(W0, b0)
    opt = MaSS(groups(params), lr=1.0, gamma=0.8, eta2=eta2)
    train(opt, params, X, Y, batches[:STEPS])
    us, ws = ref_mass([W0, b0], X, Y, batches[:STEPS], (0.05, 0.02), 0.8, eta2)
    assert_close(params, us)
    assert_close([opt.state[p]["w"] for p in params], ws)


def test_mass_without_compensation_is_nesterov_sgd():
    X, Y, W0, b0, batches = make_data(8)
    ours, theirs = make_model(W0, b0), make_model(W0, b0)
    opt = MaSS(groups(ours), lr=1.0, gamma=0.9, eta2=0.0)
    ref = torch.optim.SGD(groups(theirs), lr=1.0, momentum=0.9, nesterov=True)
    train(opt, ours, X, Y, batches[:STEPS])
    train(ref, theirs, X, Y, batches[:STEPS])
    assert_close(ours, [p.detach() for p in theirs])


# --------------------------------------------------------------------------- state dicts

FACTORIES = {
    "SNGM": lambda ps, gen: SNGM(groups(ps), lr=1.0, momentum=0.9, weight_decay=0.01),
    "RandomScaledSGDM": lambda ps, gen: RandomScaledSGDM(
        groups(ps), lr=1.0, momentum=0.9, generator=gen
    ),
    "AccSGD": lambda ps, gen: AccSGD(groups(ps), lr=1.0, kappa=100.0, xi=5.0),
    "MaSS": lambda ps, gen: MaSS(groups(ps), lr=1.0, gamma=0.9, eta2=0.003),
}


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("via_bytes", [False, True])
def test_state_dict_round_trip_reproduces_subsequent_steps(name, via_bytes):
    X, Y, W0, b0, batches = make_data(9)
    make = FACTORIES[name]
    params = make_model(W0, b0)
    opt = make(params, torch.Generator().manual_seed(3))
    train(opt, params, X, Y, batches[:4])

    sd = opt.state_dict()
    if via_bytes:
        buf = io.BytesIO()
        torch.save(sd, buf)
        buf.seek(0)
        sd = torch.load(buf, weights_only=True)
    params2 = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = make(params2, torch.Generator().manual_seed(999))  # a different stream
    opt2.load_state_dict(sd)
    params3 = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt3 = make(params3, torch.Generator().manual_seed(5))
    opt3.load_state_dict(sd)  # the same dict twice: the loaded buffers must not be shared

    # the two optimizers share no buffers, and snapshots are not live views
    for p, q in zip(params, params2, strict=True):
        for key, v in opt.state[p].items():
            if torch.is_tensor(v):
                assert v.data_ptr() != opt2.state[q][key].data_ptr()
                assert opt2.state[q][key].dtype == DT

    train(opt, params, X, Y, batches[4:10])
    train(opt2, params2, X, Y, batches[4:10])
    train(opt3, params3, X, Y, batches[4:10])
    for p, q, r in zip(params, params2, params3, strict=True):
        assert torch.equal(p, q)
        assert torch.equal(p, r)


def test_state_dict_is_a_snapshot():
    X, Y, W0, b0, batches = make_data(10)
    params = make_model(W0, b0)
    opt = SNGM(params, lr=0.1)
    train(opt, params, X, Y, batches[:2])
    sd = opt.state_dict()
    frozen = copy.deepcopy(sd)
    train(opt, params, X, Y, batches[2:4])
    for k, v in sd["state"].items():
        assert torch.equal(v["momentum_buffer"], frozen["state"][k]["momentum_buffer"])


# --------------------------------------------------------------------------- hygiene


@pytest.mark.parametrize("name", list(FACTORIES))
def test_gradients_are_not_modified_and_missing_grads_are_skipped(name):
    X, Y, W0, b0, batches = make_data(11)
    W = torch.nn.Parameter(W0.clone())
    b = torch.nn.Parameter(b0.clone())
    spare = torch.nn.Parameter(torch.ones(2, dtype=DT))
    opt = {
        "SNGM": lambda: SNGM([W, b, spare], lr=0.1, weight_decay=0.1),
        "RandomScaledSGDM": lambda: RandomScaledSGDM([W, b, spare], lr=0.1, weight_decay=0.1),
        "AccSGD": lambda: AccSGD([W, b, spare], lr=0.1, weight_decay=0.1),
        "MaSS": lambda: MaSS([W, b, spare], lr=0.1, gamma=0.5, eta2=0.01, weight_decay=0.1),
    }[name]()
    loss_fn(W, b, X, Y, batches[0]).backward()
    grads = [W.grad.clone(), b.grad.clone()]
    opt.step()
    assert torch.equal(W.grad, grads[0]) and torch.equal(b.grad, grads[1])
    assert not torch.equal(W.detach(), W0)
    assert torch.equal(spare.detach(), torch.ones(2, dtype=DT))
    assert len(opt.state.get(spare, {})) == 0


INVALID = [
    (SNGM, dict(lr=-0.1), "lr"),
    (SNGM, dict(lr=0.1, momentum=1.0), "momentum"),
    (SNGM, dict(lr=0.1, momentum=-0.1), "momentum"),
    (SNGM, dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
    (SNGM, dict(lr=0.1, eps=0.0), "eps"),
    (RandomScaledSGDM, dict(lr=-0.1), "lr"),
    (RandomScaledSGDM, dict(lr=0.1, momentum=1.5), "momentum"),
    (RandomScaledSGDM, dict(lr=0.1, scale="uniform"), "scale"),
    (RandomScaledSGDM, dict(lr=0.1, generator=3), "generator"),
    (AccSGD, dict(lr=-1.0), "lr"),
    (AccSGD, dict(lr=0.1, kappa=0.0), "kappa"),
    (AccSGD, dict(lr=0.1, xi=-1.0), "xi"),
    (AccSGD, dict(lr=0.1, kappa=10.0, xi=100.0), "xi"),
    (AccSGD, dict(lr=0.1, small_const=1.5), "small_const"),
    (MaSS, dict(lr=-0.1, gamma=0.5, eta2=0.0), "lr"),
    (MaSS, dict(lr=0.1, gamma=1.0, eta2=0.0), "gamma"),
    (MaSS, dict(lr=0.1, gamma=0.5, eta2=float("nan")), "eta2"),
]


@pytest.mark.parametrize(("cls", "kwargs", "name"), INVALID)
def test_invalid_hyperparameters_raise_naming_the_argument(cls, kwargs, name):
    p = torch.nn.Parameter(torch.zeros(2, dtype=DT))
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        cls([p], **kwargs)


def test_invalid_hyperparameters_in_a_param_group_raise():
    p, q = (torch.nn.Parameter(torch.zeros(2, dtype=DT)) for _ in range(2))
    with pytest.raises(ValueError, match=r"^momentum\b"):
        SNGM([{"params": [p]}, {"params": [q], "momentum": 1.0}], lr=0.1)
    opt = MaSS([p], lr=0.1, gamma=0.5, eta2=0.0)
    with pytest.raises(ValueError, match=r"^gamma\b"):
        opt.add_param_group({"params": [q], "gamma": -0.5})
    assert len(opt.param_groups) == 1
