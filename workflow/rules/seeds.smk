# The other seed systems (docs/design.md section 2), one rule per `mbm seed` call and one per
# figure. S3 and S6 use the headline problem and sampler (the config's first of each);
# S1, S2, S5 and S7 need no problem file. A system runs when `seeds.systems` lists it.
wildcard_constraints:
    baseline="|".join(SEED_BASELINES),


rule seed_large_batch:
    input:
        code=code(*SEED_CODE, "optim"),
    output:
        data="results/seeds/large_batch.parquet",
        claims="results/seeds/large_batch.claims.json",
    params:
        spec=seed_spec("large_batch"),
    threads: 1
    log:
        "results/logs/seeds/large_batch.log",
    benchmark:
        "results/benchmarks/seeds/large_batch.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} exec python -m minibatch_momentum seed large-batch --spec {params.spec:q}"
        " --out {output.data} --claims {output.claims} 2> >(tee {log} >&2)"


rule seed_label_noise:
    input:
        code=code(*SEED_CODE),
    output:
        data="results/seeds/label_noise.parquet",
        claims="results/seeds/label_noise.claims.json",
    params:
        spec=seed_spec("label_noise"),
    threads: 1
    log:
        "results/logs/seeds/label_noise.log",
    benchmark:
        "results/benchmarks/seeds/label_noise.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} exec python -m minibatch_momentum seed label-noise --spec {params.spec:q}"
        " --out {output.data} --claims {output.claims} 2> >(tee {log} >&2)"


rule seed_small_lr:
    input:
        problem=f"results/problems/{SEED_PROBLEM}.npz",
        runs=small_lr_shards,
        code=code(*SEED_CODE, "experiments.small_lr", "problems"),
    output:
        data="results/seeds/small_lr.parquet",
        claims="results/seeds/small_lr.claims.json",
    params:
        spec=seed_spec("small_lr"),
    log:
        "results/logs/seeds/small_lr.log",
    benchmark:
        "results/benchmarks/seeds/small_lr.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed small-lr --problem {input.problem} --runs {input.runs}"
        " --spec {params.spec:q} --out {output.data} --claims {output.claims} 2> >(tee {log} >&2)"


rule seed_threshold:
    input:
        code=code(*SEED_CODE, "experiments.threshold", "theory", "problems"),
    output:
        data="results/seeds/threshold.parquet",
        claims="results/seeds/threshold.claims.json",
    params:
        spec=seed_spec("threshold"),
    threads: 1
    log:
        "results/logs/seeds/threshold.log",
    benchmark:
        "results/benchmarks/seeds/threshold.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " exec python -m minibatch_momentum seed threshold --spec {params.spec:q}"
        " --out {output.data} --claims {output.claims} 2> >(tee {log} >&2)"


rule seed_search_noise:
    input:
        code=code(*SEED_CODE, "experiments.search_noise", "problems"),
    output:
        data="results/seeds/search_noise.parquet",
        claims="results/seeds/search_noise.claims.json",
    params:
        spec=seed_spec("search_noise"),
    threads: 1
    log:
        "results/logs/seeds/search_noise.log",
    benchmark:
        "results/benchmarks/seeds/search_noise.tsv"
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " exec python -m minibatch_momentum seed search-noise --spec {params.spec:q}"
        " --out {output.data} --claims {output.claims} 2> >(tee {log} >&2)"


rule seed_baseline_shard:
    input:
        problem=f"results/problems/{SEED_PROBLEM}.npz",
        code=code(*SEED_CODE, "experiments.baselines", "engine", "problems", "samplers"),
    output:
        "results/seeds/baselines/{baseline}.parquet",
    params:
        spec=baseline_shard_spec,
        device=config.get("device", "auto"),
    threads: 1
    resources:
        gpu=GPU_JOBS,
    log:
        "results/logs/seeds/baselines/{baseline}.log",
    benchmark:
        "results/benchmarks/seeds/baselines/{baseline}.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed baseline-shard --problem {input.problem} --spec {params.spec:q}"
        " --out {output} --device {params.device} --threads {threads} 2> >(tee {log} >&2)"


rule seed_baselines:
    input:
        problem=f"results/problems/{SEED_PROBLEM}.npz",
        runs=baseline_shards,
        summary=f"results/summaries/{SEED_PROBLEM}/{SEED_SAMPLER}",
        code=code(*SEED_CODE, "experiments.baselines", "problems"),
    output:
        data="results/seeds/baselines.parquet",
        claims="results/seeds/baselines.claims.json",
    params:
        spec=seed_spec("baselines"),
    log:
        "results/logs/seeds/baselines.log",
    benchmark:
        "results/benchmarks/seeds/baselines.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed baselines --problem {input.problem} --runs {input.runs}"
        " --summary {input.summary} --spec {params.spec:q} --out {output.data}"
        " --claims {output.claims} 2> >(tee {log} >&2)"


