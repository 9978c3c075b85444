"""Tests for minicse.losses: loop references, pytorch-metric-learning, known values.

Every loss is checked three ways: (a) against a Python loop written to be obviously
right, (b) against pytorch-metric-learning (PML), an independent implementation,
and (c) on inputs whose loss is known in closed form. All in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances, losses, miners, reducers
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
from torch.testing import assert_close

from minicse.losses import (
    contrastive_loss,
    cosine_similarity_matrix,
    info_nce_loss,
    mine_triplets,
    mined_triplet_loss,
    pairwise_distance_matrix,
    triplet_loss,
)
from minicse.utils import NonFiniteError

DTYPE = torch.float64
BATCH_SIZES = [1, 2, 5, 8]
DISTANCES = ["cosine", "euclidean"]


def randn(*shape, seed=0, grad=True):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=DTYPE).requires_grad_(grad)


def grads_of(loss_fn, *tensors):
    """Gradients of ``loss_fn(*copies)`` w.r.t. fresh leaf copies of ``tensors``."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    loss_fn(*leaves).backward()
    # a loss that does not depend on a tensor (PML's 0 for a batch of 1) -> zero grad
    return [torch.zeros_like(t) if t.grad is None else t.grad for t in leaves]


# ----------------------------------------------------------------------------------
# Loop references, written to be obviously right rather than fast.
# ----------------------------------------------------------------------------------


def ref_cos(u, v):
    return torch.dot(u, v) / (u.norm() * v.norm())


def ref_distance(u, v, distance):
    if distance == "cosine":
        return 1 - ref_cos(u, v)
    return torch.sqrt(((u - v) ** 2).sum())


def ref_contrastive(a, b, labels, margin, distance):
    terms = []
    for u, v, y in zip(a, b, labels, strict=True):
        d = ref_distance(u, v, distance)
        terms.append(d**2 if y == 1 else torch.clamp(margin - d, min=0) ** 2)
    return sum(terms) / len(terms)


def ref_triplet(anchors, positives, negatives, margin, distance):
    terms = []
    for a, p, n in zip(anchors, positives, negatives, strict=True):
        d_ap, d_an = ref_distance(a, p, distance), ref_distance(a, n, distance)
        terms.append(torch.clamp(d_ap - d_an + margin, min=0))
    return sum(terms) / len(terms)


def ref_mine(embeddings, labels, mining, margin, distance):
    """Triplets as a sorted list of (a, p, n) int tuples."""
    labels = [int(y) for y in labels]
    n = len(labels)

    dist = [
        [float(ref_distance(u, v, distance)) for v in embeddings] for u in embeddings
    ]

    def d(i, j):
        return dist[i][j]

    triplets = []
    for a in range(n):
        pos = [p for p in range(n) if p != a and labels[p] == labels[a]]
        neg = [k for k in range(n) if labels[k] != labels[a]]
        if mining == "batch_hard":
            if pos and neg:
                hardest_p = max(pos, key=lambda p: d(a, p))
                hardest_n = min(neg, key=lambda k: d(a, k))
                triplets.append((a, hardest_p, hardest_n))
            continue
        for p in pos:
            for k in neg:
                semi_hard = d(a, p) < d(a, k) < d(a, p) + margin
                if mining == "all" or semi_hard:
                    triplets.append((a, p, k))
    return sorted(triplets)


def ref_mined_loss(embeddings, labels, margin, mining, distance):
    triplets = ref_mine(embeddings.detach(), labels, mining, margin, distance)
    if not triplets:
        return embeddings.sum() * 0
    cache = {}

    def d(i, j):
        if (i, j) not in cache:
            cache[i, j] = ref_distance(embeddings[i], embeddings[j], distance)
        return cache[i, j]

    terms = [torch.clamp(d(a, p) - d(a, k) + margin, min=0) for a, p, k in triplets]
    return sum(terms) / len(terms)


