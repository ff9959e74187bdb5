# One rule per figure; each calls one function of minibatch_momentum.figures.pairs.

# The figures of one (problem, sampler) pair drawn from its summary, their rules made in
# the loop below from the library's one table (figures/catalog.py): report category and
# the theory input it reads. A theory input "grid" is the exact counts on the sweep's
# grid, "theory" every theory file; the modules each kind of figure reads are its code.
_SCALING_CODE = ("figures.pairs", "analysis.tuning", "analysis.summary", "report.curves", "analysis.scaling")
_THEORY_CODE = ("figures.pairs", "analysis.tuning", "analysis.summary", "theory.exact", "theory.rule", "problems.system")
_FIGURE_CODE = {
    "grid": _SCALING_CODE,
    "theory": _THEORY_CODE,
    None: ("figures.pairs", "analysis.tuning", "analysis.summary"),
}
# Options beyond the inputs, as params so that changing one reruns only its figure.
_FIGURE_OPTIONS = {"rule_vs_grid": f"--factor {config['claims']['rule_factor']}"}
_THEORY_INPUT = {
    None: {},
    "grid": {"grid": "results/theory/{problem}/{sampler}/grid_tuned.parquet"},
    "theory": {"theory": theory_inputs},
}

for _fig, (_category, _theory, _) in mbm_figures.PAIR_FIGURES.items():

    rule:
        name:
            f"figure_{_fig}"
        input:
            summary="results/summaries/{problem}/{sampler}",
            code=code(*_FIGURE_CODE[_theory]),
            **_THEORY_INPUT[_theory],
        output:
            pdf=report(
                f"figures/{{problem}}/{{sampler}}/{_fig}.pdf",
                caption=f"../report/{_fig}.rst",
                category=_category,
                subcategory="{problem} / {sampler}",
            ),
            png=f"figures/{{problem}}/{{sampler}}/{_fig}.png",
        params:
            name=_fig,  # not in the shell's f-string: Snakemake formats that when the job runs
            options=" ".join(
                ["--theory results/theory/{problem}/{sampler}"] * bool(_theory)
                + [_FIGURE_OPTIONS.get(_fig, "")]
            ).strip(),
        log:
            f"results/logs/figures/{{problem}}/{{sampler}}/{_fig}.log",
        benchmark:
            f"results/benchmarks/figures/{{problem}}/{{sampler}}/{_fig}.tsv"
        conda:
            CONDA_ENV
        shell:
            "exec python -m minibatch_momentum figure {params.name} --summary {input.summary}"
            " {params.options} --out {output.pdf} 2> >(tee {log} >&2)"


# The T1 figure: the exact curve over the Monte Carlo (the finite-sample operator of the
# problem's own matrix).


rule figure_exact_vs_monte_carlo:
    input:
        montecarlo="results/theory/{problem}/{sampler}/exact_vs_mc.parquet",
        code=code("figures.pairs"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/exact_vs_monte_carlo.pdf",
            caption="../report/exact_vs_monte_carlo.rst",
            category="Exact theory",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/exact_vs_monte_carlo.png",
    log:
        "results/logs/figures/{problem}/{sampler}/exact_vs_monte_carlo.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/exact_vs_monte_carlo.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure exact_vs_monte_carlo --montecarlo {input.montecarlo}"
        " --out {output.pdf} 2> >(tee {log} >&2)"


# C5 and C6: every (problem, sampler) pair side by side.


rule figure_tstar_grid:
    input:
        summaries=summaries(),
        theory=theory_files(),
        code=code("figures.pairs", "analysis.tuning", "analysis.summary", "theory.exact"),
    output:
        pdf=report(
            "figures/coverage/tstar_grid.pdf",
            caption="../report/tstar_grid.rst",
            category="Samplers and families",
        ),
        png="figures/coverage/tstar_grid.png",
    params:
        theory=theory_dirs(),
    log:
        "results/logs/figures/coverage/tstar_grid.log",
    benchmark:
        "results/benchmarks/figures/coverage/tstar_grid.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure-grid --summary {input.summaries} --theory {params.theory}"
        " --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_kappa_scan:
    input:
        kappa_scan=KAPPA_SCAN,
        scan=SCAN_SUMMARIES,
        grids=[f"{d}/grid_tuned.parquet" for d in scan_theory_dirs()],
        code=code("figures.pairs", "report.curves", "analysis.scaling", "analysis.summary"),
    output:
        pdf=report(
            KAPPA_FIGURE,
            caption="../report/kappa_scan.rst",
            category="Claims",
        ),
        png=KAPPA_FIGURE.replace(".pdf", ".png"),
    params:
        theory=scan_theory_dirs(),
    log:
        "results/logs/figures/kappa_scan.log",
    benchmark:
        "results/benchmarks/figures/kappa_scan.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure-kappa --kappa-scan {input.kappa_scan}"
        " --scan {input.scan} --theory {params.theory} --out {output.pdf} 2> >(tee {log} >&2)"
