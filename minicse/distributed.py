"""Several processes: process group, DDP, and a gather that keeps gradients.

``torchrun --nproc_per_node N script.py`` (and ``accelerate launch``, which calls
the same launcher) starts N copies of a script and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`init_distributed` reads
them; with ``WORLD_SIZE`` unset or 1 everything here is a no-op, so the same
training code runs in one process or many. On a CPU-only machine use
``accelerate launch --multi_gpu --num_processes N`` (gloo); ``--cpu`` starts one.

In-batch negatives across processes (SimCSE's ``--do_mlm`` aside, its
``cl_forward`` does this): each rank encodes its ``b`` sentences, the embeddings
are all-gathered so that every anchor sees all ``N * b`` candidates, and every
rank computes the *same* loss ``L`` over the gathered batch. See
:func:`gather_with_grad` for why the gradients then come out exactly as in one
process over the concatenated batch. See chapter 6.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from .utils import check_int, pick_device

__all__ = [
    "DistInfo",
    "init_distributed",
    "gather_with_grad",
    "barrier",
    "cleanup_distributed",
    "wrap_ddp",
    "shard_batch",
    "shard_sizes",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global index of this process, ``0 <= rank < world_size``.
        world_size: number of processes (1 without a launcher).
        local_rank: index on this machine; picks the GPU.
        is_main: ``rank == 0``: the process that logs, evaluates and saves.
        device: the device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    is_main: bool = True
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        if default is None:
            raise ValueError(
                f"environment variable {name} is not set but WORLD_SIZE > 1; start "
                "the script with `torchrun --nproc_per_node N` or `accelerate launch`"
            )
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(
            f"environment variable {name}={value!r} is not an integer"
        ) from err


def init_distributed(device: str | torch.device | None = "auto") -> DistInfo:
    """Join the process group the launcher describes, or run as a single process.

    With ``WORLD_SIZE > 1`` this initialises ``torch.distributed`` from the
    environment (``init_method="env://"``): backend ``nccl`` on CUDA (after
    ``torch.cuda.set_device(local_rank)``) and ``gloo`` on CPU. Calling it again
    returns the same :class:`DistInfo` without re-initialising.

    Args:
        device: ``"auto"`` (CUDA if present, else CPU; MPS is single-process
            only), ``"cpu"``, ``"cuda"`` or a ``torch.device``.

    Returns:
        This process's :class:`DistInfo`.

    Example:
        >>> info = init_distributed("cpu")  # no launcher: rank 0 of 1
        >>> info.rank, info.world_size, info.is_main, info.device
        (0, 1, True, device(type='cpu'))
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size < 1:
        raise ValueError(
            f"environment variable WORLD_SIZE must be >= 1, got {world_size}"
        )
    resolved = pick_device(device)
    if world_size == 1 and not dist.is_initialized():
        return DistInfo(device=resolved)
    local_rank = _env_int("LOCAL_RANK", 0)
    if device in (None, "auto") and resolved.type == "mps":
        resolved = torch.device("cpu")  # no multi-process MPS backend
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        _check_launch_env()
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://")
    rank = dist.get_rank()
    return DistInfo(rank, dist.get_world_size(), local_rank, rank == 0, resolved)


