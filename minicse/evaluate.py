"""STS evaluation: rank correlation between cosine similarity and gold scores.

SentEval's "all" setting (the one the SimCSE paper reports for STS12-16) pools
every pair of a task into one Spearman correlation, rather than averaging the
correlations of the task's subsets ("wmean"). ``evaluate_sts`` does "all" on the
full test sets, with no truncation unless ``max_rows`` asks for it.

References:
    Conneau & Kiela, 2018, arXiv:1803.05449 (SentEval).
    Gao, Yao & Chen, 2021, arXiv:2104.08821 (SimCSE, Appendix B on "all").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from .data import STS_TASKS, load_sts
from .utils import (
    check_embeddings,
    check_finite,
    check_positive,
    check_same_length,
    check_texts,
)

__all__ = ["spearman", "pearson", "score_sts_pairs", "evaluate_sts"]


def _as_vector(values: Any, name: str) -> np.ndarray:
    """``values`` (list, array or tensor) as a finite 1-D float64 array."""
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a sequence of numbers: {err}") from err
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    check_finite(array, name)
    return array


def _check_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_vector(x, "x"), _as_vector(y, "y")
    check_same_length(x, y, "x", "y")
    if len(x) < 2:
        raise ValueError(f"a correlation needs at least 2 values, got {len(x)}")
    return x, y


def pearson(x: Any, y: Any) -> float:
    """Pearson's linear correlation coefficient of two equal-length sequences.

        r = sum(dx * dy) / sqrt(sum(dx ** 2) * sum(dy ** 2)),  dx = x - mean(x)

    Args:
        x: ``(n,)`` numbers (list, NumPy array or tensor), ``n >= 2``.
        y: ``(n,)`` numbers.

    Returns:
        ``r`` in [-1, 1]. A constant input has no correlation: ``ValueError``.

    Reference: Pearson, 1895, Proc. R. Soc. Lond. 58, 240-242.

    Example:
        >>> pearson([1, 2, 3], [2, 4, 6])
        1.0
        >>> pearson([1, 2, 3], [3, 1, 2])
        -0.5
    """
    x, y = _check_pair(x, y)
    dx, dy = x - x.mean(), y - y.mean()
    for name, d in (("x", dx), ("y", dy)):
        if not np.any(d):
            raise ValueError(f"{name} is constant, so its correlation is undefined")
    r = float(np.dot(dx, dy) / np.sqrt(np.dot(dx, dx) * np.dot(dy, dy)))
    return min(1.0, max(-1.0, r))


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks of ``a``; tied values share the mean of their ranks."""
    order = np.argsort(a, kind="stable")
    ordered = a[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]  # (n,)
    group = np.cumsum(starts_group) - 1  # group id of each sorted value
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], len(a)]  # exclusive
    mean_rank = (starts + ends + 1) / 2  # mean of the 1-based ranks starts+1..ends
    ranks = np.empty(len(a))
    ranks[order] = mean_rank[group]
    return ranks


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation: Pearson's ``r`` of the ranks of ``x`` and ``y``.

    Tied values get the average of the ranks they span (as in
    ``scipy.stats.spearmanr``), so the result is exact with ties too.

    Args:
        x: ``(n,)`` numbers (list, NumPy array or tensor), ``n >= 2``.
        y: ``(n,)`` numbers.

    Returns:
        ``rho`` in [-1, 1]; 1 when ``y`` ranks the items exactly as ``x``
        does. A constant input has no ranking: ``ValueError``.

    Reference: Spearman, 1904, Am. J. Psychol. 15(1), 72-101.

    Example:
        >>> spearman([1, 2, 3, 4], [1, 8, 27, 64])   # monotonic, not linear
        1.0
        >>> spearman([1, 2, 2, 3], [1, 3, 2, 4])     # the tie gets rank 2.5
        0.9486832980505138
    """
    x, y = _check_pair(x, y)
    return pearson(_average_ranks(x), _average_ranks(y))


def _check_encoder(encoder: Any) -> None:
    """Raise ``TypeError`` unless ``encoder`` is an encoder (not a str, bytes, path)."""
    if isinstance(encoder, (str, bytes, os.PathLike)):
        name = os.fsdecode(encoder)
        raise TypeError(
            "encoder must be a SentenceEncoder (or any object with "
            "encode(texts, batch_size) -> (n, d) tensor), got the "
            f"{type(encoder).__name__} {name!r}; to evaluate a model by name or "
            f"folder, build one first: SentenceEncoder.from_pretrained({name!r})"
        )
    if not callable(getattr(encoder, "encode", None)):
        raise TypeError(
            "encoder must have an encode(texts, batch_size) method returning an "
            f"(n, d) tensor, e.g. a SentenceEncoder; got {type(encoder).__name__}"
        )


def _embed_unique(encoder: Any, sentences: list[str], batch_size: int):
    """Encode each distinct sentence once: ({sentence: row}, ``(u, d)`` unit rows)."""
    check_positive(batch_size, "batch_size")
    unique = list(dict.fromkeys(sentences))
    embeddings = torch.as_tensor(encoder.encode(unique, batch_size=batch_size))
    check_embeddings(embeddings, "encoder.encode(...) output")
    if len(embeddings) != len(unique):
        raise ValueError(
            f"encoder.encode returned {len(embeddings)} rows for {len(unique)} texts"
        )
    unit = F.normalize(embeddings.detach().cpu().double(), dim=-1)
    return {s: i for i, s in enumerate(unique)}, unit


def _cosine_spearman(index, unit: Tensor, sentences1, sentences2, scores) -> float:
    """Spearman x 100 of ``cos(s1_i, s2_i)`` against ``scores_i`` over all pairs."""
    rows1 = torch.tensor([index[s] for s in sentences1])
    rows2 = torch.tensor([index[s] for s in sentences2])
    cosine = (unit[rows1] * unit[rows2]).sum(dim=-1)  # (n,)
    return 100.0 * spearman(cosine.numpy(), scores)


def score_sts_pairs(
    encoder: Any,
    sentences1: Sequence[str],
    sentences2: Sequence[str],
    scores: Sequence[float],
    batch_size: int = 64,
) -> float:
    """Spearman x 100 between the cosine similarity of each pair and its gold score.

        result = 100 * spearman([cos(f(a_i), f(b_i)) for i], scores)

    Each distinct sentence is encoded once (STS files repeat many sentences).

    Args:
        encoder: anything with ``encode(texts, batch_size) -> (n, d)`` tensor,
            e.g. a ``SentenceEncoder`` (not a model name: build one with
            ``SentenceEncoder.from_pretrained(name)``).
        sentences1: ``(n,)`` first sentences.
        sentences2: ``(n,)`` second sentences.
        scores: ``(n,)`` gold similarity scores (any scale: only ranks count).
        batch_size: sentences per forward pass.

    Returns:
        The Spearman correlation x 100, in [-100, 100].

    Reference: Reimers et al., 2016, COLING (Spearman, not Pearson, for STS).

    Example:
        >>> class Letters:  # a toy encoder: counts of the letters a, b, c
        ...     def encode(self, texts, batch_size=64):
        ...         return torch.tensor([[t.count(c) for c in "abc"] for t in texts],
        ...                             dtype=torch.float)
        >>> score_sts_pairs(Letters(), ["aab", "abc", "aaa"], ["aa", "cc", "ab"],
        ...                 [5.0, 1.0, 4.0])
        100.0
    """
    _check_encoder(encoder)
    sentences1 = check_texts(sentences1, "sentences1")
    sentences2 = check_texts(sentences2, "sentences2")
    check_same_length(sentences1, sentences2, "sentences1", "sentences2")
    scores = _as_vector(scores, "scores")
    check_same_length(sentences1, scores, "sentences1", "scores")
    index, unit = _embed_unique(encoder, sentences1 + sentences2, batch_size)
    return _cosine_spearman(index, unit, sentences1, sentences2, scores)


def evaluate_sts(
    encoder: Any,
    tasks: Sequence[str] | str = STS_TASKS,
    split: str = "test",
    text: str = "raw",
    batch_size: int = 64,
    max_rows: int | None = None,
    path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Spearman x 100 on each STS task and their average (SentEval "all").

    For each task, one correlation over all its pairs (not a mean over its
    subsets). All tasks' distinct sentences are gathered first and encoded in
    one pass, so a sentence shared by several tasks is encoded once.

    Args:
        encoder: anything with ``encode(texts, batch_size) -> (n, d)`` tensor,
            e.g. a ``SentenceEncoder`` (not a model name). Checked first,
            before any data is loaded.
        tasks: names from ``STS_TASKS`` (or one name).
        split: ``"test"``; ``"dev"`` / ``"train"`` exist for ``"stsb"`` only.
        text: ``"raw"`` or ``"senteval"`` (SentEval's tokenized text, as
            in the SimCSE paper; without local data, from SimCSE's
            ``senteval.tar``). See ``load_sts``.
        batch_size: sentences per forward pass.
        max_rows: use only the first ``max_rows`` pairs of each task
            (None: all, the default and the only way to compare with papers).
        path: a data folder (default: ``$MINICSE_DATA``, then the hub).

    Returns:
        A DataFrame indexed by task plus ``"avg"`` (mean of the task scores,
        ``n_pairs`` summed), with columns ``spearman`` and ``n_pairs``.

    Reference: Gao, Yao & Chen, 2021, arXiv:2104.08821, Table 5 and Appendix B.

    Example:
        >>> class Letters:  # a toy encoder: counts of the letters a, b, c
        ...     def encode(self, texts, batch_size=64):
        ...         return torch.tensor([[t.count(c) for c in "abc"] for t in texts],
        ...                             dtype=torch.float)
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())  # a data folder: sts/*.tsv
        >>> (folder / "sts").mkdir()
        >>> rows = ["sentence1\\tsentence2\\tscore", "aab\\taa\\t5", "abc\\tcc\\t1",
        ...         "aaa\\tab\\t4"]
        >>> _ = (folder / "sts" / "stsb.test.tsv").write_text("\\n".join(rows))
        >>> table = evaluate_sts(Letters(), "stsb", path=folder)
        >>> table  # doctest: +NORMALIZE_WHITESPACE
              spearman  n_pairs
        task
        stsb     100.0        3
        avg      100.0        3
    """
    _check_encoder(encoder)  # before any data is loaded
    check_positive(batch_size, "batch_size")
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct names from {STS_TASKS}, got {tasks}")
    frames = {t: load_sts(t, split, text, path=path, max_rows=max_rows) for t in tasks}
    sentences = []  # every task's sentences, so each distinct one is encoded once
    for frame in frames.values():
        sentences += [*frame["sentence1"], *frame["sentence2"]]
    index, unit = _embed_unique(encoder, sentences, batch_size)
    rows = {}
    for task, frame in frames.items():
        pairs = frame["sentence1"], frame["sentence2"], frame["score"]
        rows[task] = (_cosine_spearman(index, unit, *pairs), len(frame))
    columns = ["spearman", "n_pairs"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.loc["avg"] = [table["spearman"].mean(), table["n_pairs"].sum()]
    table["n_pairs"] = table["n_pairs"].astype(int)
    table.index.name = "task"
    return table
