# Shared helpers: wildcard values from the config, and the JSON specs handed to `mbm`.
# A rule's `params` hold exactly the config it depends on, so a changed value
# re-runs that rule (Snakemake's params rerun trigger) and what depends on it.
import json
import os
import shlex
import sys

from snakemake.settings.types import DeploymentMethod

# Jobs run the package from this checkout, installed or not, so the code that made a
# result is the code in the repository. With --sdm conda, jobs get environment.yml;
# otherwise they run the Python that runs Snakemake (its bin/ first on PATH), so
# `.venv/bin/snakemake` works without activating .venv, on SLURM nodes too.
SRC = shlex.quote(f"{workflow.basedir}/src")
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    _PATH = ""
else:
    _PATH = f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH; "
# The prefix is formatted again per job: quadruple braces end up as single ones. Each
# command is run with `exec`, so the job's process is Python itself (a kill of the job
# reaches it, and no orphaned child can write an output after the job was marked failed);
# its stderr goes through `tee` to the log and the console.
shell.prefix(
    f"set -euo pipefail; {_PATH}export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)
CONDA_ENV = "../../environment.yml"

from minibatch_momentum import config as mbm_config
from minibatch_momentum.figures import catalog as mbm_figures
from minibatch_momentum.problems import families as mbm_problems
from minibatch_momentum.sampling.samplers import PROJECTION_SAMPLERS  # no exact theory, no rule
from minibatch_momentum.sources import module_files

PROBLEMS = list(config["problems"])
# Which samplers each problem is swept with (`studies`; without it, every problem with
# every `sweep.samplers`), and the `sweep` keys a study overrides for its shards.
STUDIES = mbm_config.studies(config)
METHODS = list(
    dict.fromkeys(
        [*config["sweep"]["methods"], *(m for st in STUDIES.values() for m in st.get("methods", []))]
    )
)
ALL_PAIRS = mbm_config.all_pairs(config)
# Pairs of role `scan` only feed claim C7 (critical batches over kappa): no per-pair
# claims, figures or T1.
PAIRS = mbm_config.pairs(config)
SCAN_PAIRS = [ps for ps in ALL_PAIRS if ps not in PAIRS]
SAMPLERS = list(dict.fromkeys(s for _, s in ALL_PAIRS))
# The paper reports on the first (problem, sampler) pair of the config.
HEADLINE = "/".join(PAIRS[0])
KAPPA_SCAN = "results/theory/kappa_scan.parquet"
# Claim T1's Monte Carlo (theory.t1.methods empty: off; its exact curve costs O(n d^2) per
# step, too much for the largest problems; a study can turn it off with `t1: false`).
T1_ON = bool(config["theory"]["t1"]["methods"])
GRID_FIGURE = "figures/coverage/tstar_grid.pdf"  # every pair side by side (C5, C6)
KAPPA_FIGURE = "figures/coverage/kappa_scan.pdf"  # claim C7


def study(problem, key):
    """A study's value for a `sweep` key (its own, else the sweep's)."""
    return STUDIES[problem].get(key, config["sweep"][key])


def study_methods(problem):
    return mbm_config.study_methods(config, problem)


def method_batches(problem, method):
    return mbm_config.method_batches(config, problem, method)


def pair_t1(problem, sampler):
    """Whether claim T1 (exact theory vs Monte Carlo) runs for this pair."""
    return (
        T1_ON
        and STUDIES[problem].get("t1", True)
        and sampler not in PROJECTION_SAMPLERS
        and (problem, sampler) in PAIRS
    )


def has_theory(problem, sampler):
    return sampler not in PROJECTION_SAMPLERS


def noise_model(problem, sampler):
    return mbm_config.noise_model(config, problem, sampler)


def pair_figures(problem, sampler):
    return mbm_figures.pair_figures(
        headline=f"{problem}/{sampler}" == HEADLINE,
        exact=has_theory(problem, sampler),
        t1=pair_t1(problem, sampler),
    )


# The standard `gpu` resource of jobs that run on the config's device: 1 when it asks for
# CUDA (`device: cuda`, as in paper.yaml), else 0. `--resources gpu=1` then runs one such
# job at a time on the GPU; the SLURM profile turns it into `--gpus=1`.
GPU_JOBS = int(str(config.get("device", "auto")).startswith("cuda"))


def predicted_seconds(wildcards):
    """The pre-flight plan's CPU-seconds for a pair's sweeps (one method's, for a sweep
    job), as the `priority` of its sweep and theory jobs: with fewer cores than jobs the
    scheduler starts the longest first, so the longest path (the headline's small-B
    sweeps and exact counts) does not wait behind short jobs."""
    if not PLAN:
        return 0
    method = getattr(wildcards, "method", None)
    return int(
        sum(
            s.cpu_s
            for s in PLAN["shards"]
            if (s.problem, s.sampler) == (wildcards.problem, wildcards.sampler)
            and method in (None, s.method)
        )
    )


# The files of the cli package: every job runs `mbm`, so its code includes each of them
# (not the library modules its commands import inside a function: code()'s modules name
# those a job uses).
CLI_FILES = sorted(
    f"src/minibatch_momentum/cli/{f}"
    for f in os.listdir(f"{workflow.basedir}/src/minibatch_momentum/cli")
    if f.endswith(".py")
)


def code(*modules):
    """The source files a job runs: the CLI's own (CLI_FILES), and those of ``modules``
    (the library modules its command uses) with every package module they import (read
    from the import statements, sources.module_files). Editing a file re-runs the jobs
    whose code includes it, and a new import needs no edit here."""
    files = module_files("io", "checks", *modules)
    return [*CLI_FILES, *(f"src/{f}" for f in files)]


def problem_files(wildcards):
    return mbm_problems.input_files(config["problems"][wildcards.problem])


def problem_spec(wildcards):
    return json.dumps(config["problems"][wildcards.problem], sort_keys=True)


def shard_spec(wildcards):
    """The sweep job's spec: one method's shards, at its batch sizes (sweep.job_shards)."""
    p = wildcards.problem
    spec = {
        "problem": p,
        "method": wildcards.method,
        "sampler": wildcards.sampler,
        "batch_sizes": method_batches(p, wildcards.method),
        "seeds": study(p, "seeds"),
        "dtype": config["sweep"].get("dtype", "float64"),
        "grid": study(p, "grid"),
        "stop": config["sweep"]["stop"],
        "rule": rule_variant(wildcards.method) if has_theory(p, wildcards.sampler) else None,
    }
    return json.dumps(spec, sort_keys=True)


def rule_variant(method):
    """The momentum rule's variant for one method, as the sweep shards take it."""
    return {"noise_line": config["rule"]["noise_line"][method], "form": config["rule"]["form"]}


def theory_spec(wildcards):
    spec = {
        "problem": wildcards.problem,
        "sampler": wildcards.sampler,
        "methods": study_methods(wildcards.problem),
        "batch_sizes": study(wildcards.problem, "batch_sizes"),
        "noise": noise_model(wildcards.problem, wildcards.sampler),
        "eps": config["sweep"]["stop"]["eps"],
        "rule": config["rule"],
    }
    # Rate maps feed the headline's heatmap figure only: the other pairs skip them (and
    # do not re-run when the heatmap's config changes).
    if f"{wildcards.problem}/{wildcards.sampler}" == HEADLINE:
        spec["heatmap"] = config["theory"]["heatmap"]
    else:
        spec["rate_maps"] = False
    return json.dumps(spec, sort_keys=True)


def t1_spec(wildcards):
    spec = {
        "problem": wildcards.problem,
        "sampler": wildcards.sampler,
        "noise": noise_model(wildcards.problem, wildcards.sampler),
        "eps": config["sweep"]["stop"]["eps"],
        "rule": config["rule"],
        "t1": config["theory"]["t1"],
    }
    return json.dumps(spec, sort_keys=True)


def theory_grid_spec(wildcards):
    p = wildcards.problem
    spec = {
        "problem": p,
        "sampler": wildcards.sampler,
        "methods": {m: method_batches(p, m) for m in study_methods(p)},
        "grid": study(p, "grid"),
        "eps": config["sweep"]["stop"]["eps"],
        "check_every": config["sweep"]["stop"].get("check_every", 10),
        "censor_factor": config["sweep"]["stop"].get("censor_factor", 2.0),
        "noise": noise_model(p, wildcards.sampler),
    }
    return json.dumps(spec, sort_keys=True)


def kappa_scan_spec():
    return json.dumps(config["kappa_scan"], sort_keys=True)


def theory_dirs(pairs=None):
    return [f"results/theory/{p}/{s}" for p, s in (pairs or PAIRS) if has_theory(p, s)]


def pair_t2(problem, sampler):
    """Whether the exact theory is tuned on this pair's grid (claim T2 and the predictions
    of C1-C3): a study can turn it off with `t2: false` where the moment closure's
    O(d^2) per step and grid point is too much for the profile (e.g. d = 256)."""
    return has_theory(problem, sampler) and STUDIES[problem].get("t2", True)


def theory_files(which=("tstar.parquet", "rate_maps.parquet", "theory.json")):
    """Files named ``which`` of every (problem, sampler)'s theory folder, and the exact
    counts on the grid of every pair that has them (the scan pairs: only those)."""
    return (
        [f"{d}/{name}" for d in theory_dirs() for name in which]
        + [f"results/theory/{p}/{s}/grid_tuned.parquet" for p, s in PAIRS if pair_t2(p, s)]
        + [f"{d}/grid_tuned.parquet" for d in scan_theory_dirs() if d not in theory_dirs()]
    )


def montecarlo_files():
    return [f"results/theory/{p}/{s}/exact_vs_mc.parquet" for p, s in PAIRS if pair_t1(p, s)]


def theory_inputs(wildcards):
    """The theory job's files for the job's (problem, sampler)."""
    return expand(
        "results/theory/{problem}/{sampler}/{name}",
        problem=wildcards.problem,
        sampler=wildcards.sampler,
        name=("tstar.parquet", "rate_maps.parquet", "theory.json"),
    )


def shards(wildcards):
    """The sweep files of a (problem, sampler): one per method."""
    p, s = wildcards.problem, wildcards.sampler
    return [f"results/runs/{p}/{s}/{m}.parquet" for m in study_methods(p)]


def summaries(pairs=None):
    return [f"results/summaries/{p}/{s}" for p, s in (pairs or PAIRS)]


def scan_theory_dirs():
    """Theory folders of the kappa-scan problems (their exact counts on the grid)."""
    return [d.replace("results/summaries/", "results/theory/") for d in SCAN_SUMMARIES]


def all_figures():
    return [
        f"figures/{p}/{s}/{name}.{ext}"
        for p, s in PAIRS
        for name in pair_figures(p, s)
        for ext in ("pdf", "png")
    ]


# The other seed systems (docs/design.md section 2; rules in seeds.smk). `seeds.systems` lists
# the ones a profile runs (none without a `seeds` section); each leaves a claims file for
# the report and its figure(s).
SEEDS = config.get("seeds") or {}
SEED_SYSTEMS = SEEDS.get("systems", [])
SEED_FIGURES = {
    "large_batch": "large_batch",  # S1, S4
    "label_noise": "label_noise_momentum",  # S2
    "small_lr": "small_lr_equivalence",  # S3
    "threshold": "batch_threshold",  # S5
    "baselines": "baselines_vs_batch",  # S6
    "search_noise": "search_noise",  # S7
}


def seed_claims():
    return [f"results/seeds/{s}.claims.json" for s in SEED_SYSTEMS]


def seed_figures():
    return expand(
        "figures/seeds/{figure}.{ext}",
        figure=[SEED_FIGURES[s] for s in SEED_SYSTEMS],
        ext=["pdf", "png"],
    )


# S3 and S6 use `seeds.problem` (default: the headline) and its study's first sampler.
SEED_PROBLEM, SEED_SAMPLER = mbm_config.seed_pair(config)
# Claim C7's swept problems (each with sgd and hb), in the config's order.
SCAN_PROBLEMS = config["kappa_scan"].get("problems", [])
SCAN_SUMMARIES = [
    f"results/summaries/{p}/{s}" for p in SCAN_PROBLEMS for pp, s in ALL_PAIRS if pp == p
][: len(SCAN_PROBLEMS)]
SEED_BASELINES = ("sngm", "asgd", "mass")
# Modules every `mbm seed` job imports; each job adds its own study's module (the
# studies package imports none of them).
SEED_CODE = ("cli.seeds", "studies")


def seed_spec(system):
    return json.dumps(SEEDS.get(system, {}), sort_keys=True)


def small_lr_shards(wildcards):
    methods = ["sgd", *SEEDS["small_lr"]["methods"]]
    return [
        f"results/runs/{SEED_PROBLEM}/{SEED_SAMPLER}/{m}.parquet"
        for m in methods
        if m in study_methods(SEED_PROBLEM)
    ]


def baseline_shard_spec(wildcards):
    b = SEEDS["baselines"]
    spec = {
        "problem": SEED_PROBLEM,
        "method": wildcards.baseline,
        "sampler": SEED_SAMPLER,
        "seeds": b["seeds"],
        "stop": config["sweep"]["stop"],
        "grid": b[wildcards.baseline],
    }
    return json.dumps(spec, sort_keys=True)


def baseline_shards(wildcards):
    return [f"results/seeds/baselines/{m}.parquet" for m in SEED_BASELINES]
