r"""Momentum optimizers from the literature, as drop-in ``torch.optim.Optimizer`` classes.

=========================  ================================================  ================
class                      method                                            source
=========================  ================================================  ================
:class:`SNGM`              normalized gradient with momentum                 arXiv 2007.13985
:class:`RandomScaledSGDM`  SGD with momentum, each update scaled by Exp(1)   arXiv 2405.09742
:class:`AccSGD`            accelerated SGD (ASGD) of Jain et al.             arXiv 1704.08227
:class:`MaSS`              Nesterov SGD with a compensation term             arXiv 1810.13395
=========================  ================================================  ================

:func:`sgd_from_rule` (:mod:`~minibatch_momentum.optim.rule`) builds a ``torch.optim.SGD``
whose learning rate and momentum come from this project's momentum rule
(:mod:`~minibatch_momentum.theory.rule`) for a batch size;
:func:`estimate_curvature` (from :mod:`~minibatch_momentum.curvature`) measures what it
needs on a model, and :func:`gradient_noise_scale` (from :mod:`~minibatch_momentum.theory.rule`)
is McCandlish et al.'s estimator from mini-batch gradients.

Each class (:mod:`~minibatch_momentum.optim.optimizers`, on the shared plumbing of
:mod:`~minibatch_momentum.optim.base`) is a thin loop over its parameter groups around a
functional update (:func:`sngm_update`, :func:`random_scaled_sgdm_update`,
:func:`accsgd_update`, :func:`mass_update`) that works on plain lists of tensors, so the
same arithmetic can be reused outside ``torch.optim``. The functional updates change the
parameters and the state buffers in place and never write to the gradients.

Conventions shared by all classes:

- Hyperparameters live in the param groups, so each group may have its own; the main
  step size is always ``lr``, so ``torch.optim.lr_scheduler`` works unchanged.
- ``step(closure=None)``: the closure, when given, is called under ``torch.enable_grad()``
  before the update and its value is returned.
- Parameters whose ``.grad`` is ``None`` are skipped (no state, no update), as in
  ``torch.optim.SGD``. Sparse gradients are refused.
- ``weight_decay`` is the coupled L2 penalty of ``torch.optim.SGD``: ``g <- g + wd * w``
  (computed out of place) before the method's update.
- Arithmetic happens in the parameters' dtype; float64 parameters stay float64 throughout.
- ``state_dict()`` returns a snapshot (state tensors cloned) and ``load_state_dict()``
  copies what it loads, so, unlike the built-in ``torch.optim`` classes, an optimizer
  loaded in-process never shares buffers with the one it was saved from. A save / load
  round trip reproduces the subsequent steps bit for bit.
"""

from minibatch_momentum.curvature import Curvature, estimate_curvature
from minibatch_momentum.optim.optimizers import (
    SNGM,
    AccSGD,
    MaSS,
    RandomScaledSGDM,
    accsgd_update,
    mass_update,
    random_scaled_sgdm_update,
    sngm_update,
)
from minibatch_momentum.optim.rule import sgd_from_rule
from minibatch_momentum.theory.rule import gradient_noise_scale

__all__ = [
    "SNGM",
    "RandomScaledSGDM",
    "AccSGD",
    "MaSS",
    "sngm_update",
    "random_scaled_sgdm_update",
    "accsgd_update",
    "mass_update",
    "sgd_from_rule",
    "estimate_curvature",
    "Curvature",
    "gradient_noise_scale",
]
