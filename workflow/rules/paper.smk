# The paper: generated numbers and tables, then the PDF. Without TeX the `paper` job
# fails with what to install; `snakemake --cores all --keep-going` makes the rest.
from pathlib import Path

PAPER_TEX = ["paper/main.tex", *sorted(str(p) for p in Path("paper/sections").glob("*.tex"))]


rule paper_inputs:
    input:
        claims="results/claims.json",
        summary=f"results/summaries/{HEADLINE}",
        figures=[*all_figures(), GRID_FIGURE, KAPPA_FIGURE, *seed_figures()],
        code=code("report.paper"),
    output:
        numbers="paper/generated/numbers.tex",
        claims="paper/generated/claims_table.tex",
        coverage="paper/generated/coverage_table.tex",
        timings="paper/generated/timings_table.tex",
    log:
        "results/logs/paper_inputs.log",
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum paper-inputs --claims {input.claims}"
        " --summary {input.summary} --benchmarks results/benchmarks"
        " --out-dir paper/generated 2> >(tee {log} >&2)"


rule paper:
    input:
        generated=rules.paper_inputs.output,
        tex=PAPER_TEX,
        figures=[*all_figures(), GRID_FIGURE, KAPPA_FIGURE, *seed_figures()],
        code=code("report.paper"),
    output:
        report("results/paper/main.pdf", caption="../report/paper.rst", category="Paper"),
    log:
        "results/logs/paper.log",
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum paper-pdf paper/main.tex --out {output} 2> >(tee {log} >&2)"