# One rule per figure; each calls one function of minibatch_momentum.experiments.figures.


rule figure_seed_large_batch:
    input:
        data="results/seeds/large_batch.parquet",
        claims="results/seeds/large_batch.claims.json",
        code=code(*SEED_CODE, "experiments.figures"),
    output:
        pdf=report(
            "figures/seeds/large_batch.pdf",
            caption="../report/large_batch.rst",
            category="Seed systems",
        ),
        png="figures/seeds/large_batch.png",
    log:
        "results/logs/figures/seeds/large_batch.log",
    benchmark:
        "results/benchmarks/figures/seeds/large_batch.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed figure large_batch --data {input.data}"
        " --claims {input.claims} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_seed_label_noise_momentum:
    input:
        data="results/seeds/label_noise.parquet",
        claims="results/seeds/label_noise.claims.json",
        code=code(*SEED_CODE, "experiments.figures"),
    output:
        pdf=report(
            "figures/seeds/label_noise_momentum.pdf",
            caption="../report/label_noise_momentum.rst",
            category="Seed systems",
        ),
        png="figures/seeds/label_noise_momentum.png",
    log:
        "results/logs/figures/seeds/label_noise_momentum.log",
    benchmark:
        "results/benchmarks/figures/seeds/label_noise_momentum.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed figure label_noise_momentum --data {input.data}"
        " --claims {input.claims} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_seed_small_lr_equivalence:
    input:
        data="results/seeds/small_lr.parquet",
        claims="results/seeds/small_lr.claims.json",
        code=code(*SEED_CODE, "experiments.figures"),
    output:
        pdf=report(
            "figures/seeds/small_lr_equivalence.pdf",
            caption="../report/small_lr_equivalence.rst",
            category="Seed systems",
        ),
        png="figures/seeds/small_lr_equivalence.png",
    log:
        "results/logs/figures/seeds/small_lr_equivalence.log",
    benchmark:
        "results/benchmarks/figures/seeds/small_lr_equivalence.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed figure small_lr_equivalence --data {input.data}"
        " --claims {input.claims} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_seed_batch_threshold:
    input:
        data="results/seeds/threshold.parquet",
        claims="results/seeds/threshold.claims.json",
        code=code(*SEED_CODE, "experiments.figures"),
    output:
        pdf=report(
            "figures/seeds/batch_threshold.pdf",
            caption="../report/batch_threshold.rst",
            category="Seed systems",
        ),
        png="figures/seeds/batch_threshold.png",
    log:
        "results/logs/figures/seeds/batch_threshold.log",
    benchmark:
        "results/benchmarks/figures/seeds/batch_threshold.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed figure batch_threshold --data {input.data}"
        " --claims {input.claims} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_seed_baselines_vs_batch:
    input:
        data="results/seeds/baselines.parquet",
        claims="results/seeds/baselines.claims.json",
        code=code(*SEED_CODE, "experiments.figures"),
    output:
        pdf=report(
            "figures/seeds/baselines_vs_batch.pdf",
            caption="../report/baselines_vs_batch.rst",
            category="Seed systems",
        ),
        png="figures/seeds/baselines_vs_batch.png",
    log:
        "results/logs/figures/seeds/baselines_vs_batch.log",
    benchmark:
        "results/benchmarks/figures/seeds/baselines_vs_batch.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed figure baselines_vs_batch --data {input.data}"
        " --claims {input.claims} --out {output.pdf} 2> >(tee {log} >&2)"


rule figure_seed_search_noise:
    input:
        data="results/seeds/search_noise.parquet",
        claims="results/seeds/search_noise.claims.json",
        code=code(*SEED_CODE, "experiments.figures", "experiments.search_noise"),
    output:
        pdf=report(
            "figures/seeds/search_noise.pdf",
            caption="../report/search_noise.rst",
            category="Seed systems",
        ),
        png="figures/seeds/search_noise.png",
    log:
        "results/logs/figures/seeds/search_noise.log",
    benchmark:
        "results/benchmarks/figures/seeds/search_noise.tsv"
    conda:
        CONDA_ENV
    shell:
        "exec python -m minibatch_momentum seed figure search_noise --data {input.data}"
        " --claims {input.claims} --out {output.pdf} 2> >(tee {log} >&2)"
