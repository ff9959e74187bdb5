# One rule per figure; each calls one function of minibatch_momentum.plots.


rule figure_tstar_vs_batch:
    input:
        summary="results/summaries/{problem}/{sampler}",
        code=code("plots", "analysis", "summary"),
    output:
        pdf="figures/{problem}/{sampler}/tstar_vs_batch.pdf",
        png="figures/{problem}/{sampler}/tstar_vs_batch.png",
    log:
        "results/logs/figures/{problem}/{sampler}/tstar_vs_batch.log",
    conda:
        CONDA_ENV
    shell:
        "python -m minibatch_momentum figure tstar_vs_batch --summary {input.summary} --out {output.pdf} 2> {log}"


rule figure_speedup_vs_batch:
    input:
        summary="results/summaries/{problem}/{sampler}",
        code=code("plots", "analysis", "summary"),
    output:
        pdf="figures/{problem}/{sampler}/speedup_vs_batch.pdf",
        png="figures/{problem}/{sampler}/speedup_vs_batch.png",
    log:
        "results/logs/figures/{problem}/{sampler}/speedup_vs_batch.log",
    conda:
        CONDA_ENV
    shell:
        "python -m minibatch_momentum figure speedup_vs_batch --summary {input.summary} --out {output.pdf} 2> {log}"


rule figure_loss_curves:
    input:
        summary="results/summaries/{problem}/{sampler}",
        code=code("plots", "analysis", "summary"),
    output:
        pdf="figures/{problem}/{sampler}/loss_curves.pdf",
        png="figures/{problem}/{sampler}/loss_curves.png",
    log:
        "results/logs/figures/{problem}/{sampler}/loss_curves.log",
    conda:
        CONDA_ENV
    shell:
        "python -m minibatch_momentum figure loss_curves --summary {input.summary} --out {output.pdf} 2> {log}"
