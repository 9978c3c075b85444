"""STS evaluation: rank correlation between cosine similarity and gold scores.

``evaluate_sts`` takes one Spearman over all pairs of a task (SentEval's "all"), as
SimCSE does (arXiv:2104.08821, Appendix B). See chapters 1 and 8.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor

from .data import STS_TASKS, load_sts
from .metrics import alignment, uniformity
from .utils import (
    check_array,
    check_choice,
    check_embeddings,
    check_int,
    check_number,
    check_texts,
)


def _check_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as finite, non-constant 1-D arrays of one length >= 2."""
    x, y = check_array(x, "x", 1), check_array(y, "y", 1)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length: {len(x)} != {len(y)}")
    if len(x) < 2:
        raise ValueError(f"a correlation needs at least 2 values, got {len(x)}")
    for name, values in (("x", x), ("y", y)):
        if np.all(values == values[0]):
            raise ValueError(f"{name} is constant, so its correlation is undefined")
    return x, y


def pearson(x: Any, y: Any) -> float:
    """Pearson's linear correlation of two ``(n,)`` sequences. See chapter 1.

        r = sum(dx * dy) / sqrt(sum(dx ** 2) * sum(dy ** 2)),  dx = x - mean(x)

    Lists, arrays or tensors, ``n >= 2``, not constant; by ``scipy.stats.pearsonr``.
    Reference: Pearson, 1895, Proc. R. Soc. Lond. 58, 240-242.
    """
    return float(stats.pearsonr(*_check_pair(x, y)).statistic)


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation: Pearson's ``r`` of the ranks. See chapter 1.

    Ties share the mean of their ranks; inputs as :func:`pearson`; computed by
    ``scipy.stats.spearmanr``. Reference: Spearman, 1904, Am. J. Psychol. 15(1).

    Example:
        >>> spearman([1, 2, 3, 4], [1, 8, 27, 64])   # monotonic, not linear
        1.0
    """
    return float(stats.spearmanr(*_check_pair(x, y)).statistic)


def sts_positive_pairs(df: pd.DataFrame, threshold: float = 4.0) -> tuple[list, list]:
    """Two row-aligned sentence lists: the pairs of ``df`` with ``score > threshold``.

    ``df`` is an STS table as ``load_sts`` gives; NaN scores are dropped. SimCSE's
    Figure 2 (arXiv:2104.08821) takes the STS-B pairs above 4 as the positive pairs
    of ``alignment``. See chapter 9.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in ("sentence1", "sentence2", "score") if c not in df.columns]
    if missing:
        raise ValueError(f"df is missing column(s) {missing}; has {list(df.columns)}")
    check_number(threshold, "threshold")
    try:
        scores = pd.to_numeric(df["score"]).to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"df['score'] must be numeric: {err}") from err
    keep = scores > threshold  # NaN scores compare False and are dropped
    if not keep.any():
        top = f"max score {scores.max() if len(scores) else 'n/a'}"
        raise ValueError(f"no pair has score > threshold={threshold} ({top}); lower it")
    return df["sentence1"][keep].tolist(), df["sentence2"][keep].tolist()


def _check_encoder(encoder: Any) -> None:
    """Raise ``TypeError`` unless ``encoder`` has ``encode`` (and is not a name)."""
    want = "a SentenceEncoder: it must have an encode(texts, batch_size) method"
    if isinstance(encoder, (str, bytes, os.PathLike)):
        name = os.fsdecode(encoder)
        fix = f"build one first: SentenceEncoder.from_pretrained({name!r})"
        raise TypeError(f"encoder must be {want}, got the name {name!r}; {fix}")
    if not callable(getattr(encoder, "encode", None)):
        raise TypeError(f"encoder must be {want}, got {type(encoder).__name__}")


def _unit_pairs(encoder: Any, pair_sets: list, batch_size: int, **options) -> tuple:
    """Unit float64 ``(n, d)`` pairs per ``(s1, s2)`` set, and all distinct ones."""
    unique = list(dict.fromkeys(s for s1, s2 in pair_sets for s in (*s1, *s2)))
    out = torch.as_tensor(encoder.encode(unique, batch_size=batch_size, **options))
    check_embeddings(**{"encoder.encode(...) output": out})
    if len(out) != len(unique):
        raise ValueError(f"encode() returned {len(out)} rows for {len(unique)} texts")
    unit = F.normalize(out.detach().cpu().double(), dim=-1)  # (u, d)
    row = {s: i for i, s in enumerate(unique)}
    pairs = [
        (unit[[row[s] for s in s1]], unit[[row[s] for s in s2]])  # (n, d) each
        for s1, s2 in pair_sets
    ]
    return pairs, unit


