"""Consistent systems (the interpolation regime) and the families they come from.

Modules:

- :mod:`~minibatch_momentum.problems.system`: the :class:`Problem` type (a consistent
  ``rows`` or ``psd`` system with the eigendecomposition of its Hessian), its spectral
  quantities, prescribed spectra (:func:`spectrum`), ``from_matrix`` / ``from_psd`` and
  save / load;
- :mod:`~minibatch_momentum.problems.synthetic`: Gaussian and heavy-tailed rows with an
  exactly prescribed spectrum;
- :mod:`~minibatch_momentum.problems.kernel`: RBF kernel systems, scikit-learn's digits;
- :mod:`~minibatch_momentum.problems.matrix_files`: user-supplied matrices read from
  ``.npy``, ``.npz`` or Matrix Market files, checked for the interpolation regime;
- :mod:`~minibatch_momentum.problems.families`: the registry of families: a config entry
  checked (:func:`check_problem_spec`) and built (:func:`make_problem`).
"""
