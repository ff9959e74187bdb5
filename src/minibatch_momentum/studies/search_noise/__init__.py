r"""Seed system S7: search-direction noise of SGD with momentum.

Sato & Iiduka (*Role of momentum in smoothing objective function in implicit graduated
optimization*, arXiv 2402.02325) call the stochastic noise that matters the gap
``omega_t = d_t - grad f(x_t)`` between the optimizer's search direction ``d_t`` and the
steepest-descent direction, not the variance of the stochastic gradient. Its level
should fall as ``1/sqrt(B)``, it sets how much the objective is smoothed, and (versions
v2/v3) it "dominates generalizability": across models and configurations the noise
level and the test accuracy correlate strongly and negatively. Whether momentum lowers
the level is where the versions differ: the earlier ones say it does (the abstract of v1:
momentum smooths; its body: momentum reduces the variance), v4 (February 2025, retitled
*Momentum does not reduce stochastic noise in SGD*) that it does not.

Three optimizers, each with its own search direction (``g_t`` the mini-batch gradient):

- ``sgd``: ``d_t = g_t``, ``x_{t+1} = x_t - eta d_t``;
- ``shb`` (stochastic heavy ball, ``torch.optim.SGD(momentum=beta)``):
  ``d_t = beta d_{t-1} + g_t``; effective step ``eta / (1 - beta)``;
- ``nshb`` (normalized heavy ball, the EMA form, ``torch.optim.SGD(momentum=beta,
  dampening=1 - beta)``): ``d_t = beta d_{t-1} + (1 - beta) g_t``; effective step
  ``eta``.

Both momentum forms start from ``d_0 = g_0`` (``torch.optim.SGD``'s first step). With
``eta_SHB = (1 - beta) eta_NSHB`` they take the same steps (after the first): they
differ only in what is called the search direction. Every comparison below is at equal
effective step ``eta_eff`` (the config's ``eff_lrs``): SGD at ``eta_eff``, NSHB at
``eta_eff``, SHB at ``(1 - beta) eta_eff``.

The quadratic case, exactly
---------------------------
On a consistent row system of the main study, ``f(x) = ||A x - b||^2 / (2n)`` with
``b = A x*``, write ``e = x - x*``. Row ``i``'s gradient is ``g_i = a_i a_i^T e``, the
full gradient ``grad f = H e`` with ``H = A^T A / n``; a step draws ``B`` distinct rows
``S`` uniformly and ``g = (1/B) sum_{i in S} g_i``, ``xi = g - grad f``.

1. Mini-batch noise at a point. ``xi`` is the error of a sample mean drawn without
   replacement from the ``n`` values ``g_i``, so ``E[xi | x] = 0`` and

   ``E[||xi||^2 | x] = c_B sigma^2(x)``, ``c_B = (n - B) / (B (n - 1))``,
   ``sigma^2(x) = (1/n) sum_i ||g_i - grad f||^2 = (1/n) sum_i ||a_i||^2 (a_i^T e)^2
   - ||H e||^2``

   (the finite-population variance: ``1/B`` per draw times ``(n - B)/(n - 1)``, the
   correlation of draws without replacement). :func:`batch_noise_factor`,
   :func:`row_gradient_variance`.
2. One step, given the past ``F_t = (x_t, d_{t-1})``, of which ``xi_t`` has mean zero
   (so every cross term with it vanishes):

   - SGD: ``omega_t = xi_t``, ``E[||omega_t||^2 | F_t] = c_B sigma^2(x_t)``;
   - SHB: ``omega_t = beta d_{t-1} + xi_t``,
     ``E[||omega_t||^2 | F_t] = beta^2 ||d_{t-1}||^2 + c_B sigma^2(x_t)``;
   - NSHB: ``omega_t = beta (d_{t-1} - grad f(x_t)) + (1 - beta) xi_t``,
     ``E[||omega_t||^2 | F_t] = beta^2 ||d_{t-1} - grad f(x_t)||^2
     + (1 - beta)^2 c_B sigma^2(x_t)``

   (at ``t = 0`` all three are ``c_B sigma^2(x_0)``). :func:`expected_noise_sq`; the
   pipeline compares it with the measured ``||omega_t||^2`` along the trajectories
   (claim S7a's quadratic check). Averaged over ``F_t`` this is the exact
   ``E||omega_t||^2``.
3. The batch-size law. At a given state the stochastic part scales as ``c_B``, i.e.
   the level as ``B^{-1/2}`` for ``B << n``; the local log-log slope is
   ``-1/2 - B / (2 (n - B))``, and over a grid of batch sizes the predicted slope is the
   least-squares slope of ``log sqrt(c_B)`` (:func:`predicted_slope`). The momentum
   terms of step 2 carry no ``1/B``: SHB's ``beta^2 ||d_{t-1}||^2`` holds the
   steepest-descent direction itself.
4. The paper's frozen-noise levels. If the iterate moves little over the momentum's
   memory (``~ 1/(1 - beta)`` steps) and successive ``xi`` are uncorrelated with
   ``E||xi||^2 = c_B sigma^2``, unrolling step 2 gives the stationary levels
   ``E||omega||^2 ~ c_B sigma^2`` (SGD), ``(1 - beta)/(1 + beta) c_B sigma^2`` (NSHB:
   lower by ``sqrt((1 - beta)/(1 + beta))`` at equal effective step), and
   ``(beta / (1 - beta))^2 ||grad f||^2 + c_B sigma^2 / (1 - beta^2)`` (SHB: the
   stochastic part higher by ``1 / sqrt(1 - beta^2)``, plus a deterministic gap that
   does not shrink with ``B``). :func:`frozen_noise_ratio`. What the approximation
   leaves out is the staleness of the averaged gradients, ``sum_j beta^j (grad f(x_{t-j})
   - grad f(x_t))``, which grows with ``eta_eff``; measurement decides.

In the interpolation regime ``sigma^2(x*) = 0``: the noise vanishes at the solution, so
on the quadratics the level decays along training and only step 2 is compared, state by
state.

The digits MLP
--------------
S1's data and model (:func:`~minibatch_momentum.studies.digits.load_digits_split`, its
MLP), trained for a fixed number of ``steps`` at every ``(method, eta_eff, B, beta,
seed)``; each seed fixes the initial weights and the mini-batch sequence at each ``B``
(common to every method and step size, so comparisons are paired). Every
``measure_every`` steps in the last ``window`` of training (and at a quarter of that
rate before it) the full-batch training gradient ``grad f(x_t)`` (exact, not an
estimate) and the optimizer's direction ``d_t`` give ``||omega_t||^2``. A run's *noise
level* is the root-mean-square ``||omega_t||`` over the measurements in the window; its
test accuracy is taken at the end.

All runs at one ``B`` are trained together as independent slices of one stacked MLP
(batched matrix products; the summed loss separates, so each slice gets its own
gradient), with ``torch.optim.SGD``'s update written out per slice: the first step
``d = g``, then ``d <- beta d + (1 - dampening) g`` with dampening 0 (SHB) or ``beta``
(NSHB), ``x <- x - lr d``. The tests check it against ``torch.optim.SGD`` itself run by
run (same directions and accuracies). Batching is what keeps the default profile's grid
(180 runs) at a few seconds.

Claims (:func:`claim_s7a`, :func:`claim_s7b`, :func:`claim_s7c`):

- S7a: the slope of log level against log B for SGD (per seed, averaged over
  ``eta_eff``; percentile bootstrap over seeds) within ``slope_tolerance`` of the
  prediction of step 3; and the closed form of step 2 matches the measured mean
  ``||omega_t||^2`` on the quadratic (99% interval of the mean ratio contains 1).
- S7b, one entry per momentum form: the geometric-mean ratio of its level to SGD's at
  equal ``eta_eff`` (same seed, ``B``), with a bootstrap interval over seeds. PASS
  (momentum lowers the noise, as the earlier versions say) when the interval lies
  below 1; otherwise FAIL, i.e. the data side with v4.
- S7c: Spearman correlation between noise level and test accuracy across all
  configurations (seed means; every method, ``eta_eff``, ``B``, ``beta``), with a
  percentile bootstrap over configurations; PASS when the interval lies below zero.

Modules: :mod:`.config` (the config, the methods), :mod:`.theory` (the quadratic case's
closed forms, steps 1-4 above), :mod:`.train` (the runs: the quadratic, the digits MLP),
:mod:`.study` (what ``mbm seed search-noise`` runs: :func:`~.study.run_search_noise`,
:func:`~.study.analyze_search_noise` and the claims).
"""
