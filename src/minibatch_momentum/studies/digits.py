"""The digits data and the networks S1/S4 (:mod:`.large_batch`) and S7
(:mod:`.search_noise`) train on it; the seeds they derive and the torch threads they use.

Each function takes a :class:`~minibatch_momentum.studies.large_batch.LargeBatchConfig`
(S7 builds one from its own fields) and reads only its data and model fields
(``split_seed``, ``test_fraction``, ``val_fraction``, ``model``, ``hidden``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np


def load_digits_split(config) -> dict:
    """The digits data split into train / val / test, standardized with train statistics.

    Returns a dict of float32 feature arrays ``X_train``, ``X_val``, ``X_test`` (shape
    ``(m, 64)``, pixel order as in scikit-learn) and int64 labels ``y_*``. The split is
    stratified by class and depends only on ``split_seed`` and the two fractions.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - environment problem
        raise ImportError(
            "the large-batch experiment needs scikit-learn (its bundled digits data): "
            "pip install scikit-learn"
        ) from exc
    digits = load_digits()
    X = np.asarray(digits.data, dtype=np.float64) / 16.0
    y = np.asarray(digits.target, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([config.split_seed, 20070613]))
    parts = {"train": [], "val": [], "test": []}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(config.test_fraction * len(idx)))
        n_val = int(round(config.val_fraction * len(idx)))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    out = {}
    split = {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
    mu = X[split["train"]].mean(axis=0)
    sd = X[split["train"]].std(axis=0)
    sd[sd == 0] = 1.0
    for k, idx in split.items():
        out[f"X_{k}"] = ((X[idx] - mu) / sd).astype(np.float32)
        out[f"y_{k}"] = y[idx]
    return out


def make_model(config, seed: int):
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if config.model == "mlp":
            model = nn.Sequential(
                nn.Linear(64, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 10)
            )
        else:
            model = nn.Sequential(
                nn.Unflatten(1, (1, 8, 8)),
                nn.Conv2d(1, 16, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(32 * 4 * 4, config.hidden),
                nn.ReLU(),
                nn.Linear(config.hidden, 10),
            )
    return model


def derive_seed(*keys: int) -> int:
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)
