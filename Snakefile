# One command regenerates every result:  snakemake --cores all
# Default profile: workflow/config/quick.yaml. Full study: see docs/scale-out.md ("paper profile").
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The library's torch-free parts (config, plan) from this checkout, installed or not.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from minibatch_momentum.config import ConfigError, prepare


# The default profile, unless --configfile names another (which then replaces it
# whole rather than being merged into it, so no default leaks into another profile).
if not workflow.overwrite_configfiles:

    configfile: "workflow/config/quick.yaml"



# Defaults, schema and cross-field checks before any job, with the CLI's predicates: a
# bad config stops here with one line naming the key (never a schema dump).
try:
    prepare(config, Path(workflow.basedir) / "workflow/config/schema.yaml")
except ConfigError as exc:
    sys.exit(f"Config error: {exc}")

# The pre-flight plan (`mbm plan`): stop before any job when a shard is predicted to reach
# eps at none of its grid points, unless the config opts in (allow_hopeless). Its cost
# estimates order the jobs (common.smk, `priority`). Not again inside cluster jobs, which
# re-read this file.
PLAN = None
if workflow.is_main_process:
    from minibatch_momentum.benchmark.plan import HopelessError
    from minibatch_momentum.benchmark.plan import check as check_plan

    try:
        PLAN = check_plan(config)
    except (HopelessError, ConfigError) as exc:
        sys.exit(str(exc))


include: "workflow/rules/common.smk"


wildcard_constraints:
    problem="[A-Za-z0-9_]+",
    method="|".join(METHODS),
    sampler="|".join(SAMPLERS),
    baseline="|".join(SEED_BASELINES),


include: "workflow/rules/problems.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/seeds.smk"
include: "workflow/rules/paper.smk"


report: "workflow/report/workflow.rst"


# Cheap jobs run on the submitting node when a cluster executor is used.
localrules:
    all,
    claims,
    paper_inputs,
    paper,


rule all:
    input:
        "results/claims.json",
        "results/claims.md",
        all_figures(),
        GRID_FIGURE,
        KAPPA_FIGURE,
        seed_figures(),
        ["results/paper/main.pdf"] if config["paper"] else [],
    default_target: True
