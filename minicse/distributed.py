"""Several processes (``torchrun``, ``accelerate launch``): DDP, and a gather with
gradients so that every rank's loss sees all ``N * b`` in-batch candidates, as in
SimCSE's ``cl_forward``. Without a launcher all of it is a no-op. See chapter 6."""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from .utils import pick_device


@dataclass(frozen=True)
class DistInfo:
    """This process: ``rank`` of ``world_size``, ``local_rank`` (its GPU), ``is_main``
    (rank 0 logs, evaluates and saves), ``device``; ``distributed``: several ranks."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    is_main: bool = True
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device | None = "auto") -> DistInfo:
    """Join the launcher's group (nccl on CUDA, gloo on CPU), or run alone (rank 0
    of 1). ``device``: ``"auto"`` (CUDA, else CPU), ``"cpu"``, ``"cuda"``, a device."""
    size = os.environ.get("WORLD_SIZE", "").strip() or "1"
    if not size.isdigit() or int(size) < 1:
        raise ValueError(f"WORLD_SIZE={size!r} is not an int >= 1")
    resolved = pick_device(device)
    if int(size) == 1 and not dist.is_initialized():
        return DistInfo(device=resolved)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))  # set by every launcher
    if device in (None, "auto") and resolved.type == "mps":
        resolved = torch.device("cpu")  # no multi-process MPS backend
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name):
                raise ValueError(f"{name} is not set: launch with torchrun")
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    rank = dist.get_rank()
    return DistInfo(rank, dist.get_world_size(), local_rank, rank == 0, resolved)


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

    so DDP's mean over ranks gives the one-process gradient of the global batch's
    loss. (SimCSE keeps only the local slice's graph, ``1/N`` of it: AdamW cancels
    that scale, clipping does not.) ``sizes``, every ``n_r`` (:func:`shard_sizes`),
    saves an exchange. Returns ``(sum_r n_r, ...)``, or ``tensor`` in one process.
    Reference: Gao et al., 2021, arXiv:2104.08821 (``cl_forward``'s all-gather).
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == 0:
        raise ValueError("tensor must have at least 1 dim (rows, ...), got a scalar")
    if not dist.is_available() or not dist.is_initialized():
        return tensor  # one process
    rank, world = dist.get_rank(), dist.get_world_size()
    if sizes is None:  # every rank's row count, by a small all-gather
        sizes = [tensor.new_zeros(1, dtype=torch.long) for _ in range(world)]
        dist.all_gather(sizes, tensor.new_full((1,), len(tensor), dtype=torch.long))
    sizes = [int(n) for n in sizes]
    if len(sizes) != world or sizes[rank] != len(tensor):
        need = f"{world} row counts with sizes[{rank}] == {len(tensor)}"
        raise ValueError(f"sizes={sizes} must list {need}, this rank's rows")
    return _GatherWithGrad.apply(tensor.contiguous(), sizes)


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        nccl = dist.get_backend() == "nccl"  # say which GPU, or NCCL guesses GPU 0
        dist.barrier(device_ids=[torch.cuda.current_device()] if nccl else None)


def cleanup_distributed() -> None:
    """Destroy the process group, if any (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel(module)`` when distributed. No buffer sync per
    forward: buffers are constants, and ranks may run unequal numbers of forwards."""
    if not info.distributed:
        return module
    ddp, flag = torch.nn.parallel.DistributedDataParallel, "forward_sync_buffers"
    if flag not in inspect.signature(ddp).parameters:  # its name before torch 2.13
        flag = "broadcast_buffers"
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return ddp(module, device_ids=device_ids, **{flag: False})


def shard_sizes(total: int, world_size: int) -> list[int]:
    """Rows per rank, e.g. ``[4, 3]`` for 7 over 2: the first ranks get one more."""
    if total < world_size:
        raise ValueError(f"{total} rows cannot be split over world_size={world_size}")
    base, extra = divmod(total, world_size)
    return [base + (rank < extra) for rank in range(world_size)]


def shard_batch(items: Sequence | Tensor, info: DistInfo) -> Sequence | Tensor:
    """This rank's slice (dim 0, :func:`shard_sizes`) of a list, tuple or tensor."""
    sizes = shard_sizes(len(items), info.world_size)
    start = sum(sizes[: info.rank])
    return items[start : start + sizes[info.rank]]