def sts_dev_metrics(
    encoder: Any,
    sentences1: Sequence[str],
    sentences2: Sequence[str],
    scores: Sequence[float],
    batch_size: int = 128,
    **options: Any,
) -> dict[str, float]:
    """``{"dev", "alignment", "uniformity"}`` of STS pairs, from one encoding.

    ``dev`` is Spearman x 100; alignment is over the pairs scored above 4 (NaN if
    none), uniformity over all distinct sentences (``alpha = t = 2``), as SimCSE's
    Figure 2 (arXiv:2104.08821, section 5; arXiv:2005.10242). See chapter 9.
    """
    texts = (sentences1, sentences2)
    [(a, b)], unit = _unit_pairs(encoder, [texts], batch_size, **options)
    gold = np.asarray(scores, dtype=float)
    positive = torch.from_numpy(gold > 4)
    aligned = alignment(a[positive], b[positive]) if positive.any() else math.nan
    uniform = uniformity(unit) if len(unit) > 1 else math.nan
    dev = 100.0 * spearman((a * b).sum(-1), gold)  # (n,) cosines of unit vectors
    return {"dev": dev, "alignment": float(aligned), "uniformity": float(uniform)}


def score_sts_pairs(
    encoder: Any,
    sentences1: Sequence[str],
    sentences2: Sequence[str],
    scores: Sequence[float],
    batch_size: int = 64,
) -> float:
    """Spearman x 100 between each pair's cosine similarity and its gold score.

        result = 100 * spearman([cos(f(a_i), f(b_i)) for i], scores)

    ``encoder`` is any object with ``encode(texts, batch_size) -> (n, d)``; each
    distinct sentence is encoded once. Any score scale: only ranks count. See
    chapter 1. Reference: Reimers et al., 2016, COLING (Spearman for STS).
    """
    _check_encoder(encoder)
    sentences1 = check_texts(sentences1, "sentences1")
    sentences2 = check_texts(sentences2, "sentences2")
    scores = check_array(scores, "scores", 1)
    if not len(sentences1) == len(sentences2) == len(scores):
        want = "sentences1, sentences2 and scores must have the same length"
        got = f"{len(sentences1)}, {len(sentences2)} and {len(scores)}"
        raise ValueError(f"{want}, got {got}")
    check_int(batch_size, "batch_size")
    [(a, b)], _ = _unit_pairs(encoder, [(sentences1, sentences2)], batch_size)
    return 100.0 * spearman((a * b).sum(-1), scores)  # (n,) cosines of unit vectors


def evaluate_sts(
    encoder: Any,
    tasks: Sequence[str] | str = STS_TASKS,
    split: str = "test",
    text: str = "raw",
    batch_size: int = 64,
    max_rows: int | None = None,
    path: str | os.PathLike | None = None,
    aggregate: str = "all",
    max_length: int | None = None,
    language: str | None = None,
) -> pd.DataFrame:
    """Spearman x 100 on each STS task and their average, as a table. See chapter 8.

    SentEval's three aggregations of a task with subsets (STS12-16):

        all   = spearman(all pairs of the task)         (SimCSE's Table 5)
        mean  = mean_k spearman(subset k)
        wmean = sum_k n_k spearman(subset k) / sum_k n_k

    ``encoder`` as :func:`score_sts_pairs`; the data arguments as ``load_sts``; no
    truncation unless ``max_length``. Returns ``spearman`` and ``n_pairs`` by task,
    with their mean and sum as ``"avg"``. Reference: arXiv:2104.08821, Table 5.
    """
    _check_encoder(encoder)  # before any data is loaded
    check_int(batch_size, "batch_size")
    check_choice(aggregate, "aggregate", ("all", "mean", "wmean"))
    check_int(max_length, "max_length", optional=True)
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct names from {STS_TASKS}, got {tasks}")
    if language is not None and tasks != ["stsb"]:
        raise ValueError(f"language={language!r} is STS-B's: pass tasks='stsb'")
    load = (split, text, path, max_rows, language, aggregate != "all")
    frames = {t: load_sts(t, *load) for t in tasks}
    texts = [(f.sentence1, f.sentence2) for f in frames.values()]
    options = {} if max_length is None else {"max_length": max_length}
    pairs, _ = _unit_pairs(encoder, texts, batch_size, **options)
    scored = zip(pairs, frames.values(), strict=True)
    rho = [_aggregate(a, b, frame, aggregate) for (a, b), frame in scored]
    n_pairs = [len(f) for f in frames.values()]
    table = pd.DataFrame({"spearman": rho, "n_pairs": n_pairs}, index=list(frames))
    table.loc["avg"] = [table["spearman"].mean(), table["n_pairs"].sum()]
    table.index.name = "task"
    return table.astype({"n_pairs": int})


def _aggregate(a: Tensor, b: Tensor, frame: pd.DataFrame, how: str) -> float:
    """SentEval's "all", "mean" or "wmean" Spearman x 100 of one task's pairs."""
    cosines = (a * b).sum(-1)  # (n,): a and b are unit vectors
    if how == "all":
        return 100.0 * spearman(cosines, frame.score)
    groups = frame.groupby("subset", sort=False).indices.values()  # row positions
    rho = [100.0 * spearman(cosines[i], frame.score.iloc[i]) for i in groups]
    weights = [len(i) for i in groups] if how == "wmean" else None
    return float(np.average(rho, weights=weights))
