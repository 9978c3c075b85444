"""STS evaluation: rank correlation between cosine similarity and gold scores.

``evaluate_sts`` uses SentEval's "all" setting, as the SimCSE paper does: one
Spearman over every pair of a task, not a mean over its subsets. See chapters 1, 8.

References: Conneau & Kiela, 2018, arXiv:1803.05449 (SentEval); Gao et al.,
2021, arXiv:2104.08821, Appendix B ("all").
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
    """``x`` and ``y`` as finite 1-D arrays of one length, at least 2."""
    x, y = _as_vector(x, "x"), _as_vector(y, "y")
    check_same_length(x, y, "x", "y")
    if len(x) < 2:
        raise ValueError(f"a correlation needs at least 2 values, got {len(x)}")
    return x, y


def pearson(x: Any, y: Any) -> float:
    """Pearson's linear correlation of two equal-length sequences.

        r = sum(dx * dy) / sqrt(sum(dx ** 2) * sum(dy ** 2)),  dx = x - mean(x)

    Args:
        x: ``(n,)`` numbers (list, NumPy array or tensor), ``n >= 2``.
        y: ``(n,)`` numbers.

    Returns:
        ``r`` in [-1, 1]; a constant input raises ``ValueError``.

    Reference: Pearson, 1895, Proc. R. Soc. Lond. 58, 240-242. See chapter 1.

    Example:
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


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation: Pearson's ``r`` of the ranks of ``x`` and ``y``.

    Tied values share the mean of the ranks they span (as ``scipy.stats.spearmanr``).

    Args:
        x: ``(n,)`` numbers (list, NumPy array or tensor), ``n >= 2``.
        y: ``(n,)`` numbers.

    Returns:
        ``rho`` in [-1, 1]; a constant input raises ``ValueError``.

    Reference: Spearman, 1904, Am. J. Psychol. 15(1), 72-101. See chapter 1.

    Example:
        >>> spearman([1, 2, 3, 4], [1, 8, 27, 64])   # monotonic, not linear
        1.0
    """
    ranks = []
    for values in _check_pair(x, y):
        _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
        last = np.cumsum(counts)  # the 1-based rank of each group's last member
        ranks.append((last - (counts - 1) / 2)[group])  # the group's mean rank
    return pearson(*ranks)


def _check_encoder(encoder: Any) -> None:
    """Raise ``TypeError`` unless ``encoder`` has ``encode`` (and is not a name)."""
    if isinstance(encoder, (str, bytes, os.PathLike)):
        name = os.fsdecode(encoder)
        raise TypeError(
            "encoder must be a SentenceEncoder (or any object with encode(texts, "
            f"batch_size) -> (n, d) tensor), got the {type(encoder).__name__} "
            f"{name!r}; build one first: SentenceEncoder.from_pretrained({name!r})"
        )
    if not callable(getattr(encoder, "encode", None)):
        raise TypeError(
            "encoder must have an encode(texts, batch_size) method returning an "
            f"(n, d) tensor, e.g. a SentenceEncoder; got {type(encoder).__name__}"
        )


def _spearman_by_set(encoder: Any, pair_sets: dict, batch_size: int) -> dict:
    """{key: Spearman x 100 of ``cos(s1_i, s2_i)`` vs ``scores_i``} per pair set.

    ``pair_sets`` maps keys to ``(s1, s2, scores)``; every distinct sentence of
    all the sets is encoded once, in one call (STS files repeat many sentences).
    """
    sets = pair_sets.values()
    unique = list(dict.fromkeys(s for s1, s2, _ in sets for s in (*s1, *s2)))
    embeddings = torch.as_tensor(encoder.encode(unique, batch_size=batch_size))
    check_embeddings(embeddings, "encoder.encode(...) output")
    if len(embeddings) != len(unique):
        raise ValueError(
            f"encoder.encode returned {len(embeddings)} rows for {len(unique)} texts"
        )
    unit = F.normalize(embeddings.detach().cpu().double(), dim=-1)  # (u, d)
    row = {s: i for i, s in enumerate(unique)}
    result = {}
    for key, (s1, s2, scores) in pair_sets.items():
        a, b = unit[[row[s] for s in s1]], unit[[row[s] for s in s2]]  # (n, d)
        result[key] = 100.0 * spearman((a * b).sum(dim=-1).numpy(), scores)
    return result


def score_sts_pairs(
    encoder: Any,
    sentences1: Sequence[str],
    sentences2: Sequence[str],
    scores: Sequence[float],
    batch_size: int = 64,
) -> float:
    """Spearman x 100 between each pair's cosine similarity and its gold score.

        result = 100 * spearman([cos(f(a_i), f(b_i)) for i], scores)

    Args:
        encoder: any object with ``encode(texts, batch_size) -> (n, d)`` tensor.
        sentences1: ``(n,)`` first sentences.
        sentences2: ``(n,)`` second sentences.
        scores: ``(n,)`` gold scores (any scale: only ranks count).
        batch_size: sentences per forward pass; each distinct sentence is encoded once.

    Returns:
        The Spearman correlation x 100, in [-100, 100].

    Reference: Reimers et al., 2016, COLING (Spearman for STS). See chapter 1.

    Example:
        >>> import types  # toy: an encoder counting a, b, c
        >>> toy = types.SimpleNamespace(encode=lambda texts, batch_size: torch.tensor(
        ...     [[t.count(c) for c in "abc"] for t in texts], dtype=torch.float))
        >>> score_sts_pairs(toy, ["aab", "abc", "aaa"], ["aa", "cc", "ab"], [5, 1, 4])
        100.0
    """
    _check_encoder(encoder)
    sentences1 = check_texts(sentences1, "sentences1")
    sentences2 = check_texts(sentences2, "sentences2")
    check_same_length(sentences1, sentences2, "sentences1", "sentences2")
    scores = _as_vector(scores, "scores")
    check_same_length(sentences1, scores, "sentences1", "scores")
    check_positive(batch_size, "batch_size")
    pairs = (sentences1, sentences2, scores)
    return _spearman_by_set(encoder, {"pairs": pairs}, batch_size)["pairs"]


def evaluate_sts(
    encoder: Any,
    tasks: Sequence[str] | str = STS_TASKS,
    split: str = "test",
    text: str = "raw",
    batch_size: int = 64,
    max_rows: int | None = None,
    path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Spearman x 100 on each STS task (SentEval "all") and their average.

    Args:
        encoder: any object with ``encode(texts, batch_size) -> (n, d)`` tensor.
        tasks: names from ``STS_TASKS`` (or one name).
        split: ``"test"``; ``"dev"`` / ``"train"`` exist for ``"stsb"`` only.
        text: ``"raw"`` or ``"senteval"`` (the paper's); see ``load_sts``.
        batch_size: sentences per forward pass (all tasks' sentences in one pass).
        max_rows: the first ``max_rows`` pairs of each task (None: all, as papers).
        path: a data folder (default: ``$MINICSE_DATA``, then the hub).

    Returns:
        ``spearman`` and ``n_pairs`` by task, and their mean and sum as ``"avg"``.

    Reference: Gao et al., 2021, arXiv:2104.08821, Table 5. See chapter 8.

    Example:
        >>> import pathlib, tempfile, types  # toy: an encoder counting a, b, c
        >>> toy = types.SimpleNamespace(encode=lambda texts, batch_size: torch.tensor(
        ...     [[t.count(c) for c in "abc"] for t in texts], dtype=torch.float))
        >>> tsv = pathlib.Path(tempfile.mkdtemp()) / "stsb.tsv"
        >>> _ = tsv.write_text("sentence1\\tsentence2\\tscore\\naab\\taa\\t5\\n"
        ...                    "abc\\tcc\\t1\\naaa\\tab\\t4\\n")
        >>> evaluate_sts(toy, "stsb", path=tsv).to_dict("index")["avg"]
        {'spearman': 100.0, 'n_pairs': 3}
    """
    _check_encoder(encoder)  # before any data is loaded
    check_positive(batch_size, "batch_size")
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct names from {STS_TASKS}, got {tasks}")
    frames = {t: load_sts(t, split, text, path=path, max_rows=max_rows) for t in tasks}
    pairs = {t: (f.sentence1, f.sentence2, f.score) for t, f in frames.items()}
    rho = _spearman_by_set(encoder, pairs, batch_size)
    rows = {t: (rho[t], len(f)) for t, f in frames.items()}
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=["spearman", "n_pairs"]
    )
    table.loc["avg"] = [table["spearman"].mean(), table["n_pairs"].sum()]
    table.index.name = "task"
    return table.astype({"n_pairs": int})
