"""The Snakemake workflow: config validation, dry run and lint of the repository, and a
tiny end-to-end run in a temporary copy with the rerun behaviour of changed config."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import PYTHON, REPO_ROOT, subprocess_env, with_value

SCHEMA = REPO_ROOT / "workflow" / "config" / "schema.yaml"
QUICK = REPO_ROOT / "workflow" / "config" / "quick.yaml"
FIGURES = (
    "tstar_vs_batch",
    "efficiency_vs_batch",
    "speedup_vs_batch",
    "loss_curves",
    "theory_vs_empirical",
    "rule_vs_grid",
    "rate_heatmap",
    "exact_vs_monte_carlo",
)
# The headline pair's figures, the figure grid of all pairs, and the T1 figure of both
# gaussian pairs (tiny_cd runs no T1).
FIGURE_RULES = {
    **{f"figure_{f}": 1 for f in FIGURES},
    "figure_exact_vs_monte_carlo": 2,
    "figure_tstar_grid": 1,
    "figure_kappa_scan": 1,
}
SUMMARY_FIGURE_RULES = {f"figure_{f}": 1 for f in FIGURES if f != "exact_vs_monte_carlo"} | {
    "figure_tstar_grid": 1
}
SEED_FIGURES = (
    "large_batch",
    "label_noise_momentum",
    "small_lr_equivalence",
    "batch_threshold",
    "baselines_vs_batch",
    "search_noise",
)
# The tiny runs stop before the paper (and so before `all`, which needs its PDF): the
# paper's text is written for the quick profile's numbers (tests/report/test_paper.py covers it).
NO_PAPER = ("--omit-from", "paper_inputs")

# The whole pipeline at toy sizes (shared with .ci/slurm-integration).
TINY = yaml.safe_load((REPO_ROOT / "tests" / "data" / "tiny.yaml").read_text())


# --------------------------------------------------------------------------- helpers


def snakemake(*args, cwd, timeout=300, paper=False):
    extra = () if paper or "--lint" in args else NO_PAPER
    proc = subprocess.run(
        # this interpreter's Snakemake (a virtual environment's, activated or not)
        [PYTHON, "-m", "snakemake", *args, *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=timeout,
    )
    return proc.returncode, proc.stdout + proc.stderr


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run as {rule: count}; {} if nothing to do."""
    if "Nothing to be done" in output:
        return {}
    m = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert m, output[-3000:]
    counts = (line.split() for line in m.group(1).strip().splitlines())
    # `all` only gathers targets; whether a dry run lists it depends on the paper setting
    return {r: int(c) for r, c in counts if r != "all"}


def dry_run_with(run: Path, key: str, value) -> tuple[dict[str, int], str]:
    """The jobs a dry run in ``run`` would start after one change to the tiny config
    (``key``: dotted path, as the config spells it); the run must succeed."""
    cfg = with_value(TINY, key, value)
    name = f"{key.replace('.', '_')}.yaml"
    write_config(run / name, cfg)
    code, out = snakemake("-n", "--configfile", name, cwd=run)
    assert code == 0, out[-2000:]
    return job_counts(out), out