def ref_info_nce(anchors, positives, negatives, temperature, weight=0.0):
    """Row i: candidates are every positive, then every negative (+ weight on own)."""
    losses_ = []
    for i, a in enumerate(anchors):
        logits = [ref_cos(a, p) / temperature for p in positives]
        if negatives is not None:
            for j, n in enumerate(negatives):
                logits.append(ref_cos(a, n) / temperature + (weight if j == i else 0.0))
        logits = torch.stack(logits)
        losses_.append(-(logits[i] - torch.logsumexp(logits, dim=0)))
    return torch.stack(losses_).mean()


def ref_info_nce_symmetric(anchors, positives, negatives, temperature, weight=0.0):
    forward = ref_info_nce(anchors, positives, negatives, temperature, weight)
    backward = ref_info_nce(positives, anchors, None, temperature)  # p_i -> a_i
    return (forward + backward) / 2


# ----------------------------------------------------------------------------------
# PML set-ups that compute the same quantity.
# ----------------------------------------------------------------------------------


def pml_distance(distance):
    if distance == "cosine":
        return distances.CosineSimilarity()
    return distances.LpDistance(normalize_embeddings=False, p=2, power=1)


def pml_info_nce(anchors, positives, negatives, temperature):
    """Anchors are queries; positives (+ negatives) are references with own labels."""
    refs = positives if negatives is None else torch.cat([positives, negatives])
    loss_fn = losses.NTXentLoss(temperature=temperature, reducer=reducers.MeanReducer())
    labels = torch.arange(len(anchors))
    return loss_fn(anchors, labels, ref_emb=refs, ref_labels=torch.arange(len(refs)))


def pml_contrastive(a, b, labels, margin, distance):
    """PML's per-pair hinge terms (not squared) -> square them -> mean over pairs.

    PML: pos term relu(d - pos_margin), neg term relu(neg_margin - d) for a distance;
    relu(pos_margin - s), relu(s - neg_margin) for a similarity s = 1 - d. With
    pos_margin = 0 / 1 and neg_margin = margin / 1 - margin these are d and
    relu(margin - d); minicse's per-pair loss is their square. Each pair is listed
    twice (the mean is unchanged) to dodge PML's "at most one pair -> loss 0" rule.
    """
    pos = torch.nonzero(torch.as_tensor(labels) == 1).flatten().repeat(2)
    neg = torch.nonzero(torch.as_tensor(labels) == 0).flatten().repeat(2)
    cosine = distance == "cosine"
    loss_fn = losses.ContrastiveLoss(
        pos_margin=1.0 if cosine else 0.0,
        neg_margin=1.0 - margin if cosine else margin,
        distance=pml_distance(distance),
        reducer=reducers.DoNothingReducer(),
    )
    out = loss_fn(a, indices_tuple=(pos, pos, neg, neg), ref_emb=b)
    total = sum(torch.as_tensor(out[k]["losses"]).pow(2).sum() for k in out)
    return total / (2 * len(a))


def pml_triplet(anchors, positives, negatives, margin, distance):
    batch = len(anchors)
    idx = torch.arange(batch)
    loss_fn = losses.TripletMarginLoss(
        margin=margin, distance=pml_distance(distance), reducer=reducers.MeanReducer()
    )
    embeddings = torch.cat([anchors, positives, negatives])
    return loss_fn(embeddings, indices_tuple=(idx, idx + batch, idx + 2 * batch))


def pml_mine(embeddings, labels, mining, margin, distance):
    if mining == "batch_hard":
        miner = miners.BatchHardMiner(distance=pml_distance(distance))
        return miner(embeddings, labels)
    if mining == "batch_semi_hard":
        miner = miners.TripletMarginMiner(
            margin=margin, type_of_triplets="semihard", distance=pml_distance(distance)
        )
        return miner(embeddings, labels)
    return lmu.get_all_triplets_indices(labels)


