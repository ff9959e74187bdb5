# One command regenerates every result:  snakemake --cores all
# Default profile: workflow/config/quick.yaml. Full study: see docs/scale-out.md ("paper profile").
from snakemake.utils import min_version, validate

min_version("9.0")


# The default profile, unless --configfile names another (which then replaces it
# whole rather than being merged into it, so no default leaks into another profile).
if not workflow.overwrite_configfiles:

    configfile: "workflow/config/quick.yaml"



validate(config, "workflow/config/schema.yaml")


include: "workflow/rules/common.smk"


wildcard_constraints:
    problem="[A-Za-z0-9_]+",
    method="|".join(METHODS),
    sampler="|".join(SAMPLERS),
    batch=r"\d+",


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
        "results/paper/main.pdf",
    default_target: True
