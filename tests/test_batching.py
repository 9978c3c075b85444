"""Tests for minicse.batching and the shape of the training step (the loop itself is
tested through train_unsup / train_sup in test_train.py)."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from minicse.batching import length_split, pad


def _padded(lengths: list[int], sizes: list[int]) -> int:
    """Positions computed when each group is padded to its own longest row."""
    total, start = 0, 0
    for size in sizes:
        total += size * lengths[start + size - 1]  # ascending: last is longest
        start += size
    return total


def _fewest_padded(lengths: list[int], groups: int) -> int:
    """Try every way of cutting ``lengths`` into 1..groups consecutive groups."""
    n = len(lengths)
    return min(
        _padded(lengths, [b - a for a, b in itertools.pairwise((0, *cuts, n))])
        for g in range(1, groups + 1)
        for cuts in itertools.combinations(range(1, n), g - 1)
    )


@pytest.mark.parametrize("seed", range(40))
def test_length_split_is_optimal_against_every_cut(seed):
    rng = random.Random(seed)
    lengths = sorted(rng.randint(1, 6) for _ in range(rng.randint(1, 10)))
    groups = rng.randint(1, 4)
    sizes = length_split(lengths, groups)
    assert sum(sizes) == len(lengths) and 1 <= len(sizes) <= groups
    assert min(sizes) > 0
    assert _padded(lengths, sizes) == _fewest_padded(lengths, groups)


def test_pad_matches_a_loop_and_pads_each_key_with_its_own_fill():
    rng = random.Random(0)
    ids = [
        [rng.randrange(1, 99) for _ in range(rng.randrange(1, 9))] for _ in range(12)
    ]
    features = {
        "input_ids": ids,
        "attention_mask": [(1,) * len(row) for row in ids],  # any sequence type
    }
    rows = [3, 0, 7, 7, 11]  # a subset, out of order, one row twice
    batch = pad(features, rows, pad_id=5)
    width = max(len(ids[i]) for i in rows)
    for key, fill in (("input_ids", 5), ("attention_mask", 0)):
        assert batch[key].dtype == torch.long and batch[key].shape == (len(rows), width)
        for r, i in enumerate(rows):
            row = list(features[key][i])
            assert batch[key][r].tolist() == row + [fill] * (width - len(row))


def test_length_split_prefers_fewer_groups_on_ties():
    assert length_split([4] * 8, 4) == [8]
    assert length_split([1, 1, 2, 2], 1) == [4]
    assert length_split([1, 1, 2, 2], 3) == [2, 2]


def test_train_step_fits_on_one_screen():
    """Chapter 6 shows train_step verbatim: embed, gather, InfoNCE, backward, step."""
    import inspect

    from minicse import train_step

    source = inspect.getsource(train_step)
    assert len(source.splitlines()) <= 25
    for part in (
        "embed(",
        "gather_with_grad(",
        "info_nce_loss(",
        "backward()",
        "grad_cache(",
        ".step(",
    ):
        assert part in source, part