def pml_mined_loss(embeddings, labels, margin, mining, distance):
    triplets = pml_mine(embeddings.detach(), labels, mining, margin, distance)
    loss_fn = losses.TripletMarginLoss(
        margin=margin, distance=pml_distance(distance), reducer=reducers.MeanReducer()
    )
    return loss_fn(embeddings, labels, indices_tuple=triplets)


def as_sorted_triplets(indices):
    return sorted(zip(*(t.tolist() for t in indices), strict=True))


def random_labels(batch, seed):
    """Class ids in {0, 1, 2}; tiny batches get [0, 0, 1] so a triplet exists."""
    if batch <= 3:
        return torch.arange(batch) // 2
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (batch,), generator=generator)


def random_binary(batch, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (batch,), generator=generator)


# ----------------------------------------------------------------------------------
# Similarity and distance matrices.
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
def test_distance_matrix_matches_loop(distance):
    x, y = randn(4, 3, seed=1, grad=False), randn(5, 3, seed=2, grad=False)
    expected = torch.tensor([[ref_distance(u, v, distance) for v in y] for u in x])
    assert_close(pairwise_distance_matrix(x, y, distance), expected.to(DTYPE))
    if distance == "cosine":
        assert_close(cosine_similarity_matrix(x, y), 1 - expected.to(DTYPE))


def test_distance_matrix_gradients():
    x, y = randn(3, 4, seed=3), randn(2, 4, seed=4)
    assert torch.autograd.gradcheck(cosine_similarity_matrix, (x, y))
    for distance in DISTANCES:
        fn = lambda u, v, d=distance: pairwise_distance_matrix(u, v, d)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, y))


def test_euclidean_self_distance_is_exactly_zero_with_finite_grad():
    x = randn(40, 8, seed=5)  # > 25 rows: where cdist would switch to the mm formula
    dist = pairwise_distance_matrix(x, x, "euclidean")
    assert torch.equal(dist.diagonal(), torch.zeros(40, dtype=DTYPE))
    dist.sum().backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------------
# Contrastive (pair) loss.
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_contrastive_matches_loop_and_pml(batch, distance):
    a, b = randn(batch, 6, seed=batch), randn(batch, 6, seed=batch + 100)
    labels = random_binary(batch, seed=batch)
    margin = 1.0 if distance == "cosine" else 3.5  # so that some hinges are active

    def ours(u, v):
        return contrastive_loss(u, v, labels, margin=margin, distance=distance)

    for reference in (ref_contrastive, pml_contrastive):

        def theirs(u, v, reference=reference):
            return reference(u, v, labels, margin, distance)

        assert_close(ours(a, b), theirs(a, b).to(DTYPE))
        for mine, other in zip(
            grads_of(ours, a, b), grads_of(theirs, a, b), strict=True
        ):
            assert_close(mine, other)


@pytest.mark.parametrize("distance", DISTANCES)
def test_contrastive_gradcheck(distance):
    a, b = randn(4, 3, seed=7), randn(4, 3, seed=8)
    labels = torch.tensor([1, 0, 1, 0])
    fn = lambda u, v: contrastive_loss(u, v, labels, 1.5, distance)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, b))


def test_contrastive_known_values():
    x = torch.eye(3, dtype=DTYPE)
    # similar and identical -> 0; dissimilar and orthogonal (cos d = 1) beyond 0.5 -> 0
    assert contrastive_loss(x, x, [1, 1, 1]).item() == 0
    assert contrastive_loss(x, x.roll(1, 0), [0, 0, 0], margin=0.5).item() == 0
    # dissimilar but identical: margin^2 per pair (no 1/2 factor)
    assert_close(
        contrastive_loss(x, x, [0, 0, 0], margin=0.5), torch.tensor(0.25, dtype=DTYPE)
    )
    # similar but orthogonal: euclidean d = sqrt(2) -> d^2 = 2
    loss = contrastive_loss(x, x.roll(1, 0), [1, 1, 1], distance="euclidean")
    assert_close(loss, torch.tensor(2.0, dtype=DTYPE))


