"""Mini-batch index streams: which rows each step draws (the only part of the samplers
that needs torch; the tables are in :mod:`~minibatch_momentum.sampling.samplers`).

Every run that shares a seed sees the same index stream (common random numbers): the
(eta, beta) grid of a shard, and the methods compared at one batch size, differ
only in their parameters, never in their luck. The stream depends on
``(n, batch_size, seed, replace, weights)`` alone, never on how it is consumed.
"""

from __future__ import annotations

import numpy as np
import torch

# Batches are drawn in fixed-size blocks so the stream never depends on how many
# steps a caller asks for at a time.
_BLOCK = 256


class MiniBatches:
    """Endless stream of mini-batches of ``batch_size`` indices out of ``range(n)``.

    Parameters
    ----------
    n : number of rows to sample from.
    batch_size : indices per step.
    seed : seeds a private ``torch.Generator``; same seed, same stream.
    replace : sample with replacement within a step (i.i.d. rows) instead of
        ``batch_size`` distinct rows. Steps are independent either way.
    weights : optional ``(n,)`` non-negative draw probabilities (up to scale) for
        i.i.d. draws (``replace`` must be True); default uniform.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        replace: bool = False,
        weights: np.ndarray | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not replace and batch_size > n:
            raise ValueError(f"batch_size={batch_size} exceeds n={n} without replacement")
        if weights is not None:
            if not replace:
                raise ValueError("weighted draws are i.i.d.: weights need replace=True")
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (n,) or not np.all(weights >= 0) or not weights.sum() > 0:
                raise ValueError(f"weights must be {n} non-negative numbers, not all zero")
            weights = torch.as_tensor(weights / weights.sum())
        self.n, self.batch_size, self.replace, self.weights = n, batch_size, replace, weights
        self._gen = torch.Generator().manual_seed(int(seed))
        self._buf = torch.empty((0, batch_size), dtype=torch.long)

    def take(self, steps: int) -> torch.Tensor:
        """The next ``steps`` batches as a ``(steps, batch_size)`` int64 CPU tensor."""
        parts, have = [self._buf], self._buf.shape[0]
        while have < steps:
            parts.append(self._block())
            have += parts[-1].shape[0]
        buf = torch.cat(parts) if len(parts) > 1 else self._buf
        out, self._buf = buf[:steps], buf[steps:]
        return out

    def put_back(self, batches: torch.Tensor) -> None:
        """Return the unused tail of the last :meth:`take` (its last rows, in order): the
        next ``take`` starts with them, so the stream is the same."""
        self._buf = torch.cat([batches.cpu(), self._buf])

    def _block(self) -> torch.Tensor:
        n, B, g = self.n, self.batch_size, self._gen
        if self.weights is not None:
            return torch.multinomial(self.weights, _BLOCK * B, True, generator=g).view(_BLOCK, B)
        if self.replace or B == 1:
            return torch.randint(n, (_BLOCK, B), generator=g)
        if B * B <= n:
            return self._distinct_by_redraw()
        # Large batches: a random permutation per step is O(n), cheaper than sorting
        # B-long rows once B^2 > n, and small next to the step's B x d x R product.
        return torch.stack([torch.randperm(n, generator=g)[:B] for _ in range(_BLOCK)])

    def _distinct_by_redraw(self) -> torch.Tensor:
        # Draw i.i.d. indices, then redraw every repeated entry until a batch has none.
        # The procedure commutes with any relabelling of the n rows and always ends in
        # B distinct indices, so each batch is a uniformly random B-subset.
        # Sorted and checked in NumPy: the same sorted rows as torch.sort, 10-20x faster
        # from B = 64 on (the draws stay torch's, so the stream is unchanged).
        n, B, g = self.n, self.batch_size, self._gen
        out = torch.randint(n, (_BLOCK, B), generator=g).numpy()
        while True:
            out.sort(axis=1)
            repeat = np.zeros(out.shape, dtype=bool)
            repeat[:, 1:] = out[:, 1:] == out[:, :-1]
            k = int(repeat.sum())
            if k == 0:
                return torch.from_numpy(out)
            out[repeat] = torch.randint(n, (k,), generator=g).numpy()
