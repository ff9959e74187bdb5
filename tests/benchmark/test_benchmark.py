"""``mbm benchmark``: the peers compute what the engine computes, every function returns
well-formed results on tiny sizes, and the JAX comparison skips cleanly without JAX.
No timing is asserted (machines are noisy); the paper profile's config is checked here
too, since the benchmark extrapolates from it."""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import validate

from conftest import REPO_ROOT
from minibatch_momentum.benchmark.command import add_arguments
from minibatch_momentum.benchmark.cost import GPUAssumptions, product_flops
from minibatch_momentum.benchmark.cost_study import (
    CostSpec,
    cost_study,
    loglog_slope,
    sampler_seconds,
)
from minibatch_momentum.benchmark.extrapolation import profile_estimate
from minibatch_momentum.benchmark.job_times import job_times
from minibatch_momentum.benchmark.peers import (
    gemm_peak,
    hand_loop,
    jax_status,
    jax_sweep,
    naive_loop,
)
from minibatch_momentum.benchmark.throughput import BenchmarkSpec, run
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.simulate.engine import StopRule, run_grid

TINY = BenchmarkSpec(
    n=256,
    d=8,
    kappa=20,
    batch_sizes=(1, 64),
    num_eta=2,
    num_beta=2,
    steps=40,
    check_every=10,
    naive_runs=1,
    hand_runs=2,
    gemm_size=32,
)
TINY_COST = CostSpec(
    n=256,
    d=8,
    R=4,
    batch_size=8,
    d_values=(4, 8),
    R_values=(2, 4),
    shard_counts=(1, 2),
    steps=20,
    repeats=1,
)
PAPER = REPO_ROOT / "workflow" / "config" / "paper.yaml"
SCHEMA = REPO_ROOT / "workflow" / "config" / "schema.yaml"


@pytest.fixture(scope="module")
def problem():
    return gaussian_system(6, 64, 10, seed=3)


def _engine_final(problem, method, B, eta, beta, steps, check_every=10):
    stop = StopRule(eps=1e-30, t_max=steps, check_every=check_every)
    res = run_grid(problem, method, B, eta, beta, seed=0, stop=stop, device="cpu")
    return res.final_loss


@pytest.mark.parametrize("method, beta", [("sgd", 0.0), ("hb", 0.7), ("nag", 0.7)])
def test_hand_written_loop_equals_the_engine_and_torch_optim(problem, method, beta):
    eta = 0.05 / float(problem.eigvals.sum())
    args = (problem, method, 4, eta, beta, 0, 60, 10, torch.float64)
    hand = hand_loop(*args)
    engine = _engine_final(problem, method, 4, [eta], [beta], 60)[0]
    assert hand == pytest.approx(engine, rel=1e-10)
    if method != "nag":  # torch.optim's Nesterov parameter is the look-ahead point y, not x
        assert hand == pytest.approx(naive_loop(*args), rel=1e-10)
    assert 0 < hand < 1


def test_run_returns_well_formed_rows_without_jax(capsys):
    res = run(TINY, use_jax=False)
    assert [r["B"] for r in res["rows"]] == list(TINY.batch_sizes)
    for r in res["rows"]:
        for key in ("engine", "naive", "hand", "ratio", "ratio_hand", "engine_gflops"):
            assert math.isfinite(r[key]) and r[key] > 0, key
        assert r["jax"] is None and r["ratio_jax"] is None
        assert r["loss_agrees"] is True
    assert res["jax"].startswith("disabled")
    assert res["peak_fraction_b64"]["min"] > 0
    assert res["gemm_peak"]["gflops"] > 0
    out = capsys.readouterr().out
    assert "skipped" in out and "whole sweep" in out and "GEMM peak" in out