def test_contrastive_identical_euclidean_pairs_have_finite_grads():
    a = randn(3, 4, seed=9)
    b = a.detach().clone().requires_grad_(True)
    contrastive_loss(a, b, [1, 0, 1], margin=1.0, distance="euclidean").backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_contrastive_accepts_bool_and_float_labels():
    a, b = randn(3, 4, seed=10, grad=False), randn(3, 4, seed=11, grad=False)
    expected = contrastive_loss(a, b, torch.tensor([1, 0, 1]))
    assert_close(contrastive_loss(a, b, torch.tensor([True, False, True])), expected)
    assert_close(contrastive_loss(a, b, [1.0, 0.0, 1.0]), expected)


# ----------------------------------------------------------------------------------
# Triplet loss with explicit triplets.
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_triplet_matches_loop_and_pml(batch, distance):
    a, p, n = (randn(batch, 5, seed=batch + k) for k in (0, 10, 20))
    margin = 0.5 if distance == "cosine" else 2.0

    def ours(*t):
        return triplet_loss(*t, margin=margin, distance=distance)

    for reference in (ref_triplet, pml_triplet):

        def theirs(*t, reference=reference):
            return reference(*t, margin, distance)

        assert_close(ours(a, p, n), theirs(a, p, n).to(DTYPE))
        for mine, other in zip(
            grads_of(ours, a, p, n), grads_of(theirs, a, p, n), strict=True
        ):
            assert_close(mine, other)


@pytest.mark.parametrize("distance", DISTANCES)
def test_triplet_gradcheck(distance):
    a, p, n = randn(3, 4, seed=12), randn(3, 4, seed=13), randn(3, 4, seed=14)
    fn = lambda *t: triplet_loss(*t, margin=1.0, distance=distance)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, p, n))


def test_triplet_known_values():
    e = torch.eye(2, dtype=DTYPE)
    a, n = e[:1], e[1:]
    assert triplet_loss(a, a, n, margin=0.2).item() == 0  # d_ap = 0, d_an = 1
    assert_close(triplet_loss(a, n, a, margin=0.2), torch.tensor(1.2, dtype=DTYPE))


# ----------------------------------------------------------------------------------
# Mining and the mined triplet loss.
# ----------------------------------------------------------------------------------

MININGS = ["batch_hard", "batch_semi_hard", "all"]


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("batch", [1, 3, 5, 10])
def test_mine_triplets_matches_loop_and_pml(batch, mining, distance):
    embeddings = randn(batch, 4, seed=batch, grad=False)
    labels = random_labels(batch, seed=batch)
    margin = 0.5 if distance == "cosine" else 1.5
    mined = mine_triplets(embeddings, labels, mining, margin, distance)
    assert all(t.dtype == torch.long for t in mined)
    expected = ref_mine(embeddings, labels, mining, margin, distance)
    assert as_sorted_triplets(mined) == expected
    assert (
        as_sorted_triplets(pml_mine(embeddings, labels, mining, margin, distance))
        == expected
    )


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("batch", [1, 3, 5, 10])
def test_mined_loss_matches_loop_and_pml(batch, mining, distance):
    embeddings = randn(batch, 4, seed=batch + 1)
    labels = random_labels(batch, seed=batch + 1)
    margin = 0.5 if distance == "cosine" else 1.5

    def ours(e):
        return mined_triplet_loss(e, labels, margin, mining, distance)

    for reference in (ref_mined_loss, pml_mined_loss):

        def theirs(e, reference=reference):
            return reference(e, labels, margin, mining, distance)

        assert_close(ours(embeddings), torch.as_tensor(theirs(embeddings), dtype=DTYPE))
        assert_close(grads_of(ours, embeddings)[0], grads_of(theirs, embeddings)[0])


@pytest.mark.parametrize("mining", ["batch_hard", "batch_semi_hard"])
def test_mined_loss_gradcheck(mining):
    embeddings = randn(6, 3, seed=15)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    assert len(mine_triplets(embeddings, labels, mining, margin=1.0)[0]) > 0
    fn = lambda e: mined_triplet_loss(e, labels, margin=1.0, mining=mining)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (embeddings,))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5], [7]])
