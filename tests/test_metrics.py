"""Tests for minicse.metrics: loop references, known values, gradients, bad input."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.testing import assert_close

from minicse.metrics import alignment, uniformity

DTYPE = torch.float64


def randn(*shape, seed=0, grad=False):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=DTYPE).requires_grad_(grad)


def unit(v):
    return v / torch.sqrt((v**2).sum())


def ref_alignment(x, y, alpha):
    """Loop over positive pairs: mean of ||x_i/|x_i| - y_i/|y_i| || ** alpha."""
    terms = [
        torch.sqrt(((unit(u) - unit(v)) ** 2).sum()) ** alpha
        for u, v in zip(x, y, strict=True)
    ]
    return sum(terms) / len(terms)


def ref_uniformity(x, t):
    """Loop over distinct pairs i < j: log of the mean of exp(-t ||u_i - u_j||^2)."""
    kernels = []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            kernels.append(torch.exp(-t * ((unit(x[i]) - unit(x[j])) ** 2).sum()))
    return torch.log(sum(kernels) / len(kernels))


def circle(angles):
    angles = torch.as_tensor(angles, dtype=DTYPE)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (N, 2)


# ----------------------------------------------------------------------------------
# alignment
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1, 2, 3.5])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_alignment_matches_loop(n, alpha):
    x, y = randn(n, 5, seed=n), randn(n, 5, seed=n + 10)
    assert_close(alignment(x, y, alpha=alpha), ref_alignment(x, y, alpha))


def test_alignment_known_values():
    x = randn(4, 3, seed=1)
    assert alignment(x, x).item() == pytest.approx(0, abs=1e-12)  # identical pairs
    assert alignment(x, 3 * x).item() == pytest.approx(0, abs=1e-12)  # normalised
    assert_close(alignment(x, -x), torch.tensor(4.0, dtype=DTYPE))  # antipodal: 2^2
    e = torch.eye(2, dtype=DTYPE)
    assert_close(
        alignment(e, e.flip(0), alpha=1), torch.tensor(math.sqrt(2), dtype=DTYPE)
    )


def test_alignment_gradients():
    x, y = randn(3, 4, seed=2, grad=True), randn(3, 4, seed=3, grad=True)
    assert torch.autograd.gradcheck(alignment, (x, y))
    alignment(x, x.detach().clone()).backward()  # identical pairs: d = 0
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------------
# uniformity
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.5, 2, 5])
@pytest.mark.parametrize("n", [2, 3, 10])
def test_uniformity_matches_loop(n, t):
    x = randn(n, 4, seed=n)
    assert_close(uniformity(x, t=t), ref_uniformity(x, t))


def test_uniformity_matches_wang_isola_formula():
    x = torch.nn.functional.normalize(randn(20, 6, seed=4), dim=1)
    paper = torch.pdist(x, p=2).pow(2).mul(-2).exp().mean().log()  # their listing
    assert_close(uniformity(x), paper)


def test_uniformity_known_values():
    same = torch.ones(5, 3, dtype=DTYPE)  # every point identical
    assert uniformity(same).item() == pytest.approx(0, abs=1e-12)
    assert uniformity(2 * same).item() == pytest.approx(0, abs=1e-12)
    antipodal = circle([0, math.pi])  # ||u - v||^2 = 4
    assert_close(uniformity(antipodal, t=2), torch.tensor(-8.0, dtype=DTYPE))
    # logsumexp: no underflow to log(0) = -inf for a large t
    assert_close(uniformity(antipodal, t=1000), torch.tensor(-4000.0, dtype=DTYPE))


def test_uniformity_decreases_as_points_spread():
    # 12 points evenly spread on an arc of growing width, up to the full circle
    widths = [0.0, 0.1, 0.5, 1.0, 2.0, math.pi, 2 * math.pi * 11 / 12]
    values = [uniformity(circle(torch.linspace(0, w, 12))).item() for w in widths]
    assert all(a > b for a, b in itertools.pairwise(values))
    # and on the sphere: a random spread of 200 points beats a cap around one pole
    cap = randn(200, 3, seed=5) * 0.1 + torch.tensor([0, 0, 1], dtype=DTYPE)
    spread = randn(200, 3, seed=5)
    assert uniformity(spread) < uniformity(cap)


def test_uniformity_gradients():
    x = randn(4, 3, seed=6, grad=True)
    assert torch.autograd.gradcheck(uniformity, (x,))
    same = torch.ones(3, 2, dtype=DTYPE, requires_grad=True)
    uniformity(same).backward()  # every distance 0
    assert torch.isfinite(same.grad).all()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: alignment(randn(3, 4), randn(2, 4)), ValueError, r"x \(3, 4\) and y"),
        (lambda: alignment(randn(3, 4), randn(3, 4), alpha=0), ValueError, "alpha"),
        (lambda: alignment(randn(3, 4), randn(3, 4), alpha="2"), TypeError, "alpha"),
        (lambda: alignment(randn(0, 4), randn(0, 4)), ValueError, "x is empty"),
        (lambda: alignment(randn(2, 4), randn(2, 4) / 0), ValueError, "y contains NaN"),
        (lambda: alignment([[1.0]], [[1.0]]), TypeError, "x must be a torch.Tensor"),
        (lambda: uniformity(randn(1, 4)), ValueError, r"at least 2 rows.*\(1, 4\)"),
        (lambda: uniformity(randn(3, 4), t=-1), ValueError, "t must be .*> 0, got -1"),
        (lambda: uniformity(randn(4)), ValueError, r"x must have shape \(batch, dim"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