def test_jax_comparison_skips_cleanly_without_jax(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now raises ImportError
    assert jax_status() is not None
    res = run(TINY, use_jax=True)
    assert res["jax"] != "ok" and "Error" in res["jax"]
    assert all(r["jax"] is None for r in res["rows"])
    assert "ratio_jax" not in res
    assert "JAX not available" in capsys.readouterr().out
    peak = gemm_peak("float64", 32, repeats=1, use_jax=True)
    assert "jax" not in peak["by_library"]


def test_jax_sweep_equals_the_engine(problem):
    pytest.importorskip("jax")
    from minibatch_momentum.sampling.batches import MiniBatches

    eta = np.array([0.02, 0.05]) / float(problem.eigvals.sum())
    beta = np.array([0.5, 0.8])
    batches = MiniBatches(problem.n, 4, 0).take(40).numpy()
    for method in ("hb", "nag"):
        final, t_run, t_compile = jax_sweep(problem, method, 4, eta, beta, batches, 10)
        assert t_run > 0 and t_compile > 0
        np.testing.assert_allclose(
            final, _engine_final(problem, method, 4, eta, beta, 40), rtol=1e-8
        )
    import jax

    assert not jax.config.read("jax_enable_x64")  # restored after the float64 sweep


def test_gemm_peak_is_well_formed():
    peak = gemm_peak("float32", 32, repeats=2)
    assert peak["gflops"] > 0 and peak["best"] in peak["by_library"]
    assert peak["gflops"] == max(peak["by_library"].values())
    assert "torch" in peak["by_library"]


def test_product_flops_takes_the_cheaper_form():
    assert product_flops(1, 64, 250) == 4 * 1 * 64 * 250
    big = product_flops(4096, 16, 400)  # Gram form: 2 B d^2 + 2 d^2 R < 4 B d R
    assert big == 2 * 4096 * 16 * 16 + 2 * 16 * 16 * 400 < 4 * 4096 * 16 * 400


def test_loglog_slope():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert loglog_slope(x, 3 * x) == pytest.approx(1.0)
    assert loglog_slope(x, x**2) == pytest.approx(2.0)
    assert math.isnan(loglog_slope([2.0], [1.0]))


def test_cost_study_is_well_formed(capsys):
    res = cost_study(TINY_COST)
    assert [x for x, _ in res["by_d"]] == list(TINY_COST.d_values)
    assert [x for x, _ in res["by_R"]] == list(TINY_COST.R_values)
    assert [x for x, _ in res["by_shards"]] == list(TINY_COST.shard_counts)
    assert all(t > 0 for rows in ("by_d", "by_R", "by_shards") for _, t in res[rows])
    assert set(res["slopes"]) == {"d", "R", "shards"}
    assert all(math.isfinite(v) for v in res["slopes"].values())
    assert res["model"]["overhead_s"] >= 0 and res["model"]["flops_per_s"] > 0
    assert "log-log slope" in capsys.readouterr().out


def test_sampler_seconds_is_positive():
    assert sampler_seconds(64, 8, steps=10, repeats=2) > 0
    with pytest.raises(ValueError, match="exceeds"):
        sampler_seconds(4, 8)


def _config(**problems):
    return {
        "problems": problems,
        "sweep": {
            "methods": ["sgd", "hb"],
            "samplers": ["without_replacement"],
            "batch_sizes": [1, 4, 16],
            "seeds": 3,
            "grid": {"num_eta": 5, "num_beta": 4},
            "stop": {"eps": 1e-4, "t_max": 1000, "check_every": 10, "censor_factor": 2.0},
        },
    }


def test_profile_estimate_counts_steps_and_shards(capsys):
    cfg = _config(a={"family": "gaussian", "d": 16, "n": 64, "kappa": 10, "seed": 0})
    T = {"sgd": [800.0, 300.0, np.inf], "hb": [100.0, 40.0, 30.0]}
    model = {"overhead_s": 1e-5, "flops_per_s": 1e9}
    gpu = GPUAssumptions(latency_s=1e-4, flops_per_s=1e12, startup_s=0.0)
    res = profile_estimate(
        cfg,
        model,
        gpu,
        theory_fn=lambda lam, method, Bs, eps, n, replace: T[method],
        sampler_fn=lambda n, B, replace: 0.0,
    )
    shards = res["shards"]
    assert len(shards) == 2 * 3
    steps = {(s["method"], s["B"]): s["steps"] for s in shards}
    assert steps == {
        ("sgd", 1): 1000,  # 2 x 800 capped at t_max
        ("sgd", 4): 600,
        ("sgd", 16): 1000,  # no finite count: runs to t_max
        ("hb", 1): 200,
        ("hb", 4): 80,
        ("hb", 16): 60,
    }
    assert [s["R"] for s in shards if s["B"] == 1] == [6, 21]
    sgd1 = shards[0]
    assert sgd1["capped"] and sgd1["gpu_s"] == pytest.approx(3 * 1000 * 1e-4)
    flops = product_flops(1, 16, 6)
    assert sgd1["cpu_s"] == pytest.approx(3 * 1000 * (1e-5 + flops / 1e9))
    assert res["total_gpu_s"] == pytest.approx(sum(s["gpu_s"] for s in shards))
    assert "EXTRAPOLATION" in capsys.readouterr().out


def test_profile_estimate_follows_studies_and_skips_data_problems(capsys):
    cfg = _config(
        a={"family": "gaussian", "d": 16, "n": 64, "kappa": 10, "seed": 0},
        b={"family": "gaussian", "d": 8, "n": 64, "profile": "power", "alpha": 1.0, "seed": 0},
        c={"family": "digits_kernel", "n_samples": 64, "gamma": 1.0},
    )
    cfg["studies"] = {
        "b": {"samplers": ["with_replacement"], "batch_sizes": [2]},
        "c": {"samplers": ["without_replacement"]},
    }
    res = profile_estimate(
        cfg,
        {"overhead_s": 0.0, "flops_per_s": 1e9},
        theory_fn=lambda lam, method, Bs, eps, n, replace: [10.0] * len(Bs),
        sampler_fn=lambda n, B, replace: 0.0,
    )
    assert {(s["problem"], s["sampler"], s["B"]) for s in res["shards"]} == {
        ("b", "with_replacement", 2)
    }
    assert res["skipped"] == ["c"]


def test_add_arguments_and_defaults():
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--cost", "--config", "x.yaml", "--gpu-tflops", "50", "--no-jax"])
    assert args.cost and not args.quick and args.config == "x.yaml"
    assert args.gpu_tflops == 50 and args.no_jax
    assert p.parse_args([]).gpu_latency_us == pytest.approx(60.0)
    with pytest.raises(SystemExit):
        p.parse_args(["--quick", "--cost"])


# ------------------------------------------------------------------ the paper profile


def test_paper_profile_is_valid_and_paper_sized():
    cfg = yaml.safe_load(PAPER.read_text())
    validate(cfg, str(SCHEMA))
    assert cfg["device"] == "cuda"
    sweep = cfg["sweep"]
    assert sweep["seeds"] >= 10
    assert sweep["batch_sizes"] == [2**k for k in range(15)]
    assert sweep["grid"]["num_eta"] * sweep["grid"]["num_beta"] >= 400
    assert cfg["theory"]["t1"]["methods"] == []
    for p in cfg["problems"].values():
        assert p["d"] >= 1000
        assert p["n"] >= max(sweep["batch_sizes"])  # without replacement
        assert 8 * p["n"] * p["d"] < 2**30  # the float64 problem file stays under 1 GiB
    for system in ("large_batch", "label_noise", "threshold"):
        assert cfg["seeds"][system]["preset"] == "paper"


def test_paper_profile_baselines_are_the_paper_preset():
    from minibatch_momentum.studies.baselines import BaselinesConfig

    cfg = yaml.safe_load(PAPER.read_text())
    mine = BaselinesConfig.from_dict(cfg["seeds"]["baselines"])
    assert mine == BaselinesConfig.preset("paper")


def test_paper_profile_estimate_runs_on_stubs(capsys):
    cfg = yaml.safe_load(PAPER.read_text())
    res = profile_estimate(
        cfg,
        {"overhead_s": 1e-5, "flops_per_s": 1e10},
        theory_fn=lambda lam, method, Bs, eps, n, replace: [1e3] * len(Bs),
        sampler_fn=lambda n, B, replace: 0.0,
    )
    studies = cfg.get("studies") or {p: {} for p in cfg["problems"]}
    sweep = cfg["sweep"]
    shards = sum(
        len(s.get("samplers", sweep["samplers"])) * len(s.get("batch_sizes", sweep["batch_sizes"]))
        for s in studies.values()
    )
    assert len(res["shards"]) == shards * len(sweep["methods"])


def test_job_times_sums_the_benchmark_files_by_rule(tmp_path, capsys):
    header = "s\th:m:s\tmax_rss\tcpu_time\n"
    files = {
        "sweep/gaussian/hb/B1.tsv": 2.0,
        "sweep/gaussian/hb/B2.tsv": 4.0,
        "theory/gaussian/without_replacement.tsv": 10.0,
        "problem/gaussian.tsv": 1.0,
    }
    for rel, sec in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{sec}\t0:00:0{int(sec) % 10}\t1\t{sec / 2}\n")
    out = job_times(tmp_path)
    assert list(out) == ["theory", "sweep", "problem"]  # largest total first
    assert out["sweep"]["jobs"] == 2 and out["sweep"]["total_s"] == 6.0
    assert out["sweep"]["median_s"] == 3.0 and out["sweep"]["max_s"] == 4.0
    assert out["sweep"]["cpu_s"] == 3.0
    assert sum(r["share"] for r in out.values()) == pytest.approx(1.0)
    assert "theory" in capsys.readouterr().out
    assert job_times(tmp_path / "missing") == {}
