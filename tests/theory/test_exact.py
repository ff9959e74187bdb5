"""The exact-theory tables beside the sweeps (exact.py): each column against the theory
function it comes from, the batched curve counts against one-at-a-time counts, the T1
table against the engine, and the theory/montecarlo commands with any sampler and either
noise model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import method_grids
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.problems.system import from_matrix, from_psd, spectrum
from minibatch_momentum.simulate import montecarlo
from minibatch_momentum.simulate.engine import monte_carlo
from minibatch_momentum.theory import exact
from minibatch_momentum.theory.closure import Closure
from minibatch_momentum.theory.dense import dense_curve
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.rule import rule_for_spectrum
from minibatch_momentum.theory.sampler import closure_model, sampler_curve
from minibatch_momentum.theory.tuning import batch_scaling, knee_batch, optimal_parameters


@pytest.fixture(scope="module")
def problem():
    return gaussian_system(d=8, n=400, kappa=50.0, seed=2)


@pytest.mark.parametrize("replace", [True, False])
def test_gaussian_iterations_many_equals_one_at_a_time(replace):
    lam = spectrum(12, 200.0)
    w = 1.0 / lam
    cases = [("hb", 1, 0.02, 0.9), ("hb", 16, 0.3, 0.8), ("hb", 4, 3.0, 0.1)]  # last diverges
    many = Gaussian(lam, n=500, replace=replace).iterations_many(
        w,
        "hb",
        [c[1] for c in cases],
        [c[2] for c in cases],
        [c[3] for c in cases],
        1e-4,
        t_max=20000,
    )
    one = [
        Gaussian(lam, n=500, replace=replace).iterations(w, m, B, e, b, 1e-4, t_max=20000)
        for m, B, e, b in cases
    ]
    np.testing.assert_array_equal(many, one)
    assert np.isinf(many[-1]) and np.all(np.isfinite(many[:-1]))
    # "dist" and a scalar batch size broadcast against arrays of parameters
    d = Gaussian(lam).iterations_many(w, "nag", 8, [0.1, 0.2], [0.8, 0.7], 1e-3, measure="dist")
    assert list(d) == [
        Gaussian(lam).iterations(w, "nag", 8, e, b, 1e-3, measure="dist")
        for e, b in [(0.1, 0.8), (0.2, 0.7)]
    ]


@pytest.mark.parametrize("closure", [False, True])
def test_methods_and_censoring_groups_stepped_together_count_as_alone(closure):
    """Mixed methods in one recursion, and a censoring clock per group: each group's
    counts equal its own call's (what lets grid_table step every grid at once)."""
    prob = gaussian_system(d=6, n=300, kappa=80.0, seed=4)
    lam, w = prob.eigvals, exact.initial_weights(prob)
    model = closure_model(prob, "kaczmarz") if closure else Gaussian(lam, n=300)
    eta = np.geomspace(0.05, 1.9, 6) / lam.max()
    groups = [("sgd", 1, 0.0), ("hb", 1, 0.9), ("nag", 8, 0.7), ("hb", 32, 0.5)]

    def count(method, B, e, b, **kw):
        return model.iterations_many(w, method, B, e, b, 1e-4, **kw)

    alone = [count(m, B, eta, np.full(6, b), censor_factor=1.5) for m, B, b in groups]
    label = np.repeat(np.arange(4), 6)
    together = count(
        np.repeat([g[0] for g in groups], 6),
        np.repeat([g[1] for g in groups], 6),
        np.tile(eta, 4),
        np.repeat([g[2] for g in groups], 6),
        censor_factor=1.5,
        groups=label,
    )
    np.testing.assert_array_equal(together, np.concatenate(alone))
    assert all(np.isinf(a).any() and np.isfinite(a).any() for a in alone)  # some censored
    with pytest.raises(ValueError, match="sgd"):  # each method's own parameter checks
        count(np.array(["sgd", "hb"]), 1, eta[:2], [0.5, 0.5])


