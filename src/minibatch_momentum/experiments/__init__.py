"""Seed-system experiments (docs/design.md section 2), as library code.

Each experiment has a frozen config dataclass (validated; ``from_dict`` for YAML/JSON,
``preset("quick" | "paper")``), ``run_*(config, progress=None) -> DataFrame`` (tidy,
deterministic given the seeds), ``analyze_*(df, config) -> dict`` and ``claim_*`` that
turns the analysis into a claims-report entry. Figures are in :mod:`.figures`.

- :mod:`.large_batch`: S1 (SNGM vs momentum SGD at equal large batch) and S4 (Exp(1)
  random scaling vs SGDM) on scikit-learn's digits.
- :mod:`.label_noise`: S2 (optimal momentum 1 - beta* ~ eta^(2/3) for label-noise SGD)
  on over-parametrized matrix sensing.
- :mod:`.small_lr`: S3 (SGDM(eta, beta) against SGD(eta / (1 - beta)) at small batch
  sizes), from the sweeps' shards.
- :mod:`.threshold`: S5 (the batch threshold for heavy-ball acceleration against kappa),
  from the exact theory.
- :mod:`.baselines`: S6 (SNGM, ASGD and MaSS in the batched engine beside heavy ball and
  Nesterov).

S3, S5 and S6 are imported on their own (``from minibatch_momentum.experiments import
threshold``), so a job that runs one of them does not import the others. The command
line is ``mbm seed ...`` (:mod:`minibatch_momentum.seeds`).
"""

from .label_noise import (
    LabelNoiseConfig,
    analyze_label_noise,
    claim_s2,
    fit_crossover,
    fit_exponent,
    run_label_noise,
)
from .large_batch import (
    LargeBatchConfig,
    analyze_large_batch,
    claim_s1,
    claim_s4,
    load_digits_split,
    run_large_batch,
    tuned_table,
)

__all__ = [
    "LargeBatchConfig",
    "run_large_batch",
    "analyze_large_batch",
    "claim_s1",
    "claim_s4",
    "load_digits_split",
    "tuned_table",
    "LabelNoiseConfig",
    "run_label_noise",
    "analyze_label_noise",
    "claim_s2",
    "fit_exponent",
    "fit_crossover",
]
