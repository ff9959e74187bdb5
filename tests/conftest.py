"""Shared helpers for the vertical-slice tests (problems, engine, sweeps, workflow)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC = REPO_ROOT / "src"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s")
    # One torch thread: the tests' tensors are tiny, and multi-threaded ops stall when the
    # other core is busy (docs/design.md section 6), e.g. with the workflow test's jobs.
    torch.set_num_threads(1)


def subprocess_env() -> dict:
    """Environment for child processes: this checkout's ``src`` first, one torch thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MPLBACKEND", "Agg")
    return env


PYTHON = sys.executable


def relative_loss(A: np.ndarray, x_star: np.ndarray, xs: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """``f(x_t) / f(x_0)`` with ``f(x) = ||A (x - x*)||^2 / (2n)``, straight from the definition.

    ``xs`` is ``(T, d, R)`` (iterates of ``R`` runs); returns ``(T, R)``.
    """
    n = A.shape[0]
    r0 = A @ (np.asarray(x0) - x_star)
    f0 = r0 @ r0 / (2 * n)
    r = A @ (np.asarray(xs) - x_star[:, None])  # (T, n, R)
    return np.sum(r * r, axis=-2) / (2 * n) / f0


@pytest.fixture
def rng():
    return np.random.default_rng(20260521)
