"""The input pipeline: tokenize, pad, and cut a step's views into forwards.

A step stacks its rows' views (unsup: ``[x; x]``; sup: ``[x; x+; x-]``), sorts them by
length and cuts them into *pieces* run as separate forwards: length groups cut where
they pad least, or GradCache chunks of a fixed size. ``Batch.restore`` puts the rows
back in view order, so the loss sees the same batch either way. See chapter 6.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

Features = dict[str, list[list[int]]]


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> Features:
    """Unpadded token ids (and masks) of ``texts``, truncated at ``max_length``."""
    features = tokenizer(texts, truncation=True, max_length=max_length)
    names = ("input_ids", "attention_mask", "token_type_ids")
    return {k: features[k] for k in names if k in features}


def pad(features: Features, rows: Sequence[int], pad_id: int) -> dict[str, Tensor]:
    """Right-pad ``rows`` of unpadded ``features`` to their own longest: ``(b, T)``.

    Example:
        >>> pad({"input_ids": [[5, 6, 7], [8]]}, [1, 0], pad_id=0)["input_ids"]
        tensor([[8, 0, 0],
                [5, 6, 7]])
    """
    width = max(len(features["input_ids"][i]) for i in rows)
    batch = {}
    for key, lists in features.items():
        fill = pad_id if key == "input_ids" else 0
        padded = [list(lists[i]) + [fill] * (width - len(lists[i])) for i in rows]
        batch[key] = torch.tensor(padded, dtype=torch.long)  # (b, T), one copy
    return batch


def length_split(lengths: list[int], groups: int) -> list[int]:
    """Sizes of at most ``groups`` consecutive groups of the ascending ``lengths``
    that pad the fewest positions (``sum(size * longest)``), by dynamic programming.

    Cuts only fall where the length changes: cutting inside a run of equal lengths
    never pads less.

    Example:
        >>> length_split([3, 3, 3, 3, 3, 3, 9, 9], 2)
        [6, 2]
        >>> length_split([5, 5, 5], 4)  # one group: nothing to gain
        [3]
    """
    cuts = [0] + [i for i in range(1, len(lengths)) if lengths[i] != lengths[i - 1]]
    cuts.append(len(lengths))
    # best[b]: (padded positions, group sizes) covering lengths[: cuts[b]]
    best: list[tuple[float, list[int]]] = [(0, [])] + [(math.inf, [])] * (len(cuts) - 1)
    answer: tuple[float, list[int]] = (math.inf, [])
    for _ in range(groups):  # one more group per round
        best = [(math.inf, [])] + [
            min(
                (
                    best[a][0] + (cuts[b] - cuts[a]) * lengths[cuts[b] - 1],
                    best[a][1] + [cuts[b] - cuts[a]],
                )
                for a in range(b)
            )
            for b in range(1, len(cuts))
        ]
        answer = min(answer, best[-1], key=lambda x: x[0])  # ties: fewer groups
    return answer[1]


@dataclass
class Batch:
    """One training step's inputs on this process."""

    pieces: list[dict[str, Tensor]]  # the forwards to run, (n_i, T_i) tensors each
    restore: Tensor | None  # (views * b,): cat(outputs)[restore] is in view order
    views: int  # forwards per row: 2 unsup ([x; x]; 1 with a fixed mask), 2-3 sup

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device`` (page-locked copies that overlap compute on CUDA)."""
        pin = device.type == "cuda"

        def move(t: Tensor) -> Tensor:
            return (t.pin_memory() if pin else t).to(device, non_blocking=True)

        pieces = [{k: move(v) for k, v in p.items()} for p in self.pieces]
        restore = None if self.restore is None else move(self.restore)
        return Batch(pieces, restore, self.views)


def make_batch(
    tokenizer: Any,
    rows: Sequence[tuple[str, ...]],
    max_length: int,
    groups: int = 1,
    chunk: int | None = None,
    twice: bool = True,
) -> Batch:
    """Tokenize the views of ``rows`` and cut them into pieces (CPU tensors).

    ``rows``: ``(sentence,)`` (unsup: taken twice, or once if not ``twice``, the
    fixed-mask control) or ``(sent0, sent1[, hard_neg])`` (sup). ``groups``: at most
    this many length-sorted pieces; ``chunk``: GradCache pieces of ``chunk`` rows'
    views each (overrides ``groups``).

    Example:
        >>> from minicse.encoder import tiny_encoder
        >>> tok = tiny_encoder().tokenizer
        >>> batch = make_batch(tok, [("a cat",), ("a dog runs",)], max_length=32)
        >>> batch.views, batch.pieces[0]["input_ids"].shape
        (2, torch.Size([4, 5]))
    """
    columns = [list(column) for column in zip(*rows, strict=True)]
    texts = [text for column in columns for text in column]  # view order
    features, views = tokenize(tokenizer, texts, max_length), len(columns)
    if views == 1 and twice:  # unsup: tokenized once, each sentence taken twice
        features, views = {k: v + v for k, v in features.items()}, 2  # [x; x]
    pad_id = tokenizer.pad_token_id or 0
    lengths = [len(ids) for ids in features["input_ids"]]
    if chunk is None and groups == 1:
        return Batch([pad(features, range(len(lengths)), pad_id)], None, views)
    order = sorted(range(len(lengths)), key=lengths.__getitem__)  # stable, ascending
    if chunk is not None:
        step = chunk * views
        sizes = [min(step, len(order) - s) for s in range(0, len(order), step)]
    else:
        sizes = length_split([lengths[i] for i in order], groups)
    bounds = itertools.pairwise([0, *itertools.accumulate(sizes)])
    pieces = [pad(features, order[a:b], pad_id) for a, b in bounds]
    restore = torch.argsort(torch.tensor(order))  # sorted position of each row
    return Batch(pieces, restore, views)


def look_up_words(encoder: Any, pieces: list[dict[str, Tensor]]) -> list[dict]:
    """The pieces with ``inputs_embeds`` from one lookup of all their ``input_ids``:
    the backward then builds the dense ``(vocab, E)`` word-embedding gradient once
    per step, not once per piece."""
    ids = [piece["input_ids"] for piece in pieces]  # (n_i, T_i) each
    flat = torch.cat([i.reshape(-1) for i in ids])  # (sum n_i T_i,)
    words = encoder.model.get_input_embeddings()(flat).split([i.numel() for i in ids])
    out = []
    for piece, i, vectors in zip(pieces, ids, words, strict=True):
        rest = {k: v for k, v in piece.items() if k != "input_ids"}
        rest["inputs_embeds"] = vectors.view(*i.shape, -1)  # (n_i, T_i, E)
        out.append(rest)
    return out
