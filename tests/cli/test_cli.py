"""The ``mbm`` command line: files in, files out; bad input exits 2 with a one-line message
naming the offending field and writes nothing."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import mbm_process, with_value
from minibatch_momentum.cli import main
from minibatch_momentum.io import read_metadata
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.problems.system import load_problem
from minibatch_momentum.simulate.sweep import ShardSpec, run_shard

PROBLEM_SPEC = {
    "family": "gaussian",
    "d": 6,
    "n": 48,
    "kappa": 20,
    "profile": "geometric",
    "seed": 4,
}
GOOD = {  # a sweep job: one method at its batch sizes
    "problem": "tiny",
    "method": "nag",
    "batch_sizes": [4],
    "seeds": 2,
    "grid": {
        "eta_min": 0.1,
        "eta_max": 1.0,
        "num_eta": 2,
        "one_minus_beta_min": 0.1,
        "one_minus_beta_max": 0.5,
        "num_beta": 2,
    },
    "stop": {"eps": 1e-3, "t_max": 2000, "check_every": 10},
}


@pytest.fixture(scope="module")
def problem_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prob") / "tiny.npz"
    assert main(["problem", "--spec", json.dumps(PROBLEM_SPEC), "--out", str(path)]) == 0
    return path


def test_problem_command_writes_the_generated_problem(problem_file):
    p = load_problem(problem_file)
    q = gaussian_system(6, 48, 20, "geometric", seed=4)
    assert np.array_equal(p.A, q.A) and np.array_equal(p.x_star, q.x_star)
    meta = json.loads(problem_file.with_suffix(".json").read_text())
    assert meta["spec"] == PROBLEM_SPEC
    assert meta["kappa"] == pytest.approx(20.0, rel=1e-9)


def sweep(problem_file, spec: dict, out) -> int:
    argv = ["sweep", "--problem", str(problem_file), "--spec", json.dumps(spec)]
    return main([*argv, "--out", str(out), "--device", "cpu"])


def test_sweep_command_writes_the_shards_of_the_job(tmp_path, problem_file):
    out = tmp_path / "nag.parquet"
    job = {**GOOD, "batch_sizes": [4, 1]}
    assert sweep(problem_file, job, out) == 0
    got = pq.read_table(out).to_pandas()
    shard = {k: v for k, v in GOOD.items() if k != "batch_sizes"}
    specs = [ShardSpec.from_dict({**shard, "batch_size": B}) for B in (4, 1)]
    want = pd.concat([run_shard(load_problem(problem_file), s, device="cpu") for s in specs])
    np.testing.assert_array_equal(got["batch_size"], want["batch_size"])
    np.testing.assert_array_equal(got["iters_to_eps"], want["iters_to_eps"])
    np.testing.assert_array_equal(got["status"], want["status"])
    meta = read_metadata(out)["spec"]
    assert meta["batch_sizes"] == [4, 1]
    shard_meta = {k: v for k, v in meta.items() if k != "batch_sizes"}
    assert ShardSpec.from_dict({**shard_meta, "batch_size": 1}) == specs[1]
    assert [p.name for p in tmp_path.iterdir()] == ["nag.parquet"]



BAD_SWEEPS = [
    ("batch_sizes", [0], "batch_size"),
    ("batch_sizes", [4, -2], "batch_size"),
    ("batch_sizes", [], "batch_sizes"),
    ("batch_sizes", 4, "batch_sizes"),
    ("batch_sizes", [4, 4], "batch_sizes"),
    ("method", "adam", "method"),
    ("sampler", "rows", "sampler"),
    ("stop.eps", 1.5, "eps"),
    ("stop.eps", 0, "eps"),
    ("seeds", [], "seeds"),
    ("seeds", 0, "seeds"),
    ("grid.num_eta", 0, "num_eta"),
    ("dtype", "half", "dtype"),
    # > n = 48 without replacement: refused before the first batch size runs
    ("batch_sizes", [4, 10_000], "batch_size"),
    ("batch_sizes", [2.5], "batch_size"),
    ("batch_sizes", ["4"], "batch_size"),
    ("problem", KeyError, "problem"),
    ("method", KeyError, "method"),
    ("batch_sizes", KeyError, "batch_sizes"),
]


@pytest.mark.parametrize(
    "spec,needle",
    [("{not json", "--spec"), ("[1, 2]", "--spec"), (json.dumps({**GOOD, "bs": 1}), "bs")],
)
def test_unreadable_sweep_spec_exits_2(tmp_path, mbm, problem_file, spec, needle):
    out = tmp_path / "shard.parquet"
    code, lines = mbm(["sweep", "--problem", str(problem_file), "--spec", spec, "--out", str(out)])
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not out.exists()


def test_missing_problem_file_exits_2(tmp_path, mbm):
    out = tmp_path / "shard.parquet"
    code, lines = mbm(
        [
            "sweep",
            "--problem",
            str(tmp_path / "nope.npz"),
            "--spec",
            json.dumps(GOOD),
            "--out",
            str(out),
        ],
    )
    assert code == 2 and len(lines) == 1 and "nope.npz" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "path,value,field",
    [
        ("d", KeyError, "d"),
        ("kappa", 0.5, "kappa"),
        ("n", 3, "n"),
        ("family", "kernel", "family"),
        ("profile", "flat", "profile"),
    ],
)
def test_bad_problem_spec_exits_2_naming_the_field(tmp_path, mbm, path, value, field):
    out = tmp_path / "p.npz"
    code, lines = mbm(
        ["problem", "--spec", json.dumps(with_value(PROBLEM_SPEC, path, value)), "--out", str(out)],
    )
    assert code == 2 and len(lines) == 1 and field in lines[0], lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path,value,field", [("d", 8.5, "d"), ("seed", -1, "seed")])
def test_bad_problem_value_types_exit_2_naming_the_field(tmp_path, mbm, path, value, field):
    out = tmp_path / "p.npz"
    spec = json.dumps(with_value(PROBLEM_SPEC, path, value))
    code, lines = mbm(["problem", "--spec", spec, "--out", str(out)])
    assert code == 2 and len(lines) == 1 and re.search(rf"\b{field}\b", lines[0]), lines
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_exit_status_and_message(tmp_path, problem_file):
    """The real entry point: ``python -m minibatch_momentum`` in a fresh process."""
    out = tmp_path / "shard.parquet"
    for path, value, field in [("batch_sizes", [-1], "batch_size"), ("seeds", [], "seeds")]:
        spec = json.dumps(with_value(GOOD, path, value))
        proc = mbm_process("sweep", "--problem", problem_file, "--spec", spec, "--out", out)
        assert proc.returncode == 2, proc.stderr
        lines = [x for x in proc.stderr.splitlines() if not x.startswith("[mbm ")]
        assert len(lines) == 1 and field in lines[0], proc.stderr
        assert proc.stdout == ""
        assert not out.exists()


# --------------------------------------------------------------------------- theory, montecarlo

THEORY = {
    "problem": "tiny",
    "sampler": "without_replacement",
    "methods": ["sgd", "hb", "nag"],
    "batch_sizes": [1, 4, 16],
    "eps": 1e-3,
    "rule": {"form": "harmonic", "noise_line": {"sgd": "trace", "hb": "trace", "nag": "spectrum"}},
    "heatmap": {"method": "hb", "batch_sizes": [], "num_eta": 5, "num_beta": 4},
}
T1 = {
    "sampler": "without_replacement",
    "eps": 1e-3,
    "rule": THEORY["rule"],
    "t1": {
        "methods": ["hb", "nag"],
        "batch_size": 4,
        "runs": 50,
        "max_steps": 80,
        "confidence": 0.99,
        "seed": 1,
    },
}


def test_theory_command_can_leave_the_rate_maps_out(tmp_path, problem_file):
    from minibatch_momentum.theory.exact import read_theory

    out = tmp_path / "theory"
    spec = json.dumps({**THEORY, "rate_maps": False})
    assert (
        main(["theory", "--problem", str(problem_file), "--spec", spec, "--out-dir", str(out)]) == 0
    )
    th = read_theory(out)
    assert th["rate_maps"].empty
    assert list(th["rate_maps"].columns) == ["method", "batch_size", "eta", "beta", "rho"]
    assert len(th["tstar"]) == 9 and th["info"]["heatmap"]["batch_sizes"] == []


def test_theory_command_writes_the_exact_tables(tmp_path, problem_file):
    from minibatch_momentum.theory.exact import read_theory
    from minibatch_momentum.theory.gaussian import Gaussian
    from minibatch_momentum.theory.rule import rule_for_spectrum
    from minibatch_momentum.theory.tuning import knee_batch, optimal_parameters

    out = tmp_path / "theory"
    argv = ["theory", "--problem", str(problem_file), "--spec", json.dumps(THEORY)]
    assert main([*argv, "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "rate_maps.parquet",
        "theory.json",
        "tstar.parquet",
    ]
    th = read_theory(out)
    p = load_problem(problem_file)
    tstar = th["tstar"]
    assert len(tstar) == 9 and set(tstar["method"]) == {"sgd", "hb", "nag"}
    row = tstar[(tstar["method"] == "nag") & (tstar["batch_size"] == 4)].iloc[0]
    model = Gaussian(p.eigvals, n=p.n, replace=False)
    opt = optimal_parameters(model, "nag", 4)
    assert row["rho"] == pytest.approx(opt.rho, rel=1e-12)
    assert (row["rule_eta"], row["rule_beta"]) == rule_for_spectrum(
        "nag", 4, p.eigvals, noise_line="spectrum", n=p.n, replace=False
    )
    info = th["info"]
    assert info["knees"]["hb"] == pytest.approx(knee_batch(model, "hb"))
    assert info["spec"] == THEORY and "gaussian rows" in info["noise_model"]
    # defaults fill the heatmap grid's unspecified fields; 3 targets on 3 sizes -> <= 3 panels
    maps = th["rate_maps"]
    assert set(maps["batch_size"]) == set(info["heatmap"]["batch_sizes"]) <= {1, 4, 16}
    assert len(maps) == 5 * 4 * len(info["heatmap"]["batch_sizes"])
    assert set(info["timing"]) == {"batch_scaling_s", "knees_s", "rate_maps_s"}


def test_montecarlo_command_and_figure(tmp_path, problem_file):
    out = tmp_path / "theory" / "exact_vs_mc.parquet"
    argv = ["montecarlo", "--problem", str(problem_file), "--spec", json.dumps(T1)]
    assert main([*argv, "--out", str(out)]) == 0
    df = pq.read_table(out).to_pandas()
    assert list(dict.fromkeys(df["method"])) == ["hb", "nag"]
    assert (df["runs"] == 50).all() and (df["batch_size"] == 4).all()
    assert df.groupby("method")["step"].max().max() <= 80
    meta = read_metadata(out)
    assert meta["spec"] == T1 and set(meta["configs"]) == {"hb", "nag"}
    # the T1 figure reads the T1 table alone
    fig = tmp_path / "fig.pdf"
    figure = ["figure", "exact_vs_monte_carlo", "--out", str(fig)]
    assert main(figure) == 2 and not fig.exists()  # no --montecarlo
    assert main([*figure, "--montecarlo", str(out)]) == 0
    assert fig.stat().st_size > 1000 and fig.with_suffix(".png").stat().st_size > 1000


BAD_THEORY = [
    ("methods", ["sgd", "adam"], "methods"),
    ("batch_sizes", [1, 0], "batch_sizes"),
    ("batch_sizes", KeyError, "batch_sizes"),
    ("eps", 2.0, "eps"),
    ("sampler", "sideways", "sampler"),
    ("rule.noise_line.hb", "eigen", "noise_line"),
    ("heatmap.num_etas", 3, "heatmap"),
]


BAD_T1 = [
    ("t1.runs", KeyError, "t1.runs"),
    ("t1", KeyError, "t1"),
    ("t1.batch_size", 10_000, "batch_size"),  # > n = 48 without replacement
    ("sampler", "rows", "sampler"),
]


# Each job subcommand with its good spec and where it writes, and the values it refuses.
BAD_SPECS = [
    *[("sweep", GOOD, "--out", "o/shard.parquet", *case) for case in BAD_SWEEPS],
    *[("theory", THEORY, "--out-dir", "theory", *case) for case in BAD_THEORY],
    *[("montecarlo", T1, "--out", "mc.parquet", *case) for case in BAD_T1],
]


@pytest.mark.parametrize("command,good,flag,target,path,value,field", BAD_SPECS)
def test_a_bad_spec_exits_2_naming_the_field_and_writes_nothing(
    tmp_path, mbm, problem_file, command, good, flag, target, path, value, field
):
    out = tmp_path / target
    spec = json.dumps(with_value(good, path, value))
    argv = [command, "--problem", str(problem_file), "--spec", spec, flag, str(out)]
    code, lines = mbm(argv + (["--device", "cpu"] if command == "sweep" else []))
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"mbm {command}: error:") and field in lines[0], lines[0]
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_help_describes_the_cli_in_whole_sentences(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Each subcommand reads files and writes files; the work happens in the library." in text