def copy_workflow(dst: Path) -> Path:
    """Snakefile, workflow/, environment.yml and the package source, as in a fresh clone."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copy2(REPO_ROOT / "Snakefile", dst / "Snakefile")
    if (REPO_ROOT / "environment.yml").exists():
        shutil.copy2(REPO_ROOT / "environment.yml", dst / "environment.yml")
    shutil.copytree(REPO_ROOT / "workflow", dst / "workflow", ignore=ignore)
    # the paper's source (the pipeline builds it); not its generated or built files
    paper_ignore = shutil.ignore_patterns("generated", "build", "*.pdf", "*.aux", "*.log", "*.fls")
    shutil.copytree(REPO_ROOT / "paper", dst / "paper", ignore=paper_ignore)
    # a copy rather than a symlink: the jobs (and the rules' code inputs) see this
    # snapshot of src/, not files someone may be editing in the checkout meanwhile
    shutil.copytree(REPO_ROOT / "src", dst / "src", ignore=ignore)
    return dst


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def quick_config() -> dict:
    return yaml.safe_load(QUICK.read_text())


# --------------------------------------------------------------------------- schema


def test_quick_config_is_valid():
    cfg = quick_config()
    validate(cfg, str(SCHEMA))
    validate(copy.deepcopy(TINY), str(SCHEMA))


BAD_CONFIGS = [
    ("sweep.batch_sizes", [1, -4, 16], "['sweep']['batch_sizes']"),
    ("sweep.batch_sizes", [1, 0], "['sweep']['batch_sizes']"),
    ("sweep.batch_sizes", [], "['sweep']['batch_sizes']"),
    ("sweep.batch_sizes", [2.5], "['sweep']['batch_sizes']"),
    ("sweep.stop.eps", 1.0, "['sweep']['stop']['eps']"),
    ("sweep.stop.eps", 0, "['sweep']['stop']['eps']"),
    ("sweep.methods", ["sgd", "adam"], "['sweep']['methods']"),
    ("sweep.methods", [], "['sweep']['methods']"),
    ("sweep.samplers", ["sideways"], "['sweep']['samplers']"),
    ("sweep.grid.num_eta", 0, "['sweep']['grid']['num_eta']"),
    ("sweep.grid.num_beta", 0, "['sweep']['grid']['num_beta']"),
    ("sweep.seeds", 0, "['sweep']['seeds']"),
    ("sweep.stop.censor_factor", 1.0, "['sweep']['stop']['censor_factor']"),
    ("problems.gaussian.kappa", 0.5, "['problems']['gaussian']['kappa']"),
    ("problems.gaussian.d", KeyError, "'d' is a required property"),
    ("problems.gaussian.family", "kernel", "['problems']['gaussian']['family']"),
    ("claims.small_batch_ratio", [0.7], "['claims']['small_batch_ratio']"),
    ("sweep.grid.etamin", 1.0, "etamin"),
]


@pytest.mark.parametrize("path,value,where", BAD_CONFIGS)
def test_schema_rejects_bad_values_naming_the_field(path, value, where):
    cfg = with_value(quick_config(), path, value)
    with pytest.raises(WorkflowError) as info:
        validate(cfg, str(SCHEMA))
    assert where in str(info.value), str(info.value)


def test_schema_fills_defaults():
    cfg = quick_config()
    del cfg["sweep"]["stop"]["t_max"]
    cfg["claims"] = {}
    validate(cfg, str(SCHEMA))
    assert cfg["sweep"]["stop"]["t_max"] == 100000
    assert cfg["claims"]["efficiency"] == 0.5


@pytest.fixture(scope="module")
def bare_copy(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf_bad"))


@pytest.mark.parametrize(
    "override,field",
    [
        ({"sweep": {"batch_sizes": [1, -4]}}, "batch_sizes"),
        ({"sweep": {"stop": {"eps": 1.5}}}, "eps"),
        ({"sweep": {"methods": ["sgd", "adam"]}}, "methods"),
    ],
)
def test_snakemake_refuses_a_bad_configfile_naming_the_field(bare_copy, override, field):
    bad = write_config(bare_copy / f"bad_{field}.yaml", {"problems": TINY["problems"], **override})
    code, out = snakemake("-n", "--configfile", bad.name, cwd=bare_copy)
    assert code != 0
    assert field in out and out.startswith("Config error: "), out[-2000:]
    assert len(out.strip().splitlines()) == 1, out[-2000:]  # one line, no schema dump
    assert not (bare_copy / "results").exists()


def test_snakemake_refuses_a_bad_config_override(bare_copy):
    code, out = snakemake("-n", "--config", "sweep={methods: [sgd, adam]}", cwd=bare_copy)
    assert code != 0 and "sweep.methods[1]: 'adam' is not allowed" in out, out


def test_configfile_replaces_problems(bare_copy):
    cfg = copy.deepcopy(TINY)
    cfg["problems"] = {"tiny": cfg["problems"].pop("gaussian")}
    del cfg["studies"]  # without it: every problem with every sweep.samplers
    path = write_config(bare_copy / "named.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare_copy)
    assert code == 0, out[-2000:]
    assert "results/problems/tiny.npz" in out
    assert "results/problems/gaussian.npz" not in out  # quick.yaml's problem
    assert job_counts(out)["problem"] == 1


@pytest.mark.parametrize(
    "studies, message",
    [
        ({"gaussian": {"samplers": ["coordinate"]}}, "needs a problem with form psd"),
        ({"tiny_cd": {"samplers": ["kaczmarz"]}}, "needs a problem with form rows"),
        ({"nowhere": {"samplers": ["kaczmarz"]}}, "studies.nowhere: no problem of that name"),
    ],
)
def test_snakemake_refuses_a_sampler_that_does_not_fit_the_problem(bare_copy, studies, message):
    cfg = copy.deepcopy(TINY)
    cfg["studies"] = studies
    path = write_config(bare_copy / "bad_study.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare_copy)
    assert code != 0
    assert message in out


def test_studies_pick_the_pairs_and_their_batch_sizes(bare_copy):
    path = write_config(bare_copy / "studies.yaml", TINY)
    code, out = snakemake("-n", "-p", "--configfile", path.name, cwd=bare_copy)
    assert code == 0, out[-2000:]
    jobs = job_counts(out)
    methods = len(TINY["sweep"]["methods"])
    assert jobs["sweep"] == methods * 3  # a job per (problem, sampler, method)
    assert jobs["summarize"] == 3 and jobs["theory"] == 3
    assert jobs["montecarlo"] == 2  # t1: false for tiny_cd
    assert jobs["figure_tstar_grid"] == 1
    assert "results/runs/tiny_cd/coordinate/hb.parquet" in out
    # tiny_cd's own sizes in its sweep jobs' specs (the shell commands, -p)
    assert out.count('"batch_sizes": [1, 4, 16, 64], "dtype"') == methods


def test_t1_can_be_turned_off(bare_copy):
    cfg = copy.deepcopy(TINY)
    cfg["theory"]["t1"]["methods"] = []
    path = write_config(bare_copy / "no_t1.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare_copy)
    assert code == 0, out[-2000:]
    jobs = job_counts(out)
    assert "montecarlo" not in jobs and "figure_exact_vs_monte_carlo" not in jobs
    assert jobs["theory"] == 3 and jobs["claims"] == 1


# --------------------------------------------------------------------------- the repository


def test_dry_run_of_the_repository():
    # --forceall: the verdict must not depend on results already in the checkout
    # (after a full run, a plain -n has nothing to do and lists no job)
    code, out = snakemake("-n", "--forceall", cwd=REPO_ROOT, paper=True)
    assert code == 0, out[-3000:]
    assert "Building DAG of jobs" in out
    assert "results/paper/main.pdf" in out  # quick.yaml: paper: true


def test_lint_of_the_repository_is_clean():
    code, out = snakemake("--lint", cwd=REPO_ROOT)
    assert code == 0, out
    assert "Lints for" not in out, out


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    wf = copy_workflow(tmp_path_factory.mktemp("wf_tiny"))
    write_config(wf / "tiny.yaml", TINY)
    code, out = snakemake("--cores", "2", "--configfile", "tiny.yaml", cwd=wf, timeout=600)
    if code != 0:
        logs = (
            "\n".join(
                f"--- {p.relative_to(wf)}\n{p.read_text()[-1500:]}"
                for p in sorted((wf / "results" / "logs").rglob("*.log"))
            )
            if (wf / "results" / "logs").exists()
            else ""
        )
        pytest.fail(f"snakemake failed ({code}):\n{out[-4000:]}\n{logs}")
    return wf


@pytest.mark.slow  # shares the ~30-40 s end-to-end run (module fixture)
def test_end_to_end_outputs(tiny_run):
    wf = tiny_run
    report = json.loads((wf / "results" / "claims.json").read_text())
    assert report["tolerances"]["efficiency"] == TINY["claims"]["efficiency"]
    assert report["tolerances"]["plateau_factor"] == 1.5  # a default filled in
    claims = report["claims"]
    seeds = {"S1", "S2", "S3", "S4", "S5", "S6", "S7a", "S7b", "S7c"}
    ids = {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2"}
    assert {c["id"] for c in claims} == ids | seeds
    pairs = {(c["problem"], c["sampler"]) for c in claims if c["id"] == "C1"}
    assert pairs == {
        ("gaussian", "without_replacement"),
        ("gaussian", "kaczmarz"),
        ("tiny_cd", "coordinate"),
    }
    c5 = {c["sampler"] for c in claims if c["id"] == "C5"}
    assert c5 == {"without_replacement", "kaczmarz", "coordinate"}
    assert {c["problem"] for c in claims if c["id"] == "C6"} == {"gaussian", "tiny_cd"}
    t1 = {(c["problem"], c["sampler"]) for c in claims if c["id"] == "T1"}
    assert t1 == {("gaussian", "without_replacement"), ("gaussian", "kaczmarz")}
    assert {c["method"] for c in claims if c["id"] not in seeds | {"T2"}} == {"hb"}
    assert {c["method"] for c in claims if c["id"] == "T2"} == {"sgd", "hb"}
    seed_ids = [c["id"] for c in claims if c["id"] in seeds]
    assert seed_ids == sorted(seed_ids) and set(seed_ids) == seeds  # after C1-T1
    c3 = next(c for c in claims if c["id"] == "C3")
    assert "B_crit_interval" in c3["checks"][0] and np.isfinite(c3["checks"][0]["predicted"])
    for c in claims:
        assert c["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}
        assert c["checks"] and (wf / c["figure"]).is_file()
    md = (wf / "results" / "claims.md").read_text()
    assert md.startswith("# Claims: summary") and "# Claims C5 and C6" in md
    for ext in ("pdf", "png"):
        f = wf / "figures" / "coverage" / f"tstar_grid.{ext}"
        assert f.is_file() and f.stat().st_size > 1000, f
    cd_runs = sorted((wf / "results" / "runs" / "tiny_cd" / "coordinate").rglob("*.parquet"))
    assert [p.name for p in cd_runs] == ["hb.parquet", "sgd.parquet"]
    assert set(pd.read_parquet(cd_runs[0], columns=["batch_size"])["batch_size"]) == {1, 4, 16, 64}
    for fig in FIGURES:
        for ext in ("pdf", "png"):
            f = wf / "figures" / "gaussian" / "without_replacement" / f"{fig}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
    runs = wf / "results" / "runs" / "gaussian" / "without_replacement"
    shards = sorted(runs.rglob("*.parquet"))
    assert len(shards) == 2  # sgd and hb, each at B = 1, 4, 16
    meta = json.loads(pq.read_schema(shards[0]).metadata[b"mbm"])
    assert meta["spec"]["grid"] == TINY["sweep"]["grid"]
    assert meta["spec"]["stop"]["eps"] == TINY["sweep"]["stop"]["eps"]
    assert meta["spec"]["rule"]["noise_line"] == "trace"
    assert meta["spec"]["batch_sizes"] == TINY["sweep"]["batch_sizes"]
    # each shard also ran the rule's point, one row per batch size and seed
    for shard in shards:
        source = pq.read_table(shard, columns=["source"]).column("source").to_pylist()
        assert source.count("rule") == len(TINY["sweep"]["batch_sizes"]) * TINY["sweep"]["seeds"]
    theory = wf / "results" / "theory" / "gaussian" / "without_replacement"
    names = {p.name for p in theory.iterdir()}
    assert names == {
        "tstar.parquet",
        "rate_maps.parquet",
        "theory.json",
        "exact_vs_mc.parquet",
        "grid_tuned.parquet",
    }
    summary = wf / "results" / "summaries" / "gaussian" / "without_replacement"
    assert (summary / "rule.parquet").is_file() and (summary / "rule_runs.parquet").is_file()
    # the seed systems: data, claims files and figures
    for name in (
        "large_batch",
        "label_noise",
        "small_lr",
        "threshold",
        "baselines",
        "search_noise",
    ):
        assert (wf / "results" / "seeds" / f"{name}.parquet").is_file()
        assert (wf / "results" / "seeds" / f"{name}.claims.json").is_file()
    for fig in SEED_FIGURES:
        for ext in ("pdf", "png"):
            f = wf / "figures" / "seeds" / f"{fig}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
    shards = sorted((wf / "results" / "seeds" / "baselines").rglob("*.parquet"))
    assert [p.name for p in shards] == ["asgd.parquet", "mass.parquet", "sngm.parquet"]
    assert "# Seed systems" in (wf / "results" / "claims.md").read_text()
    # no temporary files anywhere in the results
    leftovers = [p for p in (wf / "results").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.slow  # a problem and one sweep job, twice (~30 s)
def _pdf_page_and_font_sizes(pdf: bytes) -> tuple[list[float], set[float]]:
    """The MediaBox and every ``Tf`` size of a matplotlib PDF (its streams are Flate)."""
    box = [float(v) for v in re.search(rb"/MediaBox \[([^\]]+)\]", pdf).group(1).split()]
    sizes = set()
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            text = zlib.decompress(raw)
        except zlib.error:
            continue
        sizes |= {float(v) for v in re.findall(rb"([0-9.]+) Tf", text)}
    return box, sizes


@pytest.mark.slow  # the end-to-end run's figures
def test_figures_print_unscaled_with_no_font_below_6pt(tiny_run):
    """Each figure PDF is as wide as it prints (half or all of the paper's line), the
    paper includes it unscaled, and no glyph, sub- and superscripts included, is below
    6 pt: the sizes in the PDF are the printed sizes."""
    from minibatch_momentum.figures.style import FULL, HALF, MIN_PT

    pdfs = sorted((tiny_run / "figures").rglob("*.pdf"))
    assert len(pdfs) >= len(FIGURES) + len(SEED_FIGURES)
    for pdf in pdfs:
        box, sizes = _pdf_page_and_font_sizes(pdf.read_bytes())
        width = (box[2] - box[0]) / 72
        assert min(abs(width - HALF), abs(width - FULL)) < 1e-3, (pdf, width)
        assert sizes and min(sizes) >= MIN_PT, (pdf, sorted(sizes))
    tex = "".join(p.read_text() for p in (REPO_ROOT / "paper").rglob("*.tex"))
    includes = re.findall(r"\\includegraphics(\[[^\]]*\])?\{", tex)
    assert includes and not any(includes), includes  # no width, scale or height option


def test_sweep_job_shows_progress_on_the_console_and_keeps_its_exit_status(tmp_path):
    wf = copy_workflow(tmp_path)
    write_config(wf / "tiny.yaml", TINY)
    shard = "results/runs/gaussian/without_replacement/hb.parquet"
    log = wf / "results/logs/sweep/gaussian/without_replacement/hb.log"
    code, out = snakemake(shard, "--cores", "1", "--configfile", "tiny.yaml", cwd=wf)
    assert code == 0, out[-3000:]
    seed_lines = [line for line in log.read_text().splitlines() if " seed=" in line]
    sweep = TINY["sweep"]
    assert len(seed_lines) == len(sweep["batch_sizes"]) * sweep["seeds"], log.read_text()
    for line in seed_lines:  # the log's progress lines, also on the console
        assert line in out

    # The log is tee'd: a failing command must still fail its job (pipefail), not pass as
    # tee's status would. Corrupt the problem file, keeping its time, and rerun the shard.
    problem = wf / "results/problems/gaussian.npz"
    stat = problem.stat()
    problem.write_bytes(b"not a problem file")
    os.utime(problem, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, out = snakemake(
        shard, "--forcerun", "sweep", "--cores", "1", "--configfile", "tiny.yaml", cwd=wf
    )
    assert code != 0
    assert "non-zero exit status" in out, out[-3000:]
    last = log.read_text().strip().splitlines()[-1]
    assert last in out
    assert not (wf / shard).exists()


@pytest.mark.slow  # shares the ~30-40 s end-to-end run (module fixture)
def test_unchanged_config_has_nothing_to_do(tiny_run):
    code, out = snakemake("-n", "--configfile", "tiny.yaml", cwd=tiny_run)
    assert code == 0 and job_counts(out) == {}, out[-2000:]


# One change to the tiny config -> exactly the jobs a dry run must start.
RERUNS = {
    "claims.efficiency": (0.4, {"claims": 1}),
    # the theory needs the problem only: it stays, and so does the T1 figure; of the seed
    # systems, S3 reads the shards and S6 the summary (its own shards stay)
    "sweep.grid.num_eta": (
        5,
        {
            "sweep": 2 + 2 + 2,  # every pair's (sgd, hb): tiny_cd has its own sizes
            "summarize": 3,
            "theory_grid": 3,  # the exact theory tuned on the (new) grid
            "claims": 1,
            **SUMMARY_FIGURE_RULES,
            "seed_small_lr": 1,
            "figure_seed_small_lr_equivalence": 1,
            "seed_baselines": 1,
            "figure_seed_baselines_vs_batch": 1,
        },
    ),
    "theory.t1.runs": (80, {"montecarlo": 2, "figure_exact_vs_monte_carlo": 2, "claims": 1}),
    "seeds.threshold.overrides.num_kappa": (
        4,
        {"seed_threshold": 1, "figure_seed_batch_threshold": 1, "claims": 1},
    ),
}


@pytest.mark.slow  # shares the ~30-40 s end-to-end run (module fixture)
@pytest.mark.parametrize("key", RERUNS)
def test_a_changed_value_reruns_exactly_what_reads_it(tiny_run, key):
    value, expected = RERUNS[key]
    jobs, _ = dry_run_with(tiny_run, key, value)
    assert jobs == expected


@pytest.mark.slow  # shares the ~30-40 s end-to-end run (module fixture)
def test_changed_heatmap_reruns_the_theory_not_the_sweeps(tiny_run):
    jobs, _ = dry_run_with(tiny_run, "theory.heatmap.num_eta", 7)
    assert jobs["theory"] == 1 and jobs["claims"] == 1 and jobs["figure_rate_heatmap"] == 1
    assert "sweep" not in jobs and "summarize" not in jobs and "montecarlo" not in jobs


@pytest.mark.slow  # shares the ~30-40 s end-to-end run (module fixture)
def test_changed_problem_reruns_everything(tiny_run):
    jobs, out = dry_run_with(tiny_run, "problems.gaussian.seed", 1)
    assert jobs["problem"] == 1 and jobs["sweep"] == 4 and jobs["claims"] == 1  # 2 pairs x 2
    assert "results/problems/tiny_cd.npz" not in out  # the other problem stays


@pytest.mark.slow  # shares the ~30-40 s end-to-end run (module fixture)
def test_edited_plotting_code_reruns_only_the_figures(tiny_run):
    # Snakemake compares checksums of small inputs, so the edit must change the content
    plots = tiny_run / "src" / "minibatch_momentum" / "figures" / "pairs.py"
    text = plots.read_text()
    try:
        plots.write_text(text + "\n# an edit\n")
        code, out = snakemake("-n", "--configfile", "tiny.yaml", cwd=tiny_run)
    finally:
        plots.write_text(text)
    assert code == 0, out[-2000:]
    assert job_counts(out) == FIGURE_RULES


@pytest.mark.slow  # shares the ~30-40 s end-to-end run (module fixture)
def test_changed_baseline_grid_reruns_only_that_baseline(tiny_run):
    jobs, _ = dry_run_with(tiny_run, "seeds.baselines.mass.eta2_ratio", [0.0, 0.6])
    assert jobs["seed_baseline_shard"] == 1  # mass only (one job, its B = 1 and 16)
    assert jobs["seed_baselines"] == 1 and "sweep" not in jobs


def test_seed_systems_can_be_turned_off(bare_copy):
    cfg = copy.deepcopy(TINY)
    cfg["seeds"] = {"systems": ["threshold"], "threshold": cfg["seeds"]["threshold"]}
    path = write_config(bare_copy / "one_seed.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare_copy)
    assert code == 0, out[-2000:]
    jobs = job_counts(out)
    assert jobs["seed_threshold"] == 1 and jobs["figure_seed_batch_threshold"] == 1
    assert not any(r.startswith("seed_") and r != "seed_threshold" for r in jobs)
    del cfg["seeds"]
    path = write_config(bare_copy / "no_seeds.yaml", cfg)
    code, out = snakemake("-n", "--configfile", path.name, cwd=bare_copy)
    assert code == 0, out[-2000:]
    assert not any("seed" in r for r in job_counts(out))


def test_sweeps_reserve_a_gpu_only_when_the_config_asks_for_cuda(bare_copy):
    cuda = copy.deepcopy(TINY)
    cuda["device"] = "cuda"
    for name, cfg, want in (("cpu.yaml", TINY, "gpu=0"), ("cuda.yaml", cuda, "gpu=1")):
        path = write_config(bare_copy / name, cfg)
        code, out = snakemake("-n", "--configfile", path.name, cwd=bare_copy)
        assert code == 0, out[-2000:]
        blocks = out.split("\n\n")
        sweeps = [b for b in blocks if "rule sweep:" in b]
        baselines = [b for b in blocks if "rule seed_baseline_shard:" in b]
        assert sweeps and baselines
        assert all(want in b for b in sweeps + baselines), name
