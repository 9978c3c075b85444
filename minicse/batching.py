"""The input pipeline, in one place: tokenize, pad, sort by length, group.

Training and inference share it. ``encode`` sorts sentences by token count so each
batch is padded only to its own longest sentence. A training step takes its rows
from :func:`batch_indices` (a pure function of the seed and the step), stacks their
views (unsup: ``[x; x]``, the same sentences twice; sup: ``[x; x+; x-]``), sorts
them by length and cuts them into *pieces* that are run as separate forwards:
length groups cut where they pad least, or GradCache chunks of a fixed size.
``Batch.restore`` puts the rows back in view order, so the loss sees the same
batch and the same in-batch negatives either way. See chapter 6.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .distributed import DistInfo

__all__ = [
    "Batch",
    "make_batch",
    "tokenize",
    "pad",
    "length_split",
    "sort_by_length",
    "trim_padding",
    "look_up_words",
    "batch_indices",
    "length_groups",
    "num_workers",
]

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
    never pads less. On random wiki1m batches (``[x; x]``, 128 rows, max 32
    tokens) 4 such groups pad 8.2 % of positions, 4 equal-sized groups 12.5 %.

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
    """One training step's inputs on this process.

    Attributes:
        pieces: the forwards to run, each a dict of ``(n_i, T_i)`` tensors.
        restore: ``(views * b,)`` index that puts ``cat(piece outputs)`` back in
            view order ``[view 0 rows; view 1 rows; ...]``; ``None`` if it is.
        views: embeddings per row: 2 for unsup (``[x; x]``), 2 or 3 for sup.
    """

    pieces: list[dict[str, Tensor]]
    restore: Tensor | None
    views: int

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

    Args:
        tokenizer: a Hugging Face tokenizer (right padding).
        rows: ``(sentence,)`` rows (unsup: the view is taken twice) or
            ``(sent0, sent1[, hard_neg])`` rows (sup).
        max_length: truncation length (the training length, e.g. 32).
        groups: at most this many length-sorted pieces, cut where they pad least.
        chunk: GradCache: pieces of ``chunk`` rows' views each (overrides groups).
        twice: unsup rows are taken twice (two dropout masks); ``False``: once,
            for the fixed-mask control (both views from one pass).

    Example:
        >>> from minicse.encoder import tiny_encoder
        >>> tok = tiny_encoder().tokenizer
        >>> batch = make_batch(tok, [("a cat",), ("a dog runs",)], max_length=32)
        >>> batch.views, batch.pieces[0]["input_ids"].shape
        (2, torch.Size([4, 5]))
    """
    columns = [list(column) for column in zip(*rows, strict=True)]
    if len(columns) == 1:  # unsup: tokenize once, take each sentence twice
        features = tokenize(tokenizer, columns[0], max_length)
        if twice:
            features = {k: v + v for k, v in features.items()}  # [x; x]
        views = 2 if twice else 1
    else:
        texts = [text for column in columns for text in column]  # view order
        features, views = tokenize(tokenizer, texts, max_length), len(columns)
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
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    pieces = [
        pad(features, order[s : s + n], pad_id)
        for s, n in zip(starts, sizes, strict=True)
    ]
    restore = torch.argsort(torch.tensor(order))  # sorted position of each row
    return Batch(pieces, restore, views)


def _mask(batch: Mapping[str, Tensor]) -> Tensor:
    if not isinstance(batch, Mapping) or "attention_mask" not in batch:
        raise ValueError("batch must be a dict of (B, T) tensors with 'attention_mask'")
    return batch["attention_mask"]


def sort_by_length(batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
    """Rows of a padded batch sorted by token count, and the index that restores
    the input order (``embeddings_sorted[restore]``).

    Example:
        >>> mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
        >>> batch, restore = sort_by_length({"attention_mask": mask})
        >>> batch["attention_mask"].sum(1).tolist(), restore.tolist()
        ([1, 2, 3], [2, 0, 1])
    """
    order = torch.argsort(_mask(batch).sum(1), stable=True)  # (B,) shortest first
    return {k: v[order] for k, v in batch.items()}, torch.argsort(order)


def trim_padding(batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop the padding columns every row has (right padding): ``(b, T) -> (b, t)``.

    Example:
        >>> mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
        >>> trim_padding({"attention_mask": mask})["attention_mask"].shape
        torch.Size([2, 2])
    """
    mask = _mask(batch)
    width = int(mask.sum(1).max())
    if int(mask[:, :width].sum()) != int(mask.sum()):
        raise ValueError("trim_padding needs right padding (real tokens first)")
    return {k: v[:, :width] for k, v in batch.items()}


def look_up_words(encoder: Any, pieces: list[dict[str, Tensor]]) -> list[dict]:
    """The pieces with ``inputs_embeds`` from one lookup of all their ``input_ids``.

    The training step runs several pieces through one model; sharing the lookup
    makes the backward build the dense ``(vocab, E)`` word-embedding gradient once
    per step, not once per piece.
    """
    ids = [piece["input_ids"] for piece in pieces]  # (n_i, T_i) each
    words = encoder.model.get_input_embeddings()(
        torch.cat([i.reshape(-1) for i in ids])
    )  # (sum n_i T_i, E)
    return [
        {
            **{k: v for k, v in piece.items() if k != "input_ids"},
            "inputs_embeds": vectors.view(*i.shape, -1),
        }  # (n_i, T_i, E)
        for piece, i, vectors in zip(
            pieces, ids, words.split([i.numel() for i in ids]), strict=True
        )
    ]


def batch_indices(rows: int, cfg: Any, start: int, total: int) -> Iterator[list[int]]:
    """Row indices of each global batch from step ``start`` on: a pure function of
    ``(seed, epoch)``, so the step number is the whole data position."""
    per_epoch, step = rows // cfg.batch_size, start  # full batches only
    while step < total:
        epoch, first = divmod(step, per_epoch)
        order = torch.randperm(
            rows, generator=torch.Generator().manual_seed(cfg.seed + epoch)
        )
        for i in range(first, min(per_epoch, first + total - step)):
            yield order[i * cfg.batch_size : (i + 1) * cfg.batch_size].tolist()
            step += 1


def length_groups(cfg: Any, info: DistInfo, encoder: Any) -> int:
    """At most how many length-sorted forwards a plain step is split into.

    ``"auto"``: 8 on CPU (padding is pure waste there: ~32 % of a random wiki1m
    batch's positions, ~3 % in 8 groups), 1 on CUDA/mps (one big matmul wins).
    Always 1 with GradCache (its chunks are sorted and padded on their own), under
    DDP (one forward per backward) and for left-padding tokenizers.
    """
    if cfg.grad_cache_chunk or info.distributed:
        return 1
    if getattr(encoder.tokenizer, "padding_side", "right") != "right":
        return 1
    if cfg.length_groups == "auto":
        return 8 if info.device.type == "cpu" else 1
    return cfg.length_groups


def num_workers(cfg: Any, device: torch.device) -> int:
    """Batches tokenized ahead in a thread; ``"auto"``: 0 on CPU, 1 elsewhere.

    On CPU a step takes seconds and tokenizing milliseconds, and the extra thread
    slowed 2-core steps by ~10 %; on a GPU tokenizing is as slow as a step.
    """
    if cfg.num_workers == "auto":
        return 0 if device.type == "cpu" else 1
    return cfg.num_workers
