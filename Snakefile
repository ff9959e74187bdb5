# One command regenerates every result:  snakemake --cores all
# Default profile: workflow/config/quick.yaml. Full study: see README ("paper profile").
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "workflow/config/quick.yaml"


validate(config, "workflow/config/schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/problems.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        "results/claims.json",
        "results/claims.md",
        all_figures(),
    default_target: True
