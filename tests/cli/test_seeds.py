"""``mbm seed ...`` and ``mbm claims --extra`` on tiny inputs: files in, files out; bad
specs exit 2 naming the field and write nothing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from minibatch_momentum.cli import main
from minibatch_momentum.cli.seeds import read_claims_file, restore_floats
from minibatch_momentum.io import read_json, read_metadata

PROBLEM_SPEC = {"family": "gaussian", "d": 6, "n": 64, "kappa": 30, "seed": 2}
STOP = {"eps": 1e-3, "t_max": 5000, "check_every": 10}
GRID = {
    "eta_min": 0.05,
    "eta_max": 2.0,
    "num_eta": 8,
    "one_minus_beta_min": 0.05,
    "one_minus_beta_max": 0.5,
    "num_beta": 3,
}
BATCHES = (1, 2, 4, 8, 32)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A tiny problem, SGD and heavy-ball sweeps at a few batch sizes, and their summary."""
    root = tmp_path_factory.mktemp("seed_cli")
    problem = root / "tiny.npz"
    assert main(["problem", "--spec", json.dumps(PROBLEM_SPEC), "--out", str(problem)]) == 0
    shards = []
    for method in ("sgd", "hb"):
        spec = {
            "problem": "tiny",
            "method": method,
            "batch_sizes": list(BATCHES),
            "seeds": 2,
            "grid": GRID,
            "stop": STOP,
        }
        out = root / "runs" / f"{method}.parquet"
        argv = ["sweep", "--problem", str(problem), "--spec", json.dumps(spec)]
        assert main([*argv, "--out", str(out), "--device", "cpu"]) == 0
        shards.append(out)
    summary = root / "summary"
    runs = [str(s) for s in shards]
    argv = ["summarize", "--problem", str(problem), "--runs", *runs, "--out-dir", str(summary)]
    assert main(argv) == 0
    return {"root": root, "problem": problem, "shards": shards, "summary": summary}


def outputs(tmp_path, name):
    return [
        "--out",
        str(tmp_path / f"{name}.parquet"),
        "--claims",
        str(tmp_path / f"{name}.c.json"),
    ]


def figure(tmp_path, fig, name):
    pdf = tmp_path / f"{fig}.pdf"
    argv = ["seed", "figure", fig, "--data", str(tmp_path / f"{name}.parquet")]
    assert main([*argv, "--claims", str(tmp_path / f"{name}.c.json"), "--out", str(pdf)]) == 0
    assert pdf.stat().st_size > 1000 and pdf.with_suffix(".png").stat().st_size > 1000


def check_claims_file(path, ids):
    claims, analysis = read_claims_file(path)
    assert [c["id"] for c in claims] == ids and analysis
    for c in claims:
        assert c["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"} and c["checks"]
    return claims, analysis


# --------------------------------------------------------------------------- each system

TINY_THRESHOLD = {
    "preset": "quick",
    "overrides": {"kappa_min": 30.0, "kappa_max": 300.0, "num_kappa": 3, "stable_rank": 4.0},
}


def test_seed_threshold_command_and_figure(tmp_path):
    argv = ["seed", "threshold", "--spec", json.dumps(TINY_THRESHOLD)]
    assert main([*argv, *outputs(tmp_path, "threshold")]) == 0
    df = pd.read_parquet(tmp_path / "threshold.parquet")
    assert len(df) == 3 and {"b_speedup", "b_accel", "curve_B"} <= set(df)
    meta = read_metadata(tmp_path / "threshold.parquet")
    assert meta["spec"] == TINY_THRESHOLD and meta["config"]["num_kappa"] == 3
    (c,), a = check_claims_file(tmp_path / "threshold.c.json", ["S5"])
    assert c["figure"] == "figures/seeds/batch_threshold.pdf"
    assert a["accel_slope"]["slope"] > 0
    figure(tmp_path, "batch_threshold", "threshold")


def test_seed_small_lr_command_and_figure(tmp_path, sweep_dir):
    spec = {"methods": ["hb"], "max_batch_factor": 0.5, "tolerance": 1.25, "min_pairs": 1}
    argv = ["seed", "small-lr", "--problem", str(sweep_dir["problem"]), "--spec", json.dumps(spec)]
    argv += ["--runs", *map(str, sweep_dir["shards"])]
    assert main([*argv, *outputs(tmp_path, "small_lr")]) == 0
    df = pd.read_parquet(tmp_path / "small_lr.parquet")
    assert set(df["method"]) == {"sgd", "hb"} and df["comparable"].any()
    (c,), a = check_claims_file(tmp_path / "small_lr.c.json", ["S3"])
    assert c["problem"] == "tiny" and c["sampler"] == "without_replacement"
    assert a["config"] == spec
    figure(tmp_path, "small_lr_equivalence", "small_lr")


