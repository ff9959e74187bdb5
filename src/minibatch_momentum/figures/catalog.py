"""The figures of a (problem, sampler) pair, declared once (no plotting imports here).

The workflow makes one rule per entry (``workflow/rules/figures.smk``) and asks
:func:`pair_figures` which of them a pair gets; ``mbm figure NAME`` accepts exactly these
names. Adding a figure is one entry here, one function in :mod:`.pairs` and its branch in
the CLI's figure command.
"""

from __future__ import annotations

from typing import NamedTuple


class PairFigure(NamedTuple):
    """One figure drawn from a pair's summary.

    Attributes:
        category: its section in the Snakemake report.
        reads: the theory it reads beside the summary: ``"grid"``, the exact counts tuned
            on the sweep's own grid (drawn when present); ``"theory"``, the theory tables
            (required); ``None``, none.
        exact: whether it needs the exact theory, so a pair whose sampler has none (the
            block projection) goes without it.
    """

    category: str
    reads: str | None
    exact: bool


PAIR_FIGURES = {
    "tstar_vs_batch": PairFigure("Batch scaling", "grid", exact=True),
    "efficiency_vs_batch": PairFigure("Batch scaling", "grid", exact=False),
    "speedup_vs_batch": PairFigure("Batch scaling", "grid", exact=False),
    "rule_vs_grid": PairFigure("Momentum rule", "theory", exact=True),
    "loss_curves": PairFigure("Batch scaling", None, exact=False),
    "theory_vs_empirical": PairFigure("Exact theory", "theory", exact=True),
    "rate_heatmap": PairFigure("Exact theory", "theory", exact=True),
}
# Claim T1's figure, drawn from the Monte Carlo table of every pair that runs T1.
MONTE_CARLO_FIGURE = "exact_vs_monte_carlo"
FIGURE_NAMES = (*PAIR_FIGURES, MONTE_CARLO_FIGURE)


def pair_figures(headline: bool, exact: bool, t1: bool) -> list[str]:
    """The figures a pair gets: the headline pair every summary figure its theory allows
    (the others are panels of the coverage grid, where their claims point), and every
    pair that runs T1 its Monte Carlo figure."""
    names = [n for n, f in PAIR_FIGURES.items() if exact or not f.exact] if headline else []
    return names + [MONTE_CARLO_FIGURE] * t1
