"""Running the methods: the batched engine over an (eta, beta) grid (:mod:`.engine`) with
its compiled small-batch steps on the CPU (:mod:`.kernels`) and its stopping rule and
results (:mod:`.outcomes`), the sweep shards the workflow writes (:mod:`.sweep`) and claim
T1's Monte Carlo beside the exact curve (:mod:`.montecarlo`)."""
