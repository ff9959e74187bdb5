"""S1 / S4 (large-batch training on digits): config, data split, determinism, claims, figure."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_claim_shape
from minibatch_momentum.figures import studies as figures
from minibatch_momentum.studies.large_batch import (
    METHODS,
    LargeBatchConfig,
    analyze_large_batch,
    claim_s1,
    claim_s4,
    load_digits_split,
    run_large_batch,
    tuned_table,
)

pytest.importorskip("sklearn")

TINY = LargeBatchConfig(
    hidden=8,
    batch_sizes=(32, 128),
    epochs=1.0,
    lr_min=0.01,
    lr_max=0.1,
    num_lr=2,
    seeds=(0, 1),
    num_evals=2,
)


@pytest.fixture(scope="module")
def tiny_df():
    return run_large_batch(TINY)


# --------------------------------------------------------------------------- config


def test_presets_are_valid_and_fit_the_data():
    quick, paper = LargeBatchConfig.preset("quick"), LargeBatchConfig.preset("paper")
    assert quick == LargeBatchConfig()
    for cfg in (quick, paper):
        n_train = len(load_digits_split(cfg)["y_train"])
        assert cfg.large_batch <= n_train
        assert {"msgd", "sngm", "rsgdm"} <= set(cfg.methods)
    with pytest.raises(ValueError, match="preset"):
        LargeBatchConfig.preset("huge")


@pytest.mark.parametrize(
    "field, value",
    [
        ("model", "resnet"),
        ("hidden", 0),
        ("methods", ("msgd", "adam")),
        ("methods", ()),
        ("methods", ("sngm", "sngm")),
        ("batch_sizes", (0, 64)),
        ("batch_sizes", ()),
        ("batch_sizes", (64.5,)),
        ("epochs", 0),
        ("epochs", float("nan")),
        ("lr_min", -1.0),
        ("lr_max", 1e-4),
        ("num_lr", 0),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-4),
        ("schedule", "linear"),
        ("seeds", ()),
        ("seeds", (0, 0)),
        ("seeds", (-1,)),
        ("test_fraction", 0.0),
        ("val_fraction", 0.8),
        ("split_seed", -1),
        ("num_evals", 0),
        ("parity_tolerance", 0.0),
        ("ci_level", 1.0),
        ("hidden", True),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(LargeBatchConfig(), **{field: value})


def test_from_dict_round_trip_and_errors():
    cfg = LargeBatchConfig.from_dict(
        {"seeds": 3, "batch_sizes": [16, 256], "methods": ["msgd", "sngm"]}
    )
    assert cfg.seeds == (0, 1, 2)
    assert cfg.batch_sizes == (16, 256) and cfg.large_batch == 256
    assert LargeBatchConfig.from_dict(cfg.to_dict()) == cfg
    assert LargeBatchConfig.from_dict(None) == LargeBatchConfig()
    with pytest.raises(ValueError, match="bogus"):
        LargeBatchConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="batch_sizes"):
        LargeBatchConfig.from_dict({"batch_sizes": 64})


def test_steps_are_equal_gradient_computations():
    cfg = LargeBatchConfig(epochs=30.0)
    assert cfg.steps(512, 1077) == math.ceil(30 * 1077 / 512)
    assert cfg.steps(64, 1077) * 64 >= 30 * 1077 > (cfg.steps(64, 1077) - 1) * 64


# --------------------------------------------------------------------------- data


def test_digits_split_is_stratified_disjoint_and_standardized():
    cfg = LargeBatchConfig()
    a, b = load_digits_split(cfg), load_digits_split(cfg)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    n = {k: len(a[f"y_{k}"]) for k in ("train", "val", "test")}
    assert sum(n.values()) == 1797
    assert abs(n["test"] / 1797 - cfg.test_fraction) < 0.01
    assert abs(n["val"] / 1797 - cfg.val_fraction) < 0.01
    for k in ("train", "val", "test"):
        assert a[f"X_{k}"].dtype == np.float32 and a[f"X_{k}"].shape[1] == 64
        assert set(np.unique(a[f"y_{k}"])) == set(range(10))
    # no image in two parts (rows of the raw data are distinct enough to check by value)
    rows = {k: {r.tobytes() for r in a[f"X_{k}"]} for k in ("train", "val", "test")}
    assert not (rows["train"] & rows["test"]) and not (rows["train"] & rows["val"])
    np.testing.assert_allclose(a["X_train"].mean(axis=0), 0.0, atol=1e-5)
    other = load_digits_split(dataclasses.replace(cfg, split_seed=1))
    assert not np.array_equal(other["y_test"], a["y_test"])


# --------------------------------------------------------------------------- run


def test_run_is_deterministic_and_leaves_global_state(tiny_df):
    state = torch.get_rng_state()
    threads = torch.get_num_threads()
    again = run_large_batch(TINY)
    pd.testing.assert_frame_equal(tiny_df, again)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    other = run_large_batch(dataclasses.replace(TINY, seeds=(5, 1), batch_sizes=(128,)))
    a = tiny_df[(tiny_df["seed"] == 1) & (tiny_df["batch_size"] == 128)].reset_index(drop=True)
    b = other[other["seed"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)  # a seed's runs do not depend on the other seeds
    assert not np.array_equal(
        tiny_df[tiny_df["seed"] == 0]["test_acc"].to_numpy(),
        tiny_df[tiny_df["seed"] == 1]["test_acc"].to_numpy(),
    )


def test_run_layout_equal_steps_and_common_start(tiny_df):
    df = tiny_df
    n_train = len(load_digits_split(TINY)["y_train"])
    n_runs = len(TINY.batch_sizes) * len(METHODS) * TINY.num_lr * len(TINY.seeds)
    final = df[df["step"] == df["steps_total"]]
    assert len(final) == n_runs
    assert set(df["status"]) == {"ok"}
    for B, g in df.groupby("batch_size"):
        assert g["steps_total"].nunique() == 1  # every method and lr: same gradient count
        assert g["steps_total"].iloc[0] == TINY.steps(B, n_train)
    # same seed -> same initial weights for every method and learning rate
    start = df[df["step"] == 0]
    assert (start.groupby(["batch_size", "seed"])["test_acc"].nunique() == 1).all()
    assert {"train_loss", "val_acc", "test_acc", "epoch", "lr", "momentum"} <= set(df.columns)
    assert final["test_acc"].between(0, 1).all()


def test_batch_larger_than_training_set_is_refused():
    with pytest.raises(ValueError, match="batch_sizes"):
        run_large_batch(dataclasses.replace(TINY, batch_sizes=(5000,)))


def test_divergence_is_recorded_and_scores_zero():
    cfg = dataclasses.replace(
        TINY,
        methods=("msgd",),
        batch_sizes=(128,),
        lr_min=1e9,
        lr_max=1e9,
        num_lr=1,
        schedule="constant",
    )
    df = run_large_batch(cfg)
    assert set(df["status"]) == {"diverged"}
    a = analyze_large_batch(df, cfg)
    (t,) = a["tuned"]
    assert t["test_acc_mean"] == 0.0 and t["n_diverged"] == len(cfg.seeds)


def test_progress_reports_each_grid_point():
    msgs = []
    cfg = dataclasses.replace(TINY, batch_sizes=(128,), methods=("sngm",))
    run_large_batch(cfg, progress=msgs.append)
    assert len(msgs) == cfg.num_lr and all("sngm" in m for m in msgs)


# --------------------------------------------------------------------------- analysis, claims


def test_analysis_and_claims_end_to_end(tiny_df):
    a = analyze_large_batch(tiny_df, TINY)
    assert a["large_batch"] == 128
    assert len(a["tuned"]) == len(TINY.batch_sizes) * len(METHODS)
    for t in a["tuned"]:
        assert t["lr"] in a["lr_grid"]
        assert len(t["test_acc_per_seed"]) == len(TINY.seeds)
        assert np.isclose(t["test_acc_mean"], np.mean(t["test_acc_per_seed"]))
    comp = {(c["batch_size"], c["method"]): c for c in a["comparisons"]}
    assert set(comp) == {(B, m) for B in TINY.batch_sizes for m in ("sngm", "rsgdm")}
    for claim, cid in [(claim_s1(a), "S1"), (claim_s4(a), "S4")]:
        assert_claim_shape(claim, cid)
        assert claim["figure"].startswith("figures/seeds/") and claim["figure"].endswith(".pdf")
    # tuned on validation, paired by seed
    c = comp[(128, "sngm")]
    tuned = {(t["batch_size"], t["method"]): t for t in a["tuned"]}
    diff = np.subtract(
        tuned[(128, "sngm")]["test_acc_per_seed"], tuned[(128, "msgd")]["test_acc_per_seed"]
    )
    np.testing.assert_allclose(c["diff_per_seed"], diff)
    table = tuned_table(a)
    assert len(table) == len(a["tuned"])
    assert set(table["method"]) == {"MSGD", "SNGM", "RS-SGDM"}
    row = table[(table["batch_size"] == 128) & (table["method"] == "SNGM")].iloc[0]
    assert row["diff_vs_msgd"] == pytest.approx(100 * c["diff_mean"])
    assert (table.loc[table["method"] == "MSGD", "diff_vs_msgd"] == 0).all()


def _analysis(diff, sem, n=5, edge=False, method="sngm", tol=0.01):
    base = {
        "batch_size": 512,
        "method": "msgd",
        "lr": 0.3,
        "lr_index": 3,
        "at_grid_edge": False,
        "test_acc_mean": 0.96,
        "test_acc_std": 0.01,
        "steps": 64,
    }
    mine = {**base, "method": method, "lr": 0.1, "at_grid_edge": edge, "test_acc_mean": 0.96 + diff}
    half = 2.78 * sem
    return {
        "large_batch": 512,
        "ci_level": 0.95,
        "parity_tolerance": tol,
        "config": {"model": "mlp"},
        "tuned": [base, mine],
        "comparisons": [
            {
                "batch_size": 512,
                "method": method,
                "baseline": "msgd",
                "diff_mean": diff,
                "diff_std": sem * math.sqrt(n),
                "diff_sem": sem,
                "diff_ci": [diff - half, diff + half],
                "diff_per_seed": [diff] * n,
                "n": n,
            }
        ],
    }


@pytest.mark.parametrize(
    "diff, sem, verdict",
    [
        (0.010, 0.003, "PASS"),  # better
        (-0.002, 0.003, "PASS"),  # within one standard error
        (-0.004, 0.003, "FAIL"),  # worse beyond one standard error
        (-0.030, 0.003, "FAIL"),
    ],
)
def test_claim_s1_logic(diff, sem, verdict):
    c = claim_s1(_analysis(diff, sem))
    assert c["verdict"] == verdict
    (ch,) = c["checks"]
    assert ch["measured"] == pytest.approx(100 * diff)
    assert ch["pass"] is (verdict == "PASS")
    assert ch["significantly_better"] is (diff - 2.78 * sem > 0)


def test_claim_s1_inconclusive_cases():
    assert claim_s1(_analysis(0.01, 0.003, edge=True))["verdict"] == "INCONCLUSIVE"
    one = _analysis(0.01, math.nan, n=1)
    c = claim_s1(one)
    assert c["verdict"] == "INCONCLUSIVE" and "inconclusive_because" in c["checks"][0]
    missing = _analysis(0.01, 0.003)
    missing["comparisons"] = []
    assert claim_s1(missing)["verdict"] == "INCONCLUSIVE"


@pytest.mark.parametrize(
    "diff, tol, verdict",
    [
        (0.004, 0.01, "PASS"),
        (-0.009, 0.01, "PASS"),
        (-0.02, 0.01, "FAIL"),
        (0.015, 0.01, "FAIL"),
        (0.015, 0.02, "PASS"),
    ],
)
def test_claim_s4_logic(diff, tol, verdict):
    c = claim_s4(_analysis(diff, 0.003, method="rsgdm", tol=tol))
    assert c["id"] == "S4" and c["verdict"] == verdict
    assert c["checks"][0]["measured"] == pytest.approx(100 * abs(diff))
    assert c["checks"][0]["signed_difference_pp"] == pytest.approx(100 * diff)


def test_claim_source_and_figure_override():
    c = claim_s1(_analysis(0.01, 0.003), source="x.parquet", figure="figures/seeds/y.pdf")
    assert c["source"] == "x.parquet" and c["figure"] == "figures/seeds/y.pdf"


# --------------------------------------------------------------------------- figure


def test_figure_writes_pdf_and_png(tiny_df, tmp_path):
    a = analyze_large_batch(tiny_df, TINY)
    out = tmp_path / "seeds" / "large_batch.pdf"
    figures.large_batch_figure(tiny_df, a, out)
    assert out.stat().st_size > 0 and out.with_suffix(".png").stat().st_size > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["large_batch.pdf", "large_batch.png"]
