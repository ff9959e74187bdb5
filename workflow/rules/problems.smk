rule problem:
    input:
        # a `matrix` problem's own files: an edited matrix re-runs the problem, a missing
        # one stops the dry run
        data=problem_files,
        code=code("problems.families"),
    output:
        npz="results/problems/{problem}.npz",
        meta="results/problems/{problem}.json",
    params:
        spec=problem_spec,
    # before any sweep or theory job (their priorities are CPU-seconds): a problem job
    # takes a second and every job of its pairs waits for it
    priority: 10**6
    log:
        "results/logs/problem/{problem}.log",
    benchmark:
        "results/benchmarks/problem/{problem}.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum problem --spec {params.spec:q} --out {output.npz} 2> >(tee {log} >&2)"
