"""Mini-batch SGD with classical momentum on interpolating quadratics.

The package behind a one-command replication of "momentum accelerates in proportion
to the batch size, up to a saturation point" (Garg & Dereziński, arXiv 2605.18609).

Modules, one job each:

- :mod:`~minibatch_momentum.problems`  consistent least-squares systems and their spectra
- :mod:`~minibatch_momentum.samplers`  mini-batch index sequences (common random numbers)
- :mod:`~minibatch_momentum.engine`    batched SGD / heavy ball / Nesterov over an (eta, beta) grid
- :mod:`~minibatch_momentum.sweep`     one sweep shard: grid x seeds -> Parquet
- :mod:`~minibatch_momentum.analysis`  tuned T*(B), slopes, knees, speedups
- :mod:`~minibatch_momentum.claims`    the claims report (JSON + Markdown)
- :mod:`~minibatch_momentum.plots`     one function per figure
- :mod:`~minibatch_momentum.style`     the figures' one style and their atomic PDF + PNG write
- :mod:`~minibatch_momentum.sources`   the package's import graph, from its source (a job's code)
- :mod:`~minibatch_momentum.cli`       the ``mbm`` command the workflow calls
- :mod:`~minibatch_momentum.solver`    the rule as a linear-system solver: :func:`solve`
"""

__version__ = "0.1.0"


def __getattr__(name):
    # ``minibatch_momentum.solve`` without importing torch at package import.
    if name == "solve":
        from .solver import solve

        return solve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
