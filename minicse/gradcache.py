"""Gradient caching: a big contrastive batch in the memory of a small one.

InfoNCE couples every row of the batch through the ``(B, B)`` similarity matrix,
so plain gradient accumulation over micro-batches changes the loss (fewer
negatives). GradCache (Gao et al., 2021) splits the *encoder* work instead:

1. encode every chunk without a graph, keeping only the ``(n_i, D)`` embeddings;
2. compute the full-batch loss on the concatenated embeddings ``E`` and its
   gradient ``G = dL/dE`` (cheap: no encoder in this graph);
3. re-encode each chunk with a graph and backpropagate ``G_i`` into it
   (``E_i.backward(G_i)``), one chunk at a time.

By the chain rule ``dL/dθ = sum_i G_i · dE_i/dθ``, exactly the plain gradient,
while activation memory is that of one chunk. Pass 3 must reproduce pass 1, so
the RNG state (dropout masks: SimCSE's augmentation!) is saved before each chunk
in pass 1 and restored before its re-run. The price is one extra forward pass.
See chapter 6.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .batching import sort_by_length, trim_padding
from .utils import check_int

__all__ = ["grad_cache_step", "split_batch", "sort_by_length", "trim_padding"]

RngState = tuple[Tensor, list[Tensor] | None]


def _get_rng_state() -> RngState:
    """CPU generator state and, if CUDA is in use, every GPU's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: RngState) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def _encode_without_graph(
    forward: Callable[[Any], Tensor], chunks: Sequence[Any]
) -> tuple[list[Tensor], list[RngState]]:
    """Pass 1: embeddings of every chunk (no graph) and the RNG state before each."""
    embeddings, states = [], []
    for i, chunk in enumerate(chunks):
        states.append(_get_rng_state())
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
) -> Tensor:
    """Accumulate into ``.grad`` the gradients of ``loss_fn(cat(forward(c) for c))``.

    The result equals ``loss = loss_fn(torch.cat([forward(c) for c in chunks]));
    loss.backward()`` (same dropout masks: the RNG is replayed), but only one
    chunk's activations are alive at a time. The caller zeroes gradients and
    steps the optimizer. Autocast, if wanted, belongs inside ``forward``.

    Args:
        forward: ``chunk -> (n_i, D)`` embeddings, e.g.
            ``lambda batch: encoder(**batch)``. Called twice per chunk.
        chunks: the pieces of the batch, in order (see :func:`split_batch`).
        loss_fn: ``(sum n_i, D) -> scalar``; e.g. for SimCSE views stacked as
            ``[x; x]``: ``lambda e: info_nce_loss(*e.chunk(2))``. It may use
            :func:`minicse.distributed.gather_with_grad`.
        no_sync: DDP's ``model.no_sync``; when given, every chunk but the last
            runs its backward inside it, so gradients are all-reduced once.

    Returns:
        The loss, detached.

    References:
        Gao, Zhang, Han & Callan, 2021, "Scaling Deep Contrastive Learning
        Batch Size under Memory Limited Setup", arXiv:2101.06983, Algorithm 1.

    Example:
        >>> net = torch.nn.Linear(3, 2)
        >>> x = torch.randn(5, 3)
        >>> loss = grad_cache_step(net, [x[:2], x[2:]], lambda e: e.pow(2).sum())
        >>> torch.allclose(net.weight.grad, 2 * (net(x).T @ x))
        True
    """
    if not callable(forward) or not callable(loss_fn):
        raise TypeError("forward and loss_fn must be callables")
    if isinstance(chunks, (str, Tensor, Mapping)) or not isinstance(chunks, Sequence):
        raise TypeError(
            f"chunks must be a list of batches, got {type(chunks).__name__}; "
            "use split_batch(batch, chunk_size)"
        )
    if not chunks:
        raise ValueError("chunks is empty; pass at least one chunk")
    parts, states = _encode_without_graph(forward, chunks)
    embeddings = torch.cat(parts).requires_grad_(True)  # (sum n_i, D) leaf
    loss = loss_fn(embeddings)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got {loss!r}")
    loss.backward()  # G = dL/dE (and grads of any parameters inside loss_fn)
    grads = embeddings.grad.split([len(p) for p in parts])
    state_after = _get_rng_state()
    for i, (chunk, grad, state) in enumerate(zip(chunks, grads, states, strict=True)):
        last = i == len(chunks) - 1
        sync = (
            no_sync() if no_sync is not None and not last else contextlib.nullcontext()
        )
        _set_rng_state(state)  # the same dropout masks as in pass 1
        with sync:
            out = forward(chunk)
            if out.shape != grad.shape:
                raise RuntimeError(
                    f"forward(chunks[{i}]) gave {tuple(out.shape)} on the re-run but "
                    f"{tuple(grad.shape)} the first time; it must be deterministic"
                )
            out.backward(grad)
    _set_rng_state(state_after)  # as if the batch had been encoded once
    return loss.detach()


def split_batch(batch: Any, chunk_size: int) -> list[Any]:
    """Cut a batch into consecutive chunks of ``chunk_size`` rows (the last may be
    smaller): a dict of tensors (each split on dim 0), a tensor, or a list.

    Example:
        >>> split_batch({"input_ids": torch.zeros(5, 3)}, 2)[-1]["input_ids"].shape
        torch.Size([1, 3])
        >>> split_batch(list("abcde"), 2)
        [['a', 'b'], ['c', 'd'], ['e']]
    """
    check_int(chunk_size, "chunk_size")
    chunk_size = int(chunk_size)  # Tensor.split takes a NumPy integer for a list
    if isinstance(batch, Mapping):
        sizes = {len(v) for v in batch.values()}
        if len(sizes) != 1:
            raise ValueError(
                f"batch values must have the same number of rows, got {sizes}"
            )
        keys = list(batch)
        columns = [split_batch(batch[k], chunk_size) for k in keys]
        return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    if isinstance(batch, Tensor):
        return list(batch.split(chunk_size))
    if isinstance(batch, Sequence) and not isinstance(batch, str):
        return [
            list(batch[i : i + chunk_size]) for i in range(0, len(batch), chunk_size)
        ]
    kind = type(batch).__name__
    raise TypeError(f"batch must be a dict of tensors, a tensor or a list, got {kind}")
