"""S7 (search-direction noise): the quadratic's closed form against Monte Carlo, the
batched digits trainer against ``torch.optim.SGD``, config errors, determinism, claims."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from minibatch_momentum.figures import studies as figures
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.studies.digits import load_digits_split, make_model
from minibatch_momentum.studies.search_noise.config import SearchNoiseConfig
from minibatch_momentum.studies.search_noise.study import (
    analyze_search_noise,
    claim_s7b,
    claim_s7c,
    claims_s7,
    run_search_noise,
)
from minibatch_momentum.studies.search_noise.theory import (
    batch_noise_factor,
    expected_noise_sq,
    frozen_noise_ratio,
    predicted_slope,
    row_gradient_variance,
)
from minibatch_momentum.studies.search_noise.train import _train_group, run_quadratic

pytest.importorskip("sklearn")

TINY = SearchNoiseConfig(
    batch_sizes=(4, 16),
    eff_lrs=(0.1,),
    betas=(0.9,),
    steps=20,
    measure_every=5,
    window=0.5,
    hidden=8,
    seeds=(0, 1),
    quad_d=4,
    quad_n=16,
    quad_batch_sizes=(1, 4),
    quad_steps=20,
    quad_seeds=2,
    n_boot=100,
)


@pytest.fixture(scope="module")
def tiny_df():
    return run_search_noise(TINY)


# --------------------------------------------------------------------------- closed form


def _state(n=24, d=5, seed=3):
    p = gaussian_system(d, n, 20.0, "geometric", seed=seed)
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(d)
    return p.A, e, 0.1 * rng.standard_normal(d)  # a small d_{t-1}: the noise term dominates


def test_row_gradient_variance_is_the_spread_of_the_row_gradients():
    A, e, _ = _state()
    G = A * (A @ e)[:, None]  # row i: a_i a_i^T e
    brute = np.mean(np.sum((G - G.mean(0)) ** 2, axis=1))
    assert row_gradient_variance(A, e) == pytest.approx(brute, rel=1e-12)


@pytest.mark.parametrize("method, beta", [("sgd", 0.0), ("shb", 0.9), ("nshb", 0.9), ("nshb", 0.5)])
@pytest.mark.parametrize("B", [1, 6, 12])
def test_closed_form_matches_monte_carlo_at_a_fixed_state(method, beta, B):
    """E[||d_t - grad f||^2 | x_t, d_{t-1}] over 20,000 mini-batches of B distinct rows, within
    4 standard errors of the closed form; the with-replacement factor 1/B would be refused
    at B = 12 of n = 24 (it doubles the stochastic part, which dominates for SGD and SHB
    here; NSHB's is scaled down by (1 - beta)^2)."""
    A, e, prev = _state()
    n = A.shape[0]
    grad = A.T @ (A @ e) / n
    sigma2 = row_gradient_variance(A, e)
    c_B = float(batch_noise_factor(n, B))
    pred = expected_noise_sq(method, beta, c_B, sigma2, prev, grad)
    rng = np.random.default_rng(0)
    G = A * (A @ e)[:, None]
    K = 20000
    idx = np.argsort(rng.random((K, n)), axis=1)[:, :B]  # K uniform B-subsets
    g = G[idx].mean(axis=1)
    if method == "sgd":
        d = g
    elif method == "shb":
        d = beta * prev + g
    else:
        d = beta * prev + (1 - beta) * g
    w2 = np.sum((d - grad) ** 2, axis=1)
    se = w2.std(ddof=1) / math.sqrt(K)
    assert abs(w2.mean() - pred) <= 4 * se, (w2.mean(), pred, se)
    if B == 12 and method in ("sgd", "shb"):
        wrong = expected_noise_sq(method, beta, 1.0 / B, sigma2, prev, grad)
        assert abs(w2.mean() - wrong) > 4 * se


def test_first_step_and_bad_method():
    A, e, prev = _state()
    grad = A.T @ (A @ e) / A.shape[0]
    for m in ("sgd", "shb", "nshb"):
        assert expected_noise_sq(m, 0.9, 0.1, 2.0, None, grad) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="method"):
        expected_noise_sq("adam", 0.9, 0.1, 2.0, prev, grad)


