# The other seed systems (docs/design.md section 2), one rule per `mbm seed` call and one per
# figure. S3 and S6 use the headline problem and sampler (the config's first of each);
# S1, S2, S5 and S7 need no problem file. A system runs when `seeds.systems` lists it.
wildcard_constraints:
    baseline="|".join(SEED_BASELINES),


rule seed_large_batch:
    input:
        code=code(*SEED_CODE, "studies.large_batch", "optim"),
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
        code=code(*SEED_CODE, "studies.label_noise"),
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
        code=code(*SEED_CODE, "studies.small_lr", "problems.system"),
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
        code=code(*SEED_CODE, "studies.threshold", "theory.tuning", "problems.system"),
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
        code=code(*SEED_CODE, "studies.search_noise.study", "problems.system"),
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
        code=code(*SEED_CODE, "studies.baselines", "simulate.engine", "problems.system", "sampling.samplers"),
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
        code=code(*SEED_CODE, "studies.baselines", "problems.system"),
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


# One rule per figure, made in a loop over SEED_FIGURES; each calls one function of
# minibatch_momentum.figures.studies (the S7 figure also reads its study's module).
_SEED_FIGURE_CODE = {"search_noise": ("studies.search_noise.config", "studies.search_noise.theory")}

for _system, _fig in SEED_FIGURES.items():

    rule:
        name:
            f"figure_seed_{_fig}"
        input:
            data=f"results/seeds/{_system}.parquet",
            claims=f"results/seeds/{_system}.claims.json",
            code=code(*SEED_CODE, "figures.studies", *_SEED_FIGURE_CODE.get(_system, ())),
        output:
            pdf=report(
                f"figures/seeds/{_fig}.pdf",
                caption=f"../report/{_fig}.rst",
                category="Seed systems",
            ),
            png=f"figures/seeds/{_fig}.png",
        params:
            name=_fig,  # not in the shell's f-string: Snakemake formats that when the job runs
        log:
            f"results/logs/figures/seeds/{_fig}.log",
        benchmark:
            f"results/benchmarks/figures/seeds/{_fig}.tsv"
        conda:
            CONDA_ENV
        shell:
            "exec python -m minibatch_momentum seed figure {params.name} --data {input.data}"
            " --claims {input.claims} --out {output.pdf} 2> >(tee {log} >&2)"
