"""The paper's generated inputs: every number the .tex prints is generated, a changed
result changes its macro and table row, and a missing number stops the build."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO_ROOT
from minibatch_momentum.report import paper
from minibatch_momentum.report.paper import build_pdf, paper_inputs

PAPER = REPO_ROOT / "paper"
HAVE_TEX = shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def _claims(other_pair=False):
    def entry(cid, method, measured, problem="gaussian", sampler="without_replacement"):
        return {
            "id": cid,
            "method": method,
            "problem": problem,
            "sampler": sampler,
            "statement": "s",
            "verdict": "PASS",
            "checks": [
                {"check": "a_b check", "measured": measured, "predicted": 1.0,
                 "tolerance": "+/- 0.15", "pass": True},
                {"check": "second", "measured": [1.0, 2.0], "predicted": 1.0,
                 "tolerance": "within [0.7, 1.5]", "pass": False},
            ],
        }  # fmt: skip

    out = [entry(c, m, 0.912) for c in ("C1", "C2", "C3", "C4", "T2") for m in ("hb", "nag")]
    out.append(entry("C7", "hb", 0.48, problem="kappa scan", sampler="all"))
    for c in out:
        for ch in c["checks"]:
            ch["interval"] = [0.8, 1.0]
    for cid, m in (("S7a", "sgd"), ("S7b", "shb"), ("S7b", "nshb"), ("S7c", "all")):
        out.append(entry(cid, m, -0.5, problem="digits-mlp"))
        out[-1]["checks"][0]["ci"] = [-0.7, -0.3]
    if other_pair:
        out += [entry(c, "hb", 0.333, "heavy", "kaczmarz") for c in ("C1", "C2", "C3")]
        out[-1]["verdict"] = "FAIL"
        out += [
            {**entry("C5", "hb", "PASS", "all", "kaczmarz"), "verdict": "FAIL"},
            entry("C6", "hb", "PASS", "heavy", "all"),
        ]
    return out


def test_other_pairs_go_to_the_coverage_table_not_the_headline_numbers(inputs):
    inputs["claims"].write_text(json.dumps({"claims": _claims(other_pair=True)}))
    numbers = _run(inputs)
    assert numbers["C1.hb.1.measured"] == "0.912"  # the headline pair's, not 0.333
    assert numbers["coverage.pairs"] == "2"
    assert numbers["C5.kaczmarz.hb.verdict"] == "FAIL"
    assert numbers["C6.heavy.hb.verdict"] == "PASS"
    table = (inputs["out"] / "claims_table.tex").read_text()
    assert "0.333" not in table and "0.912" in table
    cover = (inputs["out"] / "coverage_table.tex").read_text()
    assert r"heavy & kaczmarz & hb & pass & pass & \textbf{fail} & --" in cover
    assert r"C5 & kaczmarz & hb & \multicolumn{4}{c}{\textbf{fail}}" in cover


@pytest.fixture
def inputs(tmp_path):
    """A results tree shaped like the pipeline's, with made-up numbers."""
    summary = tmp_path / "results" / "summaries" / "gaussian" / "without_replacement"
    summary.mkdir(parents=True)
    meta = {"n": 1024, "d": 16, "kappa": 100.0, "stable_rank": 4.5, "B_sgd": 4.5, "B_sat": 45.0}
    grid = {"num_eta": 5, "num_beta": 4, "eta_min": 1e-3, "eta_max": 4.0,
            "one_minus_beta_min": 1e-3, "one_minus_beta_max": 0.5}  # fmt: skip
    (summary / "summary.json").write_text(json.dumps({"problem": meta, "grid": grid, "eps": 1e-4}))
    rows = [
        {"method": m, "batch_size": b, "T_gmean": 1000.0 / b + k, "n_seeds": 3}
        for k, m in enumerate(("sgd", "hb", "nag"))
        for b in (1, 4, 16)
    ]
    pd.DataFrame(rows).to_parquet(summary / "tuned.parquet")
    claims = tmp_path / "results" / "claims.json"
    claims.write_text(json.dumps({"claims": _claims()}))
    bench = tmp_path / "results" / "benchmarks"
    (bench / "sweep").mkdir(parents=True)
    for i in range(3):
        (bench / "sweep" / f"B{i}.tsv").write_text(f"s\th:m:s\n{1 + i}\t0:00:01\n")
    (bench / "claims.tsv").write_text("s\th:m:s\n0.7\t0:00:00\n")
    return {"claims": claims, "summary": summary, "bench": bench, "out": tmp_path / "gen"}