def test_predicted_slope_and_frozen_noise_ratios():
    assert predicted_slope(10**9, [8, 32, 128]) == pytest.approx(-0.5, abs=1e-6)
    # the without-replacement factor steepens the slope where B is a sizable share of n
    assert predicted_slope(256, [8, 32, 128]) < -0.55
    assert float(frozen_noise_ratio("nshb", 0.9)) == pytest.approx(math.sqrt(0.1 / 1.9))
    assert float(frozen_noise_ratio("shb", 0.6)) == pytest.approx(1 / math.sqrt(1 - 0.36))
    assert float(frozen_noise_ratio("sgd", 0.6)) == 1.0


def test_quadratic_runs_follow_the_closed_form():
    cfg = dataclasses.replace(TINY, quad_d=8, quad_n=64, quad_steps=150, quad_seeds=4)
    q = run_quadratic(cfg)
    assert set(q["method"]) == {"sgd", "shb", "nshb"} and len(q) == 3 * 2 * 4 * 150
    r = (q["noise_sq"] / q["predicted_sq"]).to_numpy()
    se = r.std(ddof=1) / math.sqrt(r.size)
    assert abs(r.mean() - 1) <= 4 * se
    # SHB at equal effective step carries the steepest-descent direction in its gap
    late = q[q["step"] >= 100].groupby("method")["noise_sq"].mean()
    assert late["shb"] > late["sgd"] > late["nshb"]


# --------------------------------------------------------------------------- digits runs


def _reference_run(method, eff_lr, beta, B, seed, config, data):
    """One run with torch.optim.SGD itself (momentum buffer = the direction)."""
    import torch.nn.functional as F

    model = make_model(config.digits_config(), seed)
    params = list(model.parameters())
    lr = config.lr(method, eff_lr, beta)
    opt = torch.optim.SGD(
        params,
        lr=lr,
        momentum=0.0 if method == "sgd" else beta,
        dampening=beta if method == "nshb" else 0.0,
    )
    X, y = data["Xt_train"], data["yt_train"]
    from minibatch_momentum.studies.digits import derive_seed

    rng = np.random.default_rng(derive_seed(seed, B, 7))
    out = []
    for _ in range(config.steps):
        loss_full = F.cross_entropy(model(X), y)
        grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_full, params)])
        idx = torch.from_numpy(rng.choice(len(y), size=B, replace=False))
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        opt.step()
        if method == "sgd":
            d = torch.cat([p.grad.reshape(-1) for p in params])
        else:
            d = torch.cat([opt.state[p]["momentum_buffer"].reshape(-1) for p in params])
        out.append(float(((d - grad).double() ** 2).sum()))
    acc = float((model(data["Xt_test"]).argmax(1) == data["yt_test"]).double().mean())
    return np.array(out), acc


def test_batched_trainer_is_torch_optim_sgd():
    cfg = dataclasses.replace(TINY, steps=12, measure_every=1, window=1.0)
    data = load_digits_split(cfg.digits_config())
    for k in ("train", "test"):
        data[f"Xt_{k}"] = torch.from_numpy(data[f"X_{k}"])
        data[f"yt_{k}"] = torch.from_numpy(data[f"y_{k}"])
    runs = [("sgd", 0.3, 0.0, 0), ("shb", 0.3, 0.9, 1), ("nshb", 0.3, 0.5, 0)]
    rows = pd.DataFrame(_train_group(8, runs, cfg, data))
    for m, e, b, s in runs:
        ref, acc = _reference_run(m, e, b, 8, s, cfg, data)
        mine = rows[(rows["method"] == m) & (rows["step"] < cfg.steps)].sort_values("step")
        np.testing.assert_allclose(mine["noise_sq"].to_numpy(), ref, rtol=1e-4)
        end = rows[(rows["method"] == m) & (rows["step"] == cfg.steps)]
        assert float(end["test_acc"].iloc[0]) == pytest.approx(acc, abs=1e-12)


def test_run_layout_and_determinism(tiny_df):
    again = run_search_noise(TINY)
    pd.testing.assert_frame_equal(tiny_df, again)
    d = tiny_df[tiny_df["part"] == "digits"]
    # 3 variants x 1 step x 2 B x 2 seeds runs; measurements at 0, 10, 15 and the end
    assert d.groupby(["method", "batch_size", "seed"]).ngroups == 3 * 2 * 2
    assert sorted(set(d["step"])) == [0, 10, 15, 20]
    assert (d["status"] == "ok").all() and d["test_acc"].notna().sum() == 12
    shb = d[d["method"] == "shb"]
    assert np.allclose(shb["lr"], 0.1 * (1 - 0.9)) and np.allclose(shb["eff_lr"], 0.1)