def test_seed_baselines_commands_and_figure(tmp_path, sweep_dir):
    grids = {
        "sngm": {"batch_sizes": [8, 32], "eta_min": 1e-3, "eta_max": 0.1, "num_eta": 4},
        "asgd": {"batch_sizes": [1, 32], "num_eta": 4, "num_kappa": 3, "xi": [1.0, 10.0]},
        "mass": {"batch_sizes": [1, 32], "num_eta": 4, "num_beta": 3, "eta2_ratio": [0, 0.5]},
    }
    shards = []
    for method, grid in grids.items():  # one job per method, at each of its batch sizes
        spec = {
            "problem": "tiny",
            "method": method,
            "sampler": "without_replacement",
            "seeds": 2,
            "stop": STOP,
            "grid": grid,
        }
        out = tmp_path / "b" / f"{method}.parquet"
        argv = ["seed", "baseline-shard", "--problem", str(sweep_dir["problem"])]
        assert main([*argv, "--spec", json.dumps(spec), "--out", str(out)]) == 0
        assert read_metadata(out)["spec"] == spec
        assert sorted(set(pd.read_parquet(out)["batch_size"])) == grid["batch_sizes"]
        shards.append(str(out))
    spec = {**grids, "seeds": 2}
    argv = ["seed", "baselines", "--problem", str(sweep_dir["problem"]), "--runs", *shards]
    argv += ["--summary", str(sweep_dir["summary"]), "--spec", json.dumps(spec)]
    assert main([*argv, *outputs(tmp_path, "baselines")]) == 0
    table = pd.read_parquet(tmp_path / "baselines.parquet")
    assert set(table["method"]) == {"sgd", "hb", "sngm", "asgd", "mass"}
    assert set(table.loc[table["method"] == "asgd", "batch_size"]) == {1, 32}
    (c,), a = check_claims_file(tmp_path / "baselines.c.json", ["S6"])
    assert {p["batch_size"] for p in a["per_batch"]} == {1, 8, 32}
    figure(tmp_path, "baselines_vs_batch", "baselines")


def test_seed_label_noise_command_and_figure(tmp_path):
    spec = {"preset": "quick", "overrides": {"num_eta": 3, "num_beta": 8, "seeds": 2}}
    assert main(["seed", "label-noise", "--spec", json.dumps(spec), *outputs(tmp_path, "ln")]) == 0
    check_claims_file(tmp_path / "ln.c.json", ["S2"])
    figure(tmp_path, "label_noise_momentum", "ln")


def test_seed_large_batch_command_and_figure(tmp_path):
    pytest.importorskip("sklearn")
    overrides = {
        "hidden": 8,
        "batch_sizes": [32, 128],
        "epochs": 1.0,
        "num_lr": 2,
        "lr_min": 0.01,
        "lr_max": 0.1,
        "seeds": 2,
        "num_evals": 2,
    }
    spec = {"preset": "quick", "overrides": overrides}
    assert main(["seed", "large-batch", "--spec", json.dumps(spec), *outputs(tmp_path, "lb")]) == 0
    claims, _ = check_claims_file(tmp_path / "lb.c.json", ["S1", "S4"])
    assert all(c["source"] == str(tmp_path / "lb.parquet") for c in claims)
    figure(tmp_path, "large_batch", "lb")


TINY_SEARCH_NOISE = {
    "preset": "quick",
    "overrides": {
        "batch_sizes": [4, 16],
        "eff_lrs": [0.1],
        "betas": [0.9],
        "steps": 20,
        "measure_every": 5,
        "window": 0.5,
        "hidden": 8,
        "seeds": 2,
        "quad_d": 4,
        "quad_n": 16,
        "quad_batch_sizes": [1, 4],
        "quad_steps": 20,
        "quad_seeds": 2,
        "n_boot": 100,
    },
}


def test_seed_search_noise_command_and_figure(tmp_path):
    pytest.importorskip("sklearn")
    argv = ["seed", "search-noise", "--spec", json.dumps(TINY_SEARCH_NOISE)]
    assert main([*argv, *outputs(tmp_path, "sn")]) == 0
    claims, analysis = check_claims_file(tmp_path / "sn.c.json", ["S7a", "S7b", "S7b", "S7c"])
    assert [c["method"] for c in claims] == ["sgd", "shb", "nshb", "all"]
    assert all(c["source"] == str(tmp_path / "sn.parquet") for c in claims)
    df = pd.read_parquet(tmp_path / "sn.parquet")
    assert set(df["part"]) == {"quadratic", "digits"}
    meta = read_metadata(tmp_path / "sn.parquet")
    assert meta["spec"] == TINY_SEARCH_NOISE and meta["config"]["steps"] == 20
    assert len(analysis["runs"]["level"]) == 3 * 2 * 2
    figure(tmp_path, "search_noise", "sn")


# --------------------------------------------------------------------------- claims --extra


