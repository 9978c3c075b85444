"""GradCache: a big contrastive batch in the memory of a small one. See chapter 6.

InfoNCE couples all rows, so plain gradient accumulation changes the loss (fewer
negatives). GradCache (1) embeds every chunk without a graph; (2) computes the loss
on all embeddings ``E`` and ``G = dL/dE``; (3) re-embeds each chunk with a graph,
pass 1's RNG state (dropout masks) restored, and runs ``E_i.backward(G_i)``. The
chain rule, ``dL/dθ = sum_i G_i · dE_i/dθ``, gives the plain gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .checkpoint import rng_state, set_rng_state


def grad_cache_step(
    forward: Callable[[Any], Tensor],
    chunks: Sequence[Any],
    loss_fn: Callable[[Tensor], Tensor],
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
    scale: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Accumulate the gradients of ``L = loss_fn(cat([forward(c) for c in chunks]))``.

    The loss (returned, detached), gradients, dropout masks and final RNG state are
    those of one plain ``L.backward()``. ``forward``: chunk -> ``(n_i, D)``, run
    twice; ``no_sync``: DDP's ``model.no_sync``, around all chunks but the last;
    ``scale``: fp16's ``GradScaler.scale``. Reference: arXiv:2101.06983, Algorithm 1.

    Example:
        >>> net, x = torch.nn.Linear(3, 2), torch.randn(5, 3)
        >>> loss = grad_cache_step(net, [x[:2], x[2:]], lambda e: e.pow(2).sum())
        >>> torch.allclose(net.weight.grad, 2 * (net(x).T @ x))
        True
    """
    if not callable(forward) or not callable(loss_fn):
        raise TypeError("forward and loss_fn must be callables")
    if isinstance(chunks, str) or not isinstance(chunks, Sequence):
        raise TypeError(f"chunks must be a list, got {type(chunks).__name__}")
    if not chunks:
        raise ValueError("chunks is empty; pass at least one chunk")
    parts, states = [], []
    for chunk in chunks:  # pass 1, without a graph; the RNG state before each chunk
        states.append(rng_state())
        with torch.no_grad():
            parts.append(forward(chunk))
    embeddings = torch.cat(parts).requires_grad_(True)  # (sum n_i, D) leaf
    if embeddings.ndim != 2:
        raise ValueError(f"forward must return (n, D) rows, got {embeddings.shape}")
    loss = loss_fn(embeddings)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got {loss!r:.60}")
    (loss if scale is None else scale(loss)).backward()  # G = dL/dE (fp16: scaled)
    state_after = rng_state()
    grads = embeddings.grad.split([len(p) for p in parts])  # (n_i, D) each
    for i, (chunk, grad, state) in enumerate(zip(chunks, grads, states, strict=True)):
        set_rng_state(state)  # the dropout masks of pass 1
        last = no_sync is None or i == len(chunks) - 1  # DDP syncs the last only
        with contextlib.nullcontext() if last else no_sync():
            out = forward(chunk)
            if out.shape != grad.shape:
                raise RuntimeError(f"chunk {i} changed shape: not deterministic")
            out.backward(grad)
    set_rng_state(state_after)
    return loss.detach()
