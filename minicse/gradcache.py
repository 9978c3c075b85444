"""GradCache: a big contrastive batch in the memory of a small one.

InfoNCE couples all rows, so plain gradient accumulation changes the loss (fewer
negatives). GradCache splits the encoder work instead: (1) embed every chunk
without a graph; (2) loss on all embeddings ``E`` and ``G = dL/dE``; (3) re-embed
each chunk with a graph and ``E_i.backward(G_i)``. The chain rule gives the plain
gradient, ``dL/dθ = sum_i G_i · dE_i/dθ``, with one chunk's activations alive.
Pass 3 must replay pass 1's dropout masks (SimCSE's augmentation), so the RNG
state saved before each chunk is restored before its re-run. See chapter 6.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .batching import sort_by_length, trim_padding
from .checkpoint import rng_state, set_rng_state
from .utils import check_int

__all__ = ["grad_cache_step", "split_batch", "sort_by_length", "trim_padding"]


def _embed_without_graph(forward: Callable, chunks: Sequence) -> tuple[list, list]:
    """Pass 1: every chunk's ``(n_i, D)`` embeddings and the RNG state before it."""
    if isinstance(chunks, (str, Tensor, Mapping)) or not isinstance(chunks, Sequence):
        raise TypeError(
            f"chunks must be a list of batches, got {type(chunks).__name__}; "
            "use split_batch(batch, chunk_size)"
        )
    if not chunks:
        raise ValueError("chunks is empty; pass at least one chunk")
    embeddings, states = [], []
    for i, chunk in enumerate(chunks):
        states.append(rng_state())
        with torch.no_grad():
            out = forward(chunk)
        if not isinstance(out, Tensor) or out.dim() != 2:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"forward(chunks[{i}]) must return (n, D) embeddings, got {got}"
            )
        embeddings.append(out)
    return embeddings, states


def grad_cache_step(
    forward: Callable[[Any], Tensor],
    chunks: Sequence[Any],
    loss_fn: Callable[[Tensor], Tensor],
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
    scale: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Accumulate the gradients of ``L = loss_fn(cat([forward(c) for c in chunks]))``.

    Loss, gradients, dropout masks and the final RNG state are those of one plain
    ``L.backward()``, but only one chunk's activations are alive at a time.

    Args:
        forward: ``chunk -> (n_i, D)`` embeddings (autocast inside); runs twice.
        chunks: the pieces of the batch, in order (:func:`split_batch`).
        loss_fn: ``(sum n_i, D) -> scalar``; may use ``gather_with_grad``.
        no_sync: DDP's ``model.no_sync``: all chunks but the last run inside it.
        scale: fp16's ``GradScaler.scale``: ``G`` is then the gradient of the
            scaled loss, as in a plain ``scaler.scale(L).backward()``.

    Returns:
        The loss, detached.

    References:
        Gao, Zhang, Han & Callan, 2021, arXiv:2101.06983, Algorithm 1.

    Example:
        >>> net, x = torch.nn.Linear(3, 2), torch.randn(5, 3)
        >>> loss = grad_cache_step(net, [x[:2], x[2:]], lambda e: e.pow(2).sum())
        >>> torch.allclose(net.weight.grad, 2 * (net(x).T @ x))
        True
    """
    if not callable(forward) or not callable(loss_fn):
        raise TypeError("forward and loss_fn must be callables")
    parts, states = _embed_without_graph(forward, chunks)
    embeddings = torch.cat(parts).requires_grad_(True)  # (sum n_i, D) leaf
    loss = loss_fn(embeddings)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got {loss!r}")
    # G = dL/dE (fp16: of the scaled loss), and grads of parameters inside loss_fn
    (loss if scale is None else scale(loss)).backward()
    state_after = rng_state()
    grads = embeddings.grad.split([len(p) for p in parts])  # (n_i, D) each
    for i, (chunk, grad, state) in enumerate(zip(chunks, grads, states, strict=True)):
        set_rng_state(state)  # the dropout masks of pass 1
        skip_sync = no_sync is not None and i < len(chunks) - 1  # sync the last only
        with no_sync() if skip_sync else contextlib.nullcontext():
            out = forward(chunk)
            if out.shape != grad.shape:
                raise RuntimeError(
                    f"forward(chunks[{i}]) gave {tuple(out.shape)} on the re-run but "
                    f"{tuple(grad.shape)} the first time; it must be deterministic"
                )
            out.backward(grad)
    set_rng_state(state_after)
    return loss.detach()


def split_batch(batch: Any, chunk_size: int) -> list[Any]:
    """Cut a dict of tensors, a tensor or a list into chunks of ``chunk_size`` rows.

    The last chunk may be smaller; a dict's tensors are each split on dim 0.

    Example:
        >>> split_batch(list("abcde"), 2)
        [['a', 'b'], ['c', 'd'], ['e']]
    """
    check_int(chunk_size, "chunk_size")
    chunk_size = int(chunk_size)  # Tensor.split would take a NumPy int for sizes
    if isinstance(batch, Mapping):
        sizes = {len(v) for v in batch.values()}
        if len(sizes) != 1:
            raise ValueError(
                f"batch values must have the same number of rows, got {sizes}"
            )
        columns = [split_batch(v, chunk_size) for v in batch.values()]
        return [
            dict(zip(batch, row, strict=True)) for row in zip(*columns, strict=True)
        ]
    if isinstance(batch, Tensor):
        return list(batch.split(chunk_size))
    if isinstance(batch, Sequence) and not isinstance(batch, str):
        return [
            list(batch[i : i + chunk_size]) for i in range(0, len(batch), chunk_size)
        ]
    kind = type(batch).__name__
    raise TypeError(f"batch must be a dict of tensors, a tensor or a list, got {kind}")