def test_grid_table_tunes_each_method_and_batch_as_alone(problem):
    grid = dict(eta_min=0.05, eta_max=3.0, num_eta=5, one_minus_beta_max=0.5, num_beta=3)
    model, w, grids = method_grids(problem, [1, 4, 64], **grid)
    kw = dict(check_every=10, censor_factor=2.0)
    together = exact.grid_table(model, w, grids, 1e-4, **kw)
    alone = pd.concat(
        [
            exact.grid_table(model, w, {m: ([B], eta, beta)}, 1e-4, **kw)
            for m, (sizes, eta, beta) in grids.items()
            for B in sizes
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(together, alone)
    assert (together["T_curve"] % 10 == 0).all() and np.isfinite(together["T_curve"]).all()
    # only points inside each method's stability region are tuned on (eta L = 3 is out)
    assert (together["stable_points"] < [5 if m == "sgd" else 15 for m in together["method"]]).all()


def test_batch_scaling_table_columns_come_from_the_theory(problem):
    lam, n = problem.eigvals, problem.n
    w = exact.initial_weights(problem)
    np.testing.assert_allclose(w, (problem.eigvecs.T @ problem.x_star) ** 2)
    Bs = [1, 4, 32]
    rule = {"hb": {"noise_line": "trace", "form": "harmonic"}}
    df = exact.batch_scaling_table(
        Gaussian(lam, n=n, replace=False), w, ["sgd", "hb"], Bs, 1e-3, rule=rule
    )
    assert list(df["method"]) == ["sgd"] * 3 + ["hb"] * 3
    hb = df[df["method"] == "hb"].reset_index(drop=True)
    ref = batch_scaling(Gaussian(lam, n=n, replace=False), "hb", Bs, eps=1e-3)
    np.testing.assert_allclose(hb["rho"], ref.rho, rtol=1e-12)
    np.testing.assert_allclose(hb["T_rate"], ref.iterations, rtol=1e-12)
    for i, B in enumerate(Bs):
        assert hb["T_curve"][i] == Gaussian(lam, n=n, replace=False).iterations(
            w, "hb", B, hb["eta"][i], hb["beta"][i], 1e-3
        )
        e, b = rule_for_spectrum("hb", B, lam, n=n, replace=False)
        assert (hb["rule_eta"][i], hb["rule_beta"][i]) == (e, b)
        assert hb["rule_rho"][i] == Gaussian(lam, n=n, replace=False).rate("hb", B, e, b)
    # the rate-optimal point's asymptotic count is never beaten by the rule's
    assert np.all(hb["rule_T_rate"] >= hb["T_rate"] * (1 - 1e-9))
    assert df.loc[df["method"] == "sgd", "rule_eta"].isna().all()  # no rule asked for sgd


def test_knees_and_heatmap_batches(problem):
    k = exact.knees(Gaussian(problem.eigvals, n=problem.n, replace=False), ["sgd", "hb"])
    assert k["sgd"] == knee_batch(Gaussian(problem.eigvals, n=problem.n, replace=False), "sgd")
    assert set(k) == {"sgd", "hb"}
    Bs = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    assert exact.heatmap_batches(Bs, 8.08, 517.0) == [8, 128, 2048]
    assert exact.heatmap_batches(Bs, 8.08, 517.0, targets=[3, 3.1]) == [4]
    assert exact.heatmap_batches([1, 2], 50.0, 500.0) == [2]


def test_rate_map_table(problem):
    df = exact.rate_map_table(
        Gaussian(problem.eigvals, n=problem.n, replace=False),
        "hb",
        [2, 16],
        eta_min=0.01,
        eta_max=3.0,
        num_eta=4,
        one_minus_beta_min=0.01,
        one_minus_beta_max=1.0,
        num_beta=3,
    )
    assert len(df) == 2 * 4 * 3 and set(df["batch_size"]) == {2, 16}
    L = problem.eigvals[-1]
    np.testing.assert_allclose(np.unique(df["eta"] * L), np.geomspace(0.01, 3.0, 4))
    assert df["beta"].min() == 0.0  # 1 - beta up to 1: heavy ball at beta = 0 is SGD
    row = df.iloc[5]
    assert row["rho"] == Gaussian(problem.eigvals, n=problem.n, replace=False).rate(
        "hb", row["batch_size"], row["eta"], row["beta"]
    )
    assert (df["rho"] >= 1).any() and (df["rho"] < 1).any()


def test_exact_vs_monte_carlo_table(problem):
    B, runs, steps = 4, 300, 60
    eta, beta = rule_for_spectrum("hb", B, problem.eigvals, n=problem.n, replace=False)
    mc = monte_carlo(problem, "hb", B, eta, beta, runs, steps, seed=3)
    df = montecarlo.exact_vs_monte_carlo(mc, confidence=0.99)
    assert list(df["step"]) == list(range(steps + 1)) and (df["runs"] == runs).all()
    ref = dense_curve(problem.A, problem.x_star, "hb", B, eta, beta, steps, replace=False)
    np.testing.assert_allclose(df["exact"], ref.loss / ref.loss[0], rtol=1e-12)
    assert df["exact"][0] == df["mc_mean"][0] == 1.0
    z = 2.5758293035489004
    np.testing.assert_allclose(df["upper"] - df["mc_mean"], z * df["mc_stderr"], rtol=1e-12)
    # the exact curve lies in the band; the noise-free control (with this much noise) does not
    inside = (df["exact"] >= df["lower"]) & (df["exact"] <= df["upper"])
    assert inside[1:].mean() >= 0.9
    outside = (df["noise_free"] < df["lower"]) | (df["noise_free"] > df["upper"])
    assert outside[1:].mean() > 0.5
    assert np.max(np.abs(df["gaussian"] / df["exact"] - 1)) < 0.2


# ------------------------------------------------------------------------------------
# Any sampler, and the moment closure as the noise model
# ------------------------------------------------------------------------------------


def uneven_rows(d=6, n=60, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)) * np.exp(np.linspace(-0.8, 0.8, n))[:, None]
    return from_matrix(A, rng.standard_normal(d))


def psd_problem(d=6, seed=1):
    g = gaussian_system(d, 8 * d, 30.0, seed=seed)
    return from_psd(g.H, g.x_star)


def test_sampler_info_and_noise_models(problem):
    assert exact.sampler_info(problem, "without_replacement") == (problem.n, False)
    assert exact.sampler_info(problem, "with_replacement") == (problem.n, True)
    assert exact.sampler_info(problem, "kaczmarz") == (problem.n, True)
    assert exact.sampler_info(psd_problem(), "coordinate") == (6, True)
    with pytest.raises(ValueError, match="no closed-form noise operator"):
        exact.sampler_info(problem, "kaczmarz_block")
    gauss = exact.noise_model(problem, "kaczmarz", "gaussian")
    assert isinstance(gauss, Gaussian) and (gauss.n, gauss.replace) == (problem.n, True)
    assert isinstance(exact.noise_model(problem, "kaczmarz", "moments"), Closure)
    with pytest.raises(ValueError, match="noise"):
        exact.noise_model(problem, "kaczmarz", "student")


@pytest.mark.parametrize("sampler", ["kaczmarz", "coordinate"])
def test_tables_with_the_moment_closure_come_from_the_closure(sampler):
    prob = psd_problem() if sampler == "coordinate" else uneven_rows()
    lam, w = prob.eigvals, exact.initial_weights(prob)
    m, replace = exact.sampler_info(prob, sampler)
    closure = exact.noise_model(prob, sampler, "moments")
    Bs = [1, 4, 16]
    rule = {"hb": {"noise_line": "trace", "form": "harmonic"}}
    df = exact.batch_scaling_table(closure, w, ["hb"], Bs, 1e-3, rule=rule)
    ref = batch_scaling(closure, "hb", Bs, eps=1e-3)
    np.testing.assert_allclose(df["rho"], ref.rho, rtol=1e-12)
    for i, B in enumerate(Bs):
        assert df["T_curve"][i] == closure.iterations(
            w, "hb", B, df["eta"][i], df["beta"][i], 1e-3, t_max=exact.T_MAX
        )
        e, b = rule_for_spectrum("hb", B, lam, n=m, replace=replace)
        assert (df["rule_eta"][i], df["rule_beta"][i]) == (e, b)
        assert df["rule_rho"][i] == closure.rate("hb", B, e, b)
    k = exact.knees(closure, ["hb"])
    assert k["hb"] == knee_batch(closure, "hb")
    rho = exact.rate_map(closure, "hb", 4, [0.1, 5.0], [0.5, 0.5])
    assert rho[0] == closure.rate("hb", 4, 0.1, 0.5) and rho[1] >= 1


@pytest.mark.parametrize("sampler", ["kaczmarz", "coordinate"])
def test_exact_vs_monte_carlo_for_any_sampler(sampler):
    prob = psd_problem() if sampler == "coordinate" else uneven_rows()
    B, runs, steps = 2, 400, 50
    m, replace = exact.sampler_info(prob, sampler)
    eta, beta = rule_for_spectrum("hb", B, prob.eigvals, n=m, replace=replace)
    mc = monte_carlo(prob, "hb", B, eta, beta, runs, steps, seed=5, sampler=sampler)
    df = montecarlo.exact_vs_monte_carlo(mc)
    assert (df["sampler"] == sampler).all() and list(df["step"]) == list(range(steps + 1))
    ref = sampler_curve(prob, sampler, "hb", B, eta, beta, steps).loss
    np.testing.assert_allclose(df["exact"], ref / ref[0], rtol=1e-12)
    w = exact.initial_weights(prob)
    cl = closure_model(prob, sampler).curve(w, "hb", B, eta, beta, steps)
    np.testing.assert_allclose(df["closure"], cl.loss / cl.loss[0], rtol=1e-12)
    ga = Gaussian(prob.eigvals, n=m, replace=replace).curve(w, "hb", B, eta, beta, steps)
    np.testing.assert_allclose(df["gaussian"], ga.loss / ga.loss[0], rtol=1e-12)
    inside = (df["exact"] >= df["lower"]) & (df["exact"] <= df["upper"])
    assert inside[1:].mean() >= 0.9
    with pytest.raises(ValueError, match="no closed-form noise operator"):
        montecarlo.exact_vs_monte_carlo(
            monte_carlo(uneven_rows(), "hb", 2, 0.1, 0.5, 4, 3, sampler="kaczmarz_block")
        )


# ------------------------------------------------------------------------------------
# The theory and montecarlo commands with any sampler and either noise model
# ------------------------------------------------------------------------------------

THEORY_SPEC = {
    "methods": ["sgd", "hb"],
    "batch_sizes": [1, 4, 16],
    "eps": 1e-3,
    "rule": {"form": "harmonic", "noise_line": {"sgd": "trace", "hb": "trace"}},
    "heatmap": {"method": "hb", "batch_sizes": [4], "num_eta": 3, "num_beta": 2},
}


@pytest.fixture(scope="module")
def problem_files(tmp_path_factory):
    from minibatch_momentum.problems.system import save_problem

    folder = tmp_path_factory.mktemp("problems")
    files = {"rows": folder / "rows.npz", "psd": folder / "psd.npz"}
    save_problem(uneven_rows(), files["rows"])
    save_problem(psd_problem(), files["psd"])
    return files


@pytest.mark.parametrize(
    "kind,sampler,noise",
    [("rows", "kaczmarz", "moments"), ("psd", "coordinate", "moments"), ("rows", "kaczmarz", None)],
)
def test_theory_command_any_sampler(tmp_path, mbm, problem_files, kind, sampler, noise):
    from minibatch_momentum.problems.system import load_problem

    spec = {**THEORY_SPEC, "sampler": sampler, **({"noise": noise} if noise else {})}
    out = tmp_path / "theory"
    argv = ["theory", "--problem", str(problem_files[kind]), "--spec", json.dumps(spec)]
    code, lines = mbm([*argv, "--out-dir", str(out)])
    assert code == 0, lines
    th = exact.read_theory(out)
    prob = load_problem(problem_files[kind])
    m, replace = exact.sampler_info(prob, sampler)
    info = th["info"]
    assert info["noise"] == (noise or "gaussian")
    assert info["sampling"] == {"sampler": sampler, "m": m, "replace": replace}
    row = th["tstar"][(th["tstar"]["method"] == "hb") & (th["tstar"]["batch_size"] == 4)].iloc[0]
    if noise == "moments":
        assert "moment closure" in info["noise_model"]
        closure = closure_model(prob, sampler)
        assert row["rho"] == pytest.approx(optimal_parameters(closure, "hb", 4).rho, rel=1e-12)
        assert info["knees"]["hb"] == pytest.approx(knee_batch(closure, "hb"))
    else:
        assert "gaussian rows" in info["noise_model"]
        opt = optimal_parameters(Gaussian(prob.eigvals, n=m, replace=replace), "hb", 4)
        assert row["rho"] == pytest.approx(opt.rho, rel=1e-12)
    assert (row["rule_eta"], row["rule_beta"]) == rule_for_spectrum(
        "hb", 4, prob.eigvals, n=m, replace=replace
    )


def test_gaussian_noise_is_the_default_and_unchanged(tmp_path, mbm, problem_files):
    """``noise: gaussian`` spelled out gives the same tables as no ``noise`` key, and those
    are the Gaussian closed form's with this problem's n (uniform sampler)."""
    tables = []
    for extra in ({}, {"noise": "gaussian"}):
        spec = {**THEORY_SPEC, "sampler": "without_replacement", **extra}
        out = tmp_path / f"theory{len(tables)}"
        argv = ["theory", "--problem", str(problem_files["rows"]), "--spec", json.dumps(spec)]
        assert mbm([*argv, "--out-dir", str(out)])[0] == 0
        tables.append(exact.read_theory(out))
    a, b = tables
    assert a["tstar"].equals(b["tstar"]) and a["rate_maps"].equals(b["rate_maps"])
    assert a["info"]["knees"] == b["info"]["knees"]
    prob = uneven_rows()
    ref = exact.batch_scaling_table(
        Gaussian(prob.eigvals, n=prob.n, replace=False),
        exact.initial_weights(prob),
        ["sgd", "hb"],
        [1, 4, 16],
        1e-3,
        rule={
            "sgd": {"noise_line": "trace", "form": "harmonic"},
            "hb": {"noise_line": "trace", "form": "harmonic"},
        },
    )
    np.testing.assert_array_equal(a["tstar"]["rho"], ref["rho"])
    np.testing.assert_array_equal(a["tstar"]["T_curve"], ref["T_curve"])


@pytest.mark.parametrize(
    "kind,change,field",
    [
        ("rows", {"sampler": "kaczmarz_block"}, "no closed-form noise operator"),
        ("rows", {"sampler": "coordinate"}, "sampler"),  # a rows problem
        ("psd", {"sampler": "kaczmarz"}, "sampler"),  # a psd problem
        ("rows", {"sampler": "block"}, "sampler"),
        ("rows", {"noise": "student"}, "noise"),
    ],
)
def test_theory_command_rejects_with_a_clear_message(
    tmp_path, mbm, problem_files, kind, change, field
):
    out = tmp_path / "theory"
    spec = json.dumps({**THEORY_SPEC, **change})
    argv = ["theory", "--problem", str(problem_files[kind]), "--spec", spec, "--out-dir", str(out)]
    code, lines = mbm(argv)
    assert code == 2 and len(lines) == 1 and field in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("noise", ["gaussian", "moments"])
def test_montecarlo_command_coordinate_descent(tmp_path, mbm, problem_files, noise):
    import pyarrow.parquet as pq

    spec = {
        "sampler": "coordinate",
        "noise": noise,
        "eps": 1e-2,
        "rule": THEORY_SPEC["rule"],
        "t1": {"methods": ["hb"], "batch_size": 2, "runs": 40, "max_steps": 30, "confidence": 0.99},
    }
    out = tmp_path / "mc.parquet"
    argv = ["montecarlo", "--problem", str(problem_files["psd"]), "--spec", json.dumps(spec)]
    code, lines = mbm([*argv, "--out", str(out)])
    assert code == 0, lines
    df = pq.read_table(out).to_pandas()
    assert (df["sampler"] == "coordinate").all() and df["step"].max() <= 30
    assert {"exact", "closure", "gaussian", "noise_free", "mc_mean", "lower", "upper"} <= set(df)
    bad = {**spec, "sampler": "kaczmarz_block"}
    argv = ["montecarlo", "--problem", str(problem_files["rows"]), "--spec", json.dumps(bad)]
    code, lines = mbm([*argv, "--out", str(tmp_path / "bad.parquet")])
    assert code == 2 and "no closed-form noise operator" in lines[0]
