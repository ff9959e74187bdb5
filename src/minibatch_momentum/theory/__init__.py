r"""Exact mean-square dynamics of mini-batch SGD, heavy ball and Nesterov (docs/design.md §3).

Everything here is exact: expected loss curves, asymptotic rates and the tuned
``T*(B)`` curves follow from the second moments of the error, with no constant fitted
and no Monte Carlo. :mod:`~minibatch_momentum.simulate.engine` simulates the same recursion; the
tests check the two against each other.

Derivation
----------
Write ``e_t = x_t - x*``, ``z_t = (e_t, e_{t-1})`` and ``u_t = y_t - x* = W z_t`` with
``W = [(1 + gamma) I, -gamma I]`` (``gamma = beta`` for ``nag``, 0 otherwise). With
``H_S = A_S^T A_S / B`` the step of :mod:`~minibatch_momentum.simulate.engine` reads::

    z_{t+1} = Mbar z_t - eta E1 (H_S - H) u_t,   E1 = [I; 0],
    Mbar    = [[(1 + beta) I - eta (1 + gamma) H,  -beta I + eta gamma H],
               [I,                                 0                    ]].

``E[H_S] = H`` and the batch of step ``t`` is independent of ``z_t``, so the cross
terms vanish and ``Sigma_t = E[z_t z_t^T]`` obeys the linear recursion::

    Sigma_{t+1} = Mbar Sigma_t Mbar^T + eta^2 E1 N(W Sigma_t W^T) E1^T,
    N(X) = E[H_S X H_S] - H X H.

*With replacement* the ``B`` rows are i.i.d. uniform, so ``E[H_S X H_S] =
D(X) / B + (1 - 1/B) H X H`` with ``D(X) = E_i[a_i a_i^T X a_i a_i^T]
= (1/n) A^T diag(A X A^T) A``, hence ``N(X) = (1/B) (D(X) - H X H)``.
*Without replacement* two distinct rows ``i != j`` give
``E[a_i a_i^T X a_j a_j^T] = (n H X H - D(X)) / (n - 1)``; summing the ``B`` diagonal
and ``B (B - 1)`` off-diagonal pairs gives ``N(X) = c_B (D(X) - H X H)`` with
``c_B = (n - B) / (B (n - 1))``, exactly zero at ``B = n``. For *Gaussian rows*
``a ~ N(0, H)`` Isserlis' theorem gives ``D(X) = 2 H X H + tr(H X) H`` for symmetric
``X``, so ``N(X) = c_B (H X H + tr(H X) H)``.

The Gaussian closed form (:mod:`~minibatch_momentum.theory.gaussian`) keeps, per mode of
``H``, the diagonal of this recursion, which closes for Gaussian rows; its rate solves a
secular equation. *Any sampler* (:mod:`~minibatch_momentum.sampling.samplers`): with
``Z_S`` in place of ``H_S`` the recursion is the same with
``N(X) = c_B (E_i[u_i (v_i^T X v_i) u_i^T] - H X H)``, exact for every sampler but
``kaczmarz_block`` (no closed form) (:mod:`~minibatch_momentum.theory.sampler`). The
*moment closure* (:mod:`~minibatch_momentum.theory.closure`) keeps the same diagonal with
the sampler's fourth moments ``Q_ij = E[u_i^2 v_j^2]`` in place of
``2 Lambda^2 + lam lam^T``; its rate generalizes the secular equation to a Perron-root
equation. It is the Gaussian closed form for Gaussian ``Q``, exact when the noise maps
diagonal second moments to diagonal ones, and otherwise an approximation that the tests
measure against the exact theory.

Modules
-------
- :mod:`~minibatch_momentum.theory.common`: methods and their checks, moment curves and
  iteration counts, the deterministic stability region and optimum; the conventions
  (what "rate" and "iterations" mean).
- :mod:`~minibatch_momentum.theory.dense`: the recursion above as dense ``(2d, 2d)``
  matrices for any ``A`` (the reference).
- :mod:`~minibatch_momentum.theory.model`: :class:`~minibatch_momentum.theory.model.NoiseModel`,
  the interface of the per-mode theories (curve, iterations, rate, operator) and the
  per-mode recursion they step.
- :mod:`~minibatch_momentum.theory.gaussian`: the Gaussian closed form (``Gaussian``)
  and its secular-equation rate.
- :mod:`~minibatch_momentum.theory.closure`: the moment closure (``Closure``) and its
  Perron-root rate.
- :mod:`~minibatch_momentum.theory.sampler`: any sampler's exact noise operator, curve and
  rate, and its fourth moments (``closure_model``).
- :mod:`~minibatch_momentum.theory.tuning`: rate-optimal ``(eta, beta)``, ``T*(B)`` and
  the breakpoint, over any noise model.
- :mod:`~minibatch_momentum.theory.exact`: the workflow's exact-theory tables.
- :mod:`~minibatch_momentum.theory.rule`: the momentum rule and its calibration.
"""