def test_analysis_claims_and_figure(tiny_df, tmp_path):
    a = analyze_search_noise(tiny_df, TINY)
    claims = claims_s7(a)
    assert [(c["id"], c["method"]) for c in claims] == [
        ("S7a", "sgd"),
        ("S7b", "shb"),
        ("S7b", "nshb"),
        ("S7c", "all"),
    ]
    for c in claims:
        assert c["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"} and c["checks"]
        assert c["figure"] == "figures/seeds/search_noise.pdf"
    s7a = claims[0]
    assert s7a["checks"][0]["predicted"] == pytest.approx(predicted_slope(a["n_train"], (4, 16)))
    assert len(a["runs"]["level"]) == 12 and a["correlation"]["n_configurations"] == 6
    figures.search_noise_figure(tiny_df, a, tmp_path / "s7.pdf")
    assert (tmp_path / "s7.png").stat().st_size > 1000


# --------------------------------------------------------------------------- claims logic


@pytest.mark.parametrize(
    "ci, verdict, supports",
    [([0.3, 0.5], "PASS", "v1-v3"), ([0.8, 1.1], "FAIL", "v4"), ([1.5, 2.0], "FAIL", "v4")],
)
def test_claim_s7b_says_which_version(ci, verdict, supports):
    a = {
        "ci_level": 0.95,
        "momentum": [
            {"method": "nshb", "ratio": sum(ci) / 2, "ci": ci, "n_seeds": 4, "n_missing": 0,
             "by_beta": []},
        ],
    }  # fmt: skip
    (c,) = claim_s7b(a)
    assert c["verdict"] == verdict and c["checks"][0]["supports"].startswith(supports)
    a["momentum"][0]["n_seeds"] = 1
    assert claim_s7b(a)[0]["verdict"] == "INCONCLUSIVE"


@pytest.mark.parametrize(
    "ci, n, verdict",
    [([-0.8, -0.2], 30, "PASS"), ([-0.5, 0.1], 30, "FAIL"), ([0.2, 0.6], 30, "FAIL"),
     ([-0.9, -0.5], 4, "INCONCLUSIVE")],
)  # fmt: skip
def test_claim_s7c_needs_the_interval_below_zero(ci, n, verdict):
    a = {
        "ci_level": 0.95,
        "correlation": {"rho": sum(ci) / 2, "ci": ci, "n_configurations": n,
                        "per_method": {}, "n_diverged_runs": 0},
    }  # fmt: skip
    assert claim_s7c(a)["verdict"] == verdict


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "field, value",
    [
        ("methods", ("shb", "nshb")),
        ("methods", ("sgd", "adam")),
        ("batch_sizes", (8,)),
        ("batch_sizes", (8, 8)),
        ("batch_sizes", (0, 8)),
        ("eff_lrs", ()),
        ("eff_lrs", (-0.1,)),
        ("betas", (1.0,)),
        ("betas", (0.0,)),
        ("steps", 0),
        ("measure_every", 500),
        ("window", 0.0),
        ("window", 1.5),
        ("hidden", 0),
        ("seeds", ()),
        ("seeds", (-1,)),
        ("quad_n", 2),
        ("quad_batch_sizes", (256,)),
        ("quad_eff_lr", float("nan")),
        ("quad_seeds", 0),
        ("slope_tolerance", 0.0),
        ("ci_level", 1.0),
        ("n_boot", 10),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(SearchNoiseConfig(), **{field: value})


def test_from_dict_round_trip_presets_and_errors():
    for name in ("quick", "paper"):
        c = SearchNoiseConfig.preset(name)
        assert SearchNoiseConfig.from_dict(c.to_dict()) == c
    assert SearchNoiseConfig.from_dict({"seeds": 3}).seeds == (0, 1, 2)
    with pytest.raises(ValueError, match="unknown search_noise config field"):
        SearchNoiseConfig.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="batch_sizes"):
        SearchNoiseConfig.from_dict({"batch_sizes": 8})
    with pytest.raises(ValueError, match="preset"):
        SearchNoiseConfig.preset("huge")
    with pytest.raises(ValueError, match="batch_sizes"):
        run_search_noise(dataclasses.replace(TINY, batch_sizes=(4, 5000)))
