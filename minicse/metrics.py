"""Alignment and uniformity of an embedding space (Wang & Isola, 2020).

Both L2-normalise their inputs first; lower is better for both. See chapter 9.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from .utils import check_embeddings, check_positive

__all__ = ["alignment", "uniformity", "sts_positive_pairs"]

STS_COLUMNS = ("sentence1", "sentence2", "score")


def alignment(x: Tensor, y: Tensor, alpha: float = 2) -> Tensor:
    """Mean distance between positive pairs on the unit sphere. See chapter 9.

        align = (1 / N) * sum_i || u_i - v_i ||_2 ^ alpha,  u = x / ||x||, v = y / ||y||

    Args:
        x: ``(N, dim)`` first sentence of each positive pair.
        y: ``(N, dim)`` second sentence, row-aligned with ``x``.
        alpha: the power (> 0); the paper and SimCSE use 2.

    Returns:
        A differentiable scalar tensor in ``[0, 2 ** alpha]``.

    References:
        Wang & Isola, 2020, arXiv:2005.10242, sec. 4 (``L_align``).

    Example:
        >>> alignment(torch.eye(2), torch.eye(2).flip(0))  # orthogonal: |d|^2 = 2
        tensor(2.0000)
    """
    check_embeddings(x, "x")
    check_embeddings(y, "y")
    if x.shape != y.shape:
        raise ValueError(
            f"x {tuple(x.shape)} and y {tuple(y.shape)} must have the same shape "
            "(row i of x and row i of y form a positive pair)"
        )
    check_positive(alpha, "alpha")
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)  # (N, dim) each
    return (x - y).norm(dim=-1).pow(alpha).mean()


def uniformity(x: Tensor, t: float = 2) -> Tensor:
    """Log mean Gaussian potential over distinct pairs. See chapter 9.

        unif = log( mean_{i < j} exp(-t ||u_i - u_j||_2^2) ),  u_i = x_i / ||x_i||

    Args:
        x: ``(N, dim)`` embeddings, ``N >= 2`` (e.g. all STS-B sentences).
        t: the kernel's scale (> 0); the paper and SimCSE use 2.

    Returns:
        A differentiable scalar tensor ``<= 0`` (0 when all rows coincide).

    References:
        Wang & Isola, 2020, arXiv:2005.10242, sec. 4 (``L_uniform``).

    Example:
        >>> uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))  # -t * 2^2
        tensor(-8.)
    """
    check_embeddings(x, "x")
    if len(x) < 2:
        raise ValueError(
            f"x needs at least 2 rows to form a pair, got shape {tuple(x.shape)}"
        )
    check_positive(t, "t")
    x = F.normalize(x, dim=-1).contiguous()  # (N, dim)
    squared = torch.pdist(x, p=2).pow(2)  # (N (N - 1) / 2,): every pair i < j
    # logsumexp: spread-out sets do not underflow to log 0
    return torch.logsumexp(-t * squared, dim=0) - math.log(len(squared))


def sts_positive_pairs(
    df: pd.DataFrame, threshold: float = 4.0
) -> tuple[list[str], list[str]]:
    """The pairs of an STS table with ``score > threshold`` (strict; NaN dropped).

    SimCSE's Figure 2 takes STS-B pairs scored above 4 as the positive pairs of
    :func:`alignment`. See chapter 9.

    Args:
        df: columns ``sentence1``, ``sentence2``, numeric ``score`` (``load_sts``).
        threshold: keep pairs with ``score > threshold``.

    Returns:
        ``(sentences1, sentences2)``: two row-aligned lists of strings.

    References:
        Gao, Yao & Chen, 2021, arXiv:2104.08821 (SimCSE), Figure 2.

    Example:
        >>> df = pd.DataFrame({"sentence1": ["a cat", "a dog"],
        ...                    "sentence2": ["the cat", "a car"], "score": [4.6, 1.0]})
        >>> sts_positive_pairs(df)
        (['a cat'], ['the cat'])
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in STS_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"df is missing column(s) {missing}; expected {list(STS_COLUMNS)}, "
            f"got {list(df.columns)}"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number, got {threshold!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    try:
        scores = pd.to_numeric(df["score"]).to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"df['score'] must be numeric: {err}") from err
    keep = scores > threshold  # NaN scores compare False and are dropped
    if not keep.any():
        raise ValueError(
            f"no pair in df has score > threshold={threshold} "
            f"(max score {scores.max() if len(scores) else 'n/a'}); lower threshold"
        )
    return df["sentence1"][keep].tolist(), df["sentence2"][keep].tolist()