@pytest.mark.parametrize("mining", MININGS)
def test_mined_loss_without_triplets_is_zero_not_nan(labels, mining):
    embeddings = randn(len(labels), 3, seed=16)
    assert all(len(t) == 0 for t in mine_triplets(embeddings, labels, mining))
    loss = mined_triplet_loss(embeddings, labels, mining=mining)
    assert loss.item() == 0
    loss.backward()
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


def test_batch_hard_skips_anchors_without_positive():
    embeddings = randn(5, 3, seed=17, grad=False)
    a_idx, p_idx, n_idx = mine_triplets(embeddings, [0, 0, 1, 1, 2])  # 4 is alone
    assert a_idx.tolist() == [0, 1, 2, 3]
    assert p_idx.tolist() == [1, 0, 3, 2]
    assert 4 not in a_idx.tolist() and 4 not in p_idx.tolist()


def test_semi_hard_window_is_strict():
    # 1-D points on a line: anchor 0 at 0, positive 1 at 1, negatives at 1, 1.5, 2, 3
    embeddings = torch.tensor([[0.0], [1.0], [1.0], [1.5], [2.0], [3.0]], dtype=DTYPE)
    labels = [0, 0, 1, 1, 1, 1]
    a_idx, p_idx, n_idx = mine_triplets(
        embeddings, labels, "batch_semi_hard", 1.0, "euclidean"
    )
    from_anchor0 = [
        n for a, n in zip(a_idx.tolist(), n_idx.tolist(), strict=True) if a == 0
    ]
    assert from_anchor0 == [3]  # d_an = 1 (tie) and d_an = 2 (= d_ap + margin) excluded


# ----------------------------------------------------------------------------------
# InfoNCE.
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("with_negatives", [False, True])
@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_info_nce_matches_loop_and_pml(batch, with_negatives):
    a, p, n = (randn(batch, 8, seed=batch + k) for k in (0, 10, 20))
    n = n if with_negatives else None
    temperature = 0.1

    def ours(a, p, n=None):
        return info_nce_loss(a, p, n, temperature=temperature)

    def loop(a, p, n=None):
        return ref_info_nce(a, p, n, temperature)

    def pml(a, p, n=None):
        return pml_info_nce(a, p, n, temperature)

    args = (a, p) if n is None else (a, p, n)
    # PML returns 0 when every index list has <= 1 entry: batch 1 with a negative
    references = [loop] if (batch == 1 and with_negatives) else [loop, pml]
    for reference in references:
        assert_close(ours(*args), reference(*args).to(DTYPE))
        for mine, other in zip(
            grads_of(ours, *args), grads_of(reference, *args), strict=True
        ):
            assert_close(mine, other)


@pytest.mark.parametrize("with_negatives", [False, True])
@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_info_nce_symmetric_matches_loop_and_pml(batch, with_negatives):
    a, p, n = (randn(batch, 8, seed=batch + k) for k in (1, 11, 21))
    n = n if with_negatives else None
    loss = info_nce_loss(a, p, n, temperature=0.1, symmetric=True)
    assert_close(loss, ref_info_nce_symmetric(a, p, n, 0.1))
    if not (batch == 1 and with_negatives):
        pml = (pml_info_nce(a, p, n, 0.1) + pml_info_nce(p, a, None, 0.1)) / 2
        assert_close(loss, pml)
    both = (info_nce_loss(a, p, n, 0.1) + info_nce_loss(p, a, None, 0.1)) / 2
    assert_close(loss, both)
    if n is None:  # without hard negatives the symmetric loss ignores the order
        assert_close(info_nce_loss(p, a, temperature=0.1, symmetric=True), loss)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("batch", [1, 3, 6])