def test_claims_extra_appends_the_seed_entries(tmp_path, sweep_dir):
    base = ["claims", "--summary", str(sweep_dir["summary"])]
    plain = [*base, "--json", str(tmp_path / "a.json"), "--markdown", str(tmp_path / "a.md")]
    assert main(plain) == 0
    s5 = tmp_path / "s5.c.json"
    argv = ["seed", "threshold", "--spec", json.dumps(TINY_THRESHOLD)]
    assert main([*argv, "--out", str(tmp_path / "s5.parquet"), "--claims", str(s5)]) == 0
    s3 = tmp_path / "s3.json"  # a bare list of entries is accepted too
    s3.write_text(json.dumps([{**read_claims_file(s5)[0][0], "id": "S3", "method": "hb"}]))
    extra = [*base, "--extra", str(s5), str(s3)]
    assert (
        main([*extra, "--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md")])
        == 0
    )
    a, b = read_json(tmp_path / "a.json"), read_json(tmp_path / "b.json")
    n = len(a["claims"])
    assert b["claims"][:n] == a["claims"] and b["tolerances"] == a["tolerances"]
    assert [c["id"] for c in b["claims"][n:]] == ["S3", "S5"]  # sorted by id
    md_a, md_b = (tmp_path / "a.md").read_text(), (tmp_path / "b.md").read_text()
    # the per-pair report is unchanged; the seed entries join the summary and their section
    body_a = md_a[md_a.index("# Claims report") : md_a.index("# Statements")]
    assert body_a in md_b and "# Seed systems" in md_b and "# Seed systems" not in md_a
    summary_b = md_b[: md_b.index("# Claims report")]
    assert "| S3 | hb |" in summary_b and "| S5 | hb |" in summary_b
    assert "| S3 | hb |" in md_b and "| S5 | hb |" in md_b
    assert md_b.index("| S3 |") < md_b.index("| S5 |")  # sorted by id


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "system, spec, needle",
    [
        ("threshold", {"preset": "huge"}, "preset"),
        ("threshold", {"overrides": {"num_kappa": 2}}, "num_kappa"),
        ("threshold", {"overrides": {"bogus": 1}}, "bogus"),
        ("threshold", {"preset": "quick", "colour": 1}, "colour"),
        ("label-noise", {"overrides": {"num_eta": 0}}, "num_eta"),
        ("large-batch", {"overrides": {"model": "resnet"}}, "model"),
        ("search-noise", {"overrides": {"betas": [1.0]}}, "betas"),
        ("search-noise", {"overrides": {"window": 2}}, "window"),
    ],
)
def test_bad_seed_spec_exits_2_naming_the_field(tmp_path, mbm, system, spec, needle):
    argv = ["seed", system, "--spec", json.dumps(spec), *outputs(tmp_path, "x")]
    code, lines = mbm(argv)
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines
    assert lines[0].startswith("mbm seed: error:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"grid": None}, "grid"),
        ({"batch_size": 4}, "batch_size"),  # a job takes its grid's batch_sizes
        ({"grid": {"batch_sizes": [0], "num_eta": 2, "num_beta": 2}}, "batch_sizes"),
        ({"sampler": "rows"}, "sampler"),
        ({"method": "adam"}, "method"),
        ({"stop": {"eps": 2.0}}, "eps"),
        ({"grid": {"batch_sizes": [4], "num_eta": 0}}, "num_eta"),
        ({"extra_field": 1}, "extra_field"),
        # more distinct rows than the problem has: refused before the first size runs
        ({"grid": {"batch_sizes": [4, 10**6], "num_eta": 2, "num_beta": 2}}, "batch_size"),
    ],
)
def test_bad_baseline_shard_spec_exits_2(tmp_path, mbm, sweep_dir, change, needle):
    spec = {
        "problem": "tiny",
        "method": "mass",
        "seeds": 1,
        "stop": STOP,
        "grid": {"batch_sizes": [4], "num_eta": 2, "num_beta": 2, "eta2_ratio": [0]},
    }
    spec.update(change)
    spec = {k: v for k, v in spec.items() if v is not None}
    argv = ["seed", "baseline-shard", "--problem", str(sweep_dir["problem"])]
    code, lines = mbm([*argv, "--spec", json.dumps(spec), "--out", str(tmp_path / "s")])
    assert code == 2 and needle in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_small_lr_without_sgd_shards_exits_2(tmp_path, mbm, sweep_dir):
    hb = [str(s) for s in sweep_dir["shards"] if s.name == "hb.parquet"]
    argv = ["seed", "small-lr", "--problem", str(sweep_dir["problem"]), "--spec", "{}"]
    code, lines = mbm([*argv, "--runs", *hb, *outputs(tmp_path, "x")])
    assert code == 2 and "sgd" in lines[0]


def test_restore_floats_undoes_the_json_strings():
    assert restore_floats({"a": ["nan", "inf", "hb"], "b": "-inf"}) == {
        "a": [pytest.approx(float("nan"), nan_ok=True), float("inf"), "hb"],
        "b": float("-inf"),
    }
