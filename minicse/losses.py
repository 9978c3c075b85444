"""Contrastive objectives: plain functions from embeddings to a scalar loss.

Cosine distance is ``1 - cos``, euclidean ``||x - y||_2`` (not squared). See
chapters 2-3."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .utils import check_choice, check_embeddings, check_number

DISTANCES = ("cosine", "euclidean")
MININGS = ("batch_hard", "batch_semi_hard", "all")


def _check_labels(labels: Tensor | Sequence, size: int, binary: bool) -> Tensor:
    """``labels`` as a 1-D tensor of length ``size`` (values 0/1 when ``binary``)."""
    try:
        labels = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError) as err:
        got = repr(labels)[:60]
        raise TypeError(f"labels must be a tensor or list of ints, got {got}") from err
    if labels.dim() != 1 or len(labels) != size:
        raise ValueError(f"labels must have shape ({size},), got {tuple(labels.shape)}")
    if labels.is_floating_point() and not binary:
        raise TypeError(f"labels must hold integer class ids, got dtype {labels.dtype}")
    if binary and not ((labels == 0) | (labels == 1)).all():
        found = sorted(set(labels.tolist()))[:5]
        raise ValueError(f"labels must be 0 (dissimilar) or 1 (similar), got {found}")
    return labels


def _cosines(x: Tensor, y: Tensor) -> Tensor:
    """``(n, d), (m, d) -> (n, m)`` cosine similarities."""
    return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T


def _distances(x: Tensor, y: Tensor, distance: str) -> Tensor:
    """``(n, d), (m, d) -> (n, m)`` distances."""
    if distance == "cosine":
        return 1 - _cosines(x, y)
    # exact (no ||x||^2 + ||y||^2 - 2xy cancellation) and a zero gradient at d = 0
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


def _paired_distances(x: Tensor, y: Tensor, distance: str) -> Tensor:
    """Row-wise ``d(x[i], y[i])``: ``(n, d), (n, d) -> (n,)``."""
    if distance == "cosine":
        return 1 - (F.normalize(x, dim=-1) * F.normalize(y, dim=-1)).sum(-1)
    return (x - y).norm(dim=-1)  # the gradient at x == y is 0, not NaN


def _triplet(a: Tensor, p: Tensor, n: Tensor, margin: float, distance: str) -> Tensor:
    """``mean_i max(0, d(a_i, p_i) - d(a_i, n_i) + margin)``."""
    d_ap = _paired_distances(a, p, distance)  # (B,)
    d_an = _paired_distances(a, n, distance)  # (B,)
    return F.relu(d_ap - d_an + margin).mean()


def cosine_similarity_matrix(x: Tensor, y: Tensor) -> Tensor:
    """All-pairs cosine similarity ``out[i, j] = cos(x[i], y[j])``. See chapter 2.

    ``(n, dim), (m, dim) -> (n, m)`` in ``[-1, 1]`` (0 for an all-zero row).
    Reference: Reimers & Gurevych, 2019, arXiv:1908.10084 (cosine scoring).
    """
    check_embeddings("dim", x=x, y=y)
    return _cosines(x, y)


def pairwise_distance_matrix(x: Tensor, y: Tensor, distance: str = "cosine") -> Tensor:
    """All-pairs ``1 - cos(x[i], y[j])`` or ``||x[i] - y[j]||_2``. See chapter 2.

    ``(n, dim), (m, dim) -> (n, m)``; cosine distances lie in ``[0, 2]``.
    Reference: Hermans, Beyer & Leibe, 2017, arXiv:1703.07737 (unsquared euclidean).
    """
    check_choice(distance, "distance", DISTANCES)
    check_embeddings("dim", x=x, y=y)
    return _distances(x, y, distance)


def contrastive_loss(
    a: Tensor,
    b: Tensor,
    labels: Tensor | Sequence[int],
    margin: float = 0.5,
    distance: str = "cosine",
) -> Tensor:
    """Margin pair loss: pull similar pairs together, push others past ``margin``.

        loss = mean_i [ y_i * d_i^2 + (1 - y_i) * max(0, margin - d_i)^2 ]

    ``a``, ``b`` are ``(B, dim)``, ``d_i = d(a[i], b[i])``, ``labels`` ``(B,)``
    holds 1 (similar) or 0. The paper's ``1/2`` is dropped, and its ``Y = 0``
    means similar. See chapter 2. Reference: Hadsell, Chopra & LeCun, CVPR 2006.

    Example:
        >>> x = torch.eye(2)
        >>> contrastive_loss(x, x, [1, 0], margin=0.5)  # pair 2: d = 0 < margin
        tensor(0.1250)
    """
    check_embeddings(a=a, b=b)
    labels = _check_labels(labels, len(a), binary=True).to(a.device, a.dtype)
    check_number(margin, "margin", ">= 0")
    check_choice(distance, "distance", DISTANCES)
    d = _paired_distances(a, b, distance)  # (B,)
    per_pair = labels * d.pow(2) + (1 - labels) * F.relu(margin - d).pow(2)
    return per_pair.mean()


def triplet_loss(
    anchors: Tensor,
    positives: Tensor,
    negatives: Tensor,
    margin: float = 0.2,
    distance: str = "cosine",
) -> Tensor:
    """Triplet margin loss over ``(B, dim)`` rows; row ``i`` is one triplet.

        loss = mean_i max(0, d(a_i, p_i) - d(a_i, n_i) + margin)

    Distances are plain (as Hermans et al.), not squared (as FaceNet). See chapter 2.
    Reference: Schroff et al., 2015, arXiv:1503.03832 (FaceNet), sec. 3.1.
    """
    check_embeddings(anchors=anchors, positives=positives, negatives=negatives)
    check_number(margin, "margin", ">= 0")
    check_choice(distance, "distance", DISTANCES)
    return _triplet(anchors, positives, negatives, margin, distance)


@torch.no_grad()
def _mine(embeddings: Tensor, labels: Tensor, mining: str, margin: float, distance):
    """``(a_idx, p_idx, n_idx)`` of the triplets :func:`mine_triplets` describes."""
    dist = _distances(embeddings, embeddings, distance)  # (N, N)
    same = labels[:, None] == labels[None, :]  # (N, N)
    eye = torch.eye(len(labels), dtype=torch.bool, device=same.device)
    is_pos, is_neg = same & ~eye, ~same
    if mining == "batch_hard":
        p_idx = dist.masked_fill(~is_pos, -math.inf).argmax(dim=1)  # (N,)
        n_idx = dist.masked_fill(~is_neg, math.inf).argmin(dim=1)  # (N,)
        keep = is_pos.any(dim=1) & is_neg.any(dim=1)
        a_idx = torch.arange(len(labels), device=same.device)
        return a_idx[keep], p_idx[keep], n_idx[keep]
    valid = is_pos[:, :, None] & is_neg[:, None, :]  # (N, N, N): [a, p, n]
    if mining == "batch_semi_hard":
        d_ap, d_an = dist[:, :, None], dist[:, None, :]
        valid &= (d_ap < d_an) & (d_an < d_ap + margin)
    return valid.nonzero(as_tuple=True)  # lexicographic (a, p, n) order


def mine_triplets(
    embeddings: Tensor,
    labels: Tensor | Sequence[int],
    mining: str = "batch_hard",
    margin: float = 0.2,
    distance: str = "cosine",
) -> tuple[Tensor, Tensor, Tensor]:
    """Index triplets ``(a, p, n)`` of ``(N, dim)`` rows: ``y_a == y_p != y_n``.

    Always ``a != p``. ``"batch_hard"``: per anchor, the farthest positive and the
    nearest negative (lowest index on ties; anchors lacking either are left out).
    ``"batch_semi_hard"``: all with ``d_ap < d_an < d_ap + margin``. ``"all"``: all.
    Returns three equal-length LongTensors (maybe empty). See chapter 2.
    References: arXiv:1503.03832 sec. 3.2 (semi-hard); arXiv:1703.07737 (batch hard).

    Example:
        >>> emb = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
        >>> mine_triplets(emb, [0, 0, 1, 1])
        (tensor([0, 1, 2, 3]), tensor([1, 0, 3, 2]), tensor([2, 2, 1, 1]))
    """
    check_embeddings(embeddings=embeddings)
    labels = _check_labels(labels, len(embeddings), binary=False)
    check_choice(mining, "mining", MININGS)
    check_number(margin, "margin", ">= 0")
    check_choice(distance, "distance", DISTANCES)
    return _mine(embeddings, labels.to(embeddings.device), mining, margin, distance)


def mined_triplet_loss(
    embeddings: Tensor,
    labels: Tensor | Sequence[int],
    margin: float = 0.2,
    mining: str = "batch_hard",
    distance: str = "cosine",
) -> Tensor:
    """:func:`triplet_loss` over the triplets :func:`mine_triplets` picks.

        loss = mean_{(a, p, n) mined} max(0, d(a, p) - d(a, n) + margin)

    ``embeddings`` is ``(N, dim)``, ``labels`` ``(N,)`` class ids; ``margin`` is
    also the semi-hard window. ``0`` (with zero gradients, never NaN) if nothing
    is mined. See chapter 2. Reference: arXiv:1703.07737 (batch hard).

    Example:
        >>> emb = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
        >>> mined_triplet_loss(emb, [0, 0, 1, 1], margin=0.2)  # (0 + .36 + .36 + 0) / 4
        tensor(0.1800)
    """
    a_idx, p_idx, n_idx = mine_triplets(embeddings, labels, mining, margin, distance)
    if len(a_idx) == 0:
        return embeddings.sum() * 0.0  # keeps the graph: backward() still works
    triplets = embeddings[a_idx], embeddings[p_idx], embeddings[n_idx]  # (T, dim) each
    return _triplet(*triplets, margin, distance)


def info_nce_loss(
    anchors: Tensor,
    positives: Tensor,
    negatives: Tensor | None = None,
    temperature: float = 0.05,
    hard_negative_weight: float = 0.0,
    symmetric: bool = False,
) -> Tensor:
    """InfoNCE with in-batch negatives, the SimCSE training objective. See chapter 3.

        loss_i = -log softmax_j( cos(a_i, c_j) / temperature + w * [j = B + i] )[i]

    ``anchors``, ``positives`` (row ``i`` is anchor ``i``'s twin) and the optional
    hard ``negatives`` are ``(B, dim)``. The candidates ``c`` are all positives, then
    all negatives; ``w = hard_negative_weight`` (SimCSE's ``log alpha``) is added to
    anchor ``i``'s own negative only. ``symmetric`` averages in the positive ->
    anchor loss (candidates: the anchors). Returns the mean over the batch.
    References: Oord et al., 2018, arXiv:1807.03748; Gao et al., 2021, arXiv:2104.08821.

    Example:
        >>> round(info_nce_loss(torch.ones(4, 8), torch.ones(4, 8)).item(), 4)  # log 4
        1.3863
    """
    check_embeddings(anchors=anchors, positives=positives, negatives=negatives)
    check_number(temperature, "temperature", "> 0")
    check_number(hard_negative_weight, "hard_negative_weight")
    if hard_negative_weight != 0 and negatives is None:
        raise ValueError(f"hard_negative_weight={hard_negative_weight} needs negatives")
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be True or False, got {symmetric!r}")
    batch = len(anchors)
    candidates = positives if negatives is None else torch.cat([positives, negatives])
    logits = _cosines(anchors, candidates) / temperature  # (B, B|2B)
    if negatives is not None:  # SimCSE cl_forward's z3_weight: column B + i of row i
        own = torch.eye(batch, dtype=logits.dtype, device=logits.device)  # (B, B)
        logits = logits + F.pad(own * hard_negative_weight, (batch, 0))  # (B, 2B)
    targets = torch.arange(batch, device=logits.device)  # the twin sits in column i
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        backward = F.cross_entropy(logits[:, :batch].T, targets)  # (B, B): p -> a
        loss = (loss + backward) / 2
    return loss