def test_info_nce_hard_negative_weight_matches_loop(batch, alpha, symmetric):
    a, p, n = (randn(batch, 8, seed=batch + k) for k in (2, 12, 22))
    weight = math.log(alpha)
    reference = ref_info_nce_symmetric if symmetric else ref_info_nce

    def ours(*t):
        return info_nce_loss(*t, 0.05, hard_negative_weight=weight, symmetric=symmetric)

    def theirs(*t):
        return reference(*t, 0.05, weight)

    assert_close(ours(a, p, n), theirs(a, p, n))
    for mine, other in zip(
        grads_of(ours, a, p, n), grads_of(theirs, a, p, n), strict=True
    ):
        assert_close(mine, other)


def test_info_nce_weight_touches_only_the_own_hard_negative():
    a, p, n = (randn(4, 8, seed=k, grad=False) for k in (3, 13, 23))
    # a very negative weight removes anchor i's own negative, but not the others'
    masked = info_nce_loss(a, p, n, 0.05, hard_negative_weight=-1e4)
    losses_ = []
    for i in range(4):
        others = torch.cat([n[:i], n[i + 1 :]])
        cand = torch.cat([p, others])
        logits = F.cosine_similarity(a[i : i + 1], cand) / 0.05
        losses_.append(-torch.log_softmax(logits, dim=0)[i])
    assert_close(masked, torch.stack(losses_).mean())
    # a zero weight equals plain hard negatives
    plain = info_nce_loss(a, p, n, 0.05)
    assert_close(info_nce_loss(a, p, n, 0.05, hard_negative_weight=0.0), plain)


def test_info_nce_gradcheck():
    a, p, n = randn(3, 4, seed=30), randn(3, 4, seed=31), randn(3, 4, seed=32)
    for symmetric in (False, True):

        def fn(*t, symmetric=symmetric):
            return info_nce_loss(*t, 0.5, hard_negative_weight=0.3, symmetric=symmetric)

        assert torch.autograd.gradcheck(fn, (a, p, n))
        assert torch.autograd.gradcheck(
            lambda u, v: info_nce_loss(u, v, None, 0.5), (a, p)
        )


@pytest.mark.parametrize("batch", [1, 2, 4, 16])
def test_info_nce_known_values(batch):
    same = torch.ones(batch, 8, dtype=DTYPE)  # collapse: every candidate is equal
    assert_close(info_nce_loss(same, same), torch.tensor(math.log(batch), dtype=DTYPE))
    loss = info_nce_loss(same, same, same, symmetric=True)
    assert_close(
        loss, torch.tensor((math.log(2 * batch) + math.log(batch)) / 2, dtype=DTYPE)
    )
    # orthogonal twins at low temperature: log(1 + (B - 1) e^{-1/0.05}) ~ 0
    twins = torch.eye(batch, 16, dtype=DTYPE)
    assert info_nce_loss(twins, twins, temperature=0.05).item() < 1e-7


# ----------------------------------------------------------------------------------
# Input validation: each case overrides some arguments of a valid call and names
# the error it expects.
# ----------------------------------------------------------------------------------

X = torch.randn(3, 4)
NAN, INF = X.clone().fill_(math.nan), X.clone().fill_(math.inf)


