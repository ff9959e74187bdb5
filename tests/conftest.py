"""Shared helpers for the vertical-slice tests (problems, engine, sweeps, workflow)."""

from __future__ import annotations

import json
import os
import subprocess
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


def mbm_process(*args, cwd=REPO_ROOT, timeout=120) -> subprocess.CompletedProcess:
    """``python -m minibatch_momentum *args`` in a fresh process (the real entry point)."""
    return subprocess.run(
        [PYTHON, "-m", "minibatch_momentum", *map(str, args)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=cwd,
        timeout=timeout,
    )


def with_value(d: dict, path: str, value) -> dict:
    """A deep copy of ``d`` with the dotted ``path`` set to ``value`` (``KeyError``:
    removed), as a bad-input test changes one field of a good config."""
    d = json.loads(json.dumps(d))
    *head, last = path.split(".")
    sub = d
    for k in head:
        sub = sub[k]
    if value is KeyError:
        del sub[last]
    else:
        sub[last] = value
    return d


def relative_loss(A: np.ndarray, x_star: np.ndarray, xs: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """``f(x_t) / f(x_0)`` with ``f(x) = ||A (x - x*)||^2 / (2n)``, straight from the definition.

    ``xs`` is ``(T, d, R)`` (iterates of ``R`` runs); returns ``(T, R)``.
    """
    n = A.shape[0]
    r0 = A @ (np.asarray(x0) - x_star)
    f0 = r0 @ r0 / (2 * n)
    r = A @ (np.asarray(xs) - x_star[:, None])  # (T, n, R)
    return np.sum(r * r, axis=-2) / (2 * n) / f0


# The engine tests' small system (tests/simulate/test_engine*.py): N rows, D unknowns,
# T steps, and a grid of four (eta, beta) configurations.
N, D, T = 12, 5, 40
ETAS = np.array([0.02, 0.05, 0.1, 0.07])
BETAS = np.array([0.9, 0.5, 0.3, 0.75])


def random_system(seed=0):
    """``(A, x_star, x0)``: an ``N x D`` system with unequal column scales."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, D)) * np.array([1.5, 1.0, 0.7, 0.4, 0.2])
    x_star = rng.standard_normal(D)
    x0 = rng.standard_normal(D)
    return A, x_star, x0


def numpy_batches(n, B, steps, seed=1, runs=None):
    """Distinct indices per step from numpy (independent of the package's sampler)."""
    rng = np.random.default_rng(seed)
    shape = (steps,) if runs is None else (steps, runs)
    out = np.empty(shape + (B,), dtype=np.int64)
    for i in np.ndindex(*shape):
        out[i] = rng.permutation(n)[:B]
    return torch.as_tensor(out)


def torch_reference(A, x_star, x0, batches, cls, read=None, **hyper):
    """Run the ``torch.optim`` class ``cls`` with one parameter (param group) per run;
    each keyword of ``hyper`` is an array of one value per run or a value every run shares
    (``nesterov=True``). ``read(opt, p)`` picks what is compared (default: the
    parameter). Returns ``(T + 1, d, R)``."""
    A_t = torch.as_tensor(A, dtype=torch.float64)
    b_t = A_t @ torch.as_tensor(x_star, dtype=torch.float64)
    runs = max(np.size(v) for v in hyper.values())
    groups = [
        {"params": [parameter(x0)]}
        | {k: float(v[r]) if np.ndim(v) else v for k, v in hyper.items()}
        for r in range(runs)
    ]
    params = [g["params"][0] for g in groups]
    opt = cls(groups, **{k: v for k, v in groups[0].items() if k != "params"})
    read = read or (lambda opt, p: p.detach().clone())

    def snap():
        return torch.stack(
            [read(opt, p) if opt.state[p] else p.detach().clone() for p in params], 1
        )

    out = [snap()]
    for batch in batches:
        opt.zero_grad()
        loss = 0
        for r, p in enumerate(params):
            idx = batch if batch.ndim == 1 else batch[r]
            loss = loss + ((A_t[idx] @ p - b_t[idx]) ** 2).mean() / 2
        loss.backward()
        opt.step()
        out.append(snap())
    return torch.stack(out).numpy()


def parameter(x0):
    """A float64 ``torch.nn.Parameter`` copy of ``x0``."""
    return torch.nn.Parameter(torch.as_tensor(x0, dtype=torch.float64).clone())


def assert_close_traj(got, want, tol=1e-10):
    got = np.asarray(got)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(got - want).max())
    assert err <= tol * scale, f"max abs error {err:.3g} (scale {scale:.3g})"


@pytest.fixture
def rng():
    return np.random.default_rng(20260521)


@pytest.fixture
def mbm(capsys):
    """``mbm`` run in-process: ``run(argv) -> (exit code, stderr lines)``, the progress
    lines (``[mbm ...``) left out."""
    from minibatch_momentum.cli import main

    def run(argv):
        code = main(argv)
        err = capsys.readouterr().err
        return code, [line for line in err.splitlines() if not line.startswith("[mbm ")]

    return run


# One claim record, as the claims report and every seed study write it.
CLAIM_KEYS = {"id", "statement", "method", "problem", "sampler", "verdict", "checks"}
CLAIM_KEYS |= {"figure", "source"}
CHECK_KEYS = {"check", "measured", "predicted", "tolerance", "pass"}


def assert_claim_shape(c: dict, cid: str | None = None) -> None:
    """The keys of a seed claim and of each of its checks, and a verdict of the three."""
    assert set(c) == CLAIM_KEYS, set(c) ^ CLAIM_KEYS
    assert cid is None or c["id"] == cid
    for ch in c["checks"]:
        assert CHECK_KEYS <= set(ch)
    assert c["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}


# (method, B, eta, beta) at which the exact theory is checked against other forms of it.
THEORY_SETTINGS = [
    ("sgd", 1, 0.5, 0.0),
    ("sgd", 3.5, 0.9, 0.0),
    ("hb", 1, 0.3, 0.8),
    ("hb", 7, 1.2, 0.5),
    ("nag", 2.5, 0.4, 0.7),
    ("nag", 7, 1.0, 0.9),  # divergent: the rate must be right above 1 too
]


def method_grids(problem, batch_sizes, **grid):
    """``(model, weights, grids)`` for exact-theory grid tests: ``problem``'s Gaussian
    model and initial weights, and one ``(batch_sizes, eta, beta)`` grid per method
    (``grid``: :class:`~minibatch_momentum.grid.Grid`'s fields)."""
    from minibatch_momentum.grid import Grid
    from minibatch_momentum.theory import exact
    from minibatch_momentum.theory.gaussian import Gaussian

    L = float(problem.eigvals.max())
    points = Grid(**grid).points
    grids = {m: (list(batch_sizes), *points(m, L)) for m in ("sgd", "hb", "nag")}
    model = Gaussian(problem.eigvals, n=problem.n, replace=False)
    return model, exact.initial_weights(problem), grids
