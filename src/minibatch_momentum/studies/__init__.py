"""Seed-system experiments (docs/design.md section 2), as library code.

Each experiment has a frozen config dataclass (validated; ``from_dict`` for YAML/JSON,
``preset("quick" | "paper")``), ``run_*(config, progress=None) -> DataFrame`` (tidy,
deterministic given the seeds), ``analyze_*(df, config) -> dict`` and ``claim_*`` that
turns the analysis into a claims-report entry. Figures are in
:mod:`minibatch_momentum.figures.studies`.

- :mod:`.large_batch`: S1 (SNGM vs momentum SGD at equal large batch) and S4 (Exp(1)
  random scaling vs SGDM) on scikit-learn's digits.
- :mod:`.label_noise`: S2 (optimal momentum 1 - beta* ~ eta^(2/3) for label-noise SGD)
  on over-parametrized matrix sensing.
- :mod:`.matrix_sensing`: S2's model (symmetric matrix sensing) and heavy ball on it.
- :mod:`.small_lr`: S3 (SGDM(eta, beta) against SGD(eta / (1 - beta)) at small batch
  sizes), from the sweeps' shards.
- :mod:`.threshold`: S5 (the batch threshold for heavy-ball acceleration against kappa),
  from the exact theory.
- :mod:`.baselines`: S6 (SNGM, ASGD and MaSS in the batched engine beside heavy ball and
  Nesterov).
- :mod:`.search_noise`: S7 (the search-direction noise of SGD, heavy ball and Nesterov
  against B, beta and the accuracy reached) on digits and on a quadratic; a subpackage
  (config, theory, train, study).
- :mod:`.digits`: the digits split and the networks S1/S4 and S7 train.

The package imports none of them: a job imports the one study it runs
(``from minibatch_momentum.studies import threshold``), not the others and their
dependencies. The command line is ``mbm seed ...`` (:mod:`minibatch_momentum.cli.seeds`).
"""
