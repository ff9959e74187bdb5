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
FIGURES = ["tstar_vs_batch", "speedup_vs_batch", "loss_curves"]


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
    }
    return json.dumps(spec, sort_keys=True)


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
