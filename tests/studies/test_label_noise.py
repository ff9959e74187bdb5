"""S2 (momentum scaling under label noise): problem, dynamics, fits, claim, determinism."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_claim_shape
from minibatch_momentum.figures import studies as figures
from minibatch_momentum.studies.label_noise import (
    PREDICTED_EXPONENT,
    LabelNoiseConfig,
    analyze_label_noise,
    claim_s2,
    fit_crossover,
    fit_exponent,
    run_label_noise,
)
from minibatch_momentum.studies.matrix_sensing import (
    gradient,
    heavy_ball_step,
    hessian_trace,
    loss,
    make_problem,
    project_to_manifold,
    residuals,
)

SMALL = LabelNoiseConfig(d=4, n=5)
TINY = LabelNoiseConfig(
    d=4,
    n=5,
    eta_min=2e-3,
    eta_max=8e-3,
    num_eta=3,
    one_minus_beta_min=1e-3,
    one_minus_beta_max=0.1,
    num_beta=7,
    seeds=(0, 1),
    check_every=10,
    censor_factor=3.0,
)


# --------------------------------------------------------------------------- config


def test_presets_are_valid():
    assert LabelNoiseConfig.preset("quick") == LabelNoiseConfig()
    paper = LabelNoiseConfig.preset("paper")
    assert paper.num_eta > LabelNoiseConfig().num_eta and len(paper.seeds) >= 10
    make_problem(paper)  # the paper problem has an interpolating start sharper than the teacher
    with pytest.raises(ValueError, match="preset"):
        LabelNoiseConfig.preset("medium")


@pytest.mark.parametrize(
    "field, value",
    [
        ("d", 1),
        ("n", 21),  # d = 6: d(d+1)/2 = 21 measurements leave no manifold
        ("n", 0),
        ("teacher_rank", 0),
        ("teacher_rank", 7),
        ("width", 7),
        ("init_scale", 0.0),
        ("problem_seed", -1),
        ("label_noise", 0.0),
        ("batch_size", 0),
        ("batch_size", 9),
        ("eta_min", 0.0),
        ("eta_max", 1e-5),
        ("num_eta", 0),
        ("one_minus_beta_min", 0.0),
        ("one_minus_beta_max", 2.0),
        ("one_minus_beta_max", 1e-5),
        ("num_beta", 0),
        ("seeds", ()),
        ("seeds", (1, 1)),
        ("target_fraction", 1.0),
        ("check_every", 0),
        ("censor_factor", 1.0),
        ("t_max", 0),
        ("project_iters", 0),
        ("exponent_tolerance", -0.1),
        ("ci_level", 0.0),
        ("d", 6.0),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(LabelNoiseConfig(), **{field: value})


def test_from_dict_round_trip_and_errors():
    cfg = LabelNoiseConfig.from_dict({"seeds": 4, "num_eta": 5, "batch_size": None})
    assert cfg.seeds == (0, 1, 2, 3) and cfg.num_eta == 5
    assert LabelNoiseConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="nonsense"):
        LabelNoiseConfig.from_dict({"nonsense": 0})
    with pytest.raises(ValueError, match="seeds"):
        LabelNoiseConfig.from_dict({"seeds": "all"})


# --------------------------------------------------------------------------- problem and dynamics


def test_problem_start_interpolates_and_is_sharper_than_teacher():
    p = make_problem(LabelNoiseConfig())
    assert np.max(np.abs(residuals(p, p.U0))) < 1e-10
    assert np.max(np.abs(residuals(p, p.U_teacher))) < 1e-10
    assert p.trace_start > p.trace_teacher > 0
    np.testing.assert_allclose(p.A, np.swapaxes(p.A, 1, 2))
    q = make_problem(LabelNoiseConfig())
    np.testing.assert_array_equal(p.U0, q.U0)
    r = make_problem(LabelNoiseConfig(problem_seed=2))
    assert not np.allclose(p.A, r.A)


def _torch_loss(p, U, noise=None):
    A = torch.from_numpy(p.A)
    y = torch.from_numpy(p.y) + (0 if noise is None else torch.from_numpy(noise))
    r = torch.einsum("nij,ij->n", A, U @ U.T) - y
    return 0.5 * torch.mean(r * r)


def test_hessian_trace_is_the_exact_hessian_trace_at_a_minimum():
    p = make_problem(SMALL)
    U0 = torch.from_numpy(p.U0.copy())
    H = torch.autograd.functional.hessian(
        lambda u: _torch_loss(p, u.reshape(U0.shape)), U0.reshape(-1)
    )
    assert float(torch.trace(H)) == pytest.approx(float(hessian_trace(p, p.U0)), rel=1e-10)
    assert float(loss(p, p.U0)) < 1e-20


def test_gradient_matches_autograd_with_label_noise(rng):
    p = make_problem(SMALL)
    U = p.U0 + 0.1 * rng.standard_normal(p.U0.shape)
    noise = 0.3 * rng.standard_normal(p.n)
    Ut = torch.from_numpy(U.copy()).requires_grad_(True)
    _torch_loss(p, Ut, noise).backward()
    g = gradient(p, U[None], p.A.reshape(p.n, -1), noise[None])[0]
    np.testing.assert_allclose(g, Ut.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_heavy_ball_step_is_torch_sgd_with_momentum(rng):
    p = make_problem(SMALL)
    eta, beta = 0.01, 0.9
    noises = 0.2 * rng.standard_normal((25, p.n))
    Ut = torch.from_numpy(p.U0.copy()).requires_grad_(True)
    opt = torch.optim.SGD([Ut], lr=eta, momentum=beta)
    U, v = p.U0[None].copy(), np.zeros((1, *p.U0.shape))
    Af = p.A.reshape(p.n, -1)
    for xi in noises:
        opt.zero_grad()
        _torch_loss(p, Ut, xi).backward()
        opt.step()
        U, v = heavy_ball_step(p, U, v, eta, np.array([[[beta]]]), Af, xi[None])
    np.testing.assert_allclose(U[0], Ut.detach().numpy(), rtol=1e-11, atol=1e-13)


def test_projection_returns_to_the_manifold(rng):
    p = make_problem(SMALL)
    U = p.U0[None] + 1e-2 * rng.standard_normal((3, *p.U0.shape))
    before = np.max(np.abs(residuals(p, U)))
    after = np.max(np.abs(residuals(p, project_to_manifold(p, U, iters=3))))
    assert before > 1e-3 and after < 1e-10


# --------------------------------------------------------------------------- fits


def test_fit_exponent_recovers_planted_exponent_with_ci():
    rng = np.random.default_rng(0)
    eta = np.geomspace(1e-4, 1e-2, 8)
    exact = fit_exponent(eta, 0.3 * eta ** (2 / 3))
    assert exact["exponent"] == pytest.approx(2 / 3, abs=1e-12)
    assert exact["prefactor"] == pytest.approx(0.3, rel=1e-10)
    covered, n_rep = 0, 400
    for _ in range(n_rep):
        gamma = 0.3 * eta ** (2 / 3) * np.exp(0.1 * rng.standard_normal(len(eta)))
        f = fit_exponent(eta, gamma, level=0.95)
        covered += f["ci"][0] <= 2 / 3 <= f["ci"][1]
        assert abs(f["exponent"] - 2 / 3) < 0.2
    assert 0.91 <= covered / n_rep <= 0.99  # the interval has its nominal coverage
    assert math.isnan(fit_exponent(eta[:2], eta[:2])["exponent"])


@pytest.mark.parametrize("s", [1.5, 2.0, 3.0])
def test_fit_crossover_recovers_planted_knee(s):
    rng = np.random.default_rng(1)
    gamma = np.tile(np.geomspace(1e-4, 1e-1, 19), 4)
    T = 500 * (1 + (gamma / 3e-3) ** s) * np.exp(0.05 * rng.standard_normal(gamma.size))
    T[T > 8000] = np.inf  # censored
    f = fit_crossover(gamma, T)
    assert f["ok"], f["reason"]
    assert f["gamma_c"] == pytest.approx(3e-3, rel=0.1)
    assert f["T0"] == pytest.approx(500, rel=0.05)
    assert f["s"] == pytest.approx(s, rel=0.15)


def test_fit_crossover_refuses_an_unbracketed_curve():
    gamma = np.geomspace(1e-4, 1e-1, 10)
    assert not fit_crossover(gamma, np.full(10, 300.0))["ok"]  # all plateau
    assert not fit_crossover(gamma[:3], [1.0, 2.0, 3.0])["ok"]  # too few points


def _synthetic_timing(exponent, cfg, noise=0.05, seed=0):
    """Times T = T0 (1 + (gamma/gamma_c)^2) with gamma_c = C eta^exponent, T0 ~ eta^(-2/3)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, eta in enumerate(cfg.etas):
        gc = 0.3 * eta**exponent
        T0 = 10 * eta ** (-2 / 3)
        for j, g in enumerate(cfg.one_minus_betas):
            for s in cfg.seeds:
                T = T0 * (1 + (g / gc) ** 2) * math.exp(noise * rng.standard_normal())
                reached = T <= cfg.censor_factor * T0
                rows.append(
                    {
                        "eta": eta,
                        "eta_index": i,
                        "beta": 1 - g,
                        "one_minus_beta": g,
                        "beta_index": j,
                        "seed": s,
                        "steps_to_target": T if reached else math.inf,
                        "status": "reached" if reached else "censored",
                        "trace_start": 20.0,
                        "trace_teacher": 10.0,
                        "trace_target": 15.0,
                    }
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("planted, verdict", [(2 / 3, "PASS"), (0.45, "FAIL"), (0.9, "FAIL")])
def test_analysis_recovers_planted_exponent_from_synthetic_timings(planted, verdict):
    cfg = LabelNoiseConfig()
    df = _synthetic_timing(planted, cfg)
    a = analyze_label_noise(df, cfg)
    e = a["exponent"]
    assert e["n"] == cfg.num_eta
    assert e["exponent"] == pytest.approx(planted, abs=0.03)
    if verdict == "PASS":
        assert e["ci"][0] <= planted <= e["ci"][1]
    assert a["time_exponent"]["exponent"] == pytest.approx(-2 / 3, abs=0.05)
    c = claim_s2(a)
    assert_claim_shape(c, "S2")
    assert c["verdict"] == verdict
    (ch,) = c["checks"]
    assert ch["predicted"] == pytest.approx(PREDICTED_EXPONENT)
    assert ch["measured"] == pytest.approx(e["exponent"])
    assert ch["ci"] == e["ci"] and ch["n_eta"] == cfg.num_eta


def _hand_analysis(k, ci, n=6):
    return {
        "exponent": {
            "exponent": k,
            "ci": ci,
            "stderr": 0.02,
            "r2": 0.99,
            "prefactor": 0.3,
            "n": n,
            "level": 0.95,
        },
        "exponent_tolerance": 0.1,
        "predicted_exponent": 2 / 3,
        "per_eta": [],
        "config": {"batch_size": None},
    }


@pytest.mark.parametrize(
    "k, ci, n, verdict",
    [
        (0.70, [0.65, 0.75], 6, "PASS"),
        (0.58, [0.52, 0.64], 6, "PASS"),  # inside the band, even if the CI misses 2/3
        (0.50, [0.45, 0.55], 6, "FAIL"),
        (0.80, [0.75, 0.85], 6, "FAIL"),
        (0.66, [0.30, 1.02], 6, "INCONCLUSIVE"),  # CI wider than the whole band
        (math.nan, [math.nan, math.nan], 2, "INCONCLUSIVE"),
    ],
)
def test_claim_s2_logic(k, ci, n, verdict):
    c = claim_s2(_hand_analysis(k, ci, n))
    assert c["verdict"] == verdict
    assert c["checks"][0]["pass"] is {"PASS": True, "FAIL": False, "INCONCLUSIVE": None}[verdict]


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_df():
    return run_label_noise(TINY)


def test_tiny_run_is_deterministic_and_tidy(tiny_df):
    df = tiny_df
    assert len(df) == TINY.num_eta * TINY.num_beta * len(TINY.seeds)
    assert set(df["status"]) <= {"reached", "censored", "t_max", "diverged"}
    reached = df["status"] == "reached"
    assert reached.any()
    assert np.isfinite(df.loc[reached, "steps_to_target"]).all()
    assert np.isinf(df.loc[~reached, "steps_to_target"]).all()
    assert (df.loc[reached, "trace_final"] <= df.loc[reached, "trace_target"] + 1e-12).all()
    assert (df.loc[reached, "steps_to_target"] % TINY.check_every == 0).all()
    np.testing.assert_allclose(df["beta"] + df["one_minus_beta"], 1.0)
    pd.testing.assert_frame_equal(df, run_label_noise(TINY))


def test_tiny_run_with_minibatches_and_progress():
    msgs = []
    cfg = dataclasses.replace(TINY, batch_size=3, num_eta=1, eta_min=8e-3, eta_max=8e-3)
    df = run_label_noise(cfg, progress=msgs.append)
    assert len(msgs) == 1 and "eta=" in msgs[0]
    assert len(df) == cfg.num_beta * len(cfg.seeds)
    pd.testing.assert_frame_equal(df, run_label_noise(cfg))


def test_tiny_analysis_claim_and_figure(tiny_df, tmp_path):
    a = analyze_label_noise(tiny_df, TINY)
    assert len(a["per_eta"]) == TINY.num_eta
    c = claim_s2(a)
    assert_claim_shape(c)
    out = tmp_path / "label_noise_momentum.pdf"
    figures.label_noise_figure(tiny_df, a, out)
    assert out.stat().st_size > 0 and out.with_suffix(".png").stat().st_size > 0


def test_figure_from_synthetic_timings(tmp_path):
    cfg = LabelNoiseConfig()
    df = _synthetic_timing(2 / 3, cfg)
    out = tmp_path / "s2.pdf"
    figures.label_noise_figure(df, analyze_label_noise(df, cfg), out)
    assert out.with_suffix(".png").exists()