def _run(inputs):
    return paper_inputs(inputs["claims"], inputs["summary"], inputs["bench"], inputs["out"])


def _keys_used() -> set[str]:
    keys = set()
    for tex in PAPER.rglob("*.tex"):
        if "generated" not in tex.parts:
            text = re.sub(r"(?<!\\)%.*", "", tex.read_text())  # drop comments
            keys |= set(re.findall(r"\\mbm\{([^}]+)\}", text))
    return keys


def test_every_number_the_paper_uses_is_generated(inputs):
    numbers = _run(inputs)
    missing = sorted(_keys_used() - set(numbers))
    assert _keys_used(), "the paper uses no generated numbers?"
    assert not missing, f"paper/*.tex uses numbers nothing generates: {missing}"


def test_a_changed_result_changes_its_macro_and_table_row(inputs):
    _run(inputs)
    numbers_before = (inputs["out"] / "numbers.tex").read_text()
    table_before = (inputs["out"] / "claims_table.tex").read_text()
    assert r"\csname mbm@C1.hb.1.measured\endcsname{0.912}" in numbers_before
    claims = json.loads(inputs["claims"].read_text())
    claims["claims"][0]["checks"][0]["measured"] = 0.537
    inputs["claims"].write_text(json.dumps(claims))
    _run(inputs)
    numbers_after = (inputs["out"] / "numbers.tex").read_text()
    table_after = (inputs["out"] / "claims_table.tex").read_text()
    assert r"\csname mbm@C1.hb.1.measured\endcsname{0.537}" in numbers_after
    assert "0.537" in table_after and "0.537" not in table_before
    changed = set(numbers_after.splitlines()) ^ set(numbers_before.splitlines())
    assert {ln.split("{")[0] for ln in changed} == {
        r"\expandafter\def\csname mbm@C1.hb.1.measured\endcsname"
    }


def test_table_escapes_latex_and_prints_numbers(inputs):
    _run(inputs)
    table = (inputs["out"] / "claims_table.tex").read_text()
    assert r"a\_b check" in table and r"\textbf{PASS}" in table
    assert "1, 2" in table  # a [min, max] pair


def test_timings_come_from_the_benchmark_files(inputs):
    numbers = _run(inputs)
    assert numbers["time.sweep.jobs"] == "3" and numbers["time.sweep.total"] == "6"
    assert "claims & 1 & 0.7" in (inputs["out"] / "timings_table.tex").read_text()


def test_keys_latex_cannot_name_are_refused():
    with pytest.raises(ValueError, match="cannot name"):
        paper.macros({"bad key{": "1"})


def test_missing_tex_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="apt-get install latexmk"):
        build_pdf(tmp_path / "x.tex", tmp_path / "x.pdf")


def _minimal_tex(tmp_path: Path, body: str) -> Path:
    main = (PAPER / "main.tex").read_text()
    macro = main[main.index(r"\makeatletter") : main.index(r"\makeatother") + len(r"\makeatother")]
    tex = tmp_path / "doc.tex"
    tex.write_text(
        "\\documentclass{article}\n" + macro + "\n\\input{gen/numbers.tex}\n"
        "\\begin{document}\n" + body + "\n\\end{document}\n"
    )
    return tex


@pytest.mark.skipif(not HAVE_TEX, reason="latexmk/pdflatex not installed")
def test_defined_number_builds_and_missing_number_fails(inputs, tmp_path):
    inputs["out"] = tmp_path / "gen"
    _run(inputs)
    ok = _minimal_tex(tmp_path, r"kappa is \mbm{problem.kappa}.")
    build_pdf(ok, tmp_path / "ok.pdf")
    assert (tmp_path / "ok.pdf").stat().st_size > 0
    bad = _minimal_tex(tmp_path, r"this is \mbm{no.such.number}.")
    with pytest.raises(RuntimeError, match="no.such.number|latexmk failed"):
        build_pdf(bad, tmp_path / "bad.pdf")
    assert not (tmp_path / "bad.pdf").exists()
