rule summarize:
    input:
        problem="results/problems/{problem}.npz",
        runs=shards,
        code=code("problems", "analysis", "summary", "sweep"),
    output:
        directory("results/summaries/{problem}/{sampler}"),
    log:
        "results/logs/summarize/{problem}/{sampler}.log",
    benchmark:
        "results/benchmarks/summarize/{problem}/{sampler}.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum summarize --problem {input.problem} --runs {input.runs} --out-dir {output} 2> {log}"


rule claims:
    input:
        summaries=summaries(),
        theory=theory_files(),
        montecarlo=montecarlo_files(),
        extra=seed_claims(),
        code=code("analysis", "claims", "summary", "exact", "theory", "rule", "problems", "seeds"),
    output:
        json="results/claims.json",
        markdown=report("results/claims.md", caption="../report/claims.rst", category="Claims"),
    params:
        tolerances=json.dumps(config["claims"], sort_keys=True),
        theory=theory_dirs(),
        montecarlo=lambda wildcards, input: (
            f"--montecarlo {' '.join(input.montecarlo)}" if input.montecarlo else ""
        ),
        extra=lambda wildcards, input: f"--extra {' '.join(input.extra)}" if input.extra else "",
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum claims --summary {input.summaries} --theory {params.theory}"
        " {params.montecarlo} {params.extra} --tolerances {params.tolerances:q}"
        " --json {output.json} --markdown {output.markdown} 2> {log}"
