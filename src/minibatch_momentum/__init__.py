"""Mini-batch SGD with classical momentum on interpolating quadratics.

The package behind a one-command replication of "momentum accelerates in proportion
to the batch size, up to a saturation point" (Garg & Dereziński, arXiv 2605.18609).

Subpackages, named for what they hold, in layers: each imports only those above it
(``tests/test_imports.py`` checks it).

- :mod:`~minibatch_momentum.sampling`   sampler tables (numpy) and mini-batch streams (torch)
- :mod:`~minibatch_momentum.problems`   consistent least-squares systems and their spectra
- :mod:`~minibatch_momentum.theory`     exact mean-square dynamics, the momentum rule, theory tables
- :mod:`~minibatch_momentum.simulate`   the batched engine over an (eta, beta) grid; sweep shards
- :mod:`~minibatch_momentum.analysis`   tuned T*(B), critical batches, efficiency, speedup
- :mod:`~minibatch_momentum.report`     the claims report (JSON, Markdown, HTML), paper inputs
- :mod:`~minibatch_momentum.optim`      torch.optim optimizers and the rule for PyTorch users
- :mod:`~minibatch_momentum.solver`     the rule as a linear-system solver: :func:`solve`
- :mod:`~minibatch_momentum.studies`    the seed systems S1-S7, one module each
- :mod:`~minibatch_momentum.figures`    one style; one function per figure
- :mod:`~minibatch_momentum.benchmark`  throughput against peers, the cost model, ``mbm plan``
- :mod:`~minibatch_momentum.cli`        the ``mbm`` command the workflow calls

Between them, small modules: :mod:`.version`, :mod:`.io` (atomic writes), :mod:`.checks`
(declared constraints) and :mod:`.sources` (the package's import graph, from its source:
a job's code) on top; :mod:`.grid` (a shard's (eta, beta) grid) under the sampling,
:mod:`.config` (the workflow's config) under the problems, :mod:`.curvature` (what the rule
needs, on a PyTorch model) above the optimizers. ``LAYERS`` in ``tests/test_imports.py``
is the whole order.
"""

from minibatch_momentum.version import __version__

__all__ = ["__version__", "solve"]


def __getattr__(name):
    # ``minibatch_momentum.solve`` without importing torch at package import.
    if name == "solve":
        from minibatch_momentum.solver import solve

        return solve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
