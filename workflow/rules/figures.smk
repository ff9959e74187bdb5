# One rule per figure; each calls one function of minibatch_momentum.plots.


rule figure_tstar_vs_batch:
    input:
        summary="results/summaries/{problem}/{sampler}",
        grid="results/theory/{problem}/{sampler}/grid_tuned.parquet",
        code=code("plots", "analysis", "summary", "claims", "scaling"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/tstar_vs_batch.pdf",
            caption="../report/tstar_vs_batch.rst",
            category="Batch scaling",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/tstar_vs_batch.png",
    log:
        "results/logs/figures/{problem}/{sampler}/tstar_vs_batch.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/tstar_vs_batch.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure tstar_vs_batch --summary {input.summary}"
        " --theory results/theory/{wildcards.problem}/{wildcards.sampler} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_efficiency_vs_batch:
    input:
        summary="results/summaries/{problem}/{sampler}",
        grid="results/theory/{problem}/{sampler}/grid_tuned.parquet",
        code=code("plots", "analysis", "summary", "claims", "scaling"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/efficiency_vs_batch.pdf",
            caption="../report/efficiency_vs_batch.rst",
            category="Batch scaling",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/efficiency_vs_batch.png",
    log:
        "results/logs/figures/{problem}/{sampler}/efficiency_vs_batch.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/efficiency_vs_batch.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure efficiency_vs_batch --summary {input.summary}"
        " --theory results/theory/{wildcards.problem}/{wildcards.sampler} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_speedup_vs_batch:
    input:
        summary="results/summaries/{problem}/{sampler}",
        grid="results/theory/{problem}/{sampler}/grid_tuned.parquet",
        code=code("plots", "analysis", "summary", "claims", "scaling"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/speedup_vs_batch.pdf",
            caption="../report/speedup_vs_batch.rst",
            category="Batch scaling",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/speedup_vs_batch.png",
    log:
        "results/logs/figures/{problem}/{sampler}/speedup_vs_batch.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/speedup_vs_batch.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure speedup_vs_batch --summary {input.summary}"
        " --theory results/theory/{wildcards.problem}/{wildcards.sampler} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_loss_curves:
    input:
        summary="results/summaries/{problem}/{sampler}",
        code=code("plots", "analysis", "summary"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/loss_curves.pdf",
            caption="../report/loss_curves.rst",
            category="Batch scaling",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/loss_curves.png",
    log:
        "results/logs/figures/{problem}/{sampler}/loss_curves.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/loss_curves.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure loss_curves --summary {input.summary} --out {output.pdf} 2> >(tee {log} >&2)"


# Figures with the exact theory (Gaussian-rows closed form; the T1 figure uses the
# finite-sample operator of the problem's own matrix).


rule figure_theory_vs_empirical:
    input:
        summary="results/summaries/{problem}/{sampler}",
        theory=theory_inputs,
        code=code("plots", "analysis", "summary", "exact", "theory", "rule", "problems"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/theory_vs_empirical.pdf",
            caption="../report/theory_vs_empirical.rst",
            category="Exact theory",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/theory_vs_empirical.png",
    log:
        "results/logs/figures/{problem}/{sampler}/theory_vs_empirical.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/theory_vs_empirical.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure theory_vs_empirical --summary {input.summary}"
        " --theory results/theory/{wildcards.problem}/{wildcards.sampler} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_rule_vs_grid:
    input:
        summary="results/summaries/{problem}/{sampler}",
        theory=theory_inputs,
        code=code("plots", "analysis", "summary", "exact", "theory", "rule", "problems"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/rule_vs_grid.pdf",
            caption="../report/rule_vs_grid.rst",
            category="Momentum rule",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/rule_vs_grid.png",
    params:
        factor=config["claims"]["rule_factor"],
    log:
        "results/logs/figures/{problem}/{sampler}/rule_vs_grid.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/rule_vs_grid.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure rule_vs_grid --summary {input.summary}"
        " --theory results/theory/{wildcards.problem}/{wildcards.sampler}"
        " --factor {params.factor} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_rate_heatmap:
    input:
        summary="results/summaries/{problem}/{sampler}",
        theory=theory_inputs,
        code=code("plots", "analysis", "summary", "exact", "theory", "rule", "problems"),
    output:
        pdf=report(
            "figures/{problem}/{sampler}/rate_heatmap.pdf",
            caption="../report/rate_heatmap.rst",
            category="Exact theory",
            subcategory="{problem} / {sampler}",
        ),
        png="figures/{problem}/{sampler}/rate_heatmap.png",
    log:
        "results/logs/figures/{problem}/{sampler}/rate_heatmap.log",
    benchmark:
        "results/benchmarks/figures/{problem}/{sampler}/rate_heatmap.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum figure rate_heatmap --summary {input.summary}"
        " --theory results/theory/{wildcards.problem}/{wildcards.sampler} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_exact_vs_monte_carlo:
    input:
        montecarlo="results/theory/{problem}/{sampler}/exact_vs_mc.parquet",
        code=code("plots"),
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
        code=code("plots", "analysis", "summary", "exact"),
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
        code=code("plots", "claims", "scaling", "summary"),
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
