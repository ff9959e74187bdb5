"""Config validation before any job: the schema's defaults (a config of a few lines), one
line per error naming the key as written, and the cross-field checks that used to fire
only once compute had started (issue: "nothing wasted, nothing stale", item 4)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from conftest import REPO_ROOT
from minibatch_momentum.cli import main
from minibatch_momentum.config import ConfigError, load_config, prepare
from minibatch_momentum.io import write_json, write_text
from test_workflow import TINY, copy_workflow, snakemake, write_config

QUICK = REPO_ROOT / "workflow" / "config" / "quick.yaml"

# A user's whole config: one problem, everything else from the schema's defaults.
SHORT = {
    "problems": {
        "mine": {"family": "gaussian", "d": 8, "n": 256, "kappa": 100, "seed": 0},
    },
}


def quick() -> dict:
    return yaml.safe_load(QUICK.read_text())


def refused(cfg: dict) -> str:
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg  # one short line, never a dump
    return msg


# --------------------------------------------------------------------------- defaults


def test_the_default_profile_is_valid():
    prepare(quick())


def test_a_config_of_one_problem_gets_every_other_section_from_the_defaults():
    cfg = prepare(copy.deepcopy(SHORT))
    assert cfg["sweep"]["methods"] == ["sgd", "hb", "nag"]
    assert cfg["sweep"]["stop"]["eps"] == 1e-4 and cfg["sweep"]["stop"]["t_max"] == 100000
    assert cfg["sweep"]["grid"]["num_eta"] == 25 and cfg["sweep"]["allow_hopeless"] is False
    assert cfg["claims"]["efficiency"] == 0.5 and cfg["claims"]["t1_min_inside"] == 0.8
    assert cfg["kappa_scan"]["kappas"][-1] == 1e6 and cfg["kappa_scan"]["problems"] == []
    assert cfg["theory"]["heatmap"]["num_beta"] == 30 and cfg["seeds"]["systems"] == []


def test_a_partial_claims_section_keeps_the_other_tolerances():
    cfg = quick()
    cfg["claims"] = {"efficiency": 0.4}
    prepare(cfg)
    assert cfg["claims"]["efficiency"] == 0.4 and cfg["claims"]["critical_batch_factor"] == 2.0


def test_defaults_are_not_shared_between_configs():
    a, b = prepare(copy.deepcopy(SHORT)), prepare(copy.deepcopy(SHORT))
    a["sweep"]["grid"]["num_eta"] = 3
    assert b["sweep"]["grid"]["num_eta"] == 25


# --------------------------------------------------------------------------- one line


@pytest.mark.parametrize(
    "path,value,expect",
    [
        # unknown keys: the key and the allowed ones
        ("bogus", 1, "bogus: unknown key; allowed keys here: claims, device, kappa_scan, paper"),
        ("claims.slopee", 1, "claims.slopee: unknown key; allowed keys here: acceleration"),
        # types, enumerations and ranges: the key as written, the value, what is allowed
        ("sweep.grid.eta_max", "big", "sweep.grid.eta_max: must be a number, got 'big'"),
        ("sweep.methods", ["sgd", "adam"], "sweep.methods[1]: 'adam' is not allowed; allowed: "),
        ("sweep.batch_sizes", [1, -4], "sweep.batch_sizes[1]: must be >= 1, got -4"),
        ("sweep.stop.eps", 1.5, "sweep.stop.eps: must be < 1, got 1.5"),
        ("device", "tpu", "device: 'tpu' is not allowed; torch device for sweeps"),
        ("problems.gaussian.kappa", 1e10, "problems.gaussian.kappa: must be <= 1e+09"),
        ("problems.digits_kernel.n_samples", 8, "problems.digits_kernel.n_samples: must be >= 16"),
        ("problems.digits_kernel.n_samples", 2000, "n_samples: must be <= 1797"),
        # cross-field checks, before any job
        ("sweep.grid.eta_min", 5.0, "sweep.grid.eta_min: must be <= eta_max (3.6), got 5.0"),
        (
            "sweep.grid.one_minus_beta_min",
            0.9,
            "sweep.grid.one_minus_beta_min: must be <= one_minus_beta_max (0.5), got 0.9",
        ),
        ("studies.gaussian.grid", {"eta_min": 8.0}, "studies.gaussian.grid.eta_min: must be <="),
        ("theory.heatmap.eta_min", 10.0, "theory.heatmap.eta_min: must be <= eta_max (4.0)"),
        (
            "studies.digits_kernel.batch_sizes",
            [1, 512],
            "studies.digits_kernel.batch_sizes: batch size 512 exceeds the 256 rows of problem "
            "'digits_kernel'",
        ),
        (
            "studies.gaussian.samplers",
            ["coordinate"],
            "studies.gaussian.samplers: sampler 'coordinate' needs a problem with form psd",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(path, value, expect):
    cfg = quick()
    *head, last = path.split(".")
    sub = cfg
    for k in head:
        sub = sub[k]
    sub[last] = value
    assert expect in refused(cfg)


def test_a_sampler_that_does_not_fit_names_sweep_samplers_when_it_comes_from_there():
    cfg = copy.deepcopy(SHORT)
    cfg["sweep"] = {"samplers": ["coordinate"]}
    assert refused(cfg).startswith("sweep.samplers: sampler 'coordinate' needs a problem")


def test_a_batch_size_above_n_without_replacement_is_refused_before_the_theory_job():
    cfg = copy.deepcopy(SHORT)  # n = 256; the default batch sizes end at 256
    cfg["sweep"] = {"batch_sizes": [1, 512]}
    assert "sweep.batch_sizes: batch size 512 exceeds the 256 rows" in refused(cfg)
    cfg["sweep"] = {"batch_sizes": [1, 512], "samplers": ["with_replacement"]}
    prepare(cfg)  # i.i.d. rows: any B


def test_alpha_zero_and_the_problem_checks_agree_with_problems_py():
    cfg = copy.deepcopy(SHORT)
    cfg["problems"]["mine"] = {
        "family": "gaussian",
        "d": 8,
        "n": 256,
        "alpha": 0,
        "profile": "power",
        "seed": 0,
    }
    prepare(cfg)  # problems/families.py accepts alpha >= 0, and now so does the schema
    cfg["problems"]["mine"]["alpha"] = 12.0  # 8^12 > 1e9: only problems/families.py can say so
    assert refused(cfg).startswith("problems.mine.alpha: must be such that d^alpha <= 1e+09")


def test_load_config_reports_a_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("problems: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


# --------------------------------------------------------------------------- the CLI


def test_cli_sweep_names_a_non_numeric_grid_field_and_a_bad_device(tmp_path, capsys):
    problem = tmp_path / "p.npz"
    spec = {"family": "gaussian", "d": 4, "n": 32, "kappa": 10, "seed": 0}
    assert main(["problem", "--spec", json.dumps(spec), "--out", str(problem)]) == 0
    shard = {"problem": "p", "method": "hb", "batch_sizes": [2], "grid": {"eta_max": "big"}}
    out = tmp_path / "s.parquet"
    argv = ["sweep", "--problem", str(problem), "--out", str(out), "--device", "cpu"]
    capsys.readouterr()
    assert main([*argv, "--spec", json.dumps(shard)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "mbm sweep: error: grid.eta_max: must be a number > 0, got 'big'"
    shard["grid"] = {}
    argv[-1] = "tpu"
    assert main([*argv, "--spec", json.dumps(shard)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'" in err
    assert not out.exists()


# --------------------------------------------------------------------------- atomic writes


def test_a_write_removes_the_temporary_siblings_a_killed_write_left(tmp_path):
    target = tmp_path / "B16.parquet"
    stale = [tmp_path / ".B16.parquet.k2j4_x9a.tmp", tmp_path / ".B16.parquet.zz1.tmp"]
    for p in stale:
        p.write_text("half a file")
    other = tmp_path / ".B160.parquet.abc.tmp"  # another target's: left alone
    other.write_text("x")
    write_text("done", target)
    assert target.read_text() == "done"
    assert not any(p.exists() for p in stale) and other.exists()
    write_json({"a": 1}, tmp_path / "x.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".B160.parquet.abc.tmp",
        "B16.parquet",
        "x.json",
    ]


# --------------------------------------------------------------------------- the workflow


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf_validation"))


def test_a_ten_line_config_runs_a_dry_run(bare):
    path = write_config(bare / "short.yaml", SHORT)
    assert len(path.read_text().splitlines()) <= 10
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare, paper=True)
    assert code == 0, out[-2000:]
    assert "results/runs/mine/without_replacement/hb.parquet" in out
    # the paper's text is the quick and paper profiles': a config of one's own (paper:
    # false by default) ends at the claims report and the figures
    assert "results/claims.md" in out and "results/paper/main.pdf" not in out


@pytest.mark.parametrize(
    "change,expect",
    [
        ({"bogus": 1}, "bogus: unknown key; allowed keys here:"),
        ({"sweep": {"grid": {"eta_min": 5.0}}}, "sweep.grid.eta_min: must be <= eta_max"),
        (
            {"sweep": {"grid": {"one_minus_beta_min": 0.9, "one_minus_beta_max": 0.5}}},
            "sweep.grid.one_minus_beta_min: must be <= one_minus_beta_max",
        ),
        ({"sweep": {"batch_sizes": [1, 1024]}}, "sweep.batch_sizes: batch size 1024 exceeds"),
        ({"device": "tpu"}, "device: 'tpu' is not allowed"),
        ({"theory": {"heatmap": {"eta_min": 10.0}}}, "theory.heatmap.eta_min: must be <="),
        ({"sweep": {"samplers": ["coordinate"]}}, "sweep.samplers: sampler 'coordinate' needs"),
    ],
)
def test_the_dry_run_refuses_a_late_check_in_one_line(bare, change, expect):
    cfg = copy.deepcopy(SHORT)
    cfg.update(change)
    path = write_config(bare / "late.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare)
    assert code != 0
    assert out.strip() == f"Config error: {out.strip().removeprefix('Config error: ')}"
    assert expect in out and len(out.strip().splitlines()) == 1, out[-3000:]
    assert not (bare / "results").exists()


def test_a_tiny_config_with_studies_still_validates(bare):
    path = write_config(bare / "tiny.yaml", TINY)
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare)
    assert code == 0, out[-2000:]
