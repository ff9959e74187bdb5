# Shared helpers: wildcard values from the config, and the JSON specs handed to `mbm`.
# A rule's `params` hold exactly the config it depends on, so a changed value
# re-runs that rule (Snakemake's params rerun trigger) and what depends on it.
import json
import shlex

# Jobs run the package from this checkout, installed or not, so the code that made a
# result is the code in the repository. With --sdm conda, jobs get environment.yml.
SRC = shlex.quote(f"{workflow.basedir}/src")
# The prefix is formatted again per job: quadruple braces end up as single ones.
shell.prefix(f"set -euo pipefail; export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")
CONDA_ENV = "../../environment.yml"

PROBLEMS = list(config["problems"])
METHODS = config["sweep"]["methods"]
SAMPLERS = config["sweep"]["samplers"]
BATCH_SIZES = config["sweep"]["batch_sizes"]
# The paper reports on the first problem and sampler of the config.
HEADLINE = f"{PROBLEMS[0]}/{SAMPLERS[0]}"
# Claim T1's Monte Carlo (theory.t1.methods empty: off; its exact curve costs O(n d^2) per
# step, too much for the largest problems).
T1_ON = bool(config["theory"]["t1"]["methods"])
FIGURES = [
    "tstar_vs_batch",
    "speedup_vs_batch",
    "loss_curves",
    "theory_vs_empirical",
    "rule_vs_grid",
    "rate_heatmap",
] + (["exact_vs_monte_carlo"] if T1_ON else [])


def code(*modules):
    """Library modules a job imports; editing one re-runs the jobs that use it."""
    return [f"src/minibatch_momentum/{m}.py" for m in ("cli", "io", "checks", *modules)]


def problem_spec(wildcards):
    return json.dumps(config["problems"][wildcards.problem], sort_keys=True)


def shard_spec(wildcards):
    s = config["sweep"]
    spec = {
        "problem": wildcards.problem,
        "method": wildcards.method,
        "sampler": wildcards.sampler,
        "batch_size": int(wildcards.batch),
        "seeds": s["seeds"],
        "dtype": s.get("dtype", "float64"),
        "grid": s["grid"],
        "stop": s["stop"],
        "rule": rule_variant(wildcards.method),
    }
    return json.dumps(spec, sort_keys=True)


def rule_variant(method):
    """The momentum rule's variant for one method, as the sweep shards take it."""
    return {"noise_line": config["rule"]["noise_line"][method], "form": config["rule"]["form"]}


def theory_spec(wildcards):
    spec = {
        "problem": wildcards.problem,
        "sampler": wildcards.sampler,
        "methods": METHODS,
        "batch_sizes": BATCH_SIZES,
        "eps": config["sweep"]["stop"]["eps"],
        "rule": config["rule"],
        "heatmap": config["theory"]["heatmap"],
    }
    return json.dumps(spec, sort_keys=True)


def t1_spec(wildcards):
    spec = {
        "problem": wildcards.problem,
        "sampler": wildcards.sampler,
        "eps": config["sweep"]["stop"]["eps"],
        "rule": config["rule"],
        "t1": config["theory"]["t1"],
    }
    return json.dumps(spec, sort_keys=True)


def theory_dirs():
    return expand("results/theory/{problem}/{sampler}", problem=PROBLEMS, sampler=SAMPLERS)


def theory_files(which=("tstar.parquet", "rate_maps.parquet", "theory.json")):
    """Files named ``which`` of every (problem, sampler)'s theory folder."""
    return expand(
        "results/theory/{problem}/{sampler}/{name}",
        problem=PROBLEMS,
        sampler=SAMPLERS,
        name=which,
    )


def theory_inputs(wildcards):
    """The theory job's files for the job's (problem, sampler)."""
    return expand(
        "results/theory/{problem}/{sampler}/{name}",
        problem=wildcards.problem,
        sampler=wildcards.sampler,
        name=("tstar.parquet", "rate_maps.parquet", "theory.json"),
    )


def shards(wildcards):
    return expand(
        "results/runs/{problem}/{sampler}/{method}/B{batch}.parquet",
        problem=wildcards.problem,
        sampler=wildcards.sampler,
        method=METHODS,
        batch=BATCH_SIZES,
    )


def summaries():
    return expand("results/summaries/{problem}/{sampler}", problem=PROBLEMS, sampler=SAMPLERS)


def all_figures():
    return expand(
        "figures/{problem}/{sampler}/{figure}.{ext}",
        problem=PROBLEMS,
        sampler=SAMPLERS,
        figure=FIGURES,
        ext=["pdf", "png"],
    )


# The other seed systems (DESIGN.md section 3; rules in seeds.smk). `seeds.systems` lists
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
}


def seed_claims():
    return [f"results/seeds/{s}.claims.json" for s in SEED_SYSTEMS]


def seed_figures():
    return expand(
        "figures/seeds/{figure}.{ext}",
        figure=[SEED_FIGURES[s] for s in SEED_SYSTEMS],
        ext=["pdf", "png"],
    )


# S3 and S6 use the headline problem and sampler (the config's first of each).
SEED_PROBLEM, SEED_SAMPLER = PROBLEMS[0], SAMPLERS[0]
SEED_BASELINES = ("sngm", "asgd", "mass")
# Modules every `mbm seed` job imports (the experiments package imports its S1/S2 modules).
SEED_CODE = ("seeds", "experiments/__init__", "experiments/large_batch", "experiments/label_noise")


def seed_spec(system):
    return json.dumps(SEEDS.get(system, {}), sort_keys=True)


def small_lr_shards(wildcards):
    methods = ["sgd", *SEEDS["small_lr"]["methods"]]
    return expand(
        "results/runs/{problem}/{sampler}/{method}/B{batch}.parquet",
        problem=SEED_PROBLEM,
        sampler=SEED_SAMPLER,
        method=[m for m in methods if m in METHODS],
        batch=BATCH_SIZES,
    )


def baseline_shard_spec(wildcards):
    b = SEEDS["baselines"]
    spec = {
        "problem": SEED_PROBLEM,
        "method": wildcards.baseline,
        "batch_size": int(wildcards.batch),
        "sampler": SEED_SAMPLER,
        "seeds": b["seeds"],
        "stop": config["sweep"]["stop"],
        "grid": b[wildcards.baseline],
    }
    return json.dumps(spec, sort_keys=True)


def baseline_shards(wildcards):
    b = SEEDS["baselines"]
    return [
        f"results/seeds/baselines/{m}/B{B}.parquet"
        for m in SEED_BASELINES
        for B in b[m]["batch_sizes"]
    ]
