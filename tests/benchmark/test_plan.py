"""The pre-flight plan (``mbm plan`` and the Snakefile's check): spectra without
generating, predicted steps against the exact theory, hopeless shards refused before any
job; and the workflow's inputs and processes (issue "nothing wasted, nothing stale",
items 1, 2, 3 and 5)."""

from __future__ import annotations

import copy
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PYTHON, REPO_ROOT, subprocess_env
from minibatch_momentum.benchmark import plan as mbm_plan
from minibatch_momentum.config import prepare
from minibatch_momentum.problems.families import make_problem
from minibatch_momentum.problems.system import spectrum
from minibatch_momentum.theory.gaussian import Gaussian
from minibatch_momentum.theory.tuning import batch_scaling
from test_workflow import copy_workflow, job_counts, snakemake, write_config


def config_of(problems: dict, **sweep) -> dict:
    return prepare({"problems": problems, "sweep": sweep})


GAUSS = {"family": "gaussian", "d": 16, "n": 512, "kappa": 300, "seed": 0}


def ill_conditioned_matrix(path, n=300, d=40, kappa_A=3e3, seed=0):
    """An n x d matrix with singular values from 1 down to 1/kappa_A: the rows form has
    kappa(H) = kappa_A^2, as a user's ill-conditioned kernel matrix would."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s = np.geomspace(1.0, 1.0 / kappa_A, d)
    np.save(path, (U * s) @ V.T)


# --------------------------------------------------------------------------- the plan


def test_spectral_quantities_match_the_generated_problem():
    cfg = config_of({"g": GAUSS, "h": {**GAUSS, "family": "heavy_tailed", "seed": 3}})
    result = mbm_plan.plan(cfg)
    for name in ("g", "h"):
        p = result["problems"][name]
        assert p.source == "spectrum"  # prescribed: nothing generated
        made = make_problem(cfg["problems"][name]).spectral_summary()
        for key in ("L", "mu", "kappa", "trace", "B_sgd", "B_sat"):
            assert p.quantities[key] == pytest.approx(made[key], rel=1e-8), key


def test_predicted_steps_are_within_the_rules_factor_of_the_exact_optimum():
    cfg = config_of({"g": GAUSS}, batch_sizes=[1, 8, 64], methods=["sgd", "hb"])
    result = mbm_plan.plan(cfg)
    lam = spectrum(16, 300.0)
    for s in result["shards"]:
        assert s.where == "rule" and not s.hopeless
        best = batch_scaling(
            Gaussian(lam, n=512, replace=False), s.method, [s.batch_size], eps=1e-4
        ).iterations[0]
        assert best <= s.steps * (1 + 1e-9) <= 1.5 * best, (s, best)


def test_a_hopeless_problem_is_found_and_named(tmp_path):
    ill_conditioned_matrix(tmp_path / "A.npy")
    spec = {"family": "matrix", "path": "A.npy"}
    cfg = config_of({"m": spec}, batch_sizes=[1, 4], stop={"t_max": 3000})
    result = mbm_plan.plan(cfg, root=str(tmp_path))
    kappa = result["problems"]["m"].quantities["kappa"]
    assert kappa == pytest.approx(9e6, rel=1e-3)
    assert result["hopeless"] and all(s.steps > 3000 for s in result["hopeless"])
    with pytest.raises(mbm_plan.HopelessError) as info:
        mbm_plan.check(cfg, root=str(tmp_path))
    msg = str(info.value)
    assert "problem 'm' (kappa 9e+06)" in msg and "t_max = 3000" in msg
    assert "sweep.allow_hopeless: true" in msg and "\n" not in msg
    # opting in, for the sweep or for the study
    cfg["sweep"]["allow_hopeless"] = True
    mbm_plan.check(cfg, root=str(tmp_path))
    cfg["sweep"]["allow_hopeless"] = False
    cfg["studies"] = {"m": {"samplers": ["without_replacement"], "allow_hopeless": True}}
    prepare(cfg)
    mbm_plan.check(cfg, root=str(tmp_path))


def test_a_well_posed_problem_with_a_short_t_max_is_hopeless_only_where_it_is():
    # HB's noise-limited count falls with B: small batches need more than t_max
    cfg = config_of({"g": GAUSS}, batch_sizes=[1, 64], methods=["hb"], stop={"t_max": 1500})
    result = mbm_plan.plan(cfg)
    by_B = {s.batch_size: s for s in result["shards"]}
    assert by_B[1].hopeless and not by_B[64].hopeless
    assert by_B[1].steps > 1500 >= by_B[64].steps


def test_the_grid_decides_not_only_the_rule():
    # a grid far below the rule's step: the rule's point converges, no grid point does
    grid = {"eta_min": 1e-6, "eta_max": 1e-5, "num_eta": 3}
    cfg = config_of({"g": GAUSS}, batch_sizes=[64], methods=["hb"], grid=grid)
    cfg["sweep"]["stop"]["t_max"] = 20000
    result = mbm_plan.plan(cfg)
    (s,) = result["shards"]
    assert s.hopeless and s.where == "none" and s.steps > 20000


def test_the_time_estimate_uses_the_benchmark_cost_model():
    from minibatch_momentum.benchmark.cost import (
        REFERENCE_MODEL,
        GPUAssumptions,
        reference_sampler_seconds,
        shard_seconds,
    )

    cfg = config_of({"g": GAUSS}, batch_sizes=[8], methods=["sgd"])
    (s,) = mbm_plan.plan(cfg)["shards"]
    steps = math.ceil(cfg["sweep"]["stop"]["censor_factor"] * s.steps)
    want = shard_seconds(
        8, 16, 26, steps, 3, REFERENCE_MODEL, GPUAssumptions(), reference_sampler_seconds(512, 8)
    )
    assert (s.cpu_s, s.gpu_s) == pytest.approx(want)


def test_the_plan_covers_the_shards_the_workflow_runs(wf):
    """The default profile's plan against its dry run: the same (problem, sampler,
    method, batch size) shards, the scan pairs of claim C7 and the per-study methods and
    batch-size caps included (quick.yaml: SGD to 256 on the headline, gaussian_k256 swept
    with SGD and heavy ball only)."""
    import json

    import yaml

    config = prepare(yaml.safe_load((REPO_ROOT / "workflow/config/quick.yaml").read_text()))
    planned = {
        (s.problem, s.sampler, s.method, s.batch_size) for s in mbm_plan.plan(config)["shards"]
    }
    code, out = snakemake("-n", "-p", "--forceall", cwd=wf)
    assert code == 0, out[-2000:]
    run = set()
    for spec in re.findall(r"minibatch_momentum sweep .*?--spec '(\{.*?\})'", out):
        job = json.loads(spec)
        for B in job["batch_sizes"]:
            run.add((job["problem"], job["sampler"], job["method"], B))
    assert run and planned == run
    assert ("gaussian", "without_replacement", "sgd", 512) not in planned
    assert {m for p, _, m, _ in planned if p == "gaussian_k256"} == {"sgd", "hb"}


def test_mbm_plan_prints_the_table_and_exits_2_on_a_hopeless_config(tmp_path):
    ill_conditioned_matrix(tmp_path / "A.npy")
    good = write_config(tmp_path / "good.yaml", {"problems": {"g": GAUSS}})
    bad = write_config(
        tmp_path / "bad.yaml",
        {
            "problems": {"m": {"family": "matrix", "path": "A.npy"}},
            "sweep": {"batch_sizes": [1, 4], "stop": {"t_max": 3000}},
        },
    )

    def run(path):
        return subprocess.run(
            [PYTHON, "-m", "minibatch_momentum", "plan", "--configfile", path.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=120,
        )

    ok = run(good)
    assert ok.returncode == 0, ok.stderr
    assert re.search(r"g\s+rows\s+512\s+16\s+1\s+0\.00333\s+300", ok.stdout), ok.stdout
    assert "B*_SGD" in ok.stdout and "on one GPU" in ok.stdout
    no = run(bad)
    assert no.returncode == 2
    assert "!" in no.stdout and "refuses to start" in no.stdout
    assert no.stderr.strip().startswith("mbm plan: error: plan: problem 'm' (kappa 9e+06)")


# --------------------------------------------------------------------------- the workflow


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf_plan"))


def test_the_dry_run_refuses_a_hopeless_config_unless_it_opts_in(wf):
    ill_conditioned_matrix(wf / "A.npy")
    cfg = {
        "problems": {"m": {"family": "matrix", "path": "A.npy"}},
        "sweep": {"batch_sizes": [1, 4], "stop": {"t_max": 3000}},
    }
    path = write_config(wf / "hopeless.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=wf)
    assert code != 0
    assert "plan: problem 'm' (kappa 9e+06) cannot reach eps" in out, out[-2000:]
    assert "Job stats" not in out and not (wf / "results").exists()
    cfg["sweep"]["allow_hopeless"] = True
    path = write_config(wf / "allowed.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=wf)
    assert code == 0, out[-2000:]


MATRIX = {
    "problems": {"m": {"family": "matrix", "path": "data/A.npy", "rhs": "data/b.npy"}},
    "sweep": {"batch_sizes": [1, 4], "methods": ["sgd"], "seeds": 1},
    "theory": {"t1": {"methods": []}},
}


def test_a_missing_matrix_stops_the_dry_run(wf):
    path = write_config(wf / "missing.yaml", MATRIX)
    code, out = snakemake("-n", "--configfile", path.name, cwd=wf)
    assert code != 0
    assert "MissingInputException" in out or "Missing input files" in out, out[-2000:]
    assert "data/A.npy" in out


def test_an_edited_matrix_or_rhs_reruns_the_problem(wf):
    data = wf / "data"
    data.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((24, 6))
    np.save(data / "A.npy", A)
    np.save(data / "b.npy", A @ rng.standard_normal(6))
    path = write_config(wf / "matrix.yaml", MATRIX)
    target = "results/problems/m.npz"
    code, out = snakemake("--cores", "1", target, "--configfile", path.name, cwd=wf)
    assert code == 0, out[-3000:]
    code, out = snakemake("-n", target, "--configfile", path.name, cwd=wf)
    assert code == 0 and job_counts(out) == {}, out[-2000:]
    for name, value in (("A.npy", 2 * A), ("b.npy", A @ rng.standard_normal(6))):
        np.save(data / name, value)
        code, out = snakemake("-n", target, "--configfile", path.name, cwd=wf)
        assert code == 0, out[-2000:]
        assert job_counts(out) == {"problem": 1}, (name, out[-2000:])


def test_a_rerun_after_a_killed_write_leaves_no_temporary_file(wf):
    # What a SIGKILL during the write leaves: the shard's temporary sibling and no shard.
    cfg = copy.deepcopy(MATRIX)
    cfg["problems"] = {"g": {"family": "gaussian", "d": 4, "n": 64, "kappa": 10, "seed": 0}}
    path = write_config(wf / "killed.yaml", cfg)
    shard = wf / "results" / "runs" / "g" / "without_replacement" / "sgd.parquet"
    shard.parent.mkdir(parents=True, exist_ok=True)
    stale = shard.parent / ".sgd.parquet.x7k2m9qa.tmp"
    stale.write_bytes(b"PAR1 half a file")
    rel = str(shard.relative_to(wf))
    code, out = snakemake("--cores", "1", rel, "--configfile", path.name, cwd=wf)
    assert code == 0, out[-3000:]
    assert shard.is_file()
    leftovers = [p for p in (wf / "results").rglob("*.tmp")]
    assert leftovers == []


def test_every_rule_execs_its_command():
    """A kill of a job's shell must reach the Python process: each rule's command replaces
    the shell (``exec``), so no orphan can write an output after the job has failed."""
    rules = sorted((REPO_ROOT / "workflow" / "rules").glob("*.smk"))
    commands = []
    for path in rules:
        text = path.read_text()
        # Rules made in a loop are indented one level deeper; every ``shell:`` must parse.
        blocks = re.findall(r"\n( +)shell:\n((?:\1    \".*\"\n)+)", text)
        assert len(blocks) == text.count("shell:"), path.name
        for _, block in blocks:
            commands.append((path.name, "".join(re.findall(r'"(.*)"', block))))
    assert len(commands) >= 20
    for name, cmd in commands:
        words = cmd.split()
        while words and re.fullmatch(r"[A-Z_]+=\S+", words[0]):
            words.pop(0)  # environment assignments apply to the exec'd command
        assert words[:2] == ["exec", "python"], (name, cmd)


def _job_processes(marker: str) -> list[tuple[int, int]]:
    """``(pid, parent pid)`` of the processes whose command line holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if marker in cmd and "bash" not in cmd.split()[0]:
            found.append((int(proc.name), ppid))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_running_job_is_python_itself_not_a_child_of_its_shell(wf):
    """The job's Python process is what Snakemake started (the shell exec'd it), so a
    SIGKILL of the job reaches the process that writes the output."""
    cfg = copy.deepcopy(MATRIX)
    cfg["problems"] = {"slow": {"family": "gaussian", "d": 32, "n": 4096, "kappa": 1e3, "seed": 0}}
    cfg["sweep"] = {"batch_sizes": [1], "methods": ["hb"], "seeds": 1}
    path = write_config(wf / "slow.yaml", cfg)
    target = "results/runs/slow/without_replacement/hb.parquet"
    proc = subprocess.Popen(
        [PYTHON, "-m", "snakemake", "--cores", "1", target, "--configfile", path.name],
        cwd=wf,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        jobs = []
        for _ in range(1200):  # the problem job first, then the sweep: up to 2 minutes
            jobs = _job_processes("minibatch_momentum sweep --problem results/problems/slow")
            if jobs or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert jobs, "the sweep job was not seen running"
        for pid, ppid in jobs:
            parent = (Path("/proc") / str(ppid) / "comm").read_text().strip()
            assert parent != "bash", (pid, ppid, parent)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
