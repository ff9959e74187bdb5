rule problem:
    input:
        code=code("problems"),
    output:
        npz="results/problems/{problem}.npz",
        meta="results/problems/{problem}.json",
    params:
        spec=problem_spec,
    log:
        "results/logs/problem/{problem}.log",
    benchmark:
        "results/benchmarks/problem/{problem}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m minibatch_momentum problem --spec {params.spec:q} --out {output.npz} 2>&1 | tee {log} >&2"
