"""Alignment and uniformity of an embedding space (Wang & Isola, 2020).

Both L2-normalise their inputs first; lower is better for both. See chapter 9.
Reference: Wang & Isola, 2020, arXiv:2005.10242.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .utils import check_embeddings, check_number


def alignment(x: Tensor, y: Tensor, alpha: float = 2) -> Tensor:
    """Mean distance between positive pairs on the unit sphere. See chapter 9.

        align = (1 / N) * sum_i || u_i - v_i ||_2 ^ alpha,  u = x / ||x||, v = y / ||y||

    ``x`` and ``y`` are ``(N, dim)``, row ``i`` of each forming a positive pair;
    the paper and SimCSE use ``alpha = 2``. A differentiable scalar in
    ``[0, 2 ** alpha]``. Reference: arXiv:2005.10242, sec. 4 (``L_align``).

    Example:
        >>> alignment(torch.eye(2), torch.eye(2).flip(0))  # orthogonal: |d|^2 = 2
        tensor(2.0000)
    """
    check_embeddings(x=x, y=y)
    check_number(alpha, "alpha", "> 0")
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)  # (N, dim) each
    return (x - y).norm(dim=-1).pow(alpha).mean()


def uniformity(x: Tensor, t: float = 2) -> Tensor:
    """Log mean Gaussian potential over distinct pairs. See chapter 9.

        unif = log( mean_{i < j} exp(-t ||u_i - u_j||_2^2) ),  u_i = x_i / ||x_i||

    ``x`` is ``(N, dim)``, ``N >= 2`` (e.g. all STS-B sentences); the paper and
    SimCSE use ``t = 2``. A differentiable scalar ``<= 0`` (0 when all coincide).
    Reference: arXiv:2005.10242, sec. 4 (``L_uniform``).

    Example:
        >>> uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))  # -t * 2^2
        tensor(-8.)
    """
    check_embeddings(x=x)
    if len(x) < 2:
        raise ValueError(f"x needs at least 2 rows (a pair), got {tuple(x.shape)}")
    check_number(t, "t", "> 0")
    x = F.normalize(x, dim=-1).contiguous()  # (N, dim)
    squared = torch.pdist(x, p=2).pow(2)  # (N (N - 1) / 2,): every pair i < j
    # logsumexp: spread-out sets do not underflow to log 0
    return torch.logsumexp(-t * squared, dim=0) - math.log(len(squared))
