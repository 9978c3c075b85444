"""Several processes (``torchrun``, ``accelerate launch``): DDP, and a gather with
gradients so that every rank's loss sees all ``N * b`` in-batch candidates, as in
SimCSE's ``cl_forward``. Without a launcher all of it is a no-op. See chapter 6.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class DistInfo:
    """This process: ``rank`` of ``world_size``, ``local_rank`` (its GPU), ``is_main``
    (rank 0 logs, evaluates and saves) and ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    is_main: bool = True
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def _env(name: str, default: Any = None, kind: type = int) -> Any:
    """``kind(os.environ[name])``; ``default`` if unset, a launcher hint if none."""
    value = os.environ.get(name, "").strip()
    if not value:
        if default is None:
            raise ValueError(
                f"environment variable {name} is not set but WORLD_SIZE > 1; start the"
                " script with `torchrun --nproc_per_node N` or `accelerate launch`"
            )
        return default
    try:
        return kind(value)
    except ValueError as err:
        raise ValueError(
            f"environment variable {name}={value!r} is not an integer"
        ) from err


def init_distributed(device: str | torch.device | None = "auto") -> DistInfo:
    """Join the launcher's group (nccl on CUDA, gloo on CPU), or run alone.

    ``device`` is ``"auto"`` (CUDA, else CPU), ``"cpu"``, ``"cuda"`` or a device;
    the result is this process's :class:`DistInfo`.

    Example:
        >>> info = init_distributed("cpu")  # no launcher: rank 0 of 1
        >>> info.rank, info.world_size, info.is_main, info.device
        (0, 1, True, device(type='cpu'))
    """
    world_size = _env("WORLD_SIZE", 1)
    if world_size < 1:
        raise ValueError(
            f"environment variable WORLD_SIZE must be >= 1, got {world_size}"
        )
    resolved = pick_device(device)
    if world_size == 1 and not dist.is_initialized():
        return DistInfo(device=resolved)
    local_rank = _env("LOCAL_RANK", 0)
    if device in (None, "auto") and resolved.type == "mps":
        resolved = torch.device("cpu")  # no multi-process MPS backend
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        _env("RANK")
        _env("MASTER_PORT")
        _env("MASTER_ADDR", kind=str)
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://")
    rank = dist.get_rank()
    return DistInfo(rank, dist.get_world_size(), local_rank, rank == 0, resolved)


def _is_distributed() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _exchange_sizes(tensor: Tensor) -> list[int]:
    """Every rank's row count (a small all-gather of shapes)."""
    shape = torch.tensor(tensor.shape, device=tensor.device)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    shapes = [s.tolist() for s in shapes]
    if any(s[1:] != shapes[0][1:] for s in shapes):
        raise ValueError(
            f"gather_with_grad: trailing dims differ across ranks: {shapes}; every "
            "rank must pass (rows, dim) embeddings of the same dim"
        )
    return [s[0] for s in shapes]


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0; backward sums the gradients over ranks."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: list[int]) -> Tensor:
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))  # (max n_r, ...)
        padded[: len(tensor)] = tensor
        buffers = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(buffers, padded)
        ctx.sizes, ctx.start = sizes, sum(sizes[: dist.get_rank()])
        return torch.cat([buf[:n] for buf, n in zip(buffers, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # sum over ranks of dL_k/dZ, then keep our slice
        return grad[ctx.start : ctx.start + ctx.sizes[dist.get_rank()]], None


def gather_with_grad(tensor: Tensor, sizes: Sequence[int] | None = None) -> Tensor:
    """All-gather ``(n_r, ...)`` rows in rank order, keeping the autograd graph.

        Z = cat([z_0, ..., z_{N-1}]),  backward: dz_r = sum_k dL_k/dz_r = N dL/dz_r

    (every rank's ``L_k`` is the same ``L``), so DDP's mean over ranks yields the
    one-process gradient of the loss over the global batch. SimCSE's gather keeps
    only the local slice's graph, ``1/N`` of it: AdamW cancels that scale, but
    clipping does not (see ``TrainConfig.max_grad_norm``). ``sizes``, every
    rank's ``n_r`` when known (:func:`shard_sizes`), saves an exchange. Returns
    ``(sum_r n_r, ...)``, or ``tensor`` itself in one process.

    Reference: Gao et al., 2021, arXiv:2104.08821 (``cl_forward``'s all-gather).
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == 0:
        raise ValueError("tensor must have at least 1 dim (rows, ...), got a scalar")
    if not _is_distributed():
        return tensor
    rank, world = dist.get_rank(), dist.get_world_size()
    sizes = [int(n) for n in (_exchange_sizes(tensor) if sizes is None else sizes)]
    if len(sizes) != world or sizes[rank] != len(tensor):
        raise ValueError(
            f"sizes={sizes} must list {world} row counts with "
            f"sizes[{rank}] == {len(tensor)}, this rank's rows"
        )
    return _GatherWithGrad.apply(tensor.contiguous(), sizes)


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if _is_distributed():
        nccl = dist.get_backend() == "nccl"  # say which GPU, or NCCL guesses GPU 0
        dist.barrier(device_ids=[torch.cuda.current_device()] if nccl else None)


def cleanup_distributed() -> None:
    """Destroy the process group, if any (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel(module)`` when distributed, else ``module``.

    ``module`` is already on ``info.device``. Buffers are not synced before each
    forward: they are constants, and that collective would deadlock when ranks run
    different numbers of forwards (GradCache over unequal shards).
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module, got {type(module).__name__}"
        )
    if not info.distributed:
        return module
    ddp = torch.nn.parallel.DistributedDataParallel
    # torch 2.13 deprecates broadcast_buffers for forward_sync_buffers
    new = "forward_sync_buffers" in inspect.signature(ddp).parameters
    flag = "forward_sync_buffers" if new else "broadcast_buffers"
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return ddp(module, device_ids=device_ids, **{flag: False})


def no_sync(module: torch.nn.Module) -> contextlib.AbstractContextManager:
    """``module.no_sync()`` for a DDP module, a null context otherwise."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()


def shard_sizes(total: int, world_size: int) -> list[int]:
    """Rows per rank: the first ``total % world_size`` ranks get one more.

    Example:
        >>> shard_sizes(7, 2)
        [4, 3]
    """
    check_int(world_size, "world_size")
    check_int(total, "total", minimum=0)
    if total < world_size:
        raise ValueError(
            f"a global batch of {total} items cannot be split over "
            f"world_size={world_size} ranks; use a batch size of at least world_size"
        )
    base, extra = divmod(total, world_size)
    return [base + (rank < extra) for rank in range(world_size)]


def shard_batch(items: Sequence | Tensor, info: DistInfo) -> Sequence | Tensor:
    """This rank's slice of a list, tuple or tensor (dim 0) of ``>= world_size``.

    In rank order the slices make up the batch again.

    Example:
        >>> shard_batch(list("abcde"), DistInfo(1, 2, 1, False))
        ['d', 'e']
    """
    if not hasattr(items, "__len__") or not hasattr(items, "__getitem__"):
        raise TypeError(
            f"items must be a list, tuple or tensor, got {type(items).__name__}"
        )
    sizes = shard_sizes(len(items), info.world_size)
    start = sum(sizes[: info.rank])
    return items[start : start + sizes[info.rank]]
