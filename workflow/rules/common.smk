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
    return [f"src/minibatch_momentum/{m}.py" for m in ("cli", "io", *modules)]


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
