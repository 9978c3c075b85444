"""Tests for minicse.distributed: single-process no-ops and a real 2-process run.

The 2-process test launches this very file with ``python -m torch.distributed.run
--nproc_per_node 2`` (gloo on CPU). Each rank computes, in float64, the InfoNCE
loss over gathered embeddings and the DDP-averaged gradients, plus the
single-process reference over the concatenated global batch, and saves both;
the test process compares them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minicse.distributed import (
    DistInfo,
    barrier,
    cleanup_distributed,
    gather_with_grad,
    init_distributed,
    shard_batch,
    shard_sizes,
    wrap_ddp,
)
from minicse.gradcache import grad_cache_step
from minicse.losses import info_nce_loss

LAUNCH_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------- one process


def test_single_process_is_a_no_op(no_launcher):
    info = init_distributed("cpu")
    assert info == DistInfo(0, 1, 0, True, torch.device("cpu"))
    assert not info.distributed
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_with_grad(x) is x
    module = torch.nn.Linear(2, 2)
    assert wrap_ddp(module, info) is module
    assert shard_batch([1, 2, 3], info) == [1, 2, 3]
    barrier()
    cleanup_distributed()  # nothing to clean: must not raise


@pytest.mark.parametrize("total", [4, 5, 7, 8])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shard_batch_slices_cover_the_batch_in_order(total, world):
    items = list(range(total))
    shards = [shard_batch(items, DistInfo(r, world, r, r == 0)) for r in range(world)]
    assert sum(shards, []) == items
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    tensor = torch.arange(total)
    assert torch.equal(
        shard_batch(tensor, DistInfo(0, world, 0, True)), tensor[: len(shards[0])]
    )


def test_shard_sizes():
    assert shard_sizes(7, 2) == [4, 3]
    assert shard_sizes(64, 4) == [16] * 4
    with pytest.raises(ValueError, match="world_size=3"):
        shard_sizes(2, 3)


def test_shard_batch_errors():
    with pytest.raises(ValueError, match="world_size=3"):
        shard_batch([1, 2], DistInfo(0, 3, 0, True))


def test_gather_errors():
    with pytest.raises(TypeError, match="tensor must be a torch.Tensor"):
        gather_with_grad([1.0, 2.0])
    with pytest.raises(ValueError, match="at least 1 dim"):
        gather_with_grad(torch.tensor(1.0))


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an int >= 1"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' is not an int >= 1"),
        ({"WORLD_SIZE": "2"}, "RANK is not set.*torchrun"),
        (
            {"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "1"},
            "MASTER_ADDR is not set",
        ),
    ],
)
def test_init_distributed_env_errors(no_launcher, monkeypatch, env, match):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        init_distributed("cpu")


def test_init_distributed_device_errors(no_launcher):
    with pytest.raises(ValueError, match="device="):
        init_distributed("warp-drive")


# ---------------------------------------------------------------- two processes


class _Encoder(torch.nn.Module):
    """Linear + tanh "encoder" and an MLP head: every weight in every training
    graph, as in SentenceEncoder (which drops BertModel's unused pooler), so DDP
    runs without its unused-parameter search."""

    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Module()
        self.model.body = torch.nn.Linear(6, 5)
        self.head = torch.nn.Linear(5, 4)
        self.register_buffer("position_ids", torch.arange(3))  # like BertEmbeddings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.model.body(x)))


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: (p.grad if p.grad is not None else torch.zeros_like(p)).clone()
        for n, p in module.named_parameters()
    }


def _simcse_loss(anchors, positives, sizes=None) -> torch.Tensor:
    gather = lambda x: gather_with_grad(x, sizes=sizes)  # noqa: E731
    return info_nce_loss(gather(anchors), gather(positives))


def _run_case(info: DistInfo, rows: int, mode: str) -> dict:
    """One step on a global batch of ``rows``: gathered loss and DDP gradients."""
    torch.manual_seed(rows)
    reference = _Encoder().double()
    views = torch.randn(2, rows, 6, dtype=torch.float64)  # two augmented views
    ref_loss = info_nce_loss(reference(views[0]), reference(views[1]))
    ref_loss.backward()
    model = _Encoder().double()
    model.load_state_dict(reference.state_dict())
    ddp = wrap_ddp(model, info)
    local = shard_batch(views.transpose(0, 1), info).transpose(0, 1)  # (2, b, 6)
    for _ in range(2):  # a 2nd step: DDP's reducer state carries over correctly
        model.zero_grad()
        if mode == "plain":
            sizes = shard_sizes(rows, info.world_size)  # known: no shape exchange
            loss = _simcse_loss(ddp(local[0]), ddp(local[1]), sizes)
            loss.backward()
        else:  # GradCache over chunks of the local [anchors; positives] rows
            chunks = list(local.reshape(-1, 6).split(3))
            loss = grad_cache_step(
                ddp, chunks, lambda e: _simcse_loss(*e.chunk(2)), no_sync=ddp.no_sync
            )
    return {
        "loss": loss.detach(),
        "ref_loss": ref_loss.detach(),
        "grads": _grads(model),
        "ref_grads": _grads(reference),
        "local_rows": local.shape[1],
    }


def _worker(out_dir: str) -> None:
    info = init_distributed("cpu")
    results = {
        f"{mode}-{rows}": _run_case(info, rows, mode)
        for rows in (8, 7)  # equal and unequal shards
        for mode in ("plain", "gradcache")
    }
    try:  # wrong sizes fail on every rank before any collective
        gather_with_grad(torch.zeros(2, 3), sizes=[1, 1])
    except ValueError as err:
        results["sizes_error"] = str(err)
    barrier()
    torch.save(results, Path(out_dir) / f"rank{info.rank}.pt")
    cleanup_distributed()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_match_one_process_over_the_global_batch(tmp_path):
    """(a) loss over gathered embeddings == single-process loss; (b) DDP grads too."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        __file__, str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        results = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert "sizes[" in results.pop("sizes_error")
        for case, out in results.items():
            assert out["local_rows"] == (4 if case.endswith("8") or rank == 0 else 3)
            torch.testing.assert_close(out["loss"], out["ref_loss"], rtol=0, atol=1e-9)
            for name, ref in out["ref_grads"].items():
                torch.testing.assert_close(
                    out["grads"][name], ref, rtol=0, atol=1e-9, msg=f"{case} {name}"
                )


if __name__ == "__main__":  # a rank started by torch.distributed.run
    _worker(sys.argv[1])
