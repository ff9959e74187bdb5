# The exact mean-square theory beside the sweeps: it needs only the problem file, so it
# runs while the sweeps do. BLAS gets one thread per job (multi-threaded BLAS stalls
# when the other core is busy, docs/design.md section 6).


rule theory:
    input:
        problem="results/problems/{problem}.npz",
        code=code("problems.system", "theory.rule", "theory.exact", "sampling.samplers", "grid"),
    output:
        tstar="results/theory/{problem}/{sampler}/tstar.parquet",
        maps="results/theory/{problem}/{sampler}/rate_maps.parquet",
        info="results/theory/{problem}/{sampler}/theory.json",
    params:
        spec=theory_spec,
    threads: 1
    priority: predicted_seconds
    log:
        "results/logs/theory/{problem}/{sampler}.log",
    benchmark:
        "results/benchmarks/theory/{problem}/{sampler}.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " exec python -m minibatch_momentum theory --problem {input.problem} --spec {params.spec:q}"
        " --out-dir results/theory/{wildcards.problem}/{wildcards.sampler} 2> >(tee {log} >&2)"


rule montecarlo:
    input:
        problem="results/problems/{problem}.npz",
        code=code("problems.system", "theory.rule", "theory.exact", "simulate.montecarlo", "sampling.samplers", "sampling.batches"),
    output:
        "results/theory/{problem}/{sampler}/exact_vs_mc.parquet",
    params:
        spec=t1_spec,
    threads: 1
    priority: predicted_seconds
    log:
        "results/logs/montecarlo/{problem}/{sampler}.log",
    benchmark:
        "results/benchmarks/montecarlo/{problem}/{sampler}.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " exec python -m minibatch_momentum montecarlo --problem {input.problem} --spec {params.spec:q}"
        " --out {output} 2> >(tee {log} >&2)"


# The exact theory tuned on each pair's own sweep grid (claim T2 and the predictions of
# C1-C3): the exact expected-loss count of every stable grid point, its minimum per B.
rule theory_grid:
    input:
        problem="results/problems/{problem}.npz",
        code=code("problems.system", "theory.exact", "grid", "sampling.samplers"),
    output:
        "results/theory/{problem}/{sampler}/grid_tuned.parquet",
    params:
        spec=theory_grid_spec,
    threads: 1
    priority: predicted_seconds
    log:
        "results/logs/theory_grid/{problem}/{sampler}.log",
    benchmark:
        "results/benchmarks/theory_grid/{problem}/{sampler}.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " exec python -m minibatch_momentum theory-grid --problem {input.problem} --spec {params.spec:q}"
        " --out {output} 2> >(tee {log} >&2)"


# Claim C7's exact part: critical batches of the Gaussian closed form over kappa.
rule kappa_scan:
    input:
        code=code("problems.system", "theory.exact"),
    output:
        KAPPA_SCAN,
    params:
        spec=kappa_scan_spec(),
    threads: 1
    log:
        "results/logs/kappa_scan.log",
    benchmark:
        "results/benchmarks/kappa_scan.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " exec python -m minibatch_momentum kappa-scan --spec {params.spec:q} --out {output} 2> >(tee {log} >&2)"
