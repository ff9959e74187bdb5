# One job per (problem, sampler, method): its batch sizes in one process, since a job's
# start-up (importing torch) costs more than the small shards themselves.
rule sweep:
    input:
        problem="results/problems/{problem}.npz",
        code=code("problems.system", "sampling.samplers", "sampling.batches", "simulate.engine", "simulate.sweep", "grid", "theory.rule", "theory.common"),
    output:
        "results/runs/{problem}/{sampler}/{method}.parquet",
    params:
        spec=shard_spec,
        device=config.get("device", "auto"),
    threads: 1
    priority: predicted_seconds
    resources:
        gpu=GPU_JOBS,  # `device: auto` never reserves a GPU (common.smk)
    log:
        "results/logs/sweep/{problem}/{sampler}/{method}.log",
    benchmark:
        "results/benchmarks/sweep/{problem}/{sampler}/{method}.tsv"
    conda:
        CONDA_ENV
    # tee: the progress lines (one per finished batch size and seed) show on the console as well as in the
    # log; the prefix's pipefail keeps the command's exit status as the job's status. The
    # thread variables hold the BLAS that the compiled small-batch steps call to one thread too.
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " exec python -m minibatch_momentum sweep --problem {input.problem} --spec {params.spec:q} --out {output}"
        " --device {params.device} --threads {threads} 2> >(tee {log} >&2)"
