"""The (eta, beta) grid of a sweep shard: torch-free, so the exact theory tunes on the
very points the sweeps run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minibatch_momentum.checks import check_grid
from minibatch_momentum.sampling.samplers import PROJECTION_SAMPLERS


@dataclass(frozen=True)
class Grid:
    """Log-spaced step sizes (in units of ``1/L``) and momenta ``beta = 1 - 2^-k``-style.

    ``eta * L`` runs over ``num_eta`` values from ``eta_min`` to ``eta_max`` (for the
    block-projection sampler ``kaczmarz_block``, ``L = 1``: ``eta`` is the relaxation
    factor of the projection);
    ``1 - beta`` over ``num_beta`` values from ``one_minus_beta_min`` to
    ``one_minus_beta_max``. SGD uses the step sizes only.
    """

    eta_min: float = 1e-3
    eta_max: float = 4.0
    num_eta: int = 25
    one_minus_beta_min: float = 1e-3
    one_minus_beta_max: float = 0.5
    num_beta: int = 10

    def __post_init__(self):
        check_grid(self.__dict__, "grid")

    def points(self, method: str, L: float) -> tuple[np.ndarray, np.ndarray]:
        """``(eta, beta)`` arrays of the grid for ``method``, absolute (not scaled by L)."""
        eta = np.geomspace(self.eta_min, self.eta_max, self.num_eta) / L
        if method == "sgd":
            return eta, np.zeros_like(eta)
        omb = np.geomspace(self.one_minus_beta_min, self.one_minus_beta_max, self.num_beta)
        e, b = np.meshgrid(eta, 1.0 - omb, indexing="ij")
        return e.ravel(), b.ravel()


def grid_scale(problem, sampler: str) -> float:
    """The ``L`` the grid's ``eta`` is in units of: ``H``'s largest eigenvalue, or 1 for a
    projection sampler (``kaczmarz_block``), whose ``eta`` is a relaxation factor."""
    return 1.0 if sampler in PROJECTION_SAMPLERS else float(problem.eigvals[-1])
