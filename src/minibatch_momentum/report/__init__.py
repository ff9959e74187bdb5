"""What a reader gets: the claims report and the paper's numbers.

- :mod:`.records`: one check record, one claim record, one verdict rule.
- :mod:`.sweep_claims`: C1-C4 per pair, C5/C6 over the pairs and C7 over kappa, from the
  sweeps' summaries and the exact theory.
- :mod:`.scaling_claims`: the batch-scaling checks (critical batches, efficiency,
  speedup) and their tolerances.
- :mod:`.curves`: measured and exact T(B) curves in the form the checks and figures read.
- :mod:`.markdown`: the report's JSON and Markdown; :mod:`.html`: its HTML page.
- :mod:`.paper`: the paper's generated inputs (every number the LaTeX prints).
"""
