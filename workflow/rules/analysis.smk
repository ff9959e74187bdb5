rule summarize:
    input:
        problem="results/problems/{problem}.npz",
        runs=shards,
        code=code("problems.system", "analysis.tuning", "analysis.summary", "sampling.samplers", "grid", "theory.common"),
    output:
        directory("results/summaries/{problem}/{sampler}"),
    log:
        "results/logs/summarize/{problem}/{sampler}.log",
    benchmark:
        "results/benchmarks/summarize/{problem}/{sampler}.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum summarize --problem {input.problem} --runs {input.runs} --out-dir {output} 2> >(tee {log} >&2)"


rule claims:
    input:
        summaries=summaries(),
        scan=SCAN_SUMMARIES,
        theory=theory_files(),
        kappa_scan=KAPPA_SCAN,
        montecarlo=montecarlo_files(),
        extra=seed_claims(),
        code=code(
            "analysis.tuning",
            "report.sweep_claims",
            "report.markdown",
            "analysis.scaling",
            "report.html",
            "analysis.summary",
            "theory.exact",
            "theory.rule",
            "problems.system",
            "cli.seeds",
        ),
    output:
        json="results/claims.json",
        markdown="results/claims.md",
        html=report("results/claims.html", caption="../report/claims.rst", category="Claims"),
    params:
        tolerances=json.dumps(config.get("claims", {}), sort_keys=True),
        theory=theory_dirs() + [d for d in scan_theory_dirs() if d not in theory_dirs()],
        scan=lambda wildcards, input: f"--scan {' '.join(input.scan)}" if input.scan else "",
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
        " --kappa-scan {input.kappa_scan} {params.scan}"
        " {params.montecarlo} {params.extra} --tolerances {params.tolerances:q}"
        " --json {output.json} --markdown {output.markdown} --html {output.html} 2> >(tee {log} >&2)"
