"""Mini-batch index streams: distinctness, range, uniformity, and chunk-independence."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from minibatch_momentum.sampling.batches import MiniBatches

# (n, B) covering every code path without replacement: B = 1 (plain draws), B^2 <= n
# (redraw repeats), B^2 > n (permutation prefix), B = n (a full permutation).
PATHS = [(50, 1), (100, 7), (100, 10), (30, 8), (30, 29), (30, 30), (2, 2)]


def chi2_bound(dof: int) -> float:
    """A generous upper bound on a chi-square(dof) sample: mean + 6 sd (p < 1e-6)."""
    return dof + 6 * math.sqrt(2 * dof)


def chi2(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(np.sum((counts - expected) ** 2) / expected)


@pytest.mark.parametrize("n,B", PATHS)
def test_without_replacement_batches_are_distinct_and_in_range(n, B):
    s = MiniBatches(n, B, seed=1)
    x = s.take(600)  # crosses the internal block size
    assert x.shape == (600, B) and x.dtype == torch.int64
    assert int(x.min()) >= 0 and int(x.max()) < n
    xs, _ = x.sort(dim=1)
    assert not bool((xs[:, 1:] == xs[:, :-1]).any())
    if B == n:
        assert torch.equal(xs, torch.arange(n).expand(600, n))


@pytest.mark.parametrize("n,B", [(40, 1), (40, 5), (40, 13), (40, 40)])
def test_with_replacement_in_range_and_repeats_happen(n, B):
    x = MiniBatches(n, B, seed=2, replace=True).take(500)
    assert x.shape == (500, B)
    assert int(x.min()) >= 0 and int(x.max()) < n
    if B > 1:
        xs, _ = x.sort(dim=1)
        repeats = (xs[:, 1:] == xs[:, :-1]).any(dim=1).float().mean().item()
        # P(batch has a repeat) = 1 - prod_{k<B} (1 - k/n): 0.23 (B=5), 0.88 (B=13), ~1 (B=40)
        p = 1 - np.prod(1 - np.arange(B) / n)
        assert abs(repeats - p) < 0.1


def test_with_replacement_allows_batches_larger_than_n():
    x = MiniBatches(3, 10, seed=0, replace=True).take(4)
    assert x.shape == (4, 10) and int(x.max()) < 3


@pytest.mark.parametrize("n,B", [(60, 1), (60, 6), (60, 20), (60, 60)])
@pytest.mark.parametrize("replace", [False, True])
def test_index_frequencies_are_uniform(n, B, replace):
    steps = 3000 // B + 100
    x = MiniBatches(n, B, seed=3, replace=replace).take(steps)
    counts = np.bincount(x.flatten().numpy(), minlength=n)
    if B == n and not replace:
        assert np.all(counts == steps)
        return
    assert chi2(counts) < chi2_bound(n - 1)


@pytest.mark.parametrize("n,B", [(6, 2), (10, 3), (7, 3), (6, 3), (5, 4)])
def test_batches_are_uniformly_random_subsets(n, B):
    # Every B-subset equally likely, on both distinct-sampling paths
    # (B^2 <= n, redraw repeats: 6/2 and 10/3; B^2 > n, permutation prefix: the rest).
    x = MiniBatches(n, B, seed=4).take(6000)
    subsets = [tuple(r) for r in x.sort(dim=1).values.tolist()]
    all_subsets = list(itertools.combinations(range(n), B))
    index = {s: i for i, s in enumerate(all_subsets)}
    counts = np.bincount([index[s] for s in subsets], minlength=len(all_subsets))
    assert counts.min() > 0
    assert chi2(counts) < chi2_bound(len(all_subsets) - 1)


def test_consecutive_batches_are_independent():
    # lag-1 pair frequencies of single draws (B=1): (n^2 - 1) dof chi-square
    n = 8
    x = MiniBatches(n, 1, seed=5).take(20000).flatten().numpy()
    pairs = np.bincount(x[:-1] * n + x[1:], minlength=n * n)
    assert chi2(pairs) < chi2_bound(n * n - 1)


@pytest.mark.parametrize(
    "n,B,replace",
    [(100, 1, False), (100, 7, False), (30, 20, False), (30, 30, False), (30, 12, True)],
)
def test_stream_does_not_depend_on_how_it_is_consumed(n, B, replace):
    whole = MiniBatches(n, B, seed=6, replace=replace).take(307)
    s = MiniBatches(n, B, seed=6, replace=replace)
    chunked = torch.cat([s.take(7), s.take(300)])
    assert torch.equal(whole, chunked)
    s = MiniBatches(n, B, seed=6, replace=replace)
    ones = torch.cat([s.take(1) for _ in range(307)])
    assert torch.equal(whole, ones)
    s = MiniBatches(n, B, seed=6, replace=replace)
    ragged = torch.cat([s.take(k) for k in (0, 256, 1, 50)])
    assert torch.equal(whole, ragged)


def _redraw_reference(n, B, seed, blocks):
    """The redraw procedure of MiniBatches' docstring in plain torch ops (torch.sort):
    the stream the results so far were computed with."""
    g = torch.Generator().manual_seed(seed)
    out_blocks = []
    for _ in range(blocks):
        out = torch.randint(n, (256, B), generator=g)
        while True:
            out, _ = out.sort(dim=1)
            repeat = torch.zeros_like(out, dtype=torch.bool)
            repeat[:, 1:] = out[:, 1:] == out[:, :-1]
            if not repeat.any():
                break
            out[repeat] = torch.randint(n, (int(repeat.sum()),), generator=g)
        out_blocks.append(out)
    return torch.cat(out_blocks)


@pytest.mark.parametrize("n, B", [(65536, 256), (4096, 64), (100, 10), (40, 6)])
def test_distinct_batches_are_the_torch_sort_stream(n, B):
    assert B * B <= n  # the redraw regime, not the permutation one
    got = MiniBatches(n, B, seed=7).take(600)
    torch.testing.assert_close(got, _redraw_reference(n, B, 7, 3)[:600], rtol=0, atol=0)


def test_same_seed_same_stream_other_seed_other_stream():
    a = MiniBatches(1000, 16, seed=10).take(50)
    b = MiniBatches(1000, 16, seed=10).take(50)
    c = MiniBatches(1000, 16, seed=11).take(50)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_put_back_leaves_the_stream_unchanged():
    # run_grid's compiled path draws ahead and returns the batches it did not use.
    whole = MiniBatches(1000, 3, seed=4).take(700)
    s = MiniBatches(1000, 3, seed=4)
    first = s.take(400)  # crosses a block of draws
    s.put_back(first[250:])
    s.put_back(first[250:250])  # an empty tail is a no-op
    assert torch.equal(torch.cat([first[:250], s.take(450)]), whole)


def test_stream_is_independent_of_global_torch_rng():
    torch.manual_seed(0)
    a = MiniBatches(100, 5, seed=12).take(20)
    torch.manual_seed(1)
    torch.rand(1000)
    b = MiniBatches(100, 5, seed=12).take(20)
    assert torch.equal(a, b)


def test_invalid_batch_sizes_are_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        MiniBatches(10, 0, seed=0)
    with pytest.raises(ValueError, match="exceeds"):
        MiniBatches(10, 11, seed=0)
