r"""The momentum rule as a solver for consistent linear systems (the interpolation regime).

:func:`solve` finds ``x`` with ``A x = b`` (``b`` in the range of ``A``) by mini-batch
SGD, heavy ball or Nesterov, with the batch size and ``(eta, beta)`` set by the project's
momentum rule (:mod:`~minibatch_momentum.theory.rule`) from three numbers it measures
first: ``L``, ``mu`` and ``tr H``.

Problems: ``rows``, ``f(x) = ||A x - b||^2 / (2n)`` with ``H = A^T A / n`` (samplers
``uniform``: ``B`` distinct rows per step; ``kaczmarz``: i.i.d. rows drawn with probability
``∝ ||a_i||^2``, rescaled to the mean norm), and ``psd``, ``f(x) = x^T M x / 2 - b^T x``
with ``H = M`` (sampler ``coordinate``: i.i.d. coordinates drawn ``∝ M_jj``). The
samplers are those of :mod:`~minibatch_momentum.sampling.samplers`; the step is the engine's
(:mod:`~minibatch_momentum.simulate.engine`): ``y = x + gamma v``, ``v <- beta v - eta g(y)``,
``x <- x + v``, ``gamma = beta`` for ``nag``, else 0.

- :mod:`~minibatch_momentum.solver.run`         :func:`solve` and :class:`SolveResult`: the
  iteration, its residual checks, back-offs and stop rule, the cost in passes
- :mod:`~minibatch_momentum.solver.estimates`   ``L``, ``mu`` (Lanczos) and ``tr H``, and
  what the estimates are worth
- :mod:`~minibatch_momentum.solver.batch_size`  the rule's ``(eta, beta)``, the predicted
  steps and ``batch_size="auto"``
- :mod:`~minibatch_momentum.solver.system`      the system (dense, sparse or row callable)
  with its products counted; input checks
- :mod:`~minibatch_momentum.solver.advise`      ``mbm advise``: predicted steps against the
  batch size, before any solve
"""

from minibatch_momentum.solver.run import SolveResult, solve

__all__ = ["SolveResult", "solve"]