def raises(fn, defaults, overrides, error, match):
    with pytest.raises(error, match=match):
        fn(**(defaults | overrides))


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"positives": X[:2]}, ValueError, r"anchors \(3, 4\) and positives \(2, 4\)"),
        ({"negatives": torch.randn(3, 5)}, ValueError, r"negatives \(3, 5\) must"),
        ({"anchors": X[:0], "positives": X[:0]}, ValueError, "anchors is empty"),
        ({"positives": NAN}, NonFiniteError, "positives contains NaN or inf"),
        ({"negatives": INF}, ValueError, "negatives contains NaN or inf"),
        ({"positives": X.double()}, TypeError, "anchors is torch.float32 but pos"),
        ({"anchors": X.numpy()}, TypeError, "anchors must be a torch.Tensor"),
        ({"anchors": X[0]}, ValueError, r"anchors must have shape \(batch, dim\)"),
        ({"anchors": X.long()}, TypeError, "anchors must be a floating-point"),
        ({"anchors": X[:, :0]}, ValueError, r"anchors is empty \(shape \(3, 0\)\)"),
        ({"temperature": 0}, ValueError, "temperature must be .*> 0, got 0"),
        ({"temperature": -0.1}, ValueError, "temperature must be .*> 0, got -0.1"),
        ({"temperature": "0.05"}, TypeError, "temperature must be a number"),
        ({"negatives": None, "hard_negative_weight": 1.0}, ValueError, "needs neg"),
        ({"hard_negative_weight": math.nan}, ValueError, "weight must be finite"),
        ({"hard_negative_weight": "1"}, TypeError, "weight must be a number"),
        ({"symmetric": "yes"}, TypeError, "symmetric must be True or False, got 'yes'"),
    ],
)
def test_info_nce_rejects_bad_input(overrides, error, match):
    defaults = {"anchors": X, "positives": X, "negatives": X}
    raises(info_nce_loss, defaults, overrides, error, match)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"y": torch.randn(3, 5)}, ValueError, "same embedding dim"),
        ({"x": NAN}, ValueError, "x contains NaN or inf"),
        ({"distance": "manhattan"}, ValueError, "unknown distance 'manhattan'; ch"),
    ],
)
def test_distance_matrix_rejects_bad_input(overrides, error, match):
    raises(pairwise_distance_matrix, {"x": X, "y": X}, overrides, error, match)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"b": X[:2]}, ValueError, r"a \(3, 4\) and b \(2, 4\) must have the same"),
        ({"labels": [1, 0]}, ValueError, r"labels must have shape \(3,\), got \(2,\)"),
        ({"labels": [1, 0, 2]}, ValueError, r"0 \(dissimilar\) or 1 .*got \[0, 1, 2\]"),
        ({"labels": ["a", "b", "c"]}, TypeError, "labels must be a tensor or list"),
        ({"margin": -1.0}, ValueError, "margin must be .*>= 0, got -1.0"),
        ({"distance": "l1"}, ValueError, "unknown distance 'l1'; choose one of"),
        ({"a": X[:0], "b": X[:0]}, ValueError, "a is empty"),
    ],
)
def test_contrastive_rejects_bad_input(overrides, error, match):
    defaults = {"a": X, "b": X, "labels": [1, 0, 1]}
    raises(contrastive_loss, defaults, overrides, error, match)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"negatives": X[:2]}, ValueError, r"anchors \(3, 4\) and negatives \(2, 4\)"),
        ({"positives": INF}, ValueError, "positives contains NaN or inf"),
        ({"margin": -0.2}, ValueError, "margin must be .*>= 0, got -0.2"),
        ({"distance": "dot"}, ValueError, "unknown distance 'dot'"),
    ],
)
def test_triplet_rejects_bad_input(overrides, error, match):
    defaults = {"anchors": X, "positives": X, "negatives": X}
    raises(triplet_loss, defaults, overrides, error, match)


@pytest.mark.parametrize("fn", [mine_triplets, mined_triplet_loss])
@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"labels": [0, 1]}, ValueError, r"labels must have shape \(3,\), got \(2,\)"),
        ({"labels": [0.5, 1.0, 1.0]}, TypeError, "labels must hold integer class"),
        ({"mining": "hardest"}, ValueError, "unknown mining 'hardest'; choose one"),
        ({"margin": -1}, ValueError, "margin must be .*>= 0, got -1"),
        ({"distance": "cos"}, ValueError, "unknown distance 'cos'"),
        ({"embeddings": NAN}, ValueError, "embeddings contains NaN or inf"),
        ({"embeddings": X[:0], "labels": []}, ValueError, "embeddings is empty"),
    ],
)
def test_mining_rejects_bad_input(fn, overrides, error, match):
    raises(fn, {"embeddings": X, "labels": [0, 1, 1]}, overrides, error, match)