def _check_launch_env() -> None:
    """Raise a launcher hint unless RANK, MASTER_ADDR and MASTER_PORT are set."""
    _env_int("RANK")
    _env_int("MASTER_PORT")
    if not os.environ.get("MASTER_ADDR", "").strip():
        raise ValueError(
            "environment variable MASTER_ADDR is not set but WORLD_SIZE > 1; start "
            "the script with `torchrun --nproc_per_node N` or `accelerate launch`"
        )


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0; backward sums the gradients over ranks."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: list[int]) -> Tensor:
        rank = dist.get_rank()
        rows = max(sizes)
        padded = tensor.new_zeros((rows, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        buffers = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(buffers, padded)
        ctx.sizes, ctx.start = sizes, sum(sizes[:rank])
        return torch.cat([buf[:n] for buf, n in zip(buffers, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        # Every rank holds dL_r/dZ for its own copy L_r of the loss; the local
        # slice's total gradient is the sum over ranks (reduce-scatter).
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        rank = dist.get_rank()
        return grad[ctx.start : ctx.start + ctx.sizes[rank]], None


def gather_with_grad(tensor: Tensor, sizes: Sequence[int] | None = None) -> Tensor:
    """All-gather ``tensor`` from every rank along dim 0, keeping the autograd graph.

    Forward: ``Z = cat([z_0, ..., z_{N-1}])`` in rank order (ranks may hold
    different numbers of rows; the gather pads and trims). Backward: the
    gradient of the local slice is the **sum over ranks** of each rank's
    gradient for that slice (a reduce-scatter)::

        grad z_r = sum_k dL_k/dz_r = N * dL/dz_r      (every rank has L_k = L)

    so rank r's parameter gradient is ``N * dL/dz_r * dz_r/dθ``, and DDP's
    average over ranks gives ``sum_r dL/dz_r * dz_r/dθ = dL/dθ``: exactly the
    single-process gradient of the loss over the concatenated batch. (The
    official SimCSE code instead puts the local tensor back into a no-grad
    gather, which yields ``dL/dθ / N`` after DDP averaging. AdamW divides the
    scale out again, to ~1e-6, so that is *not* a smaller learning rate; but
    gradient clipping sees the ``1/N`` gradient, so its ``max_grad_norm=1.0``
    on N GPUs clips minicse's exact gradient at ``N``: see
    ``TrainConfig.max_grad_norm``.) The same identity holds if each rank uses
    only its own anchors and ``L = mean_r L_r``.

    Args:
        tensor: ``(n_r, ...)`` this rank's rows; trailing dims must match.
        sizes: every rank's ``n_r`` when the caller knows them (e.g.
            ``shard_sizes(batch_size, world_size)``); skips the exchange of
            shapes, a small collective and, on GPU, a host sync per call.

    Returns:
        ``(sum_r n_r, ...)``; ``tensor`` itself when not distributed.

    References:
        Gao et al., 2021, arXiv:2104.08821 (SimCSE, ``cl_forward`` all-gather).

    Example:
        >>> x = torch.ones(2, 3)
        >>> gather_with_grad(x) is x  # one process: identity
        True
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == 0:
        raise ValueError("tensor must have at least 1 dim (rows, ...), got a scalar")
    if not _is_distributed():
        return tensor
    if sizes is not None:
        sizes = [int(n) for n in sizes]
        rank, world = dist.get_rank(), dist.get_world_size()
        if len(sizes) != world or sizes[rank] != tensor.shape[0]:
            raise ValueError(
                f"sizes={sizes} must list {world} row counts with "
                f"sizes[{rank}] == {tensor.shape[0]}, this rank's rows"
            )
        return _GatherWithGrad.apply(tensor.contiguous(), sizes)
    shape = torch.tensor(tensor.shape, device=tensor.device)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    shapes = [s.tolist() for s in shapes]
    if any(s[1:] != shapes[0][1:] for s in shapes):
        raise ValueError(
            f"gather_with_grad: trailing dims differ across ranks: {shapes}; every "
            "rank must pass (rows, dim) embeddings of the same dim"
        )
    return _GatherWithGrad.apply(tensor.contiguous(), [s[0] for s in shapes])


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if _is_distributed():
        if dist.get_backend() == "nccl":  # say which GPU, or NCCL guesses GPU 0
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def cleanup_distributed() -> None:
    """Destroy the process group, if any (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """Wrap ``module`` in ``DistributedDataParallel`` when distributed, else return it.

    DDP averages gradients over ranks during ``backward``. Every trainable
    weight is in every training graph (the encoder drops the Hugging Face pooler
    layer, as SimCSE does with ``add_pooling_layer=False``, and the MLP head with
    ``mlp="train"`` runs in every training forward), so DDP's slower search for
    unused parameters stays off.
    Buffers are not broadcast before each forward (``broadcast_buffers=False``):
    a transformer's buffers are constants (position ids), and the broadcast is a
    collective per forward call that would deadlock when ranks run different
    numbers of forward calls (e.g. GradCache over unequal shards).

    Args:
        module: the model, already on ``info.device``.
        info: from :func:`init_distributed`.

    Returns:
        The DDP wrapper (the original is ``.module``) or ``module`` itself.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module, got {type(module).__name__}"
        )
    if not info.distributed:
        return module
    ddp = torch.nn.parallel.DistributedDataParallel
    # torch >= 2.13 renamed the flag; older versions only know broadcast_buffers
    new_flag = "forward_sync_buffers" in inspect.signature(ddp).parameters
    no_buffer_sync = {
        "forward_sync_buffers" if new_flag else "broadcast_buffers": False
    }
    return ddp(
        module,
        device_ids=[info.device.index] if info.device.type == "cuda" else None,
        **no_buffer_sync,
    )


def no_sync(module: torch.nn.Module) -> contextlib.AbstractContextManager:
    """``module.no_sync()`` for a DDP module, a null context otherwise."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()


def shard_sizes(total: int, world_size: int) -> list[int]:
    """Rows per rank when :func:`shard_batch` splits ``total`` items.

    Example:
        >>> shard_sizes(7, 2)
        [4, 3]
    """
    check_int(world_size, "world_size")
    check_int(total, "total", minimum=0)
    if total < world_size:
        raise ValueError(
            f"total must be an int >= world_size={world_size}, "
            f"got {type(total).__name__} {total!r}"
        )
    base, extra = divmod(total, world_size)
    return [base + (rank < extra) for rank in range(world_size)]


def shard_batch(items: Sequence[T] | Tensor, info: DistInfo) -> Sequence[T] | Tensor:
    """This rank's contiguous slice of a global batch.

    ``n`` items over ``N`` ranks: the first ``n % N`` ranks get ``n // N + 1``
    items, the others ``n // N``, so concatenating the slices in rank order
    (what :func:`gather_with_grad` does) restores the global batch.

    Args:
        items: a list, tuple or tensor (sliced along dim 0) of ``n >= N`` items.
        info: from :func:`init_distributed`.

    Returns:
        ``items[start:stop]`` for this rank.

    Example:
        >>> info = DistInfo(rank=1, world_size=2, local_rank=1, is_main=False)
        >>> shard_batch(list("abcde"), info)
        ['d', 'e']
    """
    if not hasattr(items, "__len__") or not hasattr(items, "__getitem__"):
        raise TypeError(
            f"items must be a list, tuple or tensor, got {type(items).__name__}"
        )
    total, world = len(items), info.world_size
    if total < world:
        raise ValueError(
            f"a global batch of {total} items cannot be split over world_size={world} "
            "ranks; use a batch size of at least world_size"
        )
    sizes = shard_sizes(total, world)
    start = sum(sizes[: info.rank])
    return items[start : start + sizes[info.rank]]
