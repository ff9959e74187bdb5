"""Throughput of the batched engine against its peers, how the cost of a sweep grows, and
the pre-flight plan of a workflow config.

- :mod:`~minibatch_momentum.benchmark.command`        ``mbm benchmark``: its flags and modes
  (also ``python -m minibatch_momentum.benchmark``)
- :mod:`~minibatch_momentum.benchmark.throughput`     the engine against its peers on one
  sweep, one CPU thread; the exact theory's time
- :mod:`~minibatch_momentum.benchmark.peers`          the peers: ``torch.optim.SGD``, a
  hand-written loop, JAX ``jit(vmap(scan))``; the machine's GEMM peak
- :mod:`~minibatch_momentum.benchmark.cost_study`     engine time against ``d``, ``R`` and
  shards, the fitted per-step model; the sampler's measured cost
- :mod:`~minibatch_momentum.benchmark.cost`           the shards a config sweeps and the
  per-step cost model that prices them (torch-free)
- :mod:`~minibatch_momentum.benchmark.extrapolation`  a profile's sweep time extrapolated
  from the cost model and the exact theory's ``T*(B)``
- :mod:`~minibatch_momentum.benchmark.job_times`      a workflow run's time by rule, from
  Snakemake's ``benchmark:`` files
- :mod:`~minibatch_momentum.benchmark.plan`           ``mbm plan``: predicted steps and time
  per shard, hopeless shards, before any sweep (torch-free; the Snakefile imports it)
- :mod:`~minibatch_momentum.benchmark.solvers`        the momentum-rule solver against CG
  and LSQR
"""
