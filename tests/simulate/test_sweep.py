"""Sweep shards: determinism, the Parquet contract (contents + metadata), atomic writes."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import minibatch_momentum
from minibatch_momentum.io import atomic_path, read_metadata, write_json, write_parquet
from minibatch_momentum.problems.synthetic import gaussian_system
from minibatch_momentum.simulate.engine import StopRule, run_grid
from minibatch_momentum.simulate.sweep import (
    Grid,
    ShardSpec,
    run_shard,
    shard_points,
)
from minibatch_momentum.theory.rule import RuleSpec, rule_for_spectrum

SPEC = {
    "problem": "tiny",
    "method": "hb",
    "batch_size": 4,
    "sampler": "without_replacement",
    "seeds": [0, 3],
    "grid": {
        "eta_min": 0.05,
        "eta_max": 2.0,
        "num_eta": 3,
        "one_minus_beta_min": 0.05,
        "one_minus_beta_max": 0.5,
        "num_beta": 2,
    },
    "stop": {"eps": 1e-3, "t_max": 3000, "check_every": 10, "censor_factor": 2.0},
}


@pytest.fixture(scope="module")
def problem():
    return gaussian_system(d=8, n=64, kappa=30.0, seed=1)


@pytest.fixture(scope="module")
def shard(problem):
    spec = ShardSpec.from_dict(SPEC)
    return spec, run_shard(problem, spec, device="cpu")


# --------------------------------------------------------------------------- spec / grid


def test_grid_points():
    g = Grid(
        eta_min=0.01,
        eta_max=1.0,
        num_eta=3,
        one_minus_beta_min=0.01,
        one_minus_beta_max=0.1,
        num_beta=2,
    )
    eta, beta = g.points("hb", L=2.0)
    np.testing.assert_allclose(eta, np.repeat([0.005, 0.05, 0.5], 2), rtol=1e-14)
    np.testing.assert_allclose(beta, np.tile([0.99, 0.9], 3), rtol=1e-14)
    eta, beta = g.points("sgd", L=2.0)
    np.testing.assert_allclose(eta, [0.005, 0.05, 0.5], rtol=1e-14)
    assert np.all(beta == 0)


def test_spec_dict_round_trip():
    spec = ShardSpec.from_dict(SPEC)
    assert spec.seeds == (0, 3)
    assert spec.stop == StopRule(**SPEC["stop"])
    assert ShardSpec.from_dict(spec.to_dict()) == spec
    assert ShardSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert ShardSpec.from_dict({**SPEC, "seeds": 3}).seeds == (0, 1, 2)


@pytest.mark.parametrize(
    "change,field",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -3}, "batch_size"),
        ({"method": "adam"}, "method"),
        ({"sampler": "sideways"}, "sampler"),
        ({"seeds": []}, "seeds"),
        ({"seeds": 0}, "seeds"),
        ({"dtype": "float16"}, "dtype"),
        ({"stop": {"eps": 1.5}}, "eps"),
        ({"stop": {"eps": 1e-3, "tmax": 5}}, "stop"),
        ({"grid": {"num_eta": 0}}, "num_eta"),
        ({"grid": {"eta_min": 2.0, "eta_max": 1.0}}, "eta_min"),
        ({"grid": {"etamin": 1.0}}, "grid"),
        ({"batchsize": 4}, "batchsize"),
        ({"rule": {"noise_line": "eigen"}}, "rule.noise_line"),
        ({"rule": {"form": "max"}}, "rule.form"),
        ({"rule": {"noiseline": "trace"}}, "rule"),
        ({"rule": "trace"}, "rule"),
    ],
)
def test_spec_errors_name_the_field(change, field):
    with pytest.raises(ValueError, match=field):
        ShardSpec.from_dict({**SPEC, **change})


@pytest.mark.parametrize("bad", [2.5, "4", "abc"])
def test_spec_rejects_non_integer_batch_size_naming_the_field(bad):
    with pytest.raises(ValueError, match="batch_size"):
        ShardSpec.from_dict({**SPEC, "batch_size": bad})


# --------------------------------------------------------------------------- run_shard


def test_run_shard_rows_are_run_grid_results(problem, shard):
    spec, df = shard
    eta, beta = spec.grid.points("hb", problem.eigvals[-1])
    assert len(df) == len(spec.seeds) * eta.size
    assert set(df["status"]) <= {"converged", "censored", "diverged", "t_max"}
    assert (df["status"] == "converged").any()
    for seed in spec.seeds:
        part = df[df["seed"] == seed].reset_index(drop=True)
        res = run_grid(problem, "hb", 4, eta, beta, seed=seed, stop=spec.stop, device="cpu")
        np.testing.assert_array_equal(part["eta"], eta)
        np.testing.assert_array_equal(part["beta"], beta)
        np.testing.assert_array_equal(part["iters_to_eps"], res.iters_to_eps)
        np.testing.assert_array_equal(part["status"], res.status)
        np.testing.assert_array_equal(part["steps_run"], res.steps_run)
        for r in range(eta.size):
            np.testing.assert_array_equal(part["curve_loss"][r], res.curves[r][1])
    assert (df["problem"] == "tiny").all() and (df["batch_size"] == 4).all()
    assert (df["method"] == "hb").all() and (df["sampler"] == "without_replacement").all()


def test_run_shard_is_deterministic(problem, shard):
    spec, df = shard
    again = run_shard(problem, spec, device="cpu")
    pd.testing.assert_frame_equal(
        df.drop(columns=["curve_step", "curve_loss"]),
        again.drop(columns=["curve_step", "curve_loss"]),
        check_exact=True,
    )
    for col in ("curve_step", "curve_loss"):
        for a, b in zip(df[col], again[col], strict=True):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- Parquet


def assert_frames_equal_with_lists(a: pd.DataFrame, b: pd.DataFrame):
    lists = ["curve_step", "curve_loss"]
    pd.testing.assert_frame_equal(
        a.drop(columns=lists).reset_index(drop=True),
        b.drop(columns=lists).reset_index(drop=True),
        check_exact=True,
        check_dtype=True,
    )
    for col in lists:
        assert len(a[col]) == len(b[col])
        for x, y in zip(a[col], b[col], strict=True):
            assert len(x) > 0
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_parquet_round_trip_and_metadata(tmp_path, shard):
    spec, df = shard
    path = tmp_path / "runs" / "B4.parquet"
    write_parquet(df, path, {"spec": spec.to_dict()})
    back = pq.read_table(path).to_pandas()
    assert list(back.columns) == list(df.columns)
    assert_frames_equal_with_lists(df, back)
    assert np.isinf(back["iters_to_eps"]).any() == np.isinf(df["iters_to_eps"]).any()
    meta = read_metadata(path)
    assert ShardSpec.from_dict(meta["spec"]) == spec
    assert meta["package_version"] == minibatch_momentum.__version__
    assert meta["package_version"] == importlib.metadata.version("minibatch-momentum")


def test_writing_twice_gives_equal_contents(tmp_path, problem, shard):
    spec, df = shard
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(df, a, {"spec": spec.to_dict()})
    write_parquet(run_shard(problem, spec, device="cpu"), b, {"spec": spec.to_dict()})
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.equals(tb)  # Arrow-level equality: list columns included
    assert ta.schema.metadata == tb.schema.metadata
    assert_frames_equal_with_lists(ta.to_pandas(), tb.to_pandas())


def test_writes_leave_no_temporary_files(tmp_path, shard):
    spec, df = shard
    path = tmp_path / "out.parquet"
    write_parquet(df, path, {"spec": spec.to_dict()})
    write_parquet(df, path, {"spec": spec.to_dict()})  # overwrite
    write_json({"x": float("inf")}, tmp_path / "x.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "x.json"]
    assert json.loads((tmp_path / "x.json").read_text()) == {"x": "inf"}


def test_an_error_inside_atomic_path_leaves_no_file(tmp_path):
    target = tmp_path / "t.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a file")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    # an existing target survives a failed rewrite untouched
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_a_failed_parquet_write_leaves_no_file(tmp_path):
    bad = pd.DataFrame({"x": [object(), object()]})  # not convertible to Arrow
    with pytest.raises(Exception):  # noqa: B017 - any error, as long as nothing is left
        write_parquet(bad, tmp_path / "bad.parquet", {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("field", ["problem", "method", "batch_size"])
def test_spec_missing_required_field_is_a_value_error_naming_it(field):
    with pytest.raises(ValueError, match=field):
        ShardSpec.from_dict({k: v for k, v in SPEC.items() if k != field})


# --------------------------------------------------------------------------- rule rows


def test_rule_spec_round_trip():
    spec = ShardSpec.from_dict({**SPEC, "rule": {"noise_line": "spectrum"}})
    assert spec.rule == RuleSpec(noise_line="spectrum", form="harmonic")
    assert ShardSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert ShardSpec.from_dict(SPEC).rule is None


@pytest.mark.parametrize("method,line", [("hb", "trace"), ("nag", "spectrum"), ("sgd", "trace")])
def test_shard_with_the_rule_adds_one_rule_row_per_seed_sharing_the_batches(
    problem, shard, method, line
):
    spec = ShardSpec.from_dict(
        {**SPEC, "method": method, "rule": {"noise_line": line, "form": "harmonic"}}
    )
    df = run_shard(problem, spec, device="cpu")
    grid_eta, grid_beta = spec.grid.points(method, problem.eigvals[-1])
    assert set(df["source"]) == {"grid", "rule"}
    rule = df[df["source"] == "rule"]
    assert len(rule) == len(spec.seeds) and list(rule["seed"]) == list(spec.seeds)
    # the rule's point comes from the spectrum alone, the same for every seed
    eta, beta = rule_for_spectrum(
        method, 4, problem.eigvals, noise_line=line, n=problem.n, replace=False
    )
    assert np.all(rule["eta"] == eta) and np.all(rule["beta"] == beta)
    eta_all, beta_all, source = shard_points(problem, spec)
    assert list(source) == ["grid"] * grid_eta.size + ["rule"]
    for seed in spec.seeds:
        part = df[df["seed"] == seed].reset_index(drop=True)
        # one run_grid call: the rule's run sees the grid's mini-batches (and only grid
        # runs start the censoring clock)
        res = run_grid(
            problem,
            method,
            4,
            eta_all,
            beta_all,
            seed=seed,
            stop=spec.stop,
            device="cpu",
            leaders=source == "grid",
        )
        np.testing.assert_array_equal(part["iters_to_eps"], res.iters_to_eps)
        # the grid's rows are exactly those of a shard without the rule
        alone = run_grid(
            problem, method, 4, grid_eta, grid_beta, seed=seed, stop=spec.stop, device="cpu"
        )
        grid = part[part["source"] == "grid"]
        np.testing.assert_array_equal(grid["iters_to_eps"], alone.iters_to_eps)
        np.testing.assert_array_equal(grid["status"], alone.status)
    if method == "hb":
        _, plain = shard
        assert (plain["source"] == "grid").all()
